//! Helpers shared by the end-to-end tests (`e2e_reqwest`, `e2e_async_openai`): the timing
//! tolerances, the `notify` hook that records every retry decision, the stats and request-gap
//! helpers, and the checks that hold a call's stats against what the chaos server recorded; and
//! the SSE opener of `attribute_stream` and `stream_e2e`.

use std::sync::Mutex;
use std::time::Duration;

use llm_retry::{ErrorKind, GiveUp, RetryEvent, call::DelaySource, stats::SiteStats};
use llm_retry_testkit::{ChaosServer, Fault, RecordedRequest};
use tokio::time::Instant;

/// How late a request may arrive after the moment the policy planned for it: the rest of the failed
/// response, a fresh connection, timer granularity, and a busy machine.
pub const SCHED: Duration = Duration::from_millis(60);

/// How soon after its only request reached the server a call that gives up without retrying must have
/// returned: the rest of one answer over loopback and its classification, on a busy machine. Far below
/// every wait the policies here could have made instead.
pub const AT_ONCE: Duration = Duration::from_millis(50);

/// The reply every successful call gets.
pub const REPLY: &str = "Hello from the chaos server.";

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One retry decision, as the `notify` hook saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    pub attempt: u32,
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub delay: Duration,
    pub source: DelaySource,
}

/// Every retry decision of every site in this test binary, with its site's name.
pub static RETRIES: Mutex<Vec<(&'static str, Retry)>> = Mutex::new(Vec::new());

/// The `notify` hook of every annotated fn, whatever its error type.
pub fn record<E>(ev: &RetryEvent<'_, E>) {
    let retry = Retry { attempt: ev.attempt, kind: ev.kind, status: ev.status, delay: ev.delay, source: ev.source };
    RETRIES.lock().unwrap_or_else(|e| e.into_inner()).push((ev.site, retry));
}

/// The retry decisions made at `site`, in order.
pub fn retries(site: &str) -> Vec<Retry> {
    RETRIES.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(s, _)| *s == site).map(|(_, r)| *r).collect()
}

/// `site`'s stats (zero before its first call).
pub fn stats(site: &str) -> SiteStats {
    llm_retry::stats().get(site).unwrap_or_default()
}

/// The time between consecutive requests, as the server saw them arrive.
pub fn gaps(requests: &[RecordedRequest]) -> Vec<Duration> {
    requests.windows(2).map(|w| w[1].at.duration_since(w[0].at)).collect()
}

/// The most jitter the policy adds on top of a Retry-After hint: `clamp(hint/10, 10 ms, 1 s)`.
pub fn hint_jitter_max(hint: Duration) -> Duration {
    (hint / 10).clamp(ms(10), Duration::from_secs(1))
}

/// Checks, right after a call returned, that it gave up without waiting: one request, no sleep in the
/// stats, and the call back within [`AT_ONCE`] of that request reaching the server (measured from there,
/// so that connecting and the first use of a client do not count). Returns that time.
pub fn assert_gave_up_at_once(what: &str, site: &str, before: SiteStats, server: &ChaosServer) -> Duration {
    let returned = Instant::now();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{what}: one request");
    let took = returned.duration_since(requests[0].at);
    assert!(took < AT_ONCE, "{what}: returned {took:?} after its request arrived, not at once");
    assert_eq!(stats(site).slept, before.slept, "{what}: no sleep");
    took
}

/// A server that answers every successful call with [`REPLY`], running `script` first.
pub async fn server(script: impl IntoIterator<Item = Fault>) -> ChaosServer {
    ChaosServer::builder().reply(REPLY).script(script).start().await
}

/// Checks that attempts, retries and outcome in `site`'s stats (from `before`) match what the server
/// recorded: one call, `requests` attempts, one retry fewer, and the given ending.
pub fn assert_stats(site: &str, before: SiteStats, requests: usize, ending: Result<(), GiveUp>) {
    let after = stats(site);
    let requests = requests as u64;
    assert_eq!(after.calls - before.calls, 1, "{site}: calls");
    assert_eq!(after.attempts - before.attempts, requests, "{site}: attempts = requests the server saw");
    assert_eq!(after.retries - before.retries, requests - 1, "{site}: retries");
    match ending {
        Ok(()) => assert_eq!(after.successes - before.successes, 1, "{site}: successes"),
        Err(reason) => {
            assert_eq!(after.successes, before.successes, "{site}: successes");
            assert_eq!(after.gave_up(reason) - before.gave_up(reason), 1, "{site}: gave up for {reason:?}");
        }
    }
}

/// Opens one attempt of a streaming chat against the chaos server: `prefill`, when not empty,
/// goes back as an assistant message so the server continues it. A non-2xx answer becomes a
/// classified `ApiError`; the SSE body becomes text deltas.
pub async fn open_sse(
    client: &reqwest::Client,
    url: &str,
    prompt: &str,
    prefill: &str,
) -> Result<impl futures::Stream<Item = Result<String, llm_retry::ApiError>> + use<>, llm_retry::ApiError> {
    let mut messages = vec![serde_json::json!({"role": "user", "content": prompt})];
    if !prefill.is_empty() {
        messages.push(serde_json::json!({"role": "assistant", "content": prefill}));
    }
    let body = serde_json::json!({"model": "chaos-model", "max_tokens": 64, "stream": true, "messages": messages});
    let resp = client.post(url).json(&body).send().await?;
    if !resp.status().is_success() {
        return Err(llm_retry::ApiError::from_reqwest_response(resp).await);
    }
    Ok(llm_retry::stream::text_deltas(resp.bytes_stream()))
}
