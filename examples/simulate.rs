//! The herd simulator (issue #8): the project's real policies, batch, limiter and budget
//! against simulated servers on tokio's paused clock. Seeded and deterministic.
//!
//! ```text
//! cargo run --release --example simulate            # everything, a few minutes on 2 cores
//! cargo run --release --example simulate -- --quick # fewer seeds and sizes (or SIM_QUICK=1)
//! ```
//!
//! Options: `--quick`, `--jobs N` (worker threads; default: the available cores),
//! `--only a|b|c` (one scenario). Tables are printed and written, with one SVG plot per
//! scenario, to `target/sim/`. docs/PERFORMANCE.md ("Herd simulation") explains the models.

#[path = "simulate/report.rs"]
mod report;
#[path = "simulate/sim.rs"]
mod sim;

use indicatif::{ProgressBar, ProgressStyle};
use report::{Panel, Series, Table};
use sim::{Failure, Guard, Hint, LlmConfig, LlmRun, LlmStrategy, OccRun, OccStrategy, OpenLoop, OpenRun};
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
                other => panic!("unknown option {other}: use --quick, --jobs N, --only a|b|c"),
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
        v
    }

    fn open_seeds(&self) -> u64 {
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
}

/// Its result, and the seconds it took.
#[derive(Clone, Copy)]
enum Out {
    Occ(OccRun),
    Llm(LlmRun),
    Open(OpenRun),
}

impl Job {
    fn scenario(&self) -> char {
        match self {
            Job::Occ(..) => 'a',
            Job::Llm(..) => 'b',
            Job::Outage(..) | Job::Sweep(..) => 'c',
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
        }
    }
}

