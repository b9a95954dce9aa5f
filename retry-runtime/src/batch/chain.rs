//! A batch along a fallback chain: [`Batch::fallback`] and its [`BatchFallback`], whose items
//! each move along the chain as a plain call does.

use super::run::{Count, Shared};
use super::{Batch, BatchStream, ItemResult};
use crate::classify::Classify;
use crate::engine::Routed;
use crate::failover::{CircuitOpen, Fallback, Route, Target};
use core::fmt;
use core::future::Future;
use futures_util::stream::{self, Stream, StreamExt};
use std::sync::Arc;
use tokio::time::Instant;

/// A [`Batch`] whose items run along a [`Fallback`] chain: from [`Batch::fallback`].
///
/// ```
/// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Fallback, Target}};
/// static A: Target = Target::new("a");
/// let batch = Policy::DEFAULT.batch().build().unwrap();
/// let targets = [&A];
/// let along = batch.fallback(Fallback::new(&targets).unwrap());
/// assert_eq!(along.chain().targets().len(), 1);
/// ```
#[derive(Clone, Copy)]
#[must_use = "a batch does nothing until `run` is awaited or `stream` polled"]
pub struct BatchFallback<'b, 'c> {
    batch: &'b Batch,
    chain: Fallback<'c>,
}

impl fmt::Debug for BatchFallback<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchFallback").field("batch", self.batch).field("chain", &self.chain).finish()
    }
}

impl Batch {
    /// Runs each item along `chain`, as a plain call through it would run
    /// ([`Call::fallback`](crate::call::Call::fallback)): the item's op gets each attempt's
    /// target; the policy's attempts apply per target; ContextLengthExceeded and
    /// QuotaExhausted move on at once, retryable kinds once the target's attempts are spent;
    /// an open breaker is skipped; the item ends with [`CircuitOpen`] when no breaker lets it
    /// through. Every attempt, whatever its target, goes through the batch's limiter, as a
    /// call's controls apply to every target of its chain.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind, Policy, RetryExt, failover::{Fallback, Target}};
    /// static SMALL: Target = Target::new("gpt-4o-mini");
    /// static LARGE: Target = Target::new("gpt-4o");
    /// static CHAIN: Fallback<'static> = match Fallback::new(&[&SMALL, &LARGE]) {
    ///     Ok(c) => c,
    ///     Err(e) => panic!("{}", e.message()),
    /// };
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let batch = Policy::DEFAULT.batch().concurrency(8).build().unwrap();
    /// let prompts = ["short", "a prompt too long for the small model"];
    /// let results = batch
    ///     .fallback(CHAIN)
    ///     .run(prompts, |target: &'static Target, prompt: &str| async move {
    ///         if target.name() == "gpt-4o-mini" && prompt.len() > 10 {
    ///             return Err(ApiError::new(ErrorKind::ContextLengthExceeded, "too long"));
    ///         }
    ///         Ok(prompt.len())
    ///     })
    ///     .await;
    /// assert_eq!(results[0].target.map(Target::name), Some("gpt-4o-mini"));
    /// assert_eq!(results[1].target.map(Target::name), Some("gpt-4o"));
    /// assert!(results.iter().all(|r| r.is_ok()));
    /// # }
    /// ```
    pub fn fallback<'c>(&self, chain: Fallback<'c>) -> BatchFallback<'_, 'c> {
        BatchFallback { batch: self, chain }
    }
}

