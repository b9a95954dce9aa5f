//! Cancellation safety and panics, for annotated calls.
//!
//! A call's future is dropped at each point where it can wait: inside an attempt, during a
//! back-off sleep, during a Retry-After sleep, while waiting for the limiter's token, and while a
//! batch holds its items at the shared gate. In every case:
//! - no task is left behind: the library spawns none, and the runtime's `num_alive_tasks` metric
//!   (stable since tokio 1.39) is the proof;
//! - the stats are not miscounted: the call is `cancelled`, and `finished()` equals `calls`;
//! - nothing is retried after the drop: the attempt counters and the server's record do not move
//!   while time runs on (paused time, advanced by an hour).
//!
//! A panic in the body propagates with its payload unchanged, is not retried, and is counted
//! as `panicked`.
//!
//! A streaming call (`RetryStream`) is dropped during its back-off before a reconnect, and while
//! the reconnect itself is pending.
//!
//! ```sh
//! cargo test --test it cancellation --all-features
//! ```

use futures::FutureExt;
use llm_retry::{ApiError, Limiter, Policy, RetryExt, batch::Batch, llm_retry, stats::Site, stats::SiteStats};
use llm_retry_testkit::{ChaosServer, Fault};
use reqwest::header::HeaderMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

fn site(name: &str) -> SiteStats {
    llm_retry::stats().get(name).unwrap_or_else(|| panic!("{name} was never called"))
}

/// Polls `fut` for `for_` of (paused) time, then drops it unfinished.
async fn drop_after<F: Future>(fut: F, for_: Duration) {
    assert!(tokio::time::timeout(for_, fut).await.is_err(), "the call finished before it could be dropped");
}

/// Checks the three promises after a drop: no task left, the call counted as cancelled and
/// finished, and no attempt after the drop while an hour passes.
async fn after_the_drop(name: &str, attempts: &AtomicU32) {
    assert_eq!(alive_tasks(), 0, "{name}: a task outlived the call");
    let before = (attempts.load(Ordering::SeqCst), site(name));
    tokio::time::sleep(HOUR).await;
    let after = (attempts.load(Ordering::SeqCst), site(name));
    assert_eq!(before, after, "{name}: something moved after the drop");
    let s = after.1;
    assert_eq!((s.calls, s.cancelled, s.finished()), (1, 1, 1), "{name}: {s:?}");
    assert_eq!(s.attempts, u64::from(after.0), "{name}: attempts counted vs attempts run");
    assert_eq!(alive_tasks(), 0);
}

static IN_ATTEMPT: AtomicU32 = AtomicU32::new(0);

/// A body that never answers, like a hung connection.
#[llm_retry(name = "cancel::in_attempt", max = 5, backoff = "fixed", delay = "100ms")]
async fn hangs() -> Result<(), ApiError> {
    IN_ATTEMPT.fetch_add(1, Ordering::SeqCst);
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn dropped_inside_an_attempt() {
    assert_eq!(alive_tasks(), 0);
    drop_after(hangs(), 10 * MS).await;
    assert_eq!(IN_ATTEMPT.load(Ordering::SeqCst), 1);
    after_the_drop("cancel::in_attempt", &IN_ATTEMPT).await;
}

static IN_BACKOFF: AtomicU32 = AtomicU32::new(0);

#[llm_retry(name = "cancel::in_backoff", max = 5, backoff = "fixed", delay = "100ms", jitter = "none")]
async fn fails_then_sleeps() -> Result<(), ApiError> {
    IN_BACKOFF.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::from_status(503))
}

#[tokio::test(start_paused = true)]
async fn dropped_during_a_backoff_sleep() {
    // Attempts at 0 and 100 ms; dropped halfway through the second sleep.
    drop_after(fails_then_sleeps(), 150 * MS).await;
    assert_eq!(IN_BACKOFF.load(Ordering::SeqCst), 2);
    after_the_drop("cancel::in_backoff", &IN_BACKOFF).await;
    assert_eq!(site("cancel::in_backoff").retries, 2);
}

static IN_RETRY_AFTER: AtomicU32 = AtomicU32::new(0);

