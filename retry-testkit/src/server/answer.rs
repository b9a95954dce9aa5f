//! The response a [`Fault`] calls for: a provider-shaped error, a (possibly cut) SSE stream,
//! or a takeover of the socket; with the `x-should-retry` and delay wrappers unwrapped first.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response};
use tokio::sync::mpsc;

use super::Config;
use super::connection::{Takeover, take_over};
use super::wire::{insert, json_bytes_response, json_response, raw_partial_json, raw_sse, sse_response};
use crate::body::ResponseBody;
use crate::fault::valid_status;
use crate::persona::{self, Answer, Failure};
use crate::responses::Reply;
use crate::{Fault, Route};

/// An [`Answer`] as a response.
pub(super) fn respond(answer: Answer) -> Response<ResponseBody> {
    let mut resp = json_response(answer.status, &answer.body);
    for (name, value) in answer.headers {
        insert(resp.headers_mut(), name, &value);
    }
    resp
}

pub(super) async fn serve(
    fault: &Fault,
    route: Route,
    reply: &Reply,
    stream: bool,
    config: &Config,
    takeover: &mpsc::Sender<Takeover>,
) -> Response<ResponseBody> {
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
    let events = |reply: &Reply| persona::events(route, reply, config.chunking);
    let mut resp = match fault {
        Fault::Ok if stream => sse_response(events(reply).all(), config.chunk_delay),
        Fault::Ok => json_bytes_response(200, persona::reply_json(route, reply)),
        Fault::RateLimited { .. }
        | Fault::InsufficientQuota
        | Fault::InvalidApiKey
        | Fault::ContextLengthExceeded
        | Fault::Overloaded
        | Fault::ContentFiltered
        | Fault::Status(_) => {
            // `of` knows every one of these; the fallback is never taken.
            let failure = Failure::of(fault).unwrap_or(Failure::Status(500));
            respond(persona::error(route, failure, reply))
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
            let mut events = events(reply).cut(*after_chunks);
            events.push(persona::error_event(route, reply));
            sse_response(events, config.chunk_delay)
        }
        Fault::ResetBeforeResponse => return take_over(takeover, Takeover::Reset(Bytes::new())).await,
        Fault::ResetDuringBody if stream => {
            let events = events(reply);
            let half = events.content.len() / 2;
            return take_over(takeover, Takeover::Reset(raw_sse(events.cut(half)))).await;
        }
        Fault::ResetDuringBody => {
            return take_over(takeover, Takeover::Reset(raw_partial_json(&persona::reply_json(route, reply)))).await;
        }
        Fault::StreamCut { after_chunks } if stream => {
            let events = events(reply).cut(*after_chunks);
            return take_over(takeover, Takeover::Reset(raw_sse(events))).await;
        }
        Fault::StreamCut { .. } => {
            return take_over(takeover, Takeover::Reset(raw_partial_json(&persona::reply_json(route, reply)))).await;
        }
        Fault::Hang => return take_over(takeover, Takeover::Hang).await,
        Fault::ShouldRetry { .. } | Fault::Delayed { .. } => unreachable!("wrappers are unwrapped above"),
    };
    if let Some(value) = should_retry {
        insert(resp.headers_mut(), "x-should-retry", if value { "true" } else { "false" });
    }
    resp
}
