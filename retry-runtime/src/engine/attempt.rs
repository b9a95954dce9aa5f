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
        let step = self.start_step(fut);
        Attempt { call: self, step }
    }

    /// The step an attempt of `fut` starts in: the body, behind the limiter's wait if there is
    /// one.
    #[inline(always)]
    fn start_step<F: Future<Output = Result<T, E>>>(&mut self, fut: F) -> Step<M::Run<T, F>> {
        self.start_clock();
        // The limiter's wait is boxed (16 bytes here); it exists only while the limiter throttles.
        // The attempt is counted when its body can start, not while it queues.
        let gate = match self.controls.limiter().and_then(|l| l.wait(f64::from(self.guard.tokens), || self.remaining()))
        {
            Some(wait) => Gate::Waiting(wait),
            None => {
                self.count_attempt();
                Gate::Open
            }
        };
        Step::Running { gate, run: M::run(fut) }
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
    pub fn retry<F, Fut>(self, op: F) -> impl Future<Output = Result<T, E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Retry { call: self, op: Some(op), step: Step::Done }
    }
}

pin_project! {
    /// [`Call::retry`]'s future: the call, the operation and the attempt in progress side by
    /// side, each where it was built. An `async fn` moves its arguments into its body when first
    /// polled: the call's 64 bytes and more were copied on every call, in loads that straddle
    /// the stores that had just built it (which the CPU cannot forward): 12.7 ns a call with no
    /// limiter and 19.3 with one, against 7.9 and 9.7 for the same loop written in place.
    struct Retry<'p, T, E, H, K, M, F, Fut>
    where
        M: Mode<E>,
        Fut: Future<Output = Result<T, E>>,
    {
        call: Call<'p, T, E, H, K, M>,
        // `None` once the call has ended.
        op: Option<F>,
        // `Done` between attempts and before the first.
        #[pin]
        step: Step<M::Run<T, Fut>>,
    }
}

impl<T, E, H, K, M, F, Fut> Future for Retry<'_, T, E, H, K, M, F, Fut>
where
    E: Classify,
    H: HookSet<T, E>,
    K: ControlSet,
    M: Mode<E>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let StepProj::Done = this.step.as_mut().project() {
                // The next attempt, or the first; none once the call has ended.
                let Some(op) = this.op.as_mut() else { return Poll::Pending };
                let fut = op();
                this.step.set(this.call.start_step(fut));
            }
            if let ControlFlow::Break(out) = ready!(poll_step(this.call, this.step.as_mut(), cx)) {
                *this.op = None;
                return Poll::Ready(out);
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
        Running { gate: Gate, #[pin] run: R },
        Sleeping { #[pin] sleep: Sleep },
        Done,
    }
}

/// What stands between a running attempt and its body: nothing, the limiter's wait, or, once
/// that wait is over, the attempt's place in flight (a capped limiter's), given back when the
/// step moves on or the attempt is dropped. One field for the three, the size of the wait and
/// a place side by side (24 bytes), so that dropping an attempt that never waited checks a tag
/// inline: a place of its own was dropped through a call on every attempt, the engine's
/// success path included (21 instructions a call, by `benches/instructions.rs`'s `builder`).
enum Gate {
    Open,
    Waiting(Pin<Box<dyn Future<Output = ()> + Send + 'static>>),
    // Held for its drop, which gives the place back: never read.
    #[allow(dead_code)]
    Holding(InFlight<'static>),
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

    /// Inlined down to the body's poll (see `poll_step`).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        poll_step(this.call, this.step, cx)
    }
}

/// Polls an attempt's step, inlined down to the body's poll: with no limiter wait pending, a
/// success costs the body, one per-thread counter and a few stores. Everything else is in
/// `poll_slow`.
#[inline(always)]
fn poll_step<T, E, H, K, M, F>(
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
    if let StepProj::Running { gate, mut run } = step.as_mut().project()
        && (!K::LIMITS || !matches!(gate, Gate::Waiting(_)))
    {
        call.mode.arm(run.as_mut(), call.started);
        let (result, timed_out) = ready!(run.poll(cx));
        return match result {
            // The step stays `Running` with the finished body: resetting it would drop the
            // body here and again in the attempt's own drop. Polling after `Ready` breaks
            // the `Future` contract, and the attribute and `retry` never do.
            Ok(value) if !H::VALIDATES => {
                call.settle_first_success();
                Poll::Ready(ControlFlow::Break(Ok(value)))
            }
            other => match settle_step(call, step.as_mut(), other, timed_out, Sent::Yes) {
                Some(out) => Poll::Ready(out),
                None => poll_slow(call, step, cx),
            },
        };
    }
    poll_slow(call, step, cx)
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
            StepProj::Running { gate, mut run } => {
                // Armed before the limiter's wait: the deadline and the attempt timeout
                // bound the time an attempt queues as well as the time it runs.
                call.mode.arm(run.as_mut(), call.started);
                let ((result, timed_out), sent) = match gate {
                    Gate::Waiting(w) => match w.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            *gate = Gate::Holding(call.in_flight());
                            call.count_attempt();
                            (ready!(run.poll(cx)), Sent::Yes)
                        }
                        // Timed out in the queue: the body never ran, no request went out.
                        Poll::Pending => (ready!(M::expired(run.as_mut(), cx)), Sent::No),
                    },
                    Gate::Open | Gate::Holding(_) => (ready!(run.poll(cx)), Sent::Yes),
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
