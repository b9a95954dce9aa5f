//! The rate limiter's headers and its tokens-per-minute limit, as a real HTTP client (reqwest) sees
//! them over TCP. Expected values are recomputed from the arrival times the server recorded, with
//! the public buckets, so they are exact however slow the machine.

use std::time::{Duration, SystemTime};

use llm_retry_testkit::{
    ChaosServer, Outcome, RateHeaders, RecordedRequest, TokenBucket, TokensPerMinute, estimate_tokens,
    format_openai_duration,
};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn chat_body(prompt: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]})
}

fn messages_body(prompt: &str, stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": stream,
           "messages": [{"role": "user", "content": prompt}]})
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    http.post(url).json(body).send().await.unwrap()
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).unwrap_or_else(|| panic!("no {name} in {h:?}")).to_str().unwrap()
}

/// Rounds up to the millisecond, as the headers do.
fn ceil_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64)
}

/// Parses OpenAI's reset (`20ms`, `1.5s`, `1m1s`), as a client would.
fn parse_openai(v: &str) -> Duration {
    if let Some(ms) = v.strip_suffix("ms") {
        return Duration::from_millis(ms.parse().unwrap());
    }
    let v = v.strip_suffix('s').unwrap();
    let (minutes, secs) = v.split_once('m').map_or((0, v), |(m, s)| (m.parse::<u64>().unwrap(), s));
    Duration::from_secs(minutes * 60) + Duration::from_secs_f64(secs.parse::<f64>().unwrap())
}

/// Parses Anthropic's reset, `2025-12-05T06:00:02Z` or `...02.125Z`, as a client would.
fn parse_rfc3339(v: &str) -> SystemTime {
    let num = |s: &str| s.parse::<i64>().unwrap();
    let (date, time) = v.strip_suffix('Z').unwrap().split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(num).collect();
    let (hms, millis) = time.split_once('.').map_or((time, 0), |(t, ms)| (t, num(ms)));
    let t: Vec<i64> = hms.split(':').map(num).collect();
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_millis(millis as u64)
}

/// What the server's request bucket said of each recorded request, replayed at the recorded arrival
/// times: admitted or the wait, then `remaining` and `full_in` at that moment. The server's bucket
/// started full before the first request arrived.
struct Replayed {
    admitted: Result<(), Duration>,
    remaining: u32,
    full_in: Duration,
}

fn replay_requests(records: &[RecordedRequest], rpm: u32, burst: u32) -> Vec<Replayed> {
    let mut bucket = TokenBucket::new_at(rpm, burst, records[0].at);
    records
        .iter()
        .map(|r| {
            let admitted = bucket.try_acquire_at(r.at);
            Replayed { admitted, remaining: bucket.remaining_at(r.at), full_in: bucket.full_in(r.at) }
        })
        .collect()
}

#[tokio::test]
async fn openai_headers_count_down_exactly_on_successes_and_the_429() {
    let http = client();
    let server = ChaosServer::builder().rate_limit(60, 3).rate_headers(RateHeaders::OpenAi).start().await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let resp = post(&http, &server.chat_completions_url(), &chat_body("Hi")).await;
        seen.push((resp.status().as_u16(), resp.headers().clone()));
    }
    let records = server.requests();
    let expected = replay_requests(&records, 60, 3);
    let mut refused = 0;
    for ((status, h), expected) in seen.iter().zip(&expected) {
        assert_eq!(header(h, "x-ratelimit-limit-requests"), "60");
        assert_eq!(header(h, "x-ratelimit-remaining-requests"), expected.remaining.to_string());
        assert_eq!(header(h, "x-ratelimit-reset-requests"), format_openai_duration(ceil_ms(expected.full_in)));
        match expected.admitted {
            Ok(()) => {
                assert_eq!(*status, 200);
                assert!(h.get("retry-after").is_none());
            }
            Err(wait) => {
                refused += 1;
                assert_eq!(*status, 429);
                assert_eq!(header(h, "retry-after-ms"), ceil_ms(wait).as_millis().to_string());
                // Full again only once all three tokens are back; the next one comes sooner.
                assert!(expected.full_in >= wait + Duration::from_secs(2));
            }
        }
        assert!(h.get("x-ratelimit-limit-tokens").is_none(), "no token limit, no token headers");
    }
    // Four requests within a second of a bucket of three: the last is refused (unless the machine
    // stalled for a second, and then the replay above says so).
    assert_eq!(refused, usize::from(records[3].at - records[0].at < Duration::from_secs(1)));
    let remaining: Vec<&str> = seen.iter().map(|(_, h)| header(h, "x-ratelimit-remaining-requests")).collect();
    assert_eq!(&remaining[..3], ["2", "1", "0"]);
}

