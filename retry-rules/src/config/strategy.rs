//! The backoff and jitter keys of one scope (the policy, or one rule), read and written with
//! serde. What they mean, which apply to which backoff and which jitters a backoff takes is
//! the rulebook's shared reading ([`crate::strategy`]), the attribute's own: each of its
//! problems becomes an error at the key's path.

use super::value::{self, Human, Number};
use super::{Slot, SpecError};
use crate::backoff::{Backoff, Jitter};
use crate::keys;
use crate::strategy::{Key, StrategyKeys};
use crate::suggest;
use serde::de::MapAccess;
use serde::ser::SerializeMap;
use std::time::Duration;

/// The backoff and jitter keys of one scope, as written.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Strategy(StrategyKeys<'static>);

/// One of `names`, or an error listing them with the closest.
fn choice<E: serde::de::Error>(key: &str, name: &str, names: &'static [&'static str]) -> Result<&'static str, E> {
    if let Some(n) = names.iter().find(|n| **n == name.trim()) {
        return Ok(n);
    }
    let hint = suggest::did_you_mean(name, names.iter().copied());
    let list = names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    Err(E::custom(SpecError::at(key, format!("unknown {key} `{name}`{hint}; one of {list}"))))
}

impl<T> Slot<T> for Key<T> {
    fn put<E: serde::de::Error>(&mut self, key: &str, value: T) -> Result<(), E> {
        if !matches!(self, Key::Unset) {
            return Err(E::custom(SpecError::at(key, format!("`{key}` is set twice; keep one"))));
        }
        *self = Key::Set(value);
        Ok(())
    }
}

impl Strategy {
    /// Reads `key`'s value if it is a backoff or jitter key; `Ok(false)` otherwise.
    pub(crate) fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let k = &mut self.0;
        let dur = |map: &mut A| map.next_value::<Human>().map(|d| d.0);
        let name = |map: &mut A, names| map.next_value::<String>().and_then(|n| choice(key, &n, names));
        match key {
            keys::BACKOFF => k.backoff.put(key, name(map, keys::BACKOFFS)?)?,
            keys::JITTER => k.jitter.put(key, name(map, keys::JITTERS)?)?,
            keys::DELAY => k.delay.put(key, dur(map)?)?,
            keys::BASE => k.base.put(key, dur(map)?)?,
            keys::MAX_DELAY => k.max_delay.put(key, dur(map)?)?,
            keys::MIN_DELAY => k.min_delay.put(key, dur(map)?)?,
            keys::INCREMENT => k.increment.put(key, dur(map)?)?,
            keys::MULTIPLIER => k.multiplier.put(key, map.next_value::<Number>()?.0)?,
            keys::JITTER_FACTOR => k.jitter_factor.put(key, map.next_value::<Number>()?.0)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether the scope writes none of these keys.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The backoff and jitter these keys describe, each `None` where the scope leaves it to
    /// the policy (or to the builder's default), or the first problem, at its key.
    pub(crate) fn resolve(&self) -> Result<(Option<Backoff>, Option<Jitter>), SpecError> {
        self.0.resolve().map_err(|problems| match problems.into_iter().next() {
            Some((key, message)) => SpecError::at(key, message),
            // Every value was read before it was stored: only a problem can make it fail.
            None => SpecError::at(keys::BACKOFF, "a backoff or jitter key could not be read"),
        })
    }

    /// The keys that describe `backoff` and `jitter` (or their equivalent, where the keys
    /// cannot say the combination: [`StrategyKeys::describing`]).
    pub(crate) fn of(backoff: Option<Backoff>, jitter: Option<Jitter>) -> Strategy {
        Strategy(StrategyKeys::describing(backoff, jitter))
    }

    /// Writes the keys that are set, durations in human units.
    pub(crate) fn write<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        let k = &self.0;
        if let Some(b) = k.backoff.value() {
            map.serialize_entry(keys::BACKOFF, b)?;
        }
        let durations = |keys: &[(&'static str, Key<Duration>)], map: &mut M| -> Result<(), M::Error> {
            for (key, d) in keys {
                if let Some(d) = d.value() {
                    map.serialize_entry(key, &value::written(d))?;
                }
            }
            Ok(())
        };
        durations(&[(keys::DELAY, k.delay), (keys::BASE, k.base), (keys::INCREMENT, k.increment)], map)?;
        if let Some(m) = k.multiplier.value() {
            map.serialize_entry(keys::MULTIPLIER, &m)?;
        }
        durations(&[(keys::MIN_DELAY, k.min_delay), (keys::MAX_DELAY, k.max_delay)], map)?;
        if let Some(j) = k.jitter.value() {
            map.serialize_entry(keys::JITTER, j)?;
        }
        if let Some(f) = k.jitter_factor.value() {
            map.serialize_entry(keys::JITTER_FACTOR, &f)?;
        }
        Ok(())
    }
}
