//! Failover over real loopback TCP: two chaos servers, a primary and a fallback. The primary
//! answers every request with a 503 for a while, then recovers. Server-side request counts
//! show that no request reaches the primary while its breaker is open, except the probes;
//! that every call is served exactly once; and that the traffic is back on the primary within
//! one cooldown of the recovery. Short: about 1.5 s of real time.

use futures::future::join_all;
use llm_retry::failover::{Breaker, BreakerState, Fallback, Target};
use llm_retry::{ApiError, Backoff, Policy, RetryExt};
use llm_retry_testkit::{Chaos, ChaosServer, Fault, Outcome};
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

const COOLDOWN: Duration = Duration::from_millis(300);
static PRIMARY_BREAKER: Breaker =
    match Breaker::builder("failover_tcp.primary").consecutive_failures(3).cooldown(COOLDOWN).build() {
        Ok(b) => b,
        Err(_) => panic!(),
    };
static PRIMARY: Target = Target::new("failover_tcp.primary").breaker(&PRIMARY_BREAKER);
static FALLBACK: Target = Target::new("failover_tcp.fallback");
static CHAIN: Fallback<'static> = match Fallback::new(&[&PRIMARY, &FALLBACK]) {
    Ok(c) => c,
    Err(_) => panic!(),
};
const POLICY: Policy =
    match Policy::builder().max_attempts(3).backoff(Backoff::Fixed { delay: Duration::from_millis(5) }).build() {
        Ok(p) => p,
        Err(_) => panic!(),
    };

const TICK: Duration = Duration::from_millis(20);
const TICKS: usize = 70;
const DOWN_AT: usize = 10;
const UP_AT: usize = 40;
const PER_TICK: usize = 4;

async fn chat(http: &reqwest::Client, base: &str) -> Result<(), ApiError> {
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let response = http.post(format!("{base}/chat/completions")).json(&body).send().await?;
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    Ok(())
}

#[tokio::test]
async fn no_request_reaches_a_primary_whose_breaker_is_open_except_the_probes() {
    let primary = ChaosServer::builder().start().await;
    let fallback = ChaosServer::builder().start().await;
    let (primary_base, fallback_base) = (primary.openai_base(), fallback.openai_base());
    let http = reqwest::Client::new();

    let mut opened_at = None;
    let mut recovered_at = None;
    let mut probes_when_opened = 0;
    let mut probes_when_recovered = 0;
    let mut served = Vec::new(); // (tick, by the primary)
    for tick in 0..TICKS {
        if tick == DOWN_AT {
            primary.set_chaos(Some(Chaos::seeded(1).with(Fault::Status(503), 1.0)));
        }
        if tick == UP_AT {
            recovered_at = Some(Instant::now());
            probes_when_recovered = PRIMARY_BREAKER.stats().probes;
            primary.set_chaos(None);
        }
        let calls = (0..PER_TICK).map(|_| {
            POLICY.call::<bool, ApiError>().fallback(CHAIN).retry(|target| {
                let is_primary = core::ptr::eq(target, &PRIMARY);
                let base = if is_primary { &primary_base } else { &fallback_base };
                let http = &http;
                async move { chat(http, base).await.map(|()| is_primary) }
            })
        });
        for out in join_all(calls).await {
            served.push((tick, out.expect("every call is served")));
        }
        if opened_at.is_none() && PRIMARY_BREAKER.state() == BreakerState::Open {
            opened_at = Some(Instant::now());
            probes_when_opened = PRIMARY_BREAKER.stats().probes;
        }
        tokio::time::sleep(TICK).await;
    }
    let (opened_at, recovered_at) = (opened_at.expect("the breaker opened"), recovered_at.unwrap());

    // While the breaker was open (from its opening to the recovery), the primary saw the
    // probes and nothing else.
    let primary_requests = primary.requests();
    let during = primary_requests.iter().filter(|r| r.at >= opened_at && r.at < recovered_at).count();
    let probes = PRIMARY_BREAKER.stats().probes;
    assert!(probes_when_recovered > probes_when_opened, "at least one probe during the outage");
    assert_eq!(during as u64, probes_when_recovered - probes_when_opened);

    // Every call was served exactly once: one successful response per call, across the two.
    let ok = |r: &&llm_retry_testkit::RecordedRequest| r.outcome == Outcome::Served(Fault::Ok);
    let successes = primary_requests.iter().filter(ok).count() + fallback.requests().iter().filter(ok).count();
    assert_eq!(successes, TICKS * PER_TICK);
    assert_eq!(served.len(), TICKS * PER_TICK);

    // Back on the primary within one cooldown of the recovery.
    let back = UP_AT + (COOLDOWN.as_millis() / TICK.as_millis()) as usize + 2;
    assert!(served.iter().filter(|(tick, _)| *tick >= back).all(|(_, by_primary)| *by_primary), "{served:?}");
    assert_eq!(PRIMARY_BREAKER.state(), BreakerState::Closed);
    assert!(probes > probes_when_recovered, "the probe that closed it");

    primary.shutdown().await;
    fallback.shutdown().await;
}
