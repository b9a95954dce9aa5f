//! `#[llm_retry(stream = "...")]`: the attribute form of streaming retry.
//!
//! In paused time with in-memory streams, each mode through the attribute yields exactly the
//! events (and takes exactly the time) of the runtime API under the same policy; owned arguments
//! are cloned per attempt, `&self` methods work, the stream timeouts apply. One test streams
//! real SSE over loopback TCP from the chaos server, cut twice, in Continue mode.

use crate::support;

use futures::{Stream, StreamExt, stream};
use llm_retry::{
    ApiError, Backoff, Jitter, Policy, RetryExt, llm_retry, stream::Resume, stream::StreamEvent, stream::StreamMode,
};
use llm_retry_testkit::{ChaosServer, Fault};
use std::cell::{Cell, RefCell};
use std::time::Duration;
use tokio::time::Instant;

const FULL: &str = "Streams break; retries mend them.";

/// An in-memory provider: each open streams the rest of `FULL` after the prefix it is given, in
/// 4-character chunks, cut after the next number of chunks in `cuts` (then whole).
struct Provider {
    cuts: RefCell<Vec<usize>>,
    opened: RefCell<Vec<String>>,
}

impl Provider {
    fn new(cuts: &[usize]) -> Provider {
        Provider { cuts: RefCell::new(cuts.iter().rev().copied().collect()), opened: RefCell::default() }
    }

    fn open(&self, prefix: &str) -> impl Stream<Item = Result<String, ApiError>> + use<> {
        self.opened.borrow_mut().push(prefix.to_owned());
        let rest = FULL.strip_prefix(prefix).unwrap_or(FULL);
        let chunks: Vec<String> =
            rest.as_bytes().chunks(4).map(|c| String::from_utf8(c.to_vec()).expect("ASCII")).collect();
        let mut items: Vec<Result<String, ApiError>> = chunks.into_iter().map(Ok).collect();
        if let Some(cut) = self.cuts.borrow_mut().pop() {
            items.truncate(cut);
            items.push(Err(ApiError::connection("connection reset mid-stream")));
        }
        stream::iter(items)
    }
}

const POLICY: Policy = match Policy::builder()
    .max_attempts(5)
    .backoff(Backoff::Fixed { delay: Duration::from_secs(1) })
    .jitter(Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!("invalid policy"),
};

#[llm_retry(stream = "continue", max = 5, backoff = "fixed", delay = "1s", jitter = "none")]
async fn continued(
    provider: &Provider,
    resume: Resume,
) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    Ok(provider.open(resume.text()))
}

#[llm_retry(stream = "skip", max = 5, backoff = "fixed", delay = "1s", jitter = "none")]
async fn skipped(provider: &Provider) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    Ok(provider.open(""))
}

#[llm_retry(stream = "restart", max = 5, backoff = "fixed", delay = "1s", jitter = "none")]
async fn restarted(
    provider: &Provider,
    _resume: Resume,
) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    Ok(provider.open(""))
}

/// Every event, and the paused-clock time the stream took.
async fn run<S: Stream<Item = Result<StreamEvent<String>, ApiError>>>(s: S) -> (Vec<StreamEvent<String>>, Duration) {
    let start = Instant::now();
    let events = std::pin::pin!(s).map(|e| e.expect("the stream recovers")).collect().await;
    (events, start.elapsed())
}

fn final_text(events: &[StreamEvent<String>]) -> String {
    let mut text = String::new();
    for e in events {
        match e {
            StreamEvent::Chunk(c) => text.push_str(c),
            StreamEvent::Reset => text.clear(),
            StreamEvent::Retrying { .. } => {}
        }
    }
    text
}

