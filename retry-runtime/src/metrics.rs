//! Export through the [`metrics`](https://docs.rs/metrics) crate facade (feature `metrics`):
//! whatever recorder the application installed (Prometheus, StatsD, OpenTelemetry) sees the
//! retry counters of every call site and the rate of every limiter.
//!
//! Counters live in each [`Site`]'s relaxed atomics, so the hot path never calls
//! into the recorder: [`export`] copies them out (call it before each scrape or on a timer).
//! The one metric recorded as it happens is the histogram of retry delays, on the retry path
//! only.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `llm_retry_calls_total` | counter | `site` |
//! | `llm_retry_attempts_total` | counter | `site` |
//! | `llm_retry_successes_total` | counter | `site` |
//! | `llm_retry_first_try_successes_total` | counter | `site` |
//! | `llm_retry_retries_total` | counter | `site`, `kind` |
//! | `llm_retry_give_ups_total` | counter | `site`, `reason` |
//! | `llm_retry_cancelled_total`, `llm_retry_panicked_total` | counter | `site` |
//! | `llm_retry_slept_milliseconds_total` | counter | `site` |
//! | `llm_retry_delay_seconds` | histogram | `site`, `kind` |
//! | `llm_retry_limiter_rate` | gauge (requests/s; 0 while none is known) | `endpoint` |
//! | `llm_retry_limiter_paused_seconds` | gauge (how much longer a Retry-After holds every caller) | `endpoint` |
//! | `llm_retry_limiter_queued` | gauge (attempts waiting for the limiter) | `endpoint` |
//! | `llm_retry_limiter_throttles_total`, `llm_retry_limiter_waits_total` | counter | `endpoint` |
//! | `llm_retry_breaker_state` | gauge (0 closed, 1 half-open, 2 open) | `breaker` |
//! | `llm_retry_breaker_transitions_total` | counter | `breaker`, `to` |
//! | `llm_retry_breaker_refused_total`, `llm_retry_breaker_probes_total` | counter | `breaker` |
//!
//! A breaker appears once it has moved at least once.

use crate::ErrorKind;
use crate::breaker::{BreakerState, moved_breakers};
use crate::limiter::armed_limiters;
use crate::outcome::GiveUp;
use crate::stats::{Site, stats};
use crate::store::Sharing;
use metrics::{Key, Level, Metadata, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use std::sync::Once;
use std::time::Duration;

/// The `reason` label of a give-up: [`GiveUp::name`] in snake case.
///
/// ```
/// use llm_retry_runtime::{GiveUp, metrics::reason_label};
/// assert_eq!(reason_label(GiveUp::BudgetExhausted), "budget_exhausted");
/// ```
pub const fn reason_label(reason: GiveUp) -> &'static str {
    match reason {
        GiveUp::Exhausted => "exhausted",
        GiveUp::Deadline => "deadline",
        GiveUp::NonRetryable => "non_retryable",
        GiveUp::RetryAfterTooLong => "retry_after_too_long",
        GiveUp::BudgetExhausted => "budget_exhausted",
        GiveUp::CircuitOpen => "circuit_open",
    }
}

fn describe() {
    static DESCRIBED: Once = Once::new();
    DESCRIBED.call_once(|| {
        describe_counter!("llm_retry_calls_total", "Calls of a retried fn");
        describe_counter!("llm_retry_attempts_total", "Attempts, the first ones included");
        describe_counter!("llm_retry_successes_total", "Calls that succeeded, after any number of attempts");
        describe_counter!("llm_retry_first_try_successes_total", "Calls whose first attempt succeeded");
        describe_counter!("llm_retry_retries_total", "Retries, by the kind of failure before them");
        describe_counter!("llm_retry_give_ups_total", "Calls that gave up, by reason");
        describe_counter!("llm_retry_cancelled_total", "Calls dropped before they finished");
        describe_counter!("llm_retry_panicked_total", "Calls whose body panicked");
        describe_counter!("llm_retry_slept_milliseconds_total", Unit::Milliseconds, "Time slept between attempts");
        describe_histogram!("llm_retry_delay_seconds", Unit::Seconds, "Each delay before a retry");
        describe_gauge!("llm_retry_limiter_rate", "Client-side send rate in force (requests/s; 0 while none is known)");
        describe_gauge!(
            "llm_retry_limiter_paused_seconds",
            Unit::Seconds,
            "How much longer a throttle's Retry-After holds every caller of the endpoint"
        );
        describe_gauge!("llm_retry_limiter_queued", "Attempts waiting for the limiter now");
        describe_counter!("llm_retry_limiter_throttles_total", "Throttles reported to the limiter");
        describe_counter!("llm_retry_limiter_waits_total", "Attempts that waited for a limiter token");
        describe_gauge!(
            "llm_retry_limiter_mode",
            "Where the limiter paces: 0 alone, 1 through its shared store, 2 alone because the store cannot answer"
        );
        describe_counter!("llm_retry_limiter_fallbacks_total", "Times the limiter's shared store could not answer");
        describe_gauge!("llm_retry_limiter_in_flight", "Attempts holding a place in flight (max_in_flight)");
        describe_gauge!("llm_retry_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open");
        describe_counter!("llm_retry_breaker_transitions_total", "Circuit breaker transitions, by state entered");
        describe_counter!("llm_retry_breaker_refused_total", "Calls a circuit breaker refused");
        describe_counter!("llm_retry_breaker_probes_total", "Half-open probes a circuit breaker let through");
        describe_gauge!(
            "llm_retry_breaker_mode",
            "Where the breaker's state lives: 0 this process, 1 its shared store, 2 this process because the store cannot answer"
        );
    });
}

