//! Annotated fns whose error type is an application's catch-all: `anyhow::Error`,
//! `eyre::Report`, `Box<dyn Error + Send + Sync>`. Each is retried as the error it wraps says
//! (found by walking the source chain), through context layers too; in paused time.

use llm_retry::{ApiError, Classify, ErrorKind, InvalidOutput, Timeout, http::RetryAfter, llm_retry};
use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;
use tokio::time::Instant;

type BoxError = Box<dyn Error + Send + Sync>;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// What an attempt fails with, before it is put into the fn's error type.
#[derive(Clone)]
enum Inner {
    Api(ApiError),
    Io(io::ErrorKind),
    /// A message only: nothing the runtime knows.
    Message(&'static str),
}

impl Inner {
    fn rate_limited(after: Duration) -> Self {
        Inner::Api(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(after)))
    }

    fn status(status: u16) -> Self {
        Inner::Api(ApiError::from_status(status))
    }

    fn into_anyhow(self) -> anyhow::Error {
        match self {
            Inner::Api(e) => e.into(),
            Inner::Io(k) => io::Error::from(k).into(),
            Inner::Message(m) => anyhow::anyhow!(m),
        }
    }

    fn into_eyre(self) -> eyre::Report {
        match self {
            Inner::Api(e) => e.into(),
            Inner::Io(k) => io::Error::from(k).into(),
            Inner::Message(m) => eyre::eyre!(m),
        }
    }

    fn into_box(self) -> BoxError {
        match self {
            Inner::Api(e) => e.into(),
            Inner::Io(k) => io::Error::from(k).into(),
            Inner::Message(m) => m.into(),
        }
    }

    /// As an `io::Error`: an API error rides inside `io::Error::other`.
    fn into_io(self) -> io::Error {
        match self {
            Inner::Api(e) => io::Error::other(e),
            Inner::Io(k) => io::Error::from(k),
            Inner::Message(m) => io::Error::other(m),
        }
    }
}

/// An application's own error layer, unknown to the runtime, around the real cause.
#[derive(Debug)]
struct Calling {
    source: BoxError,
}

impl fmt::Display for Calling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("calling the model")
    }
}

impl Error for Calling {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// When each attempt started, relative to the first, and what it fails with.
struct Script {
    start: Instant,
    starts: RefCell<Vec<Duration>>,
    failures: RefCell<Vec<Inner>>,
    work: Duration,
    reply: &'static str,
}

impl Script {
    /// Fails with `failures` in order, then answers "ok" forever.
    fn new(failures: impl IntoIterator<Item = Inner>) -> Rc<Self> {
        Rc::new(Script::plain(failures))
    }

    /// Fails with `failure` on every attempt.
    fn always(failure: Inner) -> Rc<Self> {
        Script::new(std::iter::repeat_n(failure, 100))
    }

    fn plain(failures: impl IntoIterator<Item = Inner>) -> Self {
        let mut failures: Vec<_> = failures.into_iter().collect();
        failures.reverse();
        Script {
            start: Instant::now(),
            starts: RefCell::default(),
            failures: RefCell::new(failures),
            work: Duration::ZERO,
            reply: "ok",
        }
    }

    /// One attempt: records its start, takes `work`, then fails with the next failure
    /// (turned into the fn's error type by `wrap`) or answers.
    async fn attempt<E>(&self, wrap: impl FnOnce(Inner) -> E) -> Result<String, E> {
        self.starts.borrow_mut().push(self.start.elapsed());
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
        }
        let next = self.failures.borrow_mut().pop();
        match next {
            Some(failure) => Err(wrap(failure)),
            None => Ok(self.reply.to_owned()),
        }
    }

    fn starts(&self) -> Vec<Duration> {
        self.starts.borrow().clone()
    }

    fn attempts(&self) -> usize {
        self.starts.borrow().len()
    }
}

