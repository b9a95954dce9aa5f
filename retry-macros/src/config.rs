//! Phase 2: the raw entries, validated into a typed [`RetryConfig`].
//!
//! Every misconfiguration is reported at the offending token with the fix; all of them in
//! one build.

use crate::args::{Entry, Value};
use crate::ctxt::Ctxt;
use crate::defaults;
use crate::duration::{self, Nanos};
use crate::keys;
use crate::kinds;
use crate::suggest;
use proc_macro2::Span;
use std::collections::HashMap;
use syn::Lit;

/// A validated attribute.
#[derive(Default)]
pub struct RetryConfig {
    pub max: Option<u32>,
    pub strategy: Strategy,
    pub on: Option<Vec<Target>>,
    pub rules: Vec<RuleConfig>,
    pub deadline: Option<Nanos>,
    pub attempt_timeout: Option<Nanos>,
    pub retry_after: Option<bool>,
    pub max_retry_after: Option<Nanos>,
    pub validate: Option<syn::Path>,
    pub notify: Option<syn::Path>,
    pub when: Option<syn::Path>,
    pub name: Option<syn::LitStr>,
    pub krate: Option<syn::Path>,
    /// `limiter = PATH`: the user's `static Limiter`.
    pub limiter: Option<syn::Path>,
    /// `budget = PATH`: the user's `static Budget`.
    pub budget: Option<syn::Path>,
    /// `adaptive = true | false | PATH`.
    pub adaptive: Option<Adaptive>,
    /// `stream = "..."`: the mode, as written (already checked to be one of `keys::STREAM_MODES`).
    pub stream: Option<syn::LitStr>,
    pub first_chunk_timeout: Option<Nanos>,
    pub idle_timeout: Option<Nanos>,
}

/// `adaptive = ...`: off, a window of the fn's own, or a shared `static`.
pub enum Adaptive {
    Off,
    Own,
    Shared(syn::Path),
}

/// A backoff and a jitter, each only when the user set something about it.
#[derive(Default)]
pub struct Strategy {
    pub backoff: Option<BackoffConfig>,
    pub jitter: Option<JitterConfig>,
}

/// A fully specified backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BackoffConfig {
    None,
    Fixed { delay: Nanos },
    Linear { start: Nanos, increment: Nanos, max_delay: Nanos },
    Exponential { initial: Nanos, multiplier: f64, min_delay: Nanos, max_delay: Nanos },
    Decorrelated { base: Nanos, max_delay: Nanos },
}

/// A fully specified jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JitterConfig {
    None,
    Full,
    Equal,
    Proportional { factor: f64 },
    Decorrelated,
}

/// A kind or an HTTP status, as listed in `on` or named by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Kind(String),
    Status(u16),
}

/// A per-kind override.
pub struct RuleConfig {
    pub target: Target,
    pub max: Option<u32>,
    pub strategy: Strategy,
}

/// Validates the attribute's entries. Errors go to `cx`; the returned config holds whatever
/// was valid.
pub fn validate(cx: &mut Ctxt, entries: &[Entry]) -> RetryConfig {
    let mut config = RetryConfig::default();
    let mut seen = Seen::default();
    let mut strategy = StrategyKeys::default();
    let mut rules = Vec::new();
    for entry in entries {
        let key = entry.key_name();
        if entry.key.is_none() {
            cx.error_spanned(
                &entry.tokens,
                "expected `key = value`, like `max = 5` or `on = [RateLimited]`; see the keys in the `llm_retry` docs",
            );
            continue;
        }
        if !keys::TOP.contains(&key.as_str()) {
            unknown_key(cx, entry, &key, keys::TOP, "");
            continue;
        }
        if key == keys::RULE {
            match &entry.value {
                Value::Call(..) => rules.push(entry),
                _ => cx.error_spanned(&entry.tokens, format!("write a rule as `{}`", keys::example(keys::RULE))),
            }
            continue;
        }
        if let Value::Call(..) = entry.value {
            cx.error_spanned(&entry.tokens, format!("`{key}` takes a value: write `{}`", keys::example(&key)));
            continue;
        }
        if !seen.first(cx, entry, &key) {
            continue;
        }
        match key.as_str() {
            keys::MAX => config.max = attempts(cx, entry),
            keys::ON => config.on = on_list(cx, entry),
            keys::DEADLINE | keys::ATTEMPT_TIMEOUT | keys::MAX_RETRY_AFTER => {
                let d = duration_value(cx, entry, &key).filter(|d| {
                    let ok = !d.is_zero();
                    if !ok {
                        let fix = match key.as_str() {
                            keys::MAX_RETRY_AFTER => "to ignore Retry-After, write `retry_after = false` instead",
                            _ => "remove it to have no limit",
                        };
                        cx.error_spanned(&entry.value, format!("a zero `{key}` would fail every call at once; {fix}"));
                    }
                    ok
                });
                match key.as_str() {
                    keys::DEADLINE => config.deadline = d,
                    keys::ATTEMPT_TIMEOUT => config.attempt_timeout = d,
                    _ => config.max_retry_after = d,
                }
            }
            keys::RETRY_AFTER => config.retry_after = boolean(cx, entry, &key),
            keys::VALIDATE => config.validate = hook_path(cx, entry, &key),
            keys::NOTIFY => config.notify = hook_path(cx, entry, &key),
            keys::WHEN => config.when = hook_path(cx, entry, &key),
            keys::NAME => config.name = name(cx, entry),
            keys::CRATE => config.krate = crate_path(cx, entry),
            keys::LIMITER => config.limiter = static_path(cx, entry, &key, "`static Limiter`"),
            keys::BUDGET => config.budget = static_path(cx, entry, &key, "`static Budget`"),
            keys::ADAPTIVE => config.adaptive = adaptive(cx, entry),
            keys::STREAM => config.stream = stream_mode(cx, entry),
            keys::FIRST_CHUNK_TIMEOUT | keys::IDLE_TIMEOUT => {
                let d = duration_value(cx, entry, &key).filter(|d| {
                    if d.is_zero() {
                        cx.error_spanned(
                            &entry.value,
                            format!("a zero `{key}` would fail every stream at once; remove it to have no limit"),
                        );
                    }
                    !d.is_zero()
                });
                match key.as_str() {
                    keys::FIRST_CHUNK_TIMEOUT => config.first_chunk_timeout = d,
                    _ => config.idle_timeout = d,
                }
            }
            _ => strategy.take(cx, entry, &key),
        }
    }
    config.strategy = strategy.resolve(cx);
    cross_checks(cx, &config, &seen);
    stream_checks(cx, &mut config, &seen);
    config.rules = validate_rules(cx, &config, &seen, &rules);
    config
}

