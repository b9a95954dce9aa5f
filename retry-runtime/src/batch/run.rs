//! Running a batch: [`Batch::run`] and [`Batch::stream`], the loop each item runs (wait for
//! the limiter, attempt, tell the limiter, let the engine decide, back off), the counters the
//! items share, and the [`BatchStream`] of results.

use super::builder::ProgressFn;
use super::{Batch, BatchBuilder, ItemResult, Progress};
use crate::call::Call;
use crate::classify::Classify;
use crate::failover::Target;
use crate::limiter::InFlight;
use crate::stats::Site;
use crate::{ErrorKind, Limiter, Policy, RetryExt};
use core::fmt;
use core::future::Future;
use core::ops::ControlFlow;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_util::stream::{self, Stream, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

impl Batch {
    /// Runs `op` on every input and returns one [`ItemResult`] per input, in input order.
    ///
    /// `op` makes one attempt; it is called again with a clone of the input for each retry.
    /// An empty input gives an empty result. A panic in `op` propagates out of this future;
    /// dropping the future cancels every item in flight and starts no further attempt.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let batch = Policy::DEFAULT.batch().build().unwrap();
    /// let results = batch.run(Vec::<u8>::new(), |n| async move { Ok::<_, ApiError>(n) }).await;
    /// assert!(results.is_empty());
    /// # }
    /// ```
    pub async fn run<It, I, T, E, F, Fut>(&self, inputs: It, op: F) -> Vec<ItemResult<T, E>>
    where
        It: IntoIterator<Item = I>,
        I: Clone,
        F: Fn(I) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        self.stream(inputs, op).in_input_order().await
    }

    /// Like [`run`](Self::run), but yields each item's result as soon as it finishes, for
    /// long jobs. The batch only advances while the stream is polled.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let batch = Policy::DEFAULT.batch().concurrency(2).build().unwrap();
    /// let mut results = batch.stream([30u64, 10, 20], |ms| async move {
    ///     tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    ///     Ok::<_, ApiError>(ms)
    /// });
    /// let mut order = Vec::new();
    /// while let Some(r) = results.next().await {
    ///     order.push(r.index);
    /// }
    /// assert_eq!(order, [1, 0, 2]);
    /// assert_eq!(results.progress().succeeded, 3);
    /// # }
    /// ```
    pub fn stream<It, I, T, E, F, Fut>(
        &self,
        inputs: It,
        op: F,
    ) -> BatchStream<impl Stream<Item = ItemResult<T, E>> + Unpin + use<It, I, T, E, F, Fut>>
    where
        It: IntoIterator<Item = I>,
        I: Clone,
        F: Fn(I) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let inputs = inputs.into_iter();
        let shared = Shared::new(&self.config, inputs.size_hint());
        let op = Arc::new(op);
        let for_items = shared.clone();
        let inner = stream::iter(inputs.enumerate())
            .map(move |(index, input)| run_item(for_items.clone(), op.clone(), index, input))
            .buffer_unordered(self.config.concurrency);
        BatchStream { inner, shared }
    }
}

/// The results of [`Batch::stream`], in the order the items finish.
///
/// Dropping it cancels every item in flight.
///
/// ```
/// use futures_util::StreamExt;
/// use llm_retry_runtime::{RetryExt, ApiError, Policy};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let batch = Policy::DEFAULT.batch().build().unwrap();
/// let results = batch.stream(0..5, |n| async move { Ok::<_, ApiError>(n) });
/// assert_eq!(results.progress().total, Some(5));
/// assert_eq!(results.count().await, 5);
/// # }
/// ```
pub struct BatchStream<S> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared>,
}

impl<S> BatchStream<S> {
    /// The batch's progress now.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// let batch = Policy::DEFAULT.batch().build().unwrap();
    /// let results = batch.stream(0..5, |n| async move { Ok::<_, ApiError>(n) });
    /// assert_eq!(results.progress().finished(), 0);
    /// ```
    pub fn progress(&self) -> Progress {
        self.shared.progress()
    }
}

