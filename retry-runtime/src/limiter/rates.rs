//! The limiter's measures of time: [`Ewma`], a rate of events smoothed over about a second
//! (sends and admissions, which the learned rate is judged by), and [`Tokens`], the token
//! bucket kept as running totals, like the tickets' queue (queue.rs) that reads both.

/// The time constant of the smoothed rates, in seconds.
const TAU: f64 = 1.0;

/// A rate of events, smoothed exponentially over about [`TAU`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Ewma {
    value: f64,
    at: f64,
    since: f64,
    /// Events so far.
    pub(super) count: f64,
}

impl Ewma {
    pub(super) const NEW: Ewma = Ewma { value: 0.0, at: 0.0, since: f64::NAN, count: 0.0 };

    pub(super) fn add(&mut self, t: f64) {
        if self.since.is_nan() {
            self.since = t;
        }
        self.value = self.rate(t) + 1.0 / TAU;
        self.at = t;
        self.count += 1.0;
    }

    /// How long it has seen events, in seconds (0 before the first).
    pub(super) fn span(&self, t: f64) -> f64 {
        if self.since.is_nan() { 0.0 } else { (t - self.since).max(0.0) }
    }

    /// The rate at `t`: events per second over about the last [`TAU`].
    pub(super) fn rate(&self, t: f64) -> f64 {
        self.value * (-(t - self.at).max(0.0) / TAU).exp()
    }

    /// The rate at `t` corrected for a start less than a time constant ago (the smoothing
    /// starts from zero): the mean rate since the first event, then the smoothed rate.
    pub(super) fn estimate(&self, t: f64) -> f64 {
        let span = t - self.since;
        let rate = self.rate(t);
        if span.is_nan() || span < 0.05 { rate } else { rate / (1.0 - (-span / TAU).exp()) }
    }

    /// Whether it has seen events for at least one time constant.
    pub(super) fn valid(&self) -> bool {
        self.at - self.since >= TAU
    }
}

/// The token dimension: a bucket of tokens as running totals, like the tickets'.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tokens {
    /// Tokens per second; 0 while unknown (no token pacing).
    pub(super) rate: f64,
    pub(super) capacity: f64,
    /// Tokens made so far, capped at `reserved + capacity`.
    pub(super) made: f64,
    /// Tokens reserved by admitted or waiting attempts so far.
    pub(super) reserved: f64,
    last: f64,
}

impl Tokens {
    pub(super) const fn new(rate: Option<f64>) -> Tokens {
        match rate {
            // A minute's worth of room, full at the start, as the providers' windows are.
            Some(r) => Tokens { rate: r, capacity: r * 60.0, made: r * 60.0, reserved: 0.0, last: 0.0 },
            None => Tokens { rate: 0.0, capacity: 0.0, made: 0.0, reserved: 0.0, last: 0.0 },
        }
    }

    pub(super) fn rate(&self) -> Option<f64> {
        (self.rate > 0.0).then_some(self.rate)
    }

    pub(super) fn refill(&mut self, t: f64) {
        if t > self.last {
            self.made = (self.made + (t - self.last) * self.rate).min(self.reserved + self.capacity);
            self.last = t;
        }
    }

    /// Reserves `tokens` (at most the room, so a cost above it waits for a full bucket, never
    /// for ever) when a token rate is known: what it reserved and the running total up to it.
    pub(super) fn reserve(&mut self, tokens: f64) -> (f64, f64) {
        if self.rate <= 0.0 || tokens.is_nan() || tokens <= 0.0 {
            return (0.0, self.reserved);
        }
        let tokens = tokens.min(self.capacity);
        self.reserved += tokens;
        (tokens, self.reserved)
    }

    /// Sets the rate (and a minute's worth of room), keeping what is banked.
    pub(super) fn set_rate(&mut self, t: f64, rate: f64) {
        self.refill(t);
        let first = self.rate <= 0.0;
        self.rate = rate;
        self.capacity = rate * 60.0;
        // A rate learned only now: the room is taken to be full, unless told what remains.
        self.made = if first { self.reserved + self.capacity } else { self.made.min(self.reserved + self.capacity) };
        self.last = self.last.max(t);
    }

    /// At most `left` tokens banked now: what the provider said remains.
    pub(super) fn at_most(&mut self, t: f64, left: f64) {
        self.refill(t);
        self.made = self.made.min(self.reserved + left.max(0.0));
    }

    /// A correction after the response: `delta` more tokens were used than reserved (fewer
    /// when negative), so that many fewer (more) are left for the attempts behind.
    pub(super) fn correct(&mut self, t: f64, delta: f64) {
        self.refill(t);
        self.made = (self.made - delta).min(self.reserved + self.capacity);
    }
}
