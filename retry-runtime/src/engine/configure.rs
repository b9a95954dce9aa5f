//! The builder methods on [`Call`]: the per-endpoint controls (`budget`, `limiter`,
//! `adaptive`), the stats `site`, the `notify`, `validate` and `when` hooks, and the time
//! limits (`deadline`, `attempt_timeout`).

use super::Call;
use super::guard::Phase;
use super::mode::Timed;
use crate::adaptive::Adaptive;
use crate::budget::Budget;
use crate::hooks::{Controls, Hooks, Notifier, Predicate, RetryEvent, SharedSlot, Validator};
use crate::limiter::Limiter;
use crate::stats::Site;
use crate::validate::InvalidOutput;
use std::time::Duration;

/// A [`Call`] with its hook slots `V, N, W` (see [`Hooks`]) and control slots `B, L, A` (see
/// [`Controls`]).
type CallWith<'p, T, E, V, N, W, B, L, A, M> = Call<'p, T, E, Hooks<V, N, W>, Controls<B, L, A>, M>;

impl<'p, T, E, V, N, W, B, L, A, M> Call<'p, T, E, Hooks<V, N, W>, Controls<B, L, A>, M> {
    /// Spends retries from `budget`, shared by every call to one endpoint: when it is empty
    /// the call gives up at once with [`GiveUp::BudgetExhausted`](crate::GiveUp::BudgetExhausted).
    /// Successes refill it.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Budget, Policy};
    /// static OPENAI_BUDGET: Budget = Budget::new();
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>().budget(&OPENAI_BUDGET);
    /// # drop(call);
    /// ```
    pub fn budget<S: SharedSlot<Budget>>(self, budget: S) -> CallWith<'p, T, E, V, N, W, S, L, A, M> {
        self.map(|h, k, m| (h, Controls { limiter: k.limiter, adaptive: k.adaptive, budget }, m))
    }

    /// Sends every attempt through `limiter`, shared by every call to one endpoint: after the
    /// endpoint throttles, each attempt waits for a token; throttles are reported to it.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Limiter, Policy};
    /// static OPENAI: Limiter = Limiter::new("openai");
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>().limiter(&OPENAI);
    /// # drop(call);
    /// ```
    pub fn limiter<S: SharedSlot<Limiter>>(self, limiter: S) -> CallWith<'p, T, E, V, N, W, B, S, A, M> {
        let mut call = self.map(|h, k, m| (h, Controls { budget: k.budget, adaptive: k.adaptive, limiter }, m));
        if S::PRESENT && call.guard.phase == Phase::First && call.tally.is_none() {
            call.guard.phase = Phase::Fresh;
        }
        call
    }

    /// Declares what each attempt costs in tokens (the prompt and the output allowance): with
    /// a [`limiter`](Self::limiter) that knows a token rate (its
    /// [`tokens_per_minute`](crate::limits::LimiterBuilder::tokens_per_minute), or the
    /// provider's headers), each attempt also waits for that many tokens of room. Correct the
    /// estimate from the usage the response reports with
    /// [`Limiter::correct_tokens`]. At most `u32::MAX`.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, Limiter, Policy, RetryExt};
    /// static OPENAI: Limiter = Limiter::from_config(match Limiter::builder("docs::call_tokens").tokens_per_minute(60_000.0).build() {
    ///     Ok(c) => c,
    ///     Err(_) => panic!(),
    /// });
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let t = tokio::time::Instant::now();
    /// for _ in 0..2 {
    ///     let out: Result<(), ApiError> =
    ///         Policy::DEFAULT.call().limiter(&OPENAI).tokens(45_000).retry(|| async { Ok(()) }).await;
    ///     out.unwrap();
    /// }
    /// assert_eq!(t.elapsed().as_secs(), 30); // a minute's room, then 1,000 tokens a second
    /// # }
    /// ```
    pub fn tokens(mut self, tokens: u64) -> Self {
        self.guard.tokens = u32::try_from(tokens).unwrap_or(u32::MAX);
        self
    }

    /// Scales the back-off delay by `adaptive`'s recent error rate (Retry-After hints are
    /// kept as the server gave them), and records this call's outcomes in it.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Adaptive, Policy};
    /// static OPENAI_ERRORS: Adaptive = Adaptive::new();
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>().adaptive(&OPENAI_ERRORS);
    /// # drop(call);
    /// ```
    pub fn adaptive<S: SharedSlot<Adaptive>>(self, adaptive: S) -> CallWith<'p, T, E, V, N, W, B, L, S, M> {
        self.map(|h, k, m| (h, Controls { budget: k.budget, limiter: k.limiter, adaptive }, m))
    }

    /// Counts this call in `site`'s stats, under `site`'s name (the policy stays this call's).
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Policy, stats::Site};
    /// static SITE: Site = Site::new("docs::site", Policy::DEFAULT);
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>().site(&SITE);
    /// # drop(call);
    /// assert_eq!(SITE.stats().calls, 1);
    /// ```
    pub fn site(mut self, site: &'static Site) -> Self {
        self.guard.site = Some(site);
        self
    }

    /// Calls `f` before each sleep with a [`RetryEvent`].
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Policy, RetryEvent};
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>()
    ///     .notify(|ev: &RetryEvent<'_, std::io::Error>| eprintln!("{} in {:?}", ev.kind, ev.delay));
    /// # drop(call);
    /// ```
    pub fn notify<F: Fn(&RetryEvent<'_, E>)>(self, f: F) -> CallWith<'p, T, E, V, Notifier<F>, W, B, L, A, M> {
        self.map(|h, k, m| {
            let Hooks { validate, when, .. } = h;
            (Hooks { validate, notify: Notifier(f), when }, k, m)
        })
    }

    /// Rejects unusable successful values: a rejected value is retried as
    /// [`ErrorKind::InvalidOutput`](crate::ErrorKind::InvalidOutput), and after the last
    /// attempt the caller gets the [`InvalidOutput`] converted into its error type.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, InvalidOutput, Policy};
    /// let call = Policy::DEFAULT.call::<String, std::io::Error>().validate(|s: &String| {
    ///     if s.is_empty() { Err(InvalidOutput::new("empty")) } else { Ok(()) }
    /// });
    /// # drop(call);
    /// ```
    pub fn validate<F: Fn(&T) -> Result<(), InvalidOutput>>(
        self,
        f: F,
    ) -> CallWith<'p, T, E, Validator<F>, N, W, B, L, A, M> {
        self.map(|h, k, m| {
            let Hooks { notify, when, .. } = h;
            (Hooks { validate: Validator(f), notify, when }, k, m)
        })
    }

    /// Decides retryability with `f` instead of the policy's `retry_on` set. Limits, the
    /// deadline and Retry-After still apply.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// use llm_retry_runtime::Policy;
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>()
    ///     .when(|e: &std::io::Error| e.kind() == std::io::ErrorKind::Interrupted);
    /// # drop(call);
    /// ```
    pub fn when<F: Fn(&E) -> bool>(self, f: F) -> CallWith<'p, T, E, V, N, Predicate<F>, B, L, A, M> {
        self.map(|h, k, m| {
            let Hooks { validate, notify, .. } = h;
            (Hooks { validate, notify, when: Predicate(f) }, k, m)
        })
    }
}