/// Relations between top-level keys.
fn cross_checks(cx: &mut Ctxt, config: &RetryConfig, seen: &Seen) {
    if let (Some(deadline), Some(each)) = (config.deadline, config.attempt_timeout) {
        if each > deadline {
            cx.error_at(
                seen.span(keys::ATTEMPT_TIMEOUT),
                format!(
                    "`attempt_timeout = \"{each}\"` is longer than `deadline = \"{deadline}\"`, so it can never fire; make it shorter than the deadline or remove it"
                ),
            );
        }
    }
    if config.retry_after == Some(false) && config.max_retry_after.is_some() {
        cx.error_at(
            seen.span(keys::MAX_RETRY_AFTER),
            "`max_retry_after` does nothing with `retry_after = false`; remove one of them",
        );
    }
    if config.when.is_some() && config.on.is_some() {
        cx.error_at(
            seen.span(keys::WHEN),
            "`when` replaces the `on` decision, so `on` would be ignored; remove `on`, or check those kinds in your predicate",
        );
    }
    if config.max == Some(1) {
        let keys = [
            keys::BACKOFF,
            keys::DELAY,
            keys::BASE,
            keys::MAX_DELAY,
            keys::MULTIPLIER,
            keys::JITTER,
            keys::BUDGET,
            keys::ADAPTIVE,
        ];
        for key in keys {
            if seen.spans.contains_key(key) {
                cx.error_at(
                    seen.span(key),
                    format!(
                        "`{key}` does nothing with `max = 1`, which makes a single attempt; remove it or raise `max`"
                    ),
                );
            }
        }
    }
}

/// Keys that apply only with `stream = ...`, and keys that do not apply to it (those are
/// reported and dropped, so the stream form can still be generated next to the errors).
fn stream_checks(cx: &mut Ctxt, config: &mut RetryConfig, seen: &Seen) {
    let set = |key: &str| seen.spans.contains_key(key);
    if set(keys::STREAM) {
        config.attempt_timeout = None;
        config.validate = None;
        if set(keys::ATTEMPT_TIMEOUT) {
            cx.error_at(
                seen.span(keys::ATTEMPT_TIMEOUT),
                "`attempt_timeout` does not apply to a stream (a long answer is not a slow one); bound the wait for the first chunk with `first_chunk_timeout = \"30s\"` and the gaps between chunks with `idle_timeout = \"15s\"`",
            );
        }
        if set(keys::LIMITER) {
            config.limiter = None;
            cx.error_at(
                seen.span(keys::LIMITER),
                "a stream's attempts are not paced by a `limiter` yet; remove it here, and keep it on the plain calls to the endpoint (their throttles still slow every caller down)",
            );
        }
        if set(keys::VALIDATE) {
            cx.error_at(
                seen.span(keys::VALIDATE),
                "`validate` checks a whole response, and a stream has none to check; remove it, and check the chunks as you read them",
            );
        }
    } else {
        for key in [keys::FIRST_CHUNK_TIMEOUT, keys::IDLE_TIMEOUT] {
            if set(key) {
                cx.error_at(
                    seen.span(key),
                    format!("`{key}` applies only to streams; add `stream = \"restart\"` (or \"continue\", \"skip\") to retry a stream, or use `attempt_timeout` for a plain call"),
                );
            }
        }
    }
}

