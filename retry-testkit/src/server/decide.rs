//! One request: checked (route, method, size, JSON with `messages`), recorded, and its answer
//! decided, in order: a rejection, the rate limiter, the route's script, the global script,
//! the chaos, else `200`.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use super::answer::serve;
use super::connection::Takeover;
use super::wire::{insert, json_response};
use crate::body::ResponseBody;
use crate::record::{self, Outcome, RecordedRequest, Route};
use crate::responses::{self as r, Api, Reply};
use crate::{Chaos, Fault, format_openai_duration};

/// What the state decided for a request.
enum Decision {
    Reject(u16, Value),
    Limit { wait: Duration, requests_per_minute: u32 },
    Serve(Fault, Value),
}

pub(super) async fn handle(
    req: Request<Incoming>,
    shared: &Shared,
    takeover: &mpsc::Sender<Takeover>,
) -> Response<ResponseBody> {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let route = Route::from_path(&path);
    let api = Api::for_route(route);
    let max = shared.config.max_body_bytes;

    let mut raw = Bytes::new();
    let mut json = None;
    let checked: Result<(), (u16, Value)> = if route == Route::Unknown {
        Err((404, r::status_error(api, 404)))
    } else if parts.method != Method::POST {
        Err((405, r::method_not_allowed(api)))
    } else if content_length(&parts.headers).is_some_and(|n| n > max as u64) {
        Err((413, r::too_large(api, max)))
    } else {
        match Limited::new(body, max).collect().await {
            Ok(collected) => {
                raw = collected.to_bytes();
                match serde_json::from_slice::<Value>(&raw) {
                    Ok(value) if value.is_object() => {
                        let has_messages = value.get("messages").is_some_and(Value::is_array);
                        json = Some(value);
                        if has_messages {
                            Ok(())
                        } else {
                            Err((
                                400,
                                r::invalid_request(api, "Missing required parameter: 'messages'.", Some("messages")),
                            ))
                        }
                    }
                    Ok(_) => Err((400, r::invalid_request(api, "The request body must be a JSON object.", None))),
                    Err(e) => Err((
                        400,
                        r::invalid_request(
                            api,
                            &format!("We could not parse the JSON body of your request: {e}"),
                            None,
                        ),
                    )),
                }
            }
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err((413, r::too_large(api, max))),
            Err(_) => Err((400, r::invalid_request(api, "The request body could not be read.", None))),
        }
    };
    let stream = json.as_ref().and_then(|v| v.get("stream")).and_then(Value::as_bool).unwrap_or(false);

    let (seq, decision) = {
        let mut guard = shared.lock();
        let state = &mut *guard;
        let seq = state.records.len();
        let decision = match checked {
            Err((status, body)) => Decision::Reject(status, body),
            Ok(()) => match state.limiter.as_mut().map(|l| (l.requests_per_minute(), l.try_acquire_at(at))) {
                Some((requests_per_minute, Err(wait))) => Decision::Limit { wait, requests_per_minute },
                _ => {
                    let fault = state
                        .routes
                        .get_mut(&route)
                        .and_then(VecDeque::pop_front)
                        .or_else(|| state.global.pop_front())
                        .or_else(|| state.chaos.as_mut().map(Chaos::next_fault))
                        .unwrap_or(Fault::Ok);
                    Decision::Serve(fault, json.clone().unwrap_or(Value::Null))
                }
            },
        };
        let outcome = match &decision {
            Decision::Reject(status, _) => Outcome::Rejected { status: *status },
            Decision::Limit { wait, .. } => Outcome::RateLimited { retry_after: *wait },
            Decision::Serve(fault, _) => Outcome::Served(fault.clone()),
        };
        let (headers, had_authorization) = record::sanitize(&parts.headers);
        state.records.push(RecordedRequest {
            seq,
            at,
            method: parts.method.clone(),
            path,
            route,
            attempt: record::attempt(&parts.headers),
            headers,
            had_authorization,
            body: raw,
            json,
            stream,
            outcome,
        });
        (seq, decision)
    };

    match decision {
        Decision::Reject(status, body) => json_response(status, &body),
        Decision::Limit { wait, requests_per_minute } => {
            let mut resp = json_response(429, &r::rate_limited(api));
            let secs = wait.as_nanos().div_ceil(1_000_000_000);
            let millis = wait.as_nanos().div_ceil(1_000_000);
            let h = resp.headers_mut();
            insert(h, "retry-after", &secs.to_string());
            insert(h, "retry-after-ms", &millis.to_string());
            insert(h, "x-ratelimit-limit-requests", &requests_per_minute.to_string());
            insert(h, "x-ratelimit-remaining-requests", "0");
            insert(h, "x-ratelimit-reset-requests", &format_openai_duration(wait));
            resp
        }
        Decision::Serve(fault, body) => {
            let reply = Reply::new(api, seq, &body, shared.config.reply.as_deref());
            serve(&fault, &reply, stream, &shared.config, takeover).await
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}
