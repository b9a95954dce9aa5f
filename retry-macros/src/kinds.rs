// A copy of the runtime's error taxonomy, for compile-time checks of `on = [...]` and
// `rule(...)`. The macro cannot depend on the runtime, so the facade test
// `tests/attribute_taxonomy.rs` asserts that these tables equal `ErrorKind::ALL`, its names,
// `never_retryable_reason` and `from_status`.

/// Every kind's name, in the runtime's declaration order, with the reason retrying can never
/// fix it (the runtime's `ErrorKind::never_retryable_reason`), and whether the default policy
/// retries it (`ErrorKind::is_retryable_by_default`).
pub const KINDS: &[(&str, Option<&str>, bool)] = &[
    ("Connection", None, true),
    ("Timeout", None, true),
    ("RateLimited", None, true),
    (
        "QuotaExhausted",
        Some("the quota or spend limit is exhausted; it will not reset within a retry, raise the limit"),
        false,
    ),
    ("Overloaded", None, true),
    ("Server", None, true),
    ("RequestTimeout", None, true),
    ("Conflict", None, true),
    ("Auth", Some("the credentials were refused; check the API key"), false),
    ("BadRequest", Some("the request is invalid; retrying cannot help"), false),
    ("NotFound", Some("the model or endpoint does not exist; check its name"), false),
    (
        "ContextLengthExceeded",
        Some("the prompt does not fit the model's context window; shorten it or pick a larger model"),
        false,
    ),
    (
        "ContentFiltered",
        Some("the provider's safety system refused the content; the same request is refused again"),
        false,
    ),
    ("InvalidOutput", None, true),
    ("Other", None, false),
];

/// The names of every kind, for "did you mean" suggestions.
pub fn names() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.0)
}

/// Whether `name` is a kind.
pub fn is_kind(name: &str) -> bool {
    KINDS.iter().any(|k| k.0 == name)
}

/// Why retrying can never fix the kind `name`, if it is one of those.
pub fn never_retryable_reason(name: &str) -> Option<&'static str> {
    KINDS.iter().find(|k| k.0 == name).and_then(|k| k.1)
}

/// Whether the default policy retries the kind `name`.
pub fn retried_by_default(name: &str) -> bool {
    KINDS.iter().any(|k| k.0 == name && k.2)
}

/// The kind an HTTP error status means (the runtime's `ErrorKind::from_status`).
pub fn from_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "BadRequest",
        401 | 403 => "Auth",
        404 => "NotFound",
        408 => "RequestTimeout",
        409 => "Conflict",
        413 => "ContextLengthExceeded",
        429 => "RateLimited",
        529 => "Overloaded",
        500..=599 => "Server",
        _ => "Other",
    }
}

/// Why retrying can never fix a response with this status, phrased for the status.
pub fn status_never_retryable_reason(status: u16) -> Option<String> {
    let reason = match status {
        401 => "401 means the credentials are wrong; retrying cannot fix it",
        403 => "403 means the key lacks permission; retrying cannot fix it",
        400 => "400 means the request is invalid; the same request fails again",
        422 => "422 means the request is invalid; the same request fails again",
        404 => "404 means the model or endpoint does not exist; check its name",
        413 => "413 means the prompt is too large; shorten it or pick a larger model",
        _ => return never_retryable_reason(from_status(status)).map(|r| format!("{status}: {r}")),
    };
    Some(reason.to_owned())
}
