//! Scripts, seeded chaos, the rate limiter, the records, bad input and shutdown.

use std::time::Duration;

use crate::common::*;
use llm_retry_testkit::{Chaos, ChaosServer, Fault, Outcome, RefusedPort, RetryAfterHeader, Route, TokenBucket};
use tokio::io::AsyncWriteExt;

fn served(server: &ChaosServer) -> Vec<Fault> {
    server.requests().iter().map(|r| r.fault().expect("served").clone()).collect()
}

#[tokio::test]
async fn script_steps_in_order_then_falls_back_to_200() {
    let server = ChaosServer::start().await;
    let plan = [
        Fault::RateLimited { retry_after: RetryAfterHeader::Seconds(2.0) },
        Fault::Status(500),
        Fault::ResetBeforeResponse,
        Fault::Ok,
    ];
    server.script(plan.clone());
    assert_eq!(server.script_len(), 4);
    let r = chat(server.addr(), false).await;
    assert_eq!((r.response().status, r.response().header("retry-after").map(str::to_owned)), (429, Some("2".into())));
    assert_eq!(chat(server.addr(), false).await.response().status, 500);
    assert_eq!(chat(server.addr(), false).await.end, End::Reset);
    assert_eq!(chat(server.addr(), false).await.response().status, 200);
    assert_eq!(server.script_len(), 0);
    // Ran out: 200 from now on.
    for _ in 0..3 {
        assert_eq!(chat(server.addr(), false).await.response().status, 200);
    }
    assert_eq!(server.request_count(), 7);
    let mut expected = plan.to_vec();
    expected.extend([Fault::Ok, Fault::Ok, Fault::Ok]);
    assert_eq!(served(&server), expected);
}

#[tokio::test]
async fn route_scripts_come_before_the_global_one() {
    let server = ChaosServer::builder().script([Fault::Status(500), Fault::Status(502)]).start().await;
    server.script_route(Route::Messages, [Fault::Status(529)]);
    assert_eq!(messages(server.addr(), false).await.response().status, 529);
    assert_eq!(chat(server.addr(), false).await.response().status, 500);
    // The messages script ran out: the global one is next.
    assert_eq!(messages(server.addr(), false).await.response().status, 502);
    assert_eq!(messages(server.addr(), false).await.response().status, 200);
    assert_eq!(server.script_route_len(Route::Messages), 0);
    let routes: Vec<Route> = server.requests().iter().map(|r| r.route).collect();
    assert_eq!(routes, [Route::Messages, Route::ChatCompletions, Route::Messages, Route::Messages]);
}

#[tokio::test]
async fn concurrent_requests_each_take_one_step() {
    let server = ChaosServer::start().await;
    let plan: Vec<Fault> = (0..20).map(|i| if i % 2 == 0 { Fault::Status(500) } else { Fault::Status(503) }).collect();
    server.script(plan);
    let addr = server.addr();
    let tasks: Vec<_> =
        (0..20).map(|_| tokio::spawn(async move { chat(addr, false).await.response().status })).collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [vec![500; 10], vec![503; 10]].concat());
    assert_eq!(server.request_count(), 20);
    let seqs: Vec<usize> = server.requests().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
}

fn chaos(seed: u64) -> Chaos {
    Chaos::seeded(seed)
        .with(Fault::Status(500), 0.2)
        .with(Fault::rate_limited(1.0), 0.2)
        .with(Fault::ResetBeforeResponse, 0.1)
}

async fn run_chaos(seed: u64, n: usize) -> Vec<Fault> {
    let server = ChaosServer::builder().chaos(chaos(seed)).start().await;
    for _ in 0..n {
        let raw = chat(server.addr(), false).await;
        let expected = server.requests().last().unwrap().fault().unwrap().clone();
        match expected {
            Fault::ResetBeforeResponse => assert_eq!(raw.end, End::Reset),
            other => assert_eq!(Some(raw.response().status), other.status()),
        }
    }
    served(&server)
}

#[tokio::test]
async fn seeded_chaos_is_deterministic() {
    let a = run_chaos(42, 40).await;
    let b = run_chaos(42, 40).await;
    assert_eq!(a, b);
    assert_eq!(a, chaos(42).take(40), "the server serves what Chaos::take predicts");
    for f in [Fault::Ok, Fault::Status(500), Fault::rate_limited(1.0), Fault::ResetBeforeResponse] {
        assert!(a.contains(&f), "40 draws include {f:?}");
    }
    let c = run_chaos(43, 40).await;
    assert_ne!(a, c);
}

#[tokio::test]
async fn chaos_takes_over_when_the_script_runs_out() {
    let server = ChaosServer::builder().chaos(Chaos::seeded(1).with(Fault::Status(503), 1.0)).start().await;
    server.script([Fault::Ok]);
    assert_eq!(chat(server.addr(), false).await.response().status, 200);
    assert_eq!(chat(server.addr(), false).await.response().status, 503);
    server.set_chaos(None);
    assert_eq!(chat(server.addr(), false).await.response().status, 200);
}

