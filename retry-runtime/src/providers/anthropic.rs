//! Anthropic: `{"type": "error", "error": {"type": "overloaded_error", "message": "..."}}`
//! (<https://docs.anthropic.com/en/api/errors>).

use super::{Provider, ProviderBody, text_field};
use crate::ErrorKind;
use serde_json::{Map, Value};

pub(super) fn parse(root: &Map<String, Value>) -> Option<ProviderBody> {
    if root.get("type").and_then(Value::as_str) != Some("error") {
        return None;
    }
    let (message, error_type) = match root.get("error")? {
        Value::Object(e) => (text_field(e.get("message")), text_field(e.get("type"))),
        Value::String(s) => (Some(s.clone()), None),
        _ => return None,
    };
    Some(ProviderBody::shaped(Provider::Anthropic, message, error_type, None))
}

/// The kind an Anthropic `error.type` names. `invalid_request_error` is left out: it is the
/// generic fallback, weaker than any message-based refinement.
pub(super) fn token_kind(token: &str) -> Option<ErrorKind> {
    Some(match token {
        "rate_limit_error" => ErrorKind::RateLimited,
        "overloaded_error" => ErrorKind::Overloaded,
        // 500 and 504: both clear with time.
        "api_error" | "timeout_error" => ErrorKind::Server,
        "authentication_error" | "permission_error" => ErrorKind::Auth,
        "not_found_error" => ErrorKind::NotFound,
        // 413: the request is over the 32 MB limit.
        "request_too_large" => ErrorKind::ContextLengthExceeded,
        // 402: payment or billing problem.
        "billing_error" => ErrorKind::QuotaExhausted,
        _ => return None,
    })
}