/// `stream = "restart" | "continue" | "skip"`.
fn stream_mode(cx: &mut Ctxt, entry: &Entry) -> Option<syn::LitStr> {
    match &entry.value {
        // `stream = continue`: a keyword, already reported as not a value.
        Value::Invalid(_) => None,
        Value::Lit(Lit::Str(s)) if keys::STREAM_MODES.contains(&s.value().as_str()) => Some(s.clone()),
        Value::Lit(Lit::Str(s)) => {
            let hint = suggest::closest(&s.value(), keys::STREAM_MODES.iter().copied())
                .map_or_else(String::new, |c| format!("; did you mean \"{c}\"?"));
            cx.error_spanned(
                s,
                format!("unknown stream mode \"{}\"{hint}\nvalid: \"restart\" (reopen, and `Reset` the text), \"continue\" (the model continues the text so far), \"skip\" (replay, and drop what was delivered)", s.value()),
            );
            None
        }
        _ => {
            choice(cx, entry, keys::STREAM, keys::STREAM_MODES);
            None
        }
    }
}

/// First occurrences of each key; the second is an error at its own span.
#[derive(Default)]
struct Seen {
    spans: HashMap<String, Span>,
}

impl Seen {
    fn first(&mut self, cx: &mut Ctxt, entry: &Entry, key: &str) -> bool {
        if self.spans.contains_key(key) {
            cx.error_at(entry.key_span(), format!("duplicate `{key}`: it is already set above; keep one"));
            false
        } else {
            self.spans.insert(key.to_owned(), entry.key_span());
            true
        }
    }

    fn span(&self, key: &str) -> Span {
        self.spans.get(key).copied().unwrap_or_else(Span::call_site)
    }
}

fn unknown_key(cx: &mut Ctxt, entry: &Entry, key: &str, valid: &[&str], context: &str) {
    let alias = keys::ALIASES.iter().find(|(a, _)| *a == key).map(|(_, k)| *k).filter(|k| valid.contains(k));
    let hint = match (key, alias) {
        ("retries" | "max_retries", _) => {
            "; `max` counts attempts, the first included: `retries = 3` is `max = 4`".to_owned()
        }
        (_, Some(k)) => format!("; did you mean `{k}`?"),
        _ => suggest::did_you_mean(key, valid.iter().copied()),
    };
    let span = entry.key_span();
    if !context.is_empty() {
        cx.error_at(span, format!("`{key}` cannot be set {context}{hint}"));
        return;
    }
    let list = valid.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    cx.error_at(span, format!("unknown key `{key}`{hint}\nvalid keys: {list}"));
}

fn wrong_type(cx: &mut Ctxt, entry: &Entry, key: &str, what: &str) {
    cx.error_spanned(&entry.value, format!("`{key}` takes {what}, like `{}`", keys::example(key)));
}

fn attempts(cx: &mut Ctxt, entry: &Entry) -> Option<u32> {
    let key = keys::MAX;
    let n = match &entry.value {
        Value::Lit(Lit::Int(i)) => match i.base10_parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                wrong_type(cx, entry, key, "a whole number of attempts");
                return None;
            }
        },
        Value::Neg(_, Lit::Int(_)) => 0,
        Value::Lit(Lit::Str(s)) if s.value().parse::<u32>().is_ok() => {
            cx.error_spanned(&entry.value, format!("`max` takes a number, not a string: write `max = {}`", s.value()));
            return None;
        }
        _ => {
            wrong_type(cx, entry, key, "a whole number of attempts");
            return None;
        }
    };
    if n == 0 {
        cx.error_spanned(
            &entry.value,
            "`max` counts attempts, the first included, and must be at least 1; use `max = 1` to disable retries",
        );
        return None;
    }
    if n > u64::from(defaults::MAX_ATTEMPTS_BOUND) {
        cx.error_spanned(
            &entry.value,
            format!(
                "`max = {n}` is more attempts than any LLM call should make (the bound is {}); bound the time with `deadline = \"2m\"` instead",
                defaults::MAX_ATTEMPTS_BOUND
            ),
        );
        return None;
    }
    u32::try_from(n).ok()
}

fn duration_value(cx: &mut Ctxt, entry: &Entry, key: &str) -> Option<Nanos> {
    match &entry.value {
        Value::Lit(Lit::Str(s)) => match duration::parse(&s.value()) {
            Ok(d) => Some(d),
            Err(msg) => {
                cx.error_spanned(s, format!("`{key}`: {msg}"));
                None
            }
        },
        Value::Lit(Lit::Int(i)) => {
            let n = i.base10_digits();
            cx.error_spanned(
                &entry.value,
                format!("`{key}` takes a duration string with a unit: write `{key} = \"{n}ms\"` or `{key} = \"{n}s\"`"),
            );
            None
        }
        _ => {
            wrong_type(cx, entry, key, "a duration string (units ms, s, m, h)");
            None
        }
    }
}

