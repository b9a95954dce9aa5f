//! The tokens-per-minute limiter: [`TokensPerMinute`], a GCRA bucket that spends many tokens at once.

use std::time::Duration;

use tokio::time::Instant;

/// Nanoseconds in a minute, the period providers count tokens in.
const MINUTE_NANOS: u128 = 60_000_000_000;

/// Why [`TokensPerMinute`] refused a request.
///
/// ```
/// use std::time::Duration;
/// use llm_retry_testkit::{TokenRefusal, TokensPerMinute};
/// use tokio::time::Instant;
///
/// let t0 = Instant::now();
/// let mut tpm = TokensPerMinute::new_at(600, 100, t0); // ten tokens a second, a hundred at once
/// assert_eq!(tpm.try_spend_at(101, t0), Err(TokenRefusal::TooLarge { requested: 101, limit: 100 }));
/// tpm.try_spend_at(100, t0).unwrap();
/// assert_eq!(tpm.try_spend_at(5, t0), Err(TokenRefusal::Wait(Duration::from_millis(500))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not enough tokens now: this many are back after this wait, exactly.
    Wait(Duration),
    /// More tokens than the bucket holds when full: the request can never be admitted, as
    /// OpenAI answers "Request too large for ... on tokens per min (TPM)".
    TooLarge {
        /// The tokens the request needs.
        requested: u64,
        /// The most the bucket holds (its burst).
        limit: u64,
    },
}

/// A bucket of `tokens_per_minute` LLM tokens holding at most `burst_tokens`, on tokio's clock.
///
/// The weighted form of [`TokenBucket`](crate::TokenBucket)'s GCRA, in integer nanoseconds: `n` tokens
/// come back in `n × 60 s / tokens_per_minute`, truncated to the nanosecond as `TokenBucket` truncates
/// its interval (so a client spending at `Duration::from_secs(60) / rate` is never refused); a request
/// spends all the tokens it needs at once or none, and a refusal says exactly when enough are back.
/// [`remaining_at`](Self::remaining_at) is exact: a request of at most that many tokens is admitted at
/// that instant, one more is not.
///
/// ```
/// use std::time::Duration;
/// use llm_retry_testkit::TokensPerMinute;
/// use tokio::time::Instant;
///
/// let t0 = Instant::now();
/// let mut tpm = TokensPerMinute::new_at(60_000, 60_000, t0); // a thousand tokens a second
/// tpm.try_spend_at(59_000, t0).unwrap();
/// assert_eq!(tpm.remaining_at(t0), 1_000);
/// assert_eq!(tpm.full_in(t0), Duration::from_secs(59));
/// assert!(tpm.try_spend_at(1_500, t0).is_err());
/// assert!(tpm.try_spend_at(1_500, t0 + Duration::from_millis(500)).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct TokensPerMinute {
    tokens_per_minute: u32,
    burst: u32,
    /// The time a full bucket's tokens take to come back: `cost(burst)`.
    capacity: Duration,
    /// When the bucket is full again (the theoretical arrival time of a request of no tokens).
    tat: Instant,
}

impl TokensPerMinute {
    /// A full bucket as of now ([`Instant::now`]).
    ///
    /// # Panics
    /// If `tokens_per_minute` or `burst_tokens` is zero.
    ///
    /// ```
    /// use llm_retry_testkit::TokensPerMinute;
    /// let tpm = TokensPerMinute::new(30_000, 30_000);
    /// assert_eq!(tpm.tokens_per_minute(), 30_000);
    /// ```
    pub fn new(tokens_per_minute: u32, burst_tokens: u32) -> TokensPerMinute {
        TokensPerMinute::new_at(tokens_per_minute, burst_tokens, Instant::now())
    }

    /// A full bucket as of `now`.
    ///
    /// # Panics
    /// If `tokens_per_minute` or `burst_tokens` is zero.
    ///
    /// ```
    /// use llm_retry_testkit::TokensPerMinute;
    /// use tokio::time::Instant;
    /// let now = Instant::now();
    /// assert_eq!(TokensPerMinute::new_at(1_000, 250, now).remaining_at(now), 250);
    /// ```
    pub fn new_at(tokens_per_minute: u32, burst_tokens: u32, now: Instant) -> TokensPerMinute {
        assert!(tokens_per_minute > 0, "tokens_per_minute must be positive");
        assert!(burst_tokens > 0, "burst_tokens must be positive");
        let mut bucket = TokensPerMinute { tokens_per_minute, burst: burst_tokens, capacity: Duration::ZERO, tat: now };
        bucket.capacity = bucket.cost(u64::from(burst_tokens));
        bucket
    }

