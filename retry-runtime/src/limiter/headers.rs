//! What a limiter makes of the provider's rate-limit headers ([`Limiter::observe`]): the
//! limit is the rate, the remaining count (brought up to now by the [`SendLog`]) is what may
//! go at once, and "none left" with a reset pauses until it.

use super::{COLD, GATING, Limiter, OPEN, RateSource, SHARED, lock};
use crate::http::{RateLimitHeaders, Window};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;
use tokio::time::Instant;

/// The most sends a [`SendLog`] remembers: at 10 requests a second, 25 s of them.
const LOG: usize = 256;

/// When this process's last requests went (the tickets that went), oldest first.
///
/// A response's `remaining` counts the provider's bucket when its request arrived, a service
/// time ago, and which of the requests in flight it answers is unknown. Had it answered the
/// send at `t_k`, the bucket now is `remaining` at `t_k`, refilled at the limit's rate (up to
/// the bucket's size) and less a token for each send after it; the least of that over every
/// logged send is what the bucket surely holds now, if this process is its only client. One
/// pass computes it: refilling and spending are monotone, so the least of the candidates is
/// carried forward as one number.
#[derive(Debug)]
pub(super) struct SendLog {
    times: VecDeque<f64>,
    /// Whether every request the limiter let go is in `times`: none went unpaced (while the
    /// limiter was open) and none was forgotten. Only then can `remaining` raise what goes at
    /// once: the request it answers is surely among the candidates.
    complete: bool,
}

impl SendLog {
    pub(super) const NEW: SendLog = SendLog { times: VecDeque::new(), complete: true };

    pub(super) fn push(&mut self, t: f64) {
        if self.times.capacity() == 0 {
            // All of it at the first send: the success path allocates nothing after that.
            self.times.reserve_exact(LOG);
        }
        if self.times.len() == LOG {
            self.times.pop_front();
            self.complete = false;
        }
        self.times.push_back(t);
    }

    /// Requests went without tickets (the limiter was open): the log no longer holds them all.
    pub(super) fn lose(&mut self) {
        self.complete = false;
    }

    /// What the provider's bucket surely holds at `now`, by a response that found `left` in
    /// it (after its own request), for a bucket of `size` filled at `rate`; `None` with no send
    /// logged.
    fn bank(&self, now: f64, left: f64, rate: f64, size: f64) -> Option<f64> {
        let mut times = self.times.iter();
        let mut at = *times.next()?;
        let mut least = left;
        for &t in times {
            let filled = (least + (t - at).max(0.0) * rate).min(size);
            // Each send took a token: one that found less than a whole one (refused, or just
            // short in floating point) leaves none, which is the least it can leave.
            let after = (filled - 1.0).max(0.0);
            // The candidates so far, or this send's own response.
            least = after.min(left);
            at = t;
        }
        Some((least + (now - at).max(0.0) * rate).min(size))
    }
}

impl Limiter {
    /// Reads a response's rate-limit headers (OpenAI's `x-ratelimit-*`, Anthropic's
    /// `anthropic-ratelimit-*`, see [`RateLimitHeaders`]) and paces by them: the requests
    /// limit becomes the rate (never above a configured one), the tokens limit the token
    /// rate, a remaining count sets what may go at once, and nothing remaining with a reset
    /// holds every caller until the reset (at most [`max_pause`](super::LimiterBuilder::max_pause)).
    /// A remaining count is as old as its request: it is brought up to now by the requests
    /// this process sent since (whichever of them it answers, the least the bucket can hold).
    /// It may raise what goes at once only while this process's own requests explain what the
    /// provider holds: every one of them was paced (so is remembered), none met a throttle,
    /// and the limiter paces alone, not through a fleet's [`share`](Self::share)d store.
    /// Otherwise it only lowers it.
    /// Call it on every response, successes included; the reqwest integration's
    /// `send_observed` does. Headers that are missing, garbage or contradictory change
    /// nothing; "nothing remaining" without a reset or a limit only empties the bucket, and
    /// learning from throttles goes on.
    ///
    /// ```
    /// use llm_retry_runtime::Limiter;
    /// static OPENAI: Limiter = Limiter::new("docs::observe");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let mut h = http::HeaderMap::new();
    /// h.insert("x-ratelimit-limit-requests", "600".parse().unwrap());
    /// h.insert("x-ratelimit-remaining-requests", "599".parse().unwrap());
    /// OPENAI.observe(&h);
    /// assert_eq!(OPENAI.rate(), Some(10.0));
    /// # }
    /// ```
    pub fn observe(&'static self, headers: &http::HeaderMap) {
        if let Some(r) = RateLimitHeaders::parse(headers, SystemTime::now()) {
            self.observe_limits(&r);
        }
    }

