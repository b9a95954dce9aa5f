//! What a batch reports: one [`ItemResult`] per item, and the [`Progress`] of the whole.

#[cfg(doc)]
use super::{Batch, BatchBuilder, BatchStream};
#[cfg(doc)]
use crate::ErrorKind;
use crate::failover::Target;
use std::time::Duration;

/// A batch's progress at one moment, handed to [`BatchBuilder::on_progress`] and returned by
/// [`BatchStream::progress`].
///
/// ```
/// use llm_retry_runtime::batch::Progress;
/// let p = Progress::default();
/// assert_eq!(p.finished(), 0);
/// assert_eq!(p.gate_wait, std::time::Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// How many items the batch holds, when the input iterator knows its exact length.
    pub total: Option<usize>,
    /// Items that succeeded.
    pub succeeded: usize,
    /// Items that failed: their last error is final.
    pub failed: usize,
    /// Attempts running now (at most the concurrency).
    pub in_flight: usize,
    /// Items started and not finished that are not in an attempt: backing off, or held by
    /// the limiter.
    pub waiting: usize,
    /// Retries so far, over all items (on the same target, after a back-off).
    pub retries: u64,
    /// Moves to the next target of a fallback chain so far, over all items
    /// ([`Batch::fallback`]).
    pub moved_on: u64,
    /// Attempts that failed as [`RateLimited`](ErrorKind::RateLimited) or
    /// [`Overloaded`](ErrorKind::Overloaded), over all items.
    pub rate_limited: u64,
    /// How much longer the batch's limiter holds every new attempt (a throttle's
    /// Retry-After); zero when it is not paused.
    pub gate_wait: Duration,
}

impl Progress {
    /// Items that have finished, either way.
    ///
    /// ```
    /// let mut p = llm_retry_runtime::batch::Progress::default();
    /// (p.succeeded, p.failed) = (3, 1);
    /// assert_eq!(p.finished(), 4);
    /// ```
    pub const fn finished(&self) -> usize {
        self.succeeded.saturating_add(self.failed)
    }
}

/// The result of one item of a batch.
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, Policy};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let batch = Policy::DEFAULT.batch().build().unwrap();
/// let results = batch.run([1, 2], |n: u32| async move { Ok::<_, ApiError>(n * 10) }).await;
/// let second = &results[1];
/// assert_eq!((second.index, second.attempts), (1, 1));
/// assert_eq!(*second.outcome.as_ref().unwrap(), 20);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ItemResult<T, E> {
    /// The item's position in the input.
    pub index: usize,
    /// Its value, or its final error.
    pub outcome: Result<T, E>,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// Attempts that failed as [`RateLimited`](ErrorKind::RateLimited) or
    /// [`Overloaded`](ErrorKind::Overloaded).
    pub rate_limited: u32,
    /// From the moment the item got its slot to its outcome, back-off and limiter waits
    /// included.
    pub elapsed: Duration,
    /// Along a fallback chain ([`Batch::fallback`]), the target of the item's last attempt:
    /// the one that served it, if it succeeded. `None` without a chain, or when every
    /// breaker refused the item before any attempt.
    pub target: Option<&'static Target>,
}

impl<T, E> ItemResult<T, E> {
    /// Whether the item succeeded.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let r = Policy::DEFAULT.batch().build().unwrap().run([()], |_| async { Ok::<_, ApiError>(()) }).await;
    /// assert!(r[0].is_ok());
    /// # }
    /// ```
    pub const fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }
}
