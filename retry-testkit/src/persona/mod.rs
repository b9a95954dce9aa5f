//! Personas: which provider's shapes the server answers in, chosen by the request's [`Route`].
//!
//! OpenAI (`/v1/chat/completions`) and Anthropic (`/v1/messages`) answer from `responses.rs`; the
//! other providers have a file each, holding every shape that provider documents:
//! - `gemini`: Google's `{"error":{"code","message","status","details"}}`, with the hint in a
//!   `google.rpc.RetryInfo` detail and quotas in `google.rpc.QuotaFailure`; `candidates` replies and
//!   SSE streams.
//! - `bedrock`: AWS's `x-amzn-ErrorType` header and `{"message"}` body; Converse replies.
//! - `azure`: OpenAI's shapes, with Azure's rate limit (hint in headers and in the message), auth and
//!   content filter.
//!
//! A request is checked and read here too: Gemini sends `contents`, not `messages`, and the model
//! is in the path for Gemini, Bedrock and Azure.

mod azure;
mod bedrock;
mod gemini;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::fault::valid_status;
use crate::record::{azure_deployment, bedrock_model, gemini_model};
use crate::responses::{self as r, Api, Chunking, Reply, SseEvents};
use crate::{Fault, RetryAfterHeader, Route};

/// The provider a route speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persona {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    Azure,
}

impl Persona {
    pub(crate) fn of(route: Route) -> Persona {
        match route {
            Route::Messages => Persona::Anthropic,
            Route::GenerateContent => Persona::Gemini,
            Route::Converse | Route::Invoke => Persona::Bedrock,
            Route::AzureChatCompletions => Persona::Azure,
            Route::ChatCompletions | Route::Unknown => Persona::OpenAi,
        }
    }
}

/// The base shape of a route's replies: Azure answers as OpenAI; Bedrock's InvokeModel (and, as a
/// stand-in for AWS's event-stream framing, any Bedrock stream) as Anthropic's models do. Gemini's and
/// Converse's own replies are built here from the same [`Reply`].
pub(crate) fn api(route: Route) -> Api {
    match Persona::of(route) {
        Persona::Anthropic | Persona::Bedrock => Api::Anthropic,
        Persona::OpenAi | Persona::Gemini | Persona::Azure => Api::OpenAi,
    }
}

/// An answer that is not a reply: status, headers and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl Answer {
    pub(crate) fn json(status: u16, body: Value) -> Answer {
        Answer { status, headers: Vec::new(), body }
    }
}

/// The faults that are answered with an error (or, on some routes, a blocked reply).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Failure<'a> {
    RateLimited(&'a RetryAfterHeader),
    InsufficientQuota,
    InvalidApiKey,
    ContextLengthExceeded,
    Overloaded,
    ContentFiltered,
    Status(u16),
}

impl<'a> Failure<'a> {
    /// The failure a fault (wrappers already removed) stands for, if it is one.
    pub(crate) fn of(fault: &'a Fault) -> Option<Failure<'a>> {
        Some(match fault {
            Fault::RateLimited { retry_after } => Failure::RateLimited(retry_after),
            Fault::InsufficientQuota => Failure::InsufficientQuota,
            Fault::InvalidApiKey => Failure::InvalidApiKey,
            Fault::ContextLengthExceeded => Failure::ContextLengthExceeded,
            Fault::Overloaded => Failure::Overloaded,
            Fault::ContentFiltered => Failure::ContentFiltered,
            Fault::Status(code) => Failure::Status(valid_status(*code)),
            _ => return None,
        })
    }
}

/// The answer to a failure on a route. `reply` names the model, for the bodies that quote it.
pub(crate) fn error(route: Route, failure: Failure<'_>, reply: &Reply) -> Answer {
    // A 529 is Anthropic's own status: its body is Anthropic's on every route.
    if failure == Failure::Status(529) {
        return classic(Api::Anthropic, failure);
    }
    match Persona::of(route) {
        Persona::OpenAi => classic(Api::OpenAi, failure),
        Persona::Anthropic => classic(Api::Anthropic, failure),
        Persona::Gemini => gemini::error(failure, reply),
        Persona::Bedrock => bedrock::error(route, failure, reply),
        Persona::Azure => azure::error(failure).unwrap_or_else(|| classic(Api::OpenAi, failure)),
    }
}

/// OpenAI's and Anthropic's answers.
fn classic(api: Api, failure: Failure<'_>) -> Answer {
    match failure {
        Failure::RateLimited(hint) => {
            Answer { status: 429, headers: hint.header_pairs(), body: r::rate_limited(api, hint.delay()) }
        }
        Failure::InsufficientQuota => Answer::json(429, r::insufficient_quota(api)),
        Failure::InvalidApiKey => Answer::json(401, r::invalid_api_key(api)),
        Failure::ContextLengthExceeded => Answer::json(400, r::context_length_exceeded(api)),
        Failure::Overloaded => {
            let status = if api == Api::Anthropic { 529 } else { 503 };
            Answer::json(status, r::status_error(api, status))
        }
        Failure::ContentFiltered => Answer::json(
            400,
            match api {
                Api::OpenAi => r::openai_error(
                    "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
                    "invalid_request_error",
                    None,
                    Some("content_policy_violation"),
                ),
                Api::Anthropic => {
                    r::anthropic_error("invalid_request_error", "Output blocked by content filtering policy")
                }
            },
        ),
        Failure::Status(code) => Answer::json(code, r::status_error(api, code)),
    }
}

/// Why a request is refused before any fault is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejection<'a> {
    NotFound,
    MethodNotAllowed,
    TooLarge(usize),
    Invalid { message: &'a str, param: Option<&'a str> },
}

