//! The backoff and jitter keys of one scope (the attribute, or one rule): their values read
//! from the tokens, and each problem of the rulebook's shared reading of these keys
//! ([`llm_retry_rules::strategy`]: which apply to the chosen backoff, the defaults, the jitter
//! rules) reported at the key. Whether the values make a valid backoff is the rulebook's
//! (`Backoff::check`, `Jitter::check`).

use super::{Spans, Strategy, values};
use crate::args::Entry;
use crate::ctxt::Ctxt;
use llm_retry_rules::keys;
use llm_retry_rules::strategy::{Key, StrategyKeys as Written};
use std::collections::HashMap;
use std::time::Duration;

/// The backoff and jitter keys of one scope (the attribute, or one rule): where each was
/// written, and its value if it could be read.
#[derive(Default)]
pub struct StrategyKeys<'a> {
    entries: HashMap<&'static str, &'a Entry>,
    backoff: Option<Option<String>>,
    jitter: Option<Option<String>>,
    written: Written<'static>,
}

/// The duration key `key` of `w`, if it is one.
fn duration_key<'w>(w: &'w mut Written<'static>, key: &str) -> Option<&'w mut Key<Duration>> {
    Some(match key {
        keys::DELAY => &mut w.delay,
        keys::BASE => &mut w.base,
        keys::MAX_DELAY => &mut w.max_delay,
        keys::MIN_DELAY => &mut w.min_delay,
        keys::INCREMENT => &mut w.increment,
        _ => return None,
    })
}

/// A name key: unset, unreadable (reported), or the name.
fn name(n: &Option<Option<String>>) -> Key<&str> {
    match n {
        None => Key::Unset,
        Some(n) => Key::from(n.as_deref()),
    }
}

impl<'a> StrategyKeys<'a> {
    /// Records one backoff or jitter key (already checked for duplicates).
    pub fn take(&mut self, cx: &mut Ctxt, entry: &'a Entry, key_name: &str) {
        let name = keys::RULE_KEYS.iter().copied().find(|k| *k == key_name && *k != keys::MAX);
        let w = &mut self.written;
        match name {
            Some(keys::BACKOFF) => self.backoff = Some(values::choice(cx, entry, key_name, keys::BACKOFFS)),
            Some(keys::JITTER) => self.jitter = Some(values::choice(cx, entry, key_name, keys::JITTERS)),
            Some(keys::MULTIPLIER) => w.multiplier = Key::from(values::float(cx, entry, key_name)),
            Some(keys::JITTER_FACTOR) => w.jitter_factor = Key::from(values::float(cx, entry, key_name)),
            Some(k) if duration_key(w, k).is_some() => {
                let d = Key::from(values::duration(cx, entry, key_name));
                if let Some(slot) = duration_key(w, k) {
                    *slot = d;
                }
            }
            // Every other key is handled by the caller; one that is not is a bug, reported
            // as such rather than with a panic.
            _ => {
                cx.error_at(entry.key_span(), format!("`{key_name}` is not a backoff or jitter key"));
                return;
            }
        }
        if let Some(name) = name {
            self.entries.insert(name, entry);
        }
    }

    /// The backoff and jitter the keys describe, each problem reported at its key: a key that
    /// does not apply at the key's name, a jitter at its value, a `jitter_factor` at the
    /// whole `jitter_factor = ...`. What has a problem is left to the defaults.
    pub fn resolve(self, cx: &mut Ctxt) -> Strategy {
        let written = Written { backoff: name(&self.backoff), jitter: name(&self.jitter), ..self.written };
        let backoff = written.backoff();
        let jitter = written.jitter();
        for (key, message) in backoff.clone().err().into_iter().chain(jitter.clone().err()).flatten() {
            let Some(entry) = self.entries.get(key) else {
                cx.error_at(proc_macro2::Span::call_site(), message);
                continue;
            };
            match key {
                keys::JITTER | keys::BACKOFF => cx.error_spanned(&entry.value, message),
                keys::JITTER_FACTOR => cx.error_spanned(&entry.tokens, message),
                _ => cx.error_at(entry.key_span(), message),
            }
        }
        Strategy { backoff: backoff.ok().flatten(), jitter: jitter.ok().flatten(), spans: Spans::default() }
    }
}
