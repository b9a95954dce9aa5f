//! The error taxonomy: what went wrong, in the words of someone calling an LLM API.

use core::fmt;

/// What kind of failure an attempt ended in.
///
/// Kinds are named for what they mean to a caller of an LLM API, not for the transport
/// mechanism. The runtime's `Classify` maps an error value to a kind; the policy decides from
/// the kind (and the HTTP status, when there is one) whether to retry.
///
/// ```
/// use llm_retry_rules::ErrorKind;
///
/// assert!(ErrorKind::RateLimited.is_retryable_by_default());
/// assert!(!ErrorKind::QuotaExhausted.is_retryable_by_default());
/// assert_eq!(ErrorKind::from_status(529), ErrorKind::Overloaded);
/// assert_eq!(ErrorKind::Auth.never_retryable_reason(), Some("the credentials were refused; check the API key"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection could not be made or was dropped (refused, reset, DNS failure).
    Connection,
    /// The attempt took too long: a client-side timeout, or the per-attempt timeout.
    Timeout,
    /// 429: the provider's rate limit was hit. It clears with time.
    RateLimited,
    /// A 429 whose body says the quota or spend limit is exhausted. Never retried.
    QuotaExhausted,
    /// 529, or a 503 that says the provider is overloaded.
    Overloaded,
    /// Any other 5xx.
    Server,
    /// 408: the server gave up waiting for the request.
    RequestTimeout,
    /// 409: a conflicting request; the official SDKs retry it.
    Conflict,
    /// 401 or 403: the credentials were refused or lack permission.
    Auth,
    /// 400 or 422: the request itself is invalid.
    BadRequest,
    /// 404: the model or endpoint does not exist.
    NotFound,
    /// The prompt does not fit in the model's context window.
    ContextLengthExceeded,
    /// The provider's safety system refused the request or the output.
    ContentFiltered,
    /// The call succeeded, but a validator rejected the value (empty text, invalid JSON).
    InvalidOutput,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::ErrorKind::ALL.len(), 15);
    /// ```
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::Connection,
        ErrorKind::Timeout,
        ErrorKind::RateLimited,
        ErrorKind::QuotaExhausted,
        ErrorKind::Overloaded,
        ErrorKind::Server,
        ErrorKind::RequestTimeout,
        ErrorKind::Conflict,
        ErrorKind::Auth,
        ErrorKind::BadRequest,
        ErrorKind::NotFound,
        ErrorKind::ContextLengthExceeded,
        ErrorKind::ContentFiltered,
        ErrorKind::InvalidOutput,
        ErrorKind::Other,
    ];

    /// The kind's name as written in `on = [...]`, e.g. `"RateLimited"`.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::ErrorKind::RateLimited.name(), "RateLimited");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::Connection => "Connection",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::RateLimited => "RateLimited",
            ErrorKind::QuotaExhausted => "QuotaExhausted",
            ErrorKind::Overloaded => "Overloaded",
            ErrorKind::Server => "Server",
            ErrorKind::RequestTimeout => "RequestTimeout",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::Auth => "Auth",
            ErrorKind::BadRequest => "BadRequest",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::ContextLengthExceeded => "ContextLengthExceeded",
            ErrorKind::ContentFiltered => "ContentFiltered",
            ErrorKind::InvalidOutput => "InvalidOutput",
            ErrorKind::Other => "Other",
        }
    }

    /// Looks a kind up by its [`name`](Self::name).
    ///
    /// ```
    /// use llm_retry_rules::ErrorKind;
    /// assert_eq!(ErrorKind::from_name("Overloaded"), Some(ErrorKind::Overloaded));
    /// assert_eq!(ErrorKind::from_name("overloaded"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A small index, unique per kind, below [`ErrorKind::ALL`]`.len()`.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::ErrorKind::Connection.index(), 0);
    /// ```
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kind an HTTP error status means when the body says nothing more specific.
    ///
    /// Statuses below 400 are not errors and map to [`ErrorKind::Other`].
    ///
    /// ```
    /// use llm_retry_rules::ErrorKind;
    /// assert_eq!(ErrorKind::from_status(429), ErrorKind::RateLimited);
    /// assert_eq!(ErrorKind::from_status(502), ErrorKind::Server);
    /// assert_eq!(ErrorKind::from_status(403), ErrorKind::Auth);
    /// assert_eq!(ErrorKind::from_status(402), ErrorKind::QuotaExhausted);
    /// ```
    pub const fn from_status(status: u16) -> ErrorKind {
        match status {
            400 | 422 => ErrorKind::BadRequest,
            401 | 403 => ErrorKind::Auth,
            // Payment required: out of credits (OpenRouter, DeepSeek, Cohere, Together, Fireworks).
            402 => ErrorKind::QuotaExhausted,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::RequestTimeout,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::ContextLengthExceeded,
            429 => ErrorKind::RateLimited,
            // 529: Anthropic's overloaded; 498: Groq's "flex tier at capacity".
            498 | 529 => ErrorKind::Overloaded,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Other,
        }
    }

    /// Whether the default policy retries this kind.
    ///
    /// The default set is what the official OpenAI and Anthropic SDKs retry: connection
    /// errors, timeouts, 408, 409, 429 (but not an exhausted quota) and 5xx including 529,
    /// plus [`InvalidOutput`](Self::InvalidOutput), which only arises when a validator is set.
    ///
    /// ```
    /// use llm_retry_rules::ErrorKind;
    /// assert!(ErrorKind::Overloaded.is_retryable_by_default());
    /// assert!(!ErrorKind::BadRequest.is_retryable_by_default());
    /// ```
    pub const fn is_retryable_by_default(self) -> bool {
        matches!(
            self,
            ErrorKind::Connection
                | ErrorKind::Timeout
                | ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::RequestTimeout
                | ErrorKind::Conflict
                | ErrorKind::InvalidOutput
        )
    }

    /// Why retrying can never fix this kind, or `None` when a retry may succeed.
    ///
    /// A policy refuses to retry these kinds even when asked to, and the attribute rejects
    /// them in `on = [...]` at compile time with this reason.
    ///
    /// ```
    /// use llm_retry_rules::ErrorKind;
    /// assert!(ErrorKind::ContextLengthExceeded.never_retryable_reason().is_some());
    /// assert_eq!(ErrorKind::Timeout.never_retryable_reason(), None);
    /// ```
    pub const fn never_retryable_reason(self) -> Option<&'static str> {
        match self {
            ErrorKind::Auth => Some("the credentials were refused; check the API key"),
            ErrorKind::BadRequest => Some("the request is invalid; retrying cannot help"),
            ErrorKind::QuotaExhausted => {
                Some("the quota or spend limit is exhausted; it will not reset within a retry, raise the limit")
            }
            ErrorKind::ContextLengthExceeded => {
                Some("the prompt does not fit the model's context window; shorten it or pick a larger model")
            }
            ErrorKind::NotFound => Some("the model or endpoint does not exist; check its name"),
            ErrorKind::ContentFiltered => {
                Some("the provider's safety system refused the content; the same request is refused again")
            }
            _ => None,
        }
    }
}

