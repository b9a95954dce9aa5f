//! What the attribute's expansion reaches. Not a public API: it changes without notice, and
//! the facade pins the macro and runtime versions together.

pub use crate::ErrorKind;
pub use crate::adaptive::Adaptive;
/// `policy = PATH`: the user's `static PolicySlot`, read by `Call::at_site`.
pub use crate::config::PolicySlot;
pub use crate::engine::Call;
/// `fallback = [...]`: the chain, its targets, and the loop's per-call route.
pub use crate::failover::{Fallback, Route, Target};
pub use crate::stats::Site;
pub use crate::{Backoff, Jitter};
pub use crate::{Policy, PolicyBuilder, RetryOn, Rule};
pub use core::ops::ControlFlow;
pub use core::time::Duration;

/// Builds a policy in a `const` context; an invalid one fails compilation with the error's
/// message. The attribute validates first, so this is a second line of defence.
pub const fn policy(builder: PolicyBuilder) -> Policy {
    match builder.build() {
        Ok(p) => p,
        Err(e) => panic!("{}", e.message()),
    }
}

// `#[llm_retry(stream = "...")]`: the streaming expansion's paths.
pub use crate::stream::{Resume, StreamEvent, StreamMode, StreamOptions};
pub use futures_core::Stream;

/// The chunk type of a named stream type `S: Stream<Item = Result<C, E>>`, so the attribute
/// can write the rewritten fn's item type when the declared one is not an `impl Stream<..>`.
pub trait ChunkStream {
    /// `C`.
    type Chunk;
}

impl<S: Stream<Item = Result<C, E>>, C, E> ChunkStream for S {
    type Chunk = C;
}

/// An owned argument of a `stream = ...` fn, copied for each attempt's opener.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must be `Clone`: a `stream = ...` fn opens each attempt with its own copy of this argument",
    label = "not `Clone`",
    note = "derive or implement `Clone` for it, or take it by reference (`&{Self}`)"
)]
pub trait CloneEachAttempt {
    /// A copy for one attempt.
    fn clone_each_attempt(&self) -> Self;
}

impl<T: Clone> CloneEachAttempt for T {
    #[inline]
    fn clone_each_attempt(&self) -> Self {
        self.clone()
    }
}
