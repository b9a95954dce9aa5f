//! The rate a limiter learns: the slow start's window on each response, the cut on a
//! throttle, the linear climb back, and the pause a Retry-After sets.

use super::queue::State;
use super::{COLD, GATING, Limiter, OPEN, RateSource, SHARED, lock};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::time::Instant;

/// The shortest time between two cuts, in seconds: the throttles of one overshoot count once.
const HOLD: f64 = 0.5;
/// A slow-start window this wide opens the limiter: past it, attempts go without a ticket.
const OPEN_WINDOW: f64 = 1024.0;

impl Limiter {
    /// A response that was not a throttle, while the limiter is in slow start or paces.
    #[cold]
    #[inline(never)]
    pub(super) fn on_response(&self) {
        let mut s = lock(&self.state);
        let t = s.secs(Instant::now());
        s.refill(t);
        s.admitted.add(t);
        match self.mode.load(Relaxed) {
            COLD => {
                // Its place in flight comes back, and the window grows by one.
                s.window += 1.0;
                s.capacity = s.window;
                s.served = (s.served + 2.0).min(s.live() + s.capacity);
                s.fold_drops();
                // A limiter that falls back from a store stays where it can ask the store again.
                // A capped one too: every attempt takes a place in flight.
                let may_open = self.share.get().is_none() && self.config.max_in_flight == 0;
                if s.window >= OPEN_WINDOW && s.live() <= s.served && may_open {
                    // From now on requests go without tickets, and the log misses them.
                    s.log.lose();
                    self.mode.store(OPEN, Relaxed);
                }
                drop(s);
                self.moved.notify_waiters();
            }
            GATING if s.source == RateSource::Learned => {
                let rate = self.climb(&s, t);
                self.set_rate(&mut s, t, rate);
            }
            _ => {}
        }
    }

    /// An attempt that went out and will never report a response (its deadline cut it):
    /// in slow start, its place in flight comes back.
    pub(crate) fn abandoned(&self) {
        if self.mode.load(Relaxed) == COLD {
            let mut s = lock(&self.state);
            s.served = (s.served + 1.0).min(s.live() + s.capacity);
            s.fold_drops();
            drop(s);
            self.moved.notify_waiters();
        }
    }

    /// The learned rate at `t`: back linearly from the cut to the rate that was throttled,
    /// then beyond it slowly, and faster the longer nothing is throttled; never above twice the
    /// admitted rate, so that a quiet endpoint does not climb without a bound. A guess (see
    /// `State::probing`) doubles every half second instead.
    fn climb(&self, s: &State, t: f64) -> f64 {
        let since = (t - s.last_cut).max(0.0);
        if s.probing {
            return s.cut_rate * (since.min(60.0) * 2.0 * core::f64::consts::LN_2).exp();
        }
        let slope = self.config.scale * s.w_max;
        let back = (s.w_max - s.cut_rate) / slope.max(f64::MIN_POSITIVE);
        let rate = if since <= back {
            s.cut_rate + slope * since
        } else {
            // Past the rate that was throttled: probe slowly near it (a tenth of the slope
            // back), then faster and faster (cubic, as CUBIC does) the longer nothing is
            // throttled.
            let x = (since - back).min(60.0);
            s.w_max + slope * (0.1 * x + 0.25 * x * x * x)
        };
        if s.admitted.valid() { rate.min((2.0 * s.admitted.estimate(t)).max(s.cut_rate)) } else { rate }
    }

