//! Chaos soak: 10,000 annotated calls over loopback TCP against the chaos LLM server, 64 at a
//! time, with 30% of requests failing the ways providers fail. Every call must end in a success or
//! its final error, and the books must balance: calls in = results out, the stats' attempts = the
//! server's requests, each call's requests are exactly its attempts, a non-retryable fault is the
//! last request of its call, and no call outlives its deadline.
//!
//! ```sh
//! cargo test --test it soak --all-features -- --nocapture
//! ```
//!
//! One call in five streams its answer (`RetryStream` in Continue mode over real SSE) from a
//! second chaos server whose faults cut the streams: its text must arrive whole, with no chunk
//! duplicated or missing.
//!
//! A second test replays the same fault mix through the same attribute in paused time, without
//! TCP, where timers are exact: there the deadline bound is one timer tick with no scheduling slack.

use futures::StreamExt;
use llm_retry::{
    ApiError, Backoff, ErrorKind, GiveUp, Policy, call::Call, llm_retry, stats::Site, stream::Resume,
    stream::StreamEvent, stream::StreamMode, stream::text_deltas,
};
use llm_retry_testkit::{Chaos, ChaosServer, Fault, RetryAfterHeader};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const CALLS: usize = 10_000;
/// One call in five is a streaming call (`id % 5 == 4`), against its own chaos server.
const STREAM_CALLS: usize = CALLS / 5;
const CONCURRENCY: usize = 64;
const MAX_ATTEMPTS: usize = 4;
const DEADLINE: Duration = Duration::from_millis(200);
/// tokio's timer resolution: sleeps and timeouts are rounded up to the next millisecond.
const TICK: Duration = Duration::from_millis(1);
/// Over real TCP a woken task still has to be scheduled: on 2 cores shared with the server, the
/// client pool and the tests running beside this one, that is the only slack the real-time soak allows.
const SCHEDULING_SLACK: Duration = Duration::from_millis(250);

/// One chat completion, tagged with the call's id in the prompt and its attempt number in
/// `x-llm-retry-attempt`, so that the server's record tells whose attempt each request was.
#[llm_retry(
    name = "soak::chat",
    max = 4,
    backoff = "exponential",
    base = "5ms",
    max_delay = "40ms",
    attempt_timeout = "100ms",
    deadline = "200ms",
    max_retry_after = "1s"
)]
async fn chat(http: &reqwest::Client, url: &str, id: usize) -> Result<String, ApiError> {
    let mut attempt = Attempt::start(id);
    let out = send(http, url, id, attempt.number).await;
    attempt.finished = true;
    out
}

async fn send(http: &reqwest::Client, url: &str, id: usize, attempt: usize) -> Result<String, ApiError> {
    let body = json!({"model": "soak-1", "messages": [{"role": "user", "content": prompt(id)}]});
    let response = http.post(url).header("x-llm-retry-attempt", attempt).json(&body).send().await?;
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    let body: Value = response.json().await?;
    Ok(body.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_owned())
}

/// The client's own record of every attempt: whether its body ran to the end or was cut short
/// (dropped by the attempt timeout or the deadline).
static ATTEMPTS: Mutex<Vec<Vec<bool>>> = Mutex::new(Vec::new());

struct Attempt {
    id: usize,
    number: usize,
    finished: bool,
}

impl Attempt {
    fn start(id: usize) -> Attempt {
        let mut log = ATTEMPTS.lock().unwrap();
        log[id].push(false);
        Attempt { id, number: log[id].len(), finished: false }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        ATTEMPTS.lock().unwrap()[self.id][self.number - 1] = self.finished;
    }
}

fn prompt(id: usize) -> String {
    format!("soak-call-{id}")
}

fn expected_reply(id: usize) -> String {
    format!("This is a deterministic reply from llm-retry-testkit to: {}", prompt(id))
}

