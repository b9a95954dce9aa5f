//! The shared pacer's side of the wire: an [`Ask`] or a [`Report`] as the arguments of
//! `scripts/pacer.lua`, and its reply as an [`Admission`].
//!
//! Every number is made safe before it leaves: durations are capped at a week
//! ([`MAX_SPAN`](crate::reply::MAX_SPAN)), rates that are not finite and positive count as not
//! given, so the script never computes with a NaN it did not make itself.

use crate::reply::{self, bad, to_micros};
use llm_retry_runtime::store::{Admission, Ask, Report, StoreError, Tuning};
use redis::Value;
use std::time::Duration;

/// The pacer script, run by EVALSHA (by EVAL when a server lacks it).
pub(crate) const SOURCE: &str = concat!(include_str!("../scripts/common.lua"), include_str!("../scripts/pacer.lua"));

/// What a report asks of the store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReportCall {
    /// Run the pacer script with these arguments.
    Script(Vec<String>),
    /// Remove this lease from the leases (a plain `ZREM`).
    Release(u64),
    /// Nothing to tell (a token correction that is not a number).
    Nothing,
}

/// The script's arguments for an admission.
pub(crate) fn admit_args(ask: &Ask<'_>) -> Vec<String> {
    let tokens = if ask.tokens.is_finite() && ask.tokens > 0.0 { ask.tokens } else { 0.0 };
    let max_wait = ask.max_wait.map_or(-1, |d| i128::from(to_micros(d)));
    let lease = ask.lease.map_or(0, |d| to_micros(d).max(1));
    let max_in_flight = ask.tuning.max_in_flight.unwrap_or(0);
    let mut args = vec![
        "admit".to_owned(),
        ask.worker.to_string(),
        tokens.to_string(),
        max_wait.to_string(),
        lease.to_string(),
        max_in_flight.to_string(),
    ];
    push_tuning(&mut args, &ask.tuning);
    args
}

/// What a report becomes on the wire.
pub(crate) fn report_call(report: &Report) -> Result<ReportCall, StoreError> {
    Ok(match *report {
        Report::Throttle { retry_after, tuning } => {
            let mut args = vec!["throttle".to_owned(), optional(retry_after)];
            push_tuning(&mut args, &tuning);
            ReportCall::Script(args)
        }
        Report::Limits {
            requests_per_second,
            tokens_per_second,
            remaining_tokens,
            pause,
            tuning,
            // A request bucket of one (strict spacing) banks nothing for "remaining" to cap.
            remaining_requests: _,
        } => {
            let remaining = remaining_tokens.map_or(-1, i128::from);
            let mut args = vec![
                "limits".to_owned(),
                rate(requests_per_second).to_string(),
                rate(tokens_per_second).to_string(),
                remaining.to_string(),
                optional(pause),
            ];
            push_tuning(&mut args, &tuning);
            ReportCall::Script(args)
        }
        Report::Tokens { delta } if delta.is_finite() && delta != 0.0 => {
            ReportCall::Script(vec!["tokens".to_owned(), delta.to_string()])
        }
        Report::Tokens { .. } => ReportCall::Nothing,
        Report::Abandon { slots, tuning } if slots > 0 => {
            let mut args = vec!["abandon".to_owned(), slots.to_string()];
            push_tuning(&mut args, &tuning);
            ReportCall::Script(args)
        }
        Report::Abandon { .. } => ReportCall::Nothing,
        Report::Release { lease } => ReportCall::Release(lease),
        _ => return Err(StoreError::Unavailable("a report this store does not know".to_owned())),
    })
}

/// The script's answer to an admission.
pub(crate) fn admission(v: &Value) -> Result<Admission, StoreError> {
    let r = reply::ints(v, 2, 5)?;
    match (r[0], r.len()) {
        (0, 5) => Ok(Admission::Go {
            wait: reply::micros(r[1], "the wait")?,
            lease: match reply::count(r[2], "the lease")? {
                0 => None,
                id => Some(id),
            },
            rate: match reply::count(r[3], "the rate")? {
                0 => None,
                #[allow(clippy::cast_precision_loss)] // at most 2^53: exact
                milli => Some(milli as f64 / 1000.0),
            },
            fleet: fleet(r[4])?,
        }),
        (1, 2) => Ok(Admission::Refused { wait: reply::micros(r[1], "the wait")? }),
        (2, 3) => Ok(Admission::Busy { retry_in: reply::micros(r[1], "the retry-in")?, fleet: fleet(r[2])? }),
        _ => Err(bad("an admission that is neither go, refused nor busy")),
    }
}

/// The script's answer to a report: an acknowledgement.
pub(crate) fn acknowledged(v: &Value) -> Result<(), StoreError> {
    match reply::ints(v, 1, 1)?.as_slice() {
        [0] => Ok(()),
        _ => Err(bad("a report's acknowledgement")),
    }
}

fn fleet(i: i64) -> Result<u32, StoreError> {
    let n = reply::count(i, "the fleet")?;
    // The script counts at least this worker; more than u32::MAX workers is not a fleet.
    u32::try_from(n.max(1)).map_err(|_| bad("the fleet"))
}

