//! Every key the attribute accepts, in one place (serde's `symbol.rs`): the vocabulary the
//! attribute and configuration files share. Each key is one line of `keys!`: its constant,
//! its name, an example, and what it means, from which come [`TOP`], [`example`] and the
//! attribute's reference table ([`key_reference!`](crate::key_reference)).
//!
//! ```
//! use llm_retry_rules::keys;
//! assert!(keys::TOP.contains(&keys::MAX_DELAY));
//! assert_eq!(keys::example(keys::MAX_DELAY), "max_delay = \"20s\"");
//! ```

/// Defines the keys: for each, a constant documented with its example and meaning, its place
/// in `TOP` (the order of "valid keys" lists and of the reference), its [`example`], and its
/// row in [`key_reference!`](crate::key_reference).
macro_rules! keys {
    ($($konst:ident = $name:literal, $example:literal, $meaning:literal;)*) => {
        $(
            #[doc = concat!("`", $example, "`: ", $meaning, ".")]
            pub const $konst: &str = $name;
        )*

        /// Every top-level key, in the reference's order.
        pub const TOP: &[&str] = &[$($konst),*];

        /// How the key is written, for "takes ..., like `...`" messages; `""` for an unknown key.
        ///
        /// ```
        /// assert_eq!(llm_retry_rules::keys::example("deadline"), "deadline = \"2m\"");
        /// ```
        pub fn example(key: &str) -> &'static str {
            match key {
                $($name => $example,)*
                _ => "",
            }
        }

        /// The attribute's reference: one Markdown table row per key (`| key | example |
        /// meaning |`), in [`TOP`](crate::keys::TOP)'s order, as a string literal, so that the
        /// attribute's rustdoc can hold it (`#[doc = llm_retry_rules::key_reference!()]`).
        ///
        /// ```
        /// let rows = llm_retry_rules::key_reference!();
        /// assert!(rows.starts_with("| `max` | `max = 5` |"));
        /// assert_eq!(rows.lines().count(), llm_retry_rules::keys::TOP.len());
        /// ```
        #[macro_export]
        macro_rules! key_reference {
            () => {
                concat!($("| `", $name, "` | `", $example, "` | ", $meaning, " |\n",)*)
            };
        }
    };
}

keys! {
    MAX = "max", "max = 5",
        "the most attempts, the first included; at least 1 (`max = 1` disables retries); bound long retrying with `deadline`";
    BACKOFF = "backoff", "backoff = \"exponential\"",
        "`\"none\"`, `\"fixed\"`, `\"linear\"`, `\"exponential\"` (default), `\"decorrelated\"`";
    DELAY = "delay", "delay = \"1s\"",
        "the fixed backoff's delay, above zero (default 1 s)";
    BASE = "base", "base = \"500ms\"",
        "the first delay of linear, exponential and decorrelated backoff (default 500 ms); above zero but for linear";
    MAX_DELAY = "max_delay", "max_delay = \"20s\"",
        "the cap of linear, exponential and decorrelated backoff (default 20 s); above zero, at least `base` and `min_delay`";
    MIN_DELAY = "min_delay", "min_delay = \"100ms\"",
        "the exponential floor (default 0)";
    INCREMENT = "increment", "increment = \"500ms\"",
        "the linear step per retry (default 500 ms)";
    MULTIPLIER = "multiplier", "multiplier = 2.0",
        "the exponential growth factor, finite and at least 1.0 (default 2.0)";
    JITTER = "jitter", "jitter = \"full\"",
        "`\"none\"`, `\"full\"` (default), `\"equal\"`, `\"proportional\"`, `\"decorrelated\"`";
    JITTER_FACTOR = "jitter_factor", "jitter_factor = 0.25",
        "with `jitter = \"proportional\"`: the spread, 0.0 to 10.0 (default 0.25)";
    ON = "on", "on = [RateLimited, Overloaded, 503]",
        "what to retry: error kinds and HTTP statuses; replaces the default set";
    RULE = "rule", "rule(RateLimited, max = 3, backoff = \"fixed\", delay = \"60s\")",
        "a per-kind or per-status override of `max` (at most the attribute's, and 65,535) and of the backoff and jitter keys; at most 6; a status rule wins over a kind rule";
    DEADLINE = "deadline", "deadline = \"2m\"",
        "the whole call's time limit, sleeps included (needs `E: From<llm_retry::Timeout>`)";
    ATTEMPT_TIMEOUT = "attempt_timeout", "attempt_timeout = \"30s\"",
        "each attempt's time limit; a timed-out attempt is a retryable `Timeout` (needs `E: From<Timeout>`)";
    RETRY_AFTER = "retry_after", "retry_after = false",
        "whether to honour `Retry-After` and the rate-limit headers (default `true`)";
    MAX_RETRY_AFTER = "max_retry_after", "max_retry_after = \"120s\"",
        "the longest server-requested wait, above zero; a longer one gives up at once (default 120 s)";
    VALIDATE = "validate", "validate = non_empty",
        "`fn(&T) -> Result<(), InvalidOutput>`: a rejected value is retried as `InvalidOutput` (needs `E: From<InvalidOutput>`)";
    NOTIFY = "notify", "notify = log_retry",
        "`fn(&RetryEvent<'_, E>)`, called before each sleep";
    WHEN = "when", "when = is_transient",
        "`fn(&E) -> bool`, a custom retry predicate replacing the `on` decision (so not together with `on`)";
    NAME = "name", "name = \"openai.chat\"",
        "the stats key (default `module::path::fn_name`)";
    CRATE = "crate", "crate = \"my_crate::llm_retry\"",
        "where the `llm_retry` crate is, for re-exports";
    STREAM = "stream", "stream = \"continue\"",
        "the fn opens one attempt of a stream and the attribute makes it a retrying stream: `\"restart\"`, `\"continue\"`, `\"skip\"`";
    FIRST_CHUNK_TIMEOUT = "first_chunk_timeout", "first_chunk_timeout = \"30s\"",
        "with `stream`: the limit from opening an attempt to its first chunk (replaces `attempt_timeout`)";
    IDLE_TIMEOUT = "idle_timeout", "idle_timeout = \"15s\"",
        "with `stream`: the limit between two chunks";
    LIMITER = "limiter", "limiter = OPENAI",
        "the endpoint's pacer, a `static Limiter` shared by every fn, builder call, batch and stream that calls it: any caller's Retry-After pauses them all, and attempts are admitted at the provider's rate (from its headers, a configured rate, or learned from throttles)";
    TOKENS = "tokens", "tokens = estimate(prompt)",
        "with `limiter`: the call's cost in tokens against the limiter's tokens per minute, a `u64` expression over the fn's arguments, evaluated once per call; each attempt waits for room in the token bucket too";
    BUDGET = "budget", "budget = OPENAI_BUDGET",
        "a `static Budget` shared by every fn that calls the endpoint: a retry is allowed only while retries stay under its share of successes";
    ADAPTIVE = "adaptive", "adaptive = true",
        "back-off scaled by the recent error rate: `true` (this fn's own window) or a shared `static Adaptive`";
    FALLBACK = "fallback", "fallback = [GPT4O, CLAUDE]",
        "an ordered chain of `static Target`s: each attempt goes to one, whose `&Target` the fn takes as a parameter that callers do not pass; the policy's attempts apply per target, and the call moves on when another target may do better (needs `E: From<CircuitOpen>`)";
    MOVE_ON = "move_on", "move_on = [Auth]",
        "with `fallback`: kinds that also move on to the next target at once instead of ending the call, such as `Auth` when each provider has its own key (ContextLengthExceeded and QuotaExhausted always do)";
    POLICY = "policy", "policy = CHAT_POLICY",
        "a `static PolicySlot` whose policy is loaded at startup (from a file or the environment) replaces the attribute's own; so not with `max`, `on`, `rule`, the backoff and jitter keys, `retry_after` or `max_retry_after`";
}

