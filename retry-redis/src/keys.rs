//! Key naming: one hash tag per endpoint and per breaker, so that each script touches keys of
//! one cluster slot only.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{<prefix>:<endpoint>}:p` | hash | the endpoint's pacer state |
//! | `{<prefix>:<endpoint>}:l` | sorted set | in-flight leases, scored by expiry |
//! | `{<prefix>:<endpoint>}:n` | string | the lease counter |
//! | `{<prefix>:<endpoint>}:w` | sorted set | workers' heartbeats, scored by last seen |
//! | `{<prefix>:b:<breaker>}` | hash | a breaker's state |
//!
//! Names are escaped (`%`, `{`, `}`, control characters and non-ASCII bytes become `%XX`), so
//! that no name can close the hash tag early and put a key in another slot, and no two names
//! share a key.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// What a name may not hold as it is: the tag's braces, the escape itself, control characters
/// (which would make the keys unreadable in `redis-cli`).
const ESCAPED: &AsciiSet = &CONTROLS.add(b'%').add(b'{').add(b'}');

/// The keys of one endpoint's pacer, in the order the pacer script takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PacerKeys {
    /// The state hash.
    pub(crate) state: String,
    /// The in-flight leases.
    pub(crate) leases: String,
    /// The lease counter.
    pub(crate) counter: String,
    /// The workers' heartbeats.
    pub(crate) workers: String,
}

impl PacerKeys {
    /// The keys, as the script's `KEYS`.
    pub(crate) fn all(&self) -> [&str; 4] {
        [&self.state, &self.leases, &self.counter, &self.workers]
    }
}

/// A store's key prefix, escaped once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys { prefix: escape(prefix) }
    }

    /// The keys of `endpoint`'s pacer.
    pub(crate) fn pacer(&self, endpoint: &str) -> PacerKeys {
        let tag = format!("{{{}:{}}}", self.prefix, escape(endpoint));
        PacerKeys {
            state: format!("{tag}:p"),
            leases: format!("{tag}:l"),
            counter: format!("{tag}:n"),
            workers: format!("{tag}:w"),
        }
    }

    /// The key of the breaker `name`.
    pub(crate) fn breaker(&self, name: &str) -> String {
        format!("{{{}:b:{}}}", self.prefix, escape(name))
    }
}

fn escape(name: &str) -> String {
    utf8_percent_encode(name, ESCAPED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster hashes: between the first `{` and the next `}`.
    fn tag(key: &str) -> &str {
        let open = key.find('{').expect("a tag");
        let close = key[open..].find('}').expect("closed") + open;
        &key[open + 1..close]
    }

    #[test]
    fn an_endpoints_keys_share_one_tag() {
        let k = Keys::new("llm-retry").pacer("openai");
        assert_eq!(k.state, "{llm-retry:openai}:p");
        assert_eq!(k.all().map(tag), ["llm-retry:openai"; 4]);
        assert_eq!(Keys::new("llm-retry").breaker("gpt-4o"), "{llm-retry:b:gpt-4o}");
    }

    #[test]
    fn braces_in_names_cannot_break_the_tag() {
        let keys = Keys::new("p{x}");
        let k = keys.pacer("a}b{c");
        assert_eq!(k.state, "{p%7Bx%7D:a%7Db%7Bc}:p");
        assert_eq!(tag(&k.leases), "p%7Bx%7D:a%7Db%7Bc");
        assert_eq!(tag(&keys.breaker("}")), "p%7Bx%7D:b:%7D");
    }

    #[test]
    fn distinct_names_get_distinct_keys() {
        let keys = Keys::new("llm-retry");
        // `%` is escaped too, so an escaped-looking name does not meet the name it looks like.
        assert_ne!(keys.pacer("%7B").state, keys.pacer("{").state);
        assert_ne!(keys.pacer("a\nb").state, keys.pacer("a b").state);
        // Non-ASCII bytes are escaped as well (the encoder always does): keys stay ASCII.
        assert_eq!(keys.pacer("línea").state, "{llm-retry:l%C3%ADnea}:p");
    }
}
