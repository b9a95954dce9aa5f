//! Streaming retry in paused time, over in-memory streams: the three recovery modes, the Skip
//! fallback, max attempts, per-kind limits, Retry-After against the deadline, the first-chunk
//! and idle timeouts, hooks and stats, and clean cancellation.

use futures_util::StreamExt;
use llm_retry_runtime::{
    ApiError, Backoff, ErrorKind, GiveUp, Jitter, Policy, RetryEvent, RetryExt, Rule, http::RetryAfter, stats::Site,
    stream::Received, stream::Resume, stream::StreamChunk, stream::StreamEvent, stream::StreamMode,
    stream::text_deltas,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// One step of a scripted attempt's stream.
#[derive(Clone, Debug)]
enum Step {
    Chunk(&'static str),
    Fail(ApiError),
    /// Wait this long (paused time), then go on.
    Wait(Duration),
    /// Never yield again.
    Hang,
}

use Step::{Chunk, Fail, Hang, Wait};

/// One attempt: how the open goes, then the stream's steps (the stream ends after the last).
#[derive(Clone, Debug)]
enum Attempt {
    Open(Vec<Step>),
    OpenFails(ApiError),
    OpenHangs,
}

/// Counts live opener futures and streams: each holds one of these.
#[derive(Debug)]
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(n: &Arc<AtomicUsize>) -> Live {
        n.fetch_add(1, Ordering::SeqCst);
        Live(Arc::clone(n))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A scripted opener: records each `Resume`, counts live futures and streams.
#[derive(Clone)]
struct Script {
    attempts: Arc<Mutex<VecDeque<Attempt>>>,
    resumes: Arc<Mutex<Vec<Resume>>>,
    live: Arc<AtomicUsize>,
}

type Item = Result<String, ApiError>;

impl Script {
    fn new(attempts: impl IntoIterator<Item = Attempt>) -> Script {
        Script {
            attempts: Arc::new(Mutex::new(attempts.into_iter().collect())),
            resumes: Arc::default(),
            live: Arc::default(),
        }
    }

    fn resumes(&self) -> Vec<Resume> {
        self.resumes.lock().unwrap().clone()
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// The opener: `move |resume| script.open(resume)`.
    fn open(
        &self,
        resume: Resume,
    ) -> impl Future<Output = Result<futures_util::stream::BoxStream<'static, Item>, ApiError>> + use<> {
        self.resumes.lock().unwrap().push(resume);
        let attempt = self.attempts.lock().unwrap().pop_front().unwrap_or(Attempt::Open(vec![Chunk("(extra)")]));
        let live = Arc::clone(&self.live);
        let guard = Live::new(&live);
        async move {
            let _guard = guard;
            match attempt {
                Attempt::OpenFails(e) => Err(e),
                Attempt::OpenHangs => std::future::pending().await,
                Attempt::Open(steps) => {
                    let stream_guard = Live::new(&live);
                    let steps: VecDeque<Step> = steps.into();
                    let s = futures_util::stream::unfold((steps, stream_guard), |(mut steps, g)| async move {
                        loop {
                            match steps.pop_front()? {
                                Chunk(t) => return Some((Ok(t.to_owned()), (steps, g))),
                                Fail(e) => return Some((Err(e), (steps, g))),
                                Wait(d) => tokio::time::sleep(d).await,
                                Hang => std::future::pending::<()>().await,
                            }
                        }
                    });
                    Ok(s.boxed())
                }
            }
        }
    }
}

/// Events as short strings, for whole-sequence comparisons.
fn show(ev: &StreamEvent<String>) -> String {
    match ev {
        StreamEvent::Chunk(c) => format!("chunk {c:?}"),
        StreamEvent::Retrying { attempt, received, kind, delay, .. } => {
            format!(
                "retrying #{attempt} after {} chunks/{} chars, {kind}, in {delay:?}",
                received.chunks, received.chars
            )
        }
        StreamEvent::Reset => "reset".to_owned(),
    }
}

/// Collects events (as strings) and the final error, if any.
async fn run<S>(stream: S) -> (Vec<String>, Option<ApiError>)
where
    S: futures_util::Stream<Item = Result<StreamEvent<String>, ApiError>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => out.push(show(&ev)),
            Err(e) => {
                assert!(stream.next().await.is_none(), "an error ends the stream");
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

/// The text a consumer ends with: chunks appended, cleared at each Reset.
fn final_text(events: &[String]) -> String {
    let mut text = String::new();
    for e in events {
        if let Some(c) = e.strip_prefix("chunk ") {
            text.push_str(c.trim_matches('"'));
        } else if e == "reset" {
            text.clear();
        }
    }
    text
}

/// 4 attempts, a fixed 1 s backoff, no jitter: delays are exact.
const POLICY: Policy = match Policy::builder()
    .max_attempts(4)
    .backoff(Backoff::Fixed { delay: Duration::from_secs(1) })
    .jitter(Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!("invalid policy"),
};

fn reset() -> ApiError {
    ApiError::connection("connection reset by peer")
}

#[tokio::test(start_paused = true)]
async fn continue_hands_the_text_so_far_to_the_opener_and_reads_seamlessly() {
    let script = Script::new([
        Attempt::Open(vec![Chunk("The "), Chunk("quick "), Fail(reset())]),
        Attempt::OpenFails(ApiError::from_status(503)),
        Attempt::Open(vec![Chunk("brown "), Chunk("fox")]),
    ]);
    let s = script.clone();
    let (events, err) = run(POLICY.stream(move |r| s.open(r)).mode(StreamMode::Continue)).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        [
            "chunk \"The \"",
            "chunk \"quick \"",
            "retrying #1 after 2 chunks/10 chars, Connection, in 1s",
            "retrying #2 after 2 chunks/10 chars, Server, in 1s",
            "chunk \"brown \"",
            "chunk \"fox\"",
        ]
    );
    let texts: Vec<(u32, String)> = script.resumes().iter().map(|r| (r.attempt(), r.text().to_owned())).collect();
    assert_eq!(texts, [(1, "".into()), (2, "The quick ".into()), (3, "The quick ".into())]);
    assert_eq!(script.resumes()[2].received().chunks, 2);
    assert_eq!(final_text(&events), "The quick brown fox");
}

#[tokio::test(start_paused = true)]
async fn restart_emits_reset_just_before_the_new_text_and_keeps_no_text() {
    let script = Script::new([
        Attempt::Open(vec![Chunk("Hel"), Fail(reset())]),
        Attempt::Open(vec![Fail(reset())]), // fails before its first chunk: still owes the Reset
        Attempt::Open(vec![Chunk("Hello"), Chunk(" world")]),
    ]);
    let s = script.clone();
    let (events, err) = run(POLICY.stream(move |r| s.open(r))).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        [
            "chunk \"Hel\"",
            "retrying #1 after 1 chunks/3 chars, Connection, in 1s",
            "retrying #2 after 1 chunks/3 chars, Connection, in 1s",
            "reset",
            "chunk \"Hello\"",
            "chunk \" world\"",
        ]
    );
    assert!(script.resumes().iter().all(|r| r.text().is_empty()), "Restart hands no text");
}

#[tokio::test(start_paused = true)]
async fn restart_without_delivered_text_sends_no_reset() {
    let script = Script::new([Attempt::Open(vec![Fail(reset())]), Attempt::Open(vec![Chunk("ok")])]);
    let s = script.clone();
    let (events, _) = run(POLICY.stream(move |r| s.open(r))).await;
    assert_eq!(events, ["retrying #1 after 0 chunks/0 chars, Connection, in 1s", "chunk \"ok\""]);
}

#[tokio::test(start_paused = true)]
async fn restart_owes_a_reset_even_to_an_empty_replay() {
    let script = Script::new([Attempt::Open(vec![Chunk("partial"), Fail(reset())]), Attempt::Open(vec![])]);
    let s = script.clone();
    let (events, _) = run(POLICY.stream(move |r| s.open(r))).await;
    assert_eq!(events.last().map(String::as_str), Some("reset"));
    assert_eq!(final_text(&events), "");
}

#[tokio::test(start_paused = true)]
async fn skip_drops_the_replayed_prefix_even_when_chunked_differently() {
    let script = Script::new([
        Attempt::Open(vec![Chunk("Hel"), Chunk("lo w"), Fail(reset())]),
        // Fails again while the prefix is still being checked.
        Attempt::Open(vec![Chunk("He"), Fail(reset())]),
        Attempt::Open(vec![Chunk("H"), Chunk("ello"), Chunk(" wor"), Chunk("ld"), Chunk("!")]),
    ]);
    let s = script.clone();
    let (events, err) = run(POLICY.stream(move |r| s.open(r)).mode(StreamMode::Skip)).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        [
            "chunk \"Hel\"",
            "chunk \"lo w\"",
            "retrying #1 after 2 chunks/7 chars, Connection, in 1s",
            "retrying #2 after 2 chunks/7 chars, Connection, in 1s",
            "chunk \"or\"",
            "chunk \"ld\"",
            "chunk \"!\"",
        ]
    );
    assert_eq!(final_text(&events), "Hello world!");
    assert!(script.resumes().iter().all(|r| r.text().is_empty()), "Skip sends the same request");
}

#[tokio::test(start_paused = true)]
async fn skip_falls_back_to_reset_when_the_replay_differs() {
    let script = Script::new([
        Attempt::Open(vec![Chunk("Hello"), Chunk(" there"), Fail(reset())]),
        // Not deterministic after all: matches "Hello", then differs.
        Attempt::Open(vec![Chunk("Hel"), Chunk("lo"), Chunk(" world"), Chunk("!")]),
    ]);
    let s = script.clone();
    let (events, err) = run(POLICY.stream(move |r| s.open(r)).mode(StreamMode::Skip)).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        [
            "chunk \"Hello\"",
            "chunk \" there\"",
            "retrying #1 after 2 chunks/11 chars, Connection, in 1s",
            "reset",
            "chunk \"Hel\"",
            "chunk \"lo\"",
            "chunk \" world\"",
            "chunk \"!\"",
        ]
    );
    assert_eq!(final_text(&events), "Hello world!");
}

