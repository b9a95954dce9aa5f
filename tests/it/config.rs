//! Policies and endpoint settings from configuration (`llm_retry::config`): TOML, JSON and the
//! environment read the attribute's keys; every invalid key's error names its path and what is
//! allowed; and any policy the builder accepts round-trips through TOML and JSON in human
//! units, while any it rejects the loader rejects with the same `Problem`.

use llm_retry::config::{self, EndpointConfig, PolicySpec, value::written};
use llm_retry::policy::Problem;
use llm_retry::{Backoff, ErrorKind, Jitter, Policy, RetryOn, Rule};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const CHAT: &str = r#"
max = 5
base = "250ms"
max_delay = "10s"
jitter = "equal"
on = ["RateLimited", "Overloaded", 503]
max_retry_after = "1m"

[[rule]]
on = "RateLimited"
max = 3
backoff = "fixed"
delay = "20s"

[limiter]
max_rate = 50.0

[budget]
ratio = 0.1
burst = 10
"#;

fn check_chat(c: &EndpointConfig) {
    let p = &c.policy;
    assert_eq!(p.max_attempts(), 5);
    assert_eq!(p.backoff().base(), Duration::from_millis(250));
    assert_eq!(p.backoff().cap(), Duration::from_secs(10));
    assert_eq!(p.jitter(), Jitter::Equal);
    assert!(p.retry_on().contains_kind(ErrorKind::Overloaded) && p.retry_on().contains_status(503));
    let (_, rule) = p.rule_for(ErrorKind::RateLimited, Some(429)).unwrap();
    assert_eq!(rule.attempt_limit(), Some(3));
    assert_eq!(p.backoff_for(Some(rule)).0, Backoff::Fixed { delay: Duration::from_secs(20) });
    assert_eq!(c.budget.unwrap().build().unwrap().burst(), 10);
    assert!(c.limiter.is_some() && c.adaptive.is_none());
}

#[test]
fn toml_json_and_the_environment_read_the_same_endpoint() {
    let from_toml = config::from_toml_str(CHAT).unwrap();
    check_chat(&from_toml);
    let json = r#"{"max": 5, "base": "250ms", "max_delay": "10s", "jitter": "equal",
        "on": ["RateLimited", "Overloaded", 503], "max_retry_after": "1m",
        "rule": [{"on": "RateLimited", "max": 3, "backoff": "fixed", "delay": "20s"}],
        "limiter": {"max_rate": 50.0}, "budget": {"ratio": 0.1, "burst": 10}}"#;
    check_chat(&config::from_json_str(json).unwrap());
    let env = [
        ("APP_RETRY_MAX", "5"),
        ("APP_RETRY_BASE", "250ms"),
        ("APP_RETRY_MAX_DELAY", "10s"),
        ("APP_RETRY_JITTER", "equal"),
        ("APP_RETRY_ON", "RateLimited,Overloaded,503"),
        ("APP_RETRY_MAX_RETRY_AFTER", "1m"),
        ("APP_RETRY_RULE", r#"[{"on": "RateLimited", "max": 3, "backoff": "fixed", "delay": "20s"}]"#),
        ("APP_RETRY_LIMITER_MAX_RATE", "50"),
        ("APP_RETRY_BUDGET_RATIO", "0.1"),
        ("APP_RETRY_BUDGET_BURST", "10"),
        ("HOME", "/home/app"),
    ];
    let from_env = config::from_env_vars("APP_RETRY_", env).unwrap();
    check_chat(&from_env);
    assert_eq!(format!("{from_env:?}"), format!("{from_toml:?}"));
}

