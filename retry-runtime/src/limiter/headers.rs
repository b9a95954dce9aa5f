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
            // A send that found less than a token was refused and took none.
            let after = if filled >= 1.0 { filled - 1.0 } else { filled };
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
                if std::env::var("SIM_TRACE").is_ok() {
                    eprintln!(
                        "hdr t {t:.4} left {left} size {size} bank {bank:.3} gone {} served {:.3} -> {allowed:.3} log {}",
                        s.gone,
                        s.served,
                        s.log.times.len()
                    );
                }
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
