//! End to end over real TCP on loopback: `#[llm_retry]` fns that call the chaos LLM server with reqwest.
//!
//! Each test starts its own [`ChaosServer`], scripts its faults, and holds three records against each
//! other: what the server received (`requests()`, with arrival times on tokio's clock), what the policy
//! decided (the `notify` hook, [`record`]), and the site's stats. Every annotated fn has its own `name`,
//! so tests running in parallel never share a site. Waits are real but short: Retry-After hints of
//! 80–200 ms (one test waits a whole second, one an HTTP date), timeouts of 200–500 ms.
//!
//! ```sh
//! cargo test --test it e2e_reqwest
//! ```

use std::time::Duration;

use llm_retry::{ApiError, ErrorKind, GiveUp, call::DelaySource, http::RetryAfter, llm_retry};
use llm_retry_testkit::{Chaos, ChaosServer, Fault, RetryAfterHeader};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::*;

/// A reqwest client with its own retries off (it only retries HTTP/2 refusals anyway), so the server
/// sees exactly the attempts the policy makes.
fn client() -> reqwest::Client {
    reqwest::Client::builder().retry(reqwest::retry::never()).build().expect("a plain HTTP client builds")
}

/// One chat completion: the body of every annotated fn here, as a user would write it.
async fn chat(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    let response = http
        .post(url)
        .bearer_auth("sk-e2e-not-a-real-key")
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    let body: Value = response.json().await?;
    body.pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::new(ErrorKind::Other, "the completion has no content"))
}

// ---------------------------------------------------------------------------------------------------
// Retryable faults are retried, and the call succeeds when the script allows it.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "e2e_reqwest::status")]
async fn status_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn retryable_statuses_are_retried_until_success() {
    const SITE: &str = "e2e_reqwest::status";
    let cases = [
        (Fault::RateLimited { retry_after: RetryAfterHeader::None }, ErrorKind::RateLimited, 429),
        (Fault::Status(500), ErrorKind::Server, 500),
        (Fault::Status(502), ErrorKind::Server, 502),
        (Fault::Status(503), ErrorKind::Overloaded, 503),
        (Fault::Status(504), ErrorKind::Server, 504),
        (Fault::Status(529), ErrorKind::Overloaded, 529),
    ];
    for (fault, kind, status) in cases {
        let server = server([fault.clone(), fault.clone(), Fault::Ok]).await;
        let (before, seen) = (stats(SITE), retries(SITE).len());

        let out = status_call(&client(), &server.chat_completions_url()).await;

        assert_eq!(out.expect("the third attempt succeeds"), REPLY, "{fault:?}");
        assert_eq!(server.request_count(), 3, "{fault:?}");
        let planned = &retries(SITE)[seen..];
        assert_eq!(planned.len(), 2, "{fault:?}");
        for (i, r) in planned.iter().enumerate() {
            assert_eq!((r.attempt, r.kind, r.status), (i as u32 + 1, kind, Some(status)), "{fault:?}");
            assert_eq!((r.delay, r.source), (ms(10), DelaySource::Backoff), "{fault:?}");
        }
        assert_stats(SITE, before, 3, Ok(()));
        assert_eq!(stats(SITE).retries_of(kind) - before.retries_of(kind), 2, "{fault:?}");
    }
}

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "e2e_reqwest::reset")]
async fn reset_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn connection_resets_before_and_during_the_body_are_retried() {
    const SITE: &str = "e2e_reqwest::reset";
    let server = server([Fault::ResetBeforeResponse, Fault::ResetDuringBody, Fault::Ok]).await;
    let before = stats(SITE);

    let out = reset_call(&client(), &server.chat_completions_url()).await;

    assert_eq!(out.expect("the third attempt succeeds"), REPLY);
    assert_eq!(server.request_count(), 3);
    let kinds: Vec<_> = retries(SITE).iter().map(|r| (r.kind, r.status)).collect();
    assert_eq!(kinds, [(ErrorKind::Connection, None), (ErrorKind::Connection, None)]);
    assert_stats(SITE, before, 3, Ok(()));
    assert_eq!(stats(SITE).retries_of(ErrorKind::Connection) - before.retries_of(ErrorKind::Connection), 2);
}

