//! The backoff and jitter keys of one scope (a policy, or one rule), as the `#[llm_retry]`
//! attribute and configuration files (`config`) both read them: which keys apply to which
//! backoff, the defaults a scope leaves to the rulebook's named backoffs
//! ([`Backoff::DEFAULT_FIXED`] and the others), and which jitters a backoff takes. This is the
//! one reading of these keys: the attribute reads the values from its tokens and reports each
//! problem at its key; the loader reads them with serde and reports each at its path.
//!
//! Whether the values make a valid backoff (a zero `base`, a `max_delay` below it) is the
//! builder's check, run afterwards on what [`StrategyKeys::resolve`] gives.
//!
//! ```
//! use llm_retry_rules::strategy::{Key, StrategyKeys};
//! use llm_retry_rules::{Backoff, Jitter};
//! use std::time::Duration;
//!
//! let keys = StrategyKeys { backoff: Key::Set("fixed"), delay: Key::Set(Duration::from_secs(2)), ..StrategyKeys::default() };
//! assert_eq!(keys.resolve(), Ok((Some(Backoff::Fixed { delay: Duration::from_secs(2) }), None)));
//!
//! let keys = StrategyKeys { delay: Key::Set(Duration::from_secs(2)), jitter_factor: Key::Set(0.5), ..StrategyKeys::default() };
//! let problems = keys.resolve().unwrap_err();
//! assert_eq!(problems.iter().map(|p| p.0).collect::<Vec<_>>(), ["delay", "jitter_factor"]);
//! assert!(problems[0].1.ends_with("its first delay is `base`"));
//! ```

use crate::backoff::{Backoff, Jitter};
use crate::{keys, suggest};
use std::time::Duration;

/// One key of a scope, as written.
///
/// ```
/// use llm_retry_rules::strategy::Key;
/// assert!(Key::<f64>::Unreadable.is_written() && !Key::<f64>::Unset.is_written());
/// assert_eq!(Key::Set(2.0).value(), Some(2.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Key<T> {
    /// Not written.
    #[default]
    Unset,
    /// Written, with a value its reader could not read and has already reported.
    Unreadable,
    /// Written, with this value.
    Set(T),
}

impl<T: Copy> Key<T> {
    /// Whether the key was written, readable or not.
    ///
    /// ```
    /// assert!(llm_retry_rules::strategy::Key::Set(1.0).is_written());
    /// ```
    pub fn is_written(&self) -> bool {
        !matches!(self, Key::Unset)
    }

    /// The value, if it was written and read.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::strategy::Key::<u8>::Unreadable.value(), None);
    /// ```
    pub fn value(&self) -> Option<T> {
        match *self {
            Key::Set(v) => Some(v),
            _ => None,
        }
    }

    /// The value, or `default` if the key was not written; `None` if it was written and could
    /// not be read.
    fn or(&self, default: T) -> Option<T> {
        match *self {
            Key::Unset => Some(default),
            Key::Unreadable => None,
            Key::Set(v) => Some(v),
        }
    }
}

impl<T> From<Option<T>> for Key<T> {
    /// A value read (`Some`), or one that could not be (`None`).
    fn from(v: Option<T>) -> Self {
        v.map_or(Key::Unreadable, Key::Set)
    }
}

/// A problem with one key of a scope: the key, and a message that names the fix, in the
/// attribute's words. The attribute puts it on the key's tokens, the loader on its path.
pub type KeyProblem = (&'static str, String);

/// The backoff and jitter keys one scope wrote. The names are those of [`keys::BACKOFFS`] and
/// [`keys::JITTERS`] (another name is a problem of its own).
///
/// ```
/// use llm_retry_rules::strategy::{Key, StrategyKeys};
/// use llm_retry_rules::Jitter;
/// let keys = StrategyKeys { jitter: Key::Set("proportional"), jitter_factor: Key::Set(0.5), ..StrategyKeys::default() };
/// assert_eq!(keys.resolve(), Ok((None, Some(Jitter::Proportional { factor: 0.5 }))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StrategyKeys<'a> {
    /// `backoff = "..."`.
    pub backoff: Key<&'a str>,
    /// `delay`: the fixed backoff's delay.
    pub delay: Key<Duration>,
    /// `base`: the first delay of the linear, exponential and decorrelated backoffs.
    pub base: Key<Duration>,
    /// `max_delay`: the cap of the linear, exponential and decorrelated backoffs.
    pub max_delay: Key<Duration>,
    /// `min_delay`: the exponential backoff's floor.
    pub min_delay: Key<Duration>,
    /// `increment`: the linear backoff's step.
    pub increment: Key<Duration>,
    /// `multiplier`: the exponential backoff's growth.
    pub multiplier: Key<f64>,
    /// `jitter = "..."`.
    pub jitter: Key<&'a str>,
    /// `jitter_factor`: the proportional jitter's factor.
    pub jitter_factor: Key<f64>,
}