#[test]
fn an_applications_own_configuration_holds_named_policies() {
    #[derive(Debug, serde::Deserialize)]
    struct App {
        #[allow(dead_code)]
        database: String,
        policies: BTreeMap<String, Policy>,
    }
    let app: App =
        config::parse_toml("database = \"pg://\"\n[policies.chat]\nmax = 6\n[policies.embed]\nmax = 2").unwrap();
    assert_eq!(app.policies["chat"].max_attempts(), 6);
    let e =
        config::parse_toml::<App>("database = \"\"\n[policies.chat]\nbase = \"2s\"\nmax_delay = \"1s\"").unwrap_err();
    assert_eq!(e.path(), "policies.chat.max_delay");
    assert_eq!(e.message(), Problem::MaxDelayBelowBase.message());
    let e = config::parse_toml::<App>("database = \"\"\n[policies.chat]\nmax = 3\n[[policies.chat.rule]]\non = 503\nmax = 2\n[[policies.chat.rule]]\non = \"Timeout\"\nmax = 0").unwrap_err();
    assert_eq!(e.to_string(), "policies.chat.rule[1].max: a rule's max_attempts must be at least 1");
}

/// Every key that can be wrong: the path the error names, and (part of) what it says is allowed.
#[test]
fn every_invalid_key_names_its_path_and_what_is_allowed() {
    let cases: &[(&str, &str, &str)] = &[
        // The rulebook's problems, with Problem's messages.
        ("max = 0", "max", Problem::ZeroAttempts.message()),
        ("backoff = \"fixed\"\ndelay = \"0s\"", "delay", Problem::ZeroDelay.message()),
        ("base = \"0s\"", "base", Problem::ZeroBase.message()),
        ("max_delay = \"0s\"", "max_delay", Problem::ZeroMaxDelay.message()),
        ("base = \"2s\"\nmax_delay = \"1s\"", "max_delay", Problem::MaxDelayBelowBase.message()),
        ("min_delay = \"30s\"", "min_delay", Problem::MinDelayAboveMaxDelay.message()),
        ("multiplier = 0.5", "multiplier", Problem::InvalidMultiplier.message()),
        ("multiplier = nan", "multiplier", Problem::InvalidMultiplier.message()),
        ("jitter = \"proportional\"\njitter_factor = 11.0", "jitter_factor", Problem::InvalidJitterFactor.message()),
        ("max_retry_after = \"0s\"", "max_retry_after", Problem::ZeroMaxRetryAfter.message()),
        ("on = [\"Timeout\", \"Auth\"]", "on[1]", "the credentials"),
        ("on = [404]", "on[0]", Problem::InvalidStatus(404).message()),
        ("[[rule]]\non = 503\nmax = 0", "rule[0].max", Problem::ZeroRuleAttempts.message()),
        ("max = 70000\n[[rule]]\non = 503\nmax = 65536", "rule[0].max", Problem::RuleAttemptsTooMany.message()),
        ("[[rule]]\non = 503\nmax = 5", "rule[0].max", Problem::RuleAttemptsAboveMax.message()),
        ("[[rule]]\non = 503\nmax = 2\n[[rule]]\non = 503\nmax = 3", "rule[1].on", Problem::DuplicateRule.message()),
        (
            "on = [\"Timeout\"]\n[[rule]]\non = \"RateLimited\"\nmax = 2",
            "rule[0].on",
            Problem::RuleForUnretried.message(),
        ),
        ("[[rule]]\non = 500\nmultiplier = 0.1", "rule[0].multiplier", Problem::InvalidMultiplier.message()),
        (&"[[rule]]\non = 500\nmax = 2\n".repeat(7), "rule", Problem::TooManyRules.message()),
        // Values that cannot be read.
        ("max = -5", "max", "0 to 4294967295"),
        ("max = 18446744073709551616", "max", "0 to 4294967295"),
        ("max = 99999999999", "max", "0 to 4294967295"),
        ("max = \"five\"", "max", "0 to 4294967295"),
        ("base = \"-5s\"", "base", "at least zero"),
        ("base = \"10 parsecs\"", "base", "use ms, s, m or h"),
        ("base = 500", "base", "\"500ms\""),
        ("max_delay = \"99999999999999999999h\"", "max_delay", "too long"),
        ("multiplier = \"double\"", "multiplier", "like 2.0"),
        ("backoff = \"expo\"", "backoff", "did you mean `exponential`?"),
        ("jitter = \"ful\"", "jitter", "did you mean `full`?"),
        ("retry_after = \"maybe\"", "retry_after", "true or false"),
        ("on = [\"RateLimit\"]", "on[0]", "did you mean `RateLimited`?"),
        ("on = [70000]", "on[0]", "statuses run from 100 to 599"),
        ("on = [503, 503]", "on", "listed twice"),
        ("on = true", "on", "a list of error kinds and HTTP statuses"),
        // Keys that do not apply, or do not exist.
        ("delay = \"1s\"", "delay", "only to `backoff = \"fixed\"`"),
        ("backoff = \"fixed\"\nbase = \"1s\"", "base", "the fixed backoff waits `delay`"),
        ("jitter_factor = 0.5", "jitter_factor", "only to `jitter = \"proportional\"`"),
        // What the attribute refuses, in its words.
        ("backoff = \"decorrelated\"\njitter = \"full\"", "jitter", "draws its own jitter"),
        ("backoff = \"none\"\njitter = \"equal\"", "jitter", "no delay to jitter"),
        (
            "[[rule]]\non = 503\nbackoff = \"decorrelated\"\njitter = \"equal\"",
            "rule[0].jitter",
            "draws its own jitter",
        ),
        ("on = []", "on", "`on = []` retries nothing"),
        ("[[rule]]\non = 503", "rule[0]", "`rule(503)` changes nothing"),
        ("max_dely = \"1s\"", "max_dely", "did you mean `max_delay`?"),
        ("max_attempts = 3", "max_attempts", "did you mean `max`?"),
        ("retries = 3", "retries", "`retries = 3` is `max = 4`"),
        ("deadline = \"1m\"", "deadline", "set it in the attribute or on the call"),
        ("notify = \"log\"", "notify", "names code"),
        ("[[rule]]\nmax = 2", "rule[0].on", "names the kind or status it applies to"),
        ("[[rule]]\non = 503\nretry_after = false", "rule[0].retry_after", "cannot be set per kind"),
        ("[[rule]]\non = 503\nmaxx = 2", "rule[0].maxx", "did you mean `max`?"),
        // The endpoint's sections.
        ("[budget]\nratio = 2.0", "budget.ratio", "0.0..=1.0"),
        ("[budget]\nburst = 0", "budget.burst", "1..=1000000"),
        ("[limiter]\nbeta = 0.0", "limiter.beta", "strictly between 0 and 1"),
        ("[limiter]\nscale = -1", "limiter.scale", "above zero"),
        ("[limiter]\nmin_rate = 0", "limiter.min_rate", "min_rate <= max_rate"),
        ("[adaptive]\nwindow = \"2d\"", "adaptive.window", "unknown unit"),
        ("[adaptive]\nwindow = \"25h\"", "adaptive.window", "at most a day"),
        ("[adaptive]\nmax_multiplier = 1000", "adaptive.max_multiplier", "1.0..=100.0"),
        ("[adaptive]\nwidow = \"1m\"", "adaptive.widow", "did you mean `window`?"),
        ("budgett = 1", "budgett", "did you mean `budget`?"),
    ];
    for (text, path, allowed) in cases {
        let e = config::from_toml_str(text).unwrap_err();
        assert_eq!(e.path(), *path, "{text:?}: {e}");
        assert!(e.message().contains(allowed), "{text:?}: {e}");
    }
}