/// 30% of requests fail: resets, 5xx and 529, 429s with sub-second hints and without, hangs and
/// slow first bytes past the attempt timeout, and 3% non-retryable (401, 400, quota).
fn fault_mix(seed: u64) -> Chaos {
    let slow = |f: Fault| f.delayed(Duration::from_millis(150));
    Chaos::seeded(seed)
        .with(Fault::ResetBeforeResponse, 0.04)
        .with(Fault::ResetDuringBody, 0.02)
        .with(Fault::Status(500), 0.03)
        .with(Fault::Status(502), 0.02)
        .with(Fault::Status(503), 0.03)
        .with(Fault::Status(529), 0.03)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::Seconds(0.05) }, 0.01)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::Millis(30) }, 0.01)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::ResetRequests(Duration::from_millis(40)) }, 0.01)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::None }, 0.02)
        .with(Fault::Hang, 0.02)
        .with(slow(Fault::Ok), 0.01)
        .with(Fault::Status(500).with_should_retry(false), 0.005)
        .with(Fault::Status(503).delayed(Duration::from_millis(20)), 0.005)
        .with(Fault::InvalidApiKey, 0.01)
        .with(Fault::ContextLengthExceeded, 0.01)
        .with(Fault::InsufficientQuota, 0.01)
}

/// What a fault's response must become: the kind the call reports when it is the last one.
fn kind_of(fault: &Fault) -> Option<ErrorKind> {
    Some(match fault.base() {
        Fault::Ok if matches!(fault, Fault::Delayed { .. }) => ErrorKind::Timeout,
        Fault::Ok => return None,
        Fault::Hang => ErrorKind::Timeout,
        Fault::ResetBeforeResponse | Fault::ResetDuringBody => ErrorKind::Connection,
        // The chaos server's 503 body says "overloaded".
        Fault::Status(503 | 529) => ErrorKind::Overloaded,
        Fault::Status(_) => ErrorKind::Server,
        Fault::RateLimited { .. } => ErrorKind::RateLimited,
        Fault::InvalidApiKey => ErrorKind::Auth,
        Fault::ContextLengthExceeded => ErrorKind::ContextLengthExceeded,
        Fault::InsufficientQuota => ErrorKind::QuotaExhausted,
        other => panic!("not in the mix: {other:?}"),
    })
}

/// A fault the attempt timeout is meant to cut short.
fn meant_to_time_out(fault: &Fault) -> bool {
    kind_of(fault) == Some(ErrorKind::Timeout)
}

/// A fault after which the call must not send another request.
fn final_fault(fault: &Fault) -> bool {
    matches!(fault.base(), Fault::InvalidApiKey | Fault::ContextLengthExceeded | Fault::InsufficientQuota)
        || matches!(fault, Fault::ShouldRetry { should_retry: false, .. })
}

struct Outcome {
    id: usize,
    stream: bool,
    result: Result<String, ApiError>,
    elapsed: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_under_chaos_balance_the_books() {
    *ATTEMPTS.lock().unwrap() = vec![Vec::new(); CALLS];
    let wall = std::time::Instant::now();
    let server = ChaosServer::builder().chaos(fault_mix(2026)).start().await;
    let url = server.chat_completions_url();
    let stream_server = ChaosServer::builder().chunk_chars(8).chaos(stream_fault_mix(2027)).start().await;
    let stream_url = stream_server.chat_completions_url();
    *OPENS.lock().unwrap() = vec![Vec::new(); CALLS];
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, url, stream_url, next) = (http.clone(), url.clone(), stream_url.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    if id >= CALLS {
                        return done;
                    }
                    let started = Instant::now();
                    let stream = id % 5 == 4;
                    let result =
                        if stream { stream_call(&http, &stream_url, id).await } else { chat(&http, &url, id).await };
                    done.push(Outcome { id, stream, result, elapsed: started.elapsed() });
                }
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(CALLS);
    for w in workers {
        outcomes.extend(w.await.expect("a worker panicked"));
    }
    let ran_for = wall.elapsed();

    // Calls in = results out, each id exactly once.
    assert_eq!(outcomes.len(), CALLS);
    outcomes.sort_by_key(|o| o.id);
    assert!(outcomes.iter().enumerate().all(|(i, o)| o.id == i), "an id is missing or repeated");
    let all_elapsed: Vec<Duration> = outcomes.iter().map(|o| o.elapsed).collect();
    let (streams, outcomes): (Vec<Outcome>, Vec<Outcome>) = outcomes.into_iter().partition(|o| o.stream);
    assert_eq!(streams.len(), STREAM_CALLS);
    let stream_summary = check_streams(&streams, &stream_server);

