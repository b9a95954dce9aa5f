//! Google Gemini, on AI Studio (`generativelanguage.googleapis.com`) and Vertex AI: a
//! `google.rpc.Status` error.
//!
//! ```json
//! {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED",
//!   "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [..]},
//!               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "35s"}]}}
//! ```
//!
//! The canonical `status` decides (<https://ai.google.dev/gemini-api/docs/troubleshooting>,
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429>); an `ErrorInfo`
//! reason (`API_KEY_INVALID`, sent with a 400) is more specific still. `RetryInfo.retryDelay`
//! is the hint; a `QuotaFailure` on a per-day quota is an exhausted quota, a per-minute one a
//! rate limit.

use super::{Provider, ProviderBody, str_field, text_field};
use crate::ErrorKind;
use crate::retry_after::parse_written_duration;
use serde_json::{Map, Value};

/// The most `details` entries and quota violations looked at.
const MAX_DETAILS: usize = 16;

pub(super) fn parse(root: &Map<String, Value>) -> Option<ProviderBody> {
    let error = root.get("error")?.as_object()?;
    let status = str_field(error, "status")?;
    let mut body =
        ProviderBody::shaped(Provider::Gemini, text_field(error.get("message")), Some(status.to_owned()), None);
    let details = error.get("details").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    for detail in details.iter().take(MAX_DETAILS).filter_map(Value::as_object) {
        let Some(ty) = str_field(detail, "@type") else { continue };
        if ty.ends_with("google.rpc.RetryInfo") {
            body.hint = str_field(detail, "retryDelay").and_then(parse_written_duration);
        } else if ty.ends_with("google.rpc.ErrorInfo") {
            body.code = str_field(detail, "reason").filter(|r| !r.is_empty()).map(str::to_owned);
        } else if ty.ends_with("google.rpc.QuotaFailure") {
            let violations = detail.get("violations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
            body.facts.daily_quota |= violations.iter().take(MAX_DETAILS).filter_map(Value::as_object).any(per_day);
        }
    }
    Some(body)
}

/// Whether a quota violation names a per-day quota (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`).
fn per_day(violation: &Map<String, Value>) -> bool {
    ["quotaId", "quotaMetric"].iter().filter_map(|k| str_field(violation, k)).any(|id| {
        id.as_bytes().windows(6).any(|w| w.eq_ignore_ascii_case(b"perday") || w.eq_ignore_ascii_case(b"per_da"))
    })
}

/// The kind an `ErrorInfo.reason` names.
fn reason_kind(reason: &str) -> Option<ErrorKind> {
    Some(match reason {
        "API_KEY_INVALID"
        | "API_KEY_EXPIRED"
        | "ACCESS_TOKEN_EXPIRED"
        | "API_KEY_SERVICE_BLOCKED"
        | "SERVICE_DISABLED"
        | "CONSUMER_INVALID" => ErrorKind::Auth,
        "BILLING_DISABLED" => ErrorKind::QuotaExhausted,
        "RATE_LIMIT_EXCEEDED" => ErrorKind::RateLimited,
        _ => return None,
    })
}

pub(super) fn refine(body: &ProviderBody) -> Option<ErrorKind> {
    if let Some(kind) = body.code.as_deref().and_then(reason_kind) {
        return Some(kind);
    }
    Some(match body.error_type.as_deref()? {
        "RESOURCE_EXHAUSTED" if body.facts.daily_quota => ErrorKind::QuotaExhausted,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" | "FAILED_PRECONDITION" if body.says_too_long() => {
            ErrorKind::ContextLengthExceeded
        }
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" if body.mentions(super::AUTH_PHRASES) => ErrorKind::Auth,
        // FAILED_PRECONDITION: the free tier is not offered in the caller's country.
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" | "FAILED_PRECONDITION" => ErrorKind::BadRequest,
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => ErrorKind::Auth,
        "NOT_FOUND" => ErrorKind::NotFound,
        // "The service may be temporarily overloaded or down."
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "INTERNAL" | "UNKNOWN" | "DEADLINE_EXCEEDED" | "DATA_LOSS" => ErrorKind::Server,
        "ABORTED" | "ALREADY_EXISTS" => ErrorKind::Conflict,
        _ => return None,
    })
}