    /// A throttle, with the Retry-After it carried.
    pub(super) fn on_throttle(&self, retry_after: Option<Duration>) {
        let mut s = lock(&self.state);
        let t = s.secs(Instant::now());
        s.refill(t);
        // The provider held less than this process's own sends explain (another client, or a
        // limit the headers do not show): its `remaining` may only lower what goes from now.
        s.log.lose();
        let mode = self.mode.load(Relaxed);
        let mut woke = false;
        let mut restarted = false;
        let cuts = t - s.last_cut >= HOLD;
        // Within the hold it is the same overshoot: the pause below is all it adds.
        if cuts {
            match mode {
                OPEN => {
                    // No rate to cut: start slow again, a window of attempts at a time.
                    s.window = f64::from(self.config.initial_window.max(1));
                    s.capacity = s.window;
                    s.served = s.live() + s.window;
                    s.last_cut = t;
                    restarted = true;
                    self.mode.store(COLD, Relaxed);
                }
                mode if mode == COLD || s.source == RateSource::None => {
                    // The first rate: what slow start was sending when the provider said no, cut.
                    // Over less than the hold that is a guess (a burst over no time): the rate
                    // then climbs as a slow start would until the next throttle.
                    let short = s.sends.span(t) < HOLD;
                    let sent = if short { s.sends.count / HOLD } else { s.sends.estimate(t) };
                    let base = if sent > 0.0 { sent } else { self.config.min_rate };
                    self.cut(&mut s, t, base);
                    s.probing = short;
                    if mode != GATING {
                        self.mode.store(GATING, Relaxed);
                        // The slow start's waiters slept on its floor rate: they look again.
                        woke = true;
                    }
                }
                _ => {
                    // From the rate in force, or from what the provider admitted if less (a
                    // throttle says the rate in force was too much), but never below β of the
                    // rate in force: the admitted rate lags a rate that was climbing.
                    let mut base = s.fill_rate;
                    if s.admitted.valid() {
                        base = base.min(s.admitted.estimate(t)).max(self.config.beta * s.fill_rate);
                    }
                    self.cut(&mut s, t, base);
                }
            }
        }
        // Last, at the rate now in force: nothing banked, and nothing before the hint.
        match retry_after {
            Some(h) => s.pause(t + h.min(self.config.max_pause).as_secs_f64()),
            None => s.drain(),
        }
        if restarted {
            // A new slow start: its window goes once the pause is over.
            s.served = s.live() + s.window;
        }
        if cuts && s.pause_until > s.last_cut {
            // The climb starts when attempts do, and the throttles of attempts sent before
            // the pause ended are the same overshoot.
            s.last_cut = s.pause_until;
        }
        drop(s);
        if woke {
            self.moved.notify_waiters();
        }
    }

    fn cut(&self, s: &mut State, t: f64, base: f64) {
        let base = base.clamp(self.config.min_rate, s.ceiling.max(self.config.min_rate));
        s.w_max = base;
        s.probing = false;
        s.cut_rate = base * self.config.beta;
        s.last_cut = t;
        s.source = RateSource::Learned;
        self.set_rate(s, t, s.cut_rate);
    }

    pub(super) fn set_rate(&self, s: &mut State, t: f64, rate: f64) {
        s.refill(t);
        let ceiling = s.ceiling.max(self.config.min_rate);
        let rate = if rate.is_nan() { self.config.min_rate } else { rate.clamp(self.config.min_rate, ceiling) };
        s.fill_rate = rate;
        s.capacity = rate.max(1.0);
        s.served = s.served.min(s.live() + s.capacity);
    }

    /// Corrects the tokens an attempt reserved once its response reports what it used:
    /// `declared` is what it waited for, `used` what the provider counted. The difference is
    /// taken from (or given back to) the attempts behind it.
    ///
    /// ```
    /// use llm_retry_runtime::Limiter;
    /// static L: Limiter = Limiter::from_config(match Limiter::builder("docs::correct").tokens_per_minute(600.0).build() {
    ///     Ok(c) => c,
    ///     Err(_) => panic!(),
    /// });
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// L.acquire_tokens(500).await;
    /// L.correct_tokens(500, 100); // it used far less: 400 tokens go back
    /// let t = tokio::time::Instant::now();
    /// L.acquire_tokens(500).await;
    /// assert!(t.elapsed().is_zero());
    /// # }
    /// ```
    #[allow(clippy::cast_precision_loss)]
    pub fn correct_tokens(&self, declared: u64, used: u64) {
        let mode = self.mode.load(Relaxed);
        if mode == OPEN || declared == used {
            return;
        }
        if mode == SHARED {
            self.report(crate::store::Report::Tokens { delta: used as f64 - declared as f64 });
            return;
        }
        let mut s = lock(&self.state);
        if s.tokens.rate > 0.0 {
            let t = s.secs(Instant::now());
            s.tokens.correct(t, used as f64 - declared as f64);
        }
    }
}
