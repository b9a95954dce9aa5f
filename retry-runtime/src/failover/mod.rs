//! Circuit breakers and fallback chains: when a model or provider is down, or a prompt is too
//! long for it, the call moves on to another one instead of spending its retries there.
//!
//! - [`Breaker`]: a `static` per target, shared by every call to it. Closed, it counts
//!   failures; open, calls skip its target at once; half-open, exactly one probe at a time
//!   finds out whether the target is back.
//! - [`Target`]: a `static` naming one model or endpoint, with its breaker.
//! - [`Fallback`]: the ordered targets of a call, and when a call moves on (see its table).
//! - [`CircuitOpen`]: what a call ends with when every breaker refused it.
//!
//! A call runs the chain with [`Call::fallback`](crate::call::Call::fallback); its body gets
//! the `&'static Target` of each attempt. The policy's attempts apply per target.
//!
//! ```
//! use llm_retry_runtime::{ApiError, ErrorKind, Policy, RetryExt};
//! use llm_retry_runtime::failover::{Breaker, Fallback, Target};
//!
//! static SMALL_BREAKER: Breaker = Breaker::new("gpt-4o-mini");
//! static SMALL: Target = Target::new("gpt-4o-mini").breaker(&SMALL_BREAKER);
//! static LARGE: Target = Target::new("gpt-4o");
//! static CHAIN: Fallback<'static> = match Fallback::new(&[&SMALL, &LARGE]) {
//!     Ok(c) => c,
//!     Err(e) => panic!("{}", e.message()),
//! };
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let served: Result<&str, ApiError> = Policy::DEFAULT
//!     .call()
//!     .fallback(CHAIN)
//!     .retry(|target| async move {
//!         if target.name() == "gpt-4o-mini" {
//!             Err(ApiError::new(ErrorKind::ContextLengthExceeded, "prompt too long"))
//!         } else {
//!             Ok(target.name())
//!         }
//!     })
//!     .await;
//! assert_eq!(served.unwrap(), "gpt-4o");
//! # }
//! ```

mod chain;
mod circuit_open;
mod route;
mod target;

pub use crate::breaker::{Breaker, BreakerBuilder, BreakerError, BreakerState, BreakerStats, Cause};
pub use crate::engine::WithFallback;
pub use chain::{FailoverError, Fallback};
pub use circuit_open::CircuitOpen;
#[doc(hidden)]
pub use route::Route;
pub use target::Target;

use crate::ErrorKind;
use crate::breaker::Verdict;

/// How a target's breaker counts an attempt that failed with `kind`: the caller's errors
/// never count against the target.
pub(crate) const fn verdict(kind: ErrorKind) -> Verdict {
    match kind {
        ErrorKind::Connection
        | ErrorKind::Timeout
        | ErrorKind::RateLimited
        | ErrorKind::QuotaExhausted
        | ErrorKind::Overloaded
        | ErrorKind::Server
        | ErrorKind::RequestTimeout => Verdict::Failure,
        _ => Verdict::Neutral,
    }
}
