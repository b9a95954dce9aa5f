//! A small server-sent-events reader for LLM streams: OpenAI chat completions and Anthropic
//! messages, text deltas out, errors classified.

use crate::ErrorKind;
use crate::api_error::ApiError;
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use futures_core::Stream;
use pin_project_lite::pin_project;
use serde_json::Value;

/// The longest SSE line kept in memory; a longer one ends the stream with an error.
const MAX_LINE_BYTES: usize = 1 << 20;

/// The most `data:` one event may gather (its lines' values and the `\n` after each); more ends
/// the stream with an error, so that a body of small `data:` lines and no blank line cannot
/// grow without bound.
const MAX_EVENT_DATA_BYTES: usize = 1 << 20;

pin_project! {
    /// The text deltas of an OpenAI or Anthropic SSE body: see [`text_deltas`].
    #[must_use = "streams do nothing unless polled"]
    #[derive(Debug)]
    pub struct TextDeltas<S> {
        #[pin]
        inner: S,
        buf: Vec<u8>,
        start: usize,
        // How many bytes at the front of `buf` are known to hold no line end: the search for
        // the next one resumes there, so a long line arriving in small chunks is scanned once.
        scanned: usize,
        // The last chunk ended in a `\r`, already taken as a line end: a `\n` opening the next
        // chunk is the second half of that `\r\n`, not a line end of its own.
        skip_lf: bool,
        event: String,
        data: String,
        done: bool,
    }
}

/// Reads an SSE body (any stream of byte chunks, such as reqwest's `bytes_stream()`) and
/// yields the text of each content delta, for OpenAI's `/v1/chat/completions` (`choices[0].
/// delta.content`) and Anthropic's `/v1/messages` (`content_block_delta` text deltas).
///
/// Lines may end in `\n`, `\r\n` or a lone `\r`, as the SSE format allows, and may be cut
/// anywhere between chunks (a `\r\n` too).
///
/// It ends cleanly at OpenAI's `data: [DONE]` or Anthropic's `message_stop`. It ends with an
/// error, classified like any other, on:
/// - an `event: error` (or a `data:` object carrying an `error`) after the `200`: its JSON
///   payload is read like an error body (an Anthropic `overloaded_error` is
///   [`ErrorKind::Overloaded`]; an unrecognised payload is [`ErrorKind::Server`]);
/// - a body that stops before its final event (a cut connection): [`ErrorKind::Connection`];
/// - a transport error, converted with `Into<ApiError>`;
/// - a line longer than 1 MiB, or an event whose `data:` lines add up to more than 1 MiB:
///   [`ErrorKind::Other`].
///
/// ```
/// use futures_util::StreamExt;
/// use llm_retry_runtime::{ApiError, ErrorKind, stream::text_deltas};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let body = [
///     "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
///     "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\nevent: error\n",
///     "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
/// ];
/// let chunks = futures_util::stream::iter(body.map(Ok::<_, ApiError>));
/// let out: Vec<Result<String, ApiError>> = text_deltas(chunks).collect().await;
/// assert_eq!(out[0].as_deref().unwrap(), "Hel");
/// assert_eq!(out[1].as_deref().unwrap(), "lo");
/// assert_eq!(out[2].as_ref().unwrap_err().kind(), ErrorKind::Overloaded);
/// # }
/// ```
pub fn text_deltas<S, B, E>(body: S) -> TextDeltas<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Into<ApiError>,
{
    TextDeltas {
        inner: body,
        buf: Vec::new(),
        start: 0,
        scanned: 0,
        skip_lf: false,
        event: String::new(),
        data: String::new(),
        done: false,
    }
}

/// What one dispatched SSE event means.
#[derive(Debug)]
enum Dispatch {
    Text(String),
    Error(ApiError),
    End,
    Nothing,
}

/// The error an SSE error payload stands for.
fn stream_error(data: &str) -> ApiError {
    let e = ApiError::from_response(200, &http::HeaderMap::new(), data.as_bytes());
    if e.kind() == ErrorKind::Other {
        let what = e.message().unwrap_or("no details");
        ApiError::new(ErrorKind::Server, format!("the stream sent an error event: {what}"))
    } else {
        e
    }
}

fn dispatch(event: &str, data: &str) -> Dispatch {
    if event == "error" {
        return Dispatch::Error(stream_error(data));
    }
    if data.trim() == "[DONE]" {
        return Dispatch::End;
    }
    let Ok(value) = serde_json::from_str::<Value>(data) else { return Dispatch::Nothing };
    if value.get("error").is_some() {
        return Dispatch::Error(stream_error(data));
    }
    match value.get("type").and_then(Value::as_str) {
        Some("message_stop") => return Dispatch::End,
        Some("content_block_delta") => {
            return match value.pointer("/delta/text").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => Dispatch::Text(t.to_owned()),
                _ => Dispatch::Nothing,
            };
        }
        _ => {}
    }
    match value.pointer("/choices/0/delta/content").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => Dispatch::Text(t.to_owned()),
        _ => Dispatch::Nothing,
    }
}

