//! What the attribute's expansion reaches. Not a public API: it changes without notice, and
//! the facade pins the macro and runtime versions together.

pub use crate::backoff::{Backoff, Jitter};
pub use crate::engine::Call;
pub use crate::kind::ErrorKind;
pub use crate::policy::{Policy, PolicyBuilder, RetryOn, Rule};
pub use crate::stats::Site;
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