/// Every error type goes through these: `run` is an annotated fn with
/// `max = 4, backoff = "fixed", delay = "1s", jitter = "none", max_retry_after = "30s"`.
async fn retried_as_the_inner_error_says<E, F, Fut>(run: F)
where
    E: Classify + fmt::Debug,
    F: Fn(Rc<Script>) -> Fut,
    Fut: Future<Output = Result<String, E>>,
{
    // A 429 asking for 7 s: one wait of the hint (plus its jitter of at most a tenth), not
    // the policy's 1 s.
    let s = Script::new([Inner::rate_limited(7 * S)]);
    assert_eq!(run(s.clone()).await.unwrap(), "ok");
    let starts = s.starts();
    assert_eq!(starts.len(), 2);
    assert!(starts[1] >= 7 * S && starts[1] <= 7 * S + 700 * MS + MS, "{starts:?}");

    // A 429 asking for more than `max_retry_after`: given up at once.
    let s = Script::always(Inner::rate_limited(60 * S));
    let err = run(s.clone()).await.unwrap_err();
    assert_eq!(s.attempts(), 1);
    assert_eq!(err.classify().kind, ErrorKind::RateLimited);

    // Two connection resets: the policy's fixed 1 s, twice.
    let reset = Inner::Io(io::ErrorKind::ConnectionReset);
    let s = Script::new([reset.clone(), reset]);
    assert_eq!(run(s.clone()).await.unwrap(), "ok");
    assert_eq!(s.starts(), [Duration::ZERO, S, 2 * S]);

    // A 503 every time: all four attempts, and the last error still says 503.
    let s = Script::always(Inner::status(503));
    let c = run(s.clone()).await.unwrap_err().classify();
    assert_eq!(s.starts(), [Duration::ZERO, S, 2 * S, 3 * S]);
    assert_eq!((c.kind, c.status), (ErrorKind::Server, Some(503)));

    // A 401 can never succeed: one attempt.
    let s = Script::always(Inner::status(401));
    let c = run(s.clone()).await.unwrap_err().classify();
    assert_eq!(s.attempts(), 1);
    assert_eq!((c.kind, c.status), (ErrorKind::Auth, Some(401)));

    // Nothing known in the chain: Other, which the default policy does not retry.
    let s = Script::always(Inner::Message("the model said something odd"));
    let c = run(s.clone()).await.unwrap_err().classify();
    assert_eq!(s.attempts(), 1);
    assert_eq!(c.kind, ErrorKind::Other);
}

#[llm_retry(max = 4, backoff = "fixed", delay = "1s", jitter = "none", max_retry_after = "30s")]
async fn anyhow_call(s: Rc<Script>) -> anyhow::Result<String> {
    s.attempt(Inner::into_anyhow).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "1s", jitter = "none", max_retry_after = "30s")]
async fn anyhow_context_call(s: Rc<Script>) -> anyhow::Result<String> {
    s.attempt(|e| e.into_anyhow().context("calling the model").context("answering the user")).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "1s", jitter = "none", max_retry_after = "30s")]
async fn anyhow_result_context_call(s: Rc<Script>) -> anyhow::Result<String> {
    // (eyre's `WrapErr` has a `context` too: the import stays local.)
    use anyhow::Context as _;
    // `Result::context` on a std error: anyhow's other context type, around an io::Error
    // that (for API errors) wraps the ApiError.
    s.attempt(Inner::into_io).await.context("calling the model")
}

#[tokio::test(start_paused = true)]
async fn anyhow_is_retried_as_its_inner_error_says() {
    retried_as_the_inner_error_says(anyhow_call).await;
}

#[tokio::test(start_paused = true)]
async fn anyhow_context_is_seen_through() {
    retried_as_the_inner_error_says(anyhow_context_call).await;
    retried_as_the_inner_error_says(anyhow_result_context_call).await;
    // The context is kept: the caller still reads it, and can still downcast.
    let err = anyhow_context_call(Script::always(Inner::status(401))).await.unwrap_err();
    assert_eq!(err.to_string(), "answering the user");
    assert_eq!(err.downcast_ref::<ApiError>().map(ApiError::status), Some(Some(401)));
}

#[llm_retry(max = 4, backoff = "fixed", delay = "1s", jitter = "none", max_retry_after = "30s")]
async fn eyre_call(s: Rc<Script>) -> eyre::Result<String> {
    s.attempt(Inner::into_eyre).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "1s", jitter = "none", max_retry_after = "30s")]
async fn eyre_wrap_err_call(s: Rc<Script>) -> eyre::Result<String> {
    use eyre::WrapErr as _;
    s.attempt(Inner::into_io).await.wrap_err("calling the model")
}

#[tokio::test(start_paused = true)]
async fn eyre_is_retried_as_its_inner_error_says() {
    retried_as_the_inner_error_says(eyre_call).await;
}

#[tokio::test(start_paused = true)]
async fn eyre_wrap_err_is_seen_through() {
    retried_as_the_inner_error_says(eyre_wrap_err_call).await;
    let reset = Inner::Io(io::ErrorKind::ConnectionReset);
    let err = eyre_wrap_err_call(Script::new([reset.clone(), reset.clone(), reset.clone(), reset])).await.unwrap_err();
    assert_eq!(err.to_string(), "calling the model");
    assert_eq!(err.downcast_ref::<io::Error>().map(io::Error::kind), Some(io::ErrorKind::ConnectionReset));
}

#[llm_retry(max = 4, backoff = "fixed", delay = "1s", jitter = "none", max_retry_after = "30s")]
async fn box_call(s: Rc<Script>) -> Result<String, BoxError> {
    s.attempt(Inner::into_box).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "1s", jitter = "none", max_retry_after = "30s")]