    // The stats balance, and agree with the client's record of attempts.
    let s = llm_retry::stats().get("soak::chat").expect("the site registered");
    let attempts = std::mem::take(&mut *ATTEMPTS.lock().unwrap());
    let requests = server.requests();
    assert_eq!(s.calls, (CALLS - STREAM_CALLS) as u64);
    assert_eq!(s.finished(), (CALLS - STREAM_CALLS) as u64, "{s:?}");
    assert_eq!((s.cancelled, s.panicked), (0, 0));
    assert_eq!(s.successes, outcomes.iter().filter(|o| o.result.is_ok()).count() as u64);
    assert_eq!(s.attempts, s.calls + s.retries);
    assert_eq!(s.attempts, attempts.iter().map(Vec::len).sum::<usize>() as u64, "attempts: stats vs bodies run");

    // Each call's requests by attempt number, as the server saw them.
    let mut by_call: HashMap<usize, HashMap<usize, &Fault>> = HashMap::new();
    for r in &requests {
        let content = r.json.as_ref().and_then(|j| j.pointer("/messages/0/content")).and_then(Value::as_str);
        let id: usize =
            content.and_then(|c| c.strip_prefix("soak-call-")).and_then(|n| n.parse().ok()).expect("tagged");
        let n = r.attempt.expect("numbered") as usize;
        let fault = r.fault().expect("every request is served");
        assert!(by_call.entry(id).or_default().insert(n, fault).is_none(), "call {id} attempt {n} was sent twice");
    }

    let mut final_faults = 0;
    let mut late = 0;
    let mut unseen = 0;
    let mut overshoots = Vec::new();
    for o in &outcomes {
        let log = &attempts[o.id];
        let seen = by_call.remove(&o.id).unwrap_or_default();
        assert!((1..=MAX_ATTEMPTS).contains(&log.len()), "call {} made {} attempts", o.id, log.len());
        // Every request is one of the call's attempts; an attempt the server never saw was cut short
        // by a timeout before its request arrived.
        for n in 1..=log.len() {
            match seen.get(&n) {
                Some(f) if n < log.len() && log[n - 1] => {
                    assert!(!final_fault(f), "call {} sent attempt {} after {f:?}", o.id, n + 1);
                    assert!(kind_of(f).is_some(), "call {} retried a 200", o.id);
                }
                // Cut short by the attempt timeout: whatever the server answered came too late.
                Some(f) if n < log.len() => late += usize::from(!meant_to_time_out(f)),
                Some(_) => {}
                None => {
                    assert!(!log[n - 1], "call {} attempt {n} finished but never reached the server", o.id);
                    unseen += 1;
                }
            }
        }
        assert!(seen.keys().all(|n| *n <= log.len()), "call {}: a request with no attempt", o.id);
        let last = seen.get(&log.len());
        match (&o.result, last) {
            (Ok(text), Some(last)) => {
                assert_eq!(*last, &Fault::Ok, "call {} succeeded on {last:?}", o.id);
                // Nothing duplicated, missing or crossed with another call.
                assert_eq!(text, &expected_reply(o.id));
            }
            (Ok(_), None) => panic!("call {} succeeded without a request", o.id),
            // The attempt timeout can beat any response, a 200 included, when the host is busy.
            (Err(e), last) if e.kind() == ErrorKind::Timeout && !log[log.len() - 1] => {
                late += usize::from(last.is_some_and(|f| !meant_to_time_out(f)));
            }
            (Err(e), None) => panic!("call {} failed ({e}) on an attempt the server never saw", o.id),
            (Err(e), Some(last)) => {
                let want = kind_of(last).unwrap_or_else(|| panic!("call {} failed ({e}) on a 200", o.id));
                assert_eq!(e.kind(), want, "call {}: {e} after {last:?}", o.id);
                let exhausted = log.len() == MAX_ATTEMPTS;
                let out_of_time = o.elapsed + Duration::from_millis(120) >= DEADLINE;
                assert!(final_fault(last) || exhausted || out_of_time, "call {} gave up early on {last:?}", o.id);
            }
        }
        if last.is_some_and(|f| final_fault(f)) && log[log.len() - 1] {
            final_faults += 1;
        }
        overshoots.push(o.elapsed.saturating_sub(DEADLINE));
    }
    assert!(by_call.is_empty(), "requests from calls that were never made");
    assert_eq!(s.attempts, (requests.len() + unseen) as u64, "attempts vs requests the server saw");
    // Late responses and unseen attempts depend on the host's load, not on the library (each one was
    // checked above to be an attempt cut short by a timeout); a loose bound catches a hung client.
    let total = requests.len() + unseen;
    assert!((late + unseen) * 10 <= total, "{late} responses came after the attempt timeout, {unseen} never arrived");
    let gave_up_final = s.gave_up(GiveUp::NonRetryable);
    assert_eq!(gave_up_final, final_faults, "non-retryable give-ups vs final faults served");