/// Each backoff value key and the backoffs it applies to.
const OWNERS: &[(&str, &[&str])] = &[
    (keys::DELAY, &["fixed"]),
    (keys::BASE, &["linear", "exponential", "decorrelated"]),
    (keys::MAX_DELAY, &["linear", "exponential", "decorrelated"]),
    (keys::MIN_DELAY, &["exponential"]),
    (keys::INCREMENT, &["linear"]),
    (keys::MULTIPLIER, &["exponential"]),
];

/// The attribute's message for a name that is not one of `valid`.
fn unknown_name(key: &str, name: &str, valid: &[&str]) -> String {
    let list = valid.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
    let hint =
        suggest::closest(name, valid.iter().copied()).map_or_else(String::new, |c| format!("; did you mean \"{c}\"?"));
    format!("unknown {key} \"{name}\"{hint}\nvalid: {list}")
}

impl<'a> StrategyKeys<'a> {
    /// Whether the scope wrote none of these keys.
    ///
    /// ```
    /// assert!(llm_retry_rules::strategy::StrategyKeys::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        *self == StrategyKeys::default()
    }

    /// Whether any key of the backoff (its name or one of its values) was written.
    fn any_backoff_key(&self) -> bool {
        self.backoff.is_written()
            || self.delay.is_written()
            || self.base.is_written()
            || self.max_delay.is_written()
            || self.min_delay.is_written()
            || self.increment.is_written()
            || self.multiplier.is_written()
    }

    /// Whether the value key `key` was written.
    fn written(&self, key: &str) -> bool {
        match key {
            keys::DELAY => self.delay.is_written(),
            keys::BASE => self.base.is_written(),
            keys::MAX_DELAY => self.max_delay.is_written(),
            keys::MIN_DELAY => self.min_delay.is_written(),
            keys::INCREMENT => self.increment.is_written(),
            keys::MULTIPLIER => self.multiplier.is_written(),
            _ => false,
        }
    }

    /// The backoff's name: `Ok(None)` when the scope names none (the keys then describe the
    /// default exponential backoff), `Err` when it cannot be read or is unknown.
    fn backoff_name(&self) -> Result<Option<&'a str>, Vec<KeyProblem>> {
        match self.backoff {
            Key::Unset => Ok(None),
            Key::Unreadable => Err(Vec::new()),
            Key::Set(n) => match keys::BACKOFFS.iter().find(|b| **b == n) {
                Some(_) => Ok(Some(n)),
                None => Err(vec![(keys::BACKOFF, unknown_name(keys::BACKOFF, n, keys::BACKOFFS))]),
            },
        }
    }

    /// The backoff the keys describe (`None` when the scope writes no backoff key): the named
    /// backoff, its unwritten values the rulebook's default of that name. A value key that
    /// does not apply to that backoff is a problem; `Err` with no problem means a key whose
    /// value could not be read, which its reader has reported.
    ///
    /// ```
    /// use llm_retry_rules::strategy::{Key, StrategyKeys};
    /// use llm_retry_rules::Backoff;
    /// use std::time::Duration;
    /// let keys = StrategyKeys { base: Key::Set(Duration::from_secs(1)), ..StrategyKeys::default() };
    /// let Some(Backoff::Exponential { base, .. }) = keys.backoff().unwrap() else { panic!() };
    /// assert_eq!(base, Duration::from_secs(1));
    /// ```
    pub fn backoff(&self) -> Result<Option<Backoff>, Vec<KeyProblem>> {
        let name = self.backoff_name()?;
        let kind = name.unwrap_or("exponential");
        let chosen = match name {
            Some(k) => format!("`backoff = \"{k}\"`"),
            None => "the default exponential backoff".to_owned(),
        };
        let mut problems = Vec::new();
        for (key, owners) in OWNERS {
            if self.written(key) && !owners.contains(&kind) {
                let list = owners.iter().map(|o| format!("`backoff = \"{o}\"`")).collect::<Vec<_>>().join(" or ");
                let hint = match (*key, kind) {
                    (keys::DELAY, "linear" | "exponential" | "decorrelated") => "; its first delay is `base`",
                    (keys::BASE, "fixed") => "; the fixed backoff waits `delay`",
                    _ => "",
                };
                problems.push((*key, format!("`{key}` does not apply to {chosen}, only to {list}{hint}")));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        if !self.any_backoff_key() {
            return Ok(None);
        }
        self.backoff_of(kind).map(Some).ok_or_else(Vec::new)
    }

    /// The backoff named `kind`, its unwritten values from the rulebook's default of that
    /// name; `None` if a value could not be read.
    fn backoff_of(&self, kind: &str) -> Option<Backoff> {
        // Each named default is of the variant its name says; `other => Some(other)` keeps
        // that default should it ever not be.
        Some(match kind {
            "none" => Backoff::None,
            "fixed" => match Backoff::DEFAULT_FIXED {
                Backoff::Fixed { delay } => Backoff::Fixed { delay: self.delay.or(delay)? },
                other => other,
            },
            "linear" => match Backoff::DEFAULT_LINEAR {
                Backoff::Linear { base, increment, max_delay } => Backoff::Linear {
                    base: self.base.or(base)?,
                    increment: self.increment.or(increment)?,
                    max_delay: self.max_delay.or(max_delay)?,
                },
                other => other,
            },
            "decorrelated" => match Backoff::DEFAULT_DECORRELATED {
                Backoff::Decorrelated { base, max_delay } => {
                    Backoff::Decorrelated { base: self.base.or(base)?, max_delay: self.max_delay.or(max_delay)? }
                }
                other => other,
            },
            _ => match Backoff::DEFAULT_EXPONENTIAL {
                Backoff::Exponential { base, multiplier, min_delay, max_delay } => Backoff::Exponential {
                    base: self.base.or(base)?,
                    multiplier: self.multiplier.or(multiplier)?,
                    min_delay: self.min_delay.or(min_delay)?,
                    max_delay: self.max_delay.or(max_delay)?,
                },
                other => other,
            },
        })
    }

    /// The jitter the keys describe (`None` when the scope leaves it to the policy, or to the
    /// default): a decorrelated backoff draws its own (so it takes no other `jitter`, and
    /// gets [`Jitter::Decorrelated`] without one), `backoff = "none"` has no delay to jitter,
    /// and `jitter_factor` belongs to `jitter = "proportional"`. `Err` with no problem means
    /// a name or value that could not be read, which its reader has reported.
    ///
    /// ```
    /// use llm_retry_rules::strategy::{Key, StrategyKeys};
    /// use llm_retry_rules::Jitter;
    /// let keys = StrategyKeys { backoff: Key::Set("decorrelated"), ..StrategyKeys::default() };
    /// assert_eq!(keys.jitter(), Ok(Some(Jitter::Decorrelated)));
    /// let keys = StrategyKeys { backoff: Key::Set("none"), jitter: Key::Set("full"), ..StrategyKeys::default() };
    /// assert_eq!(keys.jitter().unwrap_err()[0].0, "jitter");
    /// ```
    pub fn jitter(&self) -> Result<Option<Jitter>, Vec<KeyProblem>> {
        // The backoff's name is the backoff's problem: with none readable, only the checks that
        // do not depend on it are made.
        let backoff = self.backoff_name().ok().flatten();
        let name = match self.jitter {
            Key::Unset => None,
            Key::Unreadable => return Err(Vec::new()),
            Key::Set(n) if keys::JITTERS.contains(&n) => Some(n),
            Key::Set(n) => return Err(vec![(keys::JITTER, unknown_name(keys::JITTER, n, keys::JITTERS))]),
        };
        if let Some(name) = name {
            if backoff == Some("decorrelated") && name != "decorrelated" {
                return Err(vec![(
                    keys::JITTER,
                    "`backoff = \"decorrelated\"` draws its own jitter; remove `jitter` (or write `jitter = \"decorrelated\"`)"
                        .to_owned(),
                )]);
            }
            if backoff == Some("none") && name != "none" {
                return Err(vec![(
                    keys::JITTER,
                    "`backoff = \"none\"` retries at once, so there is no delay to jitter; remove `jitter`".to_owned(),
                )]);
            }
        }
        if self.jitter_factor.is_written() && name != Some("proportional") {
            let current =
                name.map_or_else(|| "the default `jitter = \"full\"`".to_owned(), |n| format!("`jitter = \"{n}\"`"));
            return Err(vec![(
                keys::JITTER_FACTOR,
                format!(
                    "`jitter_factor` applies only to `jitter = \"proportional\"`, not {current}; remove it or set that jitter"
                ),
            )]);
        }
        Ok(match name {
            None if backoff == Some("decorrelated") => Some(Jitter::Decorrelated),
            None => None,
            Some("none") => Some(Jitter::None),
            Some("full") => Some(Jitter::Full),
            Some("equal") => Some(Jitter::Equal),
            Some("proportional") => Some(Jitter::Proportional {
                factor: self.jitter_factor.or(Jitter::DEFAULT_PROPORTIONAL_FACTOR).ok_or_else(Vec::new)?,
            }),
            Some(_) => Some(Jitter::Decorrelated),
        })
    }

    /// The backoff and the jitter the keys describe, or every problem with them, in the order
    /// of [`backoff`](Self::backoff) then [`jitter`](Self::jitter). `Err` with no problem means
    /// a name or value that could not be read, which its reader has reported.
    ///
    /// ```
    /// use llm_retry_rules::strategy::{Key, StrategyKeys};
    /// let keys = StrategyKeys { backoff: Key::Set("decorrelated"), jitter: Key::Set("equal"), ..StrategyKeys::default() };
    /// let problems = keys.resolve().unwrap_err();
    /// assert_eq!(problems[0].1, "`backoff = \"decorrelated\"` draws its own jitter; remove `jitter` (or write `jitter = \"decorrelated\"`)");
    /// ```
    pub fn resolve(&self) -> Result<(Option<Backoff>, Option<Jitter>), Vec<KeyProblem>> {
        match (self.backoff(), self.jitter()) {
            (Ok(b), Ok(j)) => Ok((b, j)),
            (b, j) => Err(b.err().into_iter().chain(j.err()).flatten().collect()),
        }
    }

    /// The keys that describe `backoff` and `jitter`, every value written out, so that
    /// [`resolve`](Self::resolve) gives them back. Where the keys cannot say a combination
    /// the builder accepts, they say its equivalent: a decorrelated backoff draws its own
    /// jitter and `backoff = "none"` has nothing to jitter, so with those the jitter is left
    /// out (it changes no delay); it then resolves to [`Jitter::Decorrelated`] or to none.
    ///
    /// ```
    /// use llm_retry_rules::strategy::{Key, StrategyKeys};
    /// use llm_retry_rules::{Backoff, Jitter};
    /// let keys = StrategyKeys::describing(Some(Backoff::DEFAULT_FIXED), Some(Jitter::Equal));
    /// assert_eq!(keys.resolve(), Ok((Some(Backoff::DEFAULT_FIXED), Some(Jitter::Equal))));
    /// let keys = StrategyKeys::describing(Some(Backoff::DEFAULT_DECORRELATED), Some(Jitter::Full));
    /// assert_eq!((keys.jitter, keys.resolve()), (Key::Unset, Ok((Some(Backoff::DEFAULT_DECORRELATED), Some(Jitter::Decorrelated)))));
    /// ```
    pub fn describing(backoff: Option<Backoff>, jitter: Option<Jitter>) -> StrategyKeys<'static> {
        let mut s = StrategyKeys::default();
        match backoff {
            None => {}
            Some(Backoff::None) => s.backoff = Key::Set("none"),
            Some(Backoff::Fixed { delay }) => (s.backoff, s.delay) = (Key::Set("fixed"), Key::Set(delay)),
            Some(Backoff::Linear { base, increment, max_delay }) => {
                s.backoff = Key::Set("linear");
                (s.base, s.increment, s.max_delay) = (Key::Set(base), Key::Set(increment), Key::Set(max_delay));
            }
            Some(Backoff::Exponential { base, multiplier, min_delay, max_delay }) => {
                s.backoff = Key::Set("exponential");
                (s.base, s.multiplier, s.min_delay, s.max_delay) =
                    (Key::Set(base), Key::Set(multiplier), Key::Set(min_delay), Key::Set(max_delay));
            }
            Some(Backoff::Decorrelated { base, max_delay }) => {
                s.backoff = Key::Set("decorrelated");
                (s.base, s.max_delay) = (Key::Set(base), Key::Set(max_delay));
            }
        }
        if matches!(backoff, Some(Backoff::None | Backoff::Decorrelated { .. })) {
            return s;
        }
        s.jitter = match jitter {
            None => Key::Unset,
            Some(Jitter::None) => Key::Set("none"),
            Some(Jitter::Full) => Key::Set("full"),
            Some(Jitter::Equal) => Key::Set("equal"),
            Some(Jitter::Proportional { factor }) => {
                s.jitter_factor = Key::Set(factor);
                Key::Set("proportional")
            }
            Some(Jitter::Decorrelated) => Key::Set("decorrelated"),
        };
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn keys<'a>(f: impl FnOnce(&mut StrategyKeys<'a>)) -> StrategyKeys<'a> {
        let mut k = StrategyKeys::default();
        f(&mut k);
        k
    }

    #[test]
    fn every_misplaced_key_is_a_problem() {
        let k = keys(|k| {
            k.backoff = Key::Set("fixed");
            k.base = Key::Set(S);
            k.multiplier = Key::Set(2.0);
            k.increment = Key::Unreadable;
        });
        let problems = k.resolve().unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.0).collect();
        assert_eq!(keys, ["base", "increment", "multiplier"]);
        assert_eq!(
            problems[0].1,
            "`base` does not apply to `backoff = \"fixed\"`, only to `backoff = \"linear\"` or `backoff = \"exponential\"` or `backoff = \"decorrelated\"`; the fixed backoff waits `delay`"
        );
    }

    #[test]
    fn unset_values_come_from_the_named_default() {
        let k = keys(|k| k.backoff = Key::Set("linear"));
        assert_eq!(k.resolve(), Ok((Some(Backoff::DEFAULT_LINEAR), None)));
        let k = keys(|k| k.min_delay = Key::Set(S));
        let want = match Backoff::DEFAULT_EXPONENTIAL {
            Backoff::Exponential { base, multiplier, max_delay, .. } => {
                Backoff::Exponential { base, multiplier, min_delay: S, max_delay }
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(k.resolve(), Ok((Some(want), None)));
    }

    #[test]
    fn an_unreadable_value_is_an_error_with_nothing_more_to_say() {
        assert_eq!(keys(|k| k.delay = Key::Unreadable).resolve().unwrap_err().len(), 1);
        let k = keys(|k| (k.backoff, k.delay) = (Key::Set("fixed"), Key::Unreadable));
        assert_eq!(k.resolve(), Err(Vec::new()));
        let k = keys(|k| (k.backoff, k.jitter_factor) = (Key::Unreadable, Key::Set(0.5)));
        assert_eq!(k.resolve().unwrap_err().iter().map(|p| p.0).collect::<Vec<_>>(), ["jitter_factor"]);
        let k = keys(|k| (k.jitter, k.jitter_factor) = (Key::Set("proportional"), Key::Unreadable));
        assert_eq!(k.resolve(), Err(Vec::new()));
    }

    #[test]
    fn jitters_that_mean_nothing_are_problems() {
        for (backoff, jitter, ok) in [
            ("decorrelated", "decorrelated", true),
            ("decorrelated", "full", false),
            ("none", "none", true),
            ("none", "equal", false),
            ("fixed", "decorrelated", true),
        ] {
            let k = keys(|k| (k.backoff, k.jitter) = (Key::Set(backoff), Key::Set(jitter)));
            assert_eq!(k.resolve().is_ok(), ok, "{backoff} {jitter}");
        }
        let k = keys(|k| (k.jitter, k.jitter_factor) = (Key::Set("equal"), Key::Set(0.5)));
        assert!(k.resolve().unwrap_err()[0].1.contains("not `jitter = \"equal\"`"));
    }

    #[test]
    fn unknown_names_say_the_valid_ones() {
        let k = keys(|k| k.backoff = Key::Set("expo"));
        assert_eq!(
            k.resolve().unwrap_err()[0].1,
            "unknown backoff \"expo\"; did you mean \"exponential\"?\nvalid: \"none\", \"fixed\", \"linear\", \"exponential\", \"decorrelated\""
        );
    }

    #[test]
    fn described_keys_resolve_to_the_same_or_its_equivalent() {
        let backoffs = [
            Backoff::None,
            Backoff::DEFAULT_FIXED,
            Backoff::DEFAULT_LINEAR,
            Backoff::DEFAULT_EXPONENTIAL,
            Backoff::DEFAULT_DECORRELATED,
        ];
        let jitters =
            [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Proportional { factor: 0.5 }, Jitter::Decorrelated];
        for b in backoffs.map(Some).into_iter().chain([None]) {
            for j in jitters.map(Some).into_iter().chain([None]) {
                let (rb, rj) = StrategyKeys::describing(b, j).resolve().unwrap();
                assert_eq!(rb, b);
                let want = match b {
                    Some(Backoff::None) => None,
                    Some(Backoff::Decorrelated { .. }) => Some(Jitter::Decorrelated),
                    _ => j,
                };
                assert_eq!(rj, want, "{b:?} {j:?}");
            }
        }
    }
}