#[tokio::test(start_paused = true)]
async fn skip_resets_to_a_replay_that_ends_shorter() {
    let script =
        Script::new([Attempt::Open(vec![Chunk("Hello world"), Fail(reset())]), Attempt::Open(vec![Chunk("Hello")])]);
    let s = script.clone();
    let (events, _) = run(POLICY.stream(move |r| s.open(r)).mode(StreamMode::Skip)).await;
    assert_eq!(&events[1..], ["retrying #1 after 1 chunks/11 chars, Connection, in 1s", "reset", "chunk \"Hello\""]);
}

#[tokio::test(start_paused = true)]
async fn skip_splits_multibyte_text_on_char_boundaries() {
    let script = Script::new([
        Attempt::Open(vec![Chunk("héllo "), Fail(reset())]),
        Attempt::Open(vec![Chunk("hé"), Chunk("llo wörld ✓")]),
    ]);
    let s = script.clone();
    let (events, _) = run(POLICY.stream(move |r| s.open(r)).mode(StreamMode::Skip)).await;
    assert_eq!(final_text(&events), "héllo wörld ✓");
    assert_eq!(events.last().unwrap(), "chunk \"wörld ✓\"");
}

#[tokio::test(start_paused = true)]
async fn max_attempts_holds_and_the_last_error_ends_the_stream() {
    let script = Script::new((0..10).map(|_| Attempt::Open(vec![Chunk("x"), Fail(reset())])));
    let s = script.clone();
    let start = Instant::now();
    let (events, err) = run(POLICY.stream(move |r| s.open(r))).await;
    assert_eq!(err.unwrap().kind(), ErrorKind::Connection);
    assert_eq!(script.resumes().len(), 4);
    assert_eq!(events.iter().filter(|e| e.starts_with("retrying")).count(), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_end_the_stream_at_once() {
    let script = Script::new([Attempt::Open(vec![Chunk("a"), Fail(ApiError::from_status(401))])]);
    let s = script.clone();
    let (events, err) = run(POLICY.stream(move |r| s.open(r)).mode(StreamMode::Continue)).await;
    assert_eq!(events, ["chunk \"a\""]);
    assert_eq!(err.unwrap().kind(), ErrorKind::Auth);
}

#[tokio::test(start_paused = true)]
async fn per_kind_limits_apply() {
    let policy = Policy::builder()
        .max_attempts(10)
        .backoff(Backoff::None)
        .rule(Rule::kind(ErrorKind::Connection).max_attempts(2))
        .build()
        .unwrap();
    let script = Script::new((0..10).map(|_| Attempt::Open(vec![Fail(reset())])));
    let s = script.clone();
    let (_, err) = run(policy.stream(move |r| s.open(r))).await;
    assert_eq!(err.unwrap().kind(), ErrorKind::Connection);
    assert_eq!(script.resumes().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn first_chunk_timeout_covers_the_open_and_the_first_chunk() {
    let script = Script::new([
        Attempt::OpenHangs,
        Attempt::Open(vec![Wait(Duration::from_secs(10)), Chunk("late")]),
        Attempt::Open(vec![Wait(Duration::from_secs(4)), Chunk("in time"), Wait(Duration::from_secs(60)), Chunk("!")]),
    ]);
    let s = script.clone();
    let start = Instant::now();
    let (events, err) = run(POLICY.stream(move |r| s.open(r)).first_chunk_timeout(Duration::from_secs(5))).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        events,
        [
            "retrying #1 after 0 chunks/0 chars, Timeout, in 1s",
            "retrying #2 after 0 chunks/0 chars, Timeout, in 1s",
            "chunk \"in time\"",
            "chunk \"!\"", // no idle timeout: a minute between chunks is fine
        ]
    );
    // 5 s + 1 s, 5 s + 1 s, then 4 s + 60 s.
    assert_eq!(start.elapsed(), Duration::from_secs(76));
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_bounds_the_silence_between_chunks() {
    let script = Script::new([
        Attempt::Open(vec![Chunk("a"), Wait(Duration::from_secs(2)), Chunk("b"), Hang]),
        Attempt::Open(vec![Wait(Duration::from_secs(20)), Chunk("c")]), // the first chunk may be slow
    ]);
    let s = script.clone();
    let start = Instant::now();
    let stream = POLICY.stream(move |r| s.open(r)).mode(StreamMode::Continue).idle_timeout(Duration::from_secs(3));
    let (events, err) = run(stream).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        ["chunk \"a\"", "chunk \"b\"", "retrying #1 after 2 chunks/2 chars, Timeout, in 1s", "chunk \"c\""]
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2 + 3 + 1 + 20));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_a_read_short_and_gives_up() {
    static SITE: Site = Site::new("stream::deadline", POLICY);
    let script = Script::new([Attempt::Open(vec![Chunk("a"), Fail(reset())]), Attempt::Open(vec![Chunk("b"), Hang])]);
    let s = script.clone();
    let start = Instant::now();
    let stream = POLICY.call().site(&SITE).deadline(Duration::from_secs(30)).stream(move |r| s.open(r));
    let (events, err) = run(stream).await;
    assert_eq!(
        events,
        ["chunk \"a\"", "retrying #1 after 1 chunks/1 chars, Connection, in 1s", "reset", "chunk \"b\""]
    );
    let err = err.unwrap();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), Duration::from_secs(30), "no read crosses the deadline");
    assert_eq!(SITE.stats().gave_up(GiveUp::Deadline), 1);
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_also_bounds_an_open_that_hangs() {
    let script = Script::new([Attempt::OpenHangs]);
    let s = script.clone();
    let start = Instant::now();
    let stream = POLICY
        .call()
        .deadline(Duration::from_secs(8))
        .stream(move |r| s.open(r))
        .first_chunk_timeout(Duration::from_secs(20)); // longer than the deadline: the deadline wins
    let (events, err) = run(stream).await;
    assert!(events.is_empty());
    assert_eq!(err.unwrap().kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), Duration::from_secs(8));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_never_sleeps_past_the_deadline() {
    let rate_limited = |secs| ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(secs)));

    // A 2 s hint within a 10 s deadline: waited, plus at most a tenth of it as jitter.
    let script = Script::new([Attempt::OpenFails(rate_limited(2)), Attempt::Open(vec![Chunk("ok")])]);
    let s = script.clone();
    let start = Instant::now();
    let (events, err) = run(POLICY.call().deadline(Duration::from_secs(10)).stream(move |r| s.open(r))).await;
    assert!(err.is_none());
    assert_eq!(events.len(), 2);
    let slept = start.elapsed();
    assert!(slept >= Duration::from_secs(2) && slept <= Duration::from_millis(2200), "{slept:?}");

    // A 20 s hint with a 10 s deadline: given up at once, without sleeping.
    static SITE: Site = Site::new("stream::retry_after", POLICY);
    let script = Script::new([Attempt::Open(vec![Chunk("a"), Fail(rate_limited(20))]), Attempt::Open(vec![])]);
    let s = script.clone();
    let start = Instant::now();
    let stream = POLICY.call().site(&SITE).deadline(Duration::from_secs(10)).stream(move |r| s.open(r));
    let (events, err) = run(stream).await;
    assert_eq!(events, ["chunk \"a\""]);
    assert_eq!(err.unwrap().kind(), ErrorKind::RateLimited);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(script.resumes().len(), 1);
    assert_eq!(SITE.stats().gave_up(GiveUp::Deadline), 1);
}

