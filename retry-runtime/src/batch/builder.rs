//! Configuring a [`Batch`]: the [`BatchBuilder`], its defaults, and the [`BatchError`] that
//! says why a batch cannot be built.

use super::{Batch, Progress};
#[cfg(doc)]
use crate::RetryExt;
use crate::stats::Site;
use crate::{Limiter, Policy};
use core::fmt;
use std::sync::Arc;

/// How many items a batch runs at once unless told otherwise.
pub const DEFAULT_BATCH_CONCURRENCY: usize = 16;

/// Why a batch cannot be built. Returned by [`BatchBuilder::build`]; never a panic.
///
/// ```
/// use llm_retry_runtime::{RetryExt, batch::BatchError, Policy};
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
    /// assert!(llm_retry_runtime::batch::BatchError::ZeroConcurrency.message().contains("use 1"));
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

pub(super) type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

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
    pub(super) policy: Policy,
    pub(super) concurrency: usize,
    pub(super) gate: bool,
    pub(super) limiter: Option<&'static Limiter>,
    pub(super) site: Option<&'static Site>,
    pub(super) on_progress: Option<ProgressFn>,
}

impl fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("concurrency", &self.concurrency)
            .field("shared_gate", &self.gate)
            .field("limiter", &self.limiter.map(Limiter::name))
            .field("site", &self.site.map(Site::name))
            .field("on_progress", &self.on_progress.is_some())
            .finish_non_exhaustive()
    }
}

impl BatchBuilder {
    /// A batch under `policy`, with the defaults: what [`RetryExt::batch`] returns.
    pub(crate) fn new(policy: Policy) -> Self {
        BatchBuilder {
            policy,
            concurrency: DEFAULT_BATCH_CONCURRENCY,
            gate: true,
            limiter: None,
            site: None,
            on_progress: None,
        }
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

    /// Paces the batch's attempts through the endpoint's `limiter`, shared with every other
    /// call to the endpoint (annotated fns, builder calls, other batches), so that they all
    /// pace together. Without one, each run has a limiter of its own.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Limiter, Policy};
    /// static OPENAI: Limiter = Limiter::new("docs::batch_limiter");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let batch = Policy::DEFAULT.batch().limiter(&OPENAI).build().unwrap();
    /// batch.run(0..3, |_| async { Ok::<_, ApiError>(()) }).await;
    /// assert_eq!(OPENAI.stats().throttles, 0);
    /// # }
    /// ```
    pub fn limiter(mut self, limiter: &'static Limiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Whether rate limits hold the whole batch (default: yes): its attempts go through a
    /// [`Limiter`], the one given to [`limiter`](Self::limiter) or one of the run's own. With
    /// `false`, each item handles its own 429s, as independent calls would.
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

    /// Counts every item as one call of `site` in the per-site [`stats`](crate::stats()).
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, stats::Site};
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
    /// use llm_retry_runtime::{RetryExt, batch::BatchError, Policy};
    /// assert_eq!(Policy::DEFAULT.batch().concurrency(0).build().unwrap_err(), BatchError::ZeroConcurrency);
    /// ```
    pub fn build(self) -> Result<Batch, BatchError> {
        if self.concurrency == 0 {
            return Err(BatchError::ZeroConcurrency);
        }
        Ok(Batch { config: self })
    }
}
