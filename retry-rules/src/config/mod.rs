//! A policy read from configuration (feature `serde`): the attribute's keys, in a TOML or
//! JSON file or the environment, checked by the same rulebook.
//!
//! [`Policy`] deserializes from a map of the attribute's keys, in human units, and
//! serializes back to one; [`PolicySpec`] is that map as written, before the rulebook's
//! checks. Every error names the key (a path relative to the policy, as `max_delay` or
//! `rule[1].max`) and says what is allowed; the rulebook's own problems read as
//! [`Problem`]'s messages. An unknown key suggests the closest.
//!
//! ```toml
//! max = 5
//! base = "250ms"
//! max_delay = "10s"
//! on = ["RateLimited", "Overloaded", 503]
//! max_retry_after = "60s"
//!
//! [[rule]]
//! on = "RateLimited"
//! max = 3
//! backoff = "fixed"
//! delay = "20s"
//! ```
//!
//! The runtime's `llm_retry::config` reads such files, with the per-endpoint settings, and
//! adds the path of the key within the file.
//!
//! ```
//! use llm_retry_rules::{Policy, Problem, config::PolicySpec};
//! use serde::de::{IntoDeserializer, value::{Error, MapDeserializer}};
//!
//! let keys = [("max", "5"), ("base", "250ms")];
//! let policy: Policy = serde::Deserialize::deserialize(MapDeserializer::<_, Error>::new(keys.into_iter())).unwrap();
//! assert_eq!(policy.max_attempts(), 5);
//!
//! let keys = [("max", "0")];
//! let spec: PolicySpec = serde::Deserialize::deserialize(MapDeserializer::<_, Error>::new(keys.into_iter())).unwrap();
//! let e = spec.build().unwrap_err();
//! assert_eq!((e.path(), e.problem()), ("max", Some(Problem::ZeroAttempts)));
//! ```

mod strategy;
pub mod value;
mod write;

use crate::error::{PolicyError, Problem};
use crate::keys;
use crate::policy::Policy;
use crate::retry_on::RetryOn;
use crate::rule::{Rule, Target as RuleTarget};
use crate::settings::{self, Kind, Plain, Value};
use crate::{ErrorKind, Field};
use core::fmt;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strategy::Strategy;
use value::{Count, Flag, Human, Target};

/// A policy as a configuration writes it: the attribute's keys and their values, read but
/// not yet checked by the rulebook. [`build`](Self::build) checks it; deserializing a
/// [`Policy`] does both.
///
/// ```
/// use llm_retry_rules::{Policy, config::PolicySpec};
/// let spec = PolicySpec::from_policy(&Policy::DEFAULT);
/// assert_eq!(format!("{:?}", spec.build().unwrap()), format!("{:?}", Policy::DEFAULT));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicySpec {
    max: Option<u32>,
    strategy: Strategy,
    on: Option<Vec<Target>>,
    rules: Option<Vec<RuleSpec>>,
    /// The plain settings ([`settings::PLAIN`]) written, in the order written.
    plain: Vec<(&'static Plain, Value)>,
}

/// One `[[rule]]`: its target (`on`), and its own `max` and backoff keys.
#[derive(Debug, Clone, PartialEq)]
struct RuleSpec {
    on: Target,
    max: Option<u32>,
    strategy: Strategy,
}

/// Why a configured policy cannot be used: the key (a path relative to the policy, like
/// `max_delay` or `rule[1].max`), what is wrong and what is allowed, and the rulebook's
/// [`Problem`] when it was the rulebook's check that failed.
///
/// ```
/// use llm_retry_rules::{Problem, config::SpecError};
/// let e = SpecError::from_problem("rule[1].max", Problem::ZeroRuleAttempts);
/// assert_eq!(e.to_string(), "rule[1].max: a rule's max_attempts must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    path: String,
    message: String,
    problem: Option<Problem>,
}