    overshoots.sort();
    for e in &all_elapsed {
        overshoots.push(e.saturating_sub(DEADLINE));
    }
    overshoots.sort();
    let mut elapsed = all_elapsed;
    elapsed.sort();
    let worst = *overshoots.last().unwrap();
    let faulty = requests.iter().filter(|r| r.fault() != Some(&Fault::Ok)).count();
    println!(
        "soak: {CALLS} calls ({STREAM_CALLS} streaming: {stream_summary}), {} requests ({faulty} faulted, {:.1}%) in {ran_for:.2?}; {} ok, {} failed \
         (non-retryable {}, exhausted {}, deadline {}); retries {}; call time p50 {:?} p99 {:?} max {:?}; \
         deadline overshoot max {worst:?}; late responses {late}, attempts cut before reaching the server {unseen}",
        requests.len(),
        100.0 * faulty as f64 / requests.len() as f64,
        s.successes,
        s.failures(),
        gave_up_final,
        s.gave_up(GiveUp::Exhausted),
        s.gave_up(GiveUp::Deadline),
        s.retries,
        percentile(&elapsed, 0.5),
        percentile(&elapsed, 0.99),
        elapsed.last().unwrap(),
    );
    assert!(worst <= TICK + SCHEDULING_SLACK, "a call outlived its deadline by {worst:?}");
    server.shutdown().await;
    stream_server.shutdown().await;
}

const STREAM_POLICY: Policy = match Policy::builder()
    .max_attempts(4)
    .backoff(Backoff::Exponential {
        base: Duration::from_millis(5),
        multiplier: 2.0,
        min_delay: Duration::ZERO,
        max_delay: Duration::from_millis(40),
    })
    .max_retry_after(Duration::from_secs(1))
    .build()
{
    Ok(p) => p,
    Err(_) => panic!(),
};
static STREAM_SITE: Site = Site::new("soak::stream", STREAM_POLICY);

/// The streaming calls' opens, per call: the status each open was answered with, or `None` while
/// (or if) it was not answered.
static OPENS: Mutex<Vec<Vec<Option<u16>>>> = Mutex::new(Vec::new());

/// 30% of stream requests fail: cut after 1 or 3 chunks, `event: error` after 2, reset halfway,
/// reset before the response, 503, 429 with a hint, a hang, and a non-retryable 401.
fn stream_fault_mix(seed: u64) -> Chaos {
    Chaos::seeded(seed)
        .with(Fault::StreamCut { after_chunks: 1 }, 0.06)
        .with(Fault::StreamCut { after_chunks: 3 }, 0.04)
        .with(Fault::StreamError { after_chunks: 2 }, 0.04)
        .with(Fault::ResetDuringBody, 0.03)
        .with(Fault::ResetBeforeResponse, 0.03)
        .with(Fault::Status(503), 0.03)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::Millis(30) }, 0.03)
        .with(Fault::Hang, 0.02)
        .with(Fault::InvalidApiKey, 0.02)
}

/// One streaming call in Continue mode: each reopen sends the text so far as an assistant prefill,
/// and the server streams only the rest.
async fn stream_call(http: &reqwest::Client, url: &str, id: usize) -> Result<String, ApiError> {
    let (http, url) = (http.clone(), url.to_owned());
    let stream = Call::new(&STREAM_SITE)
        .deadline(DEADLINE)
        .stream(move |resume| open(http.clone(), url.clone(), id, resume))
        .mode(StreamMode::Continue)
        .first_chunk_timeout(Duration::from_millis(100))
        .idle_timeout(Duration::from_millis(100));
    let mut stream = std::pin::pin!(stream);
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::Chunk(chunk) => text.push_str(&chunk),
            StreamEvent::Retrying { received, .. } => {
                assert_eq!(received.chars, text.chars().count() as u64, "call {id}: the stream lost count");
            }
            StreamEvent::Reset => panic!("call {id}: Continue mode never resets"),
        }
    }
    Ok(text)
}

