//! One request: checked (route, method, size, the JSON its provider needs), recorded, and its answer
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
use super::answer::{respond, serve};
use super::connection::Takeover;
use super::wire::{insert, json_response};
use crate::body::ResponseBody;
use crate::persona::{self, Answer, Failure, Persona, Rejection};
use crate::record::{self, Outcome, RecordedRequest, Route};
use crate::responses::{self as r, Reply};
use crate::{Chaos, Fault, RetryAfterHeader, format_openai_duration};

/// What the state decided for a request.
enum Decision {
    Reject(Answer),
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
    let max = shared.config.max_body_bytes;
    let invalid = |message: &str| persona::reject(route, Rejection::Invalid { message, param: None });

    let mut raw = Bytes::new();
    let mut json = None;
    let checked: Result<Value, Answer> = if route == Route::Unknown {
        Err(persona::reject(route, Rejection::NotFound))
    } else if parts.method != Method::POST {
        Err(persona::reject(route, Rejection::MethodNotAllowed))
    } else if content_length(&parts.headers).is_some_and(|n| n > max as u64) {
        Err(persona::reject(route, Rejection::TooLarge(max)))
    } else {
        match Limited::new(body, max).collect().await {
            Ok(collected) => {
                raw = collected.to_bytes();
                match serde_json::from_slice::<Value>(&raw) {
                    Ok(value) if value.is_object() => {
                        let read = persona::read_request(route, &path, &value);
                        json = Some(value);
                        read
                    }
                    Ok(_) => Err(invalid("The request body must be a JSON object.")),
                    Err(e) => Err(invalid(&format!("We could not parse the JSON body of your request: {e}"))),
                }
            }
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(persona::reject(route, Rejection::TooLarge(max)))
            }
            Err(_) => Err(invalid("The request body could not be read.")),
        }
    };
    let stream = persona::wants_stream(route, &path, json.as_ref());

    let (seq, decision) = {
        let mut guard = shared.lock();
        let state = &mut *guard;
        let seq = state.records.len();
        let decision = match checked {
            Err(answer) => Decision::Reject(answer),
            Ok(request) => match state.limiter.as_mut().map(|l| (l.requests_per_minute(), l.try_acquire_at(at))) {
                Some((requests_per_minute, Err(wait))) => Decision::Limit { wait, requests_per_minute },
                _ => {
                    let fault = state
                        .routes
                        .get_mut(&route)
                        .and_then(VecDeque::pop_front)
                        .or_else(|| state.global.pop_front())
                        .or_else(|| state.chaos.as_mut().map(Chaos::next_fault))
                        .unwrap_or(Fault::Ok);
                    Decision::Serve(fault, request)
                }
            },
        };
        let outcome = match &decision {
            Decision::Reject(answer) => Outcome::Rejected { status: answer.status },
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
        Decision::Reject(answer) => respond(answer),
        Decision::Limit { wait, requests_per_minute }
            if matches!(Persona::of(route), Persona::OpenAi | Persona::Anthropic) =>
        {
            let mut resp = json_response(429, &r::rate_limited(persona::api(route), Some(wait)));
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
        // The other providers' own 429: Gemini's `retryDelay`, Azure's headers and message, Bedrock's
        // bare throttle. The wait is rounded up to the millisecond, as the headers above round it.
        Decision::Limit { wait, .. } => {
            let millis = u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
            let secs = millis.div_ceil(1000) as f64;
            let hint = RetryAfterHeader::Many(vec![RetryAfterHeader::Seconds(secs), RetryAfterHeader::Millis(millis)]);
            let reply = Reply::new(persona::api(route), seq, &Value::Null, None);
            respond(persona::error(route, Failure::RateLimited(&hint), &reply))
        }
        Decision::Serve(fault, body) => {
            let reply = Reply::new(persona::api(route), seq, &body, shared.config.reply.as_deref());
            serve(&fault, route, &reply, stream, &shared.config, takeover).await
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}