#[tokio::test(start_paused = true)]
async fn hooks_and_stats_see_every_retry() {
    static SITE: Site = Site::new("stream::hooks", POLICY);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let script = Script::new([
        Attempt::Open(vec![Chunk("a"), Fail(reset())]),
        Attempt::OpenFails(ApiError::from_status(529)),
        Attempt::Open(vec![Chunk("b")]),
    ]);
    let s = script.clone();
    let stream = POLICY
        .call()
        .site(&SITE)
        .notify(move |ev: &RetryEvent<'_, ApiError>| seen2.lock().unwrap().push((ev.attempt, ev.kind)))
        .stream(move |r| s.open(r))
        .mode(StreamMode::Continue);
    let (_, err) = run(stream).await;
    assert!(err.is_none());
    assert_eq!(*seen.lock().unwrap(), [(1, ErrorKind::Connection), (2, ErrorKind::Overloaded)]);
    let st = SITE.stats();
    assert_eq!((st.calls, st.attempts, st.retries, st.successes), (1, 3, 2, 1));
    assert_eq!(st.slept, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_during_a_sleep_leaves_nothing_behind() {
    static SITE: Site = Site::new("stream::drop_sleep", POLICY);
    let script = Script::new([Attempt::Open(vec![Chunk("a"), Fail(reset())]), Attempt::Open(vec![Chunk("b")])]);
    let s = script.clone();
    let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let stream = POLICY.call().site(&SITE).stream(move |r| s.open(r));
    let mut stream = Box::pin(stream);
    assert!(matches!(stream.next().await, Some(Ok(StreamEvent::Chunk(_)))));
    assert!(matches!(stream.next().await, Some(Ok(StreamEvent::Retrying { .. }))));
    // Now sleeping before attempt 2: the first attempt's stream is already gone.
    assert_eq!(script.live(), 0);
    assert!(tokio::time::timeout(Duration::from_millis(500), stream.next()).await.is_err());
    drop(stream);
    assert_eq!(script.live(), 0);
    assert_eq!(script.resumes().len(), 1, "no reconnect after the drop");
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), tasks_before);
    assert_eq!(SITE.stats().cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_during_a_reconnect_drops_the_opener_future() {
    let script = Script::new([Attempt::Open(vec![Chunk("a"), Fail(reset())]), Attempt::OpenHangs]);
    let s = script.clone();
    let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let mut stream = Box::pin(POLICY.stream(move |r| s.open(r)).mode(StreamMode::Continue));
    let mut n = 0;
    while n < 2 {
        stream.next().await;
        n += 1;
    }
    // Past the 1 s sleep, attempt 2's open hangs.
    assert!(tokio::time::timeout(Duration::from_secs(5), stream.next()).await.is_err());
    assert_eq!(script.resumes().len(), 2);
    assert_eq!(script.live(), 1, "the hanging opener future");
    drop(stream);
    assert_eq!(script.live(), 0);
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), tasks_before);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_mid_read_drops_the_inner_stream() {
    let script = Script::new([Attempt::Open(vec![Chunk("a"), Hang])]);
    let s = script.clone();
    let mut stream = Box::pin(POLICY.stream(move |r| s.open(r)));
    stream.next().await;
    assert!(tokio::time::timeout(Duration::from_secs(5), stream.next()).await.is_err());
    assert_eq!(script.live(), 1, "the open stream (its opener future is done)");
    drop(stream);
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn texts_and_collect_text() {
    let attempts = [Attempt::Open(vec![Chunk("Hel"), Fail(reset())]), Attempt::Open(vec![Chunk("lo")])];
    let s = Script::new(attempts.clone());
    let texts = POLICY.stream(move |r| s.open(r)).mode(StreamMode::Continue).texts();
    let mut texts = std::pin::pin!(texts);
    let mut parts = Vec::new();
    while let Some(t) = texts.next().await {
        parts.push(t.unwrap());
    }
    assert_eq!(parts, ["Hel", "lo"]);
    assert!(!texts.was_reset());

    // Restart: the live text cannot be taken back, but `was_reset` says so; `collect_text` is right.
    let restart = [Attempt::Open(vec![Chunk("Hel"), Fail(reset())]), Attempt::Open(vec![Chunk("Hello")])];
    let s = Script::new(restart.clone());
    let texts = POLICY.stream(move |r| s.open(r)).texts();
    let mut texts = std::pin::pin!(texts);
    while texts.next().await.is_some() {}
    assert!(texts.was_reset());
    let s = Script::new(restart);
    assert_eq!(POLICY.stream(move |r| s.open(r)).collect_text().await.unwrap(), "Hello");
}

/// A chunk type that reports tokens.
#[derive(Debug, Clone, PartialEq)]
struct Delta {
    text: String,
    tokens: Option<u64>,
}

impl StreamChunk for Delta {
    fn text(&self) -> &str {
        &self.text
    }
    fn tokens(&self) -> Option<u64> {
        self.tokens
    }
    fn skip_prefix(self, bytes: usize) -> Self {
        Delta { text: self.text.get(bytes..).unwrap_or("").to_owned(), tokens: None }
    }
}

#[tokio::test(start_paused = true)]
async fn received_counts_chunks_chars_and_tokens() {
    let mut n = 0;
    let stream = POLICY.stream(move |_| {
        n += 1;
        let items: Vec<Result<Delta, ApiError>> = if n == 1 {
            vec![
                Ok(Delta { text: "añb".into(), tokens: Some(2) }),
                Ok(Delta { text: "c".into(), tokens: None }),
                Err(reset()),
            ]
        } else {
            vec![Ok(Delta { text: "d".into(), tokens: Some(1) })]
        };
        async move { Ok::<_, ApiError>(futures_util::stream::iter(items)) }
    });
    let mut stream = std::pin::pin!(stream.mode(StreamMode::Continue));
    let mut retrying = None;
    while let Some(ev) = stream.next().await {
        if let StreamEvent::Retrying { received, .. } = ev.unwrap() {
            retrying = Some(received);
        }
    }
    let r: Received = retrying.unwrap();
    assert_eq!((r.chunks, r.chars, r.tokens), (2, 4, Some(2)));
    assert_eq!(stream.received().tokens, Some(3));
}

#[tokio::test(start_paused = true)]
async fn an_sse_error_event_after_a_200_is_retried_like_any_error() {
    let mut n = 0;
    let stream = POLICY.stream(move |_| {
        n += 1;
        let body: Vec<Result<&'static str, ApiError>> = if n == 1 {
            vec![
                Ok("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"),
                Ok("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"),
            ]
        } else {
            vec![Ok("data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n")]
        };
        async move { Ok::<_, ApiError>(text_deltas(futures_util::stream::iter(body))) }
    });
    let (events, err) = run(stream.mode(StreamMode::Continue)).await;
    assert!(err.is_none());
    assert_eq!(events[1], "retrying #1 after 1 chunks/3 chars, Overloaded, in 1s");
    assert_eq!(final_text(&events), "Hello");
}

#[tokio::test(start_paused = true)]
async fn an_sse_body_cut_before_done_is_a_connection_error() {
    let body = vec![Ok::<_, ApiError>("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\nda")];
    let out: Vec<_> = text_deltas(futures_util::stream::iter(body)).collect().await;
    assert_eq!(out[0].as_deref().unwrap(), "Hel");
    assert_eq!(out[1].as_ref().unwrap_err().kind(), ErrorKind::Connection);
    assert_eq!(out.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn sse_events_split_across_network_chunks_and_crlf() {
    let raw = "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"wörld\"}}\r\n\r\n: ping\r\n\r\nevent: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";
    let bytes = raw.as_bytes();
    // One byte at a time: lines, events and UTF-8 sequences all straddle chunks.
    let body = futures_util::stream::iter(bytes.chunks(1).map(|b| Ok::<_, ApiError>(b.to_vec())));
    let out: Vec<_> = text_deltas(body).collect().await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_deref().unwrap(), "wörld");
}

/// Polls a stream that never waits to its end, with no runtime at all.
fn drain<S: futures_util::Stream>(s: S) -> usize {
    let mut s = std::pin::pin!(s);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut n = 0;
    loop {
        match s.as_mut().poll_next(&mut cx) {
            std::task::Poll::Ready(Some(_)) => n += 1,
            std::task::Poll::Ready(None) => return n,
            std::task::Poll::Pending => panic!("nothing here waits"),
        }
    }
}

#[test]
fn the_success_path_allocates_nothing_and_reads_no_clock() {
    static SITE: Site = Site::new("stream::alloc", POLICY);
    let open = |_: Resume| {
        std::future::ready(Ok::<_, ApiError>(futures_util::stream::iter([Ok::<&str, ApiError>("Hel"), Ok("lo")])))
    };
    // No tokio runtime here: a clock read or a timer would panic.
    assert_eq!(drain(POLICY.call().site(&SITE).stream(open)), 2); // warm-up: registers the site
    for mode in [StreamMode::Restart, StreamMode::Continue, StreamMode::Skip] {
        let info = allocation_counter::measure(|| {
            assert_eq!(drain(POLICY.call().site(&SITE).stream(open).mode(mode)), 2);
        });
        // Continue and Skip keep the text so far: one buffer, grown as chunks arrive.
        let budget = if mode == StreamMode::Restart { 0 } else { 2 };
        assert!(info.count_total <= budget, "{mode:?}: {} allocations", info.count_total);
    }
}

/// Polls a stream that never waits to its end, with no runtime, keeping each item as text:
/// `ok <delta>` or `err <kind>: <message>`.
fn sse_items<S: futures_util::Stream<Item = Result<String, ApiError>>>(s: S) -> Vec<String> {
    let mut s = std::pin::pin!(s);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    loop {
        match s.as_mut().poll_next(&mut cx) {
            std::task::Poll::Ready(Some(Ok(t))) => out.push(format!("ok {t}")),
            std::task::Poll::Ready(Some(Err(e))) => {
                out.push(format!("err {}: {}", e.kind(), e.message().unwrap_or("")))
            }
            std::task::Poll::Ready(None) => return out,
            std::task::Poll::Pending => panic!("nothing here waits"),
        }
    }
}

/// The SSE bytes of `chunks`, one network chunk each, through `text_deltas`.
fn sse_deltas<C: AsRef<[u8]>>(chunks: impl IntoIterator<Item = C>) -> Vec<String> {
    let chunks: Vec<Result<Vec<u8>, ApiError>> = chunks.into_iter().map(|c| Ok(c.as_ref().to_vec())).collect();
    sse_items(text_deltas(futures_util::stream::iter(chunks)))
}

/// An OpenAI chat-completion delta line carrying `text`, with no line end.
fn openai_delta(text: &str) -> String {
    format!("data: {}", serde_json::json!({"choices": [{"delta": {"content": text}}]}))
}

#[test]
fn sse_lines_may_end_in_a_bare_cr() {
    let body = format!("{}\r\r: ping\r\r{}\r\rdata: [DONE]\r\r", openai_delta("Hel"), openai_delta("lo"));
    // Whole, and cut every 1, 2 and 3 bytes.
    for size in [body.len(), 1, 2, 3] {
        assert_eq!(sse_deltas(body.as_bytes().chunks(size)), ["ok Hel", "ok lo"], "chunks of {size}");
    }
}

#[test]
fn sse_a_crlf_split_between_chunks_is_one_line_end() {
    // One event whose JSON spans two data lines (joined by "\n"): if the "\n" after a chunk's
    // final "\r" counted as a second line end, that empty line would cut the event in two and
    // neither half would parse.
    let chunks = [
        "data: {\"choices\":[{\"delta\":\r",
        "\ndata: {\"content\":\"x\"}}]}\r",
        "\n\r",
        "\ndata: [DONE]\r",
        "\n\r",
        "\n",
    ];
    assert_eq!(sse_deltas(chunks), ["ok x"]);
    // A "\r" at a chunk's end followed by anything else is a line end of its own.
    let chunks = [format!("{}\r", openai_delta("a")), "\r".into(), "data: [DONE]\r".into(), "\r".into()];
    assert_eq!(sse_deltas(chunks), ["ok a"]);
}

#[test]
fn sse_an_event_of_many_data_lines_over_the_bound_is_an_error() {
    // 2,100 lines of 1 kB of data and no blank line: an event of 2 MiB that never ends.
    let line = format!("data: {}\n", "x".repeat(1000));
    let pulled = AtomicUsize::new(0);
    let chunks = futures_util::stream::iter(std::iter::repeat_n(line, 2100))
        .inspect(|_| {
            pulled.fetch_add(1, Ordering::Relaxed);
        })
        .map(Ok::<_, ApiError>);
    let out = sse_items(text_deltas(chunks));
    assert_eq!(out, ["err Other: an SSE event's data is longer than 1 MiB"]);
    // It stops reading at the bound, not at the end of the body.
    let pulled = pulled.into_inner();
    assert!((1040..1060).contains(&pulled), "{pulled} chunks read");
}

/// Any valid SSE body yields the same deltas whatever its line ends (`\n`, `\r\n` or `\r`, mixed)
/// and however it is cut into network chunks.
mod sse_props {
    use super::{openai_delta, sse_deltas};
    use proptest::prelude::*;

    /// One SSE event, as its lines (no line ends) and the delta it yields.
    fn event() -> impl Strategy<Value = (Vec<String>, Option<String>)> {
        let text = "\\PC{0,12}";
        prop_oneof![
            text.prop_map(|t| (vec![openai_delta(&t)], Some(t).filter(|t| !t.is_empty()))),
            text.prop_map(|t| {
                let data = serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}});
                (vec!["event: content_block_delta".into(), format!("data: {data}")], Some(t).filter(|t| !t.is_empty()))
            }),
            // The same OpenAI delta spread over three data lines.
            text.prop_map(|t| {
                let content = serde_json::Value::from(t.as_str());
                let lines = vec!["data: {\"choices\":".into(), format!("data:[{{\"delta\":{{\"content\":{content}}}}}"), "data: ]}".into()];
                (lines, Some(t).filter(|t| !t.is_empty()))
            }),
            Just((vec![": keep-alive".into()], None)),
            Just((vec!["event: ping".into(), "data: {\"type\":\"ping\"}".into(), "id: 7".into(), "retry: 100".into()], None)),
        ]
    }

    proptest! {
        #[test]
        fn any_line_ends_and_chunk_cuts_yield_the_same_deltas(
            events in prop::collection::vec(event(), 0..8),
            ends in prop::collection::vec(0..3usize, 64),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut lines: Vec<String> = Vec::new();
            let mut want = Vec::new();
            for (event, delta) in events {
                lines.extend(event);
                lines.push(String::new());
                want.extend(delta.map(|t| format!("ok {t}")));
            }
            lines.extend(["data: [DONE]".into(), String::new()]);

            let plain: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let mut mixed = String::new();
            let mut last = "\n";
            for (i, line) in lines.iter().enumerate() {
                let mut end = ["\n", "\r\n", "\r"][ends[i % ends.len()]];
                // "\r" then an empty line ended by "\n" reads as one "\r\n": a different body.
                if last == "\r" && line.is_empty() && end == "\n" {
                    end = "\r\n";
                }
                mixed.push_str(line);
                mixed.push_str(end);
                last = end;
            }
            let bytes = mixed.as_bytes();
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            at.extend([0, bytes.len()]);
            at.sort_unstable();
            let chunks: Vec<&[u8]> = at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();

            prop_assert_eq!(&sse_deltas([plain.as_bytes()]), &want);
            prop_assert_eq!(sse_deltas(chunks), want);
        }
    }
}