const CUTS: &[usize] = &[2, 3];

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn continue_through_the_attribute_equals_the_runtime_api() {
    let p = Provider::new(CUTS);
    let (attr, took) = run(continued(&p)).await;
    let q = Provider::new(CUTS);
    let (api, api_took) =
        run(POLICY.stream(|resume: Resume| std::future::ready(Ok(q.open(resume.text())))).mode(StreamMode::Continue))
            .await;
    assert_eq!(attr, api);
    assert_eq!((took, api_took), (Duration::from_secs(2), Duration::from_secs(2)));
    assert_eq!(final_text(&attr), FULL);
    assert!(!attr.contains(&StreamEvent::Reset));
    assert_eq!(*p.opened.borrow(), ["", "Streams ", "Streams break; retri"], "each reopen continues the text so far");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn skip_through_the_attribute_equals_the_runtime_api() {
    let p = Provider::new(CUTS);
    let (attr, took) = run(skipped(&p)).await;
    let q = Provider::new(CUTS);
    let (api, _) = run(POLICY.stream(|_| std::future::ready(Ok(q.open("")))).mode(StreamMode::Skip)).await;
    assert_eq!(attr, api);
    assert_eq!(took, Duration::from_secs(2));
    assert_eq!(final_text(&attr), FULL);
    assert!(!attr.contains(&StreamEvent::Reset), "a deterministic replay needs no Reset");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn restart_through_the_attribute_equals_the_runtime_api() {
    let p = Provider::new(CUTS);
    let (attr, _) = run(restarted(&p)).await;
    let q = Provider::new(CUTS);
    let (api, _) = run(POLICY.stream(|_| std::future::ready(Ok(q.open("")))).mode(StreamMode::Restart)).await;
    assert_eq!(attr, api);
    assert_eq!(attr.iter().filter(|e| **e == StreamEvent::Reset).count(), 2);
    assert_eq!(final_text(&attr), FULL);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_call_returns_at_once_and_nothing_runs_until_polled() {
    let p = Provider::new(&[]);
    let s = continued(&p);
    assert!(p.opened.borrow().is_empty());
    let (events, _) = run(s).await;
    assert_eq!(final_text(&events), FULL);
}

struct Client {
    opens: Cell<u32>,
}

impl Client {
    /// A method with `&self`, an owned argument (cloned for each attempt, moved by the body) and
    /// a stall before the first chunk on the first attempt.
    #[llm_retry(stream = "restart", max = 3, backoff = "none", first_chunk_timeout = "5s", idle_timeout = "1s")]
    async fn chat(&self, prompt: String) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
        self.opens.set(self.opens.get() + 1);
        let stall = self.opens.get() == 1;
        let owned: String = prompt; // moves the attempt's own copy
        Ok(stream::once(async move {
            if stall {
                std::future::pending::<()>().await;
            }
            Ok(owned)
        }))
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_method_clones_owned_arguments_per_attempt_and_applies_the_stream_timeouts() {
    let client = Client { opens: Cell::new(0) };
    let (events, took) = run(client.chat("hello".to_owned())).await;
    assert_eq!(client.opens.get(), 2);
    assert_eq!(took, Duration::from_secs(5), "the first attempt waited for its first chunk for 5 s");
    assert!(
        matches!(&events[0], StreamEvent::Retrying { attempt: 1, kind: llm_retry::ErrorKind::Timeout, .. }),
        "{events:?}"
    );
    assert_eq!(final_text(&events), "hello");
}

/// One attempt of a streaming chat: the text so far goes back as an assistant prefill.
#[llm_retry(stream = "continue", max = 4, backoff = "none", first_chunk_timeout = "10s", idle_timeout = "10s")]
async fn chat_sse(
    client: &reqwest::Client,
    url: &str,
    prompt: &str,
    resume: Resume,
) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    support::open_sse(client, url, prompt, resume.text()).await
}

#[tokio::test]
async fn continue_over_real_tcp_against_the_chaos_server() {
    const TEXT: &str = "Streams break; retries mend them: ünïcödé ✓, and not one token lost.";
    let server = ChaosServer::builder().reply(TEXT).chunks(8).start().await;
    server.script([Fault::StreamCut { after_chunks: 3 }, Fault::StreamError { after_chunks: 5 }]);
    let client = reqwest::Client::new();
    let url = server.chat_completions_url();
    let events: Vec<_> = std::pin::pin!(chat_sse(&client, &url, "Say the line.")).collect().await;
    let events: Vec<StreamEvent<String>> = events.into_iter().map(|e| e.expect("recovers")).collect();
    assert_eq!(final_text(&events), TEXT);
    assert!(!events.contains(&StreamEvent::Reset));
    assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::Retrying { .. })).count(), 2);
    assert_eq!(server.request_count(), 3);
}
