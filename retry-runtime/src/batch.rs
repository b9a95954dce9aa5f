//! Batch retry: many inputs through one operation, at most K at once, each item retried on
//! its own schedule, and one shared gate that holds the whole batch when the server says
//! "slow down".
//!
//! The public documentation, design included, is on [`Batch`].

use crate::ErrorKind;
use crate::classify::Classify;
use crate::hooks::DelaySource;
use crate::stats::Site;
use crate::{Policy, RetryExt};
use core::fmt;
use core::future::Future;
use core::ops::ControlFlow;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_util::stream::{self, Stream, StreamExt};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// How many items a batch runs at once unless told otherwise.
pub const DEFAULT_BATCH_CONCURRENCY: usize = 16;

/// Below this, the gate's pace is dropped and attempts start freely again.
const MIN_SPACING: Duration = Duration::from_micros(100);

/// Why a batch cannot be built. Returned by [`BatchBuilder::build`]; never a panic.
///
/// ```
/// use llm_retry_runtime::{RetryExt, BatchError, Policy};
/// let err = Policy::DEFAULT.batch().concurrency(0).build().unwrap_err();
/// assert_eq!(err, BatchError::ZeroConcurrency);
/// assert!(err.to_string().contains("at least 1"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// `concurrency` is 0: nothing could ever run.
    ZeroConcurrency,
}

impl BatchError {
    /// The error as a sentence that names the fix.
    ///
    /// ```
    /// assert!(llm_retry_runtime::BatchError::ZeroConcurrency.message().contains("use 1"));
    /// ```
    pub const fn message(&self) -> &'static str {
        match self {
            BatchError::ZeroConcurrency => {
                "concurrency counts items in flight and must be at least 1; use 1 to run the batch one item at a time"
            }
        }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for BatchError {}

/// A batch's progress at one moment, handed to [`BatchBuilder::on_progress`] and returned by
/// [`BatchStream::progress`].
///
/// ```
/// use llm_retry_runtime::Progress;
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
    /// the gate.
    pub waiting: usize,
    /// Retries so far, over all items.
    pub retries: u64,
    /// Attempts that failed as [`RateLimited`](ErrorKind::RateLimited) or
    /// [`Overloaded`](ErrorKind::Overloaded), over all items.
    pub rate_limited: u64,
    /// How much longer the shared gate holds new attempts; zero when it is open.
    pub gate_wait: Duration,
}

impl Progress {
    /// Items that have finished, either way.
    ///
    /// ```
    /// let mut p = llm_retry_runtime::Progress::default();
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
    /// From the moment the item got its slot to its outcome, back-off and gate waits included.
    pub elapsed: Duration,
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

type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Configures a [`Batch`]; from [`Policy::batch`].
///
/// ```
/// use llm_retry_runtime::RetryExt;
/// use llm_retry_runtime::Policy;
/// let batch = Policy::DEFAULT
///     .batch()
///     .concurrency(64)
///     .on_progress(|p| eprintln!("{}/{:?} done", p.finished(), p.total))
///     .build()
///     .unwrap();
/// assert_eq!(batch.concurrency(), 64);
/// ```
#[derive(Clone)]
pub struct BatchBuilder {
    policy: Policy,
    concurrency: usize,
    gate: bool,
    site: Option<&'static Site>,
    on_progress: Option<ProgressFn>,
}

impl fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("concurrency", &self.concurrency)
            .field("shared_gate", &self.gate)
            .field("site", &self.site.map(Site::name))
            .field("on_progress", &self.on_progress.is_some())
            .finish_non_exhaustive()
    }
}

impl BatchBuilder {
    /// A batch under `policy`, with the defaults: what [`RetryExt::batch`](crate::RetryExt::batch) returns.
    pub(crate) fn new(policy: Policy) -> Self {
        BatchBuilder { policy, concurrency: DEFAULT_BATCH_CONCURRENCY, gate: true, site: None, on_progress: None }
    }
}

impl BatchBuilder {
    /// How many items run at once (default [`DEFAULT_BATCH_CONCURRENCY`]); at least 1. An item
    /// keeps its slot while it backs off, so this also bounds the attempts in flight.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// assert!(llm_retry_runtime::Policy::DEFAULT.batch().concurrency(0).build().is_err());
    /// ```
    pub fn concurrency(mut self, k: usize) -> Self {
        self.concurrency = k;
        self
    }