impl SpecError {
    /// An error at `path` whose message is `problem`'s.
    ///
    /// ```
    /// let e = llm_retry_rules::config::SpecError::from_problem("max", llm_retry_rules::Problem::ZeroAttempts);
    /// assert_eq!(e.problem(), Some(llm_retry_rules::Problem::ZeroAttempts));
    /// ```
    pub fn from_problem(path: impl Into<String>, problem: Problem) -> Self {
        SpecError { path: path.into(), message: problem.to_string(), problem: Some(problem) }
    }

    /// An error at `path` (relative to the map being read, like `max_delay`), for a key
    /// that cannot be read or does not apply: `message` says what is allowed.
    ///
    /// ```
    /// let e = llm_retry_rules::config::SpecError::at("burst", "a budget's burst is at least 1");
    /// assert_eq!(e.to_string(), "burst: a budget's burst is at least 1");
    /// ```
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError { path: path.into(), message: message.into(), problem: None }
    }

    /// The key, as a path relative to the policy: `max_delay`, `on[2]`, `rule[1].max`.
    ///
    /// ```
    /// let e = llm_retry_rules::config::SpecError::from_problem("on[0]", llm_retry_rules::Problem::InvalidStatus(401));
    /// assert_eq!(e.path(), "on[0]");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, and what is allowed.
    ///
    /// ```
    /// let e = llm_retry_rules::config::SpecError::from_problem("max", llm_retry_rules::Problem::ZeroAttempts);
    /// assert!(e.message().contains("at least 1"));
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The rulebook's problem, when the rulebook's check failed (`None` for a key that could
    /// not be read, or that does not apply).
    ///
    /// ```
    /// let e = llm_retry_rules::config::SpecError::from_problem("max", llm_retry_rules::Problem::ZeroAttempts);
    /// assert_eq!(e.problem(), Some(llm_retry_rules::Problem::ZeroAttempts));
    /// ```
    pub fn problem(&self) -> Option<Problem> {
        self.problem
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for SpecError {}

/// A key's value, set once: a second occurrence (JSON allows them) is an error.
pub(crate) trait Slot<T> {
    fn put<E: de::Error>(&mut self, key: &str, value: T) -> Result<(), E>;
}

impl<T> Slot<T> for Option<T> {
    fn put<E: de::Error>(&mut self, key: &str, value: T) -> Result<(), E> {
        if self.is_some() {
            return Err(E::custom(SpecError::at(key, format!("`{key}` is set twice; keep one"))));
        }
        *self = Some(value);
        Ok(())
    }
}

/// Why a key of the attribute cannot be set in a configuration's policy, if it is one.
fn not_configurable(key: &str) -> Option<&'static str> {
    Some(match key {
        keys::DEADLINE | keys::ATTEMPT_TIMEOUT | keys::FIRST_CHUNK_TIMEOUT | keys::IDLE_TIMEOUT => {
            "is a call's time limit, not part of a policy: set it in the attribute or on the call"
        }
        keys::VALIDATE | keys::NOTIFY | keys::WHEN | keys::CRATE | keys::STREAM => {
            "names code, so it is set in the attribute, not in configuration"
        }
        keys::NAME => "is the call site's stats key: set it in the attribute",
        keys::LIMITER | keys::BUDGET | keys::ADAPTIVE => {
            "is an endpoint's setting: read it with the policy through `llm_retry::config`, as a table of its own"
        }
        _ => return None,
    })
}

/// The message for a key that is not one of `valid`: the key it is probably meant to be,
/// and the valid ones.
///
/// ```
/// let m = llm_retry_rules::config::unknown_key("max_attempts", llm_retry_rules::config::PolicySpec::KEYS);
/// assert!(m.contains("did you mean `max`?"));
/// let m = llm_retry_rules::config::unknown_key("max_dely", llm_retry_rules::config::PolicySpec::KEYS);
/// assert!(m.contains("did you mean `max_delay`?"));
/// ```
pub fn unknown_key(key: &str, valid: &[&str]) -> String {
    if let Some(why) = not_configurable(key).filter(|_| !valid.contains(&key)) {
        return format!("`{key}` {why}");
    }
    let hint = keys::unknown_key_hint(key, valid);
    let list = valid.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    format!("unknown key `{key}`{hint}; valid keys: {list}")
}

impl PolicySpec {
    /// The keys a policy reads, the attribute's own: `max`, the backoff and jitter keys, `on`,
    /// `rule`, `retry_after` and `max_retry_after`.
    ///
    /// ```
    /// assert!(llm_retry_rules::config::PolicySpec::KEYS.contains(&"max_delay"));
    /// ```
    pub const KEYS: &'static [&'static str] = keys::POLICY_KEYS;

    /// Reads `key`'s value from `map` if it is one of [`KEYS`](Self::KEYS); `Ok(false)`,
    /// with the value left unread, if it is not. For a map that holds a policy's keys among
    /// others of its own (the runtime's endpoint settings).
    ///
    /// ```
    /// use llm_retry_rules::config::PolicySpec;
    /// use serde::de::{MapAccess, value::{Error, MapDeserializer}};
    /// let mut map = MapDeserializer::<_, Error>::new([("max", "3")].into_iter());
    /// let key: String = map.next_key().unwrap().unwrap();
    /// let mut spec = PolicySpec::default();
    /// assert!(spec.read_key(&key, &mut map).unwrap());
    /// assert_eq!(spec.build().unwrap().max_attempts(), 3);
    /// ```
    pub fn read_key<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            keys::MAX => self.max.put(key, map.next_value::<Count>()?.0)?,
            keys::ON => self.on.put(key, read_on(map)?)?,
            keys::RULE => self.rules.put(key, map.next_value::<Vec<RuleSpec>>()?)?,
            _ => match settings::find(key) {
                Some(plain) => {
                    if self.plain.iter().any(|(p, _)| p.key == key) {
                        return Err(de::Error::custom(SpecError::at(key, format!("`{key}` is set twice; keep one"))));
                    }
                    let value = match plain.kind {
                        Kind::Flag => Value::Flag(map.next_value::<Flag>()?.0),
                        Kind::Duration => Value::Duration(map.next_value::<Human>()?.0),
                    };
                    self.plain.push((plain, value));
                }
                None => return self.strategy.read(key, map),
            },
        }
        Ok(true)
    }

    /// The policy, checked by the rulebook: the builder's own [`build`](crate::PolicyBuilder::build),
    /// after the checks only a written policy needs (keys that do not apply to the chosen
    /// backoff). Its error names the key.
    ///
    /// ```
    /// use llm_retry_rules::config::PolicySpec;
    /// assert_eq!(PolicySpec::default().build().unwrap().max_attempts(), 4);
    /// ```
    pub fn build(&self) -> Result<Policy, SpecError> {
        let mut b = Policy::builder();
        if let Some(max) = self.max {
            b = b.max_attempts(max);
        }
        let (backoff, jitter) = self.strategy.resolve()?;
        if let Some(backoff) = backoff {
            b = b.backoff(backoff);
        }
        if let Some(jitter) = jitter {
            b = b.jitter(jitter);
        }
        if let Some(on) = &self.on {
            b = b.retry_on(on.iter().fold(RetryOn::none(), |on, t| match *t {
                Target::Kind(k) => on.kind(k),
                Target::Status(s) => on.status(s),
            }));
        }
        for (i, r) in self.rules.iter().flatten().enumerate() {
            let mut rule = match r.on {
                Target::Kind(k) => Rule::kind(k),
                Target::Status(s) => Rule::status(s),
            };
            if let Some(max) = r.max {
                rule = rule.max_attempts(max);
            }
            let (backoff, jitter) = r.strategy.resolve().map_err(|e| e.within(&format!("rule[{i}]")))?;
            if let Some(backoff) = backoff {
                rule = rule.backoff(backoff);
            }
            if let Some(jitter) = jitter {
                rule = rule.jitter(jitter);
            }
            b = b.rule(rule);
        }
        for &(plain, value) in &self.plain {
            b = (plain.set)(b, value);
        }
        b.build().map_err(|e| SpecError::from_problem(self.path_of(&e), e.problem()))
    }

    /// The key a rulebook error is about, as a path.
    fn path_of(&self, e: &PolicyError) -> String {
        let on_index = |t: Option<Target>| {
            let i = t.and_then(|t| self.on.as_ref()?.iter().position(|x| *x == t));
            i.map_or_else(|| keys::ON.to_owned(), |i| format!("{}[{i}]", keys::ON))
        };
        let own = match (e.problem(), e.field()) {
            (Problem::NeverRetryableKind(k), _) => return on_index(Some(Target::Kind(k))),
            (Problem::InvalidStatus(s), _) => return on_index(Some(Target::Status(s))),
            (_, Field::Rule) => {
                if e.rule().is_none() {
                    return keys::RULE.to_owned();
                }
                keys::ON
            }
            (_, field) => field.key(),
        };
        match e.rule() {
            Some(i) => format!("{}[{i}].{own}", keys::RULE),
            None => own.to_owned(),
        }
    }

    /// The keys that describe `policy`, every value written out (durations in human units),
    /// so that [`build`](Self::build) gives the same policy back, or its equivalent where the
    /// keys cannot say what the builder accepted, as the attribute cannot either:
    /// - a jitter with a decorrelated backoff (which draws its own) or with `backoff = "none"`
    ///   (nothing to jitter) is left out ([`StrategyKeys::describing`](crate::strategy::StrategyKeys::describing));
    /// - a rule that changes nothing (no `max`, backoff or jitter) is left out;
    /// - an empty retry set, which retries nothing, is written `max = 1` with no `on`.
    ///
    /// ```
    /// use llm_retry_rules::{Policy, RetryOn, config::PolicySpec};
    /// let p = Policy::builder().max_attempts(6).build().unwrap();
    /// assert_eq!(PolicySpec::from_policy(&p).build().unwrap().max_attempts(), 6);
    /// let never = Policy::builder().retry_on(RetryOn::none()).build().unwrap();
    /// assert_eq!(PolicySpec::from_policy(&never).build().unwrap().max_attempts(), 1);
    /// ```
    pub fn from_policy(policy: &Policy) -> PolicySpec {
        let on = policy.retry_on();
        let mut targets: Vec<Target> =
            ErrorKind::ALL.into_iter().filter(|k| on.contains_kind(*k)).map(Target::Kind).collect();
        targets.extend((400..=599).filter(|s| on.contains_status(*s)).map(Target::Status));
        let rules = rules_of(policy)
            .into_iter()
            .filter(|r| r.max_attempts.is_some() || r.backoff.is_some() || r.jitter.is_some())
            .map(|r| RuleSpec {
                on: match r.target {
                    RuleTarget::Kind(k) => Target::Kind(k),
                    RuleTarget::Status(s) => Target::Status(s),
                },
                max: r.max_attempts,
                strategy: Strategy::of(r.backoff, r.jitter),
            })
            .collect::<Vec<_>>();
        let retries_nothing = targets.is_empty();
        PolicySpec {
            max: Some(if retries_nothing { 1 } else { policy.max_attempts() }),
            strategy: Strategy::of(Some(policy.backoff()), Some(policy.jitter())),
            on: (!retries_nothing).then_some(targets),
            rules: (!rules.is_empty()).then_some(rules),
            plain: settings::PLAIN.iter().map(|p| (p, (p.get)(policy))).collect(),
        }
    }
}

