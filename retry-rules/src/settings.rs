//! The policy's plain settings: keys whose one value goes into the builder as it is, read and
//! written the same way by the attribute and by configuration files. Each is one row of
//! [`PLAIN`]: its key, the kind of value, the builder method that takes it, and how a policy
//! gives it back. The attribute, its expansion and the loader handle every row alike, so a new
//! plain setting is its key (`keys.rs`), its builder method and check (`policy.rs`), and its row
//! here.
//!
//! `max`, `on`, `rule` and the backoff and jitter keys are not plain: each relates to others
//! (`strategy`, the rules), and each reader handles them itself.
//!
//! ```
//! use llm_retry_rules::settings::{self, Value};
//! use llm_retry_rules::{Policy, keys};
//! let s = settings::find(keys::MAX_RETRY_AFTER).unwrap();
//! let p = (s.set)(Policy::builder(), Value::Duration(std::time::Duration::from_secs(30))).build().unwrap();
//! assert_eq!((s.get)(&p), Value::Duration(std::time::Duration::from_secs(30)));
//! ```

use crate::keys;
use crate::policy::{Policy, PolicyBuilder};
use std::time::Duration;

/// A plain setting's value.
///
/// ```
/// assert_ne!(llm_retry_rules::settings::Value::Flag(true), llm_retry_rules::settings::Value::Flag(false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// `true` or `false`.
    Flag(bool),
    /// A duration, written with its unit (`"30s"`).
    Duration(Duration),
}

/// How a plain setting's value is written.
///
/// ```
/// use llm_retry_rules::{keys, settings::{self, Kind}};
/// assert_eq!(settings::find(keys::RETRY_AFTER).unwrap().kind, Kind::Flag);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `true` or `false`.
    Flag,
    /// A duration string.
    Duration,
}

/// One plain setting: its key, its kind of value, the builder method that takes it, and how
/// it goes into a builder and comes back out of a policy.
///
/// ```
/// let s = llm_retry_rules::settings::find("retry_after").unwrap();
/// assert_eq!(s.method, "respect_retry_after");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Plain {
    /// The key, as the attribute and configuration files write it.
    pub key: &'static str,
    /// Its kind of value.
    pub kind: Kind,
    /// The [`PolicyBuilder`] method that takes it, for generated code.
    pub method: &'static str,
    /// The builder with this setting (a value of another kind leaves the builder as it is;
    /// readers read each setting by its [`kind`](Self::kind)).
    pub set: fn(PolicyBuilder, Value) -> PolicyBuilder,
    /// The setting in force in a policy.
    pub get: fn(&Policy) -> Value,
}

/// Two rows are the same setting when their keys are.
impl PartialEq for Plain {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Plain {}

/// Every plain setting.
pub const PLAIN: &[Plain] = &[
    Plain {
        key: keys::RETRY_AFTER,
        kind: Kind::Flag,
        method: "respect_retry_after",
        set: |b, v| match v {
            Value::Flag(yes) => b.respect_retry_after(yes),
            Value::Duration(_) => b,
        },
        get: |p| Value::Flag(p.respects_retry_after()),
    },
    Plain {
        key: keys::MAX_RETRY_AFTER,
        kind: Kind::Duration,
        method: "max_retry_after",
        set: |b, v| match v {
            Value::Duration(d) => b.max_retry_after(d),
            Value::Flag(_) => b,
        },
        get: |p| Value::Duration(p.max_retry_after()),
    },
];

/// The plain setting of `key`, if it is one.
///
/// ```
/// assert!(llm_retry_rules::settings::find("max_retry_after").is_some());
/// assert!(llm_retry_rules::settings::find("max").is_none());
/// ```
pub fn find(key: &str) -> Option<&'static Plain> {
    PLAIN.iter().find(|p| p.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row sets what it gets back, and names a key the attribute knows.
    #[test]
    fn every_row_round_trips() {
        for p in PLAIN {
            assert!(keys::TOP.contains(&p.key), "{}", p.key);
            let value = match p.kind {
                Kind::Flag => Value::Flag(!matches!((p.get)(&Policy::DEFAULT), Value::Flag(true))),
                Kind::Duration => Value::Duration(Duration::from_millis(1234)),
            };
            let policy = (p.set)(Policy::builder(), value).build().unwrap();
            assert_eq!((p.get)(&policy), value, "{}", p.key);
            assert_ne!((p.get)(&Policy::DEFAULT), value, "{}: the test value must differ from the default", p.key);
        }
    }
}
