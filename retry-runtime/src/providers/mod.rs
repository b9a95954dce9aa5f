//! What a provider's error body says, and the kind it adds up to.
//!
//! `ProviderBody::parse` reads a body (at most [`MAX_BODY_BYTES`]) into one shared shape:
//! message, `type`, `code`, a more specific detail token, a few facts, and a retry hint.
//! Each provider family has a file that recognises its shape and names its tokens:
//!
//! | file | shapes |
//! | --- | --- |
//! | `gemini.rs` | Google AI Studio and Vertex AI (`google.rpc.Status`, `details`) |
//! | `anthropic.rs` | Anthropic (`{"type":"error","error":{..}}`) |
//! | `tgi.rs` | Hugging Face TGI (`{"error":..,"error_type":..}`) |
//! | `bedrock.rs` | AWS Bedrock (`x-amzn-ErrorType`, `__type`) |
//! | `openai.rs` | OpenAI and every API that copies it: Azure OpenAI, Groq, DeepSeek, Mistral, xAI, Together, Fireworks, OpenRouter, vLLM, Ollama |
//! | `cohere.rs` | a bare `{"message": ..}`: Cohere, and gateways in front of others |
//!
//! [`refine_kind`] then decides: a family with a decision of its own (Gemini's status, Bedrock's
//! exception, TGI's `error_type`) gives it; the rest share the OpenAI-style decision here. In
//! all of them the body's code wins over the HTTP status (a 429 that says the quota is spent is
//! [`QuotaExhausted`](ErrorKind::QuotaExhausted), a 400 that says the prompt is too long is
//! [`ContextLengthExceeded`](ErrorKind::ContextLengthExceeded)).
//!
//! Adding a provider: a shape of its own goes in a new file with a `parse` (and, if its
//! tokens are not OpenAI's, a `refine`), listed in `FAMILIES` and in [`refine_kind`]; an
//! OpenAI-shaped provider only adds its tokens to `openai::token_kind`.

mod anthropic;
mod bedrock;
mod cohere;
mod gemini;
mod openai;
mod tgi;

use crate::ErrorKind;
use crate::http::MAX_BODY_BYTES;
use crate::retry_after::{MESSAGE_SCAN_BYTES, RetryAfter};
use serde_json::{Map, Value};
use std::time::Duration;

/// Which provider family's body shape was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    Tgi,
    /// A bare `{"message": ..}`: Cohere, or a gateway.
    Cohere,
    /// Not JSON, or JSON of no known shape: only the text is kept for a keyword search.
    Unknown,
}

/// Facts a body states besides its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Gemini: a `QuotaFailure` names a per-day quota, which no retry within the day clears.
    pub(crate) daily_quota: bool,
    /// OpenRouter: the moderation check flagged the input (`metadata.flagged_input`).
    pub(crate) flagged: bool,
}

/// What an error body said, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderBody {
    pub(crate) provider: Provider,
    pub(crate) message: Option<String>,
    pub(crate) error_type: Option<String>,
    pub(crate) code: Option<String>,
    /// A second, more specific token: Azure's `innererror.code`.
    pub(crate) detail: Option<String>,
    pub(crate) facts: Facts,
    /// The retry hint the body gives: a structured field (Gemini's `RetryInfo`), else a
    /// phrase of the message ("try again in 6s").
    pub(crate) hint: Option<Duration>,
    /// Lowercased message (or, for an unknown shape, the lowercased start of the body).
    lower_text: String,
}

/// How much of an unrecognised body is kept for the keyword search.
const TEXT_SCAN_BYTES: usize = MESSAGE_SCAN_BYTES;

/// A family's recogniser: the body it reads in a JSON object, if the shape is its own.
type Recogniser = fn(&Map<String, Value>) -> Option<ProviderBody>;

/// The families' recognisers, most specific first: the first that claims the body wins.
const FAMILIES: [Recogniser; 6] =
    [gemini::parse, anthropic::parse, tgi::parse, bedrock::parse, openai::parse, cohere::parse];

impl ProviderBody {
    /// A body of `provider`'s shape with these fields; the rest empty.
    fn shaped(
        provider: Provider,
        message: Option<String>,
        error_type: Option<String>,
        code: Option<String>,
    ) -> ProviderBody {
        let lower_text = message.as_deref().unwrap_or("").to_lowercase();
        ProviderBody {
            provider,
            message,
            error_type,
            code,
            detail: None,
            facts: Facts::default(),
            hint: None,
            lower_text,
        }
    }

