//! Redis errors as [`StoreError`]s, with the URL's credentials kept out of every message.

use llm_retry_runtime::store::StoreError;
use redis::{ErrorKind, RedisError};

/// What must never appear in a message: the URL as given, and its username and password.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    words: Vec<String>,
}

impl Secrets {
    /// A URL's secrets (a cluster's store adds each of its seed nodes' URLs).
    pub(crate) fn add(&mut self, url: &str, info: Option<&redis::ConnectionInfo>) {
        self.words.push(url.to_owned());
        if let Some(info) = info {
            let r = info.redis_settings();
            self.words.extend(r.password().map(str::to_owned));
            self.words.extend(r.username().map(str::to_owned));
        }
        // Longest first, so that a password holding the username is replaced whole.
        self.words.retain(|w| !w.is_empty());
        self.words.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.words.dedup();
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for w in &self.words {
            if text.contains(w.as_str()) {
                text = text.replace(w.as_str(), "***");
            }
        }
        text
    }
}

// Secrets are the one thing a Debug must not show.
impl core::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// A failed command as the runtime sees it: a timeout, a server that cannot serve, or a reply
/// that cannot be read.
pub(crate) fn from_redis(e: &RedisError, secrets: &Secrets) -> StoreError {
    if e.is_timeout() {
        return StoreError::Timeout;
    }
    let message = secrets.redact(&e.to_string());
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::BadReply(message),
        _ => StoreError::Unavailable(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::IntoConnectionInfo;

    #[test]
    fn credentials_are_redacted() {
        let url = "redis://fleet:hunter2@127.0.0.1:6379/0";
        let info = url.into_connection_info().unwrap();
        let mut s = Secrets::default();
        s.add(url, Some(&info));
        s.add("redis://:other-pw@10.0.0.2", None);
        let said = s.redact(&format!("could not reach {url}: user fleet, password hunter2"));
        assert!(!said.contains("hunter2") && !said.contains("fleet"), "{said}");
        assert!(format!("{s:?}").find("hunter2").is_none());
        assert!(!s.redact("redis://:other-pw@10.0.0.2 refused").contains("other-pw"));
        let e = RedisError::from((ErrorKind::AuthenticationFailed, "auth failed", "hunter2 refused".to_owned()));
        let mapped = from_redis(&e, &s).to_string();
        assert!(!mapped.contains("hunter2"), "{mapped}");
        assert!(matches!(from_redis(&e, &s), StoreError::Unavailable(_)));
    }

    #[test]
    fn timeouts_and_type_errors_are_told_apart() {
        let s = Secrets::default();
        let timeout = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(from_redis(&timeout, &s), StoreError::Timeout);
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(from_redis(&refused, &s), StoreError::Unavailable(_)));
        let odd = RedisError::from((ErrorKind::UnexpectedReturnType, "odd"));
        assert!(matches!(from_redis(&odd, &s), StoreError::BadReply(_)));
    }
}
