//! A call through a fallback chain: [`Call::fallback`] and its [`WithFallback::retry`], and
//! the loop-friendly pair the attribute's `fallback = [...]` expands to,
//! [`Call::next_target`] ("which target now?") and [`Call::settle_target`].

use super::Call;
use super::guard::Phase;
use super::mode::Mode;
use super::pause::Pause;
use super::settle::{Decided, RetryPlan, Sent};
use crate::classify::{Classification, Classify};
use crate::events;
use crate::failover::{CircuitOpen, Fallback, Route, Target, verdict};
use crate::hooks::{ControlSet, HookSet};
use crate::outcome::GiveUp;
use crate::policy::MAX_RULES;
use crate::timeout::Timeout;
use crate::{ErrorKind, breaker::Verdict};
use core::future::Future;
use core::ops::ControlFlow;
use core::pin::pin;

/// What [`Call::settle_routed`] made of an attempt on a chain's target.
#[derive(Debug)]
pub enum Routed<T, E> {
    /// The call ended with this result, counted.
    End(Result<T, E>),
    /// Retry on the same target after the plan's delay; the retry is counted.
    Retry(RetryPlan),
    /// Leave this target for the next one at once (no back-off): the failed attempt's number,
    /// kind and status.
    MoveOn {
        /// The attempt that failed, from 1, counting every target's attempts.
        attempt: u32,
        /// What it failed with.
        kind: ErrorKind,
        /// Its HTTP status, if any.
        status: Option<u16>,
    },
}

/// A [`Call`] that runs through a [`Fallback`] chain: returned by [`Call::fallback`], run by
/// [`retry`](Self::retry).
///
/// ```
/// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Fallback, Target}};
/// static A: Target = Target::new("a");
/// static B: Target = Target::new("b");
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let targets = [&A, &B];
/// let chain = Fallback::new(&targets).unwrap();
/// let out: Result<&str, ApiError> = Policy::DEFAULT.call().fallback(chain).retry(|t| async move { Ok(t.name()) }).await;
/// assert_eq!(out.unwrap(), "a");
/// # }
/// ```
#[must_use = "a call does nothing until `retry` is awaited"]
pub struct WithFallback<'c, C> {
    call: C,
    chain: Fallback<'c>,
}

impl<C> core::fmt::Debug for WithFallback<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WithFallback").field("chain", &self.chain).finish_non_exhaustive()
    }
}

impl<'c, C> WithFallback<'c, C> {
    /// The call and its chain, for the streaming form (`stream::route`).
    pub(crate) fn into_parts(self) -> (C, Fallback<'c>) {
        (self.call, self.chain)
    }
}

impl<'p, T, E, H, K, M> Call<'p, T, E, H, K, M> {
    /// Runs the call through `chain`: each attempt goes to a target, whose `&'static Target`
    /// the body gets; the policy's attempts apply per target, and the chain's table says
    /// when the call moves on. Needs `E: From<CircuitOpen>` (for a call that no breaker lets
    /// through). Set the call's other options before this one.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Breaker, Fallback, Target}};
    /// static PRIMARY_BREAKER: Breaker = Breaker::new("primary");
    /// static PRIMARY: Target = Target::new("primary").breaker(&PRIMARY_BREAKER);
    /// static SECONDARY: Target = Target::new("secondary");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let targets = [&PRIMARY, &SECONDARY];
    /// let chain = Fallback::new(&targets).unwrap();
    /// let out: Result<&str, ApiError> = Policy::DEFAULT
    ///     .call()
    ///     .fallback(chain)
    ///     .retry(|t| async move {
    ///         if t.name() == "primary" { Err(ApiError::from_status(503)) } else { Ok(t.name()) }
    ///     })
    ///     .await;
    /// assert_eq!(out.unwrap(), "secondary"); // after the policy's 4 attempts on the primary
    /// # }
    /// ```
    pub fn fallback<'c>(self, chain: Fallback<'c>) -> WithFallback<'c, Self> {
        WithFallback { call: self, chain }
    }
}

impl<'p, T, E, H, K, M> WithFallback<'_, Call<'p, T, E, H, K, M>>
where
    E: Classify + From<CircuitOpen>,
    H: HookSet<T, E>,
    K: ControlSet,
    M: Mode<E>,
{
    /// Runs `op` with each attempt's target until the call succeeds or gives up, under the
    /// call's deadline and attempt timeout if it has them.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Fallback, Target}};
    /// static ONLY: Target = Target::new("only");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let targets = [&ONLY];
    /// let out: Result<u8, ApiError> =
    ///     Policy::DEFAULT.call().fallback(Fallback::new(&targets).unwrap()).retry(|_| async { Ok(1) }).await;
    /// assert_eq!(out.unwrap(), 1);
    /// # }
    /// ```
    pub async fn retry<F, Fut>(self, mut op: F) -> Result<T, E>
    where
        F: FnMut(&'static Target) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let WithFallback { mut call, chain } = self;
        let mut route = Route::new(chain);
        loop {
            let target = call.next_target(&mut route)?;
            match call.attempt_target(&mut route, op(target)).await {
                ControlFlow::Break(out) => return out,
                ControlFlow::Continue(pause) => pause.await,
            }
        }
    }
}