/// A policy's rules, in the order they were added: each is the one [`Policy::rule_for`]
/// finds for its own target, since a valid policy has one rule per target.
fn rules_of(policy: &Policy) -> Vec<Rule> {
    let mut found: Vec<(usize, Rule)> = Vec::new();
    let kinds = ErrorKind::ALL.into_iter().map(|k| policy.rule_for(k, None));
    let statuses = (100..=599).map(|s| policy.rule_for(ErrorKind::Other, Some(s)).filter(|(_, r)| r.is_status()));
    for (i, rule) in kinds.chain(statuses).flatten() {
        if !found.iter().any(|(j, _)| *j == i) {
            found.push((i, *rule));
        }
    }
    found.sort_by_key(|(i, _)| *i);
    found.into_iter().map(|(_, r)| r).collect()
}

impl SpecError {
    /// The same error, its path inside `scope` (`rule[1]`).
    fn within(self, scope: &str) -> SpecError {
        SpecError { path: format!("{scope}.{}", self.path), ..self }
    }
}

/// `on = [...]`: a list of kinds and statuses; a single one is taken as a list of one.
fn read_on<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Vec<Target>, A::Error> {
    struct OnList;
    impl<'de> Visitor<'de> for OnList {
        type Value = Vec<Target>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of error kinds and HTTP statuses, like [\"RateLimited\", \"Overloaded\", 503]")
        }
        fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Vec<Target>, S::Error> {
            let mut out: Vec<Target> = Vec::new();
            while let Some(t) = seq.next_element::<Target>()? {
                if out.contains(&t) {
                    return Err(de::Error::custom(format!("`{t}` is listed twice in `on`; remove one")));
                }
                out.push(t);
            }
            if out.is_empty() {
                return Err(de::Error::custom(keys::EMPTY_ON));
            }
            Ok(out)
        }
    }
    struct On(Vec<Target>);
    impl<'de> Deserialize<'de> for On {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_seq(OnList).map(On)
        }
    }
    map.next_value::<On>().map(|o| o.0)
}

