//! The per-call state machine shared by the attribute and the builder API.
//!
//! One [`Call`] lives for one call of a retried fn, and each attempt makes one call into it:
//! - [`Call::settle_paused`] when the caller runs the body itself (nothing wraps it: no deadline,
//!   attempt timeout, limiter or notify hook). It classifies the result and decides, and hands
//!   back either the result or a [`Pause`] to await before the next attempt.
//! - [`Call::attempt`] otherwise: its future runs the body under the timeouts and after the
//!   limiter's wait, decides, notifies, and sleeps.
//!
//! The caller's loop only returns on `Break`. When the first attempt succeeds, nothing is
//! allocated, no random number is drawn, and the clock is read only if a deadline, an attempt
//! timeout or a notify hook is configured.
//!
//! This file holds the [`Call`] itself, what it remembers between attempts (`Tally`) and its
//! constructors. The rest, one concern per file:
//! - `mode`: the timing modes, [`Untimed`] and [`Timed`], and how each runs an attempt's future.
//! - `guard`: the call's `Phase` for the stats, and the `Guard` that counts a dropped call.
//! - `configure`: the builder methods that attach controls, hooks and time limits to a call.
//! - `attempt`: starting and running an attempt: [`Call::attempt`] and its [`Attempt`] future.
//! - `settle`: settling an attempt's outcome: classify, count, and retry ([`RetryPlan`]) or end.
//! - `pause`: the loop whose caller runs the body itself: [`Call::settle_paused`] and [`Pause`].
//! - `fallback`: a call through a fallback chain of targets ([`Call::fallback`]).

mod attempt;
mod configure;
mod fallback;
mod guard;
mod mode;
mod pause;
mod settle;

pub use attempt::Attempt;
pub(crate) use fallback::Routed;
pub use fallback::WithFallback;
pub use mode::{Mode, Timed, Untimed};
pub use pause::Pause;
pub use settle::RetryPlan;

use crate::hooks::{Controls, Hooks};
use crate::stats::Site;
use crate::{Policy, policy::MAX_RULES};
use core::marker::PhantomData;
use core::num::NonZeroU32;
use guard::{Guard, Phase};
use tokio::time::Instant;

/// One call of a retried operation: the attempt counter, the per-kind counts, the previous
/// delay, and the hooks. The attribute builds one per call; builder users get one from
/// [`Policy::call`](crate::RetryExt::call).
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, Policy};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let policy = Policy::DEFAULT;
/// let mut n = 0;
/// let out: Result<u32, ApiError> = policy
///     .call()
///     .deadline(Duration::from_secs(30))
///     .notify(|ev: &llm_retry_runtime::RetryEvent<'_, ApiError>| println!("retry in {:?}", ev.delay))
///     .retry(|| { n += 1; let k = n; async move { if k < 3 { Err(ApiError::from_status(502)) } else { Ok(k) } } })
///     .await;
/// assert_eq!(out.unwrap(), 3);
/// # }
/// ```
pub struct Call<'p, T, E, H = Hooks, K = Controls, M = Untimed> {
    policy: &'p Policy,
    guard: Guard,
    /// Written by the first attempt that does not end the call: a call that succeeds at once
    /// stores only this `None`.
    tally: Option<Tally>,
    started: Option<Instant>,
    hooks: H,
    /// The per-endpoint controls: budget, limiter and adaptive delay.
    controls: K,
    mode: M,
    _out: PhantomData<fn() -> (T, E)>,
}

/// What a retrying call remembers between its attempts.
#[derive(Debug, Clone, Copy)]
struct Tally {
    /// The attempts that have ended: never 0, which leaves `Option<Tally>` no larger.
    attempt: NonZeroU32,
    /// The attempts that ended under each of the policy's rules.
    /// `u16` holds every limit a rule accepts ([`MAX_RULE_ATTEMPTS`](crate::policy::MAX_RULE_ATTEMPTS)), and keeps `Tally` at
    /// 24 bytes, the same as `u8` would.
    counts: [u16; MAX_RULES],
    /// The previous delay in nanoseconds (saturating): 8 bytes where a `Duration` takes 16,
    /// which pays for one of the three per-endpoint references below.
    previous: u64,
}

