//! The state machine a [`RetryStream`] runs in `poll_next`: open an attempt, read it, time it
//! out, settle its end with the [`Call`](crate::call::Call), then wait and reopen; with the queue of
//! events for the consumer and the one timer every wait shares.

use super::{Core, Opener, RetryStream, State, StateProj, StreamChunk, StreamEvent, StreamMode, Way};
use crate::classify::Classify;
use crate::engine::{Mode, Routed};
use crate::hooks::{ControlSet, HookSet};
use crate::limiter::InFlight;
use crate::timeout::Timeout;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_core::Stream;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// What one poll of the inner future or stream produced.
enum Step<S, C, E> {
    Open,
    Opened(S),
    Chunk(C),
    Failed(E, Option<Timeout>),
    Ended,
    Pending,
}

/// Whether the armed timer (if any) has fired.
fn fired(timer: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>) -> bool {
    timer.as_pin_mut().is_some_and(|t| t.poll(cx).is_ready())
}

impl<E, H, K, M, F, C, R> Core<'_, E, H, K, M, F, C, R> {
    /// Queues an event for the consumer. The first one waiting takes a slot of its own, so a
    /// stream without retries never allocates a queue.
    pub(super) fn emit(&mut self, event: StreamEvent<C>) {
        if self.next.is_none() && self.pending.is_empty() {
            self.next = Some(event);
        } else {
            self.pending.push_back(event);
        }
    }

    /// The next queued event.
    fn take_event(&mut self) -> Option<StreamEvent<C>> {
        self.next.take().or_else(|| self.pending.pop_front())
    }

    /// Arms the timer for the next wait: `limit` from now, or the deadline if sooner. Disarms
    /// it when neither applies. Reads the clock only when there is something to arm.
    fn arm(&mut self, mut timer: Pin<&mut Option<Sleep>>, limit: Option<Duration>) {
        let now = match (limit, self.deadline) {
            (None, None) => {
                self.cause = None;
                return timer.set(None);
            }
            _ => Instant::now(),
        };
        let mut best = limit.and_then(|l| Some((now.checked_add(l)?, Timeout::attempt(l))));
        if let Some((at, total)) = self.deadline {
            if best.is_none_or(|(b, _)| at <= b) {
                best = Some((at, Timeout::deadline(total)));
            }
        }
        let Some((at, cause)) = best else {
            self.cause = None;
            return timer.set(None);
        };
        self.cause = Some(cause);
        match timer.as_mut().as_pin_mut() {
            Some(sleep) => sleep.reset(at),
            None => timer.set(Some(tokio::time::sleep_until(at))),
        }
    }
}