#[llm_retry(max = 3, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "e2e_reqwest::exhausted")]
async fn exhausted_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn retries_stop_at_max_and_return_the_last_error() {
    const SITE: &str = "e2e_reqwest::exhausted";
    let server = server([Fault::Status(500), Fault::Status(502), Fault::Status(504), Fault::Ok]).await;
    let before = stats(SITE);

    let err = exhausted_call(&client(), &server.chat_completions_url()).await.unwrap_err();

    assert_eq!((err.kind(), err.status()), (ErrorKind::Server, Some(504)), "{err}");
    assert_eq!(server.request_count(), 3);
    assert_eq!(server.script_len(), 1, "the fourth step is never asked for");
    assert_stats(SITE, before, 3, Err(GiveUp::Exhausted));
}

// ---------------------------------------------------------------------------------------------------
// What retrying cannot fix is sent exactly once.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 5, backoff = "fixed", delay = "10ms", notify = record, name = "e2e_reqwest::fatal")]
async fn fatal_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn auth_context_length_and_quota_errors_make_exactly_one_request() {
    const SITE: &str = "e2e_reqwest::fatal";
    let cases = [
        (Fault::InvalidApiKey, ErrorKind::Auth, 401, "invalid_api_key"),
        (Fault::ContextLengthExceeded, ErrorKind::ContextLengthExceeded, 400, "context_length_exceeded"),
        (Fault::InsufficientQuota, ErrorKind::QuotaExhausted, 429, "insufficient_quota"),
    ];
    for (fault, kind, status, code) in cases {
        // A success waits behind the fault: only a retry would reach it.
        let server = server([fault.clone(), Fault::Ok]).await;
        let before = stats(SITE);
        let (http, url) = (client(), server.chat_completions_url());

        let err = fatal_call(&http, &url).await.unwrap_err();

        assert_gave_up_at_once(&format!("{fault:?}"), SITE, before, &server);
        assert_eq!((err.kind(), err.status(), err.provider_code()), (kind, Some(status), Some(code)), "{fault:?}");
        assert_stats(SITE, before, 1, Err(GiveUp::NonRetryable));
    }
    assert!(retries(SITE).is_empty(), "{:?}", retries(SITE));
}

// ---------------------------------------------------------------------------------------------------
// Retry-After, in every form, is a floor plus a small jitter.
// ---------------------------------------------------------------------------------------------------

/// Serves one 429 carrying `header`, then a 200, to `call` (whose backoff is a fixed 400 ms, so a hint
/// ignored shows), and checks that the policy planned `hint` plus at most its jitter, and that the
/// second request reached the server no earlier than planned and at most [`SCHED`] later. Returns the gap.
async fn assert_hint_honoured(
    site: &str,
    header: RetryAfterHeader,
    hint: Duration,
    call: impl AsyncFn(&reqwest::Client, &str) -> Result<String, ApiError>,
) -> Duration {
    let server = server([Fault::RateLimited { retry_after: header.clone() }, Fault::Ok]).await;
    let before = stats(site);

    let out = call(&client(), &server.chat_completions_url()).await;

    assert_eq!(out.expect("the retry succeeds"), REPLY);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{header:?}");
    let planned = retries(site);
    assert_eq!(planned.len(), 1, "{header:?}: {planned:?}");
    let Retry { kind, status, delay, source, .. } = planned[0];
    assert_eq!((kind, status, source), (ErrorKind::RateLimited, Some(429), DelaySource::RetryAfter), "{header:?}");
    let jitter = hint_jitter_max(hint);
    assert!(delay >= hint && delay <= hint + jitter, "{header:?}: planned {delay:?}, hint {hint:?} + up to {jitter:?}");
    let gap = gaps(&requests)[0];
    assert!(gap >= delay, "{header:?}: the retry came {gap:?} after the 429, before the planned {delay:?}");
    assert!(gap >= hint && gap <= hint + jitter + SCHED, "{header:?}: gap {gap:?}, hint {hint:?} + up to {jitter:?}");
    assert_stats(site, before, 2, Ok(()));
    assert_eq!(stats(site).slept - before.slept, delay, "{header:?}: the stats count the planned sleep");
    gap
}

#[llm_retry(max = 3, backoff = "fixed", delay = "400ms", jitter = "none", notify = record, name = "e2e_reqwest::retry_after_ms")]
async fn retry_after_ms_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn retry_after_ms_is_honoured() {
    let header = RetryAfterHeader::Millis(150);
    let gap = assert_hint_honoured("e2e_reqwest::retry_after_ms", header, ms(150), retry_after_ms_call).await;
    eprintln!("retry-after-ms: 150 -> gap {gap:?}");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "400ms", jitter = "none", notify = record, name = "e2e_reqwest::retry_after_float")]
