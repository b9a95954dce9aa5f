//! The loaders: TOML, JSON and the environment, each error with the path of its key (with
//! serde_path_to_error) and, for files, its line and column.

use super::EndpointConfig;
use core::fmt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a configuration could not be read: the key (a path like `policies.chat.max_delay` or
/// `rule[1].max`; an environment variable's name for [`from_env`]), what is wrong and what is
/// allowed, and where in the file.
///
/// ```
/// let e = llm_retry_runtime::config::from_toml_str("max = 3\nmax_delay = \"0s\"").unwrap_err();
/// assert_eq!(e.path(), "max_delay");
/// assert_eq!(e.to_string(), "max_delay: a zero max_delay caps every delay at zero; use a cap like 20 s");
///
/// let e = llm_retry_runtime::config::from_toml_str("max = 3\nbase = 500").unwrap_err();
/// assert_eq!((e.path(), e.line()), ("base", Some(2)));
/// assert!(e.to_string().ends_with("write \"500ms\" or \"500s\" (units: ms, s, m, h) (line 2, column 8)"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    path: String,
    message: String,
    location: Option<(usize, usize)>,
}

impl ConfigError {
    /// The key, as a path from the top of the input (empty for an error in the file's syntax).
    ///
    /// ```
    /// let e = llm_retry_runtime::config::from_json_str(r#"{"budget": {"burst": 0}}"#).unwrap_err();
    /// assert_eq!(e.path(), "budget.burst");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, and what is allowed.
    ///
    /// ```
    /// let e = llm_retry_runtime::config::from_toml_str("max = 0").unwrap_err();
    /// assert!(e.message().contains("at least 1"));
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The line (1-based) the error is at, when the format says.
    ///
    /// ```
    /// let e = llm_retry_runtime::config::from_toml_str("\n\nmax = -1").unwrap_err();
    /// assert_eq!(e.line(), Some(3));
    /// ```
    pub fn line(&self) -> Option<usize> {
        self.location.map(|l| l.0)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Whether `s` is a key path as this crate's errors begin with (`max_delay`, `rule[1].max`).
fn is_path(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
}

impl ConfigError {
    /// An error at `outer` (serde_path_to_error's path) whose message may begin with a path
    /// relative to it (the rulebook's `rule[1].max: ...`).
    fn new(outer: &serde_path_to_error::Path, message: &str, location: Option<(usize, usize)>) -> Self {
        ConfigError::under(&outer.to_string(), message, location)
    }

    fn under(outer: &str, message: &str, location: Option<(usize, usize)>) -> Self {
        let outer = if outer == "." { String::new() } else { outer.to_owned() };
        let (path, message) = match message.split_once(": ") {
            // Checked after its table was read: the format's location is the table's, not
            // the key's, so it is left out.
            Some((rel, rest)) if is_path(rel) => {
                return ConfigError {
                    path: if outer.is_empty() { rel.to_owned() } else { format!("{outer}.{rel}") },
                    message: rest.to_owned(),
                    location: None,
                };
            }
            _ => (outer, message),
        };
        ConfigError { path, message: message.to_owned(), location }
    }
}

/// The 1-based line and column of byte `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Reads any deserializable value from TOML, each error with its key's path: an
/// application's own configuration that holds policies and endpoints.
///
/// ```
/// use std::collections::BTreeMap;
/// use llm_retry_runtime::{Policy, config};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct App { policies: BTreeMap<String, Policy> }
///
/// let app: App = config::parse_toml("[policies.chat]\nmax = 5\n[policies.embed]\nmax = 2").unwrap();
/// assert_eq!(app.policies["chat"].max_attempts(), 5);
/// let e = config::parse_toml::<App>("[policies.chat]\nbase = \"2s\"\nmax_delay = \"1s\"").unwrap_err();
/// assert_eq!(e.path(), "policies.chat.max_delay");
/// ```
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let locate = |e: &toml::de::Error| e.span().map(|s| line_column(text, s.start));
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
        path: String::new(),
        message: e.message().to_owned(),
        location: locate(&e),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| ConfigError::new(e.path(), e.inner().message(), locate(e.inner())))
}

/// [`parse_toml`] for JSON.
///
/// ```
/// let p: llm_retry_runtime::Policy = llm_retry_runtime::config::parse_json(r#"{"max": 3}"#).unwrap();
/// assert_eq!(p.max_attempts(), 3);
/// ```
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let out = serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(e.path(), e.inner()))?;
    de.end().map_err(|e| json_error("", &e))?;
    Ok(out)
}

/// A serde_json error at `path`, its message without the " at line L column C" that its
/// `Display` adds (the location is kept apart).
fn json_error(path: impl fmt::Display, e: &serde_json::Error) -> ConfigError {
    let text = e.to_string();
    let location = (e.line() > 0).then(|| (e.line(), e.column()));
    let message = match location {
        Some((l, c)) => text.strip_suffix(&format!(" at line {l} column {c}")).unwrap_or(&text),
        None => &text,
    };
    ConfigError::under(&path.to_string(), message, location)
}

/// An endpoint's configuration from TOML: its policy's keys at the top, as the attribute
/// writes them, and its `[limiter]`, `[budget]` and `[adaptive]` tables.
///
/// ```
/// let c = llm_retry_runtime::config::from_toml_str(r#"
/// max = 5
/// base = "250ms"
/// on = ["RateLimited", 503]
///
/// [[rule]]
/// on = "RateLimited"
/// max = 3
/// backoff = "fixed"
/// delay = "20s"
///
/// [limiter]
/// max_rate = 50.0
/// "#).unwrap();
/// assert_eq!(c.policy.max_attempts(), 5);
/// assert!(c.limiter.is_some());
///
/// let e = llm_retry_runtime::config::from_toml_str("max = 3\n[[rule]]\non = 503\nmax = 5").unwrap_err();
/// assert_eq!(e.path(), "rule[0].max");
/// ```
pub fn from_toml_str(text: &str) -> Result<EndpointConfig, ConfigError> {
    parse_toml(text)
}