    /// The sustained rate.
    ///
    /// ```
    /// use llm_retry_testkit::TokensPerMinute;
    /// assert_eq!(TokensPerMinute::new(90_000, 10_000).tokens_per_minute(), 90_000);
    /// ```
    pub fn tokens_per_minute(&self) -> u32 {
        self.tokens_per_minute
    }

    /// The most tokens the bucket holds; a request needing more is [`TokenRefusal::TooLarge`].
    ///
    /// ```
    /// use llm_retry_testkit::TokensPerMinute;
    /// assert_eq!(TokensPerMinute::new(90_000, 10_000).burst(), 10_000);
    /// ```
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time `tokens` take to come back, truncated to the nanosecond.
    fn cost(&self, tokens: u64) -> Duration {
        let nanos = u128::from(tokens) * MINUTE_NANOS / u128::from(self.tokens_per_minute);
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }

    /// How far the bucket is from full at `now`, in time.
    fn ahead(&self, now: Instant) -> Duration {
        self.tat.saturating_duration_since(now)
    }

    /// Whether `tokens` would be admitted at `now`, without spending them.
    ///
    /// # Errors
    /// [`TokenRefusal::TooLarge`] if `tokens` exceeds the burst, else [`TokenRefusal::Wait`] with the
    /// exact time until enough tokens are back.
    ///
    /// ```
    /// use llm_retry_testkit::TokensPerMinute;
    /// use tokio::time::Instant;
    /// let now = Instant::now();
    /// let tpm = TokensPerMinute::new_at(600, 10, now);
    /// assert!(tpm.check_at(10, now).is_ok());
    /// assert_eq!(tpm.remaining_at(now), 10, "a check spends nothing");
    /// ```
    pub fn check_at(&self, tokens: u64, now: Instant) -> Result<(), TokenRefusal> {
        if tokens > u64::from(self.burst) {
            return Err(TokenRefusal::TooLarge { requested: tokens, limit: u64::from(self.burst) });
        }
        let needed = self.ahead(now).saturating_add(self.cost(tokens));
        if needed > self.capacity {
            return Err(TokenRefusal::Wait(needed - self.capacity));
        }
        Ok(())
    }

    /// Spends `tokens` at `now`, or says why not. Refusals spend nothing.
    ///
    /// # Errors
    /// As [`check_at`](Self::check_at).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::{TokenRefusal, TokensPerMinute};
    /// use tokio::time::Instant;
    /// let t0 = Instant::now();
    /// let mut tpm = TokensPerMinute::new_at(60, 3, t0); // one token a second
    /// tpm.try_spend_at(3, t0).unwrap();
    /// assert_eq!(tpm.try_spend_at(2, t0), Err(TokenRefusal::Wait(Duration::from_secs(2))));
    /// assert!(tpm.try_spend_at(2, t0 + Duration::from_secs(2)).is_ok());
    /// ```
    pub fn try_spend_at(&mut self, tokens: u64, now: Instant) -> Result<(), TokenRefusal> {
        self.check_at(tokens, now)?;
        let base = self.tat.max(now);
        // Within the burst, a cost is at most 60 s × 2³² (8,000 years): no `Instant` overflows.
        self.tat = base.checked_add(self.cost(tokens)).unwrap_or(base);
        Ok(())
    }

    /// How many tokens a request could spend at `now`: exactly the largest request admitted then.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::TokensPerMinute;
    /// use tokio::time::Instant;
    /// let t0 = Instant::now();
    /// let mut tpm = TokensPerMinute::new_at(600, 100, t0);
    /// tpm.try_spend_at(100, t0).unwrap();
    /// assert_eq!(tpm.remaining_at(t0), 0);
    /// assert_eq!(tpm.remaining_at(t0 + Duration::from_millis(250)), 2);
    /// ```
    pub fn remaining_at(&self, now: Instant) -> u64 {
        // The largest `n` whose cost, `floor(n × 60 s / rate)`, fits in the room left.
        let room = self.capacity.saturating_sub(self.ahead(now)).as_nanos();
        let tokens = ((room + 1) * u128::from(self.tokens_per_minute) - 1) / MINUTE_NANOS;
        u64::try_from(tokens).unwrap_or(u64::MAX).min(u64::from(self.burst))
    }

