//! Per-site stats (the article's `RetryMonitor`): counters per call site, relaxed atomics only,
//! and a process-wide snapshot of every site that has counted a call.
//!
//! A site registers itself when it first counts something (a call's first attempt ends, or
//! a call is dropped), into an intrusive, append-only list made of `OnceLock`s, so
//! registering allocates nothing and takes no lock, and starting a call touches no counter.
//!
//! The success path touches one counter: first-try successes, kept per thread. Each thread
//! owns a shard of counters that only it writes (a relaxed load and store, no locked
//! instruction, so no lost update); a snapshot sums the shards. Calls, attempts and successes
//! are derived: first-try successes plus what the slow path (any call that fails once, is
//! cancelled or panics) counts in shared atomics.
//!
//! This file holds the [`Site`] and what it counts; `shards` the per-thread counters of
//! first-try successes; `snapshot` what a reader gets: [`SiteStats`], [`StatsSnapshot`] and
//! [`stats`].

mod shards;
mod snapshot;

pub use snapshot::{SiteStats, StatsSnapshot, stats};

use crate::ErrorKind;
use crate::Policy;
use crate::outcome::GiveUp;
use core::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// A call site: a name (the stats key), a policy, and counters.
///
/// The attribute emits one `static` per annotated fn. Users of the builder API can declare
/// their own and pass it to [`Call::site`](crate::call::Call::site).
///
/// ```
/// use llm_retry_runtime::{Policy, stats::Site};
///
/// static SUMMARIZE: Site = Site::new("app::summarize", Policy::DEFAULT);
/// assert_eq!(SUMMARIZE.name(), "app::summarize");
/// assert_eq!(SUMMARIZE.stats().calls, 0);
/// ```
pub struct Site {
    name: &'static str,
    policy: Policy,
    registered: AtomicBool,
    /// The site's slot in every thread's shard; `usize::MAX` until it registers.
    index: AtomicUsize,
    next: OnceLock<&'static Site>,
    c: Counters,
    /// The `site` and `kind` labels of the delay histogram, one pair per kind.
    #[cfg(feature = "metrics")]
    labels: OnceLock<Box<[[metrics::Label; 2]; ErrorKind::ALL.len()]>>,
}

struct Counters {
    /// Calls that left the fast path: failed once, or were dropped or panicked in their first
    /// attempt. Calls = first-try successes + these.
    slow_calls: AtomicU64,
    /// First-try successes of sites beyond the shards' capacity.
    first_try: AtomicU64,
    /// Successes after a retry.
    later_successes: AtomicU64,
    /// Attempts made by slow calls.
    slow_attempts: AtomicU64,
    retries: AtomicU64,
    slept_ns: AtomicU64,
    cancelled: AtomicU64,
    panicked: AtomicU64,
    gave_up: [AtomicU64; GiveUp::ALL.len()],
    retries_by_kind: [AtomicU64; ErrorKind::ALL.len()],
}

static HEAD: OnceLock<&'static Site> = OnceLock::new();

impl Site {
    /// A site named `name` that retries under `policy`.
    ///
    /// ```
    /// static S: llm_retry_runtime::stats::Site = llm_retry_runtime::stats::Site::new("s", llm_retry_runtime::Policy::DEFAULT);
    /// assert_eq!(S.policy().max_attempts(), 4);
    /// ```
    pub const fn new(name: &'static str, policy: Policy) -> Site {
        Site {
            name,
            policy,
            registered: AtomicBool::new(false),
            index: AtomicUsize::new(usize::MAX),
            next: OnceLock::new(),
            c: Counters {
                slow_calls: AtomicU64::new(0),
                first_try: AtomicU64::new(0),
                later_successes: AtomicU64::new(0),
                slow_attempts: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                slept_ns: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                panicked: AtomicU64::new(0),
                gave_up: [const { AtomicU64::new(0) }; GiveUp::ALL.len()],
                retries_by_kind: [const { AtomicU64::new(0) }; ErrorKind::ALL.len()],
            },
            #[cfg(feature = "metrics")]
            labels: OnceLock::new(),
        }
    }

