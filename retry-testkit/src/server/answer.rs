//! The response a [`Fault`] calls for: a provider-shaped error, a (possibly cut) SSE stream,
//! or a takeover of the socket; with the `x-should-retry` and delay wrappers unwrapped first.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response};
use tokio::sync::mpsc;

use super::Config;
use super::connection::{Takeover, take_over};
use super::wire::{insert, json_bytes_response, json_response, raw_partial_json, raw_sse, sse_response};
use crate::Fault;
use crate::body::ResponseBody;
use crate::fault::valid_status;
use crate::responses::{self as r, Reply};

pub(super) async fn serve(
    fault: &Fault,
    reply: &Reply,
    stream: bool,
    config: &Config,
    takeover: &mpsc::Sender<Takeover>,
) -> Response<ResponseBody> {
    let api = reply.api;
    let mut should_retry = None;
    let mut delay = Duration::ZERO;
    let mut fault = fault;
    loop {
        match fault {
            Fault::ShouldRetry { should_retry: value, fault: inner } => {
                should_retry.get_or_insert(*value);
                fault = inner;
            }
            Fault::Delayed { delay: d, fault: inner } => {
                delay = delay.saturating_add(*d);
                fault = inner;
            }
            _ => break,
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut resp = match fault {
        Fault::Ok if stream => sse_response(reply.events(config.chunking).all(), config.chunk_delay),
        Fault::Ok => json_bytes_response(200, reply.json()),
        Fault::RateLimited { retry_after } => {
            let mut resp = json_response(429, &r::rate_limited(api));
            for (name, value) in retry_after.header_pairs() {
                insert(resp.headers_mut(), name, &value);
            }
            resp
        }
        Fault::InsufficientQuota => json_response(429, &r::insufficient_quota(api)),
        Fault::InvalidApiKey => json_response(401, &r::invalid_api_key(api)),
        Fault::ContextLengthExceeded => json_response(400, &r::context_length_exceeded(api)),
        Fault::Status(code) => {
            let code = valid_status(*code);
            json_response(code, &r::status_error(api, code))
        }
        Fault::Custom { status, headers, body } => {
            let mut resp = json_bytes_response(valid_status(*status), Bytes::from(body.clone()));
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
                {
                    resp.headers_mut().insert(name, value);
                }
            }
            resp
        }
        Fault::StreamError { after_chunks } => {
            let mut events = reply.events(config.chunking).cut(*after_chunks);
            events.push(reply.error_event());
            sse_response(events, config.chunk_delay)
        }
        Fault::ResetBeforeResponse => return take_over(takeover, Takeover::Reset(Bytes::new())).await,
        Fault::ResetDuringBody if stream => {
            let events = reply.events(config.chunking);
            let half = events.content.len() / 2;
            return take_over(takeover, Takeover::Reset(raw_sse(events.cut(half)))).await;
        }
        Fault::ResetDuringBody => return take_over(takeover, Takeover::Reset(raw_partial_json(&reply.json()))).await,
        Fault::StreamCut { after_chunks } if stream => {
            let events = reply.events(config.chunking).cut(*after_chunks);
            return take_over(takeover, Takeover::Reset(raw_sse(events))).await;
        }
        Fault::StreamCut { .. } => return take_over(takeover, Takeover::Reset(raw_partial_json(&reply.json()))).await,
        Fault::Hang => return take_over(takeover, Takeover::Hang).await,
        Fault::ShouldRetry { .. } | Fault::Delayed { .. } => unreachable!("wrappers are unwrapped above"),
    };
    if let Some(value) = should_retry {
        insert(resp.headers_mut(), "x-should-retry", if value { "true" } else { "false" });
    }
    resp
}
