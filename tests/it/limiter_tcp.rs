//! The client-side limiter over real loopback TCP, against the chaos server's token bucket
//! (30 requests a second, 429 with Retry-After above), with twice that demand for 2 s of real
//! time. Without a limiter about half of the attempts are 429s all along; with one, the first
//! 429 pauses every caller and sets a rate near the server's, and the 429s stay few.

use llm_retry::{ApiError, Limiter, Policy, RetryExt};
use llm_retry_testkit::{ChaosServer, Outcome};
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

const POLICY: Policy = match Policy::builder().max_attempts(20).build() {
    Ok(p) => p,
    Err(_) => panic!(),
};
const RATE: u32 = 30;
const SECS: u64 = 2;

async fn chat(http: &reqwest::Client, url: &str) -> Result<(), ApiError> {
    let response = http
        .post(url)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    Ok(())
}

/// 429s per second of the run, and the limiter's rate at its end.
async fn run(limiter: Option<&'static Limiter>) -> (Vec<usize>, Vec<usize>, Option<f64>) {
    let server = ChaosServer::builder().rate_limit(RATE * 60, 3).start().await;
    let url = format!("{}/chat/completions", server.openai_base());
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut tasks = Vec::new();
    let calls = SECS * u64::from(2 * RATE);
    for i in 0..calls {
        tokio::time::sleep_until(start + Duration::from_secs(SECS) * i as u32 / calls as u32).await;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            // `limiter` is an `Option<&'static Limiter>`: a call takes one chosen at run time.
            POLICY.call::<(), ApiError>().limiter(limiter).retry(|| chat(&http, &url)).await
        }));
    }
    tokio::time::sleep_until(start + Duration::from_secs(SECS)).await;
    let rate = limiter.and_then(Limiter::rate);
    for t in tasks {
        t.abort();
    }
    let mut admitted = vec![0; SECS as usize];
    let mut throttled = vec![0; SECS as usize];
    for r in server.requests() {
        let Some(second) = r.at.checked_duration_since(start).map(|d| d.as_secs() as usize) else { continue };
        if second >= SECS as usize {
            continue;
        }
        match r.outcome {
            Outcome::RateLimited { .. } => throttled[second] += 1,
            _ => admitted[second] += 1,
        }
    }
    (admitted, throttled, rate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_the_limiter_settles_near_the_servers_rate() {
    static LIMITER: Limiter = Limiter::new("testkit");
    let (a0, t0, _) = run(None).await;
    let (a1, t1, rate) = run(Some(&LIMITER)).await;
    println!("without limiter: admitted/s {a0:?}, 429s/s {t0:?}");
    println!("with limiter:    admitted/s {a1:?}, 429s/s {t1:?}, rate at the end {rate:?}");
    let last = SECS as usize - 1;
    let rate = rate.expect("the limiter is on after the first 429");
    let c = f64::from(RATE);
    assert!((0.4 * c..=1.5 * c).contains(&rate), "rate {rate:.1}/s against {RATE}/s");
    assert!(t0[last] > a0[last] / 2, "without a limiter the server keeps refusing: {t0:?}");
    assert!(t1[last] * 4 <= t0[last], "the limiter cuts the 429s: {t1:?} vs {t0:?}");
    // The pacer holds every caller on the first 429 and paces from there: the 429s never
    // grow, and stay a few a second (the server's burst is 3).
    assert!(t1[last] <= t1[0].max(3), "the 429s die down: {t1:?}");
}

/// `send_observed` hands the pacer the server's OpenAI-style headers on every response: the
/// requests limit becomes its rate at the first response, and twice the server's rate in
/// demand meets (almost) no 429 at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_headers_set_the_pacers_rate_from_the_first_response() {
    use llm_retry::limits::{RateSource, SendObserved};
    use llm_retry_testkit::RateHeaders;
    static OBSERVED: Limiter = Limiter::new("testkit-headers");
    let server = ChaosServer::builder().rate_limit(RATE * 60, 3).rate_headers(RateHeaders::OpenAi).start().await;
    let url = format!("{}/chat/completions", server.openai_base());
    let http = reqwest::Client::new();
    let start = Instant::now();
    let calls = SECS * u64::from(2 * RATE);
    let mut tasks = Vec::new();
    for i in 0..calls {
        tokio::time::sleep_until(start + Duration::from_secs(SECS) * i as u32 / calls as u32).await;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            POLICY
                .call::<(), ApiError>()
                .limiter(&OBSERVED)
                .retry(|| async {
                    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
                    let response = http.post(&url).json(&body).send_observed(&OBSERVED).await?;
                    if !response.status().is_success() {
                        return Err(ApiError::from_reqwest_response(response).await);
                    }
                    Ok(())
                })
                .await
        }));
    }
    tokio::time::sleep_until(start + Duration::from_secs(SECS)).await;
    for t in tasks {
        t.abort();
    }
    let stats = OBSERVED.stats();
    let refused = server.requests().iter().filter(|r| matches!(r.outcome, Outcome::RateLimited { .. })).count();
    let admitted = server.requests().len() - refused;
    println!("with the server's headers: {admitted} admitted, {refused} 429s in {SECS} s; {stats:?}");
    assert_eq!(stats.source, RateSource::Headers);
    assert_eq!(stats.rate, Some(f64::from(RATE)));
    assert!(refused <= 3, "{refused} 429s");
    assert!(admitted as u64 >= u64::from(RATE) * SECS * 8 / 10, "{admitted} admitted");
}

