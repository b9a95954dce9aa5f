use super::*;
use crate::backoff::{Backoff, Jitter};
use std::time::Duration;

fn toml(s: &str) -> Result<Policy, String> {
    ::toml::from_str::<Policy>(s).map_err(|e| e.message().to_owned())
}

fn spec_err(s: &str) -> SpecError {
    ::toml::from_str::<PolicySpec>(s).unwrap().build().unwrap_err()
}

#[test]
fn reads_like_the_attribute() {
    let p = toml(
        r#"
        max = 5
        base = "250ms"
        max_delay = "10s"
        jitter = "equal"
        on = ["RateLimited", 503]
        max_retry_after = "1m"

        [[rule]]
        on = "RateLimited"
        max = 3
        backoff = "fixed"
        delay = "60s"
        "#,
    )
    .unwrap();
    assert_eq!(p.max_attempts(), 5);
    let ms = Duration::from_millis;
    assert_eq!(
        p.backoff(),
        Backoff::Exponential { base: ms(250), multiplier: 2.0, min_delay: Duration::ZERO, max_delay: ms(10_000) }
    );
    assert_eq!(p.jitter(), Jitter::Equal);
    assert!(p.retry_on().contains_status(503) && !p.retry_on().contains_kind(ErrorKind::Timeout));
    let (_, rule) = p.rule_for(ErrorKind::RateLimited, Some(429)).unwrap();
    assert_eq!(rule.attempt_limit(), Some(3));
    assert_eq!(p.backoff_for(Some(rule)).0, Backoff::Fixed { delay: ms(60_000) });
    assert_eq!(p.max_retry_after(), ms(60_000));
}

#[test]
fn rulebook_problems_name_the_key() {
    let e = spec_err("max = 0");
    assert_eq!((e.path(), e.problem()), ("max", Some(Problem::ZeroAttempts)));
    let e = spec_err("base = \"2s\"\nmax_delay = \"1s\"");
    assert_eq!((e.path(), e.problem()), ("max_delay", Some(Problem::MaxDelayBelowBase)));
    let e = spec_err("on = [\"RateLimited\", \"Auth\"]");
    assert_eq!((e.path(), e.problem()), ("on[1]", Some(Problem::NeverRetryableKind(ErrorKind::Auth))));
    let e = spec_err("on = [503, 401]");
    assert_eq!(e.path(), "on[1]");
    let e = spec_err("max = 3\n[[rule]]\non = 503\nmax = 2\n[[rule]]\non = \"RateLimited\"\nmax = 4");
    assert_eq!((e.path(), e.problem()), ("rule[1].max", Some(Problem::RuleAttemptsAboveMax)));
    let e = spec_err("[[rule]]\non = \"Timeout\"\nbackoff = \"linear\"\nmax_delay = \"0s\"");
    assert_eq!(e.path(), "rule[0].max_delay");
    let e = spec_err("[[rule]]\non = 503\nmax = 2\n[[rule]]\non = 503\nmax = 3");
    assert_eq!((e.path(), e.problem()), ("rule[1].on", Some(Problem::DuplicateRule)));
    let e = spec_err("multiplier = nan");
    assert_eq!(e.problem(), Some(Problem::InvalidMultiplier));
    assert!(e.to_string().starts_with("multiplier: the multiplier must be a finite number"), "{e}");
}

#[test]
fn keys_that_do_not_apply_are_errors() {
    let e = spec_err("delay = \"1s\"");
    assert_eq!(e.path(), "delay");
    assert!(e.message().contains("its first delay is `base`"), "{e}");
    let e = spec_err("jitter_factor = 0.5");
    assert!(e.message().contains("only to `jitter = \"proportional\"`"), "{e}");
    let e = spec_err("[[rule]]\non = 503\nbackoff = \"fixed\"\nbase = \"1s\"");
    assert_eq!(e.path(), "rule[0].base");
}

#[test]
fn unknown_keys_and_values_suggest_the_closest() {
    assert!(toml("max_dely = \"1s\"").unwrap_err().contains("did you mean `max_delay`?"));
    assert!(toml("retries = 3").unwrap_err().contains("`retries = 3` is `max = 4`"));
    assert!(toml("deadline = \"1m\"").unwrap_err().contains("call's time limit"));
    assert!(toml("backoff = \"expo\"").unwrap_err().contains("did you mean `exponential`?"));
    assert!(toml("on = [\"RateLimit\"]").unwrap_err().contains("did you mean `RateLimited`?"));
    assert!(toml("[[rule]]\nmax = 2").unwrap_err().contains("names the kind or status"));
    assert!(toml("[[rule]]\non = 503\ndeadline = \"1s\"").unwrap_err().contains("cannot be set per kind"));
    assert!(toml("on = [503, 503]").unwrap_err().contains("listed twice"));
}