#[test]
fn a_syntax_error_says_where() {
    let e = config::from_toml_str("max = 5\nbase = \"250ms\nmax_delay = 1").unwrap_err();
    assert_eq!((e.path(), e.line()), ("", Some(2)));
    let e = config::from_json_str("{\"max\": 5,\n \"base\": }").unwrap_err();
    assert_eq!(e.line(), Some(2));
}

// The round trip: a policy described by its parts, built by the builder and written as TOML.

/// A duration in whole milliseconds, zero included (the rulebook judges it).
fn dur() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        (1u64..100_000).prop_map(Duration::from_millis),
        (1u64..1_000_000_000).prop_map(Duration::from_nanos)
    ]
}

fn float(range: core::ops::Range<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![4 => range, 1 => Just(f64::NAN), 1 => Just(f64::INFINITY), 1 => Just(-1.0)]
}

fn backoff() -> impl Strategy<Value = Backoff> {
    prop_oneof![
        Just(Backoff::None),
        dur().prop_map(|delay| Backoff::Fixed { delay }),
        (dur(), dur(), dur()).prop_map(|(base, increment, max_delay)| Backoff::Linear { base, increment, max_delay }),
        (dur(), float(0.5..4.0), dur(), dur()).prop_map(|(base, multiplier, min_delay, max_delay)| {
            Backoff::Exponential { base, multiplier, min_delay, max_delay }
        }),
        (dur(), dur()).prop_map(|(base, max_delay)| Backoff::Decorrelated { base, max_delay }),
    ]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        float(0.0..12.0).prop_map(|factor| Jitter::Proportional { factor }),
        Just(Jitter::Decorrelated),
    ]
}

