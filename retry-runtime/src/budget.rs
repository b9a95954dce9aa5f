//! The retry budget: retries stay a small fraction of successful traffic, for every call site
//! that shares one [`Budget`].
//!
//! A token bucket in the manner of gRPC retry throttling and the Google SRE book's per-client
//! retry budget: each successful call deposits `ratio` of a token, each retry withdraws a whole
//! one, and the bucket holds at most `burst` tokens (it starts full). When a retry finds less
//! than one token the call gives up at once with [`GiveUp::BudgetExhausted`](crate::GiveUp).
//!
//! Unlike a budget with a per-second reserve (tower's default lets 10 retries a second
//! through whatever the traffic), tokens are only ever earned by successes: during an outage a
//! fleet of callers makes at most `burst` retries in total, at 1 request a second as at 1,000.
//! In steady state retries stay under `ratio × successes + burst`.

use crate::limits::LimitError;
use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Micro-tokens per token: the bucket counts in fixed point, so deposits of 0.1 add up exactly.
const UNIT: u64 = 1_000_000;

/// A retry budget shared by every call site that targets one endpoint.
///
/// Declare it once as a `static` and hand it to each call ([`Call::budget`](crate::call::Call::budget),
/// or `budget = OPENAI_BUDGET` in the attribute).
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, Budget, Policy};
///
/// static OPENAI_BUDGET: Budget = Budget::new(); // 10% of successes, 5 retries in reserve
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let out: Result<u8, ApiError> = Policy::DEFAULT
///     .call()
///     .budget(&OPENAI_BUDGET)
///     .retry(|| async { Err(ApiError::from_status(503)) })
///     .await;
/// assert!(out.is_err());
/// assert_eq!(OPENAI_BUDGET.stats().retries_allowed, 3); // 4 attempts: 3 retries spent
/// assert_eq!(OPENAI_BUDGET.tokens(), 2.0);
/// # }
/// ```
pub struct Budget {
    /// Micro-tokens in the bucket.
    tokens: AtomicU64,
    /// The most micro-tokens the bucket holds.
    cap: u64,
    /// Micro-tokens a success deposits.
    deposit: u64,
    allowed: AtomicU64,
    denied: AtomicU64,
}

/// Builds a [`Budget`]; every method is a `const fn` and [`build`](Self::build) validates.
///
/// ```
/// use llm_retry_runtime::Budget;
/// static B: Budget = match Budget::builder().ratio(0.05).burst(3).build() {
///     Ok(b) => b,
///     Err(e) => panic!("{}", e.message()),
/// };
/// assert_eq!(B.tokens(), 3.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BudgetBuilder {
    ratio: f64,
    burst: u32,
}

/// A budget's counters at one moment.
///
/// ```
/// let s = llm_retry_runtime::limits::BudgetStats::default();
/// assert_eq!(s.retries_denied, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct BudgetStats {
    /// Tokens in the bucket: how many retries may still be made now.
    pub tokens: f64,
    /// Retries the budget allowed.
    pub retries_allowed: u64,
    /// Retries the budget refused (each one a call that gave up).
    pub retries_denied: u64,
}

impl Budget {
    /// The default budget: each success earns 0.1 retry, and 5 retries are held in reserve.
    ///
    /// ```
    /// static B: llm_retry_runtime::Budget = llm_retry_runtime::Budget::new();
    /// assert_eq!(B.tokens(), 5.0);
    /// ```
    pub const fn new() -> Budget {
        Budget::with(0.1, 5)
    }

    /// A builder starting from the defaults of [`Budget::new`].
    ///
    /// ```
    /// assert!(llm_retry_runtime::Budget::builder().burst(0).build().is_err());
    /// ```
    pub const fn builder() -> BudgetBuilder {
        BudgetBuilder { ratio: 0.1, burst: 5 }
    }

    const fn with(ratio: f64, burst: u32) -> Budget {
        let cap = burst as u64 * UNIT;
        Budget {
            tokens: AtomicU64::new(cap),
            cap,
            deposit: (ratio * UNIT as f64) as u64,
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        }
    }

    /// Credits one success: `ratio` of a token, up to `burst`. When the bucket is already full
    /// this is a single relaxed load. The engine calls it when a call succeeds.
    ///
    /// ```
    /// static B: llm_retry_runtime::Budget = llm_retry_runtime::Budget::new();
    /// assert!(B.withdraw());
    /// B.deposit();
    /// assert_eq!(B.tokens(), 4.1);
    /// ```
    pub fn deposit(&self) {
        if self.deposit == 0 || self.tokens.load(Relaxed) >= self.cap {
            return;
        }
        let cap = self.cap;
        let d = self.deposit;
        let _ = self.tokens.fetch_update(Relaxed, Relaxed, |t| (t < cap).then(|| t.saturating_add(d).min(cap)));
    }