async fn retry_after_float_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn retry_after_fractional_seconds_are_honoured() {
    let header = RetryAfterHeader::Seconds(0.2);
    let gap = assert_hint_honoured("e2e_reqwest::retry_after_float", header, ms(200), retry_after_float_call).await;
    eprintln!("retry-after: 0.2 -> gap {gap:?}");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "400ms", jitter = "none", notify = record, name = "e2e_reqwest::retry_after_secs")]
async fn retry_after_secs_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn retry_after_whole_seconds_are_honoured() {
    // The one form that cannot say less than a second.
    let header = RetryAfterHeader::Seconds(1.0);
    let gap = assert_hint_honoured("e2e_reqwest::retry_after_secs", header, ms(1000), retry_after_secs_call).await;
    eprintln!("retry-after: 1 -> gap {gap:?}");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "400ms", jitter = "none", notify = record, name = "e2e_reqwest::reset_requests")]
async fn reset_requests_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn x_ratelimit_reset_requests_is_honoured_on_a_429() {
    let header = RetryAfterHeader::ResetRequests(ms(120));
    let gap = assert_hint_honoured("e2e_reqwest::reset_requests", header, ms(120), reset_requests_call).await;
    eprintln!("x-ratelimit-reset-requests: 120ms -> gap {gap:?}");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "400ms", jitter = "none", notify = record, name = "e2e_reqwest::reset_tokens")]
async fn reset_tokens_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn x_ratelimit_reset_tokens_is_honoured_on_a_429() {
    let header = RetryAfterHeader::ResetTokens(ms(80));
    let gap = assert_hint_honoured("e2e_reqwest::reset_tokens", header, ms(80), reset_tokens_call).await;
    eprintln!("x-ratelimit-reset-tokens: 80ms -> gap {gap:?}");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "400ms", jitter = "none", notify = record, name = "e2e_reqwest::hint_precedence")]
async fn hint_precedence_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn retry_after_ms_wins_over_retry_after_and_reset_headers() {
    // What OpenAI sends side by side; the millisecond value is the precise one.
    let header = RetryAfterHeader::Many(vec![
        RetryAfterHeader::Seconds(1.0),
        RetryAfterHeader::Millis(100),
        RetryAfterHeader::ResetRequests(ms(300)),
    ]);
    let gap = assert_hint_honoured("e2e_reqwest::hint_precedence", header, ms(100), hint_precedence_call).await;
    eprintln!("retry-after: 1 + retry-after-ms: 100 + x-ratelimit-reset-requests: 300ms -> gap {gap:?}");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "1500ms", jitter = "none", notify = record, name = "e2e_reqwest::http_date")]
async fn http_date_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    const SITE: &str = "e2e_reqwest::http_date";
    // HTTP dates have whole seconds: the server rounds `now + 200ms` up to the next second, so the
    // wait the date means is between 200 ms and 1.2 s, depending on where in the second we are.
    let server = server([Fault::RateLimited { retry_after: RetryAfterHeader::HttpDate(ms(200)) }, Fault::Ok]).await;
    let before = stats(SITE);

    let out = http_date_call(&client(), &server.chat_completions_url()).await;

    assert_eq!(out.expect("the retry succeeds"), REPLY);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let planned = retries(SITE);
    assert_eq!(planned.len(), 1, "{planned:?}");
    let Retry { delay, source, .. } = planned[0];
    // A fixed backoff of 1.5 s would show here.
    assert_eq!(source, DelaySource::RetryAfter);
    assert!(delay > ms(100) && delay <= ms(1200) + hint_jitter_max(ms(1200)), "planned {delay:?}");
    let gap = gaps(&requests)[0];
    assert!(gap >= delay && gap <= delay + SCHED, "gap {gap:?}, planned {delay:?}");
    assert_stats(SITE, before, 2, Ok(()));
    eprintln!("retry-after: <HTTP date> -> planned {delay:?}, gap {gap:?}");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "50ms", jitter = "none", notify = record, name = "e2e_reqwest::no_hint")]
async fn no_hint_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn a_429_without_a_hint_falls_back_to_the_backoff() {
    const SITE: &str = "e2e_reqwest::no_hint";
    let server = server([Fault::RateLimited { retry_after: RetryAfterHeader::None }, Fault::Ok]).await;

    let out = no_hint_call(&client(), &server.chat_completions_url()).await;

    assert_eq!(out.expect("the retry succeeds"), REPLY);
    let planned = retries(SITE);
    assert_eq!(planned.iter().map(|r| (r.delay, r.source)).collect::<Vec<_>>(), [(ms(50), DelaySource::Backoff)]);
    let gap = gaps(&server.requests())[0];
    assert!(gap >= ms(50) && gap <= ms(50) + SCHED, "gap {gap:?}");
}

