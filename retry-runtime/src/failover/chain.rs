//! A fallback chain: the ordered targets of a call, and when a call moves on from one to the
//! next.

use crate::ErrorKind;
use crate::failover::Target;
use core::fmt;

/// An ordered list of [`Target`]s: a call starts on the first whose breaker lets it through,
/// runs the policy's attempts there, and moves on to the next when the failure says another
/// target may do better:
///
/// | the attempt failed with | on this target | then |
/// | --- | --- | --- |
/// | ContextLengthExceeded, QuotaExhausted | no retry | next target at once, no back-off |
/// | RateLimited, Overloaded, Server, Timeout (any kind the policy retries) | retried by the policy | next target once the retries are exhausted, or the Retry-After is over the cap |
/// | any failure that opens the target's breaker | no more retries | next target at once |
/// | Auth, BadRequest and the other kinds the policy does not retry | no retry | the call ends, unless the kind is listed with [`move_on`](Self::move_on) |
/// | anything, past the deadline or the retry budget | - | the call ends |
///
/// A target whose breaker is open is skipped. When no target is left the call ends with its
/// last error, or with [`CircuitOpen`](crate::failover::CircuitOpen) when no attempt was made.
///
/// ```
/// use llm_retry_runtime::{ErrorKind, failover::{Fallback, Target}};
/// static SMALL: Target = Target::new("gpt-4o-mini");
/// static LARGE: Target = Target::new("gpt-4o");
/// static CHAIN: Fallback<'static> = match Fallback::new(&[&SMALL, &LARGE]) {
///     Ok(c) => c.move_on(ErrorKind::BadRequest),
///     Err(e) => panic!("{}", e.message()),
/// };
/// assert_eq!(CHAIN.targets().len(), 2);
/// assert!(CHAIN.moves_on_at_once(ErrorKind::ContextLengthExceeded));
/// assert!(CHAIN.moves_on_at_once(ErrorKind::BadRequest));
/// assert!(!CHAIN.moves_on_at_once(ErrorKind::Auth));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fallback<'a> {
    targets: &'a [&'static Target],
    /// The kinds listed with `move_on`, one bit per [`ErrorKind::index`].
    listed: u64,
}

/// Why a fallback chain could not be built. Never a panic.
///
/// ```
/// use llm_retry_runtime::failover::{FailoverError, Fallback};
/// assert_eq!(Fallback::new(&[]).unwrap_err(), FailoverError::NoTargets);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailoverError {
    /// The target list is empty.
    NoTargets,
}

impl FailoverError {
    /// The error as a sentence that names the fix.
    ///
    /// ```
    /// assert!(llm_retry_runtime::failover::FailoverError::NoTargets.message().contains("at least one"));
    /// ```
    pub const fn message(self) -> &'static str {
        match self {
            FailoverError::NoTargets => "a fallback chain needs at least one target, such as &[&PRIMARY, &SECONDARY]",
        }
    }
}

impl fmt::Display for FailoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for FailoverError {}

impl<'a> Fallback<'a> {
    /// A chain of `targets`, tried in order: an `Err` if there are none.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Fallback, Target};
    /// static A: Target = Target::new("a");
    /// let built_at_run_time: Vec<&'static Target> = vec![&A];
    /// assert!(Fallback::new(&built_at_run_time).is_ok());
    /// assert!(Fallback::new(&built_at_run_time[..0]).is_err());
    /// ```
    pub const fn new(targets: &'a [&'static Target]) -> Result<Fallback<'a>, FailoverError> {
        if targets.is_empty() {
            return Err(FailoverError::NoTargets);
        }
        Ok(Fallback { targets, listed: 0 })
    }

    /// Also moves on at once (no retry on this target) on `kind`: for `Auth` when each
    /// provider has its own key, or `BadRequest` when the next model accepts what this one
    /// refuses.
    ///
    /// ```
    /// use llm_retry_runtime::{ErrorKind, failover::{Fallback, Target}};
    /// static A: Target = Target::new("a");
    /// let targets = [&A];
    /// let chain = Fallback::new(&targets).unwrap().move_on(ErrorKind::Auth);
    /// assert!(chain.moves_on_at_once(ErrorKind::Auth));
    /// ```
    pub const fn move_on(mut self, kind: ErrorKind) -> Self {
        self.listed |= 1 << kind.index();
        self
    }

    /// The targets, in order.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Fallback, Target};
    /// static A: Target = Target::new("a");
    /// let targets = [&A];
    /// assert_eq!(Fallback::new(&targets).unwrap().targets()[0].name(), "a");
    /// ```
    pub const fn targets(&self) -> &'a [&'static Target] {
        self.targets
    }

    /// Whether a failure of `kind` moves on to the next target at once, with no retry on
    /// this one: ContextLengthExceeded, QuotaExhausted, and the kinds listed with
    /// [`move_on`](Self::move_on).
    ///
    /// ```
    /// use llm_retry_runtime::{ErrorKind, failover::{Fallback, Target}};
    /// static A: Target = Target::new("a");
    /// let targets = [&A];
    /// let chain = Fallback::new(&targets).unwrap();
    /// assert!(chain.moves_on_at_once(ErrorKind::QuotaExhausted));
    /// assert!(!chain.moves_on_at_once(ErrorKind::RateLimited));
    /// ```
    pub const fn moves_on_at_once(&self, kind: ErrorKind) -> bool {
        matches!(kind, ErrorKind::ContextLengthExceeded | ErrorKind::QuotaExhausted)
            || self.listed & (1 << kind.index()) != 0
    }
}
