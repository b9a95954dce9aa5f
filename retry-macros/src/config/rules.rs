//! `rule(TARGET, key = value, ...)` entries: their grammar. Whether a rule is valid (its
//! target retried, no duplicate, its `max` within the attribute's, at most `MAX_RULES`) is
//! the rulebook's, checked with the rest of the policy (`rulebook`).

use super::{RetryConfig, RuleConfig, Spans, strategy::StrategyKeys, targets, unknown_key, values};
use crate::args::{Entry, Value};
use crate::ctxt::Ctxt;
use llm_retry_rules::keys;

/// Reads each `rule(...)` entry; a rule whose target is unusable is left out.
pub fn validate_rules(cx: &mut Ctxt, _config: &RetryConfig, rules: &[&Entry]) -> Vec<RuleConfig> {
    let mut out: Vec<RuleConfig> = Vec::new();
    for rule in rules {
        let Value::Call(group, inner) = &rule.value else { continue };
        let Some((first, rest)) = inner.split_first().filter(|(first, _)| first.key.is_none()) else {
            cx.error_spanned(
                group,
                format!("a rule starts with the kind or status it applies to, like `{}`", keys::example(keys::RULE)),
            );
            continue;
        };
        let Some(target) = targets::target(cx, &first.value, "in `rule(...)`") else { continue };
        let mut spans = Spans::default();
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
                let context = if keys::TOP.contains(&key.as_str()) {
                    "per kind; move it out of `rule(...)` to the attribute"
                } else {
                    ""
                };
                unknown_key(cx, entry, &key, keys::RULE_KEYS, context);
                continue;
            }
            if !spans.first(cx, entry, &key) {
                continue;
            }
            if key == keys::MAX {
                max = values::attempts(cx, entry);
            } else {
                strategy.take(cx, entry, &key);
            }
        }
        if rest.is_empty() {
            cx.error_spanned(group, keys::rule_changes_nothing(target));
            continue;
        }
        let mut strategy = strategy.resolve(cx);
        strategy.spans = spans;
        out.push(RuleConfig { target, max, strategy, target_span: first.value.span(), key_span: rule.key_span() });
    }
    out
}
