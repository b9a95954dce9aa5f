//! Phase 2: the raw entries, validated into a typed [`RetryConfig`].
//!
//! Every misconfiguration is reported at the offending token with the fix, all of them in one
//! build. The macro only reads the keys: what a valid policy is, the rulebook
//! (`llm_retry_rules`) decides, through the same checks the runtime's builder runs
//! ([`rulebook`]).
//!
//! - [`values`]: one key's value (a number, a duration, a path, a choice).
//! - [`targets`]: the kinds and statuses of `on = [...]` and `rule(...)`.
//! - [`strategy`]: the backoff and jitter keys of one scope, and which apply to which backoff.
//! - [`rules`]: `rule(TARGET, ...)` entries.
//! - [`checks`]: relations between keys (`attempt_timeout` under `deadline`, stream-only keys).
//! - [`rulebook`]: the policy the keys describe, checked by the rulebook, each problem mapped
//!   back to the key that caused it.

mod checks;
mod fallback;
pub mod rulebook;
mod rules;
mod strategy;
mod targets;
mod values;

use crate::args::{Entry, Value};
use crate::ctxt::Ctxt;
use llm_retry_rules::{Backoff, Jitter, keys};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use std::collections::HashMap;
use std::time::Duration;

pub use fallback::FallbackConfig;
pub use targets::Target;

/// A validated attribute.
#[derive(Default)]
pub struct RetryConfig {
    /// The policy's keys with a plain value (`max`, `on`, ...): see [`rulebook::PolicyKeys`].
    pub policy: rulebook::PolicyKeys,
    pub strategy: Strategy,
    pub rules: Vec<RuleConfig>,
    pub deadline: Option<Duration>,
    pub attempt_timeout: Option<Duration>,
    pub validate: Option<syn::Path>,
    pub notify: Option<syn::Path>,
    pub when: Option<syn::Path>,
    pub name: Option<syn::LitStr>,
    pub krate: Option<syn::Path>,
    /// `limiter = PATH`: the user's `static Limiter`.
    pub limiter: Option<syn::Path>,
    /// `tokens = EXPR`: the call's cost in tokens, against the limiter's token bucket.
    pub tokens: Option<syn::Expr>,
    /// `budget = PATH`: the user's `static Budget`.
    pub budget: Option<syn::Path>,
    /// `adaptive = true | false | PATH`.
    pub adaptive: Option<Adaptive>,
    /// `policy = PATH`: the user's `static PolicySlot`, whose loaded policy replaces the keys'.
    pub loaded: Option<syn::Path>,
    /// `fallback = [A, B]` (and `move_on = [...]`): the chain each attempt's target comes from.
    pub fallback: Option<FallbackConfig>,
    /// `stream = "..."`: the mode, as written (already checked to be one of `keys::STREAM_MODES`).
    pub stream: Option<syn::LitStr>,
    pub first_chunk_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
}

/// `adaptive = ...`: off, a window of the fn's own, or a shared `static`.
pub enum Adaptive {
    Off,
    Own,
    Shared(syn::Path),
}

/// A backoff and a jitter, each only when the user set something about it, with the spans of
/// the keys that set them (for the rulebook's problems).
#[derive(Default)]
pub struct Strategy {
    pub backoff: Option<Backoff>,
    pub jitter: Option<Jitter>,
    pub spans: Spans,
}

/// A per-kind override.
pub struct RuleConfig {
    pub target: Target,
    pub max: Option<u32>,
    pub strategy: Strategy,
    /// The rule's target, the span its problems default to.
    pub target_span: Span,
    /// The `rule` key.
    pub key_span: Span,
}

/// Where each key of one scope (the attribute, or one rule) was written: its key and its
/// value. The first occurrence of a key wins; a second is an error at its own span.
#[derive(Default, Clone)]
pub struct Spans {
    keys: HashMap<&'static str, (Span, TokenStream)>,
}

impl Spans {
    /// Records `entry` under `key`, or reports it as a duplicate and returns `false`.
    fn first(&mut self, cx: &mut Ctxt, entry: &Entry, key: &str) -> bool {
        let Some(key) = keys::TOP.iter().copied().find(|k| *k == key) else { return false };
        if self.keys.contains_key(key) {
            cx.error_at(
                entry.key_span(),
                format!("duplicate `{key}`: it is already set earlier in this attribute; keep one"),
            );
            false
        } else {
            self.keys.insert(key, (entry.key_span(), entry.value.to_token_stream()));
            true
        }
    }