impl<E, H, K, M, F, Fut, S, C, R> Stream for RetryStream<'_, E, H, K, M, F, Fut, S, C, R>
where
    E: Classify + From<Timeout>,
    H: HookSet<(), E>,
    K: ControlSet,
    M: Mode<E>,
    R: Way<E>,
    F: Opener<R::Picked, Fut>,
    Fut: Future<Output = Result<S, E>>,
    S: Stream<Item = Result<C, E>>,
    C: StreamChunk,
{
    type Item = Result<StreamEvent<C>, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(event) = this.core.take_event() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(e) = this.core.error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            let step = match this.state.as_mut().project() {
                StateProj::Done => return Poll::Ready(None),
                StateProj::Idle => Step::Open,
                StateProj::Waiting => {
                    if this.timer.as_mut().as_pin_mut().is_some_and(|sleep| sleep.poll(cx).is_pending()) {
                        return Poll::Pending;
                    }
                    Step::Open
                }
                StateProj::Opening { wait, fut } => match wait.as_mut().map(|w| w.as_mut().poll(cx)) {
                    // Queued for the limiter: only the deadline runs meanwhile.
                    Some(Poll::Pending) => Step::Pending,
                    Some(Poll::Ready(())) => {
                        *wait = None;
                        this.core.slot = this.core.call.in_flight();
                        this.core.awaiting_first = true;
                        let limit = this.core.options.first_chunk;
                        this.core.arm(this.timer.as_mut(), limit);
                        continue;
                    }
                    None => match fut.poll(cx) {
                        Poll::Ready(Ok(stream)) => Step::Opened(stream),
                        Poll::Ready(Err(e)) => Step::Failed(e, None),
                        Poll::Pending => Step::Pending,
                    },
                },
                StateProj::Reading { stream } => match stream.poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => Step::Chunk(chunk),
                    Poll::Ready(Some(Err(e))) => Step::Failed(e, None),
                    Poll::Ready(None) => Step::Ended,
                    Poll::Pending => Step::Pending,
                },
            };
            let core = &mut *this.core;
            // The attempt's target, for its `Retrying` event (before settling leaves it).
            let target = core.route.target();
            let outcome = match step {
                Step::Open => {
                    // Along a chain, the attempt's target (no chain: nothing to pick).
                    let picked = match core.route.pick(&mut core.call) {
                        Ok(picked) => picked,
                        Err(e) => {
                            // No target left: the call is settled and counted already.
                            core.error = Some(e);
                            this.state.set(State::Done);
                            this.timer.set(None);
                            continue;
                        }
                    };
                    core.attempts = core.attempts.saturating_add(1);
                    core.call.start_attempt();
                    if core.attempts == 1 && core.call.remaining().is_some() {
                        // Read the clock before the remaining time, so the instant is never late.
                        let now = Instant::now();
                        if let Some(left) = core.call.remaining() {
                            core.deadline = now.checked_add(left).map(|at| (at, left));
                        }
                    }
                    let resume = core.resume();
                    // The call's limiter paces stream attempts as it paces any other: the
                    // opener's future is made now and first polled once the limiter lets the
                    // attempt go; meanwhile only the deadline runs, not the first-chunk timeout.
                    let wait = core.call.pacer_wait();
                    let fut = core.opener.open(picked, resume);
                    let queued = wait.is_some();
                    this.state.set(State::Opening { wait, fut });
                    core.awaiting_first = !queued;
                    let limit = if queued { None } else { core.options.first_chunk };
                    core.arm(this.timer.as_mut(), limit);
                    continue;
                }
                Step::Opened(stream) => {
                    this.state.set(State::Reading { stream });
                    continue;
                }
                Step::Chunk(chunk) => {
                    core.on_chunk(chunk);
                    if core.awaiting_first || core.options.idle.is_some() {
                        core.awaiting_first = false;
                        let limit = core.options.idle;
                        core.arm(this.timer.as_mut(), limit);
                    }
                    continue;
                }
                Step::Pending => {
                    if !fired(this.timer.as_mut(), cx) {
                        return Poll::Pending;
                    }
                    let cause = core.cause.take().unwrap_or(Timeout::attempt(Duration::ZERO));
                    core.route.settle(&mut core.call, Err(E::from(cause)), Some(cause))
                }
                Step::Failed(e, timed_out) => core.route.settle(&mut core.call, Err(e), timed_out),
                Step::Ended => {
                    if core.skip.is_some() {
                        core.replay_differs(None);
                    }
                    if core.reset_owed {
                        core.reset_owed = false;
                        core.reset();
                    }
                    core.route.settle(&mut core.call, Ok(()), None)
                }
            };
            // The attempt is over: drop its connection before anything else, then its place.
            this.state.set(State::Done);
            core.slot = InFlight::NONE;
            this.timer.set(None);
            core.cause = None;
            let (attempt, kind, status, delay) = match outcome {
                Routed::End(Ok(())) => continue,
                Routed::End(Err(e)) => {
                    core.error = Some(e);
                    continue;
                }
                Routed::Retry(plan) => (plan.attempt, plan.kind, plan.status, Some(plan.delay)),
                Routed::MoveOn { attempt, kind, status } => (attempt, kind, status, None),
            };
            if core.options.mode == StreamMode::Restart && core.received.chunks > 0 {
                core.reset_owed = true;
            }
            core.skip = None;
            core.emit(StreamEvent::Retrying {
                attempt,
                received: core.received,
                kind,
                status,
                delay: delay.unwrap_or(Duration::ZERO),
                target,
                moving_on: delay.is_none(),
            });
            match delay {
                Some(delay) => {
                    this.timer.set(Some(tokio::time::sleep(delay)));
                    this.state.set(State::Waiting);
                }
                // Moving on to the next target: no back-off.
                None => this.state.set(State::Idle),
            }
        }
    }
}
