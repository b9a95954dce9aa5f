//! Streaming retry over real SSE from the chaos server (loopback TCP, reqwest): 1,000 runs per
//! recovery mode, each with its own seeded plan of cuts (`StreamCut` after k chunks, `event:
//! error` after k chunks, the odd 503 or reset before the response), on both the OpenAI and the
//! Anthropic route.
//!
//! - Continue and Skip: the final text equals the expected text exactly (no duplicate, no gap),
//!   with no `Reset`.
//! - Restart: every run that lost delivered text emits a `Reset`, and the text after the last
//!   `Reset` equals the expected text.
//! - Skip against a replay that is not deterministic falls back to `Reset`.
//!
//! Continue uses the testkit's assistant-prefill behaviour: the opener sends the text received
//! so far as a final assistant message, and the server streams only the rest of its reply.
//!
//! Each test prints its tally (`cargo test --test it stream_e2e -- --nocapture`).

use crate::support;

use futures::StreamExt;
use llm_retry::{ApiError, Backoff, Jitter, Policy, RetryExt, stream::Resume, stream::StreamEvent, stream::StreamMode};
use llm_retry_testkit::{ChaosServer, Fault};
use std::time::{Duration, Instant};

const TEXT: &str = "Streams break; retries mend them: ünïcödé ✓, and not one token lost.";
const CHUNKS: usize = 8;
const RUNS: u64 = 1_000;

/// Retry at once: the faults are scripted, so waiting would only slow the test.
const POLICY: Policy = match Policy::builder().max_attempts(5).backoff(Backoff::None).jitter(Jitter::None).build() {
    Ok(p) => p,
    Err(_) => panic!("invalid policy"),
};

/// splitmix64: a tiny seeded generator for the per-run plans.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 1 to 3 faults at seeded positions; the script then runs out and the server answers 200.
fn plan(seed: u64) -> Vec<Fault> {
    let mut rng = Rng(seed);
    (0..=rng.below(3))
        .map(|_| {
            let k = rng.below(CHUNKS as u64 + 1) as usize; // 0..=CHUNKS: before the first chunk to before [DONE]
            match rng.below(10) {
                0..=6 => Fault::StreamCut { after_chunks: k },
                7 | 8 => Fault::StreamError { after_chunks: k },
                _ if rng.below(2) == 0 => Fault::Status(503),
                _ => Fault::ResetBeforeResponse,
            }
        })
        .collect()
}

/// Opens one attempt: a streaming chat request, with the text so far as an assistant prefill
/// when continuing. Non-2xx answers become classified errors; the body becomes text deltas.
async fn open(
    client: reqwest::Client,
    url: String,
    prompt: String,
    resume: Resume,
) -> Result<impl futures::Stream<Item = Result<String, ApiError>>, ApiError> {
    support::open_sse(&client, &url, &prompt, resume.text()).await
}

#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    exact: u64,
    retries: u64,
    /// Retries after at least one chunk had been delivered in that attempt's stream.
    mid_stream: u64,
    resets: u64,
    requests: usize,
}

async fn thousand_runs(mode: StreamMode) -> Tally {
    let server = ChaosServer::builder().reply(TEXT).chunks(CHUNKS).start().await;
    let client = reqwest::Client::new();
    let mut tally = Tally::default();
    let started = Instant::now();
    for run in 0..RUNS {
        let faults = plan(run ^ (mode as u64) << 32);
        server.script(faults.clone());
        // Even runs speak OpenAI, odd runs Anthropic.
        let url = if run % 2 == 0 { server.chat_completions_url() } else { server.messages_url() };
        let (c, u) = (client.clone(), url.clone());
        let stream = POLICY.stream(move |resume| open(c.clone(), u.clone(), "Say the line.".into(), resume)).mode(mode);
        let mut stream = std::pin::pin!(stream);

        let mut text = String::new();
        let (mut resets, mut delivered_since_reset) = (0, false);
        let mut lost_delivered_text = false;
        while let Some(event) = stream.next().await {
            match event.unwrap_or_else(|e| panic!("{mode:?} run {run} {faults:?}: gave up: {e}")) {
                StreamEvent::Chunk(c) => {
                    text.push_str(&c);
                    delivered_since_reset = true;
                }
                StreamEvent::Retrying { received, .. } => {
                    tally.retries += 1;
                    if received.chunks > 0 {
                        tally.mid_stream += 1;
                    }
                    lost_delivered_text |= delivered_since_reset;
                }
                StreamEvent::Reset => {
                    resets += 1;
                    text.clear();
                    delivered_since_reset = false;
                }
            }
        }
        assert_eq!(text, TEXT, "{mode:?} run {run} {faults:?}: the final text");
        match mode {
            StreamMode::Restart => {
                assert_eq!(resets > 0, lost_delivered_text, "{mode:?} run {run} {faults:?}: a Reset iff text was lost")
            }
            _ => assert_eq!(resets, 0, "{mode:?} run {run} {faults:?}: a deterministic replay needs no Reset"),
        }
        tally.runs += 1;
        tally.exact += 1;
        tally.resets += resets;
    }
    tally.requests = server.request_count();
    eprintln!(
        "{:<8} {} runs in {:.2?}: final text exact in {}/{}; {} retries ({} mid-stream), {} resets, {} requests",
        mode.name(),
        tally.runs,
        started.elapsed(),
        tally.exact,
        tally.runs,
        tally.retries,
        tally.mid_stream,
        tally.resets,
        tally.requests,
    );
    tally
}

