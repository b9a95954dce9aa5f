//! Starting and running an attempt: [`Call::attempt`] and its [`Attempt`] future (the body
//! under the call's timeouts, after the limiter's wait, then the back-off sleep), and the
//! clock and limiter calls for loops that run attempts themselves.

use super::Call;
use super::mode::Mode;
use super::settle::Sent;
use crate::classify::Classify;
use crate::hooks::{ControlSet, HookSet};
use crate::limiter::InFlight;
use crate::timeout::Timeout;
use core::future::Future;
use core::ops::ControlFlow;
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use pin_project_lite::pin_project;
use std::time::Duration;
use tokio::time::Instant;
use tokio::time::Sleep;

impl<'p, T, E, H, K, M> Call<'p, T, E, H, K, M>
where
    E: Classify,
    H: HookSet<T, E>,
    K: ControlSet,
    M: Mode<E>,
{
    /// Runs one attempt, then decides: `Break(result)` to return it, `Continue` after sleeping
    /// to run the next attempt. This is the one runtime call per attempt that the attribute's
    /// expansion makes.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let policy = Policy::DEFAULT;
    /// let mut call = policy.call::<u8, ApiError>();
    /// let out = loop {
    ///     if let ControlFlow::Break(r) = call.attempt(async { Ok(7) }).await {
    ///         break r;
    ///     }
    /// };
    /// assert_eq!(out.unwrap(), 7);
    /// # }
    /// ```
    #[inline(always)]
    pub fn attempt<F: Future<Output = Result<T, E>>>(&mut self, fut: F) -> Attempt<'_, 'p, T, E, H, K, M, F> {
        self.start_clock();
        // The limiter's wait is boxed (16 bytes here); it exists only while the limiter throttles.
        // The attempt is counted when its body can start, not while it queues.
        let wait = self.controls.limiter().and_then(|l| l.wait(f64::from(self.guard.tokens), || self.remaining()));
        if wait.is_none() {
            self.count_attempt();
        }
        Attempt { call: self, step: Step::Running { wait, slot: InFlight::NONE, run: M::run(fut) } }
    }

    /// Waits for the [`limiter`](Self::limiter)'s token, if the call has one (for loops that
    /// run attempts themselves: call it after [`start_attempt`](Self::start_attempt)).
    /// Returns at once after one relaxed load while the endpoint has never throttled. Hold
    /// what it returns until the attempt ends: with a
    /// [`max_in_flight`](crate::limits::LimiterBuilder::max_in_flight) cap it is the attempt's
    /// place in flight.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>();
    /// let _slot = call.wait_for_limiter().await;
    /// # }
    /// ```
    pub async fn wait_for_limiter(&self) -> InFlight<'static> {
        let limiter = self.controls.limiter();
        if let Some(wait) = limiter.and_then(|l| l.wait(f64::from(self.guard.tokens), || self.remaining())) {
            wait.await;
        }
        InFlight::of(limiter)
    }

    /// The place in flight an attempt holds once its limiter's wait is over.
    pub(crate) fn in_flight(&self) -> InFlight<'static> {
        InFlight::of(self.controls.limiter())
    }

    /// The limiter's wait before an attempt whose body the caller runs itself (a stream's
    /// opener): `None` to go now.
    pub(crate) fn pacer_wait(&self) -> Option<core::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>> {
        self.controls.limiter().and_then(|l| l.wait(f64::from(self.guard.tokens), || self.remaining()))
    }

    /// Marks the start of an attempt (for loops that run attempts themselves; see
    /// [`settle`](Self::settle)). Reads the clock on the first attempt only if a deadline,
    /// timeout or notify hook needs it.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let mut call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>();
    /// call.start_attempt();
    /// ```
    pub fn start_attempt(&mut self) {
        self.start_clock();
        self.count_attempt();
    }

    /// Reads the clock on the first attempt, if a deadline, timeout or notify hook needs it.
    pub(super) fn start_clock(&mut self) {
        if self.started.is_none() && (self.mode.timed() || H::NOTIFIES) {
            self.started = Some(Instant::now());
        }
    }

    /// The time left before the deadline, if there is one (for loops that bound their own
    /// waits, such as a stream's reads).
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>();
    /// assert_eq!(call.remaining(), None);
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        let deadline = self.mode.deadline()?;
        Some(deadline.saturating_sub(self.started.map_or(Duration::ZERO, |s| s.elapsed())))
    }

    /// Runs `op` until it succeeds or the policy gives up.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let out: Result<(), ApiError> = Policy::DEFAULT.call().retry(|| async { Err(ApiError::from_status(401)) }).await;
    /// assert_eq!(out.unwrap_err().status(), Some(401));
    /// # }
    /// ```
    pub async fn retry<F, Fut>(mut self, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        loop {
            if let ControlFlow::Break(r) = self.attempt(op()).await {
                return r;
            }
        }
    }
}

