//! The herd simulator (issue #8): the project's real policies, batch, limiter and budget
//! against simulated servers on tokio's paused clock. Seeded and deterministic.
//!
//! ```text
//! cargo run --release --example simulate            # everything, a few minutes on 2 cores
//! cargo run --release --example simulate -- --quick # fewer seeds and sizes (or SIM_QUICK=1)
//! ```
//!
//! Options: `--quick`, `--jobs N` (worker threads; default: the available cores),
//! `--only a|b|c|d` (one scenario). Tables are printed and written, with one SVG plot per
//! scenario, to `target/sim/`. docs/PERFORMANCE.md ("Herd simulation") explains the models.

//!
//! This file holds the command line, the jobs and their parallel run. The models are in
//! `simulate/sim.rs` (and `simulate/sim/`), each scenario's section of the results in
//! `simulate/sections.rs`, and the tables and plots they are drawn with in
//! `simulate/report.rs`.

#[path = "simulate/report.rs"]
mod report;
#[path = "simulate/sections.rs"]
mod sections;
#[path = "simulate/sim.rs"]
mod sim;

use indicatif::{ProgressBar, ProgressStyle};
use sections::{failover_report, llm_report, occ_report, open_report};
use sim::{FailoverRun, Failure, Guard, Hint, LlmConfig, LlmRun, LlmStrategy, OccRun, OccStrategy, OpenLoop, OpenRun};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How much to run.
struct Plan {
    quick: bool,
    jobs: usize,
    only: Option<char>,
}

impl Plan {
    fn from_args() -> Plan {
        let mut args = std::env::args().skip(1);
        let mut plan = Plan {
            quick: std::env::var("SIM_QUICK").is_ok_and(|v| !v.is_empty() && v != "0"),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            only: None,
        };
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => plan.quick = true,
                "--jobs" => plan.jobs = args.next().and_then(|v| v.parse().ok()).expect("--jobs takes a number"),
                "--only" => plan.only = args.next().and_then(|v| v.chars().next()).map(|c| c.to_ascii_lowercase()),
                other => panic!("unknown option {other}: use --quick, --jobs N, --only a|b|c|d"),
            }
        }
        plan
    }

    fn runs(&self, scenario: char) -> bool {
        self.only.is_none_or(|c| c == scenario)
    }

    /// Seeds for scenario A (the AWS post averages 100 runs).
    fn occ_seeds(&self) -> u64 {
        if self.quick { 10 } else { 100 }
    }

    fn occ_clients(&self) -> Vec<usize> {
        vec![10, 50, 100]
    }

    fn llm_seeds(&self) -> u64 {
        if self.quick { 1 } else { 5 }
    }

    fn llm_configs(&self) -> Vec<LlmConfig> {
        let mut v = Vec::new();
        for hint in [Hint::Millis, Hint::Seconds] {
            for n in [100, 1000] {
                for k in [None, Some(32)] {
                    if !self.quick || hint == Hint::Millis {
                        v.push(LlmConfig::new(n, k, hint));
                    }
                }
            }
        }
        // The token-bound variant: 1,000 prompts, about 690,000 tokens at 60,000 a minute.
        for k in [None, Some(32)] {
            v.push(LlmConfig::token_bound(1000, k));
        }
        v
    }

    fn open_seeds(&self) -> u64 {
        if self.quick { 1 } else { 5 }
    }

    /// Seeds for scenario D.
    fn failover_seeds(&self) -> u64 {
        if self.quick { 1 } else { 5 }
    }

    fn outages(&self) -> Vec<(f64, u64)> {
        let ts: &[u64] = if self.quick { &[10, 60] } else { &[10, 60, 600] };
        [1.0, 10.0, 100.0].into_iter().flat_map(|l| ts.iter().map(move |&t| (l, t))).collect()
    }
}

/// The guards of scenario C.
const GUARDS: [Guard; 5] = [
    Guard::NoBudget,
    Guard::OUR_BUDGET,
    Guard::Budget { ratio: 0.2, burst: 5 },
    Guard::Budget { ratio: 0.2, burst: 1 },
    Guard::Tower,
];
/// The failure sweep's rates, in percent.
const SWEEP: [f64; 6] = [1.0, 5.0, 10.0, 20.0, 50.0, 100.0];
/// The failure sweep's traffic: λ = 100/s for 60 s after a 10 s warm-up.
const SWEEP_LOAD: OpenLoop = OpenLoop {
    rate: 100.0,
    warmup: Duration::from_secs(10),
    window: Duration::from_secs(60),
    failure: Failure::Outage,
};

/// Runs `f` on every item on `jobs` threads, ticking `bar`; results in item order. Each run
/// seeds its own thread's generators, so the results do not depend on the thread count.
fn par_map<T: Sync, R: Send>(items: &[T], jobs: usize, bar: &ProgressBar, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    out.lock().expect("no worker panicked")[i] = Some(r);
                    bar.inc(1);
                }
            });
        }
    });
    out.into_inner().expect("no worker panicked").into_iter().map(|r| r.expect("every item ran")).collect()
}

