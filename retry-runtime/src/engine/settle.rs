//! Settling an attempt's outcome: classify it, count it, and either end the call or plan the
//! next attempt ([`RetryPlan`]) with its delay (backoff, or a Retry-After hint and its jitter).

use super::guard::Phase;
use super::mode::Mode;
use super::{Call, Tally};
use crate::ErrorKind;
use crate::classify::{Classification, Classify};
use crate::events;
use crate::hooks::{ControlSet, DelaySource, HookSet, RetryEvent};
use crate::outcome::GiveUp;
use crate::rng::with_rng;
use crate::stats::Site;
use crate::timeout::Timeout;
use core::ops::ControlFlow;
use rand::RngExt;
use std::time::Duration;

/// The decision to retry: what failed, and how long to wait before the next attempt.
///
/// Returned by [`Call::settle`] for loops that sleep themselves, such as a stream that reports
/// the retry to its consumer before waiting.
///
/// ```
/// use core::ops::ControlFlow;
/// use llm_retry_runtime::{RetryExt, ApiError, ErrorKind, Policy};
/// let mut call = Policy::DEFAULT.call::<(), ApiError>();
/// call.start_attempt();
/// match call.settle(Err(ApiError::from_status(503)), None) {
///     ControlFlow::Continue(plan) => {
///         assert_eq!((plan.attempt, plan.kind, plan.status), (1, ErrorKind::Server, Some(503)));
///     }
///     ControlFlow::Break(_) => unreachable!("a 503 is retried"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPlan {
    /// The attempt that failed, from 1.
    pub attempt: u32,
    /// What it failed with.
    pub kind: ErrorKind,
    /// Its HTTP status, if any.
    pub status: Option<u16>,
    /// How long to wait before the next attempt.
    pub delay: Duration,
    /// Where the delay came from.
    pub source: DelaySource,
}

type Next<T, E> = ControlFlow<Result<T, E>, RetryPlan>;

/// What [`Call::decide`] made of a finished attempt.
pub(super) enum Decided<T, E> {
    /// The call ended with this result, counted (a validated success).
    Ended(Result<T, E>),
    /// Retry after the plan's delay; the retry is counted.
    Retry(RetryPlan),
    /// The call would give up for this reason; nothing is counted yet.
    GiveUp(E, Classification, GiveUp),
}

/// Whether an attempt's request went out: `No` for an attempt cut short while it queued for
/// the limiter, whose body never ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    Yes,
    No,
}

