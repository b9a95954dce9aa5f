//! Writing a policy back as the attribute's keys: [`PolicySpec`]'s `Serialize` and
//! `write_keys`, and its rules and targets as written.

use super::value::{self, Target};
use super::{PolicySpec, RuleSpec};
use crate::keys;
use crate::settings::Value;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

impl Serialize for PolicySpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        self.write_keys(&mut map)?;
        map.end()
    }
}

impl PolicySpec {
    /// Writes the keys that are set into `map`: for a map that holds a policy's keys among
    /// others of its own (the runtime's endpoint settings).
    ///
    /// ```
    /// use llm_retry_rules::{Policy, config::PolicySpec};
    /// use serde::ser::{SerializeMap, Serializer};
    /// let mut out = serde_json::Serializer::new(Vec::new());
    /// let mut map = out.serialize_map(None).unwrap();
    /// map.serialize_entry("name", "chat").unwrap();
    /// PolicySpec::from_policy(&Policy::DEFAULT).write_keys(&mut map).unwrap();
    /// map.end().unwrap();
    /// let json = String::from_utf8(out.into_inner()).unwrap();
    /// assert!(json.starts_with(r#"{"name":"chat","max":4,"backoff":"exponential","base":"500ms""#), "{json}");
    /// ```
    pub fn write_keys<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        if let Some(max) = self.max {
            map.serialize_entry(keys::MAX, &max)?;
        }
        self.strategy.write(map)?;
        if let Some(on) = &self.on {
            map.serialize_entry(keys::ON, &on.iter().map(TargetOut).collect::<Vec<_>>())?;
        }
        for &(plain, value) in &self.plain {
            match value {
                Value::Flag(yes) => map.serialize_entry(plain.key, &yes)?,
                Value::Duration(d) => map.serialize_entry(plain.key, &value::written(d))?,
            }
        }
        // Last: TOML writes a list of tables after the plain keys.
        if let Some(rules) = &self.rules {
            map.serialize_entry(keys::RULE, rules)?;
        }
        Ok(())
    }
}

/// A target as written: a kind's name, or a status number.
struct TargetOut<'a>(&'a Target);

impl Serialize for TargetOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Target::Kind(k) => s.serialize_str(k.name()),
            Target::Status(n) => s.serialize_u16(*n),
        }
    }
}

impl Serialize for RuleSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(keys::ON, &TargetOut(&self.on))?;
        if let Some(max) = self.max {
            map.serialize_entry(keys::MAX, &max)?;
        }
        self.strategy.write(&mut map)?;
        map.end()
    }
}