fn float(cx: &mut Ctxt, entry: &Entry, key: &str) -> Option<f64> {
    let (lit, negative) = match &entry.value {
        Value::Lit(l) => (l, false),
        Value::Neg(_, l) => (l, true),
        Value::Path(p)
            if p.segments.last().is_some_and(|s| s.ident.to_string().contains("INFINITY") || s.ident == "NAN") =>
        {
            cx.error_spanned(&entry.value, format!("`{key}` must be a finite number, like `{}`", keys::example(key)));
            return None;
        }
        _ => {
            wrong_type(cx, entry, key, "a number");
            return None;
        }
    };
    let parsed = match lit {
        Lit::Float(f) => f.base10_parse::<f64>().ok(),
        Lit::Int(i) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(x) => Some(if negative { -x } else { x }),
        None => {
            wrong_type(cx, entry, key, "a number");
            None
        }
    }
}

fn boolean(cx: &mut Ctxt, entry: &Entry, key: &str) -> Option<bool> {
    match &entry.value {
        Value::Lit(Lit::Bool(b)) => Some(b.value()),
        Value::Lit(Lit::Str(s)) if matches!(s.value().as_str(), "true" | "false") => {
            cx.error_spanned(&entry.value, format!("write the boolean without quotes: `{key} = {}`", s.value()));
            None
        }
        _ => {
            wrong_type(cx, entry, key, "`true` or `false`");
            None
        }
    }
}

fn choice(cx: &mut Ctxt, entry: &Entry, key: &str, valid: &[&str]) -> Option<String> {
    let list = valid.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
    match &entry.value {
        Value::Lit(Lit::Str(s)) => {
            let v = s.value();
            if valid.contains(&v.as_str()) {
                Some(v)
            } else {
                let hint = suggest::closest(&v, valid.iter().copied())
                    .map_or_else(String::new, |c| format!("; did you mean \"{c}\"?"));
                cx.error_spanned(s, format!("unknown {key} \"{v}\"{hint}\nvalid: {list}"));
                None
            }
        }
        Value::Path(p) if p.get_ident().is_some() => {
            let v = p.get_ident().map(ToString::to_string).unwrap_or_default();
            let fix = suggest::closest(&v, valid.iter().copied()).unwrap_or(valid[0]);
            cx.error_spanned(&entry.value, format!("write the {key} as a string: `{key} = \"{fix}\"` (valid: {list})"));
            None
        }
        _ => {
            wrong_type(cx, entry, key, &format!("one of {list}"));
            None
        }
    }
}

fn hook_path(cx: &mut Ctxt, entry: &Entry, key: &str) -> Option<syn::Path> {
    match &entry.value {
        Value::Path(p) => Some(p.clone()),
        Value::Lit(Lit::Str(s)) => {
            cx.error_spanned(
                &entry.value,
                format!("`{key}` takes the path of a function, without quotes: `{key} = {}`", s.value()),
            );
            None
        }
        _ => {
            wrong_type(cx, entry, key, "the path of a function");
            None
        }
    }
}

/// The path of a user's `static` (`what` names its type, for the messages).
fn static_path(cx: &mut Ctxt, entry: &Entry, key: &str, what: &str) -> Option<syn::Path> {
    match &entry.value {
        Value::Path(p) => Some(p.clone()),
        Value::Lit(Lit::Str(s)) => {
            cx.error_spanned(
                &entry.value,
                format!("`{key}` takes the path of a {what}, without quotes: `{key} = {}`", s.value()),
            );
            None
        }
        _ => {
            cx.error_spanned(
                &entry.value,
                format!(
                    "`{key}` takes the path of a {what} declared once and shared by every call to the endpoint, like `{}`",
                    keys::example(key)
                ),
            );
            None
        }
    }
}

/// `adaptive = true | false | PATH`.
fn adaptive(cx: &mut Ctxt, entry: &Entry) -> Option<Adaptive> {
    let key = keys::ADAPTIVE;
    match &entry.value {
        Value::Lit(Lit::Bool(b)) => Some(if b.value() { Adaptive::Own } else { Adaptive::Off }),
        Value::Path(p) => Some(Adaptive::Shared(p.clone())),
        Value::Lit(Lit::Str(s)) => {
            let fix = match s.value().as_str() {
                v @ ("true" | "false") => format!("write the boolean without quotes: `{key} = {v}`"),
                v => format!("`{key}` takes `true` or the path of a `static Adaptive`, without quotes: `{key} = {v}`"),
            };
            cx.error_spanned(&entry.value, fix);
            None
        }
        _ => {
            cx.error_spanned(
                &entry.value,
                format!(
                    "`{key}` takes `true` (a window of this fn's own errors), `false`, or the path of a `static Adaptive` shared per endpoint, like `{key} = OPENAI_ERRORS`"
                ),
            );
            None
        }
    }
}

fn name(cx: &mut Ctxt, entry: &Entry) -> Option<syn::LitStr> {
    match &entry.value {
        Value::Lit(Lit::Str(s)) if s.value().trim().is_empty() => {
            cx.error_spanned(s, "`name` is the key of this call's stats and cannot be empty; remove it to use the module path and fn name");
            None
        }
        Value::Lit(Lit::Str(s)) => Some(s.clone()),
        _ => {
            wrong_type(cx, entry, keys::NAME, "a string");
            None
        }
    }
}

