//! The rate limiter's token bucket: [`TokenBucket`].

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket of `requests_per_minute` with room for `burst` requests at once, on tokio's clock.
///
/// It is a GCRA (generic cell rate algorithm) in exact integer time: a full bucket admits `burst` requests
/// at once, then one request every `60 s / requests_per_minute`. A refused request learns exactly how long
/// until the next token; a request made that much later is admitted. Because the clock is
/// [`tokio::time::Instant`], it runs in real time normally and follows tokio's clock under
/// `tokio::time::pause()`.
///
/// ```
/// use std::time::Duration;
/// use llm_retry_testkit::TokenBucket;
/// use tokio::time::Instant;
///
/// let start = Instant::now();
/// let mut bucket = TokenBucket::new_at(60, 2, start); // one a second, two at once
/// assert!(bucket.try_acquire_at(start).is_ok());
/// assert!(bucket.try_acquire_at(start).is_ok());
/// assert_eq!(bucket.try_acquire_at(start), Err(Duration::from_secs(1)));
/// assert_eq!(bucket.try_acquire_at(start + Duration::from_millis(400)), Err(Duration::from_millis(600)));
/// assert!(bucket.try_acquire_at(start + Duration::from_secs(1)).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct TokenBucket {
    requests_per_minute: u32,
    burst: u32,
    /// Time between two tokens.
    interval: Duration,
    /// How far the theoretical arrival time may run ahead of now: `interval * (burst - 1)`.
    tolerance: Duration,
    /// Theoretical arrival time of the next request.
    tat: Instant,
}

impl TokenBucket {
    /// A full bucket as of now ([`Instant::now`]).
    ///
    /// # Panics
    /// If `requests_per_minute` or `burst` is zero.
    ///
    /// ```
    /// use llm_retry_testkit::TokenBucket;
    /// let mut bucket = TokenBucket::new(600, 1);
    /// assert!(bucket.try_acquire().is_ok());
    /// assert!(bucket.try_acquire().is_err());
    /// ```
    pub fn new(requests_per_minute: u32, burst: u32) -> TokenBucket {
        TokenBucket::new_at(requests_per_minute, burst, Instant::now())
    }

    /// A full bucket as of `now`.
    ///
    /// # Panics
    /// If `requests_per_minute` or `burst` is zero.
    ///
    /// ```
    /// use llm_retry_testkit::TokenBucket;
    /// use tokio::time::Instant;
    /// let bucket = TokenBucket::new_at(120, 5, Instant::now());
    /// assert_eq!(bucket.burst(), 5);
    /// ```
    pub fn new_at(requests_per_minute: u32, burst: u32, now: Instant) -> TokenBucket {
        assert!(requests_per_minute > 0, "requests_per_minute must be positive");
        assert!(burst > 0, "burst must be positive");
        let interval = Duration::from_secs(60) / requests_per_minute;
        TokenBucket { requests_per_minute, burst, interval, tolerance: interval * (burst - 1), tat: now }
    }

    /// The sustained rate.
    ///
    /// ```
    /// use llm_retry_testkit::TokenBucket;
    /// assert_eq!(TokenBucket::new(30, 1).requests_per_minute(), 30);
    /// ```
    pub fn requests_per_minute(&self) -> u32 {
        self.requests_per_minute
    }

    /// How many requests a full bucket admits at once.
    ///
    /// ```
    /// use llm_retry_testkit::TokenBucket;
    /// assert_eq!(TokenBucket::new(30, 4).burst(), 4);
    /// ```
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time between two tokens: `60 s / requests_per_minute` (truncated to whole nanoseconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::TokenBucket;
    /// assert_eq!(TokenBucket::new(120, 1).interval(), Duration::from_millis(500));
    /// ```
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes a token now, or says how long until one is available.
    ///
    /// ```
    /// use llm_retry_testkit::TokenBucket;
    /// let mut bucket = TokenBucket::new(60, 1);
    /// bucket.try_acquire().unwrap();
    /// let wait = bucket.try_acquire().unwrap_err();
    /// assert!(wait.as_millis() > 900);
    /// ```
    pub fn try_acquire(&mut self) -> Result<(), std::time::Duration> {
        self.try_acquire_at(Instant::now())
    }

    /// Takes a token at `now`, or says how long after `now` one is available. Refusals take nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::TokenBucket;
    /// use tokio::time::Instant;
    /// let t0 = Instant::now();
    /// let mut bucket = TokenBucket::new_at(60, 1, t0);
    /// bucket.try_acquire_at(t0).unwrap();
    /// assert_eq!(bucket.try_acquire_at(t0 + Duration::from_millis(999)), Err(Duration::from_millis(1)));
    /// ```
    pub fn try_acquire_at(&mut self, now: Instant) -> Result<(), Duration> {
        let tat = self.tat.max(now);
        let ahead = tat.duration_since(now);
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        self.tat = tat + self.interval;
        Ok(())
    }

    /// How many requests would be admitted at `now` if they all came at once.
    ///
    /// ```
    /// use llm_retry_testkit::TokenBucket;
    /// use tokio::time::Instant;
    /// let t0 = Instant::now();
    /// let mut bucket = TokenBucket::new_at(60, 3, t0);
    /// assert_eq!(bucket.remaining_at(t0), 3);
    /// bucket.try_acquire_at(t0).unwrap();
    /// assert_eq!(bucket.remaining_at(t0), 2);
    /// ```
    pub fn remaining_at(&self, now: Instant) -> u32 {
        let ahead = self.tat.max(now).duration_since(now);
        let room = (self.tolerance + self.interval).saturating_sub(ahead);
        let n = room.as_nanos() / self.interval.as_nanos().max(1);
        n.min(u128::from(self.burst)) as u32
    }

    /// How long after `now` the bucket is full again (zero when it is full): the reset of the providers'
    /// rate-limit headers. A client that waits this long finds [`burst`](Self::burst) requests admitted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::TokenBucket;
    /// use tokio::time::Instant;
    /// let t0 = Instant::now();
    /// let mut bucket = TokenBucket::new_at(60, 3, t0);
    /// assert_eq!(bucket.full_in(t0), Duration::ZERO);
    /// bucket.try_acquire_at(t0).unwrap();
    /// bucket.try_acquire_at(t0).unwrap();
    /// assert_eq!(bucket.full_in(t0), Duration::from_secs(2));
    /// assert_eq!(bucket.remaining_at(t0 + Duration::from_secs(2)), 3);
    /// ```
    pub fn full_in(&self, now: Instant) -> Duration {
        self.tat.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_after_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(600, 3, t0); // 100 ms interval
        for _ in 0..3 {
            b.try_acquire_at(t0).unwrap();
        }
        let wait = b.try_acquire_at(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        let t1 = t0 + wait;
        b.try_acquire_at(t1).unwrap();
        assert_eq!(b.try_acquire_at(t1), Err(Duration::from_millis(100)));
        // After a long idle period, the bucket is full again but not fuller.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(b.remaining_at(t2), 3);
        for _ in 0..3 {
            b.try_acquire_at(t2).unwrap();
        }
        assert!(b.try_acquire_at(t2).is_err());
    }

    #[test]
    fn uneven_interval_never_admits_early() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(7, 1, t0);
        b.try_acquire_at(t0).unwrap();
        let wait = b.try_acquire_at(t0).unwrap_err();
        assert!(b.try_acquire_at(t0 + wait - Duration::from_nanos(1)).is_err());
        assert!(b.try_acquire_at(t0 + wait).is_ok());
    }
}