/// Issue #15's end-to-end goal: 1,000 prompts through a batch whose limiter reads the chaos
/// server's OpenAI-style rate-limit headers (500 requests a second, a burst of a fifth of a
/// second's worth: 100). At most 1% of the requests are 429s, every prompt succeeds, and the
/// batch takes about N / rate (the pacer keeps to the rate from the start; it does not spend
/// the burst). The wall time is printed and bounded loosely here (a shared CI
/// machine); its figure is recorded in docs/PERFORMANCE.md from a run of this test alone.
/// (With a burst of 10, a CI run beside clippy saw 11 429s in 1,011 requests: a client
/// starved of CPU for a few ms sends its delayed requests together.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_prompts_paced_by_the_servers_headers_meet_few_429s() {
    use llm_retry::limits::SendObserved;
    use llm_retry_testkit::RateHeaders;
    const N: usize = 1_000;
    const PER_SECOND: u32 = 500;
    const BURST: u32 = 100;
    static PACER: Limiter = Limiter::new("testkit-headers-batch");
    let server =
        ChaosServer::builder().rate_limit(PER_SECOND * 60, BURST).rate_headers(RateHeaders::OpenAi).start().await;
    let url = format!("{}/chat/completions", server.openai_base());
    let http = reqwest::Client::new();
    let batch = POLICY.batch().concurrency(32).limiter(&PACER).build().unwrap();
    let start = Instant::now();
    let results = batch
        .run(0..N, |i| {
            let (http, url) = (&http, &url);
            async move {
                let body =
                    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("prompt {i}")}]});
                let response = http.post(url).json(&body).send_observed(&PACER).await?;
                if !response.status().is_success() {
                    return Err(ApiError::from_reqwest_response(response).await);
                }
                Ok(())
            }
        })
        .await;
    let took = start.elapsed();
    let refused = server.requests().iter().filter(|r| matches!(r.outcome, Outcome::RateLimited { .. })).count();
    let sent = server.requests().len();
    let ideal = Duration::from_secs_f64(N as f64 / f64::from(PER_SECOND));
    println!(
        "1,000 prompts, headers: {sent} requests, {refused} 429s ({:.2}%), {took:?} = {:.2} x N/rate",
        100.0 * refused as f64 / sent as f64,
        took.as_secs_f64() / ideal.as_secs_f64()
    );
    assert!(results.iter().all(|r| r.outcome.is_ok()), "every prompt succeeds");
    assert!(refused * 100 <= sent, "{refused} 429s of {sent} requests: over 1%");
    assert!(took < ideal * 2, "{took:?} against an ideal of {ideal:?}");
}