fn crate_path(cx: &mut Ctxt, entry: &Entry) -> Option<syn::Path> {
    match &entry.value {
        Value::Path(p) => Some(p.clone()),
        Value::Lit(Lit::Str(s)) => match s.parse::<syn::Path>() {
            Ok(p) => Some(p),
            Err(_) => {
                cx.error_spanned(
                    s,
                    format!("\"{}\" is not a path; write `crate = \"my_crate::llm_retry\"`", s.value()),
                );
                None
            }
        },
        _ => {
            wrong_type(cx, entry, keys::CRATE, "the path of the `llm_retry` crate");
            None
        }
    }
}

/// `on = [...]`.
fn on_list(cx: &mut Ctxt, entry: &Entry) -> Option<Vec<Target>> {
    let Value::List(group, items) = &entry.value else {
        let fix = match &entry.value {
            Value::Path(_) | Value::Lit(Lit::Int(_)) => {
                format!("write a list: `on = [{}]`", quote::ToTokens::to_token_stream(&entry.value))
            }
            _ => format!("`on` takes a list of kinds and statuses, like `{}`", keys::example(keys::ON)),
        };
        cx.error_spanned(&entry.value, fix);
        return None;
    };
    if items.is_empty() {
        cx.error_spanned(
            group,
            "`on = []` retries nothing; list what to retry, like `on = [RateLimited, Overloaded]`, or use `max = 1` to disable retries",
        );
        return None;
    }
    let mut out: Vec<Target> = Vec::new();
    for item in items {
        if let Some(t) = target(cx, item, "in `on`") {
            if out.contains(&t) {
                cx.error_spanned(item, format!("`{}` is listed twice in `on`; remove one", display_target(&t)));
            } else {
                out.push(t);
            }
        }
    }
    Some(out)
}

fn display_target(t: &Target) -> String {
    match t {
        Target::Kind(k) => k.clone(),
        Target::Status(s) => s.to_string(),
    }
}

/// A kind or a status, checked for being one that retrying can fix.
fn target(cx: &mut Ctxt, value: &Value, context: &str) -> Option<Target> {
    match value {
        Value::Path(p) => {
            let Some(ident) = p.get_ident() else {
                let last = p.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
                cx.error_spanned(value, format!("write the kind's bare name {context}, like `{last}`"));
                return None;
            };
            let name = ident.to_string();
            if !kinds::is_kind(&name) {
                let list = kinds::names().collect::<Vec<_>>().join(", ");
                let hint = suggest::did_you_mean(&name, kinds::names());
                cx.error_spanned(
                    value,
                    format!("unknown error kind `{name}`{hint}\nkinds: {list}; or an HTTP status like 503"),
                );
                return None;
            }
            if let Some(reason) = kinds::never_retryable_reason(&name) {
                cx.error_spanned(value, format!("`{name}` is never retried: {reason}"));
                return None;
            }
            Some(Target::Kind(name))
        }
        Value::Lit(Lit::Int(i)) => {
            let Ok(status) = i.base10_parse::<u16>() else {
                cx.error_spanned(value, "an HTTP status is a number from 100 to 599, like 503");
                return None;
            };
            match status {
                100..=399 => {
                    cx.error_spanned(
                        value,
                        format!(
                            "{status} is not an error status; only 4xx and 5xx responses are retried, like 429 or 503"
                        ),
                    );
                    None
                }
                400..=599 => {
                    if let Some(reason) = kinds::status_never_retryable_reason(status) {
                        cx.error_spanned(value, format!("{status} is never retried: {reason}"));
                        None
                    } else {
                        Some(Target::Status(status))
                    }
                }
                _ => {
                    cx.error_spanned(value, format!("{status} is not an HTTP status; statuses run from 100 to 599"));
                    None
                }
            }
        }
        Value::Lit(Lit::Str(s)) => {
            let v = s.value();
            let fix = if v.parse::<u16>().is_ok() { v.clone() } else { v.replace(['"', ' '], "") };
            cx.error_spanned(value, format!("write kinds and statuses without quotes {context}: `{fix}`"));
            None
        }
        Value::Invalid(_) => None,
        _ => {
            cx.error_spanned(
                value,
                format!("expected an error kind like `RateLimited` or a status like `503` {context}"),
            );
            None
        }
    }
}

/// A duration key's entry and its value, if it parsed.
type DurationKey<'a> = (&'a Entry, Option<Nanos>);