impl<'de> Deserialize<'de> for RuleSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = RuleSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rule, like { on = \"RateLimited\", max = 3, backoff = \"fixed\", delay = \"60s\" }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RuleSpec, A::Error> {
                let (mut on, mut max, mut strategy) = (None, None, Strategy::default());
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        keys::ON => on.put(&key, map.next_value::<Target>()?)?,
                        keys::MAX => max.put(&key, map.next_value::<Count>()?.0)?,
                        _ if strategy.read(&key, &mut map)? => {}
                        _ => {
                            let message = if keys::TOP.contains(&key.as_str()) {
                                format!("`{key}` cannot be set per kind; move it out of the rule, to the policy")
                            } else {
                                unknown_key(&key, &[&[keys::ON][..], keys::RULE_KEYS].concat())
                            };
                            return Err(de::Error::custom(SpecError::at(key, message)));
                        }
                    }
                }
                let Some(on) = on else {
                    return Err(de::Error::custom(SpecError::at(
                        keys::ON,
                        "a rule names the kind or status it applies to, like { on = \"RateLimited\", max = 3 }",
                    )));
                };
                if max.is_none() && strategy.is_empty() {
                    // At the rule itself: its path is the rule's (`rule[1]`).
                    return Err(de::Error::custom(keys::rule_changes_nothing(on)));
                }
                Ok(RuleSpec { on, max, strategy })
            }
        }
        d.deserialize_map(RuleVisitor)
    }
}

impl<'de> Deserialize<'de> for PolicySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = PolicySpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a policy: a table of the attribute's keys, like max = 5")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PolicySpec, A::Error> {
                let mut spec = PolicySpec::default();
                while let Some(key) = map.next_key::<String>()? {
                    if !spec.read_key(&key, &mut map)? {
                        let message = unknown_key(&key, PolicySpec::KEYS);
                        return Err(de::Error::custom(SpecError::at(key, message)));
                    }
                }
                Ok(spec)
            }
        }
        d.deserialize_map(SpecVisitor)
    }
}

/// A policy reads from a map of the attribute's keys ([`PolicySpec`]) and is checked by the
/// rulebook; the error names the key.
impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PolicySpec::deserialize(d)?.build().map_err(de::Error::custom)
    }
}

/// A policy writes as the attribute's keys, every value written out, durations in human units.
impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PolicySpec::from_policy(self).serialize(s)
    }
}

#[cfg(test)]
mod tests;
