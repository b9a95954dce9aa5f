//! The policy the keys describe, checked by the rulebook: the macro builds the same
//! `PolicyBuilder` the expansion builds ([`settings`] is the one list both are made from), runs
//! its `problems()`, and reports each at the key that caused it, in the attribute's words.
//! A setting with a problem is then dropped, so the fn generated next to the errors compiles.
//!
//! A policy key with a plain value lives in this file alone: read in [`PolicyKeys::read`], a
//! [`Setting`] that the builder takes ([`builder`]) and the expansion writes
//! ([`Setting::tokens`]), and its problems reported in `report_policy`.

use super::{RetryConfig, RuleConfig, Spans, Strategy, Target, targets, values};
use crate::args::Entry;
use crate::ctxt::Ctxt;
use crate::policy::{backoff_tokens, duration_tokens, jitter_tokens, kind_tokens, rule_tokens};
use llm_retry_rules::duration::Written;
use llm_retry_rules::settings::{self, Kind, Plain, Value};
use llm_retry_rules::{
    Backoff, Jitter, MAX_RULE_ATTEMPTS, MAX_RULES, Policy, PolicyBuilder, Problem, RetryOn, Rule, keys,
};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, quote};
use std::time::Duration;

/// Where an error goes: a key's value (all its tokens), or a single span.
enum At<'a> {
    Value(&'a TokenStream),
    Span(Span),
}

impl At<'_> {
    /// `value`'s tokens if the key was written, else `fallback`.
    fn value_or(value: Option<&TokenStream>, fallback: Span) -> At<'_> {
        value.map_or(At::Span(fallback), At::Value)
    }

    fn report(self, cx: &mut Ctxt, message: impl std::fmt::Display) {
        match self {
            At::Value(tokens) => cx.error_spanned(tokens.to_token_stream(), message),
            At::Span(span) => cx.error_at(span, message),
        }
    }
}

/// The policy's keys read here, as written: `max`, `on`, and the rulebook's plain settings
/// ([`settings::PLAIN`]), each read by its kind of value. (The backoff and jitter keys are
/// read by `strategy`, the rules by `rules`.)
#[derive(Default)]
pub struct PolicyKeys {
    pub max: Option<u32>,
    pub on: Option<Vec<Target>>,
    /// The plain settings written, in the order written.
    pub plain: Vec<(&'static Plain, Value)>,
}

impl PolicyKeys {
    /// Whether [`read`](Self::read) takes `key`.
    pub fn takes(key: &str) -> bool {
        key == keys::MAX || key == keys::ON || settings::find(key).is_some()
    }

    /// Reads a key [`takes`](Self::takes) takes; a bad value is an error at it, and leaves
    /// the key unset.
    pub fn read(&mut self, cx: &mut Ctxt, entry: &Entry, key: &str) {
        match key {
            keys::MAX => self.max = values::attempts(cx, entry),
            keys::ON => self.on = targets::on_list(cx, entry),
            _ => {
                let Some(plain) = settings::find(key) else { return };
                let value = match plain.kind {
                    Kind::Flag => values::boolean(cx, entry, key).map(Value::Flag),
                    Kind::Duration => values::duration(cx, entry, key).map(Value::Duration),
                };
                self.plain.extend(value.map(|v| (plain, v)));
            }
        }
    }

    /// The value written for the plain setting `key`.
    pub fn plain(&self, key: &str) -> Option<Value> {
        self.plain.iter().find(|(p, _)| p.key == key).map(|(_, v)| *v)
    }