    /// Fills the hint from the text when no structured field gave one.
    fn finish(mut self) -> ProviderBody {
        if self.hint.is_none() {
            self.hint = match RetryAfter::from_message(&self.lower_text) {
                Some(RetryAfter::Delay(d)) => Some(d),
                _ => None,
            };
        }
        self
    }

    /// Parses at most [`MAX_BODY_BYTES`] of `body`. Never fails: an unknown body gives
    /// `Provider::Unknown` with no fields.
    pub(crate) fn parse(body: &[u8]) -> ProviderBody {
        let body = &body[..body.len().min(MAX_BODY_BYTES)];
        // serde_json stops at 128 levels of nesting, so hostile nesting is an error, not a
        // stack overflow.
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            // Some gateways (and Vertex AI's streaming endpoint) wrap the error object in a
            // one-element array.
            let root = match &value {
                Value::Array(items) => items.first(),
                other => Some(other),
            };
            if let Some(Value::Object(root)) = root {
                if let Some(parsed) = FAMILIES.iter().find_map(|family| family(root)) {
                    return parsed.finish();
                }
            }
        }
        let text = String::from_utf8_lossy(&body[..body.len().min(TEXT_SCAN_BYTES)]);
        ProviderBody { lower_text: text.to_lowercase(), ..Self::shaped(Provider::Unknown, None, None, None) }.finish()
    }

    /// What the headers add to the body: Bedrock's `x-amzn-ErrorType` names the exception
    /// when the body (usually a bare `{"message": ..}`) does not.
    pub(crate) fn with_headers(self, headers: &http::HeaderMap) -> ProviderBody {
        bedrock::with_header(self, headers)
    }

    /// What the headers alone say, for a response whose body was not read.
    pub(crate) fn from_headers(headers: &http::HeaderMap) -> Option<ProviderBody> {
        bedrock::from_header(headers)
    }

    /// [`parse`](Self::parse) then [`with_headers`](Self::with_headers); with no body, what
    /// the headers alone say.
    pub(crate) fn read(headers: &http::HeaderMap, body: Option<&[u8]>) -> Option<ProviderBody> {
        match body {
            Some(body) => Some(Self::parse(body).with_headers(headers)),
            None => Self::from_headers(headers),
        }
    }

    /// An OpenAI-shaped error whose fields were parsed elsewhere (async-openai).
    #[cfg_attr(not(feature = "async-openai"), allow(dead_code))]
    pub(crate) fn openai(message: Option<String>, error_type: Option<String>, code: Option<String>) -> ProviderBody {
        Self::shaped(Provider::OpenAi, message, error_type, code).finish()
    }

    /// Whether the body had a known provider shape.
    #[cfg_attr(not(feature = "async-openai"), allow(dead_code))]
    pub(crate) fn is_known(&self) -> bool {
        self.provider != Provider::Unknown
    }

    fn mentions(&self, needles: &[&str]) -> bool {
        needles.iter().any(|n| self.lower_text.contains(n))
    }

    /// Whether the message says the prompt does not fit.
    fn says_too_long(&self) -> bool {
        self.mentions(CONTEXT_PHRASES) || (self.mentions(&["token"]) && self.mentions(TOKEN_LIMIT_PHRASES))
    }
}

/// A string field, or a number rendered as text (some gateways send `"code": 429`).
fn text_field(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A string field only.
fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key)?.as_str()
}

/// Phrases of an exhausted quota or spend limit, as opposed to a per-minute rate limit, read
/// on a 429 that names no token. Kept specific on purpose: Azure's retryable 429 mentions
/// `aka.ms/oai/quotaincrease`, Gemini's per-minute 429 says "check your plan and billing
/// details" (Gemini decides from its `QuotaFailure` instead).
const QUOTA_PHRASES: &[&str] = &[
    "exceeded your current quota",
    "insufficient quota",
    "insufficient_quota",
    "quota exceeded",
    "quota has been exceeded",
    "billing",
    "spend limit",
    "spending limit",
    "credit balance is too low",
    // Cohere's trial keys: "limited to 1000 API calls / month".
    "calls / month",
    "per month",
];

/// Phrases of an exhausted balance that mean it whatever the status and token.
const ALWAYS_QUOTA_PHRASES: &[&str] =
    &["credit balance is too low", "insufficient balance", "insufficient credits", "monthly spending limit"];