impl<'p, T, E, H, K, M> Call<'p, T, E, H, K, M>
where
    E: Classify,
    H: HookSet<T, E>,
    K: ControlSet,
    M: Mode<E>,
{
    /// Settles an attempt's outcome without sleeping: `Break(result)` to return it, or
    /// `Continue(plan)` to wait `plan.delay` and try again. `timed_out` says the attempt was
    /// cut short by a timeout (the error is then treated as a Timeout; a deadline gives up).
    /// Stats, events and hooks are handled here, exactly as in [`attempt`](Self::attempt).
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// let mut call = Policy::DEFAULT.call::<u8, ApiError>();
    /// call.start_attempt();
    /// assert!(matches!(call.settle(Ok(1), None), ControlFlow::Break(Ok(1))));
    /// ```
    #[inline]
    pub fn settle(&mut self, result: Result<T, E>, timed_out: Option<Timeout>) -> ControlFlow<Result<T, E>, RetryPlan> {
        self.settle_sent(result, timed_out, Sent::Yes)
    }

    /// [`settle`](Self::settle), saying whether the attempt's request went out.
    #[inline(always)]
    pub(super) fn settle_sent(&mut self, result: Result<T, E>, timed_out: Option<Timeout>, sent: Sent) -> Next<T, E> {
        match result {
            // The fast path: an unvalidated success returns as it is; only counters move.
            Ok(value) if !H::VALIDATES => {
                self.settle_first_success();
                ControlFlow::Break(Ok(value))
            }
            other => self.settle_failure(other, timed_out, sent),
        }
    }

    pub(super) fn site_name(&self) -> &'static str {
        self.guard.site.map_or("anonymous", Site::name)
    }

    fn end(&mut self, out: Result<T, E>, class: Option<(&Classification, GiveUp)>) -> Next<T, E> {
        self.finish(class);
        ControlFlow::Break(out)
    }

    /// The bookkeeping of a call's end: a success (`None`), or a give-up and its reason.
    pub(super) fn finish(&mut self, class: Option<(&Classification, GiveUp)>) {
        if class.is_some() {
            self.guard.leave_fast_path();
        }
        self.guard.phase = Phase::Done;
        match class {
            None => self.count_success(),
            Some((c, reason)) => {
                if let Some(site) = self.guard.site {
                    site.on_give_up(reason);
                }
                events::gave_up(self.site_name(), self.attempts(), c.kind, c.status, reason);
            }
        }
    }

    /// The bookkeeping of a success that needs no validation. The call ends here, so the
    /// attempt number is left as it is: only a first attempt has `Phase::First`.
    #[inline]
    pub(super) fn settle_first_success(&mut self) {
        if let Some(site) = self.guard.site {
            if self.guard.phase == Phase::First {
                site.on_first_try_success();
            } else {
                site.on_success(self.attempts().saturating_add(1));
            }
        }
        self.settle_success_end();
    }

    /// The end of an unvalidated success, once it is counted: the endpoint's controls hear of
    /// it, and the call is done.
    #[inline]
    pub(super) fn settle_success_end(&mut self) {
        self.tell_controls_success();
        // Last, after the counters' stores: the compiler then sees `Done` when the guard is
        // dropped right after, and the drop's check folds away.
        self.guard.phase = Phase::Done;
    }

    /// The bookkeeping of a success: the attempt's number, the stats and the endpoint's
    /// controls. Kept apart from the result, so the fast path never moves it.
    #[inline]
    fn count_success(&mut self) {
        if let Some(site) = self.guard.site {
            site.on_success(self.attempts());
        }
        self.tell_controls_success();
    }

    /// Tells the endpoint's controls that a call succeeded.
    #[inline]
    fn tell_controls_success(&self) {
        if let Some(budget) = self.controls.budget() {
            budget.deposit();
        }
        if let Some(limiter) = self.controls.limiter() {
            limiter.record(false);
        }
        if let Some(adaptive) = self.controls.adaptive() {
            adaptive.record_success();
        }
    }

    /// Classifies a finished attempt and decides. `sent` says whether its request went out:
    /// an attempt cut short while it queued for the limiter tells the endpoint's controls
    /// nothing, since the server never saw it.
    #[inline(never)]
    fn settle_failure(&mut self, result: Result<T, E>, timed_out: Option<Timeout>, sent: Sent) -> Next<T, E> {
        match self.decide(result, timed_out, sent, None, 0) {
            Decided::Ended(out) => ControlFlow::Break(out),
            Decided::Retry(plan) => ControlFlow::Continue(plan),
            Decided::GiveUp(error, class, reason) => self.end(Err(error), Some((&class, reason))),
        }
    }

    /// Classifies a finished attempt (unless `class` is given: the caller classified it
    /// already) and decides, leaving a give-up to the caller: a fallback chain may move on
    /// to its next target instead. `before` counts the attempts made on earlier targets of a
    /// chain: the policy's attempt limit and backoff apply to the attempts after them.
    pub(super) fn decide(
        &mut self,
        result: Result<T, E>,
        timed_out: Option<Timeout>,
        sent: Sent,
        class: Option<Classification>,
        before: u32,
    ) -> Decided<T, E> {
        let attempt = match &mut self.tally {
            Some(t) => {
                t.attempt = t.attempt.saturating_add(1);
                t.attempt
            }
            None => self.tally.insert(Tally::FIRST).attempt,
        }
        .get();
        let policy = self.policy;
        let (error, class, validated) = match result {
            Ok(value) => match self.hooks.validate(&value) {
                None => {
                    self.finish(None);
                    return Decided::Ended(Ok(value));
                }
                Some(e) => (e, Classification::new(ErrorKind::InvalidOutput), true),
            },
            Err(e) => match timed_out {
                Some(t) if t.is_deadline() => {
                    if let Some(limiter) = self.controls.limiter().filter(|_| sent == Sent::Yes) {
                        limiter.abandoned();
                    }
                    let c = Classification::new(ErrorKind::Timeout);
                    return Decided::GiveUp(e, c, GiveUp::Deadline);
                }
                Some(_) => (e, Classification::new(ErrorKind::Timeout), false),
                None => {
                    let c = class.unwrap_or_else(|| e.classify());
                    (e, c, false)
                }
            },
        };
        let sent = sent == Sent::Yes;
        if let Some(limiter) = self.controls.limiter().filter(|_| sent) {
            if matches!(class.kind, ErrorKind::RateLimited | ErrorKind::Overloaded) {
                // The server's word on when to come back pauses every caller of the endpoint,
                // for no longer than the policy would wait for it.
                let hint = class.retry_after.and_then(|h| h.resolve((policy.wall_clock())()));
                limiter.throttled(hint.map(|h| h.min(policy.max_retry_after())));
            } else {
                limiter.record(false);
            }
        }

        let retryable = validated
            || self.hooks.when(&error).unwrap_or_else(|| {
                class.should_retry.unwrap_or_else(|| policy.retry_on().matches(class.kind, class.status))
            });
        if !retryable {
            return Decided::GiveUp(error, class, GiveUp::NonRetryable);
        }
        if let Some(adaptive) = self.controls.adaptive().filter(|_| sent) {
            adaptive.record_error();
        }

        let n_on_target = attempt.saturating_sub(before);
        let rule = policy.rule_for(class.kind, class.status);
        // The tally was written at the top; `get_or_insert` only reaches it.
        let tally = self.tally.get_or_insert(Tally::FIRST);
        let mut n = attempt.saturating_sub(before);
        if let Some((i, r)) = rule {
            tally.counts[i] = tally.counts[i].saturating_add(1);
            n = u32::from(tally.counts[i]);
            if r.attempt_limit().is_some_and(|max| n >= max) {
                return Decided::GiveUp(error, class, GiveUp::Exhausted);
            }
        }
        if n_on_target >= policy.max_attempts() {
            return Decided::GiveUp(error, class, GiveUp::Exhausted);
        }

        let hint = if policy.respects_retry_after() {
            class.retry_after.and_then(|h| h.resolve((policy.wall_clock())()))
        } else {
            None
        };
        let elapsed = self.started.map_or(Duration::ZERO, |s| s.elapsed());
        // The time left before the deadline, if there is one.
        let left = self.mode.deadline().map(|d| d.saturating_sub(elapsed));
        let (delay, source) = match hint {
            Some(h) if h > policy.max_retry_after() => {
                return Decided::GiveUp(error, class, GiveUp::RetryAfterTooLong);
            }
            // The server's hint decides, not the jitter drawn on top of it: a hint that lands
            // inside the deadline is waited for, its jitter clamped to the time left.
            Some(h) => match left {
                Some(left) if h > left => {
                    return Decided::GiveUp(error, class, GiveUp::Deadline);
                }
                _ => {
                    let room = left.map_or(Duration::MAX, |l| l.saturating_sub(h));
                    (h.saturating_add(with_rng(|rng| hint_jitter(h, rng)).min(room)), DelaySource::RetryAfter)
                }
            },
            None => {
                let (backoff, jitter) = policy.backoff_for(rule.map(|(_, r)| r));
                let d = with_rng(|rng| {
                    crate::backoff::jittered(&jitter, &backoff, n, Duration::from_nanos(tally.previous), rng)
                });
                let d = self.controls.adaptive().map_or(d, |a| a.scale(d));
                if left.is_some_and(|l| d >= l) {
                    return Decided::GiveUp(error, class, GiveUp::Deadline);
                }
                (d, DelaySource::Backoff)
            }
        };
        if sent && self.controls.budget().is_some_and(|b| !b.withdraw()) {
            return Decided::GiveUp(error, class, GiveUp::BudgetExhausted);
        }

        self.hooks.notify(&RetryEvent {
            site: self.site_name(),
            attempt,
            error: &error,
            kind: class.kind,
            status: class.status,
            delay,
            source,
            elapsed,
        });
        events::retrying(self.site_name(), attempt, class.kind, class.status, delay, source);
        if let Some(site) = self.guard.site {
            site.on_retry(delay);
            site.on_retry_kind(class.kind);
            #[cfg(feature = "metrics")]
            crate::metrics::record_retry(site, class.kind, delay);
        }
        self.tally.get_or_insert(Tally::FIRST).previous = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.guard.leave_fast_path();
        Decided::Retry(RetryPlan { attempt, kind: class.kind, status: class.status, delay, source })
    }
}

/// The jitter on top of a Retry-After hint, so that clients told the same instant do not all
/// come back together: `U(0, clamp(hint/10, 10 ms, 1 s))`.
pub(crate) fn hint_jitter(hint: Duration, rng: &mut impl rand::Rng) -> Duration {
    let spread = (hint / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    spread.mul_f64(rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn hint_jitter_is_small_and_bounded() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for (hint, max) in [(1u64, 10u64), (500, 50), (2_000, 200), (60_000, 1_000), (u64::MAX / 2, 1_000)] {
            let hint = Duration::from_millis(hint);
            for _ in 0..1000 {
                assert!(hint_jitter(hint, &mut rng) <= Duration::from_millis(max));
            }
        }
    }
}
