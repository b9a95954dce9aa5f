//! Response bodies in OpenAI's and Anthropic's shapes, normal and failed, JSON and SSE.

use bytes::Bytes;
use serde_json::{Value, json};

/// A fixed `created` timestamp, so that responses are byte-for-byte deterministic.
const CREATED: u64 = 1_700_000_000;
/// The model named in replies when the request names none.
const DEFAULT_MODEL: &str = "chaos-model";
/// Longest prompt excerpt quoted in a default reply, in characters.
const PROMPT_EXCERPT: usize = 200;

/// Which provider's shapes to answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    OpenAi,
    Anthropic,
}

/// Everything a successful reply is made from.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub api: Api,
    pub seq: usize,
    pub model: String,
    pub text: String,
    pub prompt_tokens: usize,
    pub include_usage: bool,
}

impl Reply {
    /// Builds the reply for a parsed request body; `fixed` is the server's configured reply text.
    pub(crate) fn new(api: Api, seq: usize, body: &Value, fixed: Option<&str>) -> Reply {
        let model = body.get("model").and_then(Value::as_str).unwrap_or(DEFAULT_MODEL).to_owned();
        let messages = body.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let prompt_tokens: usize = messages.iter().map(|m| words(&content_text(m))).sum::<usize>()
            + body.get("system").map(|s| words(&text_of(s))).unwrap_or(0);
        let text = match fixed {
            Some(t) => t.to_owned(),
            None => {
                let last_user = messages
                    .iter()
                    .rev()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                    .or(messages.last())
                    .map(content_text)
                    .unwrap_or_default();
                let excerpt: String = last_user.chars().take(PROMPT_EXCERPT).collect();
                format!("This is a deterministic reply from llm-retry-testkit to: {excerpt}")
            }
        };
        // Assistant prefill: a conversation that ends with the assistant's own (partial) turn asks the
        // model to continue that turn, as Anthropic documents. A reply that starts with the prefill
        // sends only the rest, so a client can resume a cut stream; any other reply is sent whole.
        let prefill = messages
            .last()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
            .map(content_text)
            .filter(|p| !p.is_empty());
        let text = match prefill {
            Some(p) => text.strip_prefix(p.as_str()).map(str::to_owned).unwrap_or(text),
            None => text,
        };
        let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
        Reply { api, seq, model, text, prompt_tokens, include_usage }
    }

    pub(crate) fn completion_tokens(&self) -> usize {
        words(&self.text)
    }

    fn openai_usage(&self) -> Value {
        let c = self.completion_tokens();
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": c, "total_tokens": self.prompt_tokens + c})
    }

    fn id(&self) -> String {
        match self.api {
            Api::OpenAi => format!("chatcmpl-chaos-{}", self.seq),
            Api::Anthropic => format!("msg_chaos_{}", self.seq),
        }
    }

    /// The non-streaming JSON body.
    pub(crate) fn json(&self) -> Bytes {
        let c = self.completion_tokens();
        let value = match self.api {
            Api::OpenAi => json!({
                "id": self.id(),
                "object": "chat.completion",
                "created": CREATED,
                "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text, "refusal": null},
                    "logprobs": null,
                    "finish_reason": "stop"
                }],
                "usage": self.openai_usage()
            }),
            Api::Anthropic => json!({
                "id": self.id(),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [{"type": "text", "text": self.text}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {"input_tokens": self.prompt_tokens, "output_tokens": c}
            }),
        };
        Bytes::from(value.to_string())
    }

    /// The SSE events of a streamed reply, one content event per piece.
    pub(crate) fn events(&self, chunking: Chunking) -> SseEvents {
        let pieces = chunking.split(&self.text);
        let id = self.id();
        let c = self.completion_tokens();
        match self.api {
            Api::OpenAi => {
                let chunk = |delta: Value, finish: Value| {
                    data_event(&json!({
                        "id": id, "object": "chat.completion.chunk", "created": CREATED, "model": self.model,
                        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
                    }))
                };
                let content = pieces
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        if i == 0 {
                            chunk(json!({"role": "assistant", "content": p}), Value::Null)
                        } else {
                            chunk(json!({"content": p}), Value::Null)
                        }
                    })
                    .collect();
                let mut tail = vec![chunk(json!({}), json!("stop"))];
                if self.include_usage {
                    tail.push(data_event(&json!({
                        "id": id, "object": "chat.completion.chunk", "created": CREATED, "model": self.model,
                        "choices": [],
                        "usage": self.openai_usage()
                    })));
                }
                tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
                SseEvents { prelude: Vec::new(), content, tail }
            }
            Api::Anthropic => {
                let prelude = vec![
                    named_event(
                        "message_start",
                        &json!({"type": "message_start", "message": {
                            "id": id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                            "stop_reason": null, "stop_sequence": null,
                            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 1}
                        }}),
                    ),
                    named_event(
                        "content_block_start",
                        &json!({"type": "content_block_start", "index": 0,
                                "content_block": {"type": "text", "text": ""}}),
                    ),
                ];
                let content = pieces
                    .iter()
                    .map(|p| {
                        named_event(
                            "content_block_delta",
                            &json!({"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": p}}),
                        )
                    })
                    .collect();
                let tail = vec![
                    named_event("content_block_stop", &json!({"type": "content_block_stop", "index": 0})),
                    named_event(
                        "message_delta",
                        &json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                                "usage": {"output_tokens": c}}),
                    ),
                    named_event("message_stop", &json!({"type": "message_stop"})),
                ];
                SseEvents { prelude, content, tail }
            }
        }
    }

    /// The `event: error` that [`crate::Fault::StreamError`] sends.
    pub(crate) fn error_event(&self) -> Bytes {
        let data = match self.api {
            Api::OpenAi => openai_error("Overloaded", "server_error", None, Some("overloaded")),
            Api::Anthropic => anthropic_error("overloaded_error", "Overloaded"),
        };
        named_event("error", &data)
    }
}