/// Why retrying can never fix a response with HTTP `status`, phrased for the status; `None`
/// when a retry may succeed (or `status` is not an error status).
///
/// ```
/// use llm_retry_rules::never_retryable_status_reason;
/// assert_eq!(never_retryable_status_reason(401).as_deref(), Some("401 means the credentials are wrong; retrying cannot fix it"));
/// assert_eq!(never_retryable_status_reason(503), None);
/// ```
pub fn never_retryable_status_reason(status: u16) -> Option<String> {
    let reason = match status {
        401 => "401 means the credentials are wrong; retrying cannot fix it",
        403 => "403 means the key lacks permission; retrying cannot fix it",
        400 | 422 => return Some(format!("{status} means the request is invalid; the same request fails again")),
        404 => "404 means the model or endpoint does not exist; check its name",
        413 => "413 means the prompt is too large; shorten it or pick a larger model",
        400..=599 => {
            return ErrorKind::from_status(status).never_retryable_reason().map(|r| format!("{status}: {r}"));
        }
        _ => return None,
    };
    Some(reason.to_owned())
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_indices_are_unique() {
        for (i, k) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(ErrorKind::from_name(k.name()), Some(k));
            assert_eq!(k.index(), i);
            assert_eq!(k.to_string(), k.name());
        }
    }

    #[test]
    fn never_retryable_kinds_are_not_retried_by_default() {
        for k in ErrorKind::ALL {
            if k.never_retryable_reason().is_some() {
                assert!(!k.is_retryable_by_default(), "{k}");
            }
        }
    }

    #[test]
    fn status_table() {
        let table = [
            (400, ErrorKind::BadRequest),
            (401, ErrorKind::Auth),
            (403, ErrorKind::Auth),
            (404, ErrorKind::NotFound),
            (408, ErrorKind::RequestTimeout),
            (409, ErrorKind::Conflict),
            (413, ErrorKind::ContextLengthExceeded),
            (422, ErrorKind::BadRequest),
            (429, ErrorKind::RateLimited),
            (500, ErrorKind::Server),
            (502, ErrorKind::Server),
            (503, ErrorKind::Server),
            (504, ErrorKind::Server),
            (529, ErrorKind::Overloaded),
            (200, ErrorKind::Other),
            (302, ErrorKind::Other),
            (418, ErrorKind::Other),
            (0, ErrorKind::Other),
            (u16::MAX, ErrorKind::Other),
        ];
        for (status, kind) in table {
            assert_eq!(ErrorKind::from_status(status), kind, "{status}");
        }
    }
}