/// Copies every called site's counters and every throttled limiter's state into the
/// installed `metrics` recorder. Cheap enough to call before each scrape.
///
/// ```
/// // With no recorder installed this does nothing visible.
/// llm_retry_runtime::metrics::export();
/// ```
pub fn export() {
    describe();
    for (site, s) in stats().iter() {
        counter!("llm_retry_calls_total", "site" => site).absolute(s.calls);
        counter!("llm_retry_attempts_total", "site" => site).absolute(s.attempts);
        counter!("llm_retry_successes_total", "site" => site).absolute(s.successes);
        counter!("llm_retry_first_try_successes_total", "site" => site).absolute(s.first_try_successes);
        counter!("llm_retry_cancelled_total", "site" => site).absolute(s.cancelled);
        counter!("llm_retry_panicked_total", "site" => site).absolute(s.panicked);
        let slept_ms = u64::try_from(s.slept.as_millis()).unwrap_or(u64::MAX);
        counter!("llm_retry_slept_milliseconds_total", "site" => site).absolute(slept_ms);
        for kind in ErrorKind::ALL {
            let n = s.retries_of(kind);
            if n > 0 {
                counter!("llm_retry_retries_total", "site" => site, "kind" => kind.name()).absolute(n);
            }
        }
        for reason in GiveUp::ALL {
            let n = s.gave_up(reason);
            if n > 0 {
                counter!("llm_retry_give_ups_total", "site" => site, "reason" => reason_label(reason)).absolute(n);
            }
        }
    }
    for limiter in armed_limiters() {
        let st = limiter.stats();
        let endpoint = limiter.name();
        gauge!("llm_retry_limiter_rate", "endpoint" => endpoint).set(st.rate.unwrap_or(0.0));
        gauge!("llm_retry_limiter_paused_seconds", "endpoint" => endpoint).set(st.paused_for.as_secs_f64());
        #[allow(clippy::cast_precision_loss)] // a queue's length, exact in an f64 up to 2^53
        gauge!("llm_retry_limiter_queued", "endpoint" => endpoint).set(st.queued as f64);
        counter!("llm_retry_limiter_throttles_total", "endpoint" => endpoint).absolute(st.throttles);
        counter!("llm_retry_limiter_waits_total", "endpoint" => endpoint).absolute(st.waits);
        // Where the endpoint paces: 0 alone, 1 through its shared store, 2 alone because that
        // store cannot answer.
        gauge!("llm_retry_limiter_mode", "endpoint" => endpoint).set(mode_value(st.mode));
        counter!("llm_retry_limiter_fallbacks_total", "endpoint" => endpoint).absolute(st.fallbacks);
        gauge!("llm_retry_limiter_in_flight", "endpoint" => endpoint).set(f64::from(st.in_flight));
    }
    for breaker in moved_breakers() {
        let name = breaker.name();
        let state = match breaker.state() {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        gauge!("llm_retry_breaker_state", "breaker" => name).set(state);
        let st = breaker.stats();
        for (to, n) in [("open", st.opened), ("half-open", st.half_opened), ("closed", st.closed)] {
            counter!("llm_retry_breaker_transitions_total", "breaker" => name, "to" => to).absolute(n);
        }
        counter!("llm_retry_breaker_refused_total", "breaker" => name).absolute(st.refused);
        counter!("llm_retry_breaker_probes_total", "breaker" => name).absolute(st.probes);
        gauge!("llm_retry_breaker_mode", "breaker" => name).set(mode_value(st.mode));
    }
}

/// A store mode as a gauge's value.
fn mode_value(mode: Sharing) -> f64 {
    match mode {
        Sharing::Local => 0.0,
        Sharing::Shared => 1.0,
        Sharing::Fallback => 2.0,
    }
}

/// Records one retry's delay; the engine calls it on the retry path of a call with a site.
/// The key's labels live in the site (built on its first retry), so this allocates nothing.
pub(crate) fn record_retry(site: &'static Site, kind: ErrorKind, delay: Duration) {
    static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
    let key = Key::from_static_parts("llm_retry_delay_seconds", site.delay_labels(kind));
    metrics::with_recorder(|r| r.register_histogram(&key, &METADATA).record(delay.as_secs_f64()));
}