/// The keys that make a policy (the rest are the call's own options): what `policy = PATH`
/// replaces, and what a configuration file's policy reads.
///
/// ```
/// use llm_retry_rules::keys;
/// assert!(keys::POLICY_KEYS.contains(&keys::MAX_DELAY) && !keys::POLICY_KEYS.contains(&keys::DEADLINE));
/// ```
pub const POLICY_KEYS: &[&str] = &[
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
    RETRY_AFTER,
    MAX_RETRY_AFTER,
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

/// The backoff names.
pub const BACKOFFS: &[&str] = &["none", "fixed", "linear", "exponential", "decorrelated"];
/// The jitter names.
pub const JITTERS: &[&str] = &["none", "full", "equal", "proportional", "decorrelated"];
/// The stream recovery modes (the runtime's `StreamMode::from_name`).
pub const STREAM_MODES: &[&str] = &["restart", "continue", "skip"];

/// Why `on = []` is refused, in the attribute's words (configuration files say the same): it
/// retries nothing, which `max = 1` says plainly.
///
/// ```
/// assert!(llm_retry_rules::keys::EMPTY_ON.contains("`max = 1`"));
/// ```
pub const EMPTY_ON: &str = "`on = []` retries nothing; list what to retry, like `on = [RateLimited, Overloaded]`, or use `max = 1` to disable retries";

/// Why a rule that sets nothing but its target is refused, in the attribute's words.
///
/// ```
/// let m = llm_retry_rules::keys::rule_changes_nothing("RateLimited");
/// assert!(m.starts_with("`rule(RateLimited)` changes nothing; add `max = ...` or a backoff"));
/// ```
pub fn rule_changes_nothing(target: impl core::fmt::Display) -> String {
    format!("`rule({target})` changes nothing; add `max = ...` or a backoff, like `{}`", example(RULE))
}

/// What follows "unknown key `key`": the key it is probably meant to be, among `valid` (an
/// alias people reach for, or the closest spelling), or `""`.
///
/// ```
/// use llm_retry_rules::keys::{TOP, unknown_key_hint};
/// assert_eq!(unknown_key_hint("max_attempts", TOP), "; did you mean `max`?");
/// assert_eq!(unknown_key_hint("max_dely", TOP), "; did you mean `max_delay`?");
/// assert!(unknown_key_hint("retries", TOP).contains("`retries = 3` is `max = 4`"));
/// ```
pub fn unknown_key_hint(key: &str, valid: &[&str]) -> String {
    let alias = ALIASES.iter().find(|(a, _)| *a == key).map(|(_, k)| *k).filter(|k| valid.contains(k));
    match (key, alias) {
        ("retries" | "max_retries", _) => {
            "; `max` counts attempts, the first included: `retries = 3` is `max = 4`".to_owned()
        }
        (_, Some(k)) => format!("; did you mean `{k}`?"),
        _ => crate::suggest::did_you_mean(key, valid.iter().copied()),
    }
}