    /// Whether rate limits hold the whole batch (default: yes). With `false`, each item
    /// handles its own 429s, as independent calls would.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let batch = llm_retry_runtime::Policy::DEFAULT.batch().shared_gate(false).build().unwrap();
    /// assert!(!batch.has_shared_gate());
    /// ```
    pub fn shared_gate(mut self, yes: bool) -> Self {
        self.gate = yes;
        self
    }

    /// Counts every item as one call of `site` in the per-site [`stats`](crate::stats).
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, Site};
    /// static SITE: Site = Site::new("docs::batch_site", Policy::DEFAULT);
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let batch = Policy::DEFAULT.batch().site(&SITE).build().unwrap();
    /// batch.run(0..3, |_| async { Ok::<_, ApiError>(()) }).await;
    /// assert_eq!(SITE.stats().calls, 3);
    /// # }
    /// ```
    pub fn site(mut self, site: &'static Site) -> Self {
        self.site = Some(site);
        self
    }

    /// Calls `f` with a [`Progress`] snapshot whenever an attempt starts or ends and whenever
    /// an item finishes. It runs inside the batch's task: keep it short.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let done = Arc::new(AtomicUsize::new(0));
    /// let seen = done.clone();
    /// let batch = Policy::DEFAULT
    ///     .batch()
    ///     .on_progress(move |p| seen.store(p.finished(), Ordering::Relaxed))
    ///     .build()
    ///     .unwrap();
    /// batch.run(0..10, |_| async { Ok::<_, ApiError>(()) }).await;
    /// assert_eq!(done.load(Ordering::Relaxed), 10);
    /// # }
    /// ```
    pub fn on_progress<F: Fn(&Progress) + Send + Sync + 'static>(mut self, f: F) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// Validates and returns the batch, or says what is wrong.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, BatchError, Policy};
    /// assert_eq!(Policy::DEFAULT.batch().concurrency(0).build().unwrap_err(), BatchError::ZeroConcurrency);
    /// ```
    pub fn build(self) -> Result<Batch, BatchError> {
        if self.concurrency == 0 {
            return Err(BatchError::ZeroConcurrency);
        }
        Ok(Batch { config: self })
    }
}

