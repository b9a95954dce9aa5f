//! A fleet run: one chaos server in rate-limit mode, one redis-server, and P worker processes
//! that share the prompts and, when told to, the endpoint's pacer through Redis. Used by
//! `cargo run --example fleet` (which prints the table) and by the fleet tests in
//! tests/fleet.rs (which assert on it); both spawn themselves as the workers.
//!
//! The coordinator ([`run`]) starts the chaos server, writes each worker its [`Spec`] (as JSON
//! in an environment variable), waits until every worker says it is [`READY`] (connected), then
//! writes each one the instant they all begin at, on its standard input. It optionally hurts
//! Redis during the run ([`Fault`]), and reads each worker's [`WorkerReport`] from the line of
//! its standard output that starts with [`MARK`]. Calls and 429s are the server's own count.

use llm_retry::{ApiError, Limiter, Policy, RetryExt, limits::SendObserved};
use llm_retry_redis::RedisStore;
use llm_retry_testkit::redis_server::RedisServer;
use llm_retry_testkit::{ChaosServer, Outcome, RateHeaders};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable a worker finds its [`Spec`] in.
pub const SPEC: &str = "LLM_RETRY_FLEET_SPEC";
/// The start of the line a worker reports on.
pub const MARK: &str = "FLEET-REPORT ";
/// The line a worker prints once it has connected, before it reads its start instant.
pub const READY: &str = "FLEET-READY";
/// The longest the coordinator waits for every worker to be ready.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// The longest a worker may run before the coordinator kills it.
const WORKER_LIMIT: Duration = Duration::from_secs(90);
/// Each call's deadline: a worker never waits past it, whatever Redis does.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One fleet run.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Worker processes.
    pub workers: usize,
    /// Prompts, shared among the workers.
    pub prompts: u32,
    /// Requests in flight across the fleet (each worker gets its share).
    pub concurrency: usize,
    /// The server's limit, requests per minute, and its burst.
    pub rpm: u32,
    /// See `rpm`.
    pub burst: u32,
    /// Whether the server sends OpenAI's rate-limit headers (and the workers read them).
    pub headers: bool,
    /// Whether the workers share their pacer through Redis.
    pub shared: bool,
    /// What to do to Redis one second into the run.
    pub fault: Option<Fault>,
}

impl Setup {
    /// The fleet: 1,000 prompts, 32 in flight, 6,000 requests a minute, burst 8.
    pub const fn fleet(workers: usize, shared: bool) -> Setup {
        Setup { workers, prompts: 1_000, concurrency: 32, rpm: 6_000, burst: 8, headers: false, shared, fault: None }
    }

    /// The least time the server's limit allows: N / C.
    pub fn floor(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.prompts) * 60.0 / f64::from(self.rpm))
    }
}

/// A fault done to the private redis-server one second into a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, then a restart one second later (empty: its state is gone).
    Kill,
    /// SIGSTOP for 2 s, then SIGCONT.
    Stop,
    /// `SCRIPT FLUSH`: every worker's next script call meets NOSCRIPT.
    Flush,
    /// `CLIENT PAUSE 2000`: every command waits 2 s.
    Pause,
}

/// What one worker does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub server: String,
    pub redis: Option<String>,
    pub prompts: Vec<u32>,
    pub concurrency: usize,
    pub headers: bool,
}

/// What one worker did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerReport {
    pub ok: usize,
    pub failed: usize,
    pub finished_unix_ms: u64,
    /// The longest a call took, in ms (against [`DEADLINE`]).
    pub longest_ms: u64,
    /// Times the pacer fell back to local pacing, and its mode at the end.
    pub fallbacks: u64,
    pub mode: String,
    /// When it last went back to sharing after a fallback, if it fell back.
    pub rejoined_unix_ms: Option<u64>,
}

/// What a fleet run did, counted by the server.
#[derive(Debug, Clone)]
pub struct FleetResult {
    pub calls: usize,
    pub throttled: usize,
    pub ok: usize,
    pub failed: usize,
    pub makespan: Duration,
    pub floor: Duration,
    pub longest: Duration,
    pub fallbacks: u64,
    pub modes: Vec<String>,
    /// With a fault that stops Redis answering: how long after it answered again the last
    /// worker that had fallen back shared again (within 50 ms, the workers' watch interval).
    pub rejoined_after: Option<Duration>,
}

impl FleetResult {
    /// Calls per prompt.
    pub fn calls_per_prompt(&self) -> f64 {
        self.calls as f64 / (self.ok + self.failed).max(1) as f64
    }