#[llm_retry(name = "cancel::in_retry_after", max = 5, max_retry_after = "1h")]
async fn rate_limited() -> Result<(), ApiError> {
    IN_RETRY_AFTER.fetch_add(1, Ordering::SeqCst);
    let mut h = HeaderMap::new();
    h.insert("retry-after", "600".parse().unwrap());
    Err(ApiError::from_response(429, &h, br#"{"error":{"code":"rate_limit_exceeded"}}"#))
}

#[tokio::test(start_paused = true)]
async fn dropped_during_a_retry_after_sleep() {
    drop_after(rate_limited(), Duration::from_secs(60)).await;
    assert_eq!(IN_RETRY_AFTER.load(Ordering::SeqCst), 1);
    after_the_drop("cancel::in_retry_after", &IN_RETRY_AFTER).await;
}

/// The attribute has no `limiter` key yet, so this call is built by hand, exactly as the
/// attribute builds its own (`Call::new(&SITE)` then one `attempt` per loop turn), with the
/// limiter added.
static LIMITED: Site = Site::new("cancel::in_limiter", Policy::DEFAULT);
static LIMITER: Limiter = Limiter::new("cancel::endpoint");
static IN_LIMITER: AtomicU32 = AtomicU32::new(0);

async fn limited_call() -> Result<(), ApiError> {
    let mut call = llm_retry::call::Call::new(&LIMITED).limiter(&LIMITER);
    loop {
        let attempt = async {
            IN_LIMITER.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        if let core::ops::ControlFlow::Break(r) = call.attempt(attempt).await {
            return r;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn dropped_while_waiting_for_the_limiter() {
    make_the_next_attempt_wait(&LIMITER).await;
    let waits = LIMITER.stats().waits;

    drop_after(limited_call(), 10 * MS).await;
    assert_eq!(LIMITER.stats().waits, waits + 1, "the call did not wait for a token");
    // Its body never ran, and no attempt is counted (see `an_attempt_is_counted_when_its_body_starts`).
    assert_eq!(IN_LIMITER.load(Ordering::SeqCst), 0);
    assert_eq!(alive_tasks(), 0);
    tokio::time::sleep(HOUR).await;
    assert_eq!(IN_LIMITER.load(Ordering::SeqCst), 0, "the body ran after the drop");
    let s = LIMITED.stats();
    assert_eq!((s.calls, s.cancelled, s.finished()), (1, 1, 1), "{s:?}");
    assert_eq!(alive_tasks(), 0);
}

/// Throttles `limiter` until it gates, then spends its tokens, so that the next attempt waits.
async fn make_the_next_attempt_wait(limiter: &'static Limiter) {
    limiter.record(true);
    for _ in 0..10 {
        tokio::time::sleep(250 * MS).await;
        limiter.record(false);
    }
    limiter.record(true);
    let mut spent = 0;
    while tokio::time::timeout(Duration::ZERO, limiter.acquire()).await.is_ok() {
        spent += 1;
        assert!(spent < 10_000, "the limiter never made anyone wait");
    }
}

static QUEUED: Site = Site::new("cancel::queued_attempt", Policy::DEFAULT);
static QUEUE: Limiter = Limiter::new("cancel::queue");

/// Regression: `Call::attempt` counted the attempt before it waited for the limiter's token, so a
/// call dropped in the queue reported an attempt whose body never ran and whose request was never
/// sent, and `stats.attempts` no longer equalled the requests the provider saw.
#[tokio::test(start_paused = true)]
async fn an_attempt_is_counted_when_its_body_starts() {
    make_the_next_attempt_wait(&QUEUE).await;
    let ran = AtomicU32::new(0);
    let call = async {
        let mut call = llm_retry::call::Call::new(&QUEUED).limiter(&QUEUE);
        loop {
            let attempt = async {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<(), ApiError>(())
            };
            if let core::ops::ControlFlow::Break(r) = call.attempt(attempt).await {
                return r;
            }
        }
    };
    drop_after(call, 10 * MS).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(QUEUED.stats().attempts, 0, "an attempt that never left the limiter's queue was counted");
}

static BATCHED: Site = Site::new("cancel::batch_gate", Policy::DEFAULT);
static IN_BATCH: AtomicU32 = AtomicU32::new(0);

#[tokio::test(start_paused = true)]
async fn dropped_while_the_batch_gate_holds_its_items() {
    // Item 0 is told to come back in 100 s: the gate holds every other item's next attempt.
    let batch: Batch = Policy::DEFAULT.batch().concurrency(4).site(&BATCHED).build().unwrap();
    let op = |i: usize| async move {
        IN_BATCH.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(MS).await;
        let mut h = HeaderMap::new();
        h.insert("retry-after", "100".parse().unwrap());
        Err::<(), _>(if i == 0 { ApiError::from_response(429, &h, b"") } else { ApiError::from_status(503) })
    };
    drop_after(batch.run(0..100, op), Duration::from_secs(60)).await;
    let ran = IN_BATCH.load(Ordering::SeqCst);
    assert!(ran >= 4, "the first four items should have run: {ran}");
    assert_eq!(alive_tasks(), 0);
    tokio::time::sleep(HOUR).await;
    assert_eq!(IN_BATCH.load(Ordering::SeqCst), ran, "an item ran after the drop");
    let s = BATCHED.stats();
    assert_eq!(s.calls, 4, "only the items in flight were started: {s:?}");
    assert_eq!((s.cancelled, s.finished()), (4, 4), "{s:?}");
    assert_eq!(s.attempts, u64::from(ran));
    assert_eq!(alive_tasks(), 0);
}

const STREAM_POLICY: Policy = match Policy::builder()
    .max_attempts(5)
    .backoff(llm_retry::Backoff::Fixed { delay: Duration::from_millis(100) })
    .jitter(llm_retry::Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!(),
};
static STREAM_IN_BACKOFF: Site = Site::new("cancel::stream_backoff", STREAM_POLICY);
static STREAM_IN_REOPEN: Site = Site::new("cancel::stream_reopen", STREAM_POLICY);

type Chunks = futures::stream::Iter<std::vec::IntoIter<Result<String, ApiError>>>;

/// A stream whose first attempt delivers one chunk and then breaks; every reopen hangs.
fn breaking_stream(
    site: &'static Site,
    opens: &'static AtomicU32,
) -> impl futures::Stream<Item = Result<llm_retry::stream::StreamEvent<String>, ApiError>> {
    llm_retry::call::Call::new(site).stream(move |_resume| async move {
        if opens.fetch_add(1, Ordering::SeqCst) > 0 {
            std::future::pending::<()>().await;
        }
        let chunks: Chunks = futures::stream::iter(vec![Ok("Hel".to_owned()), Err(ApiError::connection("reset"))]);
        Ok(chunks)
    })
}

static BACKOFF_OPENS: AtomicU32 = AtomicU32::new(0);
static REOPEN_OPENS: AtomicU32 = AtomicU32::new(0);

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_before_or_during_its_reconnect() {
    use futures::StreamExt;
    for (site, opens, wait) in [
        (&STREAM_IN_BACKOFF, &BACKOFF_OPENS, 50 * MS), // inside the 100 ms back-off
        (&STREAM_IN_REOPEN, &REOPEN_OPENS, 150 * MS),  // the reopen is pending
    ] {
        let mut stream = Box::pin(breaking_stream(site, opens));
        assert!(matches!(stream.next().await, Some(Ok(llm_retry::stream::StreamEvent::Chunk(_)))));
        assert!(matches!(stream.next().await, Some(Ok(llm_retry::stream::StreamEvent::Retrying { .. }))));
        assert!(tokio::time::timeout(wait, stream.next()).await.is_err(), "the stream went on");
        drop(stream);
        let name = site.name();
        let want = if wait < 100 * MS { 1 } else { 2 };
        assert_eq!(opens.load(Ordering::SeqCst), want, "{name}");
        after_the_drop(name, opens).await;
    }
}

/// The metric does see tasks: a control for the zeros above.
#[tokio::test(start_paused = true)]
async fn the_task_metric_sees_a_spawned_task() {
    assert_eq!(alive_tasks(), 0);
    let task = tokio::spawn(tokio::time::sleep(HOUR));
    assert_eq!(alive_tasks(), 1);
    task.abort();
    let _ = task.await;
    assert_eq!(alive_tasks(), 0);
}

/// Over real TCP: a call dropped while its request hangs, and one dropped during its back-off,
/// send nothing more to the server.
#[llm_retry(name = "cancel::tcp", max = 5, backoff = "fixed", delay = "200ms", jitter = "none")]
async fn chat(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let response = http.post(url).json(&body).send().await?;
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    Ok(response.text().await?)
}

#[tokio::test]
async fn dropped_calls_over_tcp_send_nothing_more() {
    let server = ChaosServer::builder().script([Fault::Hang, Fault::Status(503)]).start().await;
    let http = reqwest::Client::new();
    let url = server.chat_completions_url();

    // In the attempt: the server holds the request.
    drop_after(chat(&http, &url), 100 * MS).await;
    assert_eq!(server.request_count(), 1);
    // In the back-off: the 503 came back, the call sleeps 200 ms.
    drop_after(chat(&http, &url), 100 * MS).await;
    assert_eq!(server.request_count(), 2);

    tokio::time::sleep(600 * MS).await;
    assert_eq!(server.request_count(), 2, "a dropped call sent another request");
    let s = site("cancel::tcp");
    assert_eq!((s.calls, s.cancelled, s.finished(), s.attempts), (2, 2, 2, 2), "{s:?}");
    server.shutdown().await;
}

/// The payload a panicking body throws: not a string, so a re-panic with a message would show.
#[derive(Debug, PartialEq)]
struct Boom(u32);

static PANICS: AtomicU32 = AtomicU32::new(0);

/// Fails once with a retryable error, then panics on the second attempt.
#[llm_retry(name = "cancel::panic", max = 5, backoff = "fixed", delay = "10ms")]
async fn panics_on_the_second_attempt() -> Result<(), ApiError> {
    if PANICS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(ApiError::from_status(503));
    }
    tokio::time::sleep(MS).await;
    std::panic::panic_any(Boom(42))
}

#[tokio::test(start_paused = true)]
async fn a_panic_propagates_with_its_payload_unretried_and_counted() {
    let caught = std::panic::AssertUnwindSafe(panics_on_the_second_attempt()).catch_unwind().await;
    let payload = caught.expect_err("the panic was swallowed");
    assert_eq!(payload.downcast_ref::<Boom>(), Some(&Boom(42)), "the payload changed");
    tokio::time::sleep(HOUR).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 2, "the panicking attempt was retried");
    let s = site("cancel::panic");
    assert_eq!((s.calls, s.panicked, s.cancelled, s.finished()), (1, 1, 0, 1), "{s:?}");
    assert_eq!((s.attempts, s.retries), (2, 1));
    assert_eq!(alive_tasks(), 0);
}

static SPAWNED_PANICS: AtomicU32 = AtomicU32::new(0);

#[llm_retry(name = "cancel::spawned_panic", max = 5)]
async fn panics_at_once() -> Result<(), ApiError> {
    SPAWNED_PANICS.fetch_add(1, Ordering::SeqCst);
    std::panic::panic_any(Boom(7))
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_spawned_call_reaches_the_join_handle() {
    let err = tokio::spawn(panics_at_once()).await.expect_err("the panic was swallowed");
    assert_eq!(err.into_panic().downcast_ref::<Boom>(), Some(&Boom(7)));
    assert_eq!(SPAWNED_PANICS.load(Ordering::SeqCst), 1);
    let s = site("cancel::spawned_panic");
    assert_eq!((s.calls, s.panicked, s.finished(), s.attempts), (1, 1, 1, 1), "{s:?}");
}

static DEADLINED: Site = Site::new("cancel::deadline_in_queue", Policy::DEFAULT);
static SLOW_QUEUE: Limiter = Limiter::new("cancel::slow_queue");

/// Regression: `Call::attempt` waited for the limiter's token before it applied the deadline (which
/// bounded only the attempt's own future), so a call with a 100 ms deadline queued behind a slow
/// limiter returned when its token came up, and even succeeded, long after its deadline.
#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_the_wait_for_the_limiter() {
    make_the_next_attempt_wait(&SLOW_QUEUE).await;
    let deadline = 100 * MS;
    let started = tokio::time::Instant::now();
    let out = async {
        let mut call = llm_retry::call::Call::new(&DEADLINED).limiter(&SLOW_QUEUE).deadline(deadline);
        loop {
            if let core::ops::ControlFlow::Break(r) = call.attempt(async { Ok::<(), ApiError>(()) }).await {
                return r;
            }
        }
    }
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed <= deadline + MS,
        "the call outlived its {deadline:?} deadline: it returned {out:?} after {elapsed:?}"
    );
    assert!(out.is_err(), "the call should have run out of time in the queue");
}
