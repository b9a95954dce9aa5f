//! The `metrics` feature: per-site counters, retries by kind, give-ups by reason, the delay
//! histogram and the limiter's rate, rendered as Prometheus text by a local recorder.
#![cfg(feature = "metrics")]

use llm_retry_runtime::{ApiError, Budget, Limiter, Policy, RetryExt, http::RetryAfter, stats::Site};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::time::Duration;

const POLICY: Policy = match Policy::builder().max_attempts(3).build() {
    Ok(p) => p,
    Err(_) => panic!(),
};
static SITE: Site = Site::new("metrics::chat", POLICY);
static BUDGET: Budget = match Budget::builder().burst(3).ratio(0.0).build() {
    Ok(b) => b,
    Err(_) => panic!(),
};
static LIMITER: Limiter = Limiter::new("metrics-endpoint");

#[test]
fn every_figure_reaches_the_recorder() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let mut n = 0;
            // 429, 503, then success: two retries, by kind.
            let ok: Result<u32, ApiError> = POLICY
                .call()
                .site(&SITE)
                .budget(&BUDGET)
                .limiter(&LIMITER)
                .retry(|| {
                    n += 1;
                    let k = n;
                    async move {
                        match k {
                            1 => Err(ApiError::from_status(429)
                                .with_retry_after(RetryAfter::Delay(Duration::from_millis(200)))),
                            2 => Err(ApiError::from_status(503)),
                            _ => Ok(k),
                        }
                    }
                })
                .await;
            assert_eq!(ok.unwrap(), 3);
            // One retry left in the budget, then it is exhausted.
            let err: Result<u32, ApiError> =
                POLICY.call().site(&SITE).budget(&BUDGET).retry(|| async { Err(ApiError::from_status(500)) }).await;
            assert!(err.is_err());
        });
        llm_retry_runtime::metrics::export();
    });
    let text = handle.render();
    println!("{text}");
    for line in [
        "llm_retry_calls_total{site=\"metrics::chat\"} 2",
        "llm_retry_attempts_total{site=\"metrics::chat\"} 5",
        "llm_retry_successes_total{site=\"metrics::chat\"} 1",
        "llm_retry_retries_total{site=\"metrics::chat\",kind=\"RateLimited\"} 1",
        "llm_retry_retries_total{site=\"metrics::chat\",kind=\"Server\"} 2",
        "llm_retry_give_ups_total{site=\"metrics::chat\",reason=\"budget_exhausted\"} 1",
        "llm_retry_delay_seconds_count{site=\"metrics::chat\",kind=\"Server\"} 2",
        "llm_retry_delay_seconds_count{site=\"metrics::chat\",kind=\"RateLimited\"} 1",
        "llm_retry_limiter_throttles_total{endpoint=\"metrics-endpoint\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
    // The pacer paces from the first throttle: its rate is exported, and above zero; so are
    // its pause and its queue.
    assert!(text.contains("llm_retry_limiter_paused_seconds{endpoint=\"metrics-endpoint\"}"), "{text}");
    assert!(text.contains("llm_retry_limiter_queued{endpoint=\"metrics-endpoint\"} 0"), "{text}");
    // Never shared: it paces alone, and nothing is in flight at the end.
    assert!(text.contains("llm_retry_limiter_mode{endpoint=\"metrics-endpoint\"} 0"), "{text}");
    assert!(text.contains("llm_retry_limiter_fallbacks_total{endpoint=\"metrics-endpoint\"} 0"), "{text}");
    assert!(text.contains("llm_retry_limiter_in_flight{endpoint=\"metrics-endpoint\"} 0"), "{text}");
    let rate = text.lines().find_map(|l| l.strip_prefix("llm_retry_limiter_rate{endpoint=\"metrics-endpoint\"} "));
    assert!(rate.and_then(|r| r.parse::<f64>().ok()).is_some_and(|r| r > 0.0), "limiter rate: {rate:?} in\n{text}");
    assert!(text.contains("llm_retry_slept_milliseconds_total{site=\"metrics::chat\"}"));
}
