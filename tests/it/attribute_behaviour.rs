//! How annotated fns behave, in paused time on a current-thread runtime: attempts, exact
//! delays, per-kind limits, Retry-After, the deadline and the attempt timeout, `validate`,
//! `notify`, `when`, and stats.

use llm_retry::{
    ApiError, ErrorKind, GiveUp, InvalidOutput, RetryEvent, call::DelaySource, http::RetryAfter, llm_retry,
};
use std::cell::RefCell;
use std::time::Duration;
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// When each attempt started, relative to the first, and what it returns.
struct Script {
    start: Instant,
    starts: RefCell<Vec<Duration>>,
    outcomes: RefCell<Vec<Result<String, ApiError>>>,
    work: Duration,
}

impl Script {
    /// Fails with `errors` in order, then succeeds with "ok" forever.
    fn new(errors: impl IntoIterator<Item = ApiError>) -> Self {
        let mut outcomes: Vec<_> = errors.into_iter().map(Err).collect();
        outcomes.reverse();
        Script {
            start: Instant::now(),
            starts: RefCell::default(),
            outcomes: RefCell::new(outcomes),
            work: Duration::ZERO,
        }
    }

    /// Fails with `error` on every attempt.
    fn always(error: ApiError) -> Self {
        Script::new(std::iter::repeat_n(error, 100))
    }

    fn taking(mut self, work: Duration) -> Self {
        self.work = work;
        self
    }

    async fn run(&self) -> Result<String, ApiError> {
        self.starts.borrow_mut().push(self.start.elapsed());
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
        }
        self.outcomes.borrow_mut().pop().unwrap_or_else(|| Ok("ok".to_owned()))
    }

    fn starts(&self) -> Vec<Duration> {
        self.starts.borrow().clone()
    }

    fn attempts(&self) -> usize {
        self.starts.borrow().len()
    }
}

fn e503() -> ApiError {
    ApiError::from_status(503)
}