pin_project! {
    /// One attempt of a [`Call`]: the body's future (under the call's timeouts), then, when the
    /// call retries, the back-off sleep in the same place. Returned by [`Call::attempt`].
    #[must_use = "an attempt does nothing unless awaited"]
    pub struct Attempt<'c, 'p, T, E, H, K, M, F>
    where
        M: Mode<E>,
        F: Future<Output = Result<T, E>>,
    {
        call: &'c mut Call<'p, T, E, H, K, M>,
        #[pin]
        step: Step<M::Run<T, F>>,
    }
}

pin_project! {
    #[project = StepProj]
    enum Step<R> {
        Running {
            wait: Option<Pin<Box<dyn Future<Output = ()> + Send + 'static>>>,
            // The attempt's place in flight (a capped limiter's): given back when the step
            // moves on, or the attempt is dropped.
            slot: InFlight<'static>,
            #[pin] run: R,
        },
        Sleeping { #[pin] sleep: Sleep },
        Done,
    }
}

impl<T, E, H, K, M, F> Future for Attempt<'_, '_, T, E, H, K, M, F>
where
    E: Classify,
    H: HookSet<T, E>,
    K: ControlSet,
    M: Mode<E>,
    F: Future<Output = Result<T, E>>,
{
    type Output = ControlFlow<Result<T, E>>;

    /// Inlined down to the body's poll: with no limiter wait pending, a success costs the
    /// body, one per-thread counter and a few stores. Everything else is in `poll_slow`.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut step = this.step;
        if let StepProj::Running { wait, mut run, .. } = step.as_mut().project()
            && (!K::LIMITS || wait.is_none())
        {
            this.call.mode.arm(run.as_mut(), this.call.started);
            let (result, timed_out) = ready!(run.poll(cx));
            return match result {
                // The step stays `Running` with the finished body: resetting it would drop the
                // body here and again in the attempt's own drop. Polling after `Ready` breaks
                // the `Future` contract, and the attribute and `retry` never do.
                Ok(value) if !H::VALIDATES => {
                    this.call.settle_first_success();
                    Poll::Ready(ControlFlow::Break(Ok(value)))
                }
                other => match settle_step(this.call, step.as_mut(), other, timed_out, Sent::Yes) {
                    Some(out) => Poll::Ready(out),
                    None => poll_slow(this.call, step, cx),
                },
            };
        }
        poll_slow(this.call, step, cx)
    }
}

/// Settles a finished attempt of an [`Attempt`]: `Some(output)` when the call ends, `None`
/// once the back-off sleep is in its step.
fn settle_step<T, E, H, K, M, F>(
    call: &mut Call<'_, T, E, H, K, M>,
    mut step: Pin<&mut Step<M::Run<T, F>>>,
    result: Result<T, E>,
    timed_out: Option<Timeout>,
    sent: Sent,
) -> Option<ControlFlow<Result<T, E>>>
where
    E: Classify,
    H: HookSet<T, E>,
    K: ControlSet,
    M: Mode<E>,
    F: Future<Output = Result<T, E>>,
{
    match call.settle_sent(result, timed_out, sent) {
        ControlFlow::Break(out) => {
            step.set(Step::Done);
            Some(ControlFlow::Break(out))
        }
        ControlFlow::Continue(plan) => {
            step.set(Step::Sleeping { sleep: tokio::time::sleep(plan.delay) });
            None
        }
    }
}

/// The rest of an attempt: the limiter's wait, the back-off sleep, and polls after the end.
#[inline(never)]
fn poll_slow<T, E, H, K, M, F>(
    call: &mut Call<'_, T, E, H, K, M>,
    mut step: Pin<&mut Step<M::Run<T, F>>>,
    cx: &mut Context<'_>,
) -> Poll<ControlFlow<Result<T, E>>>
where
    E: Classify,
    H: HookSet<T, E>,
    K: ControlSet,
    M: Mode<E>,
    F: Future<Output = Result<T, E>>,
{
    loop {
        match step.as_mut().project() {
            StepProj::Running { wait, slot, mut run } => {
                // Armed before the limiter's wait: the deadline and the attempt timeout
                // bound the time an attempt queues as well as the time it runs.
                call.mode.arm(run.as_mut(), call.started);
                let ((result, timed_out), sent) = match wait {
                    Some(w) => match w.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            *wait = None;
                            *slot = call.in_flight();
                            call.count_attempt();
                            (ready!(run.poll(cx)), Sent::Yes)
                        }
                        // Timed out in the queue: the body never ran, no request went out.
                        Poll::Pending => (ready!(M::expired(run.as_mut(), cx)), Sent::No),
                    },
                    None => (ready!(run.poll(cx)), Sent::Yes),
                };
                if let Some(out) = settle_step(call, step.as_mut(), result, timed_out, sent) {
                    return Poll::Ready(out);
                }
            }
            StepProj::Sleeping { sleep } => {
                ready!(sleep.poll(cx));
                step.set(Step::Done);
                return Poll::Ready(ControlFlow::Continue(()));
            }
            StepProj::Done => return Poll::Pending,
        }
    }
}