impl<'p, T, E, H, K, M: Into<Timed>> Call<'p, T, E, H, K, M> {
    fn timed(self, f: impl FnOnce(&mut Timed)) -> Call<'p, T, E, H, K, Timed> {
        self.map(|h, k, m| {
            let mut mode: Timed = m.into();
            f(&mut mode);
            (h, k, mode)
        })
    }

    /// A total deadline: time in attempts and sleeps counts. No sleep crosses it, and an
    /// attempt still running when it passes is cut short. Needs `E: From<Timeout>`.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>()
    ///     .deadline(std::time::Duration::from_secs(120));
    /// # drop(call);
    /// ```
    pub fn deadline(self, total: Duration) -> Call<'p, T, E, H, K, Timed> {
        self.timed(|m| m.deadline = Some(total))
    }

    /// A per-attempt timeout: a slower attempt is cancelled and counted as a
    /// [`Timeout`](crate::ErrorKind::Timeout). Needs `E: From<Timeout>`.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>()
    ///     .attempt_timeout(std::time::Duration::from_secs(30));
    /// # drop(call);
    /// ```
    pub fn attempt_timeout(self, each: Duration) -> Call<'p, T, E, H, K, Timed> {
        self.timed(|m| m.attempt_timeout = Some(each))
    }
}
