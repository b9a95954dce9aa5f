//! What a [`Policy`] runs: a call, a batch or a stream. The policy itself is the rulebook's
//! (`llm_retry_rules`), shared with the attribute; these entry points are the runtime's, so
//! they come as a trait.

use crate::Policy;
use crate::batch::BatchBuilder;
use crate::classify::Classify;
use crate::engine::{Call, Untimed};
use crate::hooks::{Controls, Hooks};
use crate::stream::{Resume, RetryStream, StreamChunk};
use core::future::Future;
use futures_core::Stream;

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Policy {}
}

/// Runs calls, batches and streams under a [`Policy`]: the builder form of the attribute.
/// Bring it into scope with `use llm_retry::RetryExt;`. Implemented for [`Policy`] only.
///
/// ```
/// use llm_retry_runtime::{ApiError, Policy, RetryExt};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let out: Result<u8, ApiError> = Policy::DEFAULT.retry(|| async { Ok(1) }).await;
/// assert_eq!(out.unwrap(), 1);
/// # }
/// ```
pub trait RetryExt: sealed::Sealed {
    /// A call under this policy, to configure and then [`retry`](Call::retry). No stats are
    /// kept unless a [`site`](Call::site) is given.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, RetryExt};
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>();
    /// # drop(call);
    /// ```
    fn call<T, E>(&self) -> Call<'_, T, E>;

    /// Runs `op` until it succeeds or the policy gives up.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, RetryExt};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let out: Result<&str, std::io::Error> = Policy::DEFAULT.retry(|| async { Ok("done") }).await;
    /// assert_eq!(out.unwrap(), "done");
    /// # }
    /// ```
    fn retry<T, E, F, Fut>(&self, op: F) -> impl Future<Output = Result<T, E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify;

    /// A batch under this policy: every item is retried by it. See
    /// [`Batch`](crate::batch::Batch).
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, RetryExt};
    /// let batch = Policy::DEFAULT.batch().concurrency(8).build().unwrap();
    /// assert_eq!(batch.concurrency(), 8);
    /// ```
    fn batch(&self) -> BatchBuilder;

    /// A [`RetryStream`] under this policy: the builder form of a streaming call. Use
    /// [`call`](Self::call) then [`Call::stream`] to add a deadline, hooks or a stats site.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt, stream::StreamMode};
    /// let stream = Policy::DEFAULT
    ///     .stream(|_resume| async { Ok::<_, ApiError>(futures_util::stream::iter([Ok::<String, ApiError>("hi".into())])) })
    ///     .mode(StreamMode::Skip);
    /// # drop(stream);
    /// ```
    #[allow(clippy::type_complexity)]
    fn stream<E, F, Fut, S, C>(&self, opener: F) -> RetryStream<'_, E, Hooks, Controls, Untimed, F, Fut, S, C>
    where
        F: FnMut(Resume) -> Fut,
        Fut: Future<Output = Result<S, E>>,
        S: Stream<Item = Result<C, E>>,
        C: StreamChunk;
}

impl RetryExt for Policy {
    fn call<T, E>(&self) -> Call<'_, T, E> {
        Call::with_policy(self, None)
    }

    fn retry<T, E, F, Fut>(&self, op: F) -> impl Future<Output = Result<T, E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        self.call().retry(op)
    }

    fn batch(&self) -> BatchBuilder {
        BatchBuilder::new(*self)
    }

    fn stream<E, F, Fut, S, C>(&self, opener: F) -> RetryStream<'_, E, Hooks, Controls, Untimed, F, Fut, S, C>
    where
        F: FnMut(Resume) -> Fut,
        Fut: Future<Output = Result<S, E>>,
        S: Stream<Item = Result<C, E>>,
        C: StreamChunk,
    {
        self.call().stream(opener)
    }
}
