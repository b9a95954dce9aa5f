//! One request: checked (route, method, size, the JSON its provider needs), recorded, and its answer
//! decided, in order: a rejection, the rate limiter, the route's script, the global script,
//! the chaos, else `200`.

use std::collections::VecDeque;

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
use super::limits::{self, Refusal, rate_headers};
use super::wire::insert;
use crate::body::ResponseBody;
use crate::persona::{self, Answer, Rejection};
use crate::record::{self, Outcome, RecordedRequest, Route};
use crate::responses::Reply;
use crate::{Chaos, Fault, estimate_tokens};

/// The rate-limit headers of a response, as the limiters stood when it was decided.
type RateHeaderPairs = Vec<(&'static str, String)>;

/// What the state decided for a request.
enum Decision {
    Reject(Answer),
    Limit { refusal: Refusal, model: String, headers: RateHeaderPairs },
    Serve(Fault, Value, RateHeaderPairs),
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
            Ok(request) => {
                let tokens = json.as_ref().map_or(0, estimate_tokens);
                let admitted = state.limits.admit(tokens, at);
                let headers = rate_headers(shared.config.rate_headers, route, &state.limits, at);
                match admitted {
                    Err(refusal) => {
                        let model = request.get("model").and_then(Value::as_str).unwrap_or("chaos-model").to_owned();
                        Decision::Limit { refusal, model, headers }
                    }
                    Ok(()) => {
                        let fault = state
                            .routes
                            .get_mut(&route)
                            .and_then(VecDeque::pop_front)
                            .or_else(|| state.global.pop_front())
                            .or_else(|| state.chaos.as_mut().map(Chaos::next_fault))
                            .unwrap_or(Fault::Ok);
                        Decision::Serve(fault, request, headers)
                    }
                }
            }
        };
        let outcome = match &decision {
            Decision::Reject(answer) => Outcome::Rejected { status: answer.status },
            Decision::Limit { refusal: Refusal::Requests { wait, .. }, .. } => {
                Outcome::RateLimited { retry_after: *wait }
            }
            Decision::Limit { refusal: Refusal::Tokens { wait, requested, .. }, .. } => {
                Outcome::TokensLimited { retry_after: *wait, tokens: *requested }
            }
            Decision::Limit { refusal: Refusal::TooLarge { requested, limit }, .. } => {
                Outcome::RequestTooLarge { tokens: *requested, limit: *limit }
            }
            Decision::Serve(fault, ..) => Outcome::Served(fault.clone()),
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
        Decision::Limit { refusal, model, headers } => limits::refused(route, refusal, &model, seq, &headers),
        Decision::Serve(fault, body, headers) => {
            let reply = Reply::new(persona::api(route), seq, &body, shared.config.reply.as_deref());
            let mut resp = serve(&fault, route, &reply, stream, &shared.config, takeover).await;
            // A scripted fault's own headers (a `RateLimited` hint, a `Custom` fault's) win.
            for (name, value) in headers {
                if !resp.headers().contains_key(name) {
                    insert(resp.headers_mut(), name, &value);
                }
            }
            resp
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}
