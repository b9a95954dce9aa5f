//! The backoff and jitter keys of one scope (the policy, or one rule): reading them, which of
//! them apply to the chosen backoff, the defaults they leave to the rulebook's named backoffs,
//! and writing a backoff and jitter back as keys. Whether the values make a valid backoff is
//! the rulebook's (`Backoff::check`, `Jitter::check`), as in the attribute.

use crate::suggest;
use super::value::{self, Human, Number};
use super::{Slot, SpecError};
use crate::backoff::{Backoff, Jitter};
use crate::keys;
use serde::de::MapAccess;
use serde::ser::SerializeMap;
use std::time::Duration;

/// The backoff and jitter keys of one scope, as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Strategy {
    backoff: Option<&'static str>,
    delay: Option<Duration>,
    base: Option<Duration>,
    max_delay: Option<Duration>,
    min_delay: Option<Duration>,
    increment: Option<Duration>,
    multiplier: Option<f64>,
    jitter: Option<&'static str>,
    jitter_factor: Option<f64>,
}

/// One of `names`, or an error listing them with the closest.
fn choice<E: serde::de::Error>(key: &str, name: &str, names: &'static [&'static str]) -> Result<&'static str, E> {
    if let Some(n) = names.iter().find(|n| **n == name.trim()) {
        return Ok(n);
    }
    let hint = suggest::did_you_mean(name, names.iter().copied());
    let list = names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    Err(E::custom(SpecError::at(key, format!("unknown {key} `{name}`{hint}; one of {list}"))))
}

/// A name, read leniently (a string).
struct Name(String);

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Name)
    }
}