#[tokio::test]
async fn continue_mode_1000_seeded_cuts_final_text_exact() {
    let t = thousand_runs(StreamMode::Continue).await;
    assert_eq!(t.exact, RUNS);
    assert!(t.mid_stream > RUNS / 2, "the plans must cut streams midway often: {t:?}");
}

#[tokio::test]
async fn skip_mode_1000_seeded_cuts_final_text_exact() {
    let t = thousand_runs(StreamMode::Skip).await;
    assert_eq!(t.exact, RUNS);
    assert!(t.mid_stream > RUNS / 2, "{t:?}");
}

#[tokio::test]
async fn restart_mode_1000_seeded_cuts_reset_then_exact_text() {
    let t = thousand_runs(StreamMode::Restart).await;
    assert_eq!(t.exact, RUNS);
    assert!(t.resets > RUNS / 2, "{t:?}");
}

#[tokio::test]
async fn skip_falls_back_to_reset_when_the_replay_is_not_deterministic() {
    // No fixed reply: the server quotes the prompt, and the retry asks something else. Cut after
    // 7 of 8 chunks, the delivered text ("This is a deterministic reply from llm-retry-testkit to:
    // fir") already differs from the replay's.
    let server = ChaosServer::builder().chunks(CHUNKS).start().await;
    server.script([Fault::StreamCut { after_chunks: 7 }]);
    let client = reqwest::Client::new();
    let url = server.chat_completions_url();
    let stream = POLICY
        .stream(move |resume| {
            let prompt = if resume.attempt() == 1 { "first prompt" } else { "another prompt" };
            open(client.clone(), url.clone(), prompt.into(), resume)
        })
        .mode(StreamMode::Skip);
    let mut stream = std::pin::pin!(stream);
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap());
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            StreamEvent::Chunk(_) => "chunk",
            StreamEvent::Retrying { .. } => "retrying",
            StreamEvent::Reset => "reset",
        })
        .collect();
    let reset_at = kinds.iter().position(|k| *k == "reset").expect("a Reset");
    assert_eq!(&kinds[..reset_at], ["chunk"; 7].into_iter().chain(["retrying"]).collect::<Vec<_>>());
    let after: String = events[reset_at..].iter().filter_map(|e| e.text()).collect();
    assert_eq!(after, "This is a deterministic reply from llm-retry-testkit to: another prompt");
}

#[tokio::test]
async fn an_event_error_after_200_is_classified_and_retried() {
    let server = ChaosServer::builder().reply(TEXT).chunks(CHUNKS).start().await;
    server.script([Fault::StreamError { after_chunks: 2 }]);
    let client = reqwest::Client::new();
    let url = server.messages_url(); // Anthropic: `overloaded_error`
    let stream = POLICY
        .stream(move |resume| open(client.clone(), url.clone(), "Say the line.".into(), resume))
        .mode(StreamMode::Continue);
    let mut stream = std::pin::pin!(stream);
    let mut text = String::new();
    let mut kinds = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::Chunk(c) => text.push_str(&c),
            StreamEvent::Retrying { kind, status, .. } => kinds.push((kind, status)),
            _ => {}
        }
    }
    assert_eq!(kinds, [(llm_retry::ErrorKind::Overloaded, Some(200))]);
    assert_eq!(text, TEXT);
}

#[tokio::test]
async fn a_first_chunk_timeout_over_real_tcp() {
    let server = ChaosServer::builder().reply(TEXT).start().await;
    server.script([Fault::Hang, Fault::slow_first_byte(Duration::from_secs(5))]);
    let client = reqwest::Client::new();
    let url = server.chat_completions_url();
    let started = Instant::now();
    let text = POLICY
        .stream(move |resume| open(client.clone(), url.clone(), "Say the line.".into(), resume))
        .first_chunk_timeout(Duration::from_millis(50))
        .collect_text()
        .await
        .unwrap();
    assert_eq!(text, TEXT);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(server.request_count(), 3);
}
