//! Streams along a fallback chain, in paused time, over scripted in-memory streams.
//!
//! - Before the first chunk, a stream moves on as a plain call does: ContextLengthExceeded and
//!   QuotaExhausted at once, retryable kinds once the policy's attempts on the target are
//!   spent, Auth and BadRequest end it unless listed with `move_on`, an open breaker is
//!   skipped, and no target left ends it with "circuit open".
//! - In the middle, the policy's attempts on the target come first, then the mode's rule on the
//!   next target: Continue re-opens with the text so far, Skip checks the replay (and falls
//!   back to a `Reset` when the other model's text differs), Restart sends a `Reset` before
//!   the new text.
//! - The breaker sees a stream attempt as one attempt: a completed stream is a success (and
//!   closes a half-open breaker), a failure in the middle counts; the probe lasts the whole
//!   stream, and a dropped stream releases it.
//! - The first-chunk and idle timeouts and the deadline keep working along a chain.
//! - A chained stream that succeeds on its first target allocates nothing and reads no clock.
//!
//! `cargo test -p llm-retry-runtime --all-features --test it stream_failover::`

use futures_util::StreamExt;
use llm_retry_runtime::failover::{Breaker, BreakerState, Fallback, Target};
use llm_retry_runtime::{
    ApiError, Backoff, ErrorKind, GiveUp, Jitter, Policy, RetryExt, stats::Site, stream::Resume, stream::StreamEvent,
    stream::StreamMode,
};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One step of a scripted attempt's stream.
#[derive(Clone, Debug)]
enum Step {
    Chunk(&'static str),
    Fail(ApiError),
    /// Never yield again.
    Hang,
}

use Step::{Chunk, Fail, Hang};

/// One attempt: how the open goes, then the stream's steps (the stream ends after the last).
#[derive(Clone, Debug)]
enum Attempt {
    Open(Vec<Step>),
    OpenFails(ApiError),
    OpenHangs,
}

/// Counts live opener futures and streams: each holds one of these.
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

/// A scripted opener per target: records which target each attempt went to, with its
/// `Resume`, and counts live futures and streams.
#[derive(Clone, Default)]
struct Script {
    attempts: Arc<Mutex<HashMap<&'static str, VecDeque<Attempt>>>>,
    opened: Arc<Mutex<Vec<(&'static str, String)>>>,
    live: Arc<AtomicUsize>,
}

type Item = Result<String, ApiError>;

impl Script {
    fn new(per_target: impl IntoIterator<Item = (&'static str, Vec<Attempt>)>) -> Script {
        let s = Script::default();
        s.attempts.lock().unwrap().extend(per_target.into_iter().map(|(t, a)| (t, a.into())));
        s
    }

    /// Each attempt's target and the text it was asked to continue.
    fn opened(&self) -> Vec<(&'static str, String)> {
        self.opened.lock().unwrap().clone()
    }

    /// The targets in the order the attempts went to them.
    fn order(&self) -> Vec<&'static str> {
        self.opened().into_iter().map(|(t, _)| t).collect()
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// The opener: `move |target, resume| script.open(target, resume)`.
    fn open(
        &self,
        target: &'static Target,
        resume: Resume,
    ) -> impl Future<Output = Result<futures_util::stream::BoxStream<'static, Item>, ApiError>> + use<> {
        self.opened.lock().unwrap().push((target.name(), resume.text().to_owned()));
        let attempt = self
            .attempts
            .lock()
            .unwrap()
            .get_mut(target.name())
            .and_then(VecDeque::pop_front)
            .unwrap_or(Attempt::Open(vec![Chunk("(extra)")]));
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
                        match steps.pop_front()? {
                            Chunk(t) => Some((Ok(t.to_owned()), (steps, g))),
                            Fail(e) => Some((Err(e), (steps, g))),
                            Hang => std::future::pending().await,
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
        StreamEvent::Retrying { attempt, received, kind, delay, target, moving_on, .. } => {
            let on = target.map_or("-", Target::name);
            let chunks = received.chunks;
            if *moving_on {
                assert_eq!(*delay, Duration::ZERO, "moving on has no back-off");
                format!("#{attempt} {kind} on {on} after {chunks} chunks: moving on")
            } else {
                format!("#{attempt} {kind} on {on} after {chunks} chunks: retry in {delay:?}")
            }
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

/// 2 attempts per target, a fixed 1 s backoff, no jitter: delays are exact.
const POLICY: Policy = match Policy::builder()
    .max_attempts(2)
    .backoff(Backoff::Fixed { delay: Duration::from_secs(1) })
    .jitter(Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!("invalid policy"),
};

const fn chain(targets: &'static [&'static Target]) -> Fallback<'static> {
    match Fallback::new(targets) {
        Ok(c) => c,
        Err(_) => panic!("no targets"),
    }
}

const fn breaker(name: &'static str, consecutive: u32) -> Breaker {
    match Breaker::builder(name).consecutive_failures(consecutive).cooldown(Duration::from_secs(30)).build() {
        Ok(b) => b,
        Err(_) => panic!("invalid breaker"),
    }
}

fn reset() -> ApiError {
    ApiError::connection("connection reset by peer")
}

fn quota() -> ApiError {
    ApiError::from_status(402)
}

static A: Target = Target::new("a");
static B: Target = Target::new("b");
static AB: Fallback<'static> = chain(&[&A, &B]);

#[tokio::test(start_paused = true)]
async fn context_length_and_quota_before_the_first_chunk_move_on_at_once() {
    for (error, kind) in [
        (
            ApiError::new(ErrorKind::ContextLengthExceeded, "maximum context length is 8192 tokens"),
            "ContextLengthExceeded",
        ),
        (quota(), "QuotaExhausted"),
    ] {
        let script = Script::new([
            ("a", vec![Attempt::OpenFails(error)]),
            ("b", vec![Attempt::Open(vec![Chunk("Hel"), Chunk("lo")])]),
        ]);
        let s = script.clone();
        let start = Instant::now();
        let (events, err) = run(POLICY.call().fallback(AB).stream(move |t, r| s.open(t, r))).await;
        assert!(err.is_none());
        assert_eq!(
            events,
            [format!("#1 {kind} on a after 0 chunks: moving on"), "chunk \"Hel\"".into(), "chunk \"lo\"".into()]
        );
        assert_eq!(script.order(), ["a", "b"]);
        assert_eq!(start.elapsed(), Duration::ZERO, "{kind}: no back-off before the next target");
    }
}

#[tokio::test(start_paused = true)]
async fn a_retryable_failure_before_the_first_chunk_is_retried_on_the_target_then_moves_on() {
    static SITE: Site = Site::new("stream_failover::retryable", POLICY);
    // The open fails once, then the stream fails before its first chunk.
    let script = Script::new([
        (
            "a",
            vec![Attempt::OpenFails(ApiError::from_status(503)), Attempt::Open(vec![Fail(ApiError::from_status(529))])],
        ),
        ("b", vec![Attempt::Open(vec![Chunk("ok")])]),
    ]);
    let s = script.clone();
    let start = Instant::now();
    let (events, err) = run(POLICY.call().site(&SITE).fallback(AB).stream(move |t, r| s.open(t, r))).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        ["#1 Server on a after 0 chunks: retry in 1s", "#2 Overloaded on a after 0 chunks: moving on", "chunk \"ok\"",]
    );
    assert_eq!(script.order(), ["a", "a", "b"]);
    assert_eq!(start.elapsed(), Duration::from_secs(1), "one back-off on a, none before b");
    let st = SITE.stats();
    assert_eq!((st.calls, st.attempts, st.successes, st.retries), (1, 3, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn auth_and_bad_request_end_the_stream_unless_listed() {
    static TARGETS: [&Target; 2] = [&A, &B];
    for (status, kind) in [(401, ErrorKind::Auth), (400, ErrorKind::BadRequest)] {
        let script = || {
            Script::new([
                ("a", vec![Attempt::OpenFails(ApiError::from_status(status))]),
                ("b", vec![Attempt::Open(vec![Chunk("ok")])]),
            ])
        };
        let stops = script();
        let s = stops.clone();
        let (events, err) = run(POLICY.call().fallback(AB).stream(move |t, r| s.open(t, r))).await;
        assert_eq!((events.len(), err.map(|e| e.kind())), (0, Some(kind)), "{kind}: ends the stream");
        assert_eq!(stops.order(), ["a"]);

        let moves = script();
        let s = moves.clone();
        let listed = Fallback::new(&TARGETS).unwrap().move_on(kind);
        let (events, err) = run(POLICY.call().fallback(listed).stream(move |t, r| s.open(t, r))).await;
        assert!(err.is_none());
        assert_eq!(events, [format!("#1 {kind} on a after 0 chunks: moving on"), "chunk \"ok\"".into()]);
        assert_eq!(moves.order(), ["a", "b"]);
    }
}

#[tokio::test(start_paused = true)]
async fn the_last_target_exhausted_ends_the_stream_with_its_error() {
    static SITE: Site = Site::new("stream_failover::last", POLICY);
    let script = Script::new([
        ("a", vec![Attempt::OpenFails(ApiError::from_status(503)); 2]),
        ("b", vec![Attempt::OpenFails(ApiError::from_status(503)); 2]),
    ]);
    let s = script.clone();
    let (events, err) = run(POLICY.call().site(&SITE).fallback(AB).stream(move |t, r| s.open(t, r))).await;
    assert_eq!(err.and_then(|e| e.status()), Some(503));
    assert_eq!(
        events,
        [
            "#1 Server on a after 0 chunks: retry in 1s",
            "#2 Server on a after 0 chunks: moving on",
            "#3 Server on b after 0 chunks: retry in 1s",
        ]
    );
    assert_eq!(script.order(), ["a", "a", "b", "b"]);
    assert_eq!(SITE.stats().gave_up(GiveUp::Exhausted), 1);
}

#[tokio::test(start_paused = true)]
async fn an_empty_stream_that_ends_cleanly_is_an_answer_and_does_not_move_on() {
    let script = Script::new([("a", vec![Attempt::Open(vec![])])]);
    let s = script.clone();
    let (events, err) = run(POLICY.call().fallback(AB).stream(move |t, r| s.open(t, r))).await;
    assert!(err.is_none() && events.is_empty());
    assert_eq!(script.order(), ["a"]);
}

#[tokio::test(start_paused = true)]
async fn continue_retries_on_the_target_first_then_reopens_the_next_with_the_text_so_far() {
    let script = Script::new([
        ("a", vec![Attempt::Open(vec![Chunk("Hel"), Fail(reset())]), Attempt::Open(vec![Chunk("l"), Fail(reset())])]),
        ("b", vec![Attempt::Open(vec![Chunk("o")])]),
    ]);
    let s = script.clone();
    let stream = POLICY.call().fallback(AB).stream(move |t, r| s.open(t, r)).mode(StreamMode::Continue);
    let (events, err) = run(stream).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        [
            "chunk \"Hel\"",
            "#1 Connection on a after 1 chunks: retry in 1s",
            "chunk \"l\"",
            "#2 Connection on a after 2 chunks: moving on",
            "chunk \"o\"",
        ]
    );
    assert_eq!(script.opened(), [("a", "".into()), ("a", "Hel".into()), ("b", "Hell".into())]);
}

#[tokio::test(start_paused = true)]
async fn a_mid_stream_failure_that_moves_on_at_once_keeps_the_mode() {
    // Quota runs out after "Hel": no retry on a, whatever the mode.
    let first = || vec![Attempt::Open(vec![Chunk("Hel"), Fail(quota())])];
    let moved = "#1 QuotaExhausted on a after 1 chunks: moving on";
    let cases: [(StreamMode, Vec<Attempt>, &str, Vec<&str>); 4] = [
        // Continue: b continues the text.
        (
            StreamMode::Continue,
            vec![Attempt::Open(vec![Chunk("lo")])],
            "Hel",
            vec!["chunk \"Hel\"", moved, "chunk \"lo\""],
        ),
        // Skip, a replica that replays the same text: the delivered prefix is dropped.
        (
            StreamMode::Skip,
            vec![Attempt::Open(vec![Chunk("He"), Chunk("llo")])],
            "",
            vec!["chunk \"Hel\"", moved, "chunk \"lo\""],
        ),
        // Skip, another model whose text differs: a Reset, then its text whole.
        (
            StreamMode::Skip,
            vec![Attempt::Open(vec![Chunk("Hi"), Chunk(" there")])],
            "",
            vec!["chunk \"Hel\"", moved, "reset", "chunk \"Hi\"", "chunk \" there\""],
        ),
        // Restart: a Reset before b's first chunk.
        (
            StreamMode::Restart,
            vec![Attempt::Open(vec![Chunk("Hello")])],
            "",
            vec!["chunk \"Hel\"", moved, "reset", "chunk \"Hello\""],
        ),
    ];
    for (mode, on_b, asked, expected) in cases {
        let script = Script::new([("a", first()), ("b", on_b)]);
        let s = script.clone();
        let start = Instant::now();
        let (events, err) = run(POLICY.call().fallback(AB).stream(move |t, r| s.open(t, r)).mode(mode)).await;
        assert!(err.is_none(), "{mode:?}");
        assert_eq!(events, expected, "{mode:?}");
        assert_eq!(script.opened(), [("a", "".into()), ("b", asked.into())], "{mode:?}");
        assert_eq!(start.elapsed(), Duration::ZERO, "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn restart_owes_one_reset_across_a_retry_and_a_move() {
    let script = Script::new([
        ("a", vec![Attempt::Open(vec![Chunk("Hel"), Fail(reset())]), Attempt::OpenFails(ApiError::from_status(503))]),
        ("b", vec![Attempt::Open(vec![Chunk("Hello")])]),
    ]);
    let s = script.clone();
    let (events, err) = run(POLICY.call().fallback(AB).stream(move |t, r| s.open(t, r))).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        [
            "chunk \"Hel\"",
            "#1 Connection on a after 1 chunks: retry in 1s",
            "#2 Server on a after 1 chunks: moving on",
            "reset",
            "chunk \"Hello\"",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_mid_stream_failure_counts_against_the_breaker_and_an_opened_breaker_moves_on_at_once() {
    static BR: Breaker = breaker("mid", 1);
    static PRIMARY: Target = Target::new("mid").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY, &B]);
    let script = Script::new([
        ("mid", vec![Attempt::Open(vec![Chunk("Hel"), Fail(ApiError::from_status(529))])]),
        ("b", vec![Attempt::Open(vec![Chunk("lo")])]),
    ]);
    let s = script.clone();
    let (events, err) =
        run(POLICY.call().fallback(CHAIN).stream(move |t, r| s.open(t, r)).mode(StreamMode::Continue)).await;
    assert!(err.is_none());
    // The failure opened the breaker: no second attempt on it, though the policy allows two.
    assert_eq!(events, ["chunk \"Hel\"", "#1 Overloaded on mid after 1 chunks: moving on", "chunk \"lo\""]);
    assert_eq!(script.order(), ["mid", "b"]);
    assert_eq!(BR.state(), BreakerState::Open);

    // Open: the next stream skips it at once, with nothing to report.
    let script = Script::new([("b", vec![Attempt::Open(vec![Chunk("ok")])])]);
    let s = script.clone();
    let (events, err) = run(POLICY.call().fallback(CHAIN).stream(move |t, r| s.open(t, r))).await;
    assert!(err.is_none());
    assert_eq!(events, ["chunk \"ok\""]);
    assert_eq!(script.order(), ["b"]);
    assert_eq!(BR.stats().refused, 1);
}

#[tokio::test(start_paused = true)]
async fn no_target_left_ends_the_stream_with_circuit_open_before_any_open() {
    static SITE: Site = Site::new("stream_failover::circuit_open", POLICY);
    static BR: Breaker = breaker("down", 1);
    static DOWN: Target = Target::new("down").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&DOWN]);
    let script = Script::new([("down", vec![Attempt::OpenFails(ApiError::from_status(503))])]);
    let s = script.clone();
    let (_, err) = run(POLICY.call().fallback(CHAIN).stream(move |t, r| s.open(t, r))).await;
    assert_eq!(err.and_then(|e| e.status()), Some(503), "the breaker opened on the only target");
    assert_eq!(BR.state(), BreakerState::Open);

    let s = script.clone();
    let (events, err) = run(POLICY.call().site(&SITE).fallback(CHAIN).stream(move |t, r| s.open(t, r))).await;
    let err = err.expect("circuit open");
    assert!(events.is_empty());
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert_eq!(err.to_string(), "Overloaded: circuit open for `down`, until 30.0 s from now");
    assert_eq!(script.order(), ["down"], "no second open");
    assert_eq!(SITE.stats().gave_up(GiveUp::CircuitOpen), 1);
}

#[tokio::test(start_paused = true)]
async fn the_probe_is_the_whole_stream_and_its_completion_closes_the_breaker() {
    static BR: Breaker = breaker("probe", 1);
    static PRIMARY: Target = Target::new("probe").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY, &B]);
    let script = Script::new([
        ("probe", vec![Attempt::OpenFails(ApiError::from_status(503)), Attempt::Open(vec![Chunk("Hel"), Hang])]),
        ("b", vec![Attempt::Open(vec![Chunk("x")]), Attempt::Open(vec![Chunk("y")])]),
    ]);
    let s = script.clone();
    let _ = run(POLICY.call().fallback(CHAIN).stream(move |t, r| s.open(t, r))).await;
    assert_eq!(BR.state(), BreakerState::Open);
    tokio::time::advance(BR.cooldown()).await;

    // The probe delivers its first chunk, then waits: the breaker stays half-open.
    let s = script.clone();
    let mut probe = Box::pin(POLICY.call().fallback(CHAIN).stream(move |t, r| s.open(t, r)));
    assert_eq!(show(&probe.next().await.unwrap().unwrap()), "chunk \"Hel\"");
    assert_eq!(BR.state(), BreakerState::HalfOpen);
    // Meanwhile another stream skips the primary.
    let s = script.clone();
    let (events, _) = run(POLICY.call().fallback(CHAIN).stream(move |t, r| s.open(t, r))).await;
    assert_eq!(events, ["chunk \"y\""]);
    assert_eq!(script.order(), ["probe", "b", "probe", "b"]);

    // Dropped mid-stream, the probe is released; the next stream is the new probe.
    drop(probe);
    assert_eq!(script.live(), 0, "the connection is dropped with the stream");
    assert_eq!(BR.state(), BreakerState::HalfOpen);
    let s = script.clone();
    let (events, err) = run(POLICY.call().fallback(CHAIN).stream(move |t, r| s.open(t, r))).await;
    assert!(err.is_none());
    assert_eq!(events, ["chunk \"(extra)\""], "served by the primary");
    assert_eq!(BR.state(), BreakerState::Closed, "a completed stream closes it");
    let st = BR.stats();
    assert_eq!((st.opened, st.half_opened, st.closed, st.probes), (1, 1, 1, 2));
}

#[tokio::test(start_paused = true)]
async fn the_first_chunk_timeout_is_retried_on_the_target_then_moves_on() {
    static BR: Breaker = breaker("slow", 5);
    static SLOW: Target = Target::new("slow").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&SLOW, &B]);
    let script = Script::new([
        ("slow", vec![Attempt::OpenHangs, Attempt::Open(vec![Hang])]),
        ("b", vec![Attempt::Open(vec![Chunk("ok")])]),
    ]);
    let s = script.clone();
    let start = Instant::now();
    let stream =
        POLICY.call().fallback(CHAIN).stream(move |t, r| s.open(t, r)).first_chunk_timeout(Duration::from_secs(10));
    let (events, err) = run(stream).await;
    assert!(err.is_none());
    assert_eq!(
        events,
        [
            "#1 Timeout on slow after 0 chunks: retry in 1s",
            "#2 Timeout on slow after 0 chunks: moving on",
            "chunk \"ok\"",
        ]
    );
    assert_eq!(start.elapsed(), Duration::from_secs(21), "two first-chunk timeouts and one back-off");
    assert_eq!(script.live(), 0);
    assert_eq!(BR.state(), BreakerState::Closed, "2 failures of 5");
}

#[tokio::test(start_paused = true)]
async fn the_idle_timeout_in_the_middle_moves_on_with_the_text_so_far() {
    const ONCE: Policy = match Policy::builder().max_attempts(1).build() {
        Ok(p) => p,
        Err(_) => panic!("invalid policy"),
    };
    let script = Script::new([
        ("a", vec![Attempt::Open(vec![Chunk("Hel"), Hang])]),
        ("b", vec![Attempt::Open(vec![Chunk("lo")])]),
    ]);
    let s = script.clone();
    let start = Instant::now();
    let stream = ONCE
        .call()
        .fallback(AB)
        .stream(move |t, r| s.open(t, r))
        .mode(StreamMode::Continue)
        .idle_timeout(Duration::from_secs(5));
    let (events, err) = run(stream).await;
    assert!(err.is_none());
    assert_eq!(events, ["chunk \"Hel\"", "#1 Timeout on a after 1 chunks: moving on", "chunk \"lo\""]);
    assert_eq!(script.opened(), [("a", "".into()), ("b", "Hel".into())]);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_stream_on_any_target_and_says_nothing_about_it() {
    static SITE: Site = Site::new("stream_failover::deadline", POLICY);
    static BR: Breaker = breaker("hung", 1);
    static HUNG: Target = Target::new("hung").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&HUNG, &B]);
    let script = Script::new([("hung", vec![Attempt::Open(vec![Chunk("Hel"), Hang])])]);
    let s = script.clone();
    let start = Instant::now();
    let stream =
        POLICY.call().site(&SITE).deadline(Duration::from_secs(30)).fallback(CHAIN).stream(move |t, r| s.open(t, r));
    let (events, err) = run(stream).await;
    assert_eq!(events, ["chunk \"Hel\""]);
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::Timeout));
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(script.order(), ["hung"], "no move past the deadline");
    assert_eq!(SITE.stats().gave_up(GiveUp::Deadline), 1);
    assert_eq!(BR.state(), BreakerState::Closed, "our own deadline counts neither way");
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_while_moving_on_drops_everything() {
    let script = Script::new([("a", vec![Attempt::OpenFails(quota())]), ("b", vec![Attempt::OpenHangs])]);
    let s = script.clone();
    let mut stream = Box::pin(POLICY.call().fallback(AB).stream(move |t, r| s.open(t, r)));
    assert_eq!(show(&stream.next().await.unwrap().unwrap()), "#1 QuotaExhausted on a after 0 chunks: moving on");
    assert!(tokio::time::timeout(Duration::from_secs(1), stream.next()).await.is_err(), "b hangs");
    assert_eq!(script.live(), 1, "b's open is in flight");
    drop(stream);
    assert_eq!(script.live(), 0);
    assert_eq!(script.order(), ["a", "b"]);
}

/// Polls a stream that never waits to its end, with no runtime.
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
fn a_chained_stream_served_by_its_first_target_allocates_nothing_and_reads_no_clock() {
    static SITE: Site = Site::new("stream_failover::alloc", POLICY);
    static BR: Breaker = breaker("alloc", 5);
    static FIRST: Target = Target::new("alloc").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&FIRST, &B]);
    let open = |_: &'static Target, _: Resume| {
        std::future::ready(Ok::<_, ApiError>(futures_util::stream::iter([Ok::<&str, ApiError>("Hel"), Ok("lo")])))
    };
    // No tokio runtime here: a clock read or a timer would panic.
    assert_eq!(drain(POLICY.call().site(&SITE).fallback(CHAIN).stream(open)), 2); // warm-up: registers the site
    let info = allocation_counter::measure(|| {
        assert_eq!(drain(POLICY.call().site(&SITE).fallback(CHAIN).stream(open)), 2);
    });
    assert_eq!(info.count_total, 0);
    assert_eq!(BR.stats(), Default::default(), "a clean breaker admits and settles with one load");
}
