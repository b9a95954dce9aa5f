//! How many tokens a request counts against a tokens-per-minute limit: [`estimate_tokens`].

use serde_json::Value;

/// Characters per token in the estimate: OpenAI's rule of thumb for English text.
const CHARS_PER_TOKEN: u64 = 4;

/// The tokens a request body counts against [`rate_limit_tokens`](crate::ChaosServerBuilder::rate_limit_tokens):
/// `ceil(chars / 4)` of its prompt text, plus the most output tokens it asks for.
///
/// The prompt text is every text the request sends the model, counted in characters (Unicode scalar
/// values): the `content` of each of `messages` (a string, or the `text` of each part) and `system`
/// (OpenAI, Anthropic, Azure, Bedrock's Converse and InvokeModel), Gemini's `contents[].parts[].text` and
/// `systemInstruction`. The output allowance is the first of `max_tokens`, `max_completion_tokens`,
/// `generationConfig.maxOutputTokens` and `inferenceConfig.maxTokens` that is a number: providers
/// reserve it when the request arrives, as OpenAI counts `max_tokens` against TPM. Everything
/// saturates; a body that is not an object counts zero.
///
/// ```
/// use llm_retry_testkit::estimate_tokens;
/// use serde_json::json;
///
/// // 11 characters: 3 tokens; no output allowance.
/// assert_eq!(estimate_tokens(&json!({"messages": [{"role": "user", "content": "Hello there"}]})), 3);
/// // 8 + 8 characters, 4 tokens, and 100 reserved for the answer.
/// let body = json!({"system": "Be brief", "max_tokens": 100, "messages": [
///     {"role": "user", "content": [{"type": "text", "text": "Hi, how?"}]}
/// ]});
/// assert_eq!(estimate_tokens(&body), 104);
/// // Gemini's shape.
/// let body = json!({"contents": [{"parts": [{"text": "abcdefgh"}]}], "generationConfig": {"maxOutputTokens": 8}});
/// assert_eq!(estimate_tokens(&body), 10);
/// ```
pub fn estimate_tokens(body: &Value) -> u64 {
    let mut chars = 0u64;
    let mut count = |text: &Value| chars = chars.saturating_add(text_chars(text));
    for list in ["messages", "contents"] {
        for message in body.get(list).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
            count(message.get("content").or_else(|| message.get("parts")).unwrap_or(&Value::Null));
        }
    }
    count(body.get("system").unwrap_or(&Value::Null));
    let instruction = body.get("systemInstruction").or_else(|| body.get("system_instruction"));
    count(instruction.and_then(|s| s.get("parts")).unwrap_or(&Value::Null));
    chars.div_ceil(CHARS_PER_TOKEN).saturating_add(max_output(body))
}

/// The characters of a content: a string, or the `text` of each part of an array (or a string part).
fn text_chars(content: &Value) -> u64 {
    let len = |s: &str| u64::try_from(s.chars().count()).unwrap_or(u64::MAX);
    match content {
        Value::String(s) => len(s),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .fold(0u64, |sum, s| sum.saturating_add(len(s))),
        _ => 0,
    }
}

/// The output allowance the request asks for, if any.
fn max_output(body: &Value) -> u64 {
    ["/max_tokens", "/max_completion_tokens", "/generationConfig/maxOutputTokens", "/inferenceConfig/maxTokens"]
        .iter()
        .find_map(|p| body.pointer(p).and_then(Value::as_u64))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_every_text_the_model_reads() {
        let body = json!({
            "system": [{"type": "text", "text": "1234"}],
            "max_completion_tokens": 7,
            "messages": [
                {"role": "user", "content": "12345"},
                {"role": "assistant", "content": [{"text": "123"}, "12", {"type": "image"}]},
                {"role": "user"}
            ]
        });
        // 4 + 5 + 3 + 2 = 14 characters: 4 tokens, plus 7.
        assert_eq!(estimate_tokens(&body), 11);
    }

    #[test]
    fn characters_not_bytes_and_garbage_counts_nothing() {
        assert_eq!(estimate_tokens(&json!({"messages": [{"content": "ééééé"}]})), 2);
        for garbage in [json!(null), json!([1, 2]), json!({"messages": 3, "max_tokens": -1, "system": 5})] {
            assert_eq!(estimate_tokens(&garbage), 0, "{garbage}");
        }
        assert_eq!(estimate_tokens(&json!({"max_tokens": u64::MAX, "messages": [{"content": "x"}]})), u64::MAX);
    }

    #[test]
    fn bedrock_converse_shape() {
        let body = json!({
            "system": [{"text": "12345678"}],
            "messages": [{"role": "user", "content": [{"text": "1234"}]}],
            "inferenceConfig": {"maxTokens": 20}
        });
        assert_eq!(estimate_tokens(&body), 23);
    }
}