impl Strategy {
    /// Reads `key`'s value if it is a backoff or jitter key; `Ok(false)` otherwise.
    pub(crate) fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        fn dur<'de, A: MapAccess<'de>>(slot: &mut Option<Duration>, key: &str, map: &mut A) -> Result<(), A::Error> {
            let d: Human = map.next_value()?;
            slot.put(key, d.0)
        }
        match key {
            keys::BACKOFF => {
                let n: Name = map.next_value()?;
                let name = choice(key, &n.0, keys::BACKOFFS)?;
                self.backoff.put(key, name)?;
            }
            keys::JITTER => {
                let n: Name = map.next_value()?;
                let name = choice(key, &n.0, keys::JITTERS)?;
                self.jitter.put(key, name)?;
            }
            keys::DELAY => dur(&mut self.delay, key, map)?,
            keys::BASE => dur(&mut self.base, key, map)?,
            keys::MAX_DELAY => dur(&mut self.max_delay, key, map)?,
            keys::MIN_DELAY => dur(&mut self.min_delay, key, map)?,
            keys::INCREMENT => dur(&mut self.increment, key, map)?,
            keys::MULTIPLIER => {
                let n: Number = map.next_value()?;
                self.multiplier.put(key, n.0)?;
            }
            keys::JITTER_FACTOR => {
                let n: Number = map.next_value()?;
                self.jitter_factor.put(key, n.0)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The backoff and jitter these keys describe, each `None` where the scope leaves it to
    /// the policy (or to the builder's default). With `own_jitter`, a decorrelated backoff
    /// with no `jitter` gets its own (the policy's scope, as the attribute does); a rule's
    /// keeps none, which is the same delays, since a decorrelated backoff draws its own.
    pub(crate) fn resolve(&self, own_jitter: bool) -> Result<(Option<Backoff>, Option<Jitter>), SpecError> {
        let any_backoff_key = self.backoff.is_some()
            || self.delay.is_some()
            || self.base.is_some()
            || self.max_delay.is_some()
            || self.min_delay.is_some()
            || self.increment.is_some()
            || self.multiplier.is_some();
        let kind = self.backoff.unwrap_or("exponential");
        let chosen = match self.backoff {
            Some(k) => format!("`backoff = \"{k}\"`"),
            None => "the default exponential backoff".to_owned(),
        };
        let owners: &[(&str, bool, &[&str])] = &[
            (keys::DELAY, self.delay.is_some(), &["fixed"]),
            (keys::BASE, self.base.is_some(), &["linear", "exponential", "decorrelated"]),
            (keys::MAX_DELAY, self.max_delay.is_some(), &["linear", "exponential", "decorrelated"]),
            (keys::MIN_DELAY, self.min_delay.is_some(), &["exponential"]),
            (keys::INCREMENT, self.increment.is_some(), &["linear"]),
            (keys::MULTIPLIER, self.multiplier.is_some(), &["exponential"]),
        ];
        for (key, set, owners) in owners {
            if *set && !owners.contains(&kind) {
                let list = owners.iter().map(|o| format!("`backoff = \"{o}\"`")).collect::<Vec<_>>().join(" or ");
                let hint = match (*key, kind) {
                    (keys::DELAY, "linear" | "exponential" | "decorrelated") => "; its first delay is `base`",
                    (keys::BASE, "fixed") => "; the fixed backoff waits `delay`",
                    _ => "",
                };
                return Err(SpecError::at(*key, format!("`{key}` does not apply to {chosen}, only to {list}{hint}")));
            }
        }
        let backoff = any_backoff_key.then(|| self.backoff_of(kind));
        if self.jitter_factor.is_some() && self.jitter != Some("proportional") {
            let current =
                self.jitter.map_or_else(|| "the default jitter".to_owned(), |n| format!("`jitter = \"{n}\"`"));
            return Err(SpecError::at(
                keys::JITTER_FACTOR,
                format!(
                    "`jitter_factor` applies only to `jitter = \"proportional\"`, not {current}; remove it or set that jitter"
                ),
            ));
        }
        let jitter = match self.jitter {
            Some("none") => Some(Jitter::None),
            Some("full") => Some(Jitter::Full),
            Some("equal") => Some(Jitter::Equal),
            Some("proportional") => {
                Some(Jitter::Proportional { factor: self.jitter_factor.unwrap_or(Jitter::DEFAULT_PROPORTIONAL_FACTOR) })
            }
            Some(_) => Some(Jitter::Decorrelated),
            None if own_jitter && kind == "decorrelated" && any_backoff_key => Some(Jitter::Decorrelated),
            None => None,
        };
        Ok((backoff, jitter))
    }

    /// The backoff named `kind`, its unset values from the rulebook's default of that name.
    fn backoff_of(&self, kind: &str) -> Backoff {
        let or = |v: Option<Duration>, d: Duration| v.unwrap_or(d);
        // Each named default is of the variant its name says; `other => other` keeps that
        // default should it ever not be.
        match kind {
            "none" => Backoff::None,
            "fixed" => match Backoff::DEFAULT_FIXED {
                Backoff::Fixed { delay } => Backoff::Fixed { delay: or(self.delay, delay) },
                other => other,
            },
            "linear" => match Backoff::DEFAULT_LINEAR {
                Backoff::Linear { base, increment, max_delay } => Backoff::Linear {
                    base: or(self.base, base),
                    increment: or(self.increment, increment),
                    max_delay: or(self.max_delay, max_delay),
                },
                other => other,
            },
            "decorrelated" => match Backoff::DEFAULT_DECORRELATED {
                Backoff::Decorrelated { base, max_delay } => {
                    Backoff::Decorrelated { base: or(self.base, base), max_delay: or(self.max_delay, max_delay) }
                }
                other => other,
            },
            _ => match Backoff::DEFAULT_EXPONENTIAL {
                Backoff::Exponential { base, multiplier, min_delay, max_delay } => Backoff::Exponential {
                    base: or(self.base, base),
                    multiplier: self.multiplier.unwrap_or(multiplier),
                    min_delay: or(self.min_delay, min_delay),
                    max_delay: or(self.max_delay, max_delay),
                },
                other => other,
            },
        }
    }

    /// The keys that describe `backoff` and `jitter`, every value written out.
    pub(crate) fn of(backoff: Option<Backoff>, jitter: Option<Jitter>) -> Strategy {
        let mut s = Strategy::default();
        match backoff {
            None => {}
            Some(Backoff::None) => s.backoff = Some("none"),
            Some(Backoff::Fixed { delay }) => (s.backoff, s.delay) = (Some("fixed"), Some(delay)),
            Some(Backoff::Linear { base, increment, max_delay }) => {
                s.backoff = Some("linear");
                (s.base, s.increment, s.max_delay) = (Some(base), Some(increment), Some(max_delay));
            }
            Some(Backoff::Exponential { base, multiplier, min_delay, max_delay }) => {
                s.backoff = Some("exponential");
                (s.base, s.multiplier, s.min_delay, s.max_delay) =
                    (Some(base), Some(multiplier), Some(min_delay), Some(max_delay));
            }
            Some(Backoff::Decorrelated { base, max_delay }) => {
                s.backoff = Some("decorrelated");
                (s.base, s.max_delay) = (Some(base), Some(max_delay));
            }
        }
        s.jitter = jitter.map(|j| match j {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Proportional { .. } => "proportional",
            Jitter::Decorrelated => "decorrelated",
        });
        if let Some(Jitter::Proportional { factor }) = jitter {
            s.jitter_factor = Some(factor);
        }
        s
    }

    /// Writes the keys that are set, durations in human units.
    pub(crate) fn write<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        if let Some(b) = self.backoff {
            map.serialize_entry(keys::BACKOFF, b)?;
        }
        let durations = |keys: &[(&'static str, Option<Duration>)], map: &mut M| -> Result<(), M::Error> {
            for (key, d) in keys {
                if let Some(d) = d {
                    map.serialize_entry(key, &value::written(*d))?;
                }
            }
            Ok(())
        };
        durations(&[(keys::DELAY, self.delay), (keys::BASE, self.base), (keys::INCREMENT, self.increment)], map)?;
        if let Some(m) = self.multiplier {
            map.serialize_entry(keys::MULTIPLIER, &m)?;
        }
        durations(&[(keys::MIN_DELAY, self.min_delay), (keys::MAX_DELAY, self.max_delay)], map)?;
        if let Some(j) = self.jitter {
            map.serialize_entry(keys::JITTER, j)?;
        }
        if let Some(f) = self.jitter_factor {
            map.serialize_entry(keys::JITTER_FACTOR, &f)?;
        }
        Ok(())
    }
}
