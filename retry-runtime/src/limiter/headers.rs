//! What a limiter makes of the provider's rate-limit headers ([`Limiter::observe`]): the
//! limit is the rate, the remaining count caps what is banked, and "none left" with a reset
//! pauses until it.

use super::{COLD, GATING, Limiter, OPEN, RateSource, SHARED, lock};
use crate::http::{RateLimitHeaders, Window};
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;
use tokio::time::Instant;

impl Limiter {
    /// Reads a response's rate-limit headers (OpenAI's `x-ratelimit-*`, Anthropic's
    /// `anthropic-ratelimit-*`, see [`RateLimitHeaders`]) and paces by them: the requests
    /// limit becomes the rate (never above a configured one), the tokens limit the token
    /// rate, a remaining count caps what may go at once, and nothing remaining with a reset
    /// holds every caller until the reset (at most [`max_pause`](super::LimiterBuilder::max_pause)).
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
        #[allow(clippy::cast_precision_loss)]
        if let Some(left) = req.remaining {
            if left == 0 || mode == GATING || gate {
                s.served = s.served.min(s.live() + left as f64);
            }
        }
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
        if gate && mode != GATING {
            // The slow start's waiters slept on its floor rate: they look again.
            self.moved.notify_waiters();
        }
    }
}