/// A refusal in the route's shape.
pub(crate) fn reject(route: Route, rejection: Rejection<'_>) -> Answer {
    let (status, message) = match rejection {
        Rejection::NotFound => (404, "Not found.".to_owned()),
        Rejection::MethodNotAllowed => (405, "Method not allowed; use POST.".to_owned()),
        Rejection::TooLarge(limit) => (413, format!("Request body too large: the limit is {limit} bytes.")),
        Rejection::Invalid { message, .. } => (400, message.to_owned()),
    };
    match Persona::of(route) {
        Persona::Gemini => gemini::rejection(status, &message),
        Persona::Bedrock => bedrock::rejection(status, &message),
        persona => {
            let api = if persona == Persona::Anthropic { Api::Anthropic } else { Api::OpenAi };
            let body = match rejection {
                Rejection::NotFound => r::status_error(api, 404),
                Rejection::MethodNotAllowed => r::method_not_allowed(api),
                Rejection::TooLarge(limit) => r::too_large(api, limit),
                Rejection::Invalid { message, param } => r::invalid_request(api, message, param),
            };
            Answer::json(status, body)
        }
    }
}

/// Checks a JSON object request body for what the route needs, and returns it in the shape a
/// [`Reply`] reads (`model`, `messages` of `role` and `content`, `system`), or the refusal.
pub(crate) fn read_request(route: Route, path: &str, body: &Value) -> Result<Value, Answer> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let missing = |field: &'static str| match Persona::of(route) {
        Persona::Gemini => {
            gemini::rejection(400, &format!("* GenerateContentRequest.{field}: {field} is not specified"))
        }
        _ => reject(
            route,
            Rejection::Invalid { message: &format!("Missing required parameter: '{field}'."), param: Some(field) },
        ),
    };
    let mut out = body.clone();
    let name_model = |out: &mut Value, model: &str| {
        if out.get("model").and_then(Value::as_str).is_none() {
            out["model"] = json!(model);
        }
    };
    match route {
        Route::GenerateContent => {
            if !body.get("contents").is_some_and(Value::is_array) {
                return Err(missing("contents"));
            }
            let model = gemini_model(path).map_or("", |(m, _)| m);
            Ok(gemini::as_messages(model, body))
        }
        Route::Invoke => {
            name_model(&mut out, bedrock_model(path).map_or("", |(m, _)| m));
            Ok(out)
        }
        _ if !body.get("messages").is_some_and(Value::is_array) => Err(missing("messages")),
        Route::Converse => {
            name_model(&mut out, bedrock_model(path).map_or("", |(m, _)| m));
            Ok(out)
        }
        Route::AzureChatCompletions => {
            name_model(&mut out, azure_deployment(path).unwrap_or(""));
            Ok(out)
        }
        _ => Ok(out),
    }
}

/// Whether the request asks for a stream: Gemini's stream method, or `"stream": true` where the
/// provider reads it (never on Bedrock, which streams on other paths).
pub(crate) fn wants_stream(route: Route, path: &str, body: Option<&Value>) -> bool {
    match route {
        Route::GenerateContent => gemini_model(path.strip_suffix('/').unwrap_or(path)).is_some_and(|(_, s)| s),
        Route::Converse | Route::Invoke => false,
        _ => body.and_then(|v| v.get("stream")).and_then(Value::as_bool).unwrap_or(false),
    }
}

/// The `200` JSON reply.
pub(crate) fn reply_json(route: Route, reply: &Reply) -> Bytes {
    match route {
        Route::GenerateContent => gemini::reply(reply),
        Route::Converse => bedrock::converse_reply(reply),
        _ => reply.json(),
    }
}

/// The SSE events of a streamed reply.
pub(crate) fn events(route: Route, reply: &Reply, chunking: Chunking) -> SseEvents {
    match route {
        Route::GenerateContent => gemini::events(reply, chunking),
        _ => reply.events(chunking),
    }
}

/// The error event that [`Fault::StreamError`] sends.
pub(crate) fn error_event(route: Route, reply: &Reply) -> Bytes {
    match route {
        Route::GenerateContent => gemini::error_event(),
        _ => reply.error_event(),
    }
}
