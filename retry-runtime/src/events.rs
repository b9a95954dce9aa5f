//! The default tracing events: one WARN per retry and one per give-up, with structured
//! fields. Only the site, attempt, kind, status and delay are recorded: never the error's
//! text, a request body, a header or a credential.

use crate::ErrorKind;
use crate::breaker::{BreakerState, Cause};
use crate::hooks::DelaySource;
use crate::outcome::GiveUp;
use std::time::Duration;

/// The target of every event, for filtering (`RUST_LOG=llm_retry=warn`).
pub(crate) const TARGET: &str = "llm_retry";

pub(crate) fn retrying(
    site: &str,
    attempt: u32,
    kind: ErrorKind,
    status: Option<u16>,
    delay: Duration,
    source: DelaySource,
) {
    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let source = match source {
        DelaySource::Backoff => "backoff",
        DelaySource::RetryAfter => "retry-after",
    };
    tracing::warn!(target: TARGET, site, attempt, kind = kind.name(), status, delay_ms, source, "retrying");
}

pub(crate) fn gave_up(site: &str, attempt: u32, kind: ErrorKind, status: Option<u16>, reason: GiveUp) {
    let why = match reason {
        GiveUp::NonRetryable => kind.never_retryable_reason().unwrap_or("the policy does not retry this kind"),
        GiveUp::BudgetExhausted => "retries already make up the endpoint's budgeted share of its traffic",
        GiveUp::CircuitOpen => "every target left has an open circuit breaker",
        _ => "",
    };
    tracing::warn!(target: TARGET, site, attempt, kind = kind.name(), status, reason = reason.name(), why, "giving up");
}

/// A circuit breaker moved: WARN when it opens, INFO otherwise. `open_for` is how long it
/// stays open, when it opened.
pub(crate) fn breaker_moved(
    breaker: &str,
    from: BreakerState,
    to: BreakerState,
    cause: Cause,
    open_for: Option<Duration>,
) {
    let (from, to, cause) = (from.name(), to.name(), cause.name());
    match open_for {
        Some(d) if to == BreakerState::Open.name() => {
            let open_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(target: TARGET, breaker, from, to, cause, open_ms, "circuit breaker opened");
        }
        _ => tracing::info!(target: TARGET, breaker, from, to, cause, "circuit breaker moved"),
    }
}

/// A call leaves one target of its fallback chain for the next.
pub(crate) fn moving_on(site: &str, from: &str, kind: ErrorKind, why: &str) {
    tracing::warn!(target: TARGET, site, from, kind = kind.name(), why, "moving on to the next target");
}