async fn open(
    http: reqwest::Client,
    url: String,
    id: usize,
    resume: Resume,
) -> Result<impl futures::Stream<Item = Result<String, ApiError>>, ApiError> {
    let n = {
        let mut opens = OPENS.lock().unwrap();
        opens[id].push(None);
        opens[id].len()
    };
    let mut messages = vec![json!({"role": "user", "content": prompt(id)})];
    if !resume.text().is_empty() {
        messages.push(json!({"role": "assistant", "content": resume.text()}));
    }
    let body = json!({"model": "soak-1", "stream": true, "messages": messages});
    let response = http.post(url).header("x-llm-retry-attempt", n).json(&body).send().await?;
    OPENS.lock().unwrap()[id][n - 1] = Some(response.status().as_u16());
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    Ok(text_deltas(response.bytes_stream()))
}

/// The streaming share: every success carries its whole reply, once; stats agree with the opens;
/// no attempt reaches the server twice; a 401 the client received ends its call.
fn check_streams(streams: &[Outcome], server: &ChaosServer) -> String {
    let s = STREAM_SITE.stats();
    let opens = std::mem::take(&mut *OPENS.lock().unwrap());
    assert_eq!((s.calls, s.finished(), s.cancelled, s.panicked), (STREAM_CALLS as u64, STREAM_CALLS as u64, 0, 0));
    assert_eq!(s.attempts, opens.iter().map(Vec::len).sum::<usize>() as u64, "stream attempts: stats vs opens");
    let requests = server.requests();
    let mut seen: HashMap<(usize, u32), &Fault> = HashMap::new();
    for r in &requests {
        let content = r.json.as_ref().and_then(|j| j.pointer("/messages/0/content")).and_then(Value::as_str);
        let id: usize =
            content.and_then(|c| c.strip_prefix("soak-call-")).and_then(|n| n.parse().ok()).expect("tagged");
        assert!(r.stream, "call {id} did not ask to stream");
        let n = r.attempt.expect("numbered");
        assert!(seen.insert((id, n), r.fault().unwrap()).is_none(), "stream call {id} attempt {n} was sent twice");
        assert!(n as usize <= opens[id].len(), "stream call {id}: a request with no open");
    }
    let (mut ok, mut refused) = (0, 0);
    for o in streams {
        let log = &opens[o.id];
        assert!((1..=MAX_ATTEMPTS).contains(&log.len()), "stream call {} opened {} times", o.id, log.len());
        for (i, status) in log.iter().enumerate() {
            if *status == Some(401) {
                assert_eq!(i + 1, log.len(), "stream call {} reopened after a 401", o.id);
            }
        }
        match &o.result {
            Ok(text) => {
                ok += 1;
                assert_eq!(text, &expected_reply(o.id), "stream call {}: text duplicated or missing", o.id);
            }
            Err(e) if e.kind() == ErrorKind::Auth => {
                refused += 1;
                assert_eq!(log.last(), Some(&Some(401)));
            }
            Err(_) => {}
        }
    }
    assert_eq!(s.successes, ok);
    assert_eq!(s.gave_up(GiveUp::NonRetryable), refused);
    format!("{} requests, {ok} whole texts, {refused} refused, {} retries", requests.len(), s.retries)
}

/// The same fault mix and the same attribute in paused time, with an in-process transport: timers
/// are exact there, so no call may end later than its deadline plus one tick.
mod paused {
    use super::*;
    use std::sync::Mutex;

    /// The faults drawn so far, per call: the transport's record.
    static SEEN: Mutex<Vec<Vec<Fault>>> = Mutex::new(Vec::new());
    static CHAOS: Mutex<Option<Chaos>> = Mutex::new(None);

