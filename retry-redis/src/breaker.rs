//! The shared breaker's side of the wire: a [`BreakerOp`] as the arguments of
//! `scripts/breaker.lua`, and its reply as a [`BreakerAnswer`].

use crate::reply::{self, bad, to_micros};
use llm_retry_runtime::store::{BreakerAnswer, BreakerOp, BreakerRules, Outcome, SharedBreakerState, StoreError};
use redis::Value;

/// The breaker script, run by EVALSHA (by EVAL when a server lacks it).
pub(crate) const SOURCE: &str = concat!(include_str!("../scripts/common.lua"), include_str!("../scripts/breaker.lua"));

/// The breaker's name and the script's arguments for one step.
pub(crate) fn args<'a>(op: &BreakerOp<'a>) -> Result<(&'a str, Vec<String>), StoreError> {
    Ok(match *op {
        BreakerOp::Admit { breaker, rules } => (breaker, with_rules("admit", &rules)),
        BreakerOp::Record { breaker, rules, outcome, probe } => {
            let mut args = with_rules("record", &rules);
            let outcome = match outcome {
                Outcome::Success => "0",
                Outcome::Failure => "1",
                Outcome::Neutral => "2",
            };
            args.extend([outcome.to_owned(), u8::from(probe).to_string()]);
            (breaker, args)
        }
        BreakerOp::Trip { breaker, rules, wait } => {
            let mut args = with_rules("trip", &rules);
            args.push(to_micros(wait).to_string());
            (breaker, args)
        }
        BreakerOp::Release { breaker } => (breaker, vec!["release".to_owned()]),
        _ => return Err(StoreError::Unavailable("a breaker step this store does not know".to_owned())),
    })
}

/// The script's answer.
pub(crate) fn answer(v: &Value) -> Result<BreakerAnswer, StoreError> {
    let r = reply::ints(v, 6, 6)?;
    let state = match r[0] {
        0 => SharedBreakerState::Closed,
        1 => SharedBreakerState::Open,
        2 => SharedBreakerState::HalfOpen,
        _ => return Err(bad("a breaker state")),
    };
    let admit = reply::flag(r[1], "admit")?;
    let probe = reply::flag(r[2], "probe")?;
    let open_for = reply::micros(r[4], "open for")?;
    let open_for = reply::flag(r[3], "open")?.then_some(open_for);
    if probe && !admit || open_for.is_some() != (state == SharedBreakerState::Open) {
        return Err(bad("a breaker answer that contradicts itself"));
    }
    Ok(BreakerAnswer { state, admit, probe, open_for, changed: reply::flag(r[5], "changed")? })
}

/// The step and its rules, in the order the script reads them: consecutive failures,
/// failure rate, min calls, window, cooldown, max cooldown.
fn with_rules(step: &str, rules: &BreakerRules) -> Vec<String> {
    let rate = if rules.failure_rate.is_nan() { BreakerRules::DEFAULT.failure_rate } else { rules.failure_rate };
    vec![
        step.to_owned(),
        rules.consecutive_failures.to_string(),
        rate.to_string(),
        rules.min_calls.to_string(),
        to_micros(rules.window).to_string(),
        to_micros(rules.cooldown).to_string(),
        to_micros(rules.max_cooldown).to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ints(v: &[i64]) -> Value {
        Value::Array(v.iter().map(|i| Value::Int(*i)).collect())
    }

    #[test]
    fn steps_are_sent_in_the_scripts_order() {
        let rules = BreakerRules::DEFAULT;
        let (name, a) =
            args(&BreakerOp::Record { breaker: "b", rules, outcome: Outcome::Neutral, probe: true }).unwrap();
        assert_eq!(name, "b");
        assert_eq!(a, ["record", "5", "0.5", "20", "60000000", "30000000", "900000000", "2", "1"]);
        let (_, a) = args(&BreakerOp::Trip { breaker: "b", rules, wait: Duration::MAX }).unwrap();
        assert_eq!(a.last().map(String::as_str), Some("604800000000"));
        assert_eq!(args(&BreakerOp::Release { breaker: "b" }).unwrap().1, ["release"]);
    }

    #[test]
    fn answers_are_read_and_checked() {
        assert_eq!(
            answer(&ints(&[1, 0, 0, 1, 2_000_000, 1])),
            Ok(BreakerAnswer {
                state: SharedBreakerState::Open,
                admit: false,
                probe: false,
                open_for: Some(Duration::from_secs(2)),
                changed: true
            })
        );
        assert_eq!(
            answer(&ints(&[2, 1, 1, 0, 0, 0])),
            Ok(BreakerAnswer {
                state: SharedBreakerState::HalfOpen,
                admit: true,
                probe: true,
                open_for: None,
                changed: false
            })
        );
        for hostile in [
            &[3, 0, 0, 0, 0, 0][..],
            &[0, 2, 0, 0, 0, 0],
            &[0, 0, 1, 0, 0, 0],
            &[0, 1, 0, 1, 5, 0],
            &[1, 0, 0, 1, -5, 0],
            &[0, 1, 0, 0, 0],
        ] {
            assert!(matches!(answer(&ints(hostile)), Err(StoreError::BadReply(_))), "{hostile:?}");
        }
    }
}
