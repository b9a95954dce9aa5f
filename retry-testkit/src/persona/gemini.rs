//! Google Gemini (AI Studio's `generativelanguage.googleapis.com`, and Vertex AI's same shapes).
//!
//! Errors are Google's API error model, `{"error":{"code","message","status","details"}}`
//! (<https://ai.google.dev/gemini-api/docs/troubleshooting>). A rate limit is a `429
//! RESOURCE_EXHAUSTED` whose only hint is in the body, a `google.rpc.RetryInfo` detail with a
//! `retryDelay` in protobuf's duration format (`"35s"`, `"0.050s"`); no header carries it
//! (<https://ai.google.dev/gemini-api/docs/rate-limits>). Which quota ran out is in a
//! `google.rpc.QuotaFailure` detail: a per-minute one for a rate limit, a per-day one for a spent quota.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Answer, Failure};
use crate::responses::{Chunking, Reply, SseEvents};

const TYPE: &str = "@type";
const HELP: &str = "https://ai.google.dev/gemini-api/docs/rate-limits";

/// `{"error":{"code","message","status"}}`, with `details` when there are any.
fn body(code: u16, status: &str, message: &str, details: Vec<Value>) -> Value {
    let mut error = json!({"code": code, "message": message, "status": status});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    json!({ "error": error })
}

/// The canonical status name Google's APIs send with an HTTP status.
fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if (400..500).contains(&code) => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

/// A `google.rpc.QuotaFailure` naming one free-tier request quota of `model`.
fn quota_failure(model: &str, quota_id: &str, value: &str) -> Value {
    json!({
        TYPE: "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": model},
            "quotaValue": value
        }]
    })
}

fn help() -> Value {
    json!({
        TYPE: "type.googleapis.com/google.rpc.Help",
        "links": [{"description": "Learn more about Gemini API quotas", "url": HELP}]
    })
}

