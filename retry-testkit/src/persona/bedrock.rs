//! AWS Bedrock's runtime API: Converse (`/model/{modelId}/converse`) and InvokeModel (`/invoke`).
//!
//! An error names its exception in the `x-amzn-ErrorType` header (`ThrottlingException:` and the
//! service's namespace URL) and carries only `{"message": "..."}` in the body
//! (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>, section
//! Errors; <https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html>).
//! Bedrock sends no retry hint: a fault's hint is dropped.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Answer, Failure};
use crate::Route;
use crate::responses::Reply;

/// What follows the exception's name in `x-amzn-ErrorType`.
const NAMESPACE: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";

/// The message a guardrail answers a blocked prompt with, by default.
const BLOCKED: &str = "Sorry, the model cannot answer this question.";

/// An exception: its status, `x-amzn-ErrorType` and `x-amzn-RequestId` headers and `{"message"}` body.
fn exception(status: u16, name: &str, message: &str) -> Answer {
    Answer {
        status,
        headers: vec![
            ("x-amzn-errortype", format!("{name}:{NAMESPACE}")),
            ("x-amzn-requestid", "00000000-0000-4000-8000-00000000c4a0".to_owned()),
        ],
        body: json!({ "message": message }),
    }
}

fn throttled() -> Answer {
    exception(429, "ThrottlingException", "Too many requests, please wait before trying again.")
}

pub(super) fn error(route: Route, failure: Failure<'_>, reply: &Reply) -> Answer {
    match failure {
        Failure::RateLimited(_) | Failure::Status(429) => throttled(),
        Failure::InsufficientQuota => exception(
            400,
            "ServiceQuotaExceededException",
            "Your request exceeds the service quota for your account. You can view your quotas at Viewing service quotas. You can resubmit your request later.",
        ),
        Failure::InvalidApiKey => {
            exception(403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
        }
        Failure::ContextLengthExceeded => {
            exception(400, "ValidationException", "Input is too long for requested model.")
        }
        Failure::Overloaded => exception(
            429,
            "ModelNotReadyException",
            "The model is not ready to serve inference requests. Wait and try your request again.",
        ),
        Failure::ContentFiltered => Answer::json(200, blocked(route, reply)),
        Failure::Status(code) => match code {
            403 => exception(
                403,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            ),
            404 => exception(404, "ResourceNotFoundException", "The provided model identifier is invalid."),
            408 => exception(
                408,
                "ModelTimeoutException",
                "Model has timed out in processing the request. Try your request again.",
            ),
            424 => exception(424, "ModelErrorException", "The model returned an error while processing the request."),
            503 => exception(503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
            400..=499 => exception(
                code,
                "ValidationException",
                "The input fails to satisfy the constraints specified by Amazon Bedrock.",
            ),
            _ => exception(
                code,
                "InternalServerException",
                "The server encountered an internal error while processing the request.",
            ),
        },
    }
}

pub(super) fn rejection(status: u16, message: &str) -> Answer {
    let name = if matches!(status, 404 | 405) { "UnknownOperationException" } else { "ValidationException" };
    exception(status, name, message)
}

/// Converse's reply: `output.message.content[].text`, `stopReason`, `usage` and `metrics`.
pub(super) fn converse_reply(reply: &Reply) -> Bytes {
    Bytes::from(converse(reply, &reply.text, "end_turn").to_string())
}

fn converse(reply: &Reply, text: &str, stop: &str) -> Value {
    let (input, output) = (reply.prompt_tokens, reply.completion_tokens());
    json!({
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
        "metrics": {"latencyMs": 0}
    })
}

/// A prompt a guardrail blocked: a `200` with the guardrail's message (Converse: `stopReason:
/// guardrail_intervened`; InvokeModel: `amazon-bedrock-guardrailAction: INTERVENED`).
fn blocked(route: Route, reply: &Reply) -> Value {
    if route == Route::Converse {
        return converse(reply, BLOCKED, "guardrail_intervened");
    }
    json!({
        "id": format!("msg_chaos_{}", reply.seq),
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [{"type": "text", "text": BLOCKED}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": 0},
        "amazon-bedrock-guardrailAction": "INTERVENED"
    })
}