/// One simulation run.
#[derive(Clone, Copy)]
enum Job {
    Occ(OccStrategy, usize, u64),
    Llm(LlmStrategy, LlmConfig, u64),
    Outage(Guard, f64, u64, u64),
    Sweep(Guard, f64, u64),
    /// Scenario D: with a breaker on the primary, or not; the seed.
    Failover(bool, u64),
}

/// Its result, and the seconds it took.
#[derive(Clone, Copy)]
enum Out {
    Occ(OccRun),
    Llm(LlmRun),
    Open(OpenRun),
    Failover(FailoverRun),
}

impl Job {
    fn scenario(&self) -> char {
        match self {
            Job::Occ(..) => 'a',
            Job::Llm(..) => 'b',
            Job::Outage(..) | Job::Sweep(..) => 'c',
            Job::Failover(..) => 'd',
        }
    }

    fn run(&self) -> Out {
        match *self {
            Job::Occ(s, n, seed) => Out::Occ(sim::occ_run(s, n, seed)),
            Job::Llm(s, cfg, seed) => Out::Llm(sim::llm_run(s, cfg, seed)),
            Job::Outage(g, rate, t, seed) => {
                let load = OpenLoop {
                    rate,
                    warmup: Duration::from_secs(10),
                    window: Duration::from_secs(t),
                    failure: Failure::Outage,
                };
                Out::Open(sim::open_run(g, load, seed))
            }
            Job::Sweep(g, p, seed) => {
                Out::Open(sim::open_run(g, OpenLoop { failure: Failure::Random(p / 100.0), ..SWEEP_LOAD }, seed))
            }
            Job::Failover(breaker, seed) => Out::Failover(sim::failover_run(breaker, seed)),
        }
    }
}

fn jobs(plan: &Plan) -> Vec<Job> {
    let mut v = Vec::new();
    // The most expensive runs first, so that the threads finish together.
    if plan.runs('b') {
        for cfg in plan.llm_configs().into_iter().rev() {
            for s in LlmStrategy::ALL.into_iter().filter(|s| s.runs_on(&cfg)) {
                v.extend((0..plan.llm_seeds()).map(|seed| Job::Llm(s, cfg, seed)));
            }
        }
    }
    if plan.runs('c') {
        for g in GUARDS {
            for (rate, t) in plan.outages().into_iter().rev() {
                v.extend((0..plan.open_seeds()).map(|seed| Job::Outage(g, rate, t, seed)));
            }
            for p in SWEEP {
                v.extend((0..plan.open_seeds()).map(|seed| Job::Sweep(g, p, seed)));
            }
        }
    }
    if plan.runs('d') {
        for breaker in [true, false] {
            v.extend((0..plan.failover_seeds()).map(|seed| Job::Failover(breaker, seed)));
        }
    }
    if plan.runs('a') {
        for n in plan.occ_clients().into_iter().rev() {
            for s in OccStrategy::ALL {
                v.extend((0..plan.occ_seeds()).map(|seed| Job::Occ(s, n, seed)));
            }
        }
    }
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plan = Plan::from_args();
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("sim");
    std::fs::create_dir_all(&dir)?;
    let all = jobs(&plan);
    let bar = ProgressBar::new(all.len() as u64);
    bar.set_style(ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs, eta {eta}")?);
    let started = Instant::now();
    let outs = par_map(&all, plan.jobs, &bar, |j| {
        let t = Instant::now();
        let o = j.run();
        (o, t.elapsed().as_secs_f64())
    });
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let runs: Vec<(Job, Out, f64)> = all.iter().zip(outs).map(|(j, (o, secs))| (*j, o, secs)).collect();
    let cpu = |c: char| runs.iter().filter(|r| r.0.scenario() == c).map(|r| r.2).sum::<f64>().abs();

    let mut md = format!(
        "# Herd simulation results\n\nCommand: `cargo run --release --example simulate{}`; {} run(s) on {} thread(s), \
         {wall:.0} s wall clock (A {:.0} s, B {:.0} s, C {:.0} s, D {:.0} s of run time).\n\n",
        if plan.quick { " -- --quick" } else { "" },
        runs.len(),
        plan.jobs,
        cpu('a'),
        cpu('b'),
        cpu('c'),
        cpu('d'),
    );
    for (c, f) in
        [('a', occ_report as fn(&_, &_, &_) -> _), ('b', llm_report), ('c', open_report), ('d', failover_report)]
    {
        if plan.runs(c) {
            let section = f(&runs, &plan, &dir)?;
            std::fs::write(dir.join(format!("{c}.md")), &section)?;
            md += &section;
            md += "\n";
        }
    }
    std::fs::write(dir.join("results.md"), &md)?;
    println!("{md}");
    println!("Written to {}", dir.display());
    Ok(())
}