#[llm_retry(max = 5, max_retry_after = "1s", notify = record, name = "e2e_reqwest::hint_over_cap")]
async fn hint_over_cap_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn a_hint_above_max_retry_after_gives_up_at_once() {
    const SITE: &str = "e2e_reqwest::hint_over_cap";
    let server = server([Fault::rate_limited(30.0), Fault::Ok]).await;
    let before = stats(SITE);
    let (http, url) = (client(), server.chat_completions_url());

    let err = hint_over_cap_call(&http, &url).await.unwrap_err();

    let took = assert_gave_up_at_once("retry-after: 30", SITE, before, &server);
    assert_eq!((err.kind(), err.status()), (ErrorKind::RateLimited, Some(429)));
    assert_eq!(err.retry_after(), Some(RetryAfter::Delay(Duration::from_secs(30))), "the caller can see the hint");
    assert!(retries(SITE).is_empty());
    assert_stats(SITE, before, 1, Err(GiveUp::RetryAfterTooLong));
    eprintln!("retry-after: 30 over a 1s cap -> returned {took:?} after the request arrived");
}

#[llm_retry(max = 5, deadline = "300ms", notify = record, name = "e2e_reqwest::hint_past_deadline")]
async fn hint_past_deadline_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn a_hint_past_the_deadline_gives_up_at_once() {
    const SITE: &str = "e2e_reqwest::hint_past_deadline";
    // Under the default 120 s cap, but the 300 ms deadline would pass before it.
    let server = server([Fault::RateLimited { retry_after: RetryAfterHeader::Millis(1000) }, Fault::Ok]).await;
    let before = stats(SITE);
    let (http, url) = (client(), server.chat_completions_url());

    let err = hint_past_deadline_call(&http, &url).await.unwrap_err();

    assert_gave_up_at_once("retry-after-ms: 1000", SITE, before, &server);
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_stats(SITE, before, 1, Err(GiveUp::Deadline));
}

// ---------------------------------------------------------------------------------------------------
// Attempt timeouts and the deadline hold.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(
    max = 3,
    backoff = "fixed",
    delay = "20ms",
    jitter = "none",
    attempt_timeout = "200ms",
    notify = record,
    name = "e2e_reqwest::hang"
)]
async fn hang_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn a_hang_past_the_attempt_timeout_is_cut_and_retried() {
    const SITE: &str = "e2e_reqwest::hang";
    let server = server([Fault::Hang, Fault::Ok]).await;
    let before = stats(SITE);
    let (http, url) = (client(), server.chat_completions_url());
    let started = Instant::now();

    let out = hang_call(&http, &url).await;

    assert_eq!(out.expect("the second attempt succeeds"), REPLY);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let planned = retries(SITE);
    assert_eq!(planned.iter().map(|r| (r.kind, r.delay)).collect::<Vec<_>>(), [(ErrorKind::Timeout, ms(20))]);
    // The first attempt lasted the timeout, then came the backoff. (Counted from the call's start: the
    // timeout also covers sending the request, which the server's clock does not see.)
    let second = requests[1].at.duration_since(started);
    assert!(second >= ms(220) && second <= ms(220) + SCHED, "the retry arrived after {second:?}");
    assert_stats(SITE, before, 2, Ok(()));
    assert_eq!(stats(SITE).retries_of(ErrorKind::Timeout) - before.retries_of(ErrorKind::Timeout), 1);
    eprintln!("Hang, attempt_timeout 200ms + fixed 20ms -> retry arrived after {second:?}");
}

#[llm_retry(max = 3, attempt_timeout = "300ms", notify = record, name = "e2e_reqwest::slow_first_byte")]
async fn slow_first_byte_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn a_slow_first_byte_within_the_attempt_timeout_is_not_cut() {
    const SITE: &str = "e2e_reqwest::slow_first_byte";
    let server = server([Fault::slow_first_byte(ms(150))]).await;
    let before = stats(SITE);
    let (http, url) = (client(), server.chat_completions_url());
    let started = Instant::now();

    let out = slow_first_byte_call(&http, &url).await;

    let elapsed = started.elapsed();
    assert_eq!(out.expect("the first attempt succeeds"), REPLY);
    assert!(elapsed >= ms(150) && elapsed < ms(300), "took {elapsed:?}");
    assert_eq!(server.request_count(), 1);
    assert_stats(SITE, before, 1, Ok(()));
    assert_eq!(stats(SITE).first_try_successes - before.first_try_successes, 1);
}