impl Tally {
    /// The tally after a first attempt.
    const FIRST: Tally = Tally { attempt: NonZeroU32::MIN, counts: [0; MAX_RULES], previous: 0 };
}

impl<T, E> Call<'static, T, E> {
    /// A call at `site`, under the site's policy. Touches no counter and reads no clock: the
    /// call is counted when its first attempt ends, or when it is dropped (its first attempt
    /// is taken to start with it, unless a [`limiter`](Call::limiter) queues it).
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, call::Call, Policy, stats::Site};
    /// static SITE: Site = Site::new("docs::new", Policy::DEFAULT);
    /// let call: Call<'_, (), ApiError> = Call::new(&SITE);
    /// # drop(call);
    /// assert_eq!(SITE.stats().calls, 1);
    /// ```
    pub fn new(site: &'static Site) -> Self {
        Call::with_policy(site.policy(), Some(site))
    }

    /// A call at `site` under `policy` instead of the site's own: the attribute's `policy =
    /// PATH` passes the policy its [`PolicySlot`](crate::config::PolicySlot) holds. Everything
    /// that decides (settling, the attempt limit, the backoff, Retry-After) reads the call's
    /// policy; the site only counts.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, Policy, call::Call, config::PolicySlot, stats::Site};
    /// static SITE: Site = Site::new("docs::at_site", Policy::DEFAULT);
    /// static LOADED: PolicySlot = PolicySlot::new("docs::at_site", Policy::DEFAULT);
    /// let call: Call<'_, (), ApiError> = Call::at_site(&SITE, LOADED.get());
    /// # drop(call);
    /// ```
    #[doc(hidden)]
    pub fn at_site(site: &'static Site, policy: &'static Policy) -> Self {
        Call::with_policy(policy, Some(site))
    }
}

impl<'p, T, E> Call<'p, T, E> {
    /// A call under `policy`, counted at `site` if there is one.
    pub(crate) fn with_policy(policy: &'p Policy, site: Option<&'static Site>) -> Self {
        Call {
            policy,
            // The first attempt starts with the call; a limiter moves it back to `Fresh`,
            // since that attempt may queue before its body runs.
            guard: Guard { site, phase: Phase::First, tokens: 0 },
            tally: None,
            started: None,
            hooks: Hooks { validate: (), notify: (), when: () },
            controls: Controls { budget: (), limiter: (), adaptive: () },
            mode: Untimed,
            _out: PhantomData,
        }
    }
}

impl<'p, T, E, H, K, M> Call<'p, T, E, H, K, M> {
    /// Counts an attempt whose body starts now.
    fn count_attempt(&mut self) {
        match (self.guard.phase, self.guard.site) {
            (Phase::Fresh, _) => self.guard.phase = Phase::First,
            (Phase::Slow, Some(site)) => site.on_slow_attempt(),
            _ => {}
        }
    }

    /// The attempts that have ended.
    fn attempts(&self) -> u32 {
        self.tally.map_or(0, |t| t.attempt.get())
    }

    /// The same call with its hooks, controls and mode mapped by `f`.
    fn map<H2, K2, M2>(self, f: impl FnOnce(H, K, M) -> (H2, K2, M2)) -> Call<'p, T, E, H2, K2, M2> {
        let (hooks, controls, mode) = f(self.hooks, self.controls, self.mode);
        Call {
            policy: self.policy,
            guard: self.guard,
            tally: self.tally,
            started: self.started,
            hooks,
            controls,
            mode,
            _out: PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-endpoint references (budget, limiter, adaptive: 24 bytes) cost 16, because
    /// the previous delay is kept in 8 bytes instead of a 16-byte `Duration`.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_per_endpoint_references_add_at_most_16_bytes() {
        let size = core::mem::size_of::<Call<'static, (), std::io::Error>>();
        println!("size_of::<Call> = {size}");
        assert!(size <= 72 + 16, "{size}");
    }
}