/// A streamed reply's events: always-sent prelude, one event per content piece, and the closing events.
#[derive(Debug, Clone)]
pub(crate) struct SseEvents {
    pub prelude: Vec<Bytes>,
    pub content: Vec<Bytes>,
    pub tail: Vec<Bytes>,
}

impl SseEvents {
    /// The whole stream.
    pub(crate) fn all(self) -> Vec<Bytes> {
        let mut out = self.prelude;
        out.extend(self.content);
        out.extend(self.tail);
        out
    }

    /// The prelude and the first `k` content events.
    pub(crate) fn cut(self, k: usize) -> Vec<Bytes> {
        let mut out = self.prelude;
        out.extend(self.content.into_iter().take(k));
        out
    }
}

fn data_event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn named_event(name: &str, value: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {value}\n\n"))
}

/// How a streamed reply's text is cut into content chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunking {
    /// Exactly this many pieces (at least one).
    Count(usize),
    /// Pieces of this many characters (at least one), the last one possibly shorter; one empty piece for
    /// an empty text.
    Chars(usize),
}

impl Chunking {
    pub(crate) fn split(self, text: &str) -> Vec<String> {
        match self {
            Chunking::Count(n) => split_text(text, n),
            Chunking::Chars(size) => {
                let chars: Vec<char> = text.chars().collect();
                if chars.is_empty() {
                    return vec![String::new()];
                }
                chars.chunks(size.max(1)).map(|c| c.iter().collect()).collect()
            }
        }
    }
}

