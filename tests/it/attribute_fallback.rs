//! The attribute's `fallback = [...]` and `move_on = [...]` keys: each attempt goes to a target
//! of the chain, which the fn takes as a `&Target` parameter that callers do not pass; the
//! policy's attempts apply per target; a context-length error moves on at once; an open
//! breaker skips its target. All in paused time.

use llm_retry::failover::{Breaker, Target};
use llm_retry::{ApiError, ErrorKind, llm_retry};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Which target each attempt went to, per test.
fn log(calls: &Mutex<Vec<&'static str>>, target: &Target) {
    calls.lock().unwrap().push(target.name());
}

fn taken(calls: &Mutex<Vec<&'static str>>) -> Vec<&'static str> {
    std::mem::take(&mut *calls.lock().unwrap())
}

// ------------------------------------------------------------------------------------------
// The primary fails on every attempt: its retries, then the fallback.
// ------------------------------------------------------------------------------------------

static DOWN: Target = Target::new("down");
static UP: Target = Target::new("up");
static OUTAGE_CALLS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[llm_retry(fallback = [DOWN, UP], max = 3, backoff = "fixed", delay = "100ms", jitter = "none")]
async fn through_an_outage(target: &Target, prompt: &str) -> Result<String, ApiError> {
    log(&OUTAGE_CALLS, target);
    if target.name() == "down" {
        Err(ApiError::from_status(503))
    } else {
        Ok(format!("{prompt} from {}", target.name()))
    }
}

#[tokio::test(start_paused = true)]
async fn the_policys_attempts_apply_per_target_then_the_call_moves_on() {
    let start = Instant::now();
    let out = through_an_outage("hi").await.unwrap();
    assert_eq!(out, "hi from up");
    assert_eq!(taken(&OUTAGE_CALLS), ["down", "down", "down", "up"]);
    assert_eq!(start.elapsed(), Duration::from_millis(200), "two back-offs on the primary, none to move on");
}

// ------------------------------------------------------------------------------------------
// A prompt too long for the small model goes to the large one at once.
// ------------------------------------------------------------------------------------------

static SMALL: Target = Target::new("small");
static LARGE: Target = Target::new("large");
static CONTEXT_CALLS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[llm_retry(fallback = [SMALL, LARGE], deadline = "1m")]
async fn long_prompt(target: &Target) -> Result<&'static str, ApiError> {
    log(&CONTEXT_CALLS, target);
    match target.name() {
        "small" => Err(ApiError::new(ErrorKind::ContextLengthExceeded, "maximum context length is 8192 tokens")),
        name => Ok(name),
    }
}

#[tokio::test(start_paused = true)]
async fn a_context_length_error_moves_to_the_larger_model_with_no_delay() {
    let start = Instant::now();
    assert_eq!(long_prompt().await.unwrap(), "large");
    assert_eq!(taken(&CONTEXT_CALLS), ["small", "large"]);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

// ------------------------------------------------------------------------------------------
// Auth ends the call, unless `move_on` lists it.
// ------------------------------------------------------------------------------------------

static WRONG_KEY: Target = Target::new("wrong-key");
static RIGHT_KEY: Target = Target::new("right-key");
static AUTH_CALLS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn by_key(target: &Target) -> Result<&'static str, ApiError> {
    log(&AUTH_CALLS, target);
    if target.name() == "wrong-key" { Err(ApiError::from_status(401)) } else { Ok(target.name()) }
}

#[llm_retry(fallback = [WRONG_KEY, RIGHT_KEY])]
async fn auth_stops(target: &Target) -> Result<&'static str, ApiError> {
    by_key(target)
}

#[llm_retry(fallback = [WRONG_KEY, RIGHT_KEY], move_on = [Auth])]
async fn auth_moves_on(target: &Target) -> Result<&'static str, ApiError> {
    by_key(target)
}

#[tokio::test(start_paused = true)]
async fn auth_ends_the_call_unless_move_on_lists_it() {
    assert_eq!(auth_stops().await.unwrap_err().status(), Some(401));
    assert_eq!(taken(&AUTH_CALLS), ["wrong-key"]);
    assert_eq!(auth_moves_on().await.unwrap(), "right-key");
    assert_eq!(taken(&AUTH_CALLS), ["wrong-key", "right-key"]);
}

// ------------------------------------------------------------------------------------------
// An open breaker skips its target without a request.
// ------------------------------------------------------------------------------------------

static FLAKY_BREAKER: Breaker = match Breaker::builder("attribute::flaky").consecutive_failures(2).build() {
    Ok(b) => b,
    Err(e) => panic!("{}", e.message()),
};
static FLAKY: Target = Target::new("flaky").breaker(&FLAKY_BREAKER);
static STEADY: Target = Target::new("steady");
static BREAKER_CALLS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[llm_retry(fallback = [FLAKY, STEADY], max = 2, backoff = "none")]
async fn guarded(target: &Target) -> Result<&'static str, ApiError> {
    log(&BREAKER_CALLS, target);
    if target.name() == "flaky" { Err(ApiError::from_status(500)) } else { Ok(target.name()) }
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_skips_its_target() {
    assert_eq!(guarded().await.unwrap(), "steady");
    assert_eq!(taken(&BREAKER_CALLS), ["flaky", "flaky", "steady"], "two failures open the breaker");
    let start = Instant::now();
    assert_eq!(guarded().await.unwrap(), "steady");
    assert_eq!(taken(&BREAKER_CALLS), ["steady"], "no request to the open target");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(FLAKY_BREAKER.stats().refused >= 1);
}

// ------------------------------------------------------------------------------------------
// A stream along a chain: a failure before the first chunk moves on; the mode applies there.
// ------------------------------------------------------------------------------------------

static STREAM_DOWN: Target = Target::new("stream-down");
static STREAM_UP: Target = Target::new("stream-up");
static STREAM_CALLS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[llm_retry(stream = "continue", fallback = [STREAM_DOWN, STREAM_UP], max = 2, backoff = "none")]
async fn streamed(
    target: &Target,
    prompt: &str,
    resume: llm_retry::stream::Resume,
) -> Result<impl futures::Stream<Item = Result<String, ApiError>>, ApiError> {
    log(&STREAM_CALLS, target);
    if target.name() == "stream-down" {
        return Err(ApiError::from_status(503));
    }
    let from = resume.text().to_owned();
    Ok(futures::stream::iter([Ok(format!("{from}{prompt} ")), Ok(target.name().to_owned())]))
}

#[tokio::test(start_paused = true)]
async fn a_stream_moves_along_the_chain_before_its_first_chunk() {
    use futures::StreamExt;
    use llm_retry::stream::StreamEvent;
    let events: Vec<_> = streamed("hi").map(|e| e.unwrap()).collect().await;
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Chunk(c) => Some(c.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "hi stream-up");
    assert_eq!(taken(&STREAM_CALLS), ["stream-down", "stream-down", "stream-up"]);
    assert!(!events.contains(&StreamEvent::Reset));
}