/// Statuses within 100..=599 (the rulebook judges which can be retried).
const STATUSES: &[u16] = &[200, 400, 401, 404, 408, 429, 500, 502, 503, 529];

#[derive(Debug, Clone, Copy)]
enum Target {
    Kind(ErrorKind),
    Status(u16),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        proptest::sample::select(ErrorKind::ALL.to_vec()).prop_map(Target::Kind),
        proptest::sample::select(STATUSES).prop_map(Target::Status),
    ]
}

/// A rule's parts: its target, `max`, backoff and jitter.
type RuleParts = (Target, Option<u32>, Option<Backoff>, Option<Jitter>);

#[derive(Debug, Clone)]
struct Parts {
    max: u32,
    backoff: Backoff,
    jitter: Jitter,
    on: Option<Vec<Target>>,
    rules: Vec<RuleParts>,
    retry_after: bool,
    max_retry_after: Duration,
}

fn parts() -> impl Strategy<Value = Parts> {
    let on = proptest::option::of(proptest::collection::vec(target(), 0..5));
    let rule =
        (target(), proptest::option::of(0u32..8), proptest::option::of(backoff()), proptest::option::of(jitter()));
    (0u32..8, backoff(), jitter(), on, proptest::collection::vec(rule, 0..8), any::<bool>(), dur()).prop_map(
        |(max, backoff, jitter, on, rules, retry_after, max_retry_after)| {
            // `on` lists each target once: a repeat is the file's mistake, not the rulebook's.
            let on = on.map(|mut v| {
                let mut seen = Vec::new();
                v.retain(|t| {
                    let key = format!("{t:?}");
                    let new = !seen.contains(&key);
                    seen.push(key);
                    new
                });
                v
            });
            Parts { max, backoff, jitter, on, rules, retry_after, max_retry_after }
        },
    )
}

impl Parts {
    fn builder(&self) -> llm_retry::PolicyBuilder {
        let mut b = Policy::builder()
            .max_attempts(self.max)
            .backoff(self.backoff)
            .jitter(self.jitter)
            .respect_retry_after(self.retry_after)
            .max_retry_after(self.max_retry_after);
        if let Some(on) = &self.on {
            b = b.retry_on(on.iter().fold(RetryOn::none(), |on, t| match *t {
                Target::Kind(k) => on.kind(k),
                Target::Status(s) => on.status(s),
            }));
        }
        for (t, max, backoff, jitter) in &self.rules {
            let mut r = match *t {
                Target::Kind(k) => Rule::kind(k),
                Target::Status(s) => Rule::status(s),
            };
            if let Some(m) = max {
                r = r.max_attempts(*m);
            }
            if let Some(b) = backoff {
                r = r.backoff(*b);
            }
            if let Some(j) = jitter {
                r = r.jitter(*j);
            }
            b = b.rule(r);
        }
        b
    }