/// Protobuf's JSON duration: whole seconds, or 3, 6 or 9 fractional digits, then `s`.
pub(crate) fn proto_duration(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    if nanos == 0 {
        format!("{secs}s")
    } else if nanos % 1_000_000 == 0 {
        format!("{secs}.{:03}s", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{secs}.{:06}s", nanos / 1_000)
    } else {
        format!("{secs}.{nanos:09}s")
    }
}

/// A `429 RESOURCE_EXHAUSTED` for the per-minute request limit, with `retryDelay` when the hint has a wait.
fn rate_limited(hint: Option<Duration>, model: &str) -> Answer {
    let mut details = vec![quota_failure(model, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "15"), help()];
    if let Some(wait) = hint {
        details.push(json!({TYPE: "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": proto_duration(wait)}));
    }
    Answer::json(429, body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", details))
}

pub(super) fn error(failure: Failure<'_>, reply: &Reply) -> Answer {
    let model = reply.model.as_str();
    match failure {
        Failure::RateLimited(hint) => rate_limited(hint.delay(), model),
        Failure::Status(429) => rate_limited(None, model),
        Failure::InsufficientQuota => Answer::json(
            429,
            body(
                429,
                "RESOURCE_EXHAUSTED",
                &format!(
                    "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: {HELP}."
                ),
                vec![quota_failure(model, "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "1500"), help()],
            ),
        ),
        Failure::InvalidApiKey => {
            let message = "API key not valid. Please pass a valid API key.";
            let details = vec![
                json!({
                    TYPE: "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}
                }),
                json!({TYPE: "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}),
            ];
            Answer::json(400, body(400, "INVALID_ARGUMENT", message, details))
        }
        Failure::ContextLengthExceeded => Answer::json(
            400,
            body(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",
                Vec::new(),
            ),
        ),
        Failure::Overloaded | Failure::Status(503) => overloaded(),
        // A blocked prompt is a `200` with no candidates and the reason in `promptFeedback`.
        Failure::ContentFiltered => Answer::json(
            200,
            json!({
                "promptFeedback": {
                    "blockReason": "SAFETY",
                    "safetyRatings": [
                        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": true},
                        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"}
                    ]
                },
                "usageMetadata": {"promptTokenCount": reply.prompt_tokens, "totalTokenCount": reply.prompt_tokens},
                "modelVersion": model,
                "responseId": response_id(reply)
            }),
        ),
        Failure::Status(code) => {
            let message = match code {
                400 => "Request contains an invalid argument.",
                401 => {
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
                }
                403 => {
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
                }
                404 => "Requested entity was not found.",
                500 => {
                    "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
                }
                502 => "The service is currently unavailable.",
                504 => "Deadline expired before operation could complete.",
                _ => "The request failed.",
            };
            Answer::json(code, body(code, status_name(code), message, Vec::new()))
        }
    }
}

fn overloaded() -> Answer {
    Answer::json(503, body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", Vec::new()))
}

pub(super) fn rejection(status: u16, message: &str) -> Answer {
    Answer::json(status, body(status, status_name(status), message, Vec::new()))
}

/// A `generateContent` body as a [`Reply`] reads it: `contents` of `role` (`user`, `model`) and
/// `parts`, and `systemInstruction` (or `system_instruction`).
pub(super) fn as_messages(model: &str, body: &Value) -> Value {
    let contents = body.get("contents").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let messages: Vec<Value> = contents
        .iter()
        .map(|c| {
            let role = match c.get("role").and_then(Value::as_str) {
                Some("model") => "assistant",
                _ => "user",
            };
            json!({"role": role, "content": c.get("parts").cloned().unwrap_or(Value::Null)})
        })
        .collect();
    let system = body
        .get("systemInstruction")
        .or_else(|| body.get("system_instruction"))
        .and_then(|s| s.get("parts"))
        .cloned()
        .unwrap_or(Value::Null);
    json!({"model": model, "messages": messages, "system": system})
}

fn response_id(reply: &Reply) -> String {
    format!("chaos-{}", reply.seq)
}

fn usage(reply: &Reply, completion: Option<usize>) -> Value {
    match completion {
        Some(c) => json!({
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": c,
            "totalTokenCount": reply.prompt_tokens + c
        }),
        None => json!({"promptTokenCount": reply.prompt_tokens, "totalTokenCount": reply.prompt_tokens}),
    }
}

fn candidate(text: &str, finish: bool) -> Value {
    let mut c = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
    if finish {
        c["finishReason"] = json!("STOP");
    }
    c
}

/// The `generateContent` reply: one candidate, its text, and `usageMetadata`.
pub(super) fn reply(reply: &Reply) -> Bytes {
    let value = json!({
        "candidates": [candidate(&reply.text, true)],
        "usageMetadata": usage(reply, Some(reply.completion_tokens())),
        "modelVersion": reply.model,
        "responseId": response_id(reply)
    });
    Bytes::from(value.to_string())
}

/// One SSE event as Google sends it (`alt=sse`): `data: <json>` and a CRLF blank line.
fn event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\r\n\r\n"))
}

/// `streamGenerateContent?alt=sse`: a `GenerateContentResponse` per piece, then one with
/// `finishReason: STOP` and the whole usage. No prelude and no terminator.
pub(super) fn events(reply: &Reply, chunking: Chunking) -> SseEvents {
    let chunk = |text: &str, finish: bool| {
        let completion = finish.then(|| reply.completion_tokens());
        event(&json!({
            "candidates": [candidate(text, finish)],
            "usageMetadata": usage(reply, completion),
            "modelVersion": reply.model,
            "responseId": response_id(reply)
        }))
    };
    let content = chunking.split(&reply.text).iter().map(|p| chunk(p, false)).collect();
    SseEvents { prelude: Vec::new(), content, tail: vec![chunk("", true)] }
}

/// The error a stream ends with when the model is overloaded mid-answer.
pub(super) fn error_event() -> Bytes {
    event(&overloaded().body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_durations() {
        assert_eq!(proto_duration(Duration::from_secs(35)), "35s");
        assert_eq!(proto_duration(Duration::from_millis(50)), "0.050s");
        assert_eq!(proto_duration(Duration::from_millis(1500)), "1.500s");
        assert_eq!(proto_duration(Duration::from_micros(1)), "0.000001s");
        assert_eq!(proto_duration(Duration::from_nanos(1)), "0.000000001s");
        assert_eq!(proto_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn contents_become_messages() {
        let body = json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hel"}]}
            ],
            "systemInstruction": {"parts": [{"text": "Be brief"}]}
        });
        let m = as_messages("gemini-2.0-flash", &body);
        assert_eq!(m["messages"][1]["role"], "assistant");
        assert_eq!(m["system"][0]["text"], "Be brief");
        let r = Reply::new(crate::responses::Api::OpenAi, 0, &m, Some("Hello"));
        assert_eq!((r.text.as_str(), r.prompt_tokens, r.model.as_str()), ("lo", 4, "gemini-2.0-flash"));
    }
}
