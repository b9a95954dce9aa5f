//! OpenAI's shape, `{"error": {"message", "type", "code", "param"}}`
//! (<https://platform.openai.com/docs/guides/error-codes>), and the APIs that copy it:
//!
//! - Azure OpenAI: `code` is the status as text or `content_filter`, with `innererror.code`
//!   `ResponsibleAIPolicyViolation`; 429s say "Please retry after 6 seconds"
//!   (<https://learn.microsoft.com/en-us/azure/ai-services/openai/quotas-limits>,
//!   <https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter>);
//! - Groq (`type: "tokens"`, `code: "rate_limit_exceeded"`, "Please try again in 7.66s";
//!   498 `capacity_exceeded`) <https://console.groq.com/docs/errors>;
//! - DeepSeek <https://api-docs.deepseek.com/quick_start/error_codes>, Fireworks
//!   <https://docs.fireworks.ai/guides/inference-error-codes>, Together
//!   <https://docs.together.ai/docs/error-codes>: OpenAI's shape, their own statuses;
//! - OpenRouter: `{"error": {"code": 402, "message", "metadata": {..}}}`, moderation flags in
//!   `metadata.flagged_input` <https://openrouter.ai/docs/api-reference/errors>;
//! - Mistral and vLLM: the same fields at the top level with `"object": "error"`
//!   <https://docs.mistral.ai/resources/error-glossary>;
//! - xAI: `{"code": "...", "error": "..."}` <https://docs.x.ai/docs/key-information/debugging>;
//! - Ollama: `{"error": "..."}` <https://github.com/ollama/ollama/blob/main/docs/api.md#errors>.

use super::{Provider, ProviderBody, str_field, text_field};
use crate::ErrorKind;
use serde_json::{Map, Value};

pub(super) fn parse(root: &Map<String, Value>) -> Option<ProviderBody> {
    let Some(error) = root.get("error") else {
        // Mistral and vLLM: the fields at the top level.
        if str_field(root, "object") != Some("error") {
            return None;
        }
        return Some(fields(root));
    };
    match error {
        Value::Object(e) => Some(fields(e)),
        // `{"error": "some message"}` (Ollama), with xAI's `code` beside it.
        Value::String(s) => {
            Some(ProviderBody::shaped(Provider::OpenAi, Some(s.clone()), None, text_field(root.get("code"))))
        }
        _ => None,
    }
}

fn fields(e: &Map<String, Value>) -> ProviderBody {
    let mut body = ProviderBody::shaped(
        Provider::OpenAi,
        text_field(e.get("message")),
        text_field(e.get("type")),
        text_field(e.get("code")),
    );
    body.detail = e.get("innererror").and_then(Value::as_object).and_then(|inner| text_field(inner.get("code")));
    body.facts.flagged = e
        .get("metadata")
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key("flagged_input") || m.contains_key("reasons"));
    body
}

/// The kind an OpenAI-style `code` or `type` names, if it names one. `invalid_request_error`
/// is left out: it is the generic fallback, weaker than any message-based refinement.
pub(super) fn token_kind(token: &str) -> Option<ErrorKind> {
    Some(match token {
        "insufficient_quota" | "billing_hard_limit_reached" | "billing_not_active" => ErrorKind::QuotaExhausted,
        "context_length_exceeded" | "string_above_max_length" => ErrorKind::ContextLengthExceeded,
        "rate_limit_exceeded" | "rate_limit_error" => ErrorKind::RateLimited,
        // Azure OpenAI's content filter, and its inner code.
        "content_filter" | "content_policy_violation" | "ResponsibleAIPolicyViolation" => ErrorKind::ContentFiltered,
        // Groq's flex tier at capacity.
        "capacity_exceeded" => ErrorKind::Overloaded,
        "server_error" => ErrorKind::Server,
        "invalid_api_key" | "invalid_authentication" => ErrorKind::Auth,
        // Mistral `unknown_model`, Azure `DeploymentNotFound`, vLLM `NotFoundError`.
        "model_not_found" | "unknown_model" | "DeploymentNotFound" | "NotFoundError" => ErrorKind::NotFound,
        _ => return None,
    })
}