/// Runs many inputs through one operation under a [`Policy`]: at most `K` items at once,
/// each retried on its own schedule, a shared gate for rate limits, and one result per item
/// in input order. Build one with [`Policy::batch`].
///
/// A `Batch` is a reusable configuration: each [`run`](Self::run) or
/// [`stream`](Self::stream) has its own gate and counters.
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, ErrorKind, Policy};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let batch = Policy::DEFAULT.batch().concurrency(4).build().unwrap();
/// let results = batch
///     .run(["ok", "", "ok"], |prompt: &str| async move {
///         if prompt.is_empty() { Err(ApiError::from_status(400)) } else { Ok(prompt.len()) }
///     })
///     .await;
/// assert_eq!(results[0].outcome.as_ref().ok(), Some(&2));
/// assert_eq!(results[1].outcome.as_ref().unwrap_err().kind(), ErrorKind::BadRequest);
/// assert_eq!(results[1].attempts, 1); // a 400 is never retried
/// # }
/// ```
///
/// # Design
///
/// - **Bounded, lazy, in-task.** The batch pulls inputs from the iterator only when one of
///   its `K` slots is free, and runs the items as futures inside the caller's task
///   ([`FuturesUnordered`](futures_util::stream::FuturesUnordered) under
///   [`buffer_unordered`](futures_util::StreamExt::buffer_unordered)): no `tokio::spawn`, so
///   dropping the batch drops every item, and memory holds `K` item futures plus the results,
///   never `N` futures.
/// - **Per-item scheduling.** Each item is one [`Call`](crate::Call) under the policy: a
///   failed item sleeps its own back-off (or Retry-After) inside its slot and retries as soon
///   as that is over; no item waits for a "round" of others. An item keeps its slot while it
///   backs off, so at most `K` attempts are ever in flight.
/// - **One shared gate.** When an attempt fails as [`RateLimited`](ErrorKind::RateLimited)
///   or [`Overloaded`](ErrorKind::Overloaded) and the policy retries it, the gate holds every
///   new attempt of the batch until the end of that item's delay: the server's Retry-After
///   plus the engine's small jitter, or the policy's back-off when there is no hint. One item
///   discovers the limit; the other `K − 1` wait instead of each paying a 429 for it.
/// - **Then a pace, not a herd.** Releasing `K` waiting attempts at the same instant would
///   meet the limit again at once (a token bucket has one token at that instant, not `K`). So
///   after a hold caused by a 429 *with a hint*, the gate lets attempts start one at a time,
///   a pace apart: first the hold divided by `K`, shrunk by a quarter by each success while no
///   429 has come back under it (a one-off 429 costs little). A 429 from an attempt that
///   started after the hold is news: it doubles the pace (never past that 429's own delay:
///   the server said when capacity returns), and from then on each success shrinks it by only
///   1/32, an additive-increase, multiplicative-decrease search for the server's rate. A 429
///   from an attempt already in flight when the gate closed only extends the hold. Once the
///   pace is under 100 µs the gate is fully open again. A rate limit or overload without a
///   hint holds for the back-off but sets no pace: a back-off is the client's guess, not the
///   server's rate.
///
///   Against the chaos server's token bucket (12,000 requests a minute, burst 8), 1,000
///   prompts at `K = 32` over real TCP get about 60 429s with the gate and about 4,000–9,000
///   without, in the same time (`tests/batch_e2e.rs`).
///
/// # With `#[llm_retry]`
///
/// The batch *is* the retry loop. Give it the raw operation: an `async fn` or closure that
/// makes one attempt. An `#[llm_retry]`-annotated fn already retries inside each call, so a
/// batch of them would retry twice (up to `inner × outer` attempts per item), and the inner
/// loop would sleep through 429s that the shared gate never hears of. Keep the one-attempt fn
/// next to the annotated one and batch the former; or, to batch the annotated fn as is, give
/// the batch a policy with `max_attempts(1)`, so that it only bounds concurrency and keeps
/// order.
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, Policy};
///
/// async fn ask_once(prompt: String) -> Result<usize, ApiError> {
///     // One HTTP request; a 429 becomes `ApiError::from_response(429, &headers, &body)`.
///     Ok(prompt.len())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let batch = Policy::DEFAULT.batch().concurrency(32).build().unwrap();
/// let prompts = (0..100).map(|i| format!("prompt {i}"));
/// let results = batch.run(prompts, ask_once).await;
/// assert_eq!(results.len(), 100);
/// assert!(results.iter().enumerate().all(|(i, r)| r.index == i && r.outcome.is_ok()));
/// # }
/// ```
#[derive(Clone)]
pub struct Batch {
    config: BatchBuilder,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").field("config", &self.config).finish()
    }
}

impl Batch {
    /// How many items run at once.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// assert_eq!(llm_retry_runtime::Policy::DEFAULT.batch().build().unwrap().concurrency(), 16);
    /// ```
    pub fn concurrency(&self) -> usize {
        self.config.concurrency
    }