/// Phrases of a prompt that does not fit, each enough on its own.
const CONTEXT_PHRASES: &[&str] = &[
    "prompt is too long",
    "context window",
    "context length",
    "maximum context",
    "too many tokens",
    "too many input tokens",
    "maximum prompt length",
    "input is too long",
    "input token count",
    "exceeds the maximum number of tokens",
    "`max_new_tokens` must be <=",
];

/// Phrases of a limit exceeded, which mean a prompt too long when the message is about tokens
/// (TGI: "`inputs` must have less than 4096 tokens").
const TOKEN_LIMIT_PHRASES: &[&str] =
    &["must have less than", "must be <=", "must not exceed", "cannot exceed", "exceeds the limit", "too long"];

/// Phrases of a refused key, for providers that send it as a 400 (xAI, Gemini).
const AUTH_PHRASES: &[&str] = &["incorrect api key", "invalid api key", "api key not valid"];

/// Phrases of an overloaded server on a 503 or 529 (Ollama: "server busy, please try again").
const OVERLOAD_PHRASES: &[&str] = &["overload", "server busy"];

/// `type` values that only say "your request is wrong", weaker than any message-based
/// refinement: OpenAI's, and vLLM's exception names.
const GENERIC_INVALID: &[&str] = &["invalid_request_error", "BadRequestError", "invalid_request"];

/// The kind a status means before any body is read: [`ErrorKind::from_status`], plus the
/// statuses LLM providers give a meaning of their own.
fn status_kind(status: u16) -> ErrorKind {
    match status {
        // Payment Required: out of credits or balance (OpenRouter, DeepSeek, Cohere, Together,
        // Fireworks, Anthropic's billing_error).
        402 => ErrorKind::QuotaExhausted,
        // Groq's flex tier at capacity (`capacity_exceeded`): retry later.
        498 => ErrorKind::Overloaded,
        _ => ErrorKind::from_status(status),
    }
}

/// The kind of a response: the status, refined by what the body (and the headers merged into
/// it) says.
pub(crate) fn refine_kind(status: u16, body: Option<&ProviderBody>) -> ErrorKind {
    let by_status = status_kind(status);
    let Some(body) = body else { return by_status };

    // The overloaded 503 (and 529): the body's type, or failing that its text, says so.
    if matches!(status, 503 | 529)
        && (body.error_type.as_deref() == Some("overloaded_error") || body.mentions(OVERLOAD_PHRASES))
    {
        return ErrorKind::Overloaded;
    }
    let family = match body.provider {
        Provider::Unknown => return by_status,
        Provider::Gemini => gemini::refine(body),
        Provider::Bedrock => bedrock::refine(body),
        Provider::Tgi => tgi::refine(body),
        Provider::OpenAi | Provider::Anthropic | Provider::Cohere => None,
    };
    family.unwrap_or_else(|| openai_style(status, by_status, body))
}

/// A token's kind, from any family's table that knows it.
fn token_kind(token: &str) -> Option<ErrorKind> {
    openai::token_kind(token).or_else(|| anthropic::token_kind(token))
}

