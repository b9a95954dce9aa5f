//! Relations between keys: an `attempt_timeout` that the `deadline` makes moot, keys that do
//! nothing with others, and the keys that apply only with (or never with) `stream = ...`.

use super::{RetryConfig, Spans};
use crate::args::Entry;
use crate::ctxt::Ctxt;
use llm_retry_rules::duration::Written;
use llm_retry_rules::keys;
use llm_retry_rules::settings::Value;

/// Relations between top-level keys.
pub fn cross_checks(cx: &mut Ctxt, config: &RetryConfig, seen: &Spans) {
    if let (Some(deadline), Some(each)) = (config.deadline, config.attempt_timeout) {
        if each > deadline {
            cx.error_at(
                seen.key_or_site(keys::ATTEMPT_TIMEOUT),
                format!(
                    "`attempt_timeout = \"{each}\"` is longer than `deadline = \"{deadline}\"`, so it can never fire; make it shorter than the deadline or remove it",
                    each = Written(each),
                    deadline = Written(deadline)
                ),
            );
        }
    }
    if config.policy.plain(keys::RETRY_AFTER) == Some(Value::Flag(false))
        && config.policy.plain(keys::MAX_RETRY_AFTER).is_some()
    {
        cx.error_at(
            seen.key_or_site(keys::MAX_RETRY_AFTER),
            "`max_retry_after` does nothing with `retry_after = false`; remove one of them",
        );
    }
    if config.tokens.is_some() && !seen.has(keys::LIMITER) {
        cx.error_at(
            seen.key_or_site(keys::TOKENS),
            "`tokens` is counted against a limiter's tokens per minute, and there is none; add `limiter = OPENAI` (a `static Limiter` with `tokens_per_minute`), or remove `tokens`",
        );
    }
    if config.when.is_some() && config.policy.on.is_some() {
        cx.error_at(
            seen.key_or_site(keys::WHEN),
            "`when` replaces the `on` decision, so `on` would be ignored; remove `on`, or check those kinds in your predicate",
        );
    }
    if config.policy.max == Some(1) {
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
            if seen.has(key) {
                cx.error_at(
                    seen.key_or_site(key),
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
pub fn stream_checks(cx: &mut Ctxt, config: &mut RetryConfig, seen: &Spans) {
    let set = |key: &str| seen.has(key);
    if set(keys::STREAM) {
        config.attempt_timeout = None;
        config.validate = None;
        if set(keys::ATTEMPT_TIMEOUT) {
            cx.error_at(
                seen.key_or_site(keys::ATTEMPT_TIMEOUT),
                "`attempt_timeout` does not apply to a stream (a long answer is not a slow one); bound the wait for the first chunk with `first_chunk_timeout = \"30s\"` and the gaps between chunks with `idle_timeout = \"15s\"`",
            );
        }
        if set(keys::VALIDATE) {
            cx.error_at(
                seen.key_or_site(keys::VALIDATE),
                "`validate` checks a whole response, and a stream has none to check; remove it, and check the chunks as you read them",
            );
        }
    } else {
        for key in [keys::FIRST_CHUNK_TIMEOUT, keys::IDLE_TIMEOUT] {
            if set(key) {
                cx.error_at(
                    seen.key_or_site(key),
                    format!("`{key}` applies only to streams; add `stream = \"restart\"` (or \"continue\", \"skip\") to retry a stream, or use `attempt_timeout` for a plain call"),
                );
            }
        }
    }
}

/// With `policy = PATH` the loaded policy decides everything a policy holds: each key that would
/// set part of it is an error at that key (and so is each `rule(...)`).
pub fn loaded_policy_checks(cx: &mut Ctxt, config: &RetryConfig, seen: &Spans, rules: &[&Entry]) {
    let Some(path) = &config.loaded else { return };
    let slot = quote::ToTokens::to_token_stream(path).to_string().replace(' ', "");
    for &key in keys::POLICY_KEYS.iter().filter(|k| **k != keys::RULE) {
        if seen.has(key) {
            cx.error_at(
                seen.key_or_site(key),
                format!(
                    "`{key}` is part of the policy, and `policy = {slot}` loads the whole policy at startup; set `{key}` in its configuration, or remove `policy` to use the attribute's keys"
                ),
            );
        }
    }
    for rule in rules {
        cx.error_at(
            rule.key_span(),
            format!(
                "a `rule(...)` is part of the policy, and `policy = {slot}` loads the whole policy at startup; write the rule in its configuration (`[[rule]]`), or remove `policy`"
            ),
        );
    }
}