impl<'p, T, E, H, K, M> Call<'p, T, E, H, K, M>
where
    E: Classify,
    H: HookSet<T, E>,
    K: ControlSet,
    M: Mode<E>,
{
    /// Which target the next attempt uses: the current one for a retry while its breaker lets
    /// calls through, else the next one whose breaker does. `Err` ends the call: no target is
    /// left (its last error), or every breaker refused it before any attempt
    /// ([`CircuitOpen`]); counted as [`GiveUp::CircuitOpen`].
    ///
    /// With [`settle_target`](Self::settle_target), this is the loop the attribute's
    /// `fallback = [...]` writes.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{ApiError, ErrorKind, Policy, RetryExt, failover::{Fallback, Route, Target}};
    /// static SMALL: Target = Target::new("small");
    /// static LARGE: Target = Target::new("large");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let mut call = Policy::DEFAULT.call::<&str, ApiError>();
    /// let targets = [&SMALL, &LARGE];
    /// let mut route = Route::new(Fallback::new(&targets).unwrap());
    /// let out = loop {
    ///     let target = match call.next_target(&mut route) {
    ///         Ok(t) => t,
    ///         Err(e) => break Err(e),
    ///     };
    ///     let result = if target.name() == "small" {
    ///         Err(ApiError::new(ErrorKind::ContextLengthExceeded, "too long"))
    ///     } else {
    ///         Ok(target.name())
    ///     };
    ///     match call.settle_target(&mut route, result) {
    ///         ControlFlow::Break(r) => break r,
    ///         ControlFlow::Continue(pause) => pause.await,
    ///     }
    /// };
    /// assert_eq!(out.unwrap(), "large");
    /// # }
    /// ```
    #[doc(hidden)]
    pub fn next_target(&mut self, route: &mut Route<'_, E>) -> Result<&'static Target, E>
    where
        E: From<CircuitOpen>,
    {
        if let Some(t) = route.pick() {
            return Ok(t);
        }
        let (error, class) = match route.last.take() {
            Some(last) => last,
            None => {
                // No body ran: counted as a call that never sent its first request.
                if self.tally.is_none() && self.guard.phase == Phase::First {
                    self.guard.phase = Phase::Fresh;
                }
                let open = route.circuit_open();
                (E::from(open), open.classify())
            }
        };
        self.finish(Some((&class, GiveUp::CircuitOpen)));
        Err(error)
    }

    /// Runs one attempt on the target [`next_target`](Self::next_target) gave, under the call's
    /// timeouts and after its limiter's wait, and settles it as
    /// [`settle_target`](Self::settle_target) does. The attribute's `fallback = [...]` loop
    /// runs each attempt through it.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Fallback, Route, Target}};
    /// static A: Target = Target::new("a");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let targets = [&A];
    /// let mut call = Policy::DEFAULT.call::<&str, ApiError>().deadline(std::time::Duration::from_secs(5));
    /// let mut route = Route::new(Fallback::new(&targets).unwrap());
    /// let out = loop {
    ///     let target = call.next_target(&mut route).unwrap();
    ///     match call.attempt_target(&mut route, async move { Ok(target.name()) }).await {
    ///         ControlFlow::Break(r) => break r,
    ///         ControlFlow::Continue(pause) => pause.await,
    ///     }
    /// };
    /// assert_eq!(out.unwrap(), "a");
    /// # }
    /// ```
    #[doc(hidden)]
    pub async fn attempt_target<F>(&mut self, route: &mut Route<'_, E>, fut: F) -> ControlFlow<Result<T, E>, Pause>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.start_clock();
        // Held until the attempt is settled: its place in flight, with a capped limiter.
        let _slot = self.wait_for_limiter().await;
        if self.guard.phase == Phase::Fresh {
            self.guard.phase = Phase::First;
        }
        let mut run = pin!(M::run(fut));
        self.mode.arm(run.as_mut(), self.started);
        let (result, timed_out) = run.await;
        self.settle_on_route(route, result, timed_out)
    }

    /// Settles an attempt on the target [`next_target`](Self::next_target) gave:
    /// `Break(result)` to return it, or `Continue(pause)`: await it, then ask for the next
    /// target. A pause that moves on to another target does not sleep.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Fallback, Route, Target}};
    /// static A: Target = Target::new("a");
    /// let mut call = Policy::DEFAULT.call::<u8, ApiError>();
    /// let targets = [&A];
    /// let mut route = Route::new(Fallback::new(&targets).unwrap());
    /// let _target = call.next_target(&mut route).unwrap();
    /// assert!(matches!(call.settle_target(&mut route, Ok(1)), ControlFlow::Break(Ok(1))));
    /// ```
    #[doc(hidden)]
    #[inline]
    pub fn settle_target(
        &mut self,
        route: &mut Route<'_, E>,
        result: Result<T, E>,
    ) -> ControlFlow<Result<T, E>, Pause> {
        self.settle_on_route(route, result, None)
    }

    #[inline]
    fn settle_on_route(
        &mut self,
        route: &mut Route<'_, E>,
        result: Result<T, E>,
        timed_out: Option<Timeout>,
    ) -> ControlFlow<Result<T, E>, Pause> {
        match self.settle_routed(route, result, timed_out) {
            Routed::End(out) => ControlFlow::Break(out),
            Routed::Retry(plan) => ControlFlow::Continue(Pause::after(self.guard.site, plan.delay)),
            Routed::MoveOn { .. } => ControlFlow::Continue(Pause::none(self.guard.site)),
        }
    }

    /// Settles an attempt on the route's current target without sleeping, for loops that
    /// report the outcome before they wait (a stream's `Retrying` event): end, retry on this
    /// target after the plan's delay, or move on to the next target at once.
    #[inline]
    pub(crate) fn settle_routed(
        &mut self,
        route: &mut Route<'_, E>,
        result: Result<T, E>,
        timed_out: Option<Timeout>,
    ) -> Routed<T, E> {
        match result {
            Ok(value) if !H::VALIDATES => {
                route.settle(Verdict::Success);
                self.settle_first_success();
                Routed::End(Ok(value))
            }
            other => self.settle_route_failure(route, other, timed_out),
        }
    }

    #[inline(never)]
    fn settle_route_failure(
        &mut self,
        route: &mut Route<'_, E>,
        result: Result<T, E>,
        timed_out: Option<Timeout>,
    ) -> Routed<T, E> {
        let past_deadline = timed_out.is_some_and(|t| t.is_deadline());
        let class = match (&result, timed_out) {
            (Ok(_), _) => None,
            (Err(_), Some(_)) => Some(Classification::new(ErrorKind::Timeout)),
            (Err(e), None) => Some(e.classify()),
        };
        if let Some(c) = &class {
            // Our own deadline running out says nothing about the target.
            route.settle(if past_deadline { Verdict::Neutral } else { verdict(c.kind) });
        }
        let result = match (result, class) {
            // The breaker opened on this failure and no target is left: the call ends now.
            (Err(e), Some(c)) if !past_deadline && !route.has_next() && route.current_is_open() => {
                self.tally_attempt();
                return Routed::End(self.end_with(e, c, GiveUp::CircuitOpen));
            }
            (Err(e), Some(c)) if !past_deadline && route.has_next() => {
                if route.chain().moves_on_at_once(c.kind) {
                    self.tally_attempt();
                    return self.move_on(route, e, c, "this kind moves on at once");
                }
                if route.current_is_open() {
                    self.tally_attempt();
                    return self.move_on(route, e, c, "the target's circuit breaker opened");
                }
                Err(e)
            }
            (r, _) => r,
        };
        match self.decide(result, timed_out, Sent::Yes, class, route.before) {
            Decided::Ended(out) => {
                route.settle(Verdict::Success);
                Routed::End(out)
            }
            Decided::Retry(plan) => {
                route.settle(verdict(plan.kind));
                Routed::Retry(plan)
            }
            Decided::GiveUp(error, class, reason) => {
                route.settle(verdict(class.kind));
                if reason == GiveUp::RetryAfterTooLong
                    && matches!(class.kind, ErrorKind::RateLimited | ErrorKind::Overloaded)
                    && let Some(b) = route.current().and_then(Target::circuit_breaker)
                    && let Some(wait) = class.retry_after.and_then(|h| h.resolve((self.policy.wall_clock())()))
                {
                    b.trip(wait);
                }
                let moves_on = match reason {
                    GiveUp::Exhausted | GiveUp::RetryAfterTooLong => true,
                    GiveUp::NonRetryable => route.chain().moves_on_at_once(class.kind),
                    _ => false,
                };
                if moves_on && route.has_next() {
                    let why = if reason == GiveUp::NonRetryable { "this kind moves on at once" } else { reason.name() };
                    return self.move_on(route, error, class, why);
                }
                Routed::End(self.end_with(error, class, reason))
            }
        }
    }

    /// Leaves the current target for the next: no back-off, and the policy's attempts start
    /// again there.
    fn move_on(&mut self, route: &mut Route<'_, E>, error: E, class: Classification, why: &str) -> Routed<T, E> {
        self.guard.leave_fast_path();
        // The policy's attempts and backoff start again on the next target.
        if let Some(t) = &mut self.tally {
            t.counts = [0; MAX_RULES];
            t.previous = 0;
            route.before = t.attempt.get();
        }
        let from = route.current().map_or("", Target::name);
        events::moving_on(self.site_name(), from, class.kind, why);
        let moved = Routed::MoveOn { attempt: self.attempts(), kind: class.kind, status: class.status };
        route.leave(error, class);
        moved
    }

    /// Counts an attempt settled without [`decide`](Self::decide).
    fn tally_attempt(&mut self) {
        match &mut self.tally {
            Some(t) => t.attempt = t.attempt.saturating_add(1),
            None => self.tally = Some(super::Tally::FIRST),
        }
    }

    fn end_with(&mut self, error: E, class: Classification, reason: GiveUp) -> Result<T, E> {
        self.finish(Some((&class, reason)));
        Err(error)
    }
}