impl<S, T, E> BatchStream<S>
where
    S: Stream<Item = ItemResult<T, E>> + Unpin,
{
    /// Every item's result, in input order: what `run` returns.
    pub(super) async fn in_input_order(mut self) -> Vec<ItemResult<T, E>> {
        let mut out = Vec::with_capacity(self.progress().total.unwrap_or(0));
        while let Some(r) = self.next().await {
            out.push(r);
        }
        out.sort_unstable_by_key(|r| r.index);
        out
    }
}

impl<S> fmt::Debug for BatchStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchStream").field("progress", &self.progress()).finish_non_exhaustive()
    }
}

impl<S: Stream + Unpin> Stream for BatchStream<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The limiter a run's attempts go through: the endpoint's, or the run's own.
enum Pacer {
    Endpoint(&'static Limiter),
    Own(Box<Limiter>),
}

impl Pacer {
    fn get(&self) -> &Limiter {
        match self {
            Pacer::Endpoint(l) => l,
            Pacer::Own(l) => l,
        }
    }
}

/// What the items of one run share: the policy, the limiter and the progress counters.
pub(super) struct Shared {
    policy: Policy,
    site: Option<&'static Site>,
    pacer: Option<Pacer>,
    total: Option<usize>,
    active: AtomicUsize,
    in_flight: AtomicUsize,
    succeeded: AtomicUsize,
    failed: AtomicUsize,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    /// Moves to the next target of a fallback chain (`Batch::fallback`).
    moved_on: AtomicU64,
    on_progress: Option<ProgressFn>,
}

impl Shared {
    /// The shared state of a run of `config` over inputs whose iterator gives `size_hint`.
    pub(super) fn new(config: &BatchBuilder, (lo, hi): (usize, Option<usize>)) -> Arc<Shared> {
        Arc::new(Shared {
            policy: config.policy,
            site: config.site,
            pacer: match (config.gate, config.limiter) {
                (false, _) => None,
                (true, Some(l)) => Some(Pacer::Endpoint(l)),
                (true, None) => Some(Pacer::Own(Box::new(Limiter::new("batch")))),
            },
            total: (Some(lo) == hi).then_some(lo),
            active: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            succeeded: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            retries: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            moved_on: AtomicU64::new(0),
            on_progress: config.on_progress.clone(),
        })
    }

    /// An item's call under the run's policy, counted at its site.
    pub(super) fn call<T, E>(&self) -> Call<'_, T, E> {
        let call = self.policy.call::<T, E>();
        match self.site {
            Some(site) => call.site(site),
            None => call,
        }
    }