    /// The site's name.
    ///
    /// ```
    /// static S: llm_retry_runtime::stats::Site = llm_retry_runtime::stats::Site::new("chat", llm_retry_runtime::Policy::DEFAULT);
    /// assert_eq!(S.name(), "chat");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The site's policy.
    ///
    /// ```
    /// static S: llm_retry_runtime::stats::Site = llm_retry_runtime::stats::Site::new("chat", llm_retry_runtime::Policy::DEFAULT);
    /// assert_eq!(S.policy().max_retry_after().as_secs(), 120);
    /// ```
    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A snapshot of this site's counters.
    ///
    /// ```
    /// static S: llm_retry_runtime::stats::Site = llm_retry_runtime::stats::Site::new("chat", llm_retry_runtime::Policy::DEFAULT);
    /// assert_eq!(S.stats().first_try_success_rate(), None);
    /// ```
    pub fn stats(&self) -> SiteStats {
        let c = &self.c;
        let first_try = c.first_try.load(Relaxed).saturating_add(shards::sum(self.index.load(Relaxed)));
        SiteStats {
            calls: first_try.saturating_add(c.slow_calls.load(Relaxed)),
            first_try_successes: first_try,
            successes: first_try.saturating_add(c.later_successes.load(Relaxed)),
            attempts: first_try.saturating_add(c.slow_attempts.load(Relaxed)),
            retries: c.retries.load(Relaxed),
            slept: Duration::from_nanos(c.slept_ns.load(Relaxed)),
            cancelled: c.cancelled.load(Relaxed),
            panicked: c.panicked.load(Relaxed),
            gave_up: GiveUp::ALL.map(|r| c.gave_up[r.index()].load(Relaxed)),
            retries_by_kind: ErrorKind::ALL.map(|k| c.retries_by_kind[k.index()].load(Relaxed)),
        }
    }

    /// Registers the site, the first time it counts anything.
    #[inline]
    fn register_once(&'static self) {
        if !self.registered.load(Relaxed) && !self.registered.swap(true, Relaxed) {
            self.index.store(shards::next_index(), Relaxed);
            self.register();
        }
    }

    #[cold]
    fn register(&'static self) {
        let mut slot = &HEAD;
        loop {
            match slot.set(self) {
                Ok(()) => return,
                Err(_) => match slot.get() {
                    Some(site) => slot = &site.next,
                    None => continue,
                },
            }
        }
    }

    /// A call left the fast path: its first attempt failed, or it was dropped or panicked
    /// during it (`attempted`: that attempt had started).
    pub(crate) fn on_slow_call(&'static self, attempted: bool) {
        self.register_once();
        self.c.slow_calls.fetch_add(1, Relaxed);
        if attempted {
            self.c.slow_attempts.fetch_add(1, Relaxed);
        }
    }

    /// A slow call starts another attempt.
    pub(crate) fn on_slow_attempt(&self) {
        self.c.slow_attempts.fetch_add(1, Relaxed);
    }

    /// A call succeeded; `attempt` is its number, from 1. Not inlined: a first-try success
    /// on the fast path calls [`on_first_try_success`](Self::on_first_try_success) instead,
    /// and this stays out of the code of every annotated fn.
    #[inline(never)]
    pub(crate) fn on_success(&'static self, attempt: u32) {
        if attempt <= 1 {
            self.on_first_try_success();
        } else {
            self.c.later_successes.fetch_add(1, Relaxed);
        }
    }

    /// A call succeeded on its first attempt: the one count on the success path.
    #[inline]
    pub(crate) fn on_first_try_success(&'static self) {
        if !shards::bump(self.index.load(Relaxed)) {
            self.first_try_success_elsewhere();
        }
    }

    /// A first-try success the thread's block could not count: the site was not registered
    /// yet, or it has no slot (more sites than the blocks hold, or a thread being torn down).
    #[cold]
    #[inline(never)]
    fn first_try_success_elsewhere(&'static self) {
        self.register_once();
        if !shards::bump(self.index.load(Relaxed)) {
            self.c.first_try.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn on_retry(&self, delay: Duration) {
        self.c.retries.fetch_add(1, Relaxed);
        let ns = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        let _ = self.c.slept_ns.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_add(ns)));
    }

    /// The labels of the delay histogram for `kind`; allocated once per site.
    #[cfg(feature = "metrics")]
    pub(crate) fn delay_labels(&'static self, kind: ErrorKind) -> &'static [metrics::Label] {
        let labels = self.labels.get_or_init(|| {
            Box::new(ErrorKind::ALL.map(|k| {
                [
                    metrics::Label::from_static_parts("site", self.name),
                    metrics::Label::from_static_parts("kind", k.name()),
                ]
            }))
        });
        &labels[kind.index()]
    }

    /// Counts a retry by the kind of failure that caused it.
    pub(crate) fn on_retry_kind(&self, kind: ErrorKind) {
        self.c.retries_by_kind[kind.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn on_give_up(&self, reason: GiveUp) {
        self.c.gave_up[reason.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn on_abandoned(&self, panicking: bool) {
        if panicking { &self.c.panicked } else { &self.c.cancelled }.fetch_add(1, Relaxed);
    }
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site").field("name", &self.name).field("stats", &self.stats()).finish_non_exhaustive()
    }
}