#[llm_retry(max = 4, jitter = "none")]
async fn default_backoff(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn exponential_defaults_give_exact_delays_without_jitter() {
    let s = Script::always(e503());
    assert_eq!(default_backoff(&s).await.unwrap_err().status(), Some(503));
    // 500 ms doubling: the runtime's default exponential backoff.
    assert_eq!(s.starts(), [Duration::ZERO, 500 * MS, 1500 * MS, 3500 * MS]);
}

#[llm_retry(max = 5, backoff = "exponential", base = "100ms", multiplier = 3.0, max_delay = "1s", jitter = "none")]
async fn tuned_exponential(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn exponential_parameters_and_cap() {
    let s = Script::always(e503());
    let _ = tuned_exponential(&s).await;
    // 100, 300, 900, then capped at 1000.
    assert_eq!(s.starts(), [Duration::ZERO, 100 * MS, 400 * MS, 1300 * MS, 2300 * MS]);
}

#[llm_retry(max = 3, backoff = "fixed", delay = "1.5s", jitter = "none")]
async fn fixed(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[llm_retry(max = 4, backoff = "linear", jitter = "none")]
async fn linear(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn fixed_and_linear() {
    let s = Script::always(e503());
    let _ = fixed(&s).await;
    assert_eq!(s.starts(), [Duration::ZERO, 1500 * MS, 3000 * MS]);
    let s = Script::always(e503());
    let _ = linear(&s).await;
    // Linear defaults: 500 ms, +500 ms each retry.
    assert_eq!(s.starts(), [Duration::ZERO, 500 * MS, 1500 * MS, 3000 * MS]);
}

#[llm_retry(max = 4, backoff = "fixed", delay = "1s")]
async fn fixed_full_jitter(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_is_reproducible_and_bounded() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        llm_retry::rng::seed_thread_rng(42);
        let s = Script::always(e503());
        let _ = fixed_full_jitter(&s).await;
        let starts = s.starts();
        let delays: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(delays.len(), 3);
        assert!(delays.iter().all(|d| *d <= S), "{delays:?}");
        runs.push(delays);
    }
    assert_eq!(runs[0], runs[1], "the same seed gives the same delays");
    assert!(runs[0].iter().any(|d| *d != S), "full jitter moved the delays: {:?}", runs[0]);
}

#[llm_retry(max = 6, backoff = "decorrelated", base = "100ms", max_delay = "2s")]
async fn decorrelated(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn decorrelated_stays_within_base_and_cap() {
    llm_retry::rng::seed_thread_rng(7);
    let s = Script::always(e503());
    let _ = decorrelated(&s).await;
    let starts = s.starts();
    for w in starts.windows(2) {
        let d = w[1] - w[0];
        assert!(d >= 100 * MS && d <= 2 * S, "{d:?}");
    }
}

/// The article's table: RateLimited 3 attempts fixed 60 s; Connection 5 attempts
/// exponential; 502 2 attempts; 500/503 3 attempts exponential.
#[llm_retry(
    max = 6,
    jitter = "none",
    on = [RateLimited, Connection, 500, 502, 503],
    rule(RateLimited, max = 3, backoff = "fixed", delay = "60s"),
    rule(Connection, max = 5, backoff = "exponential", base = "1s"),
    rule(502, max = 2),
    rule(500, max = 3, backoff = "exponential", base = "1s"),
    rule(503, max = 3, backoff = "exponential", base = "1s"),
)]
async fn article(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn per_kind_limits_follow_the_article_table() {
    let s = Script::always(ApiError::from_status(429));
    let _ = article(&s).await;
    assert_eq!(s.starts(), [Duration::ZERO, 60 * S, 120 * S]);

    let s = Script::always(ApiError::connection("reset"));
    let _ = article(&s).await;
    assert_eq!(s.starts(), [Duration::ZERO, S, 3 * S, 7 * S, 15 * S]);

    let s = Script::always(ApiError::from_status(502));
    let _ = article(&s).await;
    assert_eq!(s.attempts(), 2);

    for status in [500, 503] {
        let s = Script::always(ApiError::from_status(status));
        let _ = article(&s).await;
        assert_eq!(s.starts(), [Duration::ZERO, S, 3 * S], "{status}");
    }

    // 504 is not in `on`: one attempt.
    let s = Script::always(ApiError::from_status(504));
    let _ = article(&s).await;
    assert_eq!(s.attempts(), 1);
}

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static EVENTS: RefCell<Vec<(u32, ErrorKind, Duration, DelaySource)>> = const { RefCell::new(Vec::new()) };
}

fn record(ev: &RetryEvent<'_, ApiError>) {
    LOG.with(|l| l.borrow_mut().push(format!("notify {} {:?}", ev.attempt, ev.delay)));
    EVENTS.with(|e| e.borrow_mut().push((ev.attempt, ev.kind, ev.delay, ev.source)));
}

#[llm_retry(max = 3, backoff = "fixed", delay = "2s", jitter = "none", notify = record)]
async fn notified(s: &Script) -> Result<String, ApiError> {
    LOG.with(|l| l.borrow_mut().push(format!("attempt {}", s.attempts() + 1)));
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn notify_runs_before_each_sleep() {
    LOG.with(|l| l.borrow_mut().clear());
    let s = Script::new([e503(), e503()]);
    assert_eq!(notified(&s).await.unwrap(), "ok");
    let log = LOG.with(|l| l.borrow().clone());
    assert_eq!(log, ["attempt 1", "notify 1 2s", "attempt 2", "notify 2 2s", "attempt 3"]);
}

#[llm_retry(max = 3, max_retry_after = "10s", notify = record, name = "behaviour.retry_after")]
async fn honours_retry_after(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_capped() {
    EVENTS.with(|e| e.borrow_mut().clear());
    let hinted = |secs| ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(secs)));
    let s = Script::new([hinted(7)]);
    assert_eq!(honours_retry_after(&s).await.unwrap(), "ok");
    let (attempt, kind, delay, source) = EVENTS.with(|e| e.borrow()[0]);
    assert_eq!((attempt, kind, source), (1, ErrorKind::RateLimited, DelaySource::RetryAfter));
    assert!(delay >= 7 * S && delay < 8 * S, "{delay:?}");
    // tokio's timer rounds a sleep up to the next millisecond.
    assert!(s.starts()[1] >= delay && s.starts()[1] < delay + MS, "{:?} vs {delay:?}", s.starts()[1]);

    // A hint above `max_retry_after` gives up at once.
    let s = Script::new([hinted(60)]);
    assert_eq!(honours_retry_after(&s).await.unwrap_err().kind(), ErrorKind::RateLimited);
    assert_eq!(s.attempts(), 1);
    let stats = llm_retry::stats().get("behaviour.retry_after").unwrap();
    assert_eq!(stats.gave_up(GiveUp::RetryAfterTooLong), 1);
}

#[llm_retry(max = 10, backoff = "fixed", delay = "1s", jitter = "none", deadline = "10s", name = "behaviour.deadline")]
async fn with_deadline(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_the_whole_call() {
    let s = Script::always(e503()).taking(3 * S);
    let start = Instant::now();
    let _ = with_deadline(&s).await.unwrap_err();
    assert!(start.elapsed() <= 10 * S, "{:?}", start.elapsed());
    assert!(s.attempts() < 10);
    assert_eq!(llm_retry::stats().get("behaviour.deadline").unwrap().gave_up(GiveUp::Deadline), 1);
}

#[llm_retry(max = 3, backoff = "none", attempt_timeout = "1s")]
async fn with_attempt_timeout(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_cuts_each_attempt_and_is_retried() {
    let s = Script::new([]).taking(5 * S);
    let err = with_attempt_timeout(&s).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(s.starts(), [Duration::ZERO, S, 2 * S]);
}

#[allow(clippy::ptr_arg)] // a validator receives `&T`, here `&String`
fn non_empty(text: &String) -> Result<(), InvalidOutput> {
    if text.is_empty() { Err(InvalidOutput::new("the model returned empty text")) } else { Ok(()) }
}

#[llm_retry(max = 3, backoff = "none", validate = non_empty)]
async fn validated(s: &Script, replies: &RefCell<Vec<&'static str>>) -> Result<String, ApiError> {
    s.run().await?;
    Ok(replies.borrow_mut().pop().unwrap_or_default().to_owned())
}

#[tokio::test(start_paused = true)]
async fn validate_retries_unusable_output() {
    let s = Script::new([]);
    let replies = RefCell::new(vec!["hello", "", ""]);
    assert_eq!(validated(&s, &replies).await.unwrap(), "hello");
    assert_eq!(s.attempts(), 3);

    let s = Script::new([]);
    let replies = RefCell::new(vec!["", "", ""]);
    assert_eq!(validated(&s, &replies).await.unwrap_err().kind(), ErrorKind::InvalidOutput);
}

fn only_server_errors(e: &ApiError) -> bool {
    e.status().is_some_and(|s| s >= 500)
}

#[llm_retry(max = 3, backoff = "none", when = only_server_errors)]
async fn predicate(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn when_replaces_the_on_decision() {
    let s = Script::always(ApiError::from_status(429));
    let _ = predicate(&s).await;
    assert_eq!(s.attempts(), 1, "429 is not a server error, so the predicate refuses it");
    let s = Script::new([e503()]);
    assert_eq!(predicate(&s).await.unwrap(), "ok");
    assert_eq!(s.attempts(), 2);
}

#[llm_retry(max = 3, backoff = "none", name = "behaviour.stats")]
async fn counted(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn stats_count_calls_attempts_and_give_ups() {
    let _ = counted(&Script::new([])).await;
    let _ = counted(&Script::new([e503()])).await;
    let _ = counted(&Script::always(e503())).await;
    let _ = counted(&Script::always(ApiError::from_status(401))).await;
    let st = llm_retry::stats().get("behaviour.stats").unwrap();
    assert_eq!(st.calls, 4);
    assert_eq!(st.successes, 2);
    assert_eq!(st.first_try_successes, 1);
    assert_eq!(st.attempts, 1 + 2 + 3 + 1);
    assert_eq!(st.retries, 1 + 2);
    assert_eq!(st.gave_up(GiveUp::Exhausted), 1);
    assert_eq!(st.gave_up(GiveUp::NonRetryable), 1);
}

#[llm_retry(max = 2)]
async fn plain_default_name(s: &Script) -> Result<String, ApiError> {
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn the_default_stats_name_is_the_module_path_and_fn() {
    let _ = plain_default_name(&Script::new([])).await;
    assert_eq!(llm_retry::stats().get("it::attribute_behaviour::plain_default_name").unwrap().calls, 1);
}

// Early exits: a body with a `return`, a `?` or a macro that may hide one runs in an async
// block of its own, so the exit ends the attempt and is retried like a tail `Err`. A body
// with none runs as a plain block (every fn above).

/// A user's macro that hides a `return`, as `anyhow::bail!` does.
macro_rules! bail_503 {
    () => {
        return Err(e503())
    };
}

#[llm_retry(max = 3, backoff = "none")]
async fn exits_with_question_mark(s: &Script) -> Result<String, ApiError> {
    let text = s.run().await?;
    Ok(text)
}

#[llm_retry(max = 3, backoff = "none")]
async fn exits_with_return(s: &Script) -> Result<String, ApiError> {
    let reply = s.run().await;
    if reply.as_ref().is_err_and(|e| e.status() == Some(503)) {
        return reply;
    }
    Ok("done".to_owned())
}

#[llm_retry(max = 3, backoff = "none")]
async fn exits_in_a_macro(s: &Script) -> Result<String, ApiError> {
    if s.run().await.is_err() {
        bail_503!();
    }
    Ok("done".to_owned())
}

#[llm_retry(max = 3, backoff = "none")]
async fn breaks_its_own_loop(s: &Script) -> Result<String, ApiError> {
    let mut reply = Err(e503());
    for _ in 0..2 {
        reply = s.run().await;
        if reply.is_err() {
            break;
        }
    }
    reply
}

#[tokio::test(start_paused = true)]
async fn an_early_exit_ends_the_attempt_and_is_retried() {
    let s = Script::new([e503(), e503()]);
    assert_eq!(exits_with_question_mark(&s).await.unwrap(), "ok");
    assert_eq!(s.attempts(), 3);

    let s = Script::new([e503(), e503()]);
    assert_eq!(exits_with_return(&s).await.unwrap(), "done");
    assert_eq!(s.attempts(), 3);

    let s = Script::new([e503(), e503()]);
    assert_eq!(exits_in_a_macro(&s).await.unwrap(), "done");
    assert_eq!(s.attempts(), 3);

    // The `break` leaves the body's own loop: two runs in the third attempt.
    let s = Script::new([e503(), e503()]);
    assert_eq!(breaks_its_own_loop(&s).await.unwrap(), "ok");
    assert_eq!(s.attempts(), 4);
}

// Bindings and arguments across attempts (the prelude-hoisting bug): a `let mut x = x;` at
// the top of the body is part of the body, so it binds afresh on every attempt and each retry
// starts from the argument as the caller passed it. Moving it out of the loop made a retry see
// what the previous attempt left ("Hi. Answer briefly. Answer briefly."). A `mut` argument or
// `&mut self` lives outside the loop, like a variable outside a hand-written loop, so its
// changes carry over.

/// A prompt in a fixed buffer: `Copy`, so a body may rebind it and edit it on every attempt
/// (an owned `String` would be a move in the loop, which rustc rejects).
#[derive(Clone, Copy)]
struct Prompt {
    buf: [u8; 64],
    len: usize,
}

impl Prompt {
    fn new(text: &str) -> Self {
        let mut p = Prompt { buf: [0; 64], len: 0 };
        p.push_str(text);
        p
    }

    fn push_str(&mut self, text: &str) {
        self.buf[self.len..self.len + text.len()].copy_from_slice(text.as_bytes());
        self.len += text.len();
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// Records what an attempt sends, then answers as the script says.
async fn send(s: &Script, sent: &RefCell<Vec<String>>, text: &str) -> Result<String, ApiError> {
    sent.borrow_mut().push(text.to_owned());
    s.run().await
}

// A plain block: no early exit, no key that wraps the body.
#[llm_retry(max = 3, backoff = "none")]
async fn rebinds_prompt(s: &Script, sent: &RefCell<Vec<String>>, prompt: Prompt) -> Result<String, ApiError> {
    let mut prompt = prompt;
    prompt.push_str(" Answer briefly.");
    send(s, sent, prompt.as_str()).await
}

// An async block of its own: the `?` may end the attempt early.
#[llm_retry(max = 3, backoff = "none")]
async fn rebinds_prompt_early_exit(
    s: &Script,
    sent: &RefCell<Vec<String>>,
    prompt: Prompt,
) -> Result<String, ApiError> {
    let mut prompt = prompt;
    prompt.push_str(" Answer briefly.");
    let reply = send(s, sent, prompt.as_str()).await?;
    Ok(reply)
}

// The `attempt` form: the deadline puts a timer around each attempt.
#[llm_retry(max = 3, backoff = "none", deadline = "10s")]
async fn rebinds_prompt_deadline(s: &Script, sent: &RefCell<Vec<String>>, prompt: Prompt) -> Result<String, ApiError> {
    let mut prompt = prompt;
    prompt.push_str(" Answer briefly.");
    send(s, sent, prompt.as_str()).await
}

#[tokio::test(start_paused = true)]
async fn prelude_hoisting_bug_let_mut_prompt_rebinds_each_attempt() {
    let want = vec!["Hi. Answer briefly.".to_owned(); 3];
    let (s, sent) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(rebinds_prompt(&s, &sent, Prompt::new("Hi.")).await.unwrap(), "ok");
    assert_eq!(sent.into_inner(), want, "plain block: every attempt sends the same text");

    let (s, sent) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(rebinds_prompt_early_exit(&s, &sent, Prompt::new("Hi.")).await.unwrap(), "ok");
    assert_eq!(sent.into_inner(), want, "async block: every attempt sends the same text");

    let (s, sent) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(rebinds_prompt_deadline(&s, &sent, Prompt::new("Hi.")).await.unwrap(), "ok");
    assert_eq!(sent.into_inner(), want, "`attempt` form: every attempt sends the same text");
}

#[llm_retry(max = 3, backoff = "none")]
async fn rebinds_counter(s: &Script, seen: &RefCell<Vec<u32>>, n: u32) -> Result<String, ApiError> {
    let mut n = n;
    n += 1;
    seen.borrow_mut().push(n);
    s.run().await
}

#[llm_retry(max = 3, backoff = "none")]
async fn rebinds_counter_early_exit(s: &Script, seen: &RefCell<Vec<u32>>, n: u32) -> Result<String, ApiError> {
    let mut n = n;
    n += 1;
    seen.borrow_mut().push(n);
    let reply = s.run().await?;
    Ok(reply)
}

#[llm_retry(max = 3, backoff = "none", deadline = "10s")]
async fn rebinds_counter_deadline(s: &Script, seen: &RefCell<Vec<u32>>, n: u32) -> Result<String, ApiError> {
    let mut n = n;
    n += 1;
    seen.borrow_mut().push(n);
    s.run().await
}

#[tokio::test(start_paused = true)]
async fn prelude_hoisting_bug_let_mut_n_rebinds_each_attempt() {
    let (s, seen) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(rebinds_counter(&s, &seen, 0).await.unwrap(), "ok");
    assert_eq!(seen.into_inner(), [1, 1, 1], "plain block: every attempt starts from the argument");

    let (s, seen) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(rebinds_counter_early_exit(&s, &seen, 0).await.unwrap(), "ok");
    assert_eq!(seen.into_inner(), [1, 1, 1], "async block: every attempt starts from the argument");

    let (s, seen) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(rebinds_counter_deadline(&s, &seen, 0).await.unwrap(), "ok");
    assert_eq!(seen.into_inner(), [1, 1, 1], "`attempt` form: every attempt starts from the argument");
}

#[llm_retry(max = 3, backoff = "none")]
async fn mut_argument(s: &Script, seen: &RefCell<Vec<u32>>, mut n: u32) -> Result<String, ApiError> {
    n += 1;
    seen.borrow_mut().push(n);
    s.run().await
}

#[llm_retry(max = 3, backoff = "none", deadline = "10s")]
async fn mut_argument_deadline(s: &Script, seen: &RefCell<Vec<u32>>, mut n: u32) -> Result<String, ApiError> {
    n += 1;
    seen.borrow_mut().push(n);
    s.run().await
}

struct Tally {
    n: u32,
}

impl Tally {
    #[llm_retry(max = 3, backoff = "none")]
    async fn bump(&mut self, s: &Script) -> Result<String, ApiError> {
        self.n += 1;
        s.run().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_mut_argument_carries_its_change_to_the_next_attempt() {
    // Like a variable outside a hand-written loop.
    let (s, seen) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(mut_argument(&s, &seen, 0).await.unwrap(), "ok");
    assert_eq!(seen.into_inner(), [1, 2, 3], "plain block");

    let (s, seen) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(mut_argument_deadline(&s, &seen, 0).await.unwrap(), "ok");
    assert_eq!(seen.into_inner(), [1, 2, 3], "`attempt` form");

    let mut tally = Tally { n: 0 };
    assert_eq!(tally.bump(&Script::new([e503(), e503()])).await.unwrap(), "ok");
    assert_eq!(tally.n, 3);
}

// Inside an `#[async_trait]` impl, async-trait's own prelude (its rebinding of each argument
// into the boxed future) runs once, before the loop, so an owned argument may be borrowed on
// every attempt and a `mut` argument carries over as in a plain fn; the user's body, a
// `let mut x = x;` at its top included, runs whole on every attempt.

#[async_trait::async_trait(?Send)]
trait Ask {
    async fn ask(&self, s: &Script, sent: &RefCell<Vec<String>>, prompt: Prompt) -> Result<String, ApiError>;
    async fn ask_owned(&self, s: &Script, sent: &RefCell<Vec<String>>, prompt: String) -> Result<String, ApiError>;
    async fn bump(&self, s: &Script, seen: &RefCell<Vec<u32>>, n: u32) -> Result<String, ApiError>;
}

struct Asker;

#[async_trait::async_trait(?Send)]
impl Ask for Asker {
    #[llm_retry(max = 3, backoff = "none")]
    async fn ask(&self, s: &Script, sent: &RefCell<Vec<String>>, prompt: Prompt) -> Result<String, ApiError> {
        let mut prompt = prompt;
        prompt.push_str(" Answer briefly.");
        send(s, sent, prompt.as_str()).await
    }

    #[llm_retry(max = 3, backoff = "none", deadline = "10s")]
    async fn ask_owned(&self, s: &Script, sent: &RefCell<Vec<String>>, prompt: String) -> Result<String, ApiError> {
        send(s, sent, &prompt).await
    }

    #[llm_retry(max = 3, backoff = "none")]
    async fn bump(&self, s: &Script, seen: &RefCell<Vec<u32>>, mut n: u32) -> Result<String, ApiError> {
        n += 1;
        seen.borrow_mut().push(n);
        s.run().await
    }
}

#[tokio::test(start_paused = true)]
async fn async_trait_runs_its_prelude_once_and_the_body_every_attempt() {
    let (s, sent) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(Asker.ask(&s, &sent, Prompt::new("Hi.")).await.unwrap(), "ok");
    assert_eq!(sent.into_inner(), vec!["Hi. Answer briefly.".to_owned(); 3]);

    let (s, sent) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(Asker.ask_owned(&s, &sent, "Hi.".to_owned()).await.unwrap(), "ok");
    assert_eq!(sent.into_inner(), vec!["Hi.".to_owned(); 3]);

    let (s, seen) = (Script::new([e503(), e503()]), RefCell::default());
    assert_eq!(Asker.bump(&s, &seen, 0).await.unwrap(), "ok");
    assert_eq!(seen.into_inner(), [1, 2, 3]);
}
