//! Policies and per-endpoint settings from configuration, and a policy loaded at startup.
//!
//! [`PolicySlot`] holds a policy that the application sets once at startup, in a `static`
//! that every call reads:
//!
//! ```
//! use llm_retry_runtime::{ApiError, Policy, RetryExt, config::PolicySlot};
//!
//! static CHAT: PolicySlot = PolicySlot::new("chat", Policy::DEFAULT);
//!
//! # #[cfg(feature = "serde")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // At startup, once: from a file, the environment, or code.
//! let config = llm_retry_runtime::config::from_toml_str("max = 5\nbase = \"250ms\"")?;
//! CHAT.set(config.policy)?;
//! assert_eq!(CHAT.get().max_attempts(), 5);
//! # Ok(()) }
//! # #[cfg(not(feature = "serde"))] fn main() {}
//! ```
//!
#![cfg_attr(
    feature = "serde",
    doc = r#"With the `serde` feature, an endpoint's configuration ([`EndpointConfig`]: its policy, and
its `[limiter]`, `[budget]` and `[adaptive]` settings) reads from TOML
([`from_toml_str`]), JSON ([`from_json_str`]) or environment variables ([`from_env`]), in
the attribute's keys and human units (`"500ms"`, `"2m"`). It is checked by the same
rulebook as the attribute, and by the controls' own builders; an error names the key
(`policies.chat.max_delay`, `rule[1].max`, `LLM_RETRY_MAX`) and says what is allowed.
[`Policy`](crate::Policy) and [`EndpointConfig`] also deserialize inside an application's
own configuration ([`parse_toml`], [`parse_json`]), and serialize back, every value
written out."#
)]
// Without the feature, the items above do not exist for rustdoc to link to.
#![cfg_attr(
    not(feature = "serde"),
    doc = "With the `serde` feature, this module also reads an endpoint's configuration (its policy, \
           and its limiter, budget and adaptive settings) from TOML, JSON or environment variables."
)]

mod slot;

pub use slot::{AlreadySet, PolicySlot};

#[cfg(feature = "serde")]
mod endpoint;
#[cfg(feature = "serde")]
mod load;

#[cfg(feature = "serde")]
pub use endpoint::{AdaptiveSettings, BudgetSettings, EndpointConfig, LimiterSettings};
#[cfg(feature = "serde")]
pub use llm_retry_rules::config::{PolicySpec, SpecError, value};
#[cfg(feature = "serde")]
pub use load::{ConfigError, from_env, from_env_vars, from_json_str, from_toml_str, parse_json, parse_toml};

#[cfg(all(test, feature = "serde"))]
mod tests;