    /// The same policy as the keys can say it, as the attribute's keys can: where the builder
    /// takes a combination the keys cannot express, its documented equivalent
    /// (`PolicySpec::from_policy`, `StrategyKeys::describing`):
    /// - a decorrelated backoff draws its own jitter: its scope's jitter is `Decorrelated`;
    /// - `backoff = "none"` has nothing to jitter: its scope's jitter is left to the default
    ///   (the policy's `Jitter::Full`, a rule's none);
    /// - a rule that changes nothing (no `max`, backoff or jitter) is left out;
    /// - an empty `on`, which retries nothing, is `max = 1` with the default retry set.
    ///
    /// Everything else stays as drawn, so the comparisons below still see every other part.
    fn equivalent(&self) -> Parts {
        let jitter_of = |backoff: Option<Backoff>, jitter: Option<Jitter>, default: Option<Jitter>| match backoff {
            Some(Backoff::Decorrelated { .. }) => Some(Jitter::Decorrelated),
            Some(Backoff::None) => default,
            _ => jitter,
        };
        let mut eq = self.clone();
        eq.jitter =
            jitter_of(Some(self.backoff), Some(self.jitter), Some(Policy::DEFAULT.jitter())).unwrap_or(self.jitter);
        eq.rules = self
            .rules
            .iter()
            .filter(|(_, max, backoff, jitter)| max.is_some() || backoff.is_some() || jitter.is_some())
            .map(|&(t, max, backoff, jitter)| (t, max, backoff, jitter_of(backoff, jitter, None)))
            .collect();
        if self.on.as_ref().is_some_and(Vec::is_empty) {
            (eq.max, eq.on) = (1, None);
        }
        eq
    }

    /// The same policy as a configuration file writes it, by hand: durations in human units.
    /// (`equivalent`'s parts only: the policy's jitter, the default with `backoff = "none"`,
    /// is then not written.)
    fn toml(&self) -> String {
        let mut out = format!("max = {}\n", self.max);
        out += &strategy(Some(self.backoff), (!matches!(self.backoff, Backoff::None)).then_some(self.jitter));
        if let Some(on) = &self.on {
            out += &format!("on = [{}]\n", on.iter().map(target_text).collect::<Vec<_>>().join(", "));
        }
        out +=
            &format!("retry_after = {}\nmax_retry_after = \"{}\"\n", self.retry_after, written(self.max_retry_after));
        for (t, max, backoff, jitter) in &self.rules {
            out += &format!("\n[[rule]]\non = {}\n", target_text(t));
            if let Some(m) = max {
                out += &format!("max = {m}\n");
            }
            out += &strategy(*backoff, *jitter);
        }
        out
    }
}

fn target_text(t: &Target) -> String {
    match t {
        Target::Kind(k) => format!("\"{}\"", k.name()),
        Target::Status(s) => s.to_string(),
    }
}

fn float_text(x: f64) -> String {
    match x {
        x if x.is_nan() => "nan".to_owned(),
        x if x.is_infinite() => (if x > 0.0 { "inf" } else { "-inf" }).to_owned(),
        x => format!("{x:?}"),
    }
}

fn strategy(backoff: Option<Backoff>, jitter: Option<Jitter>) -> String {
    let d = |k: &str, v: Duration| format!("{k} = \"{}\"\n", written(v));
    let mut out = String::new();
    match backoff {
        None => {}
        Some(Backoff::None) => out += "backoff = \"none\"\n",
        Some(Backoff::Fixed { delay }) => out += &("backoff = \"fixed\"\n".to_owned() + &d("delay", delay)),
        Some(Backoff::Linear { base, increment, max_delay }) => {
            out += &format!(
                "backoff = \"linear\"\n{}{}{}",
                d("base", base),
                d("increment", increment),
                d("max_delay", max_delay)
            )
        }
        Some(Backoff::Exponential { base, multiplier, min_delay, max_delay }) => {
            out += &format!(
                "backoff = \"exponential\"\n{}multiplier = {}\n{}{}",
                d("base", base),
                float_text(multiplier),
                d("min_delay", min_delay),
                d("max_delay", max_delay)
            )
        }
        Some(Backoff::Decorrelated { base, max_delay }) => {
            out += &format!("backoff = \"decorrelated\"\n{}{}", d("base", base), d("max_delay", max_delay))
        }
    }
    match jitter {
        None => {}
        Some(Jitter::None) => out += "jitter = \"none\"\n",
        Some(Jitter::Full) => out += "jitter = \"full\"\n",
        Some(Jitter::Equal) => out += "jitter = \"equal\"\n",
        Some(Jitter::Proportional { factor }) => {
            out += &format!("jitter = \"proportional\"\njitter_factor = {}\n", float_text(factor))
        }
        Some(Jitter::Decorrelated) => out += "jitter = \"decorrelated\"\n",
    }
    out
}