fn jobs(plan: &Plan) -> Vec<Job> {
    let mut v = Vec::new();
    // The most expensive runs first, so that the threads finish together.
    if plan.runs('b') {
        for cfg in plan.llm_configs().into_iter().rev() {
            for s in LlmStrategy::ALL {
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
    if plan.runs('a') {
        for n in plan.occ_clients().into_iter().rev() {
            for s in OccStrategy::ALL {
                v.extend((0..plan.occ_seeds()).map(|seed| Job::Occ(s, n, seed)));
            }
        }
    }
    v
}

fn pct(ours: f64, theirs: f64) -> String {
    format!("{:+.1}%", (ours / theirs - 1.0) * 100.0)
}

fn occ_report(runs: &[(Job, Out, f64)], plan: &Plan, dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let mean_of = |s: OccStrategy, n: usize| {
        let rs: Vec<OccRun> = runs
            .iter()
            .filter_map(|r| match r {
                (Job::Occ(js, jn, _), Out::Occ(o), _) if *js == s && *jn == n => Some(*o),
                _ => None,
            })
            .collect();
        (sim::mean(rs.iter().map(|r| r.time_ms)), sim::mean(rs.iter().map(|r| r.calls as f64)))
    };
    let mut out = format!("### A. The AWS OCC experiment ({} seeded runs per cell)\n\n", plan.occ_seeds());
    let mut t = Table::new([
        "strategy (N = 100)",
        "time ms (ours)",
        "time ms (AWS)",
        "Δ time",
        "calls (ours)",
        "calls (AWS)",
        "Δ calls",
    ]);
    for s in OccStrategy::ALL {
        let (time, calls) = mean_of(s, 100);
        let (at, ac) = s.aws_reference();
        t.row([
            s.name().to_string(),
            format!("{time:.0}"),
            format!("{at:.0}"),
            pct(time, at),
            format!("{calls:.0}"),
            format!("{ac:.0}"),
            pct(calls, ac),
        ]);
    }
    out += &t.render();
    out += "\n";
    let ns = plan.occ_clients();
    let mut t = Table::new(
        std::iter::once("strategy".to_string())
            .chain(ns.iter().flat_map(|n| [format!("N={n} time ms"), format!("N={n} calls")])),
    );
    for s in OccStrategy::ALL {
        let mut row = vec![s.name().to_string()];
        for &n in &ns {
            let (time, calls) = mean_of(s, n);
            row.extend([format!("{time:.0}"), format!("{calls:.0}")]);
        }
        t.row(row);
    }
    out += &t.render();
    let series = |f: fn((f64, f64)) -> f64| -> Vec<Series> {
        OccStrategy::ALL
            .iter()
            .map(|&s| Series {
                name: s.name().into(),
                points: ns.iter().map(|&n| (n as f64, f(mean_of(s, n)))).collect(),
            })
            .collect()
    };
    report::figure(
        &dir.join("occ.svg"),
        2,
        &[
            Panel {
                title: "A. Work: calls until every client wrote".into(),
                x: ("clients", false),
                y: ("calls (mean)", false),
                series: series(|m| m.1),
                lines: true,
            },
            Panel {
                title: "A. Time until the last client wrote".into(),
                x: ("clients", false),
                y: ("ms (mean, log)", true),
                series: series(|m| m.0),
                lines: true,
            },
        ],
    )?;
    Ok(out)
}

/// Means over the seeds of one (strategy, config) cell of scenario B.
struct LlmCell {
    calls_per_task: f64,
    over_floor: f64,
    p50: f64,
    p99: f64,
    throttled: f64,
    abandoned: f64,
}

fn llm_cell(runs: &[(Job, Out, f64)], s: LlmStrategy, cfg: LlmConfig) -> LlmCell {
    let rs: Vec<LlmRun> = runs
        .iter()
        .filter_map(|r| match r {
            (Job::Llm(js, jc, _), Out::Llm(o), _) if *js == s && *jc == cfg => Some(*o),
            _ => None,
        })
        .collect();
    let n = cfg.tasks as f64;
    LlmCell {
        calls_per_task: sim::mean(rs.iter().map(|r| r.calls as f64 / n)),
        over_floor: sim::mean(rs.iter().map(|r| r.makespan / cfg.floor())),
        p50: sim::mean(rs.iter().map(|r| r.p50)),
        p99: sim::mean(rs.iter().map(|r| r.p99)),
        throttled: sim::mean(rs.iter().map(|r| r.throttled as f64)),
        abandoned: sim::mean(rs.iter().map(|r| r.abandoned as f64)),
    }
}

fn k_name(k: Option<usize>) -> String {
    k.map_or("unbounded".into(), |k| k.to_string())
}

fn llm_report(runs: &[(Job, Out, f64)], plan: &Plan, dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let mut out = format!(
        "### B. An LLM batch against a rate-limited provider ({} seeded run(s) per cell)\n\n\
         C = 10 req/s, B = 10, success after log-normal(median 2 s, σ 0.5), 429 after 50 ms. \
         Latency is from release at t = 0. Means over the runs.\n",
        plan.llm_seeds()
    );
    let mut panels = Vec::new();
    for cfg in plan.llm_configs() {
        out += &format!(
            "\n**N = {}, K = {}, {}** (floor {:.1} s)\n\n",
            cfg.tasks,
            k_name(cfg.concurrency),
            cfg.hint.name(),
            cfg.floor()
        );
        let mut t = Table::new(["strategy", "calls/task", "makespan ÷ floor", "p50 s", "p99 s", "429s", "abandoned"]);
        let mut series = Vec::new();
        for s in LlmStrategy::ALL {
            let c = llm_cell(runs, s, cfg);
            t.row([
                s.name().to_string(),
                format!("{:.2}", c.calls_per_task),
                format!("{:.2}", c.over_floor),
                format!("{:.1}", c.p50),
                format!("{:.1}", c.p99),
                format!("{:.0}", c.throttled),
                format!("{:.0}", c.abandoned),
            ]);
            // A strategy that abandons tasks finishes early by not finishing: its makespan
            // is not comparable, so the plot leaves it out (the table keeps it).
            if c.abandoned == 0.0 {
                series.push(Series { name: s.name().into(), points: vec![(c.calls_per_task, c.over_floor)] });
            }
        }
        out += &t.render();
        if cfg.hint == Hint::Millis {
            panels.push(Panel {
                title: format!(
                    "B. N = {}, K = {}, retry-after-ms (none abandoned)",
                    cfg.tasks,
                    k_name(cfg.concurrency)
                ),
                x: ("calls per task (log)", true),
                y: ("makespan ÷ floor (log)", true),
                series,
                lines: false,
            });
        }
    }
    report::figure(&dir.join("llm.svg"), 2, &panels)?;
    Ok(out)
}

fn open_total(runs: &[(Job, Out, f64)], keep: impl Fn(&Job) -> bool) -> OpenRun {
    runs.iter().fold(OpenRun::default(), |mut acc, (j, o, _)| {
        if let (true, Out::Open(r)) = (keep(j), o) {
            acc.calls += r.calls;
            acc.attempts += r.attempts;
            acc.succeeded += r.succeeded;
        }
        acc
    })
}

fn open_report(runs: &[(Job, Out, f64)], plan: &Plan, dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let outages = plan.outages();
    let mut out = format!(
        "### C. Outage and partial failure ({} seeded run(s) per cell)\n\n\
         Poisson arrivals, `Policy::DEFAULT` (4 attempts: at most 3 retries), attempts answer in 50 ms, \
         10 s of healthy traffic first. Amplification = attempts ÷ first attempts of the calls that \
         arrived during the outage.\n\n",
        plan.open_seeds()
    );
    let mut t = Table::new(
        std::iter::once("amplification".to_string()).chain(outages.iter().map(|(l, t)| format!("λ={l}/s T={t}s"))),
    );
    for g in GUARDS {
        let mut row = vec![g.name()];
        for &(l, tt) in &outages {
            let r = open_total(runs, |j| matches!(*j, Job::Outage(jg, jl, jt, _) if jg == g && jl == l && jt == tt));
            row.push(format!("{:.3}×", r.amplification()));
        }
        t.row(row);
    }
    out += &t.render();
    out += &format!(
        "\nFailure sweep: each attempt fails with probability p; λ = {}/s for {} s. \
         Success = calls that succeeded; load = attempts ÷ calls.\n\n",
        SWEEP_LOAD.rate,
        SWEEP_LOAD.window.as_secs()
    );
    let mut t = Table::new(
        std::iter::once("p".to_string())
            .chain(GUARDS.iter().flat_map(|g| [format!("{} success", g.name()), "load".to_string()])),
    );
    for p in SWEEP {
        let mut row = vec![format!("{p}%")];
        for g in GUARDS {
            let r = open_total(runs, |j| matches!(*j, Job::Sweep(jg, jp, _) if jg == g && jp == p));
            row.extend([format!("{:.2}%", r.success() * 100.0), format!("{:.3}×", r.amplification())]);
        }
        t.row(row);
    }
    out += &t.render();
    let t_plot = 60;
    let amp = GUARDS
        .iter()
        .map(|&g| Series {
            name: g.name(),
            points: outages
                .iter()
                .filter(|o| o.1 == t_plot)
                .map(|&(l, tt)| {
                    let r = open_total(
                        runs,
                        |j| matches!(*j, Job::Outage(jg, jl, jt, _) if jg == g && jl == l && jt == tt),
                    );
                    (l, r.amplification())
                })
                .collect(),
        })
        .collect();
    let success = GUARDS
        .iter()
        .map(|&g| Series {
            name: g.name(),
            points: SWEEP
                .iter()
                .map(|&p| {
                    let r = open_total(runs, |j| matches!(*j, Job::Sweep(jg, jp, _) if jg == g && jp == p));
                    (p, r.success() * 100.0)
                })
                .collect(),
        })
        .collect();
    report::figure(
        &dir.join("outage.svg"),
        2,
        &[
            Panel {
                title: format!("C. Amplification in a {t_plot} s outage"),
                x: ("arrivals per second (log)", true),
                y: ("attempts ÷ first attempts", false),
                series: amp,
                lines: true,
            },
            Panel {
                title: "C. Success under random failures".into(),
                x: ("failure probability %", false),
                y: ("calls that succeeded %", false),
                series: success,
                lines: true,
            },
        ],
    )?;
    Ok(out)
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
         {wall:.0} s wall clock (A {:.0} s, B {:.0} s, C {:.0} s of run time).\n\n",
        if plan.quick { " -- --quick" } else { "" },
        runs.len(),
        plan.jobs,
        cpu('a'),
        cpu('b'),
        cpu('c'),
    );
    for (c, f) in [('a', occ_report as fn(&_, &_, &_) -> _), ('b', llm_report), ('c', open_report)] {
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