/// Applies one non-empty line to the event being built.
fn field(line: &[u8], event: &mut String, data: &mut String) {
    let (name, value) = match line.iter().position(|&b| b == b':') {
        Some(0) => return, // a comment
        Some(i) => {
            let v = &line[i.saturating_add(1)..];
            (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
        }
        None => (line, &[][..]),
    };
    let value = String::from_utf8_lossy(value);
    match name {
        b"event" => *event = value.into_owned(),
        b"data" => {
            data.push_str(&value);
            data.push('\n');
        }
        _ => {} // id, retry, unknown fields
    }
}

impl<S, B, E> Stream for TextDeltas<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Into<ApiError>,
{
    type Item = Result<String, ApiError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if *this.done {
                return Poll::Ready(None);
            }
            loop {
                if *this.skip_lf && this.buf.len() > *this.start {
                    *this.skip_lf = false;
                    if this.buf.get(*this.start) == Some(&b'\n') {
                        *this.start = this.start.saturating_add(1);
                    }
                }
                let from = (*this.start).max(*this.scanned);
                let Some(n) = this.buf.get(from..).and_then(|b| b.iter().position(|&c| c == b'\n' || c == b'\r'))
                else {
                    break;
                };
                let end = from.saturating_add(n);
                let line = this.buf.get(*this.start..end).unwrap_or_default();
                let after = end.saturating_add(1);
                *this.start = match (this.buf.get(end), this.buf.get(after)) {
                    (Some(b'\r'), Some(b'\n')) => after.saturating_add(1),
                    (Some(b'\r'), None) => {
                        // The chunk ends here: a "\n" may open the next one.
                        *this.skip_lf = true;
                        after
                    }
                    _ => after,
                };
                if !line.is_empty() {
                    field(line, this.event, this.data);
                    if this.data.len() > MAX_EVENT_DATA_BYTES {
                        *this.done = true;
                        let e = ApiError::new(ErrorKind::Other, "an SSE event's data is longer than 1 MiB");
                        return Poll::Ready(Some(Err(e)));
                    }
                    continue;
                }
                let event = core::mem::take(this.event);
                let mut data = core::mem::take(this.data);
                if data.is_empty() {
                    continue;
                }
                data.pop(); // the last data line's '\n'
                match dispatch(&event, &data) {
                    Dispatch::Nothing => {}
                    Dispatch::Text(t) => return Poll::Ready(Some(Ok(t))),
                    Dispatch::End => {
                        *this.done = true;
                        return Poll::Ready(None);
                    }
                    Dispatch::Error(e) => {
                        *this.done = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            let consumed = (*this.start).min(this.buf.len());
            this.buf.drain(..consumed);
            *this.start = 0;
            // What is left is the start of a line, with no line end in it.
            *this.scanned = this.buf.len();
            if this.buf.len() > MAX_LINE_BYTES {
                *this.done = true;
                let e = ApiError::new(ErrorKind::Other, "an SSE line is longer than 1 MiB");
                return Poll::Ready(Some(Err(e)));
            }
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(bytes)) => this.buf.extend_from_slice(bytes.as_ref()),
                Some(Err(e)) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => {
                    *this.done = true;
                    let e = ApiError::connection("the stream ended before its final event ([DONE] or message_stop)");
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_comments() {
        let (mut ev, mut data) = (String::new(), String::new());
        for line in [&b": keep-alive"[..], b"event: error", b"data: {\"a\":1}", b"data:x", b"id: 7", b"data"] {
            field(line, &mut ev, &mut data);
        }
        assert_eq!(ev, "error");
        assert_eq!(data, "{\"a\":1}\nx\n\n");
    }

    /// A dispatch as text, for comparisons.
    fn show(d: Dispatch) -> String {
        match d {
            Dispatch::Text(t) => format!("text {t}"),
            Dispatch::Error(e) => format!("error {}", e.kind()),
            Dispatch::End => "end".into(),
            Dispatch::Nothing => "nothing".into(),
        }
    }

    #[test]
    fn dispatch_shapes() {
        let openai = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}"#;
        assert_eq!(show(dispatch("", openai)), "text Hi");
        assert_eq!(show(dispatch("", r#"{"choices":[{"delta":{"content":""}}]}"#)), "nothing");
        assert_eq!(show(dispatch("", r#"{"choices":[],"usage":{"total_tokens":3}}"#)), "nothing");
        assert_eq!(show(dispatch("", "[DONE]")), "end");
        let anthropic = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Yo"}}"#;
        assert_eq!(show(dispatch("content_block_delta", anthropic)), "text Yo");
        assert_eq!(show(dispatch("message_stop", r#"{"type":"message_stop"}"#)), "end");
        assert_eq!(show(dispatch("ping", r#"{"type":"ping"}"#)), "nothing");
        assert_eq!(show(dispatch("", "not json")), "nothing");
    }

    #[test]
    fn error_events_are_classified() {
        let kind = |ev: &str, data: &str| match dispatch(ev, data) {
            Dispatch::Error(e) => e.kind(),
            other => panic!("{}", show(other)),
        };
        let openai = r#"{"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"}}"#;
        assert_eq!(kind("error", openai), ErrorKind::Server);
        assert_eq!(kind("", openai), ErrorKind::Server);
        let anthropic = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(kind("error", anthropic), ErrorKind::Overloaded);
        let rate = r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(kind("error", rate), ErrorKind::RateLimited);
        let quota = r#"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#;
        assert_eq!(kind("error", quota), ErrorKind::QuotaExhausted);
        assert_eq!(kind("error", "something broke"), ErrorKind::Server);
        assert_eq!(kind("error", ""), ErrorKind::Server);
    }
}