#[tokio::test]
async fn rate_limiter_answers_with_accurate_retry_after() {
    // 1200 per minute: one token every 50 ms, two at once.
    let server = ChaosServer::builder().rate_limit(1200, 2).script([Fault::Status(500)]).start().await;
    let first = std::time::Instant::now();
    assert_eq!(chat(server.addr(), false).await.response().status, 500);
    assert_eq!(chat(server.addr(), false).await.response().status, 200);
    let refused = chat(server.addr(), false).await.response();
    let elapsed = first.elapsed();
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("x-ratelimit-limit-requests"), Some("1200"));
    assert_eq!(refused.header("x-ratelimit-remaining-requests"), Some("0"));
    let ms: u64 = refused.header("retry-after-ms").unwrap().parse().unwrap();
    assert!(ms <= 50 && u128::from(ms) + elapsed.as_millis() + 1 >= 50, "{ms} ms after {elapsed:?}");
    assert!(refused.header("x-ratelimit-reset-requests").unwrap().ends_with("ms"));
    let Outcome::RateLimited { retry_after } = server.requests()[2].outcome else { panic!("rate limited") };
    assert_eq!(ms, retry_after.as_nanos().div_ceil(1_000_000) as u64);

    // Waiting exactly as told is enough.
    tokio::time::sleep(Duration::from_millis(ms)).await;
    assert_eq!(chat(server.addr(), false).await.response().status, 200);
    assert_eq!(server.request_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn token_bucket_on_paused_time() {
    let mut bucket = TokenBucket::new(60, 3);
    for _ in 0..3 {
        bucket.try_acquire().unwrap();
    }
    let wait = bucket.try_acquire().unwrap_err();
    assert_eq!(wait, Duration::from_secs(1));
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_eq!(bucket.try_acquire(), Err(Duration::from_millis(1)));
    tokio::time::advance(Duration::from_millis(1)).await;
    bucket.try_acquire().unwrap();
    assert!(bucket.try_acquire().is_err());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(bucket.remaining_at(tokio::time::Instant::now()), 3);
}

#[tokio::test]
async fn records_everything_but_credentials() {
    let server = ChaosServer::start().await;
    let body = chat_body("record me", false);
    let request = post(
        CHAT,
        &body,
        &[
            ("authorization", "Bearer sk-super-secret-1"),
            ("x-api-key", "sk-ant-super-secret-2"),
            ("x-stainless-retry-count", "3"),
            ("x-custom", "kept"),
        ],
    );
    exchange(server.addr(), &request, PATIENCE).await.response();
    let request = post(CHAT, &body, &[("x-llm-retry-attempt", "1"), ("x-stainless-retry-count", "9")]);
    exchange(server.addr(), &request, PATIENCE).await.response();

    let records = server.requests();
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert!(r.had_authorization);
    assert!(r.headers.get("authorization").is_none() && r.headers.get("x-api-key").is_none());
    assert_eq!(r.header("x-custom"), Some("kept"));
    assert_eq!(r.attempt, Some(3));
    assert_eq!(r.route, Route::ChatCompletions);
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.method, http::Method::POST);
    assert_eq!(r.body, body.as_bytes());
    assert_eq!(r.json.as_ref().unwrap()["messages"][0]["content"], "record me");
    assert!(!r.stream);
    assert!(!format!("{records:?}").contains("secret"));
    assert!(!records[1].had_authorization);
    assert_eq!(records[1].attempt, Some(1), "our header wins");
    assert!(records[1].at >= records[0].at);
    server.clear_requests();
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn bad_input_is_answered_never_panics() {
    let server = ChaosServer::builder().max_body_bytes(1024).script([Fault::Status(500)]).start().await;
    let addr = server.addr();

    let resp = exchange(addr, &post(CHAT, "{not json", &[]), PATIENCE).await.response();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"]["type"], "invalid_request_error");
    let resp = exchange(addr, &post(CHAT, "[1, 2]", &[]), PATIENCE).await.response();
    assert_eq!(resp.status, 400);
    let resp = exchange(addr, &post(CHAT, "{\"model\": \"m\"}", &[]), PATIENCE).await.response();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"]["param"], "messages");
    let resp = exchange(addr, &post(MESSAGES, "", &[]), PATIENCE).await.response();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"]["type"], "invalid_request_error");
    assert_eq!(resp.json()["type"], "error");

    let resp = exchange(addr, &post("/v1/embeddings", "{}", &[]), PATIENCE).await.response();
    assert_eq!(resp.status, 404);
    assert!(resp.json()["error"]["message"].is_string());
    let get = b"GET /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    assert_eq!(exchange(addr, get, PATIENCE).await.response().status, 405);

    // Declared too large: refused without reading.
    let big = format!("POST {CHAT} HTTP/1.1\r\nhost: x\r\ncontent-length: 5000000\r\nconnection: close\r\n\r\n");
    let resp = exchange(addr, big.as_bytes(), PATIENCE).await.response();
    assert_eq!(resp.status, 413);
    // Chunked and too large: refused while reading.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("POST {CHAT} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let chunk = format!("800\r\n{}\r\n", "x".repeat(0x800));
    let _ = tcp.write_all(chunk.as_bytes()).await;
    let raw = read_all(&mut tcp, PATIENCE).await;
    assert_eq!(raw.response().status, 413);

    // Not HTTP at all.
    let raw = exchange(addr, b"\x00\x01\x02 garbage\r\n\r\n", PATIENCE).await;
    assert_ne!(raw.end, End::TimedOut);

    let statuses: Vec<Outcome> = server.requests().into_iter().map(|r| r.outcome).collect();
    let expected = [400, 400, 400, 400, 404, 405, 413, 413].map(|status| Outcome::Rejected { status });
    assert_eq!(statuses, expected);
    // Rejections take no script step, and the server still serves.
    assert_eq!(server.script_len(), 1);
    assert_eq!(chat(addr, false).await.response().status, 500);
    assert_eq!(chat(addr, false).await.response().status, 200);
}

#[tokio::test]
async fn keep_alive_connection_serves_several_requests() {
    let server = ChaosServer::start().await;
    server.script([Fault::Status(503)]);
    let body = chat_body("Hi", false);
    let one = format!("POST {CHAT} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    let last = String::from_utf8(post(CHAT, &body, &[])).unwrap();
    let raw = exchange(server.addr(), format!("{one}{one}{last}").as_bytes(), PATIENCE).await;
    assert_eq!(raw.end, End::Eof);
    let text = String::from_utf8(raw.bytes).unwrap();
    assert_eq!(text.matches("HTTP/1.1 503").count(), 1);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2);
    assert_eq!(server.request_count(), 3);
}

async fn wait_until_refused(addr: std::net::SocketAddr) {
    for _ in 0..200 {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    panic!("{addr} still accepts connections");
}

#[tokio::test]
async fn drop_closes_the_port_and_the_connections() {
    let server = ChaosServer::start().await;
    server.script([Fault::Hang]);
    let addr = server.addr();
    let mut hanging = tokio::net::TcpStream::connect(addr).await.unwrap();
    hanging.write_all(&post(CHAT, &chat_body("Hi", false), &[])).await.unwrap();
    for _ in 0..1000 {
        if server.request_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(server);
    wait_until_refused(addr).await;
    let raw = read_all(&mut hanging, PATIENCE).await;
    assert_ne!(raw.end, End::TimedOut, "the hanging connection was closed too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_on_a_multi_thread_runtime() {
    let server = ChaosServer::start().await;
    let addr = server.addr();
    assert_eq!(chat(addr, false).await.response().status, 200);
    drop(server);
    wait_until_refused(addr).await;
}

#[tokio::test]
async fn shutdown_closes_the_port_at_once() {
    let server = ChaosServer::start().await;
    let addr = server.addr();
    assert_eq!(chat(addr, true).await.response().status, 200);
    server.shutdown().await;
    let err = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn refused_port_refuses() {
    let refused = RefusedPort::bind().unwrap();
    for _ in 0..3 {
        let err = tokio::net::TcpStream::connect(refused.addr()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
    assert!(refused.addr().ip().is_loopback());
}

#[tokio::test]
async fn hostile_bytes_never_take_the_server_down() {
    use rand::{RngExt, SeedableRng};
    let server = ChaosServer::start().await;
    let addr = server.addr();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for i in 0..40 {
        let len = rng.random_range(0..2048);
        let mut noise: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 2 == 0 {
            // A valid head with a random body.
            let head = format!("POST {CHAT} HTTP/1.1\r\nhost: x\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n");
            noise.splice(0..0, head.into_bytes());
        }
        let raw = exchange(addr, &noise, PATIENCE).await;
        assert_ne!(raw.end, End::TimedOut, "case {i}");
        if i % 2 == 0 {
            assert_eq!(raw.response().status, 400, "case {i}");
        }
    }
    // Oversized headers.
    let huge = format!("POST {CHAT} HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(1 << 20));
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = tcp.write_all(huge.as_bytes()).await;
    let raw = read_all(&mut tcp, PATIENCE).await;
    assert_ne!(raw.end, End::TimedOut);
    assert_eq!(chat(addr, false).await.response().status, 200);
    assert_eq!(server.request_count(), 21);
}