    /// Whether `key` was written.
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// The span of `key`'s name, if it was written.
    pub fn key(&self, key: &str) -> Option<Span> {
        self.keys.get(key).map(|s| s.0)
    }

    /// `key`'s value, if it was written: its tokens, for an error spanning all of them.
    pub fn value(&self, key: &str) -> Option<&TokenStream> {
        self.keys.get(key).map(|s| &s.1)
    }

    /// The span of `key`'s name, or the whole attribute's.
    fn key_or_site(&self, key: &str) -> Span {
        self.key(key).unwrap_or_else(Span::call_site)
    }
}

/// Validates the attribute's entries. Errors go to `cx`; the returned config holds whatever
/// was valid, so that the fn can still be generated next to the errors.
pub fn validate(cx: &mut Ctxt, entries: &[Entry]) -> RetryConfig {
    let mut config = RetryConfig::default();
    let mut spans = Spans::default();
    let mut strategy = strategy::StrategyKeys::default();
    let mut rules = Vec::new();
    let mut move_on = None;
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
        if !spans.first(cx, entry, &key) {
            continue;
        }
        match key.as_str() {
            k if rulebook::PolicyKeys::takes(k) => config.policy.read(cx, entry, k),
            keys::DEADLINE | keys::ATTEMPT_TIMEOUT => {
                let d = values::duration(cx, entry, &key).filter(|d| {
                    if d.is_zero() {
                        cx.error_spanned(
                            &entry.value,
                            format!("a zero `{key}` would fail every call at once; remove it to have no limit"),
                        );
                    }
                    !d.is_zero()
                });
                match key.as_str() {
                    keys::DEADLINE => config.deadline = d,
                    _ => config.attempt_timeout = d,
                }
            }
            keys::VALIDATE => config.validate = values::hook_path(cx, entry, &key),
            keys::NOTIFY => config.notify = values::hook_path(cx, entry, &key),
            keys::WHEN => config.when = values::hook_path(cx, entry, &key),
            keys::NAME => config.name = values::name(cx, entry),
            keys::CRATE => config.krate = values::crate_path(cx, entry),
            keys::LIMITER => config.limiter = values::static_path(cx, entry, &key, "`static Limiter`"),
            keys::TOKENS => config.tokens = values::tokens(cx, entry),
            keys::BUDGET => config.budget = values::static_path(cx, entry, &key, "`static Budget`"),
            keys::ADAPTIVE => config.adaptive = values::adaptive(cx, entry),
            keys::POLICY => config.loaded = values::static_path(cx, entry, &key, "`static PolicySlot`"),
            keys::FALLBACK => {
                config.fallback =
                    fallback::targets(cx, entry).map(|targets| FallbackConfig { targets, move_on: Vec::new() });
            }
            keys::MOVE_ON => move_on = fallback::move_on(cx, entry).map(|kinds| (entry, kinds)),
            keys::STREAM => config.stream = values::stream_mode(cx, entry),
            keys::FIRST_CHUNK_TIMEOUT | keys::IDLE_TIMEOUT => {
                let d = values::duration(cx, entry, &key).filter(|d| {
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
    config.strategy.spans = spans.clone();
    checks::cross_checks(cx, &config, &spans);
    checks::stream_checks(cx, &mut config, &spans);
    checks::loaded_policy_checks(cx, &config, &spans, &rules);
    fallback::checks(cx, &mut config, move_on);
    config.rules = rules::validate_rules(cx, &config, &rules);
    rulebook::check(cx, &mut config);
    config
}

fn unknown_key(cx: &mut Ctxt, entry: &Entry, key: &str, valid: &[&str], context: &str) {
    let hint = keys::unknown_key_hint(key, valid);
    let span = entry.key_span();
    if !context.is_empty() {
        cx.error_at(span, format!("`{key}` cannot be set {context}{hint}"));
        return;
    }
    let list = valid.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    cx.error_at(span, format!("unknown key `{key}`{hint}\nvalid keys: {list}"));
}