/// The decision shared by OpenAI, Anthropic, Cohere and every OpenAI-compatible API.
fn openai_style(status: u16, by_status: ErrorKind, body: &ProviderBody) -> ErrorKind {
    if body.facts.flagged {
        return ErrorKind::ContentFiltered;
    }
    let code = body.code.as_deref().and_then(token_kind);
    let detail = body.detail.as_deref().and_then(token_kind);
    let ty = body.error_type.as_deref().and_then(token_kind);
    // A specific code wins over the type: OpenAI sends `type: invalid_request_error` with
    // `code: invalid_api_key`, `model_not_found`, `context_length_exceeded`...
    let named = code.or(detail).or(ty);
    // Message refinements never override an explicit rate-limit token: a rate-limit message
    // may well mention quotas or billing in passing.
    let quota_message =
        body.mentions(ALWAYS_QUOTA_PHRASES) || (status == 429 && named.is_none() && body.mentions(QUOTA_PHRASES));
    if named != Some(ErrorKind::RateLimited) && quota_message {
        return ErrorKind::QuotaExhausted;
    }
    // Groq: a 413 `rate_limit_exceeded` is one request larger than the per-minute token
    // limit; waiting cannot make it fit. OpenAI says the same with a 429, `code:
    // rate_limit_exceeded` and "Request too large for gpt-4o ... on tokens per min (TPM):
    // Limit 30000, Requested 42000. The input or output tokens must be reduced ...".
    if named == Some(ErrorKind::RateLimited) && (status == 413 || body.mentions(&["request too large"])) {
        return ErrorKind::ContextLengthExceeded;
    }
    if let Some(kind) = named {
        return kind;
    }
    let generic = body.error_type.as_deref().is_some_and(|t| GENERIC_INVALID.contains(&t));
    // Together answers a prompt over the context window with a 403, TGI-based servers with a
    // 422.
    if (generic || matches!(status, 400 | 403 | 413 | 422)) && body.says_too_long() {
        return ErrorKind::ContextLengthExceeded;
    }
    if (generic || status == 400) && body.mentions(AUTH_PHRASES) {
        return ErrorKind::Auth;
    }
    if generic && by_status == ErrorKind::Other {
        // The generic "your request is wrong" on a status that means nothing of its own (405,
        // 415, ...). A status that says how keeps its meaning: Anthropic and Fireworks send
        // `invalid_request_error` with a 429 too.
        return ErrorKind::BadRequest;
    }
    by_status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shapes() {
        let openai = ProviderBody::parse(br#"{"error":{"message":"m","type":"t","code":"c","param":null}}"#);
        assert_eq!(openai.provider, Provider::OpenAi);
        assert_eq!(
            (openai.message.as_deref(), openai.error_type.as_deref(), openai.code.as_deref()),
            (Some("m"), Some("t"), Some("c"))
        );
        let anthropic =
            ProviderBody::parse(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#);
        assert_eq!(anthropic.provider, Provider::Anthropic);
        assert_eq!(anthropic.error_type.as_deref(), Some("overloaded_error"));
        let numeric = ProviderBody::parse(br#"[{"error":{"code":429,"message":"x"}}]"#);
        assert_eq!(numeric.code.as_deref(), Some("429"));
        let string = ProviderBody::parse(br#"{"error":"boom"}"#);
        assert_eq!(string.message.as_deref(), Some("boom"));
        let gemini = ProviderBody::parse(br#"{"error":{"code":503,"message":"m","status":"UNAVAILABLE"}}"#);
        assert_eq!((gemini.provider, gemini.error_type.as_deref()), (Provider::Gemini, Some("UNAVAILABLE")));
        let tgi = ProviderBody::parse(br#"{"error":"Model is overloaded","error_type":"overloaded"}"#);
        assert_eq!(tgi.provider, Provider::Tgi);
        let bedrock = ProviderBody::parse(br#"{"__type":"com.amazon.coral#ThrottlingException","message":"m"}"#);
        assert_eq!((bedrock.provider, bedrock.error_type.as_deref()), (Provider::Bedrock, Some("ThrottlingException")));
        let bare = ProviderBody::parse(br#"{"id":"1","message":"too many tokens"}"#);
        assert_eq!(bare.provider, Provider::Cohere);
        for junk in [&b""[..], b"null", b"[]", b"{\"error\":1}", b"{\"error\":[]}", b"<html>", b"\xff\xfe"] {
            assert_eq!(ProviderBody::parse(junk).provider, Provider::Unknown, "{junk:?}");
        }
    }

    #[test]
    fn long_bodies_are_cut() {
        let mut body = br#"{"error":{"type":"insufficient_quota","message":""#.to_vec();
        body.resize(MAX_BODY_BYTES + 10, b'a');
        body.extend_from_slice(br#""}}"#);
        // Valid JSON, but past the cap: only the status decides.
        assert_eq!(refine_kind(429, Some(&ProviderBody::parse(&body))), ErrorKind::RateLimited);
    }

    #[test]
    fn hints_come_from_the_message_or_a_structured_field() {
        let azure = ProviderBody::parse(br#"{"error":{"code":"429","message":"Please retry after 6 seconds."}}"#);
        assert_eq!(azure.hint, Some(Duration::from_secs(6)));
        let unknown = ProviderBody::parse(b"busy; try again in 250ms");
        assert_eq!(unknown.hint, Some(Duration::from_millis(250)));
        let none = ProviderBody::parse(br#"{"error":{"message":"no hint here"}}"#);
        assert_eq!(none.hint, None);
    }
}