async fn box_layered_call(s: Rc<Script>) -> Result<String, BoxError> {
    // `?` into the box, through the application's own error layer.
    let reply = s.attempt(|e| Calling { source: e.into_box() }).await?;
    Ok(reply)
}

#[tokio::test(start_paused = true)]
async fn box_dyn_error_is_retried_as_its_inner_error_says() {
    retried_as_the_inner_error_says(box_call).await;
}

#[tokio::test(start_paused = true)]
async fn box_dyn_error_layers_are_seen_through() {
    retried_as_the_inner_error_says(box_layered_call).await;
    let err = box_layered_call(Script::always(Inner::status(401))).await.unwrap_err();
    assert!(err.downcast_ref::<Calling>().is_some(), "{err}");
}

#[allow(clippy::ptr_arg)] // a validator receives `&T`, here `&String`
fn non_empty(text: &String) -> Result<(), InvalidOutput> {
    if text.is_empty() { Err(InvalidOutput::new("the model returned empty text")) } else { Ok(()) }
}

/// `attempt_timeout` needs `E: From<Timeout>` and `validate` needs `E: From<InvalidOutput>`:
/// `run` has `max = 3, backoff = "none", attempt_timeout = "1s", validate = non_empty`.
/// Returns the final errors, a timeout and a rejection, for the caller to downcast.
async fn timeouts_and_rejections_are_retried<E, F, Fut>(run: F) -> (E, E)
where
    E: Classify + fmt::Debug,
    F: Fn(Rc<Script>) -> Fut,
    Fut: Future<Output = Result<String, E>>,
{
    let slow = Rc::new(Script { work: 5 * S, ..Script::plain([]) });
    let timed_out = run(slow.clone()).await.unwrap_err();
    assert_eq!(slow.starts(), [Duration::ZERO, S, 2 * S]);
    assert_eq!(timed_out.classify().kind, ErrorKind::Timeout);

    let empty = Rc::new(Script { reply: "", ..Script::plain([]) });
    let rejected = run(empty.clone()).await.unwrap_err();
    assert_eq!(empty.attempts(), 3);
    assert_eq!(rejected.classify().kind, ErrorKind::InvalidOutput);
    (timed_out, rejected)
}

#[llm_retry(max = 3, backoff = "none", attempt_timeout = "1s", validate = non_empty)]
async fn anyhow_checked(s: Rc<Script>) -> anyhow::Result<String> {
    s.attempt(Inner::into_anyhow).await
}

#[llm_retry(max = 3, backoff = "none", attempt_timeout = "1s", validate = non_empty)]
async fn eyre_checked(s: Rc<Script>) -> eyre::Result<String> {
    s.attempt(Inner::into_eyre).await
}

#[llm_retry(max = 3, backoff = "none", attempt_timeout = "1s", validate = non_empty)]
async fn box_checked(s: Rc<Script>) -> Result<String, BoxError> {
    s.attempt(Inner::into_box).await
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_rejections_arrive_through_from() {
    let (t, v) = timeouts_and_rejections_are_retried(anyhow_checked).await;
    assert!(t.downcast_ref::<Timeout>().is_some_and(|t| !t.is_deadline()), "{t:?}");
    assert!(v.downcast_ref::<InvalidOutput>().is_some(), "{v:?}");

    let (t, v) = timeouts_and_rejections_are_retried(eyre_checked).await;
    assert!(t.downcast_ref::<Timeout>().is_some_and(|t| !t.is_deadline()), "{t:?}");
    assert!(v.downcast_ref::<InvalidOutput>().is_some(), "{v:?}");

    let (t, v) = timeouts_and_rejections_are_retried(box_checked).await;
    assert!(t.downcast_ref::<Timeout>().is_some_and(|t| !t.is_deadline()), "{t:?}");
    assert!(v.downcast_ref::<InvalidOutput>().is_some(), "{v:?}");
}

#[llm_retry(max = 10, backoff = "fixed", delay = "1s", jitter = "none", deadline = "2500ms")]
async fn anyhow_deadline(s: Rc<Script>) -> anyhow::Result<String> {
    s.attempt(Inner::into_anyhow).await
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_an_anyhow_call_short() {
    // Attempts of 1 s, 1 s apart: the second, from 2 s, is cut short at 2.5 s by the
    // deadline, and its `Timeout` reaches the caller through anyhow's `From`.
    let s = Rc::new(Script { work: S, ..Script::plain(std::iter::repeat_n(Inner::status(503), 100)) });
    let start = Instant::now();
    let err = anyhow_deadline(s.clone()).await.unwrap_err();
    assert_eq!(start.elapsed(), 2500 * MS);
    assert_eq!(s.starts(), [Duration::ZERO, 2 * S]);
    assert!(err.downcast_ref::<Timeout>().is_some_and(Timeout::is_deadline), "{err:?}");
    assert_eq!(err.classify().kind, ErrorKind::Timeout);
}