    /// Waits for the run's limiter (if any); the place in flight it returns (a capped
    /// limiter's) is the attempt's until it lands.
    pub(super) async fn enter(&self) -> InFlight<'_> {
        match self.pacer() {
            Some(limiter) => limiter.enter().await,
            None => InFlight::NONE,
        }
    }

    /// The limiter every attempt waits for first, if the run has one.
    pub(super) fn pacer(&self) -> Option<&Limiter> {
        self.pacer.as_ref().map(Pacer::get)
    }

    /// An attempt starts: it is in flight until the returned count is dropped.
    pub(super) fn flying<T, E: Classify>(&self, call: &mut Call<'_, T, E>) -> Count<'_> {
        call.start_attempt();
        let flight = Count::up(&self.in_flight);
        self.report();
        flight
    }

    /// An attempt ended with `result`: the limiter hears of it.
    pub(super) fn landed<T, E: Classify>(&self, flight: Count<'_>, result: &Result<T, E>) {
        drop(flight);
        if let Some(limiter) = self.pacer() {
            tell(limiter, &self.policy, result);
        }
    }

    /// An attempt failed as `kind`, and the item goes on: a retry on the same target after
    /// `delay`, or (`None`) a move to the chain's next target.
    pub(super) fn going_on(&self, kind: ErrorKind, delay: Option<Duration>, rate_limited: &mut u32) {
        match delay {
            Some(_) => &self.retries,
            None => &self.moved_on,
        }
        .fetch_add(1, Relaxed);
        if is_rate_limit(kind) {
            self.limited(rate_limited);
        }
        self.report();
    }

    /// The item ended with `outcome`; `started` when it got its slot.
    pub(super) fn ended<T, E: Classify>(
        &self,
        index: usize,
        outcome: Result<T, E>,
        attempts: u32,
        mut rate_limited: u32,
        started: Instant,
        target: Option<&'static Target>,
    ) -> ItemResult<T, E> {
        if let Err(e) = &outcome
            && is_rate_limit(e.classify().kind)
        {
            self.limited(&mut rate_limited);
        }
        if outcome.is_ok() { &self.succeeded } else { &self.failed }.fetch_add(1, Relaxed);
        self.report();
        ItemResult { index, outcome, attempts, rate_limited, elapsed: started.elapsed(), target }
    }

    fn limited(&self, n: &mut u32) {
        *n = n.saturating_add(1);
        self.rate_limited.fetch_add(1, Relaxed);
    }

    fn progress(&self) -> Progress {
        let active = self.active.load(Relaxed);
        let in_flight = self.in_flight.load(Relaxed);
        Progress {
            total: self.total,
            succeeded: self.succeeded.load(Relaxed),
            failed: self.failed.load(Relaxed),
            in_flight,
            waiting: active.saturating_sub(in_flight),
            retries: self.retries.load(Relaxed),
            moved_on: self.moved_on.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            gate_wait: self.pacer.as_ref().map_or(Duration::ZERO, |p| p.get().stats().paused_for),
        }
    }

    fn report(&self) {
        if let Some(f) = &self.on_progress {
            f(&self.progress());
        }
    }
}

fn is_rate_limit(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::RateLimited | ErrorKind::Overloaded)
}

/// Decrements a counter when dropped: an attempt or an item ends, however it ends.
pub(super) struct Count<'a>(&'a AtomicUsize);

impl<'a> Count<'a> {
    /// An item of `shared` is active until this is dropped.
    pub(super) fn active(shared: &'a Shared) -> Self {
        Count::up(&shared.active)
    }

    fn up(c: &'a AtomicUsize) -> Self {
        c.fetch_add(1, Relaxed);
        Count(c)
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// One item: wait for the limiter, attempt, tell the limiter, let the engine decide, back
/// off, repeat.
async fn run_item<I, T, E, F, Fut>(shared: Arc<Shared>, op: Arc<F>, index: usize, input: I) -> ItemResult<T, E>
where
    I: Clone,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify,
{
    let s: &Shared = &shared;
    let started = Instant::now();
    let active = Count::active(s);
    let mut call = s.call::<T, E>();
    let mut attempts = 0u32;
    let mut rate_limited = 0u32;
    let outcome = loop {
        attempts = attempts.saturating_add(1);
        let slot = s.enter().await;
        let flight = s.flying(&mut call);
        let result = op(input.clone()).await;
        s.landed(flight, &result);
        drop(slot);
        match call.settle(result, None) {
            ControlFlow::Break(out) => break out,
            ControlFlow::Continue(plan) => {
                s.going_on(plan.kind, Some(plan.delay), &mut rate_limited);
                tokio::time::sleep(plan.delay).await;
            }
        }
    };
    drop(call);
    drop(active);
    s.ended(index, outcome, attempts, rate_limited, started, None)
}

/// Tells the limiter how an attempt went: a throttle with its Retry-After (for no longer
/// than the policy would wait), or a response.
fn tell<T, E: Classify>(limiter: &Limiter, policy: &Policy, result: &Result<T, E>) {
    match result {
        Err(e) => {
            let c = e.classify();
            if is_rate_limit(c.kind) {
                let hint = c.retry_after.and_then(|h| h.resolve((policy.wall_clock())()));
                limiter.heard_throttle(hint.map(|h| h.min(policy.max_retry_after())));
            } else {
                limiter.heard_response();
            }
        }
        Ok(_) => limiter.heard_response(),
    }
}
