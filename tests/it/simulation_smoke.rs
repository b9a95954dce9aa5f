//! A reduced herd simulation (examples/simulate.rs, docs/PERFORMANCE.md "Herd simulation"):
//! the same models and the same real policies, small sizes and few seeds, paused time. It
//! asserts the qualitative results of the full run, so that a change to the backoff, the
//! limiter or the budget that turns them around fails CI.

// The example's models, compiled here as they are there; the test uses a subset of them (and
// of the names `sim` re-exports for the example).
#[allow(dead_code, unused_imports)]
#[path = "../../examples/simulate/sim.rs"]
mod sim;

use sim::{Failure, Guard, Hint, LlmConfig, LlmStrategy, OccStrategy, OpenLoop};
use std::time::Duration;

fn occ_calls(s: OccStrategy) -> f64 {
    sim::mean((0..5).map(|seed| sim::occ_run(s, 50, seed).calls as f64))
}

#[test]
fn jitter_beats_no_jitter_on_calls() {
    let none = occ_calls(OccStrategy::None);
    let exponential = occ_calls(OccStrategy::Exponential);
    for s in [OccStrategy::Full, OccStrategy::Equal, OccStrategy::Decorrelated] {
        let jittered = occ_calls(s);
        assert!(jittered < 0.8 * exponential, "{}: {jittered} calls vs exponential {exponential}", s.name());
        assert!(jittered < 0.8 * none, "{}: {jittered} calls vs no backoff {none}", s.name());
    }
}

#[test]
fn simulation_is_deterministic() {
    assert_eq!(sim::occ_run(OccStrategy::Full, 20, 7), sim::occ_run(OccStrategy::Full, 20, 7));
    let cfg = LlmConfig::new(50, Some(16), Hint::Millis);
    assert_eq!(sim::llm_run(LlmStrategy::Limiter, cfg, 3), sim::llm_run(LlmStrategy::Limiter, cfg, 3));
}

#[test]
fn budget_holds_the_amplification_bound_in_an_outage() {
    let outage = OpenLoop {
        rate: 100.0,
        warmup: Duration::from_secs(5),
        window: Duration::from_secs(10),
        failure: Failure::Outage,
    };
    let unbudgeted = sim::open_run(Guard::NoBudget, outage, 1);
    let budgeted = sim::open_run(Guard::OUR_BUDGET, outage, 1);
    assert!(unbudgeted.amplification() > 3.5, "no budget: {:.3}×", unbudgeted.amplification());
    assert!(budgeted.amplification() <= 1.10, "Budget::new(): {:.3}×", budgeted.amplification());
    // The tower-style reserve of 10 retries a second lets a slow stream retry everything.
    let slow = OpenLoop { rate: 1.0, window: Duration::from_secs(30), ..outage };
    assert!(sim::open_run(Guard::Tower, slow, 1).amplification() > 3.0);
}

#[test]
fn limiter_beats_exact_retry_after_on_calls() {
    let cfg = LlmConfig::new(100, Some(32), Hint::Millis);
    let calls = |s| sim::llm_run(s, cfg, 1).calls as f64 / cfg.tasks as f64;
    let exact = calls(LlmStrategy::ExactRetryAfter);
    let limiter = calls(LlmStrategy::Limiter);
    assert!(limiter < 0.5 * exact, "limiter {limiter:.2} calls/task vs exact Retry-After {exact:.2}");
}

#[test]
fn a_breaker_sends_an_outage_to_the_fallback_at_no_added_latency() {
    let with = sim::failover_run(true, 1);
    let without = sim::failover_run(false, 1);
    for r in [&with, &without] {
        assert_eq!(r.success(), 1.0, "every call is served: {r:?}");
        assert_eq!(r.answers, r.calls, "and served once: {r:?}");
    }
    // Once the breaker is open a call pays nothing but its own attempt, probes aside (up to
    // the timer's 1 ms resolution: arrivals fall between its ticks).
    assert!(with.after_open > 500, "{with:?}");
    assert!(with.after_open_max_added_ms <= 1.0, "{with:?}");
    assert!(with.added_p50_ms <= 1.0, "{with:?}");
    // Only probes reach the primary while the breaker is not closed, one at a time, and the
    // traffic is back on the primary within one cooldown (30 s) of the recovery.
    assert_eq!(with.primary_while_open, with.probes, "{with:?}");
    assert_eq!(with.most_probes_at_once, 1);
    assert!(with.back_after <= std::time::Duration::from_secs(31), "{with:?}");
    // Without one, every call of the outage first spends its retry schedule on the primary.
    assert!(without.added_p50_ms > 1000.0, "{without:?}");
    assert!(with.added_p99_ms < without.added_p50_ms / 10.0, "{with:?} {without:?}");
}

#[test]
fn the_pacer_meets_issue_15s_goals_on_small_runs() {
    // Scenario B, N = 100 released at once: the slow start and the pause hold the herd back.
    let herd = LlmConfig::new(100, None, Hint::Millis);
    let calls = |s, cfg: LlmConfig, seed| sim::llm_run(s, cfg, seed).calls as f64 / cfg.tasks as f64;
    for seed in 0..3 {
        let pacer = calls(LlmStrategy::Limiter, herd, seed);
        assert!(pacer <= 1.10, "seed {seed}: pacer {pacer:.2} calls/task");
        let run = sim::llm_run(LlmStrategy::Headers, herd, seed);
        assert_eq!(run.throttled, 0, "seed {seed}: the provider's headers leave no 429: {run:?}");
        assert_eq!(run.abandoned, 0);
    }
    // The token-bound variant, smaller: declared costs against tokens per minute.
    let tokens = LlmConfig::token_bound(300, Some(32));
    for s in [LlmStrategy::Tokens, LlmStrategy::HeadersTokens] {
        let run = sim::llm_run(s, tokens, 1);
        let per_task = run.calls as f64 / tokens.tasks as f64;
        assert!(per_task <= 1.05, "{}: {per_task:.2} calls/task", s.name());
        assert!(
            run.makespan <= 1.15 * run.floor,
            "{}: {:.1} s against a floor of {:.1} s",
            s.name(),
            run.makespan,
            run.floor
        );
    }
    // Without declared costs the pacer learns from the token 429s: more of them.
    let blind = calls(LlmStrategy::Limiter, tokens, 1);
    assert!(blind > calls(LlmStrategy::Tokens, tokens, 1), "{blind:.2}");
}
