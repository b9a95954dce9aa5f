//! A fleet of worker processes against one rate-limited provider, with and without sharing
//! the endpoint's pacer through Redis.
//!
//! ```sh
//! cargo run --example fleet
//! ```
//!
//! It starts a private `redis-server` (when one is installed: `apt-get install -y
//! redis-server`; or set `REDIS_URL` to use an existing server), the chaos LLM server in
//! rate-limit mode (6,000 requests a minute, burst 8, exact `retry-after-ms`), and P = 1, 4 and
//! 8 worker processes (this program again, in its worker mode) that share 1,000 prompts, 32 in
//! flight in all. Each worker paces through the same `static` limiter; with sharing, one line
//! at startup hands its state to Redis:
//!
//! ```ignore
//! CHAOS.share(RedisStore::connect(&url).await?);
//! ```
//!
//! It prints calls per prompt, 429s and the makespan against the floor (N / C) for each P,
//! alone and shared (docs/FLEET.md has a run). `--headers` runs it with the provider's
//! rate-limit headers on every response; `--workers 4` runs one size; `--fault kill` (or
//! `stop`, `flush`, `pause`) hurts the private redis-server one second into each shared run
//! and shows each worker pace alone, then share again.

mod run;

use llm_retry_testkit::redis_server::RedisServer;
use run::{Fault, Setup, Spec};
use std::process::Command;

fn me() -> Command {
    Command::new(std::env::current_exe().expect("the running program's path"))
}

#[tokio::main]
async fn main() {
    if let Ok(json) = std::env::var(run::SPEC) {
        let spec: Spec = serde_json::from_str(&json).expect("the coordinator writes a valid spec");
        run::worker(spec).await;
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let headers = args.iter().any(|a| a == "--headers");
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let sizes: Vec<usize> = match value("--workers") {
        Some(p) => vec![p.parse().expect("--workers takes a number")],
        None => vec![1, 4, 8],
    };
    let fault = value("--fault").map(|f| match f.as_str() {
        "kill" => Fault::Kill,
        "stop" => Fault::Stop,
        "flush" => Fault::Flush,
        "pause" => Fault::Pause,
        other => panic!("--fault takes kill, stop, flush or pause, not {other:?}"),
    });
    let external = std::env::var("REDIS_URL").ok();
    let mut private = if external.is_none() {
        match RedisServer::start() {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                eprintln!("redis-server is not installed (apt-get install -y redis-server) and REDIS_URL is not set");
                std::process::exit(2);
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };
    if fault.is_some() && private.is_none() {
        eprintln!("--fault needs the private redis-server this program starts: unset REDIS_URL");
        std::process::exit(2);
    }
    println!("redis: {}", if private.is_some() { "a private redis-server on 127.0.0.1" } else { "REDIS_URL" });
    println!(
        "1,000 prompts, 32 in flight, against 6,000 requests a minute, burst 8{}{}\n",
        if headers { ", rate-limit headers on" } else { "" },
        fault.map_or(String::new(), |f| format!(", Redis hurt one second in: {f:?}"))
    );
    println!(
        "| workers P | pacer | calls per prompt | 429s | makespan ÷ floor | ok | longest call | fallbacks | shared again after | modes at the end |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for p in sizes {
        // A fault only means something to a shared fleet.
        let modes: &[bool] = if fault.is_some() { &[true] } else { &[false, true] };
        for &shared in modes {
            let setup = Setup { headers, fault, ..Setup::fleet(p, shared) };
            match run::run(setup, private.as_mut(), external.as_deref(), &me).await {
                Ok(r) => println!(
                    "| {p} | {} | {:.3} | {} | {:.3} | {}/{} | {:.1?} | {} | {} | {} |",
                    if shared { "shared (Redis)" } else { "per process" },
                    r.calls_per_prompt(),
                    r.throttled,
                    r.over_floor(),
                    r.ok,
                    r.ok + r.failed,
                    r.longest,
                    r.fallbacks,
                    r.rejoined_after.map_or("-".to_string(), |d| format!("{d:.1?}")),
                    summary(&r.modes),
                ),
                Err(e) => println!("| {p} | {shared} | failed: {e} |"),
            }
        }
    }
}

/// "4 shared", or "3 shared, 1 fallback".
fn summary(modes: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for m in modes {
        match counts.iter_mut().find(|(k, _)| k == m) {
            Some((_, n)) => *n += 1,
            None => counts.push((m, 1)),
        }
    }
    counts.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
}
