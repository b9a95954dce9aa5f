//! Hugging Face Text Generation Inference: `{"error": "Model is overloaded", "error_type":
//! "overloaded"}` (<https://huggingface.github.io/text-generation-inference/#/>, the
//! `ErrorResponse` schema). TGI sends `overloaded` with a 429 when its queue is full: the server
//! is busy, not the caller over a quota.
//!
//! vLLM and Ollama send OpenAI's shape, or `{"error": "..."}`: see `openai.rs`.

use super::{Provider, ProviderBody, str_field, text_field};
use crate::ErrorKind;
use serde_json::{Map, Value};

pub(super) fn parse(root: &Map<String, Value>) -> Option<ProviderBody> {
    let error_type = str_field(root, "error_type")?;
    let message = match root.get("error")? {
        Value::String(_) => text_field(root.get("error")),
        _ => return None,
    };
    Some(ProviderBody::shaped(Provider::Tgi, message, Some(error_type.to_owned()), None))
}

pub(super) fn refine(body: &ProviderBody) -> Option<ErrorKind> {
    Some(match body.error_type.as_deref()? {
        "overloaded" => ErrorKind::Overloaded,
        "validation" if body.says_too_long() => ErrorKind::ContextLengthExceeded,
        "validation" => ErrorKind::BadRequest,
        // 424 and 500: the generation itself failed (out of memory, a worker died).
        "generation" | "incomplete_generation" => ErrorKind::Server,
        _ => return None,
    })
}