    /// Makespan ÷ floor.
    pub fn over_floor(&self) -> f64 {
        self.makespan.as_secs_f64() / self.floor.as_secs_f64()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Runs one fleet: `spawn` makes the command that starts one worker (this program again, in
/// its worker mode); `redis` is the private server (needed for faults) or an address.
pub async fn run(
    setup: Setup,
    redis: Option<&mut RedisServer>,
    redis_url: Option<&str>,
    spawn: &dyn Fn() -> Command,
) -> Result<FleetResult, String> {
    let style = if setup.headers { RateHeaders::OpenAi } else { RateHeaders::None };
    let server =
        ChaosServer::builder().reply("ok").rate_limit(setup.rpm, setup.burst).rate_headers(style).start().await;
    let url = redis.as_ref().map(|r| r.url()).or(redis_url.map(str::to_string));
    let per = setup.concurrency / setup.workers;
    let (lines, mut heard) = tokio::sync::mpsc::unbounded_channel::<Heard>();
    let mut inputs = Vec::new();
    let mut readers = Vec::new();
    let mut workers = Workers(Vec::new());
    for w in 0..setup.workers {
        let spec = Spec {
            server: server.chat_completions_url(),
            redis: if setup.shared { url.clone() } else { None },
            prompts: (0..setup.prompts).filter(|p| *p as usize % setup.workers == w).collect(),
            concurrency: per.max(1),
            headers: setup.headers,
        };
        let json = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
        let mut child = spawn()
            .env(SPEC, json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        inputs.push(child.stdin.take().expect("piped above"));
        let out = child.stdout.take().expect("piped above");
        workers.0.push(child);
        let lines = lines.clone();
        // Each worker's standard output: its ready line, then its report.
        readers.push(tokio::task::spawn_blocking(move || {
            let mut report = None;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line == READY {
                    let _ = lines.send(Heard::Ready);
                } else if let Some(json) = line.strip_prefix(MARK) {
                    report = serde_json::from_str::<WorkerReport>(json).ok();
                }
            }
            let _ = lines.send(Heard::Ended);
            report
        }));
    }
    drop(lines);
    // Every worker starts at one instant, once all of them have started and connected.
    let mut ready = 0;
    while ready < setup.workers {
        match tokio::time::timeout(READY_LIMIT, heard.recv()).await {
            Ok(Some(Heard::Ready)) => ready += 1,
            Ok(_) => return Err("a worker ended before it was ready".into()),
            Err(_) => return Err(format!("the workers were not ready within {READY_LIMIT:?}")),
        }
    }
    let start = unix_ms() + 50;
    for input in &mut inputs {
        writeln!(input, "{start}").map_err(|e| format!("cannot start a worker: {e}"))?;
    }
    drop(inputs);
    // When Redis answers again after the fault.
    let mut healed = None;
    if let (Some(fault), Some(redis)) = (setup.fault, redis) {
        let at = Duration::from_millis(start.saturating_sub(unix_ms()) + 1_000);
        tokio::time::sleep(at).await;
        healed = Some(hurt(redis, fault).await?);
    }
    // Read every worker's report, each bounded in time.
    let mut reports = Vec::new();
    for r in readers {
        match tokio::time::timeout(WORKER_LIMIT, r).await {
            Ok(Ok(Some(report))) => reports.push(report),
            Ok(_) => return Err("a worker ended without a report".into()),
            Err(_) => return Err(format!("a worker ran longer than {WORKER_LIMIT:?}")),
        }
    }
    let requests = server.requests();
    let throttled = requests.iter().filter(|r| matches!(r.outcome, Outcome::RateLimited { .. })).count();
    if std::env::var_os("LLM_RETRY_FLEET_TRACE").is_some() {
        // Per half second: requests the server admitted and refused.
        let first = requests.first().map(|r| r.at);
        let mut bins: Vec<(usize, usize)> = Vec::new();
        for r in &requests {
            let i = first.map_or(0, |f| (r.at - f).as_millis() as usize / 500);
            if bins.len() <= i {
                bins.resize(i + 1, (0, 0));
            }
            if matches!(r.outcome, Outcome::RateLimited { .. }) { bins[i].1 += 1 } else { bins[i].0 += 1 }
        }
        eprintln!("per 0.5 s (admitted, 429): {bins:?}");
    }
    let finished = reports.iter().map(|r| r.finished_unix_ms).max().unwrap_or(start);
    Ok(FleetResult {
        calls: requests.len(),
        throttled,
        ok: reports.iter().map(|r| r.ok).sum(),
        failed: reports.iter().map(|r| r.failed).sum(),
        makespan: Duration::from_millis(finished.saturating_sub(start)),
        floor: setup.floor(),
        longest: Duration::from_millis(reports.iter().map(|r| r.longest_ms).max().unwrap_or(0)),
        fallbacks: reports.iter().map(|r| r.fallbacks).sum(),
        modes: reports.iter().map(|r| r.mode.clone()).collect(),
        rejoined_after: healed.and_then(|h| {
            let last = reports.iter().filter_map(|r| r.rejoined_unix_ms).max()?;
            Some(Duration::from_millis(last.saturating_sub(h)))
        }),
    })
}

/// The worker processes of a run: killed and reaped when the run ends, however it ends (a
/// worker past [`WORKER_LIMIT`], or not ready in time, is killed here; one that has finished is
/// only reaped).
struct Workers(Vec<std::process::Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the coordinator hears from a worker's standard output.
enum Heard {
    Ready,
    Ended,
}

/// Does `fault` to Redis; returns when (unix ms) Redis answers again.
async fn hurt(redis: &mut RedisServer, fault: Fault) -> Result<u64, String> {
    match fault {
        Fault::Kill => {
            redis.kill()?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            redis.restart()?;
            Ok(unix_ms())
        }
        Fault::Stop => {
            redis.pause()?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            redis.resume()?;
            Ok(unix_ms())
        }
        Fault::Flush => {
            redis.command(&["SCRIPT", "FLUSH"])?;
            Ok(unix_ms())
        }
        Fault::Pause => {
            redis.command(&["CLIENT", "PAUSE", "2000"])?;
            Ok(unix_ms() + 2_000)
        }
    }
}

/// The endpoint every worker calls: one static, shared through Redis when the spec says so.
static CHAOS: Limiter = Limiter::new("fleet-chaos");

const POLICY: Policy = match Policy::builder().max_attempts(30).build() {
    Ok(p) => p,
    Err(_) => panic!("a valid policy"),
};

/// One chat completion, one attempt; with headers, the pacer reads them on every response.
async fn ask(http: &reqwest::Client, url: &str, prompt: u32, headers: bool) -> Result<(), ApiError> {
    let body = serde_json::json!({ "model": "chaos-1", "messages": [{ "role": "user", "content": format!("prompt #{prompt}") }] });
    let request = http.post(url).json(&body);
    let response = if headers { request.send_observed(&CHAOS).await? } else { request.send().await? };
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    response.bytes().await?;
    Ok(())
}

/// A worker's whole life: share the pacer if told to, wait for the start, run its prompts
/// `concurrency` at a time, and print its report.
pub async fn worker(spec: Spec) {
    use futures::StreamExt;
    if let Some(url) = &spec.redis {
        match RedisStore::connect(url).await {
            Ok(store) => {
                let _ = CHAOS.share(store);
            }
            Err(e) => eprintln!("worker: cannot reach redis ({e}); pacing alone"),
        }
    }
    // Watches the pacer's mode: when it goes back to sharing after a fallback.
    let rejoined = std::sync::Arc::new(std::sync::Mutex::new(None::<u64>));
    let watch = {
        let rejoined = std::sync::Arc::clone(&rejoined);
        tokio::spawn(async move {
            let mut alone = false;
            loop {
                match CHAOS.stats().mode {
                    llm_retry::store::Sharing::Fallback => alone = true,
                    llm_retry::store::Sharing::Shared if alone => {
                        alone = false;
                        *rejoined.lock().expect("not poisoned") = Some(unix_ms());
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let http = reqwest::Client::new();
    // Ready: connected, and waiting for the instant every worker starts at.
    println!("{READY}");
    let start = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok()?;
        line.trim().parse::<u64>().ok()
    });
    // No start instant (the coordinator gave up): nothing to run.
    let Ok(Some(start)) = start.await else { return };
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(unix_ms()))).await;
    let results: Vec<(bool, Duration)> = futures::stream::iter(spec.prompts.iter().copied())
        .map(|p| {
            let (http, url) = (&http, spec.server.as_str());
            async move {
                let t = tokio::time::Instant::now();
                let out = POLICY
                    .call::<(), ApiError>()
                    .limiter(&CHAOS)
                    .deadline(DEADLINE)
                    .retry(|| ask(http, url, p, spec.headers))
                    .await;
                (out.is_ok(), t.elapsed())
            }
        })
        .buffer_unordered(spec.concurrency)
        .collect()
        .await;
    watch.abort();
    let stats = CHAOS.stats();
    let rejoined_unix_ms = *rejoined.lock().expect("not poisoned");
    let report = WorkerReport {
        ok: results.iter().filter(|r| r.0).count(),
        failed: results.iter().filter(|r| !r.0).count(),
        finished_unix_ms: unix_ms(),
        longest_ms: results.iter().map(|r| r.1.as_millis() as u64).max().unwrap_or(0),
        fallbacks: stats.fallbacks,
        mode: stats.mode.name().to_string(),
        rejoined_unix_ms,
    };
    println!("{MARK}{}", serde_json::to_string(&report).expect("a report serializes"));
}