#[llm_retry(
    max = 2,
    backoff = "fixed",
    delay = "20ms",
    jitter = "none",
    attempt_timeout = "200ms",
    name = "e2e_reqwest::hang_exhausted"
)]
async fn hang_exhausted_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn hanging_attempts_time_out_until_max() {
    const SITE: &str = "e2e_reqwest::hang_exhausted";
    let server = server([Fault::Hang, Fault::Hang, Fault::Ok]).await;
    let before = stats(SITE);
    let (http, url) = (client(), server.chat_completions_url());
    let started = Instant::now();

    let err = hang_exhausted_call(&http, &url).await.unwrap_err();

    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(server.request_count(), 2);
    assert!(elapsed >= ms(420) && elapsed <= ms(420) + SCHED, "took {elapsed:?}");
    assert_stats(SITE, before, 2, Err(GiveUp::Exhausted));
}

#[llm_retry(
    max = 20,
    backoff = "fixed",
    delay = "100ms",
    jitter = "none",
    deadline = "500ms",
    notify = record,
    name = "e2e_reqwest::deadline_500s"
)]
async fn deadline_500s_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn the_deadline_holds_against_repeated_500s() {
    const SITE: &str = "e2e_reqwest::deadline_500s";
    let server = server(vec![Fault::Status(500); 20]).await;
    let before = stats(SITE);
    let (http, url) = (client(), server.chat_completions_url());
    let started = Instant::now();

    let err = deadline_500s_call(&http, &url).await.unwrap_err();

    let elapsed = started.elapsed();
    // No sleep crosses the deadline: the call ends once the next sleep would cross it, with the last
    // 500 (or, on a machine so slow that an attempt is still running at 500 ms, cut short there).
    assert!(elapsed <= ms(500) + SCHED / 2, "took {elapsed:?}");
    assert!(err.status() == Some(500) || err.kind() == ErrorKind::Timeout, "{err}");
    let requests = server.requests();
    assert!((3..=5).contains(&requests.len()), "{} requests in {elapsed:?}", requests.len());
    for gap in gaps(&requests) {
        assert!(gap >= ms(100), "gap {gap:?}: a sleep was shortened");
    }
    assert_eq!(retries(SITE).len(), requests.len() - 1);
    assert_stats(SITE, before, requests.len(), Err(GiveUp::Deadline));
    eprintln!("deadline 500ms, 500s every 100ms -> {} requests, gave up after {elapsed:?}", requests.len());
}

#[llm_retry(max = 5, deadline = "300ms", name = "e2e_reqwest::deadline_hang")]
async fn deadline_hang_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn the_deadline_cuts_a_hanging_attempt() {
    const SITE: &str = "e2e_reqwest::deadline_hang";
    let server = server([Fault::Hang, Fault::Ok]).await;
    let before = stats(SITE);
    let (http, url) = (client(), server.chat_completions_url());
    let started = Instant::now();

    let err = deadline_hang_call(&http, &url).await.unwrap_err();

    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(elapsed >= ms(300) && elapsed <= ms(300) + SCHED, "took {elapsed:?}");
    assert_eq!(server.request_count(), 1);
    assert_stats(SITE, before, 1, Err(GiveUp::Deadline));
    eprintln!("Hang under a 300ms deadline -> gave up after {elapsed:?}");
}

// ---------------------------------------------------------------------------------------------------
// The server's `x-should-retry` overrides the kind.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 5, backoff = "fixed", delay = "10ms", notify = record, name = "e2e_reqwest::should_retry_false")]
async fn should_retry_false_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn x_should_retry_false_stops_a_503() {
    const SITE: &str = "e2e_reqwest::should_retry_false";
    let server = server([Fault::Status(503).with_should_retry(false), Fault::Ok]).await;
    let before = stats(SITE);

    let err = should_retry_false_call(&client(), &server.chat_completions_url()).await.unwrap_err();

    assert_eq!((err.status(), err.should_retry()), (Some(503), Some(false)));
    assert_eq!(server.request_count(), 1);
    assert_stats(SITE, before, 1, Err(GiveUp::NonRetryable));
}