/// An endpoint's configuration from JSON, with the same keys as [`from_toml_str`].
///
/// ```
/// let c = llm_retry_runtime::config::from_json_str(r#"{"max": 2, "on": ["Timeout", 502], "budget": {"burst": 3}}"#).unwrap();
/// assert_eq!(c.policy.max_attempts(), 2);
/// ```
pub fn from_json_str(text: &str) -> Result<EndpointConfig, ConfigError> {
    parse_json(text)
}

/// An endpoint's configuration from the process's environment variables that start with
/// `prefix` ([`from_env_vars`] describes the names).
///
/// ```
/// // With no LLM_RETRY_DOCS_* variable set, the defaults.
/// let c = llm_retry_runtime::config::from_env("LLM_RETRY_DOCS_").unwrap();
/// assert_eq!(c.policy.max_attempts(), 4);
/// ```
pub fn from_env(prefix: &str) -> Result<EndpointConfig, ConfigError> {
    let mut vars = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key.to_str().filter(|k| k.starts_with(prefix)).map(str::to_owned) else { continue };
        match value.into_string() {
            Ok(value) => vars.push((key, value)),
            Err(_) => return Err(ConfigError::under(&key, "the value is not valid UTF-8", None)),
        }
    }
    from_env_vars(prefix, vars)
}

/// An endpoint's configuration from `(name, value)` pairs, as [`from_env`] reads the
/// environment; pairs whose name does not start with `prefix` are skipped. After the prefix,
/// the name is a key in capitals: `LLM_RETRY_MAX=5`, `LLM_RETRY_BASE=250ms`,
/// `LLM_RETRY_ON=RateLimited,503` (a list, comma-separated), `LLM_RETRY_LIMITER_MAX_RATE=50`
/// (a section's key after its name), and `LLM_RETRY_RULE` holds the rules as a JSON list.
/// An error's path is the variable's name.
///
/// ```
/// use llm_retry_runtime::config::from_env_vars;
/// let vars = [("LLM_RETRY_MAX", "5"), ("LLM_RETRY_BASE", "250ms"), ("LLM_RETRY_ON", "RateLimited,503"), ("HOME", "/root")];
/// let c = from_env_vars("LLM_RETRY_", vars).unwrap();
/// assert_eq!(c.policy.max_attempts(), 5);
/// assert!(c.policy.retry_on().contains_status(503));
///
/// let e = from_env_vars("LLM_RETRY_", [("LLM_RETRY_MAX_DELAY", "0s")]).unwrap_err();
/// assert_eq!(e.path(), "LLM_RETRY_MAX_DELAY");
/// ```
pub fn from_env_vars<I, K, V>(prefix: &str, vars: I) -> Result<EndpointConfig, ConfigError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    if prefix.is_empty() {
        return Err(ConfigError::under("", "the prefix is empty: name one, like \"LLM_RETRY_\"", None));
    }
    let mut top = Map::new();
    for (name, value) in vars {
        let (name, value) = (name.as_ref(), value.as_ref());
        let Some(rest) = name.strip_prefix(prefix) else { continue };
        let key = rest.trim_start_matches('_').to_ascii_lowercase();
        let section =
            super::endpoint::SECTIONS.iter().find_map(|s| Some((*s, key.strip_prefix(s)?.strip_prefix('_')?)));
        let entry = match section {
            Some((section, inner)) => {
                let table = top.entry(section).or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(table) = table else { continue };
                if table.contains_key(inner) {
                    return Err(ConfigError::under(name, "set twice (the names differ only in case); keep one", None));
                }
                table.insert(inner.to_owned(), Value::String(value.to_owned()));
                continue;
            }
            None => key.clone(),
        };
        let value = match entry.as_str() {
            "on" => Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
            "rule" => serde_json::from_str(value).map_err(|e| {
                ConfigError::under(
                    name,
                    &format!("write the rules as a JSON list, like [{{\"on\": \"RateLimited\", \"max\": 3}}] ({e})"),
                    None,
                )
            })?,
            _ => Value::String(value.to_owned()),
        };
        if top.insert(entry.clone(), value).is_some() {
            return Err(ConfigError::under(name, "set twice (the names differ only in case); keep one", None));
        }
    }
    serde_path_to_error::deserialize(Value::Object(top)).map_err(|e| {
        let at = ConfigError::new(e.path(), &e.inner().to_string(), None);
        ConfigError { path: env_name(prefix, &at.path), ..at }
    })
}

/// The variable a key's path came from: `max_delay` is `PREFIX_MAX_DELAY`, `limiter.beta` is
/// `PREFIX_LIMITER_BETA`, and `on[1]` is `PREFIX_ON[1]`.
fn env_name(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        return prefix.to_owned();
    }
    let sep = if prefix.ends_with('_') { "" } else { "_" };
    let section = super::endpoint::SECTIONS.iter().find(|s| path.strip_prefix(**s).is_some_and(|r| r.starts_with('.')));
    let split = match section {
        Some(s) => path[s.len() + 1..].find(['[', '.']).map_or(path.len(), |i| i + s.len() + 1),
        None => path.find(['[', '.']).unwrap_or(path.len()),
    };
    let (head, tail) = path.split_at(split);
    format!("{prefix}{sep}{}{tail}", head.replace('.', "_").to_ascii_uppercase())
}
