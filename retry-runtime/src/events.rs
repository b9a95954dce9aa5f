//! The default tracing events: one WARN per retry and one per give-up, with structured
//! fields. Only the site, attempt, kind, status and delay are recorded: never the error's
//! text, a request body, a header or a credential.

use crate::ErrorKind;
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
        _ => "",
    };
    tracing::warn!(target: TARGET, site, attempt, kind = kind.name(), status, reason = reason.name(), why, "giving up");
}
