//! The timing modes of a [`Call`](super::Call): [`Untimed`], whose attempts run as they are,
//! and [`Timed`], whose attempts run under a deadline and/or an attempt timeout; [`Mode`] is
//! how each wraps an attempt's future.

use crate::timeout::Timeout;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};
use pin_project_lite::pin_project;
use std::time::Duration;
use tokio::time::Instant;
use tokio::time::Sleep;

/// Calls without a deadline or attempt timeout: the error type needs no `From<Timeout>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Untimed;

/// Calls with a deadline and/or an attempt timeout: the error type needs `From<Timeout>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timed {
    pub(super) deadline: Option<Duration>,
    pub(super) attempt_timeout: Option<Duration>,
}

/// How an attempt's future is run: as is, or under a timeout armed when the attempt starts.
#[diagnostic::on_unimplemented(
    message = "a call with a deadline or attempt timeout needs `{E}: From<llm_retry::Timeout>`",
    label = "the timed-out attempt has to become a `{E}`",
    note = "implement `From<llm_retry::Timeout> for {E}`, or drop `deadline`/`attempt_timeout`"
)]
pub trait Mode<E> {
    /// An attempt's future under this mode: the body's output, and `Some(timeout)` when the
    /// attempt was cut short.
    type Run<T, F: Future<Output = Result<T, E>>>: Future<Output = (Result<T, E>, Option<Timeout>)>;
    /// The total deadline, if any.
    fn deadline(&self) -> Option<Duration>;
    /// Whether the call needs to read the clock when it starts.
    fn timed(&self) -> bool;
    /// Wraps the body's future; no timer is armed until [`arm`](Self::arm).
    fn run<T, F: Future<Output = Result<T, E>>>(fut: F) -> Self::Run<T, F>;
    /// Arms the timer of an attempt that starts now (a no-op once armed, and when untimed).
    fn arm<T, F: Future<Output = Result<T, E>>>(&self, run: Pin<&mut Self::Run<T, F>>, started: Option<Instant>);
    /// Polls the timer alone, without the body (while the attempt waits for the limiter):
    /// ready with the timed-out outcome once it fires; never ready when untimed.
    fn expired<T, F: Future<Output = Result<T, E>>>(
        run: Pin<&mut Self::Run<T, F>>,
        cx: &mut Context<'_>,
    ) -> Poll<(Result<T, E>, Option<Timeout>)>;
}

pin_project! {
    /// An untimed attempt: the body's future, as is.
    #[doc(hidden)]
    pub struct Plain<F> {
        #[pin]
        fut: F,
    }
}

impl<T, E, F: Future<Output = Result<T, E>>> Future for Plain<F> {
    type Output = (Result<T, E>, Option<Timeout>);
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().fut.poll(cx).map(|out| (out, None))
    }
}

impl<E> Mode<E> for Untimed {
    type Run<T, F: Future<Output = Result<T, E>>> = Plain<F>;
    fn deadline(&self) -> Option<Duration> {
        None
    }
    fn timed(&self) -> bool {
        false
    }
    fn run<T, F: Future<Output = Result<T, E>>>(fut: F) -> Plain<F> {
        Plain { fut }
    }
    fn arm<T, F: Future<Output = Result<T, E>>>(&self, _: Pin<&mut Plain<F>>, _: Option<Instant>) {}
    fn expired<T, F: Future<Output = Result<T, E>>>(
        _: Pin<&mut Plain<F>>,
        _: &mut Context<'_>,
    ) -> Poll<(Result<T, E>, Option<Timeout>)> {
        Poll::Pending
    }
}

pin_project! {
    /// A timed attempt: the body's future and its timer, armed when the attempt starts.
    #[doc(hidden)]
    pub struct Bounded<T, E, F> {
        #[pin]
        fut: F,
        #[pin]
        timer: Option<Sleep>,
        cause: Timeout,
        _out: PhantomData<fn() -> (T, E)>,
    }
}

impl<T, E: From<Timeout>, F: Future<Output = Result<T, E>>> Future for Bounded<T, E, F> {
    type Output = (Result<T, E>, Option<Timeout>);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready((out, None));
        }
        match this.timer.as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| (Err(E::from(*this.cause)), Some(*this.cause))),
            None => Poll::Pending,
        }
    }
}

impl<E: From<Timeout>> Mode<E> for Timed {
    type Run<T, F: Future<Output = Result<T, E>>> = Bounded<T, E, F>;
    fn deadline(&self) -> Option<Duration> {
        self.deadline
    }
    fn timed(&self) -> bool {
        true
    }
    fn run<T, F: Future<Output = Result<T, E>>>(fut: F) -> Bounded<T, E, F> {
        Bounded { fut, timer: None, cause: Timeout::attempt(Duration::ZERO), _out: PhantomData }
    }
    fn arm<T, F: Future<Output = Result<T, E>>>(&self, run: Pin<&mut Bounded<T, E, F>>, started: Option<Instant>) {
        let mut this = run.project();
        if this.timer.is_some() {
            return;
        }
        let remaining = match (self.deadline, started) {
            (Some(d), Some(s)) => Some(d.saturating_sub(s.elapsed())),
            _ => None,
        };
        let (limit, cause) = match (self.attempt_timeout, remaining) {
            (Some(a), Some(r)) if r < a => (r, Timeout::deadline(self.deadline.unwrap_or(r))),
            (Some(a), _) => (a, Timeout::attempt(a)),
            (None, Some(r)) => (r, Timeout::deadline(self.deadline.unwrap_or(r))),
            (None, None) => return,
        };
        *this.cause = cause;
        this.timer.set(Some(tokio::time::sleep(limit)));
    }
    fn expired<T, F: Future<Output = Result<T, E>>>(
        run: Pin<&mut Bounded<T, E, F>>,
        cx: &mut Context<'_>,
    ) -> Poll<(Result<T, E>, Option<Timeout>)> {
        let this = run.project();
        match this.timer.as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| (Err(E::from(*this.cause)), Some(*this.cause))),
            None => Poll::Pending,
        }
    }
}

impl From<Untimed> for Timed {
    fn from(_: Untimed) -> Timed {
        Timed::default()
    }
}