#[llm_retry(max = 5, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "e2e_reqwest::should_retry_true")]
async fn should_retry_true_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn x_should_retry_true_retries_a_400() {
    const SITE: &str = "e2e_reqwest::should_retry_true";
    let server = server([Fault::Status(400).with_should_retry(true), Fault::Ok]).await;
    let before = stats(SITE);

    let out = should_retry_true_call(&client(), &server.chat_completions_url()).await;

    assert_eq!(out.expect("the retry succeeds"), REPLY);
    assert_eq!(server.request_count(), 2);
    let planned = retries(SITE);
    assert_eq!(planned.iter().map(|r| (r.kind, r.status)).collect::<Vec<_>>(), [(ErrorKind::BadRequest, Some(400))]);
    assert_stats(SITE, before, 2, Ok(()));
}

// ---------------------------------------------------------------------------------------------------
// Many calls at once: the stats add up to what the server saw.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 10, backoff = "fixed", delay = "5ms", jitter = "full", name = "e2e_reqwest::chaos")]
async fn chaos_call(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    chat(http, url).await
}

#[tokio::test]
async fn under_seeded_chaos_attempts_equal_requests() {
    const SITE: &str = "e2e_reqwest::chaos";
    const CALLS: usize = 24;
    let chaos = Chaos::seeded(4)
        .with(Fault::Status(500), 0.05)
        .with(Fault::Status(503), 0.05)
        .with(Fault::Status(529), 0.05)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::Millis(20) }, 0.05)
        .with(Fault::ResetBeforeResponse, 0.05)
        .with(Fault::ResetDuringBody, 0.05);
    let server = ChaosServer::builder().reply(REPLY).chaos(chaos).start().await;
    let (http, url) = (client(), server.chat_completions_url());
    let before = stats(SITE);

    let results = futures::future::join_all((0..CALLS).map(|_| chaos_call(&http, &url))).await;

    let after = stats(SITE);
    let requests = server.request_count() as u64;
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    assert_eq!(after.calls - before.calls, CALLS as u64);
    assert_eq!(after.attempts - before.attempts, requests, "attempts = requests the server saw");
    assert_eq!(
        after.retries - before.retries,
        requests - CALLS as u64,
        "every request after a call's first is a retry"
    );
    assert_eq!(after.successes - before.successes, ok);
    assert_eq!(after.failures() - before.failures(), CALLS as u64 - ok);
    assert!(requests > CALLS as u64, "the chaos failed some attempts");
    assert_eq!(ok, CALLS as u64, "{results:?}");
}

// ---------------------------------------------------------------------------------------------------
// The example of docs/TESTKIT.md, verbatim: keep the two equal.
// ---------------------------------------------------------------------------------------------------

mod guide {
    use llm_retry::{ApiError, GiveUp, llm_retry};
    use llm_retry_testkit::{ChaosServer, Fault, RetryAfterHeader};
    use std::time::Duration;

    #[llm_retry(max = 4, backoff = "exponential", base = "50ms", attempt_timeout = "2s", name = "app::chat")]
    async fn chat(http: &reqwest::Client, base_url: &str, prompt: &str) -> Result<String, ApiError> {
        let response = http
            .post(format!("{base_url}/chat/completions"))
            .json(&serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(ApiError::from_reqwest_response(response).await);
        }
        let body: serde_json::Value = response.json().await?;
        Ok(body["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn chat_retries_what_it_should_and_nothing_else() {
        let http = reqwest::Client::new();

        // A 429 asking for 100 ms, then a dropped connection, then (the script has run out) a 200.
        let server = ChaosServer::builder().reply("Hi!").start().await;
        server.script([Fault::RateLimited { retry_after: RetryAfterHeader::Millis(100) }, Fault::ResetBeforeResponse]);
        assert_eq!(chat(&http, &server.openai_base(), "Say hi").await.unwrap(), "Hi!");
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests[1].at - requests[0].at >= Duration::from_millis(100), "Retry-After is a floor");

        // A bad API key is sent once, never retried.
        let server = ChaosServer::builder().script([Fault::InvalidApiKey]).start().await;
        let err = chat(&http, &server.openai_base(), "Say hi").await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        assert_eq!(server.request_count(), 1);

        // The fn's stats agree with what the servers saw.
        let stats = llm_retry::stats().get("app::chat").unwrap();
        assert_eq!((stats.calls, stats.attempts, stats.successes), (2, 4, 1));
        assert_eq!(stats.gave_up(GiveUp::NonRetryable), 1);
    }
}