#[tokio::test]
async fn anthropic_headers_on_a_stream_and_the_429_give_an_rfc3339_instant() {
    let http = client();
    let server = ChaosServer::builder()
        .rate_limit(60, 2)
        .rate_limit_tokens(60_000, 10_000)
        .rate_headers(RateHeaders::Auto)
        .start()
        .await;
    let body = messages_body(&"x".repeat(400), true); // 100 tokens of prompt, 16 of output
    let mut seen = Vec::new();
    for _ in 0..3 {
        let before = SystemTime::now();
        let resp = post(&http, &server.messages_url(), &body).await;
        let after = SystemTime::now();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        if status == 200 {
            assert!(text.contains("event: message_stop"), "a whole stream: {text}");
        }
        seen.push((status, headers, before, after));
    }
    let records = server.requests();
    let expected = replay_requests(&records, 60, 2);
    let mut tokens = TokensPerMinute::new_at(60_000, 10_000, records[0].at);
    assert_eq!(estimate_tokens(&body), 116);
    for (((status, h, before, after), expected), record) in seen.iter().zip(&expected).zip(&records) {
        assert!(h.get("x-ratelimit-limit-requests").is_none(), "Anthropic's headers only: {h:?}");
        assert_eq!(header(h, "anthropic-ratelimit-requests-limit"), "60");
        assert_eq!(header(h, "anthropic-ratelimit-tokens-limit"), "60000");
        assert_eq!(header(h, "anthropic-ratelimit-input-tokens-limit"), "60000");
        match expected.admitted {
            Ok(()) => {
                assert_eq!(*status, 200);
                tokens.try_spend_at(116, record.at).unwrap();
            }
            Err(wait) => {
                assert_eq!(*status, 429);
                assert_eq!(header(h, "retry-after"), wait.as_nanos().div_ceil(1_000_000_000).to_string());
                assert!(matches!(record.outcome, Outcome::RateLimited { .. }));
            }
        }
        assert_eq!(header(h, "anthropic-ratelimit-requests-remaining"), expected.remaining.to_string());
        let (full_in, reset) = (expected.full_in, parse_rfc3339(header(h, "anthropic-ratelimit-requests-reset")));
        assert!(reset >= *before + full_in, "{reset:?} before {before:?} + {full_in:?}");
        // The server rounds the reset up to the millisecond, and the instant once more.
        let latest = *after + ceil_ms(full_in) + Duration::from_millis(1);
        assert!(reset <= latest, "{reset:?} after {after:?} + {full_in:?}");
        let left = tokens.remaining_at(record.at);
        assert_eq!(header(h, "anthropic-ratelimit-tokens-remaining"), left.to_string());
        assert_eq!(header(h, "anthropic-ratelimit-input-tokens-remaining"), left.to_string());
        let token_reset = parse_rfc3339(header(h, "anthropic-ratelimit-tokens-reset"));
        assert!(token_reset >= *before + tokens.full_in(record.at));
    }
}