#[test]
fn absurd_values_are_errors_not_panics() {
    for bad in [
        "max = -1",
        "max = 99999999999",
        "max = 1.5",
        "base = \"-5s\"",
        "base = \"10 parsecs\"",
        "base = 500",
        "base = \"99999999999999999999h\"",
        "multiplier = \"x\"",
        "on = 70000",
        "retry_after = \"maybe\"",
        "max_retry_after = \"0s\"",
        "jitter = \"proportional\"\njitter_factor = -1.0",
        "jitter = \"proportional\"\njitter_factor = inf",
    ] {
        assert!(toml(bad).is_err(), "{bad}");
    }
}

#[test]
fn json_reads_the_same_keys() {
    let p: Policy =
        serde_json::from_str(r#"{"max": 2, "backoff": "fixed", "delay": "1.5s", "on": ["Timeout", 502]}"#).unwrap();
    assert_eq!(p.backoff(), Backoff::Fixed { delay: Duration::from_millis(1500) });
    let e = serde_json::from_str::<Policy>(r#"{"max": 2, "max": 3}"#).unwrap_err();
    assert!(e.to_string().contains("`max` is set twice"), "{e}");
}

#[test]
fn a_written_policy_reads_back_the_same() {
    let ms = Duration::from_millis;
    let decorrelated = Backoff::Decorrelated { base: ms(5), max_delay: ms(50) };
    let policy = |rule_jitter: Option<Jitter>| {
        let mut rule = Rule::kind(ErrorKind::RateLimited).backoff(decorrelated);
        if let Some(j) = rule_jitter {
            rule = rule.jitter(j);
        }
        Policy::builder()
            .max_attempts(7)
            .backoff(Backoff::Linear { base: Duration::ZERO, increment: ms(1500), max_delay: ms(9000) })
            .jitter(Jitter::Proportional { factor: 0.3 })
            .retry_on(RetryOn::none().kind(ErrorKind::RateLimited).kind(ErrorKind::Server).status(503))
            .rule(Rule::status(503).max_attempts(2))
            .rule(rule)
            .respect_retry_after(false)
            .build()
            .unwrap()
    };
    let p = policy(None);
    // A decorrelated backoff draws its own jitter: the keys say so, as the attribute's do.
    let want = format!("{:?}", policy(Some(Jitter::Decorrelated)));
    let text = ::toml::to_string(&p).unwrap();
    assert!(text.contains("increment = \"1.5s\""), "{text}");
    assert_eq!(format!("{:?}", toml(&text).unwrap()), want);
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(format!("{:?}", serde_json::from_str::<Policy>(&json).unwrap()), want);
}

/// What the keys cannot say, as the attribute cannot, is written as its equivalent; what the
/// attribute refuses, the loader refuses in its words.
#[test]
fn what_the_keys_cannot_say_is_written_as_its_equivalent() {
    let b = Policy::builder;
    let read_back = |p: &Policy| toml(&::toml::to_string(p).unwrap()).unwrap();
    let p = read_back(&b().backoff(Backoff::DEFAULT_DECORRELATED).jitter(Jitter::Equal).build().unwrap());
    assert_eq!((p.backoff(), p.jitter()), (Backoff::DEFAULT_DECORRELATED, Jitter::Decorrelated));
    let p = read_back(&b().backoff(Backoff::None).jitter(Jitter::Equal).build().unwrap());
    assert_eq!((p.backoff(), p.jitter()), (Backoff::None, Policy::DEFAULT.jitter()));
    let p = read_back(&b().rule(Rule::kind(ErrorKind::RateLimited)).build().unwrap());
    assert!(p.rule_for(ErrorKind::RateLimited, None).is_none());
    let p = read_back(&b().retry_on(RetryOn::none()).build().unwrap());
    assert_eq!(p.max_attempts(), 1);

    let refused = [
        ("backoff = \"decorrelated\"\njitter = \"full\"", "draws its own jitter"),
        ("backoff = \"none\"\njitter = \"equal\"", "there is no delay to jitter"),
        ("on = []", keys::EMPTY_ON),
        ("[[rule]]\non = \"RateLimited\"", "`rule(RateLimited)` changes nothing"),
    ];
    for (text, message) in refused {
        assert!(toml(text).unwrap_err().contains(message), "{text}: {:?}", toml(text));
    }
    assert!(toml("backoff = \"decorrelated\"\njitter = \"decorrelated\"").is_ok());
    assert!(toml("backoff = \"none\"\njitter = \"none\"").is_ok());
}