proptest! {
    /// What the builder accepts, the loader reads back equal, from the hand-written TOML and
    /// from the library's own TOML and JSON, modulo the equivalence the keys impose
    /// (`Parts::equivalent`: the library writes the same equivalent the test writes by hand);
    /// what the builder rejects, the loader rejects with the same problem, in the same rule,
    /// and Problem's message.
    #[test]
    fn the_loader_agrees_with_the_builder(parts in parts()) {
        let eq = parts.equivalent();
        let text = eq.toml();
        let spec: PolicySpec = config::parse_toml(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        if let Ok(built) = parts.builder().build() {
            // The equivalent of a valid policy is valid, and the library writes it.
            let want = format!("{:?}", eq.builder().build().unwrap());
            let toml = toml::to_string(&built).unwrap();
            prop_assert_eq!(format!("{:?}", config::from_toml_str(&toml).unwrap().policy), want.clone(), "{}", toml);
            let json = serde_json::to_string(&built).unwrap();
            prop_assert_eq!(format!("{:?}", config::from_json_str(&json).unwrap().policy), want, "{}", json);
        }
        match eq.builder().build() {
            Ok(built) => {
                prop_assert_eq!(format!("{:?}", spec.build().unwrap()), format!("{built:?}"), "{}", text);
            }
            Err(e) => {
                let got = spec.build().unwrap_err();
                prop_assert_eq!(got.problem(), Some(e.problem()), "{}", text);
                if let Some(i) = e.rule() {
                    prop_assert!(got.path().starts_with(&format!("rule[{i}]")), "{} {}", got, text);
                }
                let loaded = config::from_toml_str(&text).unwrap_err();
                prop_assert_eq!(loaded.message(), e.problem().to_string());
                prop_assert_eq!(loaded.path(), got.path());
            }
        }
    }
}

/// The pacer's settings read from a file, and a zero rate is a mistake named at its key.
#[test]
fn the_pacers_settings_come_from_configuration() {
    let c = config::from_toml_str(
        "[limiter]\nrequests_per_minute = 500\ntokens_per_minute = 30000\ninitial_window = 4\nmax_pause = \"90s\"",
    )
    .unwrap();
    let limiter = llm_retry::Limiter::from_config(c.limiter.unwrap().config("config::pacer").unwrap());
    let stats = limiter.stats();
    assert_eq!(stats.rate.map(|r| (r * 60.0).round()), Some(500.0), "{stats:?}");
    assert_eq!(stats.token_rate.map(|r| (r * 60.0).round()), Some(30_000.0), "{stats:?}");
    let e = config::from_toml_str("[limiter]\nrequests_per_minute = 0").unwrap_err();
    assert!(e.to_string().contains("requests_per_minute") && e.to_string().contains("above zero"), "{e}");
    let e = config::from_toml_str("[limiter]\ntokens_per_minute = -5").unwrap_err();
    assert!(e.to_string().contains("tokens_per_minute"), "{e}");
    let e = config::from_toml_str("[limiter]\nmax_pause = \"0s\"").unwrap_err();
    assert!(e.to_string().contains("max_pause"), "{e}");
}