/// Splits `text` into exactly `n` (at least one) pieces of nearly equal length in characters.
pub(crate) fn split_text(text: &str, n: usize) -> Vec<String> {
    let n = n.max(1);
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len();
    (0..n).map(|i| chars[i * len / n..(i + 1) * len / n].iter().collect()).collect()
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The text of a message: its `content` string, or its text parts joined by spaces.
fn content_text(message: &Value) -> String {
    message.get("content").map(text_of).unwrap_or_default()
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// `{"error":{"message","type","param","code"}}`.
pub(crate) fn openai_error(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// `{"type":"error","error":{"type","message"}}`.
pub(crate) fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// An error body for a bare status code, in the route's shape (529 always in Anthropic's).
pub(crate) fn status_error(api: Api, status: u16) -> Value {
    if status == 529 {
        return anthropic_error("overloaded_error", "Overloaded");
    }
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    match api {
        Api::OpenAi => match status {
            500 => openai_error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
                None,
            ),
            502 => openai_error("Bad gateway.", "server_error", None, Some("bad_gateway")),
            503 => openai_error("The server is overloaded or not ready yet.", "server_error", None, None),
            504 => openai_error("Gateway timeout.", "server_error", None, Some("gateway_timeout")),
            429 => openai_error("Rate limit reached for requests", "requests", None, Some("rate_limit_exceeded")),
            401 => invalid_api_key(api),
            404 => openai_error(
                "The requested resource was not found.",
                "invalid_request_error",
                None,
                Some("unknown_url"),
            ),
            400..=499 => openai_error(reason, "invalid_request_error", None, None),
            _ => openai_error(reason, "server_error", None, None),
        },
        Api::Anthropic => match status {
            401 => invalid_api_key(api),
            402 => anthropic_error("billing_error", reason),
            403 => anthropic_error(
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            ),
            404 => anthropic_error("not_found_error", "Not found"),
            413 => anthropic_error("request_too_large", "Request exceeds the maximum allowed number of bytes."),
            429 => rate_limited(api, None),
            504 => anthropic_error("timeout_error", "Request timed out"),
            400..=499 => anthropic_error("invalid_request_error", reason),
            _ => anthropic_error("api_error", "Internal server error"),
        },
    }
}

/// A 429's body. OpenAI's message says when to come back, as the real API's does ("Please try
/// again in 20s."), when the fault has a hint; async-openai keeps the message but not the headers.
pub(crate) fn rate_limited(api: Api, hint: Option<std::time::Duration>) -> Value {
    match api {
        Api::OpenAi => {
            let message = match hint.filter(|d| !d.is_zero()) {
                Some(d) => format!(
                    "Rate limit reached for requests. Please try again in {}.",
                    crate::fault::format_openai_duration(d)
                ),
                None => "Rate limit reached for requests. Please try again later.".to_owned(),
            };
            openai_error(&message, "requests", None, Some("rate_limit_exceeded"))
        }
        Api::Anthropic => anthropic_error(
            "rate_limit_error",
            "This request would exceed the rate limit for your organization. Please try again later.",
        ),
    }
}

pub(crate) fn insufficient_quota(api: Api) -> Value {
    match api {
        Api::OpenAi => openai_error(
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            None,
            Some("insufficient_quota"),
        ),
        Api::Anthropic => anthropic_error(
            "billing_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        ),
    }
}

pub(crate) fn invalid_api_key(api: Api) -> Value {
    match api {
        Api::OpenAi => openai_error(
            "Incorrect API key provided: sk-chaos****. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        Api::Anthropic => anthropic_error("authentication_error", "invalid x-api-key"),
    }
}

pub(crate) fn context_length_exceeded(api: Api) -> Value {
    match api {
        Api::OpenAi => openai_error(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            Some("messages"),
            Some("context_length_exceeded"),
        ),
        Api::Anthropic => {
            anthropic_error("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
        }
    }
}

/// The `400` for a body that is not what the route expects.
pub(crate) fn invalid_request(api: Api, message: &str, param: Option<&str>) -> Value {
    match api {
        Api::OpenAi => openai_error(message, "invalid_request_error", param, None),
        Api::Anthropic => anthropic_error("invalid_request_error", message),
    }
}

/// The `405` for a known route called with another method than POST.
pub(crate) fn method_not_allowed(api: Api) -> Value {
    match api {
        Api::OpenAi => {
            openai_error("Method not allowed; use POST.", "invalid_request_error", None, Some("method_not_allowed"))
        }
        Api::Anthropic => anthropic_error("invalid_request_error", "Method not allowed; use POST."),
    }
}

/// The `413` for a body over the limit.
pub(crate) fn too_large(api: Api, limit: usize) -> Value {
    let message = format!("Request body too large: the limit is {limit} bytes.");
    match api {
        Api::OpenAi => openai_error(&message, "invalid_request_error", None, Some("request_too_large")),
        Api::Anthropic => anthropic_error("request_too_large", &message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_exact_and_lossless() {
        let parts = split_text("héllo wörld", 4);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), "héllo wörld");
        assert_eq!(split_text("", 3), vec!["", "", ""]);
        assert_eq!(split_text("ab", 0), vec!["ab"]);
        assert_eq!(Chunking::Chars(2).split("abcde"), vec!["ab", "cd", "e"]);
        assert_eq!(Chunking::Chars(0).split("ab"), vec!["a", "b"]);
        assert_eq!(Chunking::Chars(3).split(""), vec![""]);
    }

    #[test]
    fn an_assistant_prefill_is_continued() {
        let ask = |prefill: &str| {
            let body = json!({"messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": prefill}
            ]});
            Reply::new(Api::Anthropic, 0, &body, Some("Hello there, world")).text
        };
        assert_eq!(ask("Hello th"), "ere, world");
        assert_eq!(ask("Hello there, world"), "");
        assert_eq!(ask("Goodbye"), "Hello there, world", "a prefill the reply does not start with");
        assert_eq!(ask(""), "Hello there, world");
        let derived = json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "This is a"}]}
        ]});
        let r = Reply::new(Api::OpenAi, 0, &derived, None);
        assert_eq!(r.text, " deterministic reply from llm-retry-testkit to: hi");
    }

    #[test]
    fn default_reply_quotes_last_user_message() {
        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "second part"}]}
        ]});
        let r = Reply::new(Api::OpenAi, 0, &body, None);
        assert!(r.text.ends_with("to: second part"), "{}", r.text);
        assert_eq!(r.prompt_tokens, 4);
        assert_eq!(r.model, "m");
    }
}
