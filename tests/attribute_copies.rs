//! The macro keeps copies of the runtime's defaults and taxonomy (a proc-macro crate cannot
//! depend on the runtime). These tests include the macro's own source files and prove the
//! copies equal the runtime's, so they cannot drift apart unnoticed.
#![allow(dead_code)]

use llm_retry::{Backoff, ErrorKind, Jitter, Policy, Problem, Rule};
use std::time::Duration;

/// The macro's `duration::Nanos`, which `defaults.rs` names.
mod duration {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Nanos(pub u64);

    impl Nanos {
        pub const fn from_millis(ms: u64) -> Self {
            Nanos(ms * 1_000_000)
        }

        pub const fn from_secs(s: u64) -> Self {
            Nanos(s * 1_000_000_000)
        }
    }
}

mod defaults {
    include!("../retry-macros/src/defaults.rs");
}

mod kinds {
    include!("../retry-macros/src/kinds.rs");
}

fn d(n: duration::Nanos) -> Duration {
    Duration::from_nanos(n.0)
}

#[test]
fn the_macros_backoff_defaults_equal_the_runtimes() {
    use defaults::*;
    assert_eq!(Backoff::Fixed { delay: d(FIXED_DELAY) }, Backoff::DEFAULT_FIXED);
    assert_eq!(
        Backoff::Linear { start: d(LINEAR_START), increment: d(LINEAR_INCREMENT), max_delay: d(LINEAR_MAX) },
        Backoff::DEFAULT_LINEAR
    );
    let exp = Backoff::Exponential {
        initial: d(EXP_INITIAL),
        multiplier: EXP_MULTIPLIER,
        min_delay: d(EXP_MIN),
        max_delay: d(EXP_MAX),
    };
    assert_eq!(exp, Backoff::DEFAULT_EXPONENTIAL);
    assert_eq!(exp, Policy::DEFAULT.backoff());
    assert_eq!(
        Backoff::Decorrelated { base: d(DECORRELATED_BASE), max_delay: d(DECORRELATED_MAX) },
        Backoff::DEFAULT_DECORRELATED
    );
    assert_eq!(PROPORTIONAL_FACTOR, Jitter::DEFAULT_PROPORTIONAL_FACTOR);
    assert_eq!(MAX_ATTEMPTS, Policy::DEFAULT.max_attempts());
    assert_eq!(MAX_RULES, llm_retry::MAX_RULES);
}

#[test]
fn the_macros_rule_bound_is_the_runtimes() {
    let mut b = Policy::builder().retry_on(
        llm_retry::RetryOn::none()
            .status(500)
            .status(502)
            .status(503)
            .status(504)
            .status(529)
            .status(500 + 7)
            .status(508),
    );
    for s in [500, 502, 503, 504, 529, 507] {
        b = b.rule(Rule::status(s));
    }
    assert!(b.build().is_ok());
    assert_eq!(b.rule(Rule::status(508)).build().unwrap_err(), Problem::TooManyRules);
}

#[test]
fn the_macros_taxonomy_equals_the_runtimes() {
    let names: Vec<&str> = kinds::KINDS.iter().map(|k| k.0).collect();
    let runtime: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names, runtime);
    for (k, (name, reason, default)) in ErrorKind::ALL.into_iter().zip(kinds::KINDS) {
        assert_eq!(k.never_retryable_reason(), *reason, "{name}");
        assert_eq!(k.is_retryable_by_default(), *default, "{name}");
    }
    for status in 0..=1000u16 {
        assert_eq!(kinds::from_status(status), ErrorKind::from_status(status).name(), "{status}");
    }
}

#[test]
fn the_macro_rejects_exactly_the_statuses_the_runtime_rejects() {
    for status in 400..=599u16 {
        let macro_ok = kinds::status_never_retryable_reason(status).is_none();
        let runtime_ok = Policy::builder().retry_on(llm_retry::RetryOn::none().status(status)).build().is_ok();
        assert_eq!(macro_ok, runtime_ok, "{status}");
    }
}