#[tokio::test]
async fn a_tpm_limit_refuses_a_big_prompt_while_small_ones_pass_then_admits_it() {
    let http = client();
    // 1000 tokens a second, 1000 at once; no request limit.
    let server =
        ChaosServer::builder().rate_limit_tokens(60_000, 1_000).rate_headers(RateHeaders::OpenAi).start().await;
    let url = server.chat_completions_url();
    let (small, big, huge) =
        (chat_body(&"s".repeat(1_600)), chat_body(&"b".repeat(3_200)), chat_body(&"h".repeat(4_004)));
    assert_eq!([&small, &big, &huge].map(estimate_tokens), [400, 800, 1_001]);

    let resp = post(&http, &url, &small).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(resp.headers(), "x-ratelimit-limit-tokens"), "60000");
    assert!(resp.headers().get("x-ratelimit-limit-requests").is_none(), "no request limit, no request headers");
    let refused = post(&http, &url, &big).await;
    assert_eq!(refused.status(), 429);
    let h = refused.headers().clone();
    let wait = Duration::from_millis(header(&h, "retry-after-ms").parse().unwrap());
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200), "{wait:?}");
    assert_eq!(header(&h, "retry-after"), "1");
    let error = refused.json::<Value>().await.unwrap()["error"].clone();
    assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("tokens"), Some("rate_limit_exceeded")));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Rate limit reached for gpt-4o-mini in organization org-chaos on tokens per min (TPM): Limit 60000, Used "
        ),
        "{message}"
    );
    assert!(message.contains(", Requested 800. Please try again in "), "{message}");

    // A small prompt fits meanwhile.
    assert_eq!(post(&http, &url, &chat_body("tiny")).await.status(), 200);
    // Waiting as the latest 429 says is enough for the big one.
    let again = post(&http, &url, &big).await;
    let wait = match again.status().as_u16() {
        200 => Duration::ZERO,
        429 => Duration::from_millis(header(again.headers(), "retry-after-ms").parse().unwrap()),
        other => panic!("status {other}"),
    };
    tokio::time::sleep(wait).await;
    let admitted = post(&http, &url, &big).await;
    assert_eq!(admitted.status(), 200);
    let left: u64 = header(admitted.headers(), "x-ratelimit-remaining-tokens").parse().unwrap();
    assert!(left < 200, "800 of at most 1000 spent: {left}");

    // Larger than the bucket: refused now and forever, with no hint to wait for.
    for _ in 0..2 {
        let too_large = post(&http, &url, &huge).await;
        assert_eq!(too_large.status(), 429);
        assert!(
            too_large.headers().get("retry-after").is_none() && too_large.headers().get("retry-after-ms").is_none()
        );
        assert!(too_large.headers().get("x-ratelimit-remaining-tokens").is_some(), "the headers go on every response");
        let message = too_large.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("Request too large for gpt-4o-mini in organization org-chaos on tokens per min (TPM): Limit 1000, Requested 1001."), "{message}");
    }
    let records = server.requests();
    let outcomes: Vec<&Outcome> = records.iter().map(|r| &r.outcome).collect();
    assert!(matches!(outcomes[1], Outcome::TokensLimited { tokens: 800, .. }));
    assert!(matches!(outcomes.last().unwrap(), Outcome::RequestTooLarge { tokens: 1_001, limit: 1_000 }));
    // Refusals took nothing: every admitted request, and only those, spent its tokens.
    let mut bucket = TokensPerMinute::new_at(60_000, 1_000, records[0].at);
    for r in &records {
        let tokens = estimate_tokens(r.json.as_ref().unwrap());
        assert_eq!(
            bucket.try_spend_at(tokens, r.at).is_ok(),
            r.outcome == Outcome::Served(llm_retry_testkit::Fault::Ok),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn a_client_pacing_by_openai_headers_alone_is_never_refused() {
    let http = client();
    // 50 requests a second, two at once; 10,000 tokens a second, 2,000 at once; 300-token prompts.
    let server = ChaosServer::builder()
        .rate_limit(3_000, 2)
        .rate_limit_tokens(600_000, 2_000)
        .rate_headers(RateHeaders::Auto)
        .start()
        .await;
    let body = chat_body(&"p".repeat(1_200));
    for k in 0..40 {
        let resp = post(&http, &server.chat_completions_url(), &body).await;
        assert_eq!(resp.status(), 200, "request {k} refused: {:?}", resp.headers());
        let h = resp.headers();
        let mut wait = Duration::ZERO;
        if header(h, "x-ratelimit-remaining-requests") == "0" {
            wait = wait.max(parse_openai(header(h, "x-ratelimit-reset-requests")));
        }
        if header(h, "x-ratelimit-remaining-tokens").parse::<u64>().unwrap() < 300 {
            wait = wait.max(parse_openai(header(h, "x-ratelimit-reset-tokens")));
        }
        tokio::time::sleep(wait).await;
    }
    assert_eq!(server.request_count(), 40);
}

#[tokio::test]
async fn a_client_pacing_by_anthropic_headers_alone_is_never_refused() {
    let http = client();
    let server = ChaosServer::builder().rate_limit(3_000, 3).rate_headers(RateHeaders::Anthropic).start().await;
    for k in 0..24 {
        let resp = post(&http, &server.messages_url(), &messages_body("Hi", false)).await;
        assert_eq!(resp.status(), 200, "request {k} refused: {:?}", resp.headers());
        if header(resp.headers(), "anthropic-ratelimit-requests-remaining") == "0" {
            let reset = parse_rfc3339(header(resp.headers(), "anthropic-ratelimit-requests-reset"));
            tokio::time::sleep(reset.duration_since(SystemTime::now()).unwrap_or_default()).await;
        }
    }
    assert_eq!(server.request_count(), 24);
}

#[tokio::test]
async fn auto_follows_the_route_and_none_sends_nothing_on_success() {
    let http = client();
    let server = ChaosServer::builder().rate_limit(600, 100).rate_headers(RateHeaders::Auto).start().await;
    let azure = format!("{}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", server.url());
    let resp = post(&http, &azure, &chat_body("Hi")).await;
    assert_eq!(header(resp.headers(), "x-ratelimit-remaining-requests"), "99");
    let gemini = format!("{}/v1beta/models/gemini-2.0-flash:generateContent", server.url());
    let resp = post(&http, &gemini, &json!({"contents": [{"parts": [{"text": "Hi"}]}]})).await;
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().keys().any(|k| k.as_str().contains("ratelimit")), "{:?}", resp.headers());
    let resp = post(&http, &server.messages_url(), &messages_body("Hi", false)).await;
    assert_eq!(header(resp.headers(), "anthropic-ratelimit-requests-remaining"), "97");

    // The default: successes carry no rate-limit headers, as before.
    let server = ChaosServer::builder().rate_limit(600, 100).rate_limit_tokens(60_000, 60_000).start().await;
    let resp = post(&http, &server.chat_completions_url(), &chat_body("Hi")).await;
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().keys().any(|k| k.as_str().contains("ratelimit")), "{:?}", resp.headers());
}