    /// Takes one token for a retry: `true` if the retry may go ahead. The engine calls it
    /// before each retry.
    ///
    /// ```
    /// static B: llm_retry_runtime::Budget = match llm_retry_runtime::Budget::builder().burst(1).build() {
    ///     Ok(b) => b,
    ///     Err(_) => panic!(),
    /// };
    /// assert!(B.withdraw());
    /// assert!(!B.withdraw());
    /// assert_eq!(B.stats().retries_denied, 1);
    /// ```
    pub fn withdraw(&self) -> bool {
        match self.tokens.fetch_update(Relaxed, Relaxed, |t| t.checked_sub(UNIT)) {
            Ok(_) => {
                self.allowed.fetch_add(1, Relaxed);
                true
            }
            Err(_) => {
                self.denied.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Tokens in the bucket now.
    ///
    /// ```
    /// static B: llm_retry_runtime::Budget = llm_retry_runtime::Budget::new();
    /// assert_eq!(B.tokens(), 5.0);
    /// ```
    pub fn tokens(&self) -> f64 {
        self.tokens.load(Relaxed) as f64 / UNIT as f64
    }

    /// The most tokens the bucket holds.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Budget::new().burst(), 5);
    /// ```
    pub const fn burst(&self) -> u32 {
        (self.cap / UNIT) as u32
    }

    /// The share of a retry each success earns.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Budget::new().ratio(), 0.1);
    /// ```
    pub const fn ratio(&self) -> f64 {
        self.deposit as f64 / UNIT as f64
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// static B: llm_retry_runtime::Budget = llm_retry_runtime::Budget::new();
    /// assert_eq!(B.stats().retries_allowed, 0);
    /// ```
    pub fn stats(&self) -> BudgetStats {
        BudgetStats {
            tokens: self.tokens(),
            retries_allowed: self.allowed.load(Relaxed),
            retries_denied: self.denied.load(Relaxed),
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new()
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("ratio", &self.ratio())
            .field("burst", &self.burst())
            .field("stats", &self.stats())
            .finish()
    }
}

impl BudgetBuilder {
    /// The share of a retry each successful call earns, in `0.0..=1.0`: `0.1` keeps retries
    /// under 10% of successes (the SRE book's figure).
    ///
    /// ```
    /// assert!(llm_retry_runtime::Budget::builder().ratio(0.2).build().is_ok());
    /// ```
    pub const fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// The most retries held in reserve, in `1..=1_000_000`; the bucket starts full. This is
    /// also the most retries a whole outage can cost.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Budget::builder().burst(10).build().is_ok());
    /// ```
    pub const fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// The budget, or why the arguments are wrong.
    ///
    /// ```
    /// use llm_retry_runtime::{Budget, limits::LimitError};
    /// assert_eq!(Budget::builder().ratio(f64::NAN).build().unwrap_err(), LimitError::InvalidRatio);
    /// ```
    pub const fn build(self) -> Result<Budget, LimitError> {
        if !(self.ratio >= 0.0 && self.ratio <= 1.0) {
            return Err(LimitError::InvalidRatio);
        }
        if self.burst == 0 || self.burst > 1_000_000 {
            return Err(LimitError::InvalidBurst);
        }
        Ok(Budget::with(self.ratio, self.burst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deposits_add_up_exactly_and_stop_at_the_burst() {
        let b = Budget::builder().ratio(0.1).burst(2).build().unwrap();
        assert!(b.withdraw() && b.withdraw() && !b.withdraw());
        for _ in 0..10 {
            b.deposit();
        }
        assert_eq!(b.tokens(), 1.0);
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(b.tokens(), 2.0);
        assert_eq!(b.stats().retries_allowed, 2);
        assert_eq!(b.stats().retries_denied, 1);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert_eq!(Budget::builder().ratio(-0.1).build().unwrap_err(), LimitError::InvalidRatio);
        assert_eq!(Budget::builder().ratio(f64::INFINITY).build().unwrap_err(), LimitError::InvalidRatio);
        assert_eq!(Budget::builder().burst(1_000_001).build().unwrap_err(), LimitError::InvalidBurst);
        let zero = Budget::builder().ratio(0.0).burst(1).build().unwrap();
        zero.deposit();
        assert!(zero.withdraw() && !zero.withdraw());
    }
}