/// A rate as sent: 0 for none, for anything not finite and positive.
fn rate(r: Option<f64>) -> f64 {
    r.filter(|r| r.is_finite() && *r > 0.0).unwrap_or(0.0)
}

fn optional(d: Option<Duration>) -> String {
    d.map_or(-1, |d| i128::from(to_micros(d))).to_string()
}

/// The tuning, in the order the script reads it: initial rate, beta, scale, min rate, max
/// rate, configured requests/s (0: none), configured tokens/s (0: none), max pause. A
/// setting that is not a finite positive number is sent as its default (and the script
/// checks again).
fn push_tuning(args: &mut Vec<String>, t: &Tuning) {
    let d = Tuning::DEFAULT;
    let positive = |x: f64, default: f64| if x.is_finite() && x > 0.0 { x } else { default };
    let beta = if t.beta.is_finite() && t.beta > 0.0 && t.beta <= 1.0 { t.beta } else { d.beta };
    args.extend([
        positive(t.initial_rate, d.initial_rate).to_string(),
        beta.to_string(),
        positive(t.scale, d.scale).to_string(),
        positive(t.min_rate, d.min_rate).to_string(),
        positive(t.max_rate, d.max_rate).to_string(),
        rate(t.requests_per_second).to_string(),
        rate(t.tokens_per_second).to_string(),
        to_micros(t.max_pause).to_string(),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64]) -> Value {
        Value::Array(v.iter().map(|i| Value::Int(*i)).collect())
    }

    #[test]
    fn an_ask_is_sent_in_the_scripts_order() {
        let mut tuning = Tuning::DEFAULT;
        tuning.requests_per_second = Some(100.0);
        tuning.max_in_flight = Some(4);
        tuning.beta = f64::NAN;
        let ask = Ask {
            endpoint: "e",
            worker: 42,
            tokens: f64::INFINITY,
            max_wait: Some(Duration::from_millis(250)),
            lease: Some(Duration::from_secs(30)),
            tuning,
        };
        assert_eq!(
            admit_args(&ask),
            [
                "admit",
                "42",
                "0",
                "250000",
                "30000000",
                "4",
                "10",
                "0.8",
                "0.2",
                "0.5",
                "1000000",
                "100",
                "0",
                "120000000"
            ]
        );
        let none = Ask { max_wait: None, lease: None, tokens: 12.5, ..ask };
        assert_eq!(admit_args(&none)[2..5], ["12.5", "-1", "0"]);
    }

    #[test]
    fn reports_are_sent_in_the_scripts_order() {
        let t = Tuning::DEFAULT;
        let throttle = Report::Throttle { retry_after: Some(Duration::from_millis(1500)), tuning: t };
        let ReportCall::Script(args) = report_call(&throttle).unwrap() else { panic!("a script call") };
        assert_eq!(args[..2], ["throttle", "1500000"]);
        assert_eq!(args.len(), 10);
        let limits = Report::Limits {
            requests_per_second: Some(f64::NAN),
            tokens_per_second: Some(2000.0),
            remaining_requests: Some(3),
            remaining_tokens: Some(500),
            pause: None,
            tuning: t,
        };
        let ReportCall::Script(args) = report_call(&limits).unwrap() else { panic!("a script call") };
        assert_eq!(args[..5], ["limits", "0", "2000", "500", "-1"]);
        assert_eq!(report_call(&Report::Tokens { delta: f64::NAN }), Ok(ReportCall::Nothing));
        assert_eq!(
            report_call(&Report::Tokens { delta: -3.0 }),
            Ok(ReportCall::Script(vec!["tokens".into(), "-3".into()]))
        );
        assert_eq!(report_call(&Report::Release { lease: 9 }), Ok(ReportCall::Release(9)));
    }

    #[test]
    fn admissions_are_read_and_checked() {
        assert_eq!(
            admission(&ints(&[0, 10_000, 3, 2_500, 4])),
            Ok(Admission::Go { wait: Duration::from_millis(10), lease: Some(3), rate: Some(2.5), fleet: 4 })
        );
        assert_eq!(
            admission(&ints(&[0, 0, 0, 0, 0])),
            Ok(Admission::Go { wait: Duration::ZERO, lease: None, rate: None, fleet: 1 })
        );
        assert_eq!(admission(&ints(&[1, 7])), Ok(Admission::Refused { wait: Duration::from_micros(7) }));
        assert_eq!(
            admission(&ints(&[2, 1_000, 3])),
            Ok(Admission::Busy { retry_in: Duration::from_millis(1), fleet: 3 })
        );
        for hostile in [&[0, 1, 2][..], &[1, 2, 3], &[3, 0], &[0, -1, 0, 0, 1], &[0, 0, 0, 0, i64::MAX], &[1, i64::MAX]]
        {
            assert!(matches!(admission(&ints(hostile)), Err(StoreError::BadReply(_))), "{hostile:?}");
        }
        assert!(admission(&Value::Nil).is_err());
        assert_eq!(acknowledged(&ints(&[0])), Ok(()));
        assert!(acknowledged(&ints(&[1])).is_err());
        assert!(acknowledged(&Value::Okay).is_err());
    }
}
