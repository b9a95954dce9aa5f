//! The backoff and jitter keys of one scope (the attribute, or one rule): which apply to the
//! chosen backoff, and the defaults they leave to the rulebook's named backoffs. Whether the
//! values make a valid backoff is the rulebook's (`Backoff::check`, `Jitter::check`).

use super::{Spans, Strategy, values};
use crate::args::Entry;
use crate::ctxt::Ctxt;
use llm_retry_rules::{Backoff, Jitter, keys};
use std::time::Duration;

/// The named default backoffs are of the variant their name says.
fn unreachable_default() -> ! {
    unreachable!("a default backoff of another variant")
}

/// A duration key's entry and its value, if it parsed.
type DurationKey<'a> = (&'a Entry, Option<Duration>);

/// The backoff and jitter keys of one scope (the attribute, or one rule).
#[derive(Default)]
pub struct StrategyKeys<'a> {
    backoff: Option<(&'a Entry, Option<String>)>,
    delay: Option<(&'a Entry, Option<Duration>)>,
    base: Option<(&'a Entry, Option<Duration>)>,
    max_delay: Option<(&'a Entry, Option<Duration>)>,
    min_delay: Option<(&'a Entry, Option<Duration>)>,
    increment: Option<(&'a Entry, Option<Duration>)>,
    multiplier: Option<(&'a Entry, Option<f64>)>,
    jitter: Option<(&'a Entry, Option<String>)>,
    jitter_factor: Option<(&'a Entry, Option<f64>)>,
    invalid: bool,
}

impl<'a> StrategyKeys<'a> {
    /// Records one backoff or jitter key (already checked for duplicates).
    pub fn take(&mut self, cx: &mut Ctxt, entry: &'a Entry, key: &str) {
        let before = cx.has_errors();
        match key {
            keys::BACKOFF => self.backoff = Some((entry, values::choice(cx, entry, key, keys::BACKOFFS))),
            keys::JITTER => self.jitter = Some((entry, values::choice(cx, entry, key, keys::JITTERS))),
            keys::DELAY => self.delay = Some((entry, values::duration(cx, entry, key))),
            keys::BASE => self.base = Some((entry, values::duration(cx, entry, key))),
            keys::MAX_DELAY => self.max_delay = Some((entry, values::duration(cx, entry, key))),
            keys::MIN_DELAY => self.min_delay = Some((entry, values::duration(cx, entry, key))),
            keys::INCREMENT => self.increment = Some((entry, values::duration(cx, entry, key))),
            keys::MULTIPLIER => self.multiplier = Some((entry, values::float(cx, entry, key))),
            keys::JITTER_FACTOR => self.jitter_factor = Some((entry, values::float(cx, entry, key))),
            // Every other key is handled by the caller; one that is not is a bug, reported
            // as such rather than with a panic.
            _ => cx.error_at(entry.key_span(), format!("`{key}` is not a backoff or jitter key")),
        }
        self.invalid |= cx.has_errors() && !before;
    }

    /// Checks which keys apply to the chosen backoff and fills in the defaults.
    pub fn resolve(self, cx: &mut Ctxt) -> Strategy {
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
        let dur =
            |slot: &Option<(&Entry, Option<Duration>)>, default: Duration| slot.as_ref().map_or(Some(default), |s| s.1);
        let mut backoff = None;
        if any_backoff_key && !misplaced {
            backoff = match kind.as_str() {
                "none" => Some(Backoff::None),
                "fixed" => {
                    let Backoff::Fixed { delay } = Backoff::DEFAULT_FIXED else { unreachable_default() };
                    dur(&self.delay, delay).map(|delay| Backoff::Fixed { delay })
                }
                "linear" => {
                    let Backoff::Linear { base, increment, max_delay } = Backoff::DEFAULT_LINEAR else {
                        unreachable_default()
                    };
                    match (dur(&self.base, base), dur(&self.increment, increment), dur(&self.max_delay, max_delay)) {
                        (Some(base), Some(increment), Some(max_delay)) => {
                            Some(Backoff::Linear { base, increment, max_delay })
                        }
                        _ => None,
                    }
                }
                "exponential" => {
                    let Backoff::Exponential { base, multiplier, min_delay, max_delay } = Backoff::DEFAULT_EXPONENTIAL
                    else {
                        unreachable_default()
                    };
                    let multiplier = self.multiplier.as_ref().map_or(Some(multiplier), |m| m.1);
                    match (
                        dur(&self.base, base),
                        multiplier,
                        dur(&self.min_delay, min_delay),
                        dur(&self.max_delay, max_delay),
                    ) {
                        (Some(base), Some(multiplier), Some(min_delay), Some(max_delay)) => {
                            Some(Backoff::Exponential { base, multiplier, min_delay, max_delay })
                        }
                        _ => None,
                    }
                }
                _ => {
                    let Backoff::Decorrelated { base, max_delay } = Backoff::DEFAULT_DECORRELATED else {
                        unreachable_default()
                    };
                    match (dur(&self.base, base), dur(&self.max_delay, max_delay)) {
                        (Some(base), Some(max_delay)) => Some(Backoff::Decorrelated { base, max_delay }),
                        _ => None,
                    }
                }
            };
        }
        let jitter = self.resolve_jitter(cx, &kind);
        if self.invalid {
            return Strategy::default();
        }
        Strategy { backoff, jitter, spans: Spans::default() }
    }

    fn resolve_jitter(&self, cx: &mut Ctxt, backoff: &str) -> Option<Jitter> {
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
        if let Some((entry, _)) = &self.jitter_factor {
            if name != Some("proportional") {
                let current = name
                    .map_or_else(|| "the default `jitter = \"full\"`".to_owned(), |n| format!("`jitter = \"{n}\"`"));
                cx.error_spanned(
                    &entry.tokens,
                    format!("`jitter_factor` applies only to `jitter = \"proportional\"`, not {current}; remove it or set that jitter"),
                );
                return None;
            }
        }
        if backoff == "decorrelated" && name.is_none() {
            return Some(Jitter::Decorrelated);
        }
        Some(match name? {
            "none" => Jitter::None,
            "full" => Jitter::Full,
            "equal" => Jitter::Equal,
            "proportional" => Jitter::Proportional {
                factor: self.jitter_factor.as_ref().map_or(Some(Jitter::DEFAULT_PROPORTIONAL_FACTOR), |f| f.1)?,
            },
            _ => Jitter::Decorrelated,
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