    /// Forgets the plain setting `key` (its value had a problem).
    fn drop_plain(&mut self, key: &str) {
        self.plain.retain(|(p, _)| p.key != key);
    }
}

/// One setting of the policy, in the order the builder is given them. Only what the user
/// wrote: everything else is the rulebook's default.
pub enum Setting<'a> {
    MaxAttempts(u32),
    Backoff(Backoff),
    Jitter(Jitter),
    RetryOn(&'a [Target]),
    Rule(&'a RuleConfig),
    /// A plain setting: its builder method takes its value as it is.
    Plain(&'static Plain, Value),
}

impl Setting<'_> {
    /// The builder call that makes this setting, for the expansion's `const` policy
    /// (`p` is the path to the runtime's `__private`).
    pub fn tokens(&self, p: &TokenStream) -> TokenStream {
        match *self {
            Setting::MaxAttempts(n) => {
                let n = Literal::u32_unsuffixed(n);
                quote!(.max_attempts(#n))
            }
            Setting::Backoff(backoff) => {
                let backoff = backoff_tokens(p, backoff);
                quote!(.backoff(#backoff))
            }
            Setting::Jitter(jitter) => {
                let jitter = jitter_tokens(p, jitter);
                quote!(.jitter(#jitter))
            }
            Setting::RetryOn(targets) => {
                let mut set = quote!(#p::RetryOn::none());
                for t in targets {
                    set.extend(match *t {
                        Target::Kind(k) => {
                            let k = kind_tokens(p, k.name());
                            quote!(.kind(#k))
                        }
                        Target::Status(s) => {
                            let s = Literal::u16_unsuffixed(s);
                            quote!(.status(#s))
                        }
                    });
                }
                quote!(.retry_on(#set))
            }
            Setting::Rule(r) => {
                let r = rule_tokens(p, r);
                quote!(.rule(#r))
            }
            Setting::Plain(plain, value) => {
                let method = Ident::new(plain.method, Span::call_site());
                let value = match value {
                    Value::Flag(yes) => quote!(#yes),
                    Value::Duration(d) => duration_tokens(p, d),
                };
                quote!(.#method(#value))
            }
        }
    }
}

/// The settings `config` makes.
pub fn settings(config: &RetryConfig) -> Vec<Setting<'_>> {
    let mut out = Vec::new();
    out.extend(config.policy.max.map(Setting::MaxAttempts));
    out.extend(config.strategy.backoff.map(Setting::Backoff));
    out.extend(config.strategy.jitter.map(Setting::Jitter));
    out.extend(config.policy.on.as_deref().map(Setting::RetryOn));
    out.extend(config.rules.iter().map(Setting::Rule));
    out.extend(config.policy.plain.iter().map(|&(plain, value)| Setting::Plain(plain, value)));
    out
}

/// The retry set `on = [...]` lists.
pub fn retry_on(targets: &[Target]) -> RetryOn {
    targets.iter().fold(RetryOn::none(), |on, t| match *t {
        Target::Kind(k) => on.kind(k),
        Target::Status(s) => on.status(s),
    })
}

/// The rulebook's rule for a `rule(...)`.
pub fn rule(r: &RuleConfig) -> Rule {
    let mut rule = match r.target {
        Target::Kind(k) => Rule::kind(k),
        Target::Status(s) => Rule::status(s),
    };
    if let Some(n) = r.max {
        rule = rule.max_attempts(n);
    }
    if let Some(b) = r.strategy.backoff {
        rule = rule.backoff(b);
    }
    if let Some(j) = r.strategy.jitter {
        rule = rule.jitter(j);
    }
    rule
}

/// The builder the settings describe: what the expansion's `const` builds.
pub fn builder(settings: &[Setting<'_>]) -> PolicyBuilder {
    settings.iter().fold(Policy::builder(), |b, s| match *s {
        Setting::MaxAttempts(n) => b.max_attempts(n),
        Setting::Backoff(backoff) => b.backoff(backoff),
        Setting::Jitter(jitter) => b.jitter(jitter),
        Setting::RetryOn(targets) => b.retry_on(retry_on(targets)),
        Setting::Rule(r) => b.rule(rule(r)),
        Setting::Plain(plain, value) => (plain.set)(b, value),
    })
}

/// Reports every problem the rulebook finds in `config`, and drops the settings at fault.
pub fn check(cx: &mut Ctxt, config: &mut RetryConfig) {
    let problems = builder(&settings(config)).problems();
    // Rules to drop, by index; taken out last so the indices stay valid while reporting.
    let mut drop_rules = Vec::new();
    for e in &problems {
        let problem = e.problem();
        match e.rule() {
            None => report_policy(cx, config, problem),
            Some(i) => {
                if report_rule(cx, config, i, problem) {
                    drop_rules.push(i);
                }
            }
        }
    }
    if problems.iter().any(|e| e.problem() == Problem::TooManyRules) {
        config.rules.truncate(MAX_RULES);
    }
    drop_rules.sort_unstable();
    drop_rules.dedup();
    for i in drop_rules.into_iter().rev() {
        config.rules.remove(i);
    }
    // What is left is valid; should anything not be, fall back to the defaults rather than
    // generate a policy that fails to build.
    if !builder(&settings(config)).problems().is_empty() {
        config.policy = PolicyKeys::default();
        config.strategy = Strategy::default();
        config.rules.clear();
    }
}

/// A problem with the attribute's own keys.
fn report_policy(cx: &mut Ctxt, config: &mut RetryConfig, problem: Problem) {
    let spans = &config.strategy.spans;
    match problem {
        Problem::ZeroAttempts => {
            At::value_or(spans.value(keys::MAX), Span::call_site()).report(cx, zero_attempts());
            config.policy.max = None;
        }
        Problem::ZeroMaxRetryAfter => {
            At::value_or(spans.value(keys::MAX_RETRY_AFTER), Span::call_site()).report(
                cx,
                "a zero `max_retry_after` would fail every call at once; to ignore Retry-After, write `retry_after = false` instead",
            );
            config.policy.drop_plain(keys::MAX_RETRY_AFTER);
        }
        Problem::TooManyRules => {
            let span = config.rules.get(MAX_RULES).map_or_else(Span::call_site, |r| r.key_span);
            cx.error_at(
                span,
                format!(
                    "a policy holds at most {MAX_RULES} rules; merge rules that share settings into `on`, or drop one"
                ),
            );
        }
        Problem::InvalidJitterFactor => {
            At::value_or(spans.value(keys::JITTER_FACTOR), Span::call_site()).report(cx, jitter_factor());
            config.strategy.jitter = None;
        }
        Problem::NeverRetryableKind(_) | Problem::InvalidStatus(_) => {
            // Each item of `on` was checked with the same rule as it was read.
            cx.error_at(spans.key_or_site(keys::ON), problem.to_string());
            config.policy.on = None;
        }
        // A plain setting's problem, at its value, in the rulebook's words.
        _ if settings::find(problem.field().key()).is_some() => {
            let key = problem.field().key();
            At::value_or(spans.value(key), Span::call_site()).report(cx, problem.message());
            config.policy.drop_plain(key);
        }
        _ => {
            report_backoff(cx, &config.strategy, problem);
            config.strategy.backoff = None;
        }
    }
}

/// A problem with rule `i`; `true` when the whole rule has to go.
fn report_rule(cx: &mut Ctxt, config: &mut RetryConfig, i: usize, problem: Problem) -> bool {
    let top = config.policy.max.unwrap_or(Policy::DEFAULT.max_attempts());
    let on_given = config.policy.on.is_some();
    let Some(rule) = config.rules.get_mut(i) else { return false };
    let spans = rule.strategy.spans.clone();
    let max_at = || At::value_or(spans.value(keys::MAX), rule.target_span);
    let target = rule.target;
    match problem {
        Problem::ZeroRuleAttempts => {
            max_at().report(cx, zero_attempts());
            rule.max = None;
            false
        }
        Problem::RuleAttemptsTooMany => {
            max_at().report(
                cx,
                format!(
                    "a rule counts at most {MAX_RULE_ATTEMPTS} attempts of its kind; bound longer retrying with `deadline = \"2m\"`"
                ),
            );
            rule.max = None;
            false
        }
        Problem::RuleAttemptsAboveMax => {
            let n = rule.max.unwrap_or_default();
            let source = if config.policy.max.is_some() { "" } else { " (the default)" };
            max_at().report(
                cx,
                format!("`max = {n}` here exceeds the call's `max = {top}`{source}, which stops first; raise the attribute's `max` or lower this one"),
            );
            rule.max = None;
            false
        }
        Problem::InvalidJitterFactor => {
            At::value_or(spans.value(keys::JITTER_FACTOR), rule.target_span).report(cx, jitter_factor());
            rule.strategy.jitter = None;
            false
        }
        Problem::DuplicateRule => {
            cx.error_at(rule.target_span, format!("a second rule for `{target}`; merge the two rules"));
            true
        }
        Problem::RuleForUnretried => {
            let fix = if on_given {
                format!("add `{target}` to `on`, or remove this rule")
            } else {
                "the default policy does not retry it; list it with `on = [...]`, or remove this rule".to_owned()
            };
            cx.error_at(
                rule.target_span,
                format!("`rule({target}, ...)` overrides a failure that is never retried; {fix}"),
            );
            true
        }
        _ => {
            report_backoff(cx, &rule.strategy, problem);
            rule.strategy.backoff = None;
            false
        }
    }
}

fn zero_attempts() -> &'static str {
    "`max` counts attempts, the first included, and must be at least 1; use `max = 1` to disable retries"
}

fn jitter_factor() -> String {
    format!(
        "`jitter_factor` is how far above the delay the jitter may go, as a fraction: a number from 0.0 to {:.1}, like 0.25",
        llm_retry_rules::MAX_JITTER_FACTOR
    )
}

/// A problem with one scope's backoff, at the key that caused it (a defaulted value's problem
/// lands on the key that was written).
fn report_backoff(cx: &mut Ctxt, strategy: &Strategy, problem: Problem) {
    let spans: &Spans = &strategy.spans;
    let Some(backoff) = strategy.backoff else { return };
    let at = |key: &str| spans.value(key).map(At::Value);
    let (base, max_delay, min_delay) = match backoff {
        Backoff::Linear { base, max_delay, .. } => (base, max_delay, Duration::ZERO),
        Backoff::Exponential { base, min_delay, max_delay, .. } => (base, max_delay, min_delay),
        Backoff::Decorrelated { base, max_delay } => (base, max_delay, Duration::ZERO),
        Backoff::None | Backoff::Fixed { .. } => (Duration::ZERO, Duration::ZERO, Duration::ZERO),
    };
    let (span, message) = match problem {
        Problem::ZeroDelay => (at(keys::DELAY), "a zero `delay` retries at once; say so with `backoff = \"none\"`".to_owned()),
        Problem::ZeroBase => (
            at(keys::BASE),
            "a zero `base` never grows, so every retry is immediate; use a base like \"500ms\", or `backoff = \"none\"`"
                .to_owned(),
        ),
        Problem::ZeroMaxDelay => (
            at(keys::MAX_DELAY),
            "a zero `max_delay` caps every delay at zero; use a cap like \"20s\", or `backoff = \"none\"`".to_owned(),
        ),
        Problem::MaxDelayBelowBase => match at(keys::MAX_DELAY) {
            Some(at) => (
                Some(at),
                format!(
                    "`max_delay = \"{}\"` is below `base = \"{}\"`; the cap must be at least the first delay",
                    Written(max_delay),
                    Written(base)
                ),
            ),
            None => (
                at(keys::BASE),
                format!(
                    "`base = \"{}\"` is above the default `max_delay` of {}; set `max_delay` too",
                    Written(base),
                    Written(max_delay)
                ),
            ),
        },
        Problem::MinDelayAboveMaxDelay => (
            at(keys::MIN_DELAY),
            format!(
                "`min_delay = \"{}\"` is above `max_delay = \"{}\"`; the floor must be at most the cap",
                Written(min_delay),
                Written(max_delay)
            ),
        ),
        Problem::InvalidMultiplier => {
            let m = match backoff {
                Backoff::Exponential { multiplier, .. } => multiplier,
                _ => f64::NAN,
            };
            (
                at(keys::MULTIPLIER),
                format!(
                    "`multiplier = {m:?}` must be a finite number of at least 1.0, like 2.0; below 1.0 the delays shrink (for equal delays use `backoff = \"fixed\"`)"
                ),
            )
        }
        other => (None, other.to_string()),
    };
    let at = span.unwrap_or_else(|| At::Span(spans.key(keys::BACKOFF).unwrap_or_else(Span::call_site)));
    at.report(cx, message);
}
