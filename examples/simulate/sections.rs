//! Each scenario's section of the results: a markdown table (or two) and an SVG plot, from
//! the runs of its jobs.

use crate::report::{self, Panel, Series, Table};
use crate::sim::{self, FailoverRun, Hint, LlmConfig, LlmRun, LlmStrategy, OccRun, OccStrategy, OpenRun};
use crate::{GUARDS, Job, Out, Plan, SWEEP, SWEEP_LOAD};
use std::path::Path;

fn pct(ours: f64, theirs: f64) -> String {
    format!("{:+.1}%", (ours / theirs - 1.0) * 100.0)
}

pub fn occ_report(runs: &[(Job, Out, f64)], plan: &Plan, dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
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
    /// The makespan over the oracle's (the same seed's): what no client can beat.
    over_oracle: f64,
    p50: f64,
    p99: f64,
    throttled: f64,
    abandoned: f64,
}

fn llm_cell(runs: &[(Job, Out, f64)], s: LlmStrategy, cfg: LlmConfig) -> LlmCell {
    let of = |s: LlmStrategy| {
        runs.iter().filter_map(move |r| match r {
            (Job::Llm(js, jc, seed), Out::Llm(o), _) if *js == s && *jc == cfg => Some((*seed, *o)),
            _ => None,
        })
    };
    let rs: Vec<(u64, LlmRun)> = of(s).collect();
    let oracle: Vec<(u64, LlmRun)> = of(LlmStrategy::Oracle).collect();
    let n = cfg.tasks as f64;
    LlmCell {
        calls_per_task: sim::mean(rs.iter().map(|(_, r)| r.calls as f64 / n)),
        over_floor: sim::mean(rs.iter().map(|(_, r)| r.makespan / r.floor)),
        over_oracle: sim::mean(
            rs.iter()
                .filter_map(|(seed, r)| oracle.iter().find(|(s, _)| s == seed).map(|(_, o)| r.makespan / o.makespan)),
        ),
        p50: sim::mean(rs.iter().map(|(_, r)| r.p50)),
        p99: sim::mean(rs.iter().map(|(_, r)| r.p99)),
        throttled: sim::mean(rs.iter().map(|(_, r)| r.throttled as f64)),
        abandoned: sim::mean(rs.iter().map(|(_, r)| r.abandoned as f64)),
    }
}

fn k_name(k: Option<usize>) -> String {
    k.map_or("unbounded".into(), |k| k.to_string())
}

pub fn llm_report(runs: &[(Job, Out, f64)], plan: &Plan, dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let mut out = format!(
        "### B. An LLM batch against a rate-limited provider ({} seeded run(s) per cell)\n\n\
         C = 10 req/s, B = 10, success after log-normal(median 2 s, σ 0.5), 429 after 50 ms; every \
         response carries OpenAI's rate-limit headers, read only by the \"headers\" strategies. The \
         token-bound variant adds 60,000 tokens a minute (a minute's worth of room) and prompts of \
         log-normal(median 500, σ 0.8) tokens; its floor counts the run's tokens. Latency is from \
         release at t = 0. Means over the runs.\n",
        plan.llm_seeds()
    );
    let mut panels = Vec::new();
    for cfg in plan.llm_configs() {
        let floor = sim::mean((0..plan.llm_seeds()).map(|seed| cfg.floor(seed)));
        let variant = if cfg.tokens.is_some() { "token-bound, ".to_string() } else { String::new() };
        out += &format!(
            "\n**N = {}, K = {}, {variant}{}** (floor {floor:.1} s)\n\n",
            cfg.tasks,
            k_name(cfg.concurrency),
            cfg.hint.name(),
        );
        let mut t = Table::new([
            "strategy",
            "calls/task",
            "makespan ÷ floor",
            "÷ oracle",
            "p50 s",
            "p99 s",
            "429s",
            "abandoned",
        ]);
        let mut series = Vec::new();
        for s in LlmStrategy::ALL.into_iter().filter(|s| s.runs_on(&cfg)) {
            let c = llm_cell(runs, s, cfg);
            t.row([
                s.name().to_string(),
                format!("{:.2}", c.calls_per_task),
                format!("{:.2}", c.over_floor),
                format!("{:.3}", c.over_oracle),
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
                    "B. N = {}, K = {}, {variant}retry-after-ms (none abandoned)",
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

pub fn open_report(runs: &[(Job, Out, f64)], plan: &Plan, dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
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

/// Scenario D: the primary's outage, with and without a breaker.
pub fn failover_report(
    runs: &[(Job, Out, f64)],
    plan: &Plan,
    _dir: &Path,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut out = format!(
        "### D. Primary outage ({} seeded run(s) per row)\n\n\
         Poisson arrivals at λ = {}/s through the chain `[primary, backup]`, `Policy::DEFAULT` (4 attempts \
         per target), attempts answer in {} ms; the primary fails every attempt for {} s after {} s of healthy \
         traffic, then recovers for {} s. Added latency: a call's time less the {} ms of the attempt that \
         served it, over the calls that arrived during the outage (means over the seeds). The breaker is \
         `Breaker::new` (5 failures in a row, 30 s cooldown).\n\n",
        plan.failover_seeds(),
        sim::FAILOVER_RATE,
        sim::FAILOVER_LATENCY.as_millis(),
        sim::FAILOVER_OUTAGE.as_secs(),
        sim::FAILOVER_CALM.as_secs(),
        sim::FAILOVER_CALM.as_secs(),
        sim::FAILOVER_LATENCY.as_millis(),
    );
    let mut t = Table::new([
        "primary",
        "calls served",
        "served twice",
        "added p50",
        "added p99",
        "added max",
        "max added once open (probes aside)",
        "primary requests while not closed / probes",
        "probes at once",
        "back on the primary after",
    ]);
    for breaker in [true, false] {
        let rs: Vec<&FailoverRun> = runs
            .iter()
            .filter_map(|(j, o, _)| match (j, o) {
                (Job::Failover(b, _), Out::Failover(r)) if *b == breaker => Some(r),
                _ => None,
            })
            .collect();
        let m = |f: fn(&FailoverRun) -> f64| sim::mean(rs.iter().map(|r| f(r)));
        let twice: u64 = rs.iter().map(|r| r.answers.saturating_sub(r.succeeded)).sum();
        let (while_open, probes): (u64, u64) =
            rs.iter().fold((0, 0), |(w, p), r| (w + r.primary_while_open, p + r.probes));
        let most = rs.iter().map(|r| r.most_probes_at_once).max().unwrap_or(0);
        let back = rs.iter().map(|r| r.back_after).max().unwrap_or_default();
        t.row([
            if breaker { "with a breaker".to_string() } else { "no breaker".to_string() },
            format!("{:.2}%", m(FailoverRun::success) * 100.0),
            twice.to_string(),
            format!("{:.1} ms", m(|r| r.added_p50_ms)),
            format!("{:.1} ms", m(|r| r.added_p99_ms)),
            format!("{:.1} ms", m(|r| r.added_max_ms)),
            if breaker { format!("{:.1} ms", m(|r| r.after_open_max_added_ms)) } else { "-".into() },
            if breaker { format!("{while_open} / {probes}") } else { "-".into() },
            if breaker { most.to_string() } else { "-".into() },
            if breaker { format!("{:.1} s", back.as_secs_f64()) } else { "-".into() },
        ]);
    }
    out += &t.render();
    Ok(out)
}
