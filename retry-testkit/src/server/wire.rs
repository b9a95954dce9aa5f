//! Responses on the wire: JSON and SSE responses for hyper, and the raw bytes of a response
//! that a reset cuts short.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use serde_json::Value;

use crate::body::ResponseBody;

pub(super) fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

pub(super) fn json_response(status: u16, body: &Value) -> Response<ResponseBody> {
    json_bytes_response(status, Bytes::from(body.to_string()))
}

pub(super) fn json_bytes_response(status: u16, body: Bytes) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(super) fn sse_response(events: Vec<Bytes>, delay: Duration) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::streamed(events, delay));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The head of a `200` JSON response announcing the full length, and the first half of the body.
pub(super) fn raw_partial_json(body: &Bytes) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len())
            .as_bytes(),
    );
    out.put_slice(&body[..body.len() / 2]);
    out.freeze()
}

/// The head of a chunked `200` SSE response, and these events as chunks (never the terminating chunk).
pub(super) fn raw_sse(events: Vec<Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n\
          transfer-encoding: chunked\r\n\r\n",
    );
    for event in events {
        out.put_slice(format!("{:x}\r\n", event.len()).as_bytes());
        out.put_slice(&event);
        out.put_slice(b"\r\n");
    }
    out.freeze()
}
