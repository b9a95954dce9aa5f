//! Every key the attribute accepts, in one place (serde's `symbol.rs`): the vocabulary the
//! attribute and configuration files share, with an example of each.
//!
//! ```
//! use llm_retry_rules::keys;
//! assert!(keys::TOP.contains(&keys::MAX_DELAY));
//! assert_eq!(keys::example(keys::MAX_DELAY), "max_delay = \"20s\"");
//! ```

/// `max = 5`: the most attempts, the first included.
pub const MAX: &str = "max";
/// `backoff = "exponential"`.
pub const BACKOFF: &str = "backoff";
/// `delay = "1s"`: the fixed backoff's delay.
pub const DELAY: &str = "delay";
/// `base = "500ms"`: the first delay of linear, exponential and decorrelated backoff.
pub const BASE: &str = "base";
/// `max_delay = "20s"`: the cap.
pub const MAX_DELAY: &str = "max_delay";
/// `min_delay = "100ms"`: the exponential floor.
pub const MIN_DELAY: &str = "min_delay";
/// `increment = "500ms"`: the linear step.
pub const INCREMENT: &str = "increment";
/// `multiplier = 2.0`: the exponential growth factor.
pub const MULTIPLIER: &str = "multiplier";
/// `jitter = "full"`.
pub const JITTER: &str = "jitter";
/// `jitter_factor = 0.25`: proportional jitter's spread.
pub const JITTER_FACTOR: &str = "jitter_factor";
/// `on = [RateLimited, 503]`: what to retry.
pub const ON: &str = "on";
/// `rule(RateLimited, max = 3, backoff = "fixed", delay = "60s")`: a per-kind override.
pub const RULE: &str = "rule";
/// `deadline = "2m"`: the whole call's time limit.
pub const DEADLINE: &str = "deadline";
/// `attempt_timeout = "30s"`: each attempt's time limit.
pub const ATTEMPT_TIMEOUT: &str = "attempt_timeout";
/// `retry_after = false`: whether to honour Retry-After.
pub const RETRY_AFTER: &str = "retry_after";
/// `max_retry_after = "120s"`: the longest Retry-After to wait for.
pub const MAX_RETRY_AFTER: &str = "max_retry_after";
/// `validate = my::check`: rejects unusable successful values.
pub const VALIDATE: &str = "validate";
/// `notify = my::log`: called before each sleep.
pub const NOTIFY: &str = "notify";
/// `when = my::should_retry`: a custom retry predicate, replacing `on`.
pub const WHEN: &str = "when";
/// `name = "chat"`: the stats key.
pub const NAME: &str = "name";
/// `crate = "my::reexport"`: where `llm_retry` is.
pub const CRATE: &str = "crate";
/// `limiter = OPENAI`: a `static Limiter` shared by every fn that calls the endpoint.
pub const LIMITER: &str = "limiter";
/// `budget = OPENAI_BUDGET`: a `static Budget` shared by every fn that calls the endpoint.
pub const BUDGET: &str = "budget";
/// `adaptive = true` (this fn's own error window) or `adaptive = OPENAI_ERRORS` (a shared
/// `static Adaptive`): back-off scaled by the recent error rate.
pub const ADAPTIVE: &str = "adaptive";
/// `stream = "continue"`: the fn opens one attempt's stream; the attribute makes it a retrying stream.
pub const STREAM: &str = "stream";
/// `first_chunk_timeout = "30s"`: with `stream`, the limit from opening an attempt to its first chunk.
pub const FIRST_CHUNK_TIMEOUT: &str = "first_chunk_timeout";
/// `idle_timeout = "15s"`: with `stream`, the limit between two chunks.
pub const IDLE_TIMEOUT: &str = "idle_timeout";

/// Every top-level key.
pub const TOP: &[&str] = &[
    MAX,
    BACKOFF,
    DELAY,
    BASE,
    MAX_DELAY,
    MIN_DELAY,
    INCREMENT,
    MULTIPLIER,
    JITTER,
    JITTER_FACTOR,
    ON,
    RULE,
    DEADLINE,
    ATTEMPT_TIMEOUT,
    RETRY_AFTER,
    MAX_RETRY_AFTER,
    VALIDATE,
    NOTIFY,
    WHEN,
    NAME,
    CRATE,
    STREAM,
    FIRST_CHUNK_TIMEOUT,
    IDLE_TIMEOUT,
    LIMITER,
    BUDGET,
    ADAPTIVE,
];

/// The keys a `rule(...)` may set.
pub const RULE_KEYS: &[&str] =
    &[MAX, BACKOFF, DELAY, BASE, MAX_DELAY, MIN_DELAY, INCREMENT, MULTIPLIER, JITTER, JITTER_FACTOR];

/// Names people reach for, and the key they mean.
pub const ALIASES: &[(&str, &str)] = &[
    ("max_attempts", MAX),
    ("attempts", MAX),
    ("retries", MAX),
    ("max_retries", MAX),
    ("retry_on", ON),
    ("retry_if", WHEN),
    ("timeout", ATTEMPT_TIMEOUT),
    ("total_timeout", DEADLINE),
    ("initial", BASE),
    ("initial_delay", BASE),
    ("start", BASE),
    ("factor", MULTIPLIER),
    ("cap", MAX_DELAY),
    ("max_backoff", MAX_DELAY),
    ("on_retry", NOTIFY),
    ("rate_limiter", LIMITER),
    ("retry_budget", BUDGET),
    ("adaptive_delay", ADAPTIVE),
];

/// How the key is written, for "takes ..., like `...`" messages.
pub fn example(key: &str) -> &'static str {
    match key {
        MAX => "max = 5",
        BACKOFF => "backoff = \"exponential\"",
        DELAY => "delay = \"1s\"",
        BASE => "base = \"500ms\"",
        MAX_DELAY => "max_delay = \"20s\"",
        MIN_DELAY => "min_delay = \"100ms\"",
        INCREMENT => "increment = \"500ms\"",
        MULTIPLIER => "multiplier = 2.0",
        JITTER => "jitter = \"full\"",
        JITTER_FACTOR => "jitter_factor = 0.25",
        ON => "on = [RateLimited, Overloaded, 503]",
        RULE => "rule(RateLimited, max = 3, backoff = \"fixed\", delay = \"60s\")",
        DEADLINE => "deadline = \"2m\"",
        ATTEMPT_TIMEOUT => "attempt_timeout = \"30s\"",
        RETRY_AFTER => "retry_after = false",
        MAX_RETRY_AFTER => "max_retry_after = \"120s\"",
        VALIDATE => "validate = non_empty",
        NOTIFY => "notify = log_retry",
        WHEN => "when = is_transient",
        NAME => "name = \"openai.chat\"",
        CRATE => "crate = \"my_crate::llm_retry\"",
        LIMITER => "limiter = OPENAI",
        BUDGET => "budget = OPENAI_BUDGET",
        ADAPTIVE => "adaptive = true",
        STREAM => "stream = \"continue\"",
        FIRST_CHUNK_TIMEOUT => "first_chunk_timeout = \"30s\"",
        IDLE_TIMEOUT => "idle_timeout = \"15s\"",
        _ => "",
    }
}

/// The backoff names.
pub const BACKOFFS: &[&str] = &["none", "fixed", "linear", "exponential", "decorrelated"];
/// The jitter names.
pub const JITTERS: &[&str] = &["none", "full", "equal", "proportional", "decorrelated"];
/// The stream recovery modes (the runtime's `StreamMode::from_name`).
pub const STREAM_MODES: &[&str] = &["restart", "continue", "skip"];
