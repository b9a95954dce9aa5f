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