impl<'c> BatchFallback<'_, 'c> {
    /// The chain.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, RetryExt, failover::{Fallback, Target}};
    /// static A: Target = Target::new("a");
    /// let batch = Policy::DEFAULT.batch().build().unwrap();
    /// let targets = [&A];
    /// assert_eq!(batch.fallback(Fallback::new(&targets).unwrap()).chain().targets()[0].name(), "a");
    /// ```
    pub fn chain(&self) -> Fallback<'c> {
        self.chain
    }

    /// [`Batch::run`] along the chain: one [`ItemResult`] per input, in input order, each
    /// with the [`target`](ItemResult::target) of its last attempt.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Fallback, Target}};
    /// static ONLY: Target = Target::new("only");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let batch = Policy::DEFAULT.batch().build().unwrap();
    /// let targets = [&ONLY];
    /// let results = batch
    ///     .fallback(Fallback::new(&targets).unwrap())
    ///     .run(0..3, |t: &'static Target, n: u32| async move { Ok::<_, ApiError>((t.name(), n)) })
    ///     .await;
    /// assert_eq!(results[2].outcome.as_ref().unwrap(), &("only", 2));
    /// # }
    /// ```
    pub async fn run<It, I, T, E, F, Fut>(self, inputs: It, op: F) -> Vec<ItemResult<T, E>>
    where
        It: IntoIterator<Item = I>,
        I: Clone,
        F: Fn(&'static Target, I) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<CircuitOpen>,
    {
        self.stream(inputs, op).in_input_order().await
    }

    /// [`Batch::stream`] along the chain: each item's result as soon as it finishes.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Fallback, Target}};
    /// static ONLY: Target = Target::new("only");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let batch = Policy::DEFAULT.batch().build().unwrap();
    /// let targets = [&ONLY];
    /// let along = batch.fallback(Fallback::new(&targets).unwrap());
    /// let results = along.stream(0..4, |_t: &'static Target, n: u32| async move { Ok::<_, ApiError>(n) });
    /// assert_eq!(results.count().await, 4);
    /// # }
    /// ```
    pub fn stream<It, I, T, E, F, Fut>(
        &self,
        inputs: It,
        op: F,
    ) -> BatchStream<impl Stream<Item = ItemResult<T, E>> + Unpin + use<'c, It, I, T, E, F, Fut>>
    where
        It: IntoIterator<Item = I>,
        I: Clone,
        F: Fn(&'static Target, I) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<CircuitOpen>,
    {
        let inputs = inputs.into_iter();
        let shared = Shared::new(&self.batch.config, inputs.size_hint());
        let op = Arc::new(op);
        let for_items = shared.clone();
        let chain = self.chain;
        let inner = stream::iter(inputs.enumerate())
            .map(move |(index, input)| run_item_along(for_items.clone(), op.clone(), chain, index, input))
            .buffer_unordered(self.batch.config.concurrency);
        BatchStream { inner, shared }
    }
}

/// One item along the chain: which target now, then one attempt there (after the limiter),
/// then retry there after a back-off, move on at once, or end.
async fn run_item_along<I, T, E, F, Fut>(
    shared: Arc<Shared>,
    op: Arc<F>,
    chain: Fallback<'_>,
    index: usize,
    input: I,
) -> ItemResult<T, E>
where
    I: Clone,
    F: Fn(&'static Target, I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify + From<CircuitOpen>,
{
    let s: &Shared = &shared;
    let started = Instant::now();
    let active = Count::active(s);
    let mut call = s.call::<T, E>();
    // Dropped with the item (cancelled batch): a half-open breaker's probe is released.
    let mut route = Route::new(chain);
    let mut attempts = 0u32;
    let mut rate_limited = 0u32;
    let mut last = None;
    let outcome = loop {
        let target = match call.next_target(&mut route) {
            Ok(t) => t,
            Err(e) => break Err(e),
        };
        last = Some(target);
        attempts = attempts.saturating_add(1);
        let slot = s.enter().await;
        let flight = s.flying(&mut call);
        let result = op(target, input.clone()).await;
        s.landed(flight, &result);
        drop(slot);
        match call.settle_routed(&mut route, result, None) {
            Routed::End(out) => break out,
            Routed::Retry(plan) => {
                s.going_on(plan.kind, Some(plan.delay), &mut rate_limited);
                tokio::time::sleep(plan.delay).await;
            }
            Routed::MoveOn { kind, .. } => s.going_on(kind, None, &mut rate_limited),
        }
    };
    drop(route);
    drop(call);
    drop(active);
    s.ended(index, outcome, attempts, rate_limited, started, last)
}