    /// Whether rate limits hold the whole batch.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// assert!(llm_retry_runtime::Policy::DEFAULT.batch().build().unwrap().has_shared_gate());
    /// ```
    pub fn has_shared_gate(&self) -> bool {
        self.config.gate
    }

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
        let mut results = self.stream(inputs, op);
        let mut out = Vec::with_capacity(results.progress().total.unwrap_or(0));
        while let Some(r) = results.next().await {
            out.push(r);
        }
        out.sort_unstable_by_key(|r| r.index);
        out
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
        let (lo, hi) = inputs.size_hint();
        let c = &self.config;
        let shared = Arc::new(Shared {
            policy: c.policy,
            site: c.site,
            gate: c.gate.then(|| Gate::new(c.concurrency)),
            total: (Some(lo) == hi).then_some(lo),
            active: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            succeeded: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            retries: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            on_progress: c.on_progress.clone(),
        });
        let op = Arc::new(op);
        let for_items = shared.clone();
        let inner = stream::iter(inputs.enumerate())
            .map(move |(index, input)| run_item(for_items.clone(), op.clone(), index, input))
            .buffer_unordered(c.concurrency);
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
    inner: S,
    shared: Arc<Shared>,
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

/// What the items of one run share: the policy, the gate and the progress counters.
struct Shared {
    policy: Policy,
    site: Option<&'static Site>,
    gate: Option<Gate>,
    total: Option<usize>,
    active: AtomicUsize,
    in_flight: AtomicUsize,
    succeeded: AtomicUsize,
    failed: AtomicUsize,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    on_progress: Option<ProgressFn>,
}

impl Shared {
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
            rate_limited: self.rate_limited.load(Relaxed),
            gate_wait: self.gate.as_ref().map_or(Duration::ZERO, Gate::wait_left),
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
struct Count<'a>(&'a AtomicUsize);

impl<'a> Count<'a> {
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

/// One item: wait for the gate, attempt, let the engine decide, back off, repeat.
async fn run_item<I, T, E, F, Fut>(shared: Arc<Shared>, op: Arc<F>, index: usize, input: I) -> ItemResult<T, E>
where
    I: Clone,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify,
{
    let s: &Shared = &shared;
    let started = Instant::now();
    let active = Count::up(&s.active);
    let call = s.policy.call::<T, E>();
    let mut call = match s.site {
        Some(site) => call.site(site),
        None => call,
    };
    let mut attempts = 0u32;
    let mut rate_limited = 0u32;
    let limited = |n: &mut u32| {
        *n = n.saturating_add(1);
        s.rate_limited.fetch_add(1, Relaxed);
    };
    let outcome = loop {
        // The gate generation this attempt starts in: a rate limit it meets is news to the
        // gate only if no attempt of this generation has reported one yet.
        let generation = match &s.gate {
            Some(gate) => gate.acquire().await,
            None => 0,
        };
        attempts = attempts.saturating_add(1);
        call.start_attempt();
        let flight = Count::up(&s.in_flight);
        s.report();
        let result = op(input.clone()).await;
        drop(flight);
        if let (Ok(_), Some(gate)) = (&result, &s.gate) {
            gate.opened_by_success(generation);
        }
        match call.settle(result, None) {
            ControlFlow::Break(Err(e)) => {
                if is_rate_limit(e.classify().kind) {
                    limited(&mut rate_limited);
                }
                break Err(e);
            }
            ControlFlow::Break(ok) => break ok,
            ControlFlow::Continue(plan) => {
                s.retries.fetch_add(1, Relaxed);
                if is_rate_limit(plan.kind) {
                    limited(&mut rate_limited);
                    if let Some(gate) = &s.gate {
                        gate.close(plan.delay, generation, plan.source == DelaySource::RetryAfter);
                    }
                }
                s.report();
                tokio::time::sleep(plan.delay).await;
            }
        }
    };
    drop(call);
    drop(active);
    if outcome.is_ok() { &s.succeeded } else { &s.failed }.fetch_add(1, Relaxed);
    s.report();
    ItemResult { index, outcome, attempts, rate_limited, elapsed: started.elapsed() }
}

/// The shared rate-limit gate: a hold, then a pace.
#[derive(Debug)]
struct Gate {
    concurrency: u32,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// No attempt starts before this.
    hold_until: Option<Instant>,
    /// While pacing: the gap between two attempt starts; zero when not pacing.
    spacing: Duration,
    /// Whether the pace is still on trial: no attempt has been rate limited since it was set,
    /// so each success halves it (a one-off 429 costs little time). Cleared by the first
    /// rate limit under the pace; from then on each success shrinks it by 1/32 only.
    trial: bool,
    /// When the last attempt started (tracked only while pacing).
    last_start: Option<Instant>,
    /// Bumped when an attempt that started after the last close is rate limited, which is
    /// news; a rate limit from an attempt of an older generation is a straggler of a herd
    /// already handled.
    generation: u64,
}

/// `t + d`, saturating at a far but representable instant.
fn later(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

impl Gate {
    fn new(concurrency: usize) -> Self {
        Gate { concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX).max(1), state: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_left(&self) -> Duration {
        self.lock().hold_until.map_or(Duration::ZERO, |h| h.saturating_duration_since(Instant::now()))
    }

    /// Waits until the gate lets one more attempt start; returns the generation it starts in.
    ///
    /// Waiters take no reservation: each wakes at the earliest instant the gate could let it
    /// through and checks again, so a hold that moves or a pace that changes applies at once
    /// to every waiter. At most `K` items wait, so the extra wake-ups are bounded.
    async fn acquire(&self) -> u64 {
        loop {
            let now = Instant::now();
            let at = {
                let mut st = self.lock();
                let mut at = st.hold_until.map_or(now, |h| h.max(now));
                if let (false, Some(last)) = (st.spacing.is_zero(), st.last_start) {
                    at = at.max(later(last, st.spacing));
                }
                if at <= now {
                    if !st.spacing.is_zero() {
                        st.last_start = Some(now);
                    }
                    return st.generation;
                }
                at
            };
            tokio::time::sleep_until(at).await;
        }
    }

    /// An attempt of `generation` was rate limited and will be retried after `delay`, which
    /// is the server's hint (plus jitter) when `hinted`, else the policy's back-off.
    ///
    /// Only a hinted rate limit paces: the hint is the server's word on when capacity comes
    /// back, so a pace never grows past it. A back-off is the client's guess and an overload
    /// is not a rate, so those only hold.
    fn close(&self, delay: Duration, generation: u64, hinted: bool) {
        let until = later(Instant::now(), delay);
        let mut st = self.lock();
        if generation == st.generation {
            st.generation = st.generation.wrapping_add(1);
            if hinted && st.spacing.is_zero() {
                st.trial = true;
                st.spacing = delay / self.concurrency;
            } else if hinted {
                st.trial = false;
                st.spacing = st.spacing.saturating_mul(2).min(delay.max(st.spacing));
            }
        }
        if st.hold_until.is_none_or(|h| until > h) {
            st.hold_until = Some(until);
        }
    }

    /// An attempt of `generation` succeeded: if it started after the last close, the pace
    /// works, so relax it (by half on trial, else by 1/32), and drop it once it is
    /// negligible. A success of an attempt that started before the close says nothing.
    fn opened_by_success(&self, generation: u64) {
        let mut st = self.lock();
        if !st.spacing.is_zero() && generation == st.generation {
            st.spacing = if st.trial { st.spacing.saturating_mul(3) / 4 } else { st.spacing.saturating_mul(31) / 32 };
            if st.spacing < MIN_SPACING {
                st.spacing = Duration::ZERO;
                st.last_start = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn gate_holds_then_paces_then_relaxes() {
        let gate = Gate::new(4);
        let t0 = Instant::now();
        assert_eq!(gate.acquire().await, 0);
        gate.close(400 * MS, 0, true);
        assert_eq!(gate.wait_left(), 400 * MS);
        // The first waiter starts when the hold ends, the next one a pace (400 ms / 4) later.
        assert_eq!(gate.acquire().await, 1);
        assert_eq!(t0.elapsed(), 400 * MS);
        gate.acquire().await;
        assert_eq!(t0.elapsed(), 500 * MS);
        // A straggler of generation 0 may extend the hold, but does not double the pace.
        gate.close(50 * MS, 0, true);
        assert_eq!(gate.lock().spacing, 100 * MS);
        // News doubles the pace, but never past the server's hint.
        gate.close(150 * MS, 1, true);
        assert_eq!(gate.lock().spacing, 150 * MS);
        gate.close(1_000 * MS, 2, true);
        assert_eq!(gate.lock().spacing, 300 * MS);
        // A rate limit without a hint holds, and leaves the pace alone.
        gate.close(2_000 * MS, 3, false);
        assert_eq!(gate.lock().spacing, 300 * MS);
        gate.opened_by_success(3);
        assert_eq!(gate.lock().spacing, 300 * MS, "an older generation's success");
        for _ in 0..300 {
            gate.opened_by_success(4);
        }
        assert_eq!(gate.lock().spacing, Duration::ZERO);
        let t1 = Instant::now();
        gate.acquire().await;
        gate.acquire().await;
        assert_eq!(t1.elapsed(), 2_000 * MS, "the hold, then no pace");
    }

    #[test]
    fn far_instants_saturate() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        let gate = Gate::new(usize::MAX);
        gate.close(Duration::MAX, 0, true);
        assert!(gate.wait_left() > Duration::from_secs(86_400));
    }
}