    /// What the chaos server would have answered, as the error a client would build.
    async fn transport(id: usize) -> Result<String, ApiError> {
        let fault = CHAOS.lock().unwrap().as_mut().unwrap().next_fault();
        SEEN.lock().unwrap()[id].push(fault.clone());
        let mut f = &fault;
        loop {
            match f {
                Fault::Delayed { delay, fault } => {
                    tokio::time::sleep(*delay).await;
                    f = fault;
                }
                Fault::ShouldRetry { fault, .. } => f = fault,
                _ => break,
            }
        }
        let status = |code| {
            let mut h = reqwest::header::HeaderMap::new();
            if let Fault::ShouldRetry { should_retry, .. } = &fault {
                h.insert("x-should-retry", should_retry.to_string().parse().unwrap());
            }
            // The chaos server's 503 body says "overloaded".
            ApiError::from_response(code, &h, b"The server is overloaded or not ready yet.")
        };
        match f {
            Fault::Ok => Ok(expected_reply(id)),
            Fault::Hang => std::future::pending().await,
            Fault::ResetBeforeResponse | Fault::ResetDuringBody => Err(ApiError::connection("connection reset")),
            Fault::Status(code) => Err(status(*code)),
            Fault::RateLimited { retry_after } => {
                let mut h = reqwest::header::HeaderMap::new();
                for (name, value) in retry_after.header_pairs() {
                    h.insert(name, value.parse().unwrap());
                }
                Err(ApiError::from_response(429, &h, br#"{"error":{"code":"rate_limit_exceeded"}}"#))
            }
            Fault::InvalidApiKey => Err(ApiError::from_response(401, &reqwest::header::HeaderMap::new(), b"")),
            Fault::ContextLengthExceeded => Err(ApiError::from_response(
                400,
                &reqwest::header::HeaderMap::new(),
                br#"{"error":{"code":"context_length_exceeded"}}"#,
            )),
            Fault::InsufficientQuota => Err(ApiError::from_response(
                429,
                &reqwest::header::HeaderMap::new(),
                br#"{"error":{"code":"insufficient_quota"}}"#,
            )),
            other => panic!("not in the mix: {other:?}"),
        }
    }

    #[llm_retry(
        name = "soak::paused",
        max = 4,
        backoff = "exponential",
        base = "5ms",
        max_delay = "40ms",
        attempt_timeout = "100ms",
        deadline = "200ms",
        max_retry_after = "1s"
    )]
    async fn chat(id: usize) -> Result<String, ApiError> {
        transport(id).await
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_mix_in_paused_time_never_outlives_the_deadline_by_more_than_a_tick() {
        *CHAOS.lock().unwrap() = Some(fault_mix(7));
        *SEEN.lock().unwrap() = vec![Vec::new(); CALLS];
        let calls = (0..CALLS).map(|id| async move {
            let started = Instant::now();
            let result = chat(id).await;
            (id, result, started.elapsed())
        });
        let mut outcomes = Vec::with_capacity(CALLS);
        let mut stream = futures::stream::iter(calls).buffer_unordered(CONCURRENCY);
        while let Some(o) = futures::StreamExt::next(&mut stream).await {
            outcomes.push(o);
        }
        assert_eq!(outcomes.len(), CALLS);
        let seen = SEEN.lock().unwrap().clone();
        let s = llm_retry::stats().get("soak::paused").unwrap();
        assert_eq!(s.finished(), CALLS as u64);
        assert_eq!(s.attempts, seen.iter().map(Vec::len).sum::<usize>() as u64);
        let mut worst = Duration::ZERO;
        let mut deadline_hits = 0;
        for (id, result, elapsed) in &outcomes {
            let faults = &seen[*id];
            let last = faults.last().unwrap();
            for f in &faults[..faults.len() - 1] {
                assert!(!final_fault(f), "call {id} went on after {f:?}");
            }
            match result {
                Ok(text) => assert_eq!(text, &expected_reply(*id)),
                Err(e) => assert_eq!(Some(e.kind()), kind_of(last), "call {id}: {e}"),
            }
            if elapsed >= &DEADLINE {
                deadline_hits += 1;
            }
            worst = worst.max(elapsed.saturating_sub(DEADLINE));
        }
        println!(
            "paused soak: {CALLS} calls, {} attempts, deadline give-ups {}, calls reaching the deadline {deadline_hits}, \
             worst overshoot {worst:?}",
            s.attempts,
            s.gave_up(GiveUp::Deadline)
        );
        assert!(s.gave_up(GiveUp::Deadline) > 0, "the mix should drive some calls into the deadline");
        assert!(worst <= TICK, "a call outlived its deadline by {worst:?}");
    }
}