    /// [`observe`](Self::observe) for headers already parsed.
    ///
    /// ```
    /// use llm_retry_runtime::{Limiter, http::RateLimitHeaders};
    /// static L: Limiter = Limiter::new("docs::observe_limits");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// L.observe_limits(&RateLimitHeaders::default()); // nothing known: nothing changes
    /// assert_eq!(L.rate(), None);
    /// # }
    /// ```
    pub fn observe_limits(&'static self, r: &RateLimitHeaders) {
        let tokens = if r.tokens.limit.is_some() || r.tokens.remaining.is_some() { r.tokens } else { r.input_tokens };
        let req = r.requests;
        let rate = req.per_second();
        let token_rate = tokens.per_second();
        let pause_for = |w: &Window, known: bool| match (w.remaining, w.reset, known) {
            (Some(0), Some(reset), false) => Some(reset),
            _ => None,
        };
        if self.mode.load(Relaxed) == SHARED {
            // The fleet's state learns it: the store applies the same rules.
            let pause = pause_for(&req, false).or(pause_for(&tokens, false)).map(|p| p.min(self.config.max_pause));
            self.report(crate::store::Report::Limits {
                requests_per_second: rate,
                tokens_per_second: token_rate,
                remaining_requests: req.remaining,
                remaining_tokens: tokens.remaining,
                pause,
                tuning: self.tuning(),
            });
            return;
        }
        let mut s = lock(&self.state);
        let t = s.secs(Instant::now());
        s.refill(t);
        let mode = self.mode.load(Relaxed);
        let mut gate = false;
        if let Some(rate) = rate {
            // The provider's word beats a learned rate; a configured one stays the ceiling.
            s.source = RateSource::Headers;
            self.set_rate(&mut s, t, rate);
            gate = true;
        }
        if let Some(tr) = token_rate {
            let tr = self.config.token_rate().map_or(tr, |c| c.min(tr));
            s.tokens.set_rate(t, tr);
            if s.source == RateSource::None && mode == OPEN {
                // Tokens known, requests not, and no slow start to keep: tickets go unpaced,
                // the token bucket paces. (In slow start its window paces requests.)
                let ceiling = s.ceiling;
                s.fill_rate = ceiling;
                s.capacity = ceiling;
                gate = true;
            }
        }
        if mode == OPEN {
            // Its requests went without tickets: the log does not date them.
            s.log.lose();
        }
        let before = s.served;
        #[allow(clippy::cast_precision_loss)]
        match (req.remaining, rate) {
            (Some(left), Some(rate)) => {
                // What may go at once: what the provider's bucket surely holds now, at most
                // what ours holds (a second's worth). Only a complete log, of a process that
                // shares the provider with no fleet, may raise it.
                let left = left as f64;
                let size = req.reset.map_or(s.capacity, |r| left + rate * r.as_secs_f64());
                let bank = s.log.bank(t, left, rate, size).unwrap_or(left);
                let allowed = s.gone + s.folded + bank.min(s.capacity);
                let raise = s.log.complete && self.share.get().is_none();
                s.served = if raise { allowed } else { s.served.min(allowed) };
            }
            (Some(left), None) if left == 0 || mode == GATING || gate => {
                s.served = s.served.min(s.live() + left as f64);
            }
            _ => {}
        }
        let raised = s.served > before;
        #[allow(clippy::cast_precision_loss)]
        if let Some(left) = tokens.remaining {
            if s.tokens.rate > 0.0 {
                s.tokens.at_most(t, left as f64);
            }
        }
        let pause = pause_for(&req, rate.is_some()).or(pause_for(&tokens, s.tokens.rate > 0.0));
        if let Some(p) = pause {
            s.pause(t + p.min(self.config.max_pause).as_secs_f64());
            if mode == OPEN {
                // Only tickets see a pause: start slow again behind it.
                s.window = f64::from(self.config.initial_window.max(1));
                s.capacity = s.window;
                s.served = s.live() + s.window;
                self.mode.store(COLD, Relaxed);
            }
        }
        drop(s);
        if gate && mode != GATING {
            self.mode.store(GATING, Relaxed);
        }
        if gate || pause.is_some() {
            self.register();
        }
        if (gate && mode != GATING) || raised {
            // The slow start's waiters slept on its floor rate, or more may go at once: they
            // look again.
            self.moved.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SendLog;
    use crate::Limiter;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::time::Duration;

    fn log(times: &[f64]) -> SendLog {
        let mut log = SendLog::NEW;
        for &t in times {
            log.push(t);
        }
        log
    }

    #[test]
    fn remaining_is_brought_up_to_now_by_the_sends_since() {
        // Ten sent at once into a bucket of 10 made at 10 a second. The first response, 0.93 s
        // later, found 3 left: whichever of the ten it answers, the ten emptied the bucket,
        // which has made 9.3 since.
        let bank = log(&[0.0; 10]).bank(0.93, 3.0, 10.0, 10.0);
        assert!(bank.is_some_and(|b| (b - 9.3).abs() < 1e-9), "{bank:?}");
        // A 9 left counted before a burst of nine sent at 1 s counts the burst once: the bucket
        // refilled to 10 by then, the burst left 1, and 50 ms made half a token more.
        let mut times = vec![0.0];
        times.extend([1.0; 9]);
        let bank = log(&times).bank(1.05, 9.0, 10.0, 10.0);
        assert!(bank.is_some_and(|b| (b - 1.5).abs() < 1e-9), "{bank:?}");
        // Nothing sent: nothing to date it by.
        assert_eq!(log(&[]).bank(1.0, 3.0, 10.0, 10.0), None);
    }

    #[test]
    fn a_full_log_forgets_its_oldest_send_and_is_no_longer_complete() {
        let mut l = log(&[0.0; super::LOG]);
        assert!(l.complete);
        l.push(1.0);
        assert!(!l.complete);
        assert_eq!(l.times.len(), super::LOG);
    }

    /// Thirty callers of a fresh limiter, then a second later (after `before`) its first
    /// response's headers: 600 a minute, 3 remaining, 700 ms to full. How many have gone 1 ms
    /// after the headers.
    async fn gone_after_headers(l: &'static Limiter, before: impl FnOnce()) -> usize {
        let gone = Arc::new(AtomicUsize::new(0));
        for _ in 0..30 {
            let gone = gone.clone();
            tokio::spawn(async move {
                l.acquire().await;
                gone.fetch_add(1, Relaxed);
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(gone.load(Relaxed), 10, "the slow start's window");
        tokio::time::sleep(Duration::from_millis(999)).await;
        before();
        let mut h = http::HeaderMap::new();
        h.insert("x-ratelimit-limit-requests", http::HeaderValue::from_static("600"));
        h.insert("x-ratelimit-remaining-requests", http::HeaderValue::from_static("3"));
        h.insert("x-ratelimit-reset-requests", http::HeaderValue::from_static("700ms"));
        l.observe(&h);
        tokio::time::sleep(Duration::from_millis(1)).await;
        gone.load(Relaxed)
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_headers_let_go_what_the_provider_made_while_the_slow_start_held() {
        static L: Limiter = Limiter::new("headers::catch_up");
        // The ten of the window emptied the provider's bucket a second ago, and it has refilled
        // since: ten more go at once, not one a tenth of a second from now.
        assert_eq!(gone_after_headers(&L, || {}).await, 20);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_throttle_remaining_only_lowers_what_goes() {
        static L: Limiter = Limiter::new("headers::throttled");
        // A throttle says the provider holds less than this process's sends explain: the same
        // headers no longer let a burst go.
        let gone = gone_after_headers(&L, || L.record(true)).await;
        assert!(gone <= 11, "{gone}");
    }
}