    /// How long after `now` the bucket is full again (zero when it is full): the reset of the
    /// providers' rate-limit headers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::TokensPerMinute;
    /// use tokio::time::Instant;
    /// let t0 = Instant::now();
    /// let mut tpm = TokensPerMinute::new_at(6_000, 1_000, t0); // a hundred tokens a second
    /// assert_eq!(tpm.full_in(t0), Duration::ZERO);
    /// tpm.try_spend_at(250, t0).unwrap();
    /// assert_eq!(tpm.full_in(t0), Duration::from_millis(2500));
    /// ```
    pub fn full_in(&self, now: Instant) -> Duration {
        self.ahead(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_big_prompt_waits_for_its_tokens_and_small_ones_pass_meanwhile() {
        let t0 = Instant::now();
        let mut tpm = TokensPerMinute::new_at(60_000, 10_000, t0); // 1000 tokens a second
        tpm.try_spend_at(9_000, t0).unwrap();
        // 1000 left: a 5000-token prompt waits 4 s, a 500-token one passes now.
        assert_eq!(tpm.try_spend_at(5_000, t0), Err(TokenRefusal::Wait(Duration::from_secs(4))));
        tpm.try_spend_at(500, t0).unwrap();
        assert_eq!(tpm.remaining_at(t0), 500);
        let Err(TokenRefusal::Wait(wait)) = tpm.try_spend_at(5_000, t0) else { panic!("refused") };
        assert_eq!(wait, Duration::from_millis(4500));
        tokio::time::advance(wait - Duration::from_nanos(1)).await;
        assert!(tpm.try_spend_at(5_000, Instant::now()).is_err(), "not a nanosecond early");
        tokio::time::advance(Duration::from_nanos(1)).await;
        tpm.try_spend_at(5_000, Instant::now()).unwrap();
        assert_eq!(tpm.remaining_at(Instant::now()), 0);
        assert_eq!(tpm.full_in(Instant::now()), Duration::from_secs(10));
    }

    #[test]
    fn remaining_is_exactly_what_is_admitted() {
        // An uneven rate: 7 tokens a minute, costs that are no whole nanosecond.
        for (tpm_rate, burst) in [(7, 5), (600, 37), (90_000, 12_345), (u32::MAX, 1_000)] {
            let t0 = Instant::now();
            let mut tpm = TokensPerMinute::new_at(tpm_rate, burst, t0);
            let mut now = t0;
            for step in 0..200u64 {
                now += Duration::from_nanos(step * 7_919_999 % 3_000_000_011);
                let left = tpm.remaining_at(now);
                assert!(left <= u64::from(burst));
                assert!(tpm.check_at(left, now).is_ok(), "{tpm_rate}/{burst}: {left} refused");
                if left < u64::from(burst) {
                    assert!(tpm.check_at(left + 1, now).is_err(), "{tpm_rate}/{burst}: {left} + 1 admitted");
                }
                let spend = (step * 31 % (u64::from(burst) + 1)).min(left);
                tpm.try_spend_at(spend, now).unwrap();
            }
        }
    }

    #[test]
    fn too_large_never_passes_and_spends_nothing() {
        let t0 = Instant::now();
        let mut tpm = TokensPerMinute::new_at(1_000, 1_000, t0);
        let refusal = TokenRefusal::TooLarge { requested: 1_001, limit: 1_000 };
        assert_eq!(tpm.try_spend_at(1_001, t0), Err(refusal));
        assert_eq!(tpm.try_spend_at(1_001, t0 + Duration::from_secs(3600)), Err(refusal));
        assert_eq!(tpm.remaining_at(t0), 1_000);
        assert_eq!(tpm.try_spend_at(u64::MAX, t0), Err(TokenRefusal::TooLarge { requested: u64::MAX, limit: 1_000 }));
    }

    #[test]
    fn extreme_settings_do_not_overflow() {
        let t0 = Instant::now();
        let mut slow = TokensPerMinute::new_at(1, u32::MAX, t0);
        slow.try_spend_at(u64::from(u32::MAX), t0).unwrap();
        assert_eq!(slow.remaining_at(t0), 0);
        assert_eq!(slow.full_in(t0), Duration::from_secs(60 * u64::from(u32::MAX)));
        let mut fast = TokensPerMinute::new_at(u32::MAX, u32::MAX, t0);
        fast.try_spend_at(u64::from(u32::MAX), t0).unwrap();
        assert_eq!(fast.full_in(t0), Duration::from_secs(60));
    }
}