/// The backoff and jitter keys of one scope (the attribute, or one rule).
#[derive(Default)]
struct StrategyKeys<'a> {
    backoff: Option<(&'a Entry, Option<String>)>,
    delay: Option<(&'a Entry, Option<Nanos>)>,
    base: Option<(&'a Entry, Option<Nanos>)>,
    max_delay: Option<(&'a Entry, Option<Nanos>)>,
    min_delay: Option<(&'a Entry, Option<Nanos>)>,
    increment: Option<(&'a Entry, Option<Nanos>)>,
    multiplier: Option<(&'a Entry, Option<f64>)>,
    jitter: Option<(&'a Entry, Option<String>)>,
    jitter_factor: Option<(&'a Entry, Option<f64>)>,
    invalid: bool,
}

impl<'a> StrategyKeys<'a> {
    /// Records one backoff or jitter key (already checked for duplicates).
    fn take(&mut self, cx: &mut Ctxt, entry: &'a Entry, key: &str) {
        let before = cx.has_errors();
        match key {
            keys::BACKOFF => self.backoff = Some((entry, choice(cx, entry, key, keys::BACKOFFS))),
            keys::JITTER => self.jitter = Some((entry, choice(cx, entry, key, keys::JITTERS))),
            keys::DELAY => self.delay = Some((entry, duration_value(cx, entry, key))),
            keys::BASE => self.base = Some((entry, duration_value(cx, entry, key))),
            keys::MAX_DELAY => self.max_delay = Some((entry, duration_value(cx, entry, key))),
            keys::MIN_DELAY => self.min_delay = Some((entry, duration_value(cx, entry, key))),
            keys::INCREMENT => self.increment = Some((entry, duration_value(cx, entry, key))),
            keys::MULTIPLIER => self.multiplier = Some((entry, float(cx, entry, key))),
            keys::JITTER_FACTOR => self.jitter_factor = Some((entry, float(cx, entry, key))),
            _ => unreachable!("`{key}` is listed in keys::TOP but not handled"),
        }
        self.invalid |= cx.has_errors() && !before;
    }

    /// Checks which keys apply to the chosen backoff and fills in the defaults.
    fn resolve(self, cx: &mut Ctxt) -> Strategy {
        let any_backoff_key = self.backoff.is_some()
            || self.delay.is_some()
            || self.base.is_some()
            || self.max_delay.is_some()
            || self.min_delay.is_some()
            || self.increment.is_some()
            || self.multiplier.is_some();
        let explicit = self.backoff.as_ref().and_then(|b| b.1.clone());
        if self.backoff.is_some() && explicit.is_none() {
            // The name was wrong and is reported; checking the rest against a guess would mislead.
            return Strategy::default();
        }
        let kind = explicit.clone().unwrap_or_else(|| "exponential".to_owned());
        let chosen = match &explicit {
            Some(k) => format!("`backoff = \"{k}\"`"),
            None => "the default exponential backoff".to_owned(),
        };
        let owners: &[(&str, Option<&DurationKey<'_>>, &[&str])] = &[
            (keys::DELAY, self.delay.as_ref(), &["fixed"]),
            (keys::BASE, self.base.as_ref(), &["linear", "exponential", "decorrelated"]),
            (keys::MAX_DELAY, self.max_delay.as_ref(), &["linear", "exponential", "decorrelated"]),
            (keys::MIN_DELAY, self.min_delay.as_ref(), &["exponential"]),
            (keys::INCREMENT, self.increment.as_ref(), &["linear"]),
        ];
        let mut misplaced = false;
        for (key, set, owners) in owners {
            if let Some((entry, _)) = set {
                if !owners.contains(&kind.as_str()) {
                    misplaced = true;
                    not_applicable(cx, entry, key, &chosen, owners, &kind);
                }
            }
        }
        if let Some((entry, _)) = &self.multiplier {
            if kind != "exponential" {
                misplaced = true;
                not_applicable(cx, entry, keys::MULTIPLIER, &chosen, &["exponential"], &kind);
            }
        }
        let dur = |slot: &Option<(&Entry, Option<Nanos>)>, default: Nanos| slot.as_ref().map_or(Some(default), |s| s.1);
        let mut backoff = None;
        if any_backoff_key && !misplaced {
            backoff = match kind.as_str() {
                "none" => Some(BackoffConfig::None),
                "fixed" => dur(&self.delay, defaults::FIXED_DELAY).map(|delay| BackoffConfig::Fixed { delay }),
                "linear" => match (
                    dur(&self.base, defaults::LINEAR_START),
                    dur(&self.increment, defaults::LINEAR_INCREMENT),
                    dur(&self.max_delay, defaults::LINEAR_MAX),
                ) {
                    (Some(start), Some(increment), Some(max_delay)) => {
                        Some(BackoffConfig::Linear { start, increment, max_delay })
                    }
                    _ => None,
                },
                "exponential" => {
                    let multiplier = self.multiplier.as_ref().map_or(Some(defaults::EXP_MULTIPLIER), |m| m.1);
                    match (
                        dur(&self.base, defaults::EXP_INITIAL),
                        multiplier,
                        dur(&self.min_delay, defaults::EXP_MIN),
                        dur(&self.max_delay, defaults::EXP_MAX),
                    ) {
                        (Some(initial), Some(multiplier), Some(min_delay), Some(max_delay)) => {
                            Some(BackoffConfig::Exponential { initial, multiplier, min_delay, max_delay })
                        }
                        _ => None,
                    }
                }
                _ => match (
                    dur(&self.base, defaults::DECORRELATED_BASE),
                    dur(&self.max_delay, defaults::DECORRELATED_MAX),
                ) {
                    (Some(base), Some(max_delay)) => Some(BackoffConfig::Decorrelated { base, max_delay }),
                    _ => None,
                },
            };
            if let Some(b) = &backoff {
                check_backoff(cx, &self, b);
            }
        }
        let jitter = self.resolve_jitter(cx, &kind);
        if self.invalid {
            return Strategy::default();
        }
        Strategy { backoff, jitter }
    }

    fn resolve_jitter(&self, cx: &mut Ctxt, backoff: &str) -> Option<JitterConfig> {
        let name = match &self.jitter {
            Some((_, None)) => return None,
            Some((_, Some(n))) => Some(n.as_str()),
            None => None,
        };
        if let Some((entry, _)) = &self.jitter {
            if backoff == "decorrelated" && name != Some("decorrelated") {
                cx.error_spanned(
                    &entry.value,
                    "`backoff = \"decorrelated\"` draws its own jitter; remove `jitter` (or write `jitter = \"decorrelated\"`)",
                );
                return None;
            }
            if backoff == "none" && name != Some("none") {
                cx.error_spanned(
                    &entry.value,
                    "`backoff = \"none\"` retries at once, so there is no delay to jitter; remove `jitter`",
                );
                return None;
            }
        }
        if let Some((entry, factor)) = &self.jitter_factor {
            if name != Some("proportional") {
                let current = name
                    .map_or_else(|| "the default `jitter = \"full\"`".to_owned(), |n| format!("`jitter = \"{n}\"`"));
                cx.error_spanned(
                    &entry.tokens,
                    format!("`jitter_factor` applies only to `jitter = \"proportional\"`, not {current}; remove it or set that jitter"),
                );
                return None;
            }
            if let Some(f) = factor {
                if !f.is_finite() || *f < 0.0 || *f > 10.0 {
                    cx.error_spanned(
                        &entry.value,
                        "`jitter_factor` is how far above the delay the jitter may go, as a fraction: a number from 0.0 to 10.0, like 0.25",
                    );
                    return None;
                }
            }
        }
        if backoff == "decorrelated" && name.is_none() {
            return Some(JitterConfig::Decorrelated);
        }
        Some(match name? {
            "none" => JitterConfig::None,
            "full" => JitterConfig::Full,
            "equal" => JitterConfig::Equal,
            "proportional" => JitterConfig::Proportional {
                factor: self.jitter_factor.as_ref().map_or(Some(defaults::PROPORTIONAL_FACTOR), |f| f.1)?,
            },
            _ => JitterConfig::Decorrelated,
        })
    }
}

fn not_applicable(cx: &mut Ctxt, entry: &Entry, key: &str, chosen: &str, owners: &[&str], kind: &str) {
    let owners = owners.iter().map(|o| format!("`backoff = \"{o}\"`")).collect::<Vec<_>>().join(" or ");
    let hint = match (key, kind) {
        (keys::DELAY, "linear" | "exponential" | "decorrelated") => "; its first delay is `base`",
        (keys::BASE, "fixed") => "; the fixed backoff waits `delay`",
        _ => "",
    };
    cx.error_at(entry.key_span(), format!("`{key}` does not apply to {chosen}, only to {owners}{hint}"));
}

fn check_backoff(cx: &mut Ctxt, keys_: &StrategyKeys<'_>, b: &BackoffConfig) {
    let span_of = |slot: &Option<(&Entry, Option<Nanos>)>| slot.as_ref().map(|s| s.0.value.span());
    match *b {
        BackoffConfig::None => {}
        BackoffConfig::Fixed { delay } => {
            if delay.is_zero() {
                cx.error_at(
                    span_of(&keys_.delay).unwrap_or_else(Span::call_site),
                    "a zero `delay` retries at once; say so with `backoff = \"none\"`",
                );
            }
        }
        BackoffConfig::Linear { start, max_delay, .. }
        | BackoffConfig::Exponential { initial: start, max_delay, .. }
        | BackoffConfig::Decorrelated { base: start, max_delay } => {
            if start.is_zero() && !matches!(b, BackoffConfig::Linear { .. }) {
                cx.error_at(
                    span_of(&keys_.base).unwrap_or_else(Span::call_site),
                    "a zero `base` never grows, so every retry is immediate; use a base like \"500ms\", or `backoff = \"none\"`",
                );
            }
            if max_delay.is_zero() {
                cx.error_at(
                    span_of(&keys_.max_delay).unwrap_or_else(Span::call_site),
                    "a zero `max_delay` caps every delay at zero; use a cap like \"20s\", or `backoff = \"none\"`",
                );
            } else if max_delay < start {
                match span_of(&keys_.max_delay) {
                    Some(span) => cx.error_at(
                        span,
                        format!("`max_delay = \"{max_delay}\"` is below `base = \"{start}\"`; the cap must be at least the first delay"),
                    ),
                    None => cx.error_at(
                        span_of(&keys_.base).unwrap_or_else(Span::call_site),
                        format!("`base = \"{start}\"` is above the default `max_delay` of {max_delay}; set `max_delay` too"),
                    ),
                }
            }
            if let BackoffConfig::Exponential { multiplier, min_delay, .. } = *b {
                if let Some((entry, _)) = &keys_.multiplier {
                    if !multiplier.is_finite() || multiplier < 1.0 {
                        cx.error_spanned(
                            &entry.value,
                            format!("`multiplier = {multiplier:?}` must be a finite number of at least 1.0, like 2.0; below 1.0 the delays shrink (for equal delays use `backoff = \"fixed\"`)"),
                        );
                    }
                }
                if min_delay > max_delay {
                    cx.error_at(
                        span_of(&keys_.min_delay).unwrap_or_else(Span::call_site),
                        format!("`min_delay = \"{min_delay}\"` is above `max_delay = \"{max_delay}\"`; the floor must be at most the cap"),
                    );
                }
            }
        }
    }
}

/// `rule(TARGET, key = value, ...)` entries.
fn validate_rules(cx: &mut Ctxt, config: &RetryConfig, seen: &Seen, rules: &[&Entry]) -> Vec<RuleConfig> {
    let mut out: Vec<RuleConfig> = Vec::new();
    let top_max = config.max.unwrap_or(defaults::MAX_ATTEMPTS);
    for (i, rule) in rules.iter().enumerate() {
        let Value::Call(group, inner) = &rule.value else { continue };
        if i == defaults::MAX_RULES {
            cx.error_at(
                rule.key_span(),
                format!(
                    "a policy holds at most {} rules; merge rules that share settings into `on`, or drop one",
                    defaults::MAX_RULES
                ),
            );
        }
        let Some((first, rest)) = inner.split_first().filter(|(first, _)| first.key.is_none()) else {
            cx.error_spanned(
                group,
                format!("a rule starts with the kind or status it applies to, like `{}`", keys::example(keys::RULE)),
            );
            continue;
        };
        let Some(target) = target(cx, &first.value, "in `rule(...)`") else { continue };
        let name = display_target(&target);
        if !retried(config, &target) {
            let fix = if config.on.is_some() {
                format!("add `{name}` to `on`, or remove this rule")
            } else {
                "the default policy does not retry it; list it with `on = [...]`, or remove this rule".to_owned()
            };
            cx.error_spanned(
                &first.value,
                format!("`rule({name}, ...)` overrides a failure that is never retried; {fix}"),
            );
        }
        if out.iter().any(|r| r.target == target) {
            cx.error_spanned(&first.value, format!("a second rule for `{name}`; merge the two rules"));
        }
        let mut seen_rule = Seen::default();
        let mut strategy = StrategyKeys::default();
        let mut max = None;
        for entry in rest {
            let key = entry.key_name();
            if entry.key.is_none() {
                cx.error_spanned(
                    &entry.tokens,
                    format!(
                        "a rule names one kind or status; write a second `rule(...)` for `{}`",
                        quote::ToTokens::to_token_stream(&entry.value)
                    ),
                );
                continue;
            }
            if !keys::RULE_KEYS.contains(&key.as_str()) {
                if keys::TOP.contains(&key.as_str()) {
                    unknown_key(
                        cx,
                        entry,
                        &key,
                        keys::RULE_KEYS,
                        "per kind; move it out of `rule(...)` to the attribute",
                    );
                } else {
                    unknown_key(cx, entry, &key, keys::RULE_KEYS, "");
                }
                continue;
            }
            if !seen_rule.first(cx, entry, &key) {
                continue;
            }
            if key == keys::MAX {
                max = attempts(cx, entry);
                if let Some(n) = max {
                    if n > top_max {
                        let source = if config.max.is_some() { "" } else { " (the default)" };
                        cx.error_spanned(
                            &entry.value,
                            format!("`max = {n}` here exceeds the call's `max = {top_max}`{source}, which stops first; raise the attribute's `max` or lower this one"),
                        );
                    }
                }
            } else {
                strategy.take(cx, entry, &key);
            }
        }
        if rest.is_empty() {
            cx.error_spanned(
                group,
                format!(
                    "`rule({name})` changes nothing; add `max = ...` or a backoff, like `{}`",
                    keys::example(keys::RULE)
                ),
            );
            continue;
        }
        let strategy = strategy.resolve(cx);
        out.push(RuleConfig { target, max, strategy });
    }
    let _ = seen;
    out
}

/// Whether the policy retries `target`, so that a rule for it can ever apply.
fn retried(config: &RetryConfig, target: &Target) -> bool {
    let kind_retried = |kind: &str| match &config.on {
        Some(on) => on.contains(&Target::Kind(kind.to_owned())),
        None => kinds::retried_by_default(kind),
    };
    match target {
        Target::Kind(k) => kind_retried(k),
        Target::Status(s) => {
            config.on.as_ref().is_some_and(|on| on.contains(&Target::Status(*s)))
                || kind_retried(kinds::from_status(*s))
        }
    }
}
