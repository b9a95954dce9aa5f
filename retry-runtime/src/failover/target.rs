//! A target: one model or endpoint a call can be served by, with its circuit breaker.

use crate::breaker::Breaker;

/// One model or endpoint of a fallback chain: declare it once as a `static`, with the
/// [`Breaker`] shared by every call to it. The body learns which target an attempt uses and
/// picks the model, endpoint or client by it.
///
/// ```
/// use llm_retry_runtime::failover::{Breaker, Target};
/// static GPT4O_BREAKER: Breaker = Breaker::new("gpt-4o");
/// static GPT4O: Target = Target::new("gpt-4o").breaker(&GPT4O_BREAKER);
/// static LOCAL: Target = Target::new("llama-3-8b"); // no breaker: always tried
/// assert_eq!(GPT4O.name(), "gpt-4o");
/// assert!(GPT4O.circuit_breaker().is_some() && LOCAL.circuit_breaker().is_none());
/// ```
#[derive(Debug)]
pub struct Target {
    name: &'static str,
    breaker: Option<&'static Breaker>,
}

impl Target {
    /// A target named `name` (a model or endpoint, as the body and the events name it), with
    /// no breaker.
    ///
    /// ```
    /// static T: llm_retry_runtime::failover::Target = llm_retry_runtime::failover::Target::new("claude-sonnet");
    /// assert_eq!(T.name(), "claude-sonnet");
    /// ```
    pub const fn new(name: &'static str) -> Target {
        Target { name, breaker: None }
    }

    /// The same target guarded by `breaker`.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, Target};
    /// static B: Breaker = Breaker::new("claude");
    /// static T: Target = Target::new("claude").breaker(&B);
    /// assert_eq!(T.circuit_breaker().map(Breaker::name), Some("claude"));
    /// ```
    pub const fn breaker(self, breaker: &'static Breaker) -> Target {
        Target { name: self.name, breaker: Some(breaker) }
    }

    /// The target's name.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::Target::new("gpt-4o-mini").name(), "gpt-4o-mini");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The target's breaker, if it has one.
    ///
    /// ```
    /// assert!(llm_retry_runtime::failover::Target::new("x").circuit_breaker().is_none());
    /// ```
    pub const fn circuit_breaker(&self) -> Option<&'static Breaker> {
        self.breaker
    }
}

/// Two targets are equal when they are the same `static`: a target is its declaration, not
/// its name.
///
/// ```
/// use llm_retry_runtime::failover::Target;
/// static EU: Target = Target::new("gpt-4o");
/// static US: Target = Target::new("gpt-4o");
/// assert!(EU == EU && EU != US);
/// ```
impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        core::ptr::eq(self, other)
    }
}

impl Eq for Target {}
