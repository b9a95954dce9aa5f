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

use crate::ErrorKind;
use crate::Policy;
use crate::outcome::GiveUp;
use core::fmt;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A call site: a name (the stats key), a policy, and counters.
///
/// The attribute emits one `static` per annotated fn. Users of the builder API can declare
/// their own and pass it to [`Call::site`](crate::Call::site).
///
/// ```
/// use llm_retry_runtime::{Policy, Site};
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
    /// static S: llm_retry_runtime::Site = llm_retry_runtime::Site::new("s", llm_retry_runtime::Policy::DEFAULT);
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
    /// static S: llm_retry_runtime::Site = llm_retry_runtime::Site::new("chat", llm_retry_runtime::Policy::DEFAULT);
    /// assert_eq!(S.name(), "chat");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The site's policy.
    ///
    /// ```
    /// static S: llm_retry_runtime::Site = llm_retry_runtime::Site::new("chat", llm_retry_runtime::Policy::DEFAULT);
    /// assert_eq!(S.policy().max_retry_after().as_secs(), 120);
    /// ```
    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A snapshot of this site's counters.
    ///
    /// ```
    /// static S: llm_retry_runtime::Site = llm_retry_runtime::Site::new("chat", llm_retry_runtime::Policy::DEFAULT);
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

/// Per-thread counters of first-try successes: each thread writes only its own blocks, so a
/// relaxed load and store suffice (no locked instruction); readers sum every block.
mod shards {
    use super::*;

    /// Sites beyond this many count their first-try successes in a shared atomic instead.
    const MAX_SITES: usize = 1 << 16;
    /// The first block of a thread holds this many sites.
    const FIRST_BLOCK: usize = 64;

    /// Every block of every thread. A thread that meets a site beyond its block's end takes a
    /// block twice as long and counts there from then on; the old block keeps what it
    /// counted, so a site's total is its sum over all blocks and nothing is ever copied.
    /// Blocks are leaked on purpose: counts outlive their thread, and a thread's blocks add
    /// up to at most twice its last one.
    static ALL: Mutex<Vec<&'static [AtomicU64]>> = Mutex::new(Vec::new());
    static NEXT: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        /// This thread's current block: the bump is two thread-local loads and a bounds check.
        static LOCAL: Cell<&'static [AtomicU64]> = const { Cell::new(&[]) };
    }

    pub(super) fn next_index() -> usize {
        NEXT.fetch_add(1, Relaxed)
    }

    /// Adds one to the site's counter in this thread's block; `false` if the site has no slot
    /// (not registered yet, more sites than [`MAX_SITES`], or a thread being torn down).
    #[inline]
    pub(super) fn bump(index: usize) -> bool {
        LOCAL
            .try_with(|local| {
                let Some(c) = local.get().get(index).or_else(|| grow(local, index)) else {
                    return false;
                };
                c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
                true
            })
            .unwrap_or(false)
    }

    /// Gives this thread a block long enough for `index`, and returns its counter there.
    #[cold]
    #[inline(never)]
    fn grow(local: &Cell<&'static [AtomicU64]>, index: usize) -> Option<&'static AtomicU64> {
        if index >= MAX_SITES {
            return None;
        }
        let len = (index + 1).next_power_of_two().max(FIRST_BLOCK).max(local.get().len() * 2);
        let block: &'static [AtomicU64] = Box::leak((0..len).map(|_| AtomicU64::new(0)).collect());
        ALL.lock().unwrap_or_else(|e| e.into_inner()).push(block);
        local.set(block);
        block.get(index)
    }

    /// The site's count summed over every block of every thread.
    pub(super) fn sum(index: usize) -> u64 {
        let all = ALL.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().filter_map(|block| block.get(index)).map(|c| c.load(Relaxed)).fold(0, u64::wrapping_add)
    }
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site").field("name", &self.name).field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// One site's counters at one moment.
///
/// Every call ends as exactly one of: a success, a give-up (by reason), cancelled (its future
/// was dropped), or panicked. Calls still running are in `calls` only.
///
/// ```
/// use llm_retry_runtime::SiteStats;
/// let mut s = SiteStats::default();
/// (s.calls, s.first_try_successes, s.successes, s.retries) = (10, 8, 9, 3);
/// assert_eq!(s.first_try_success_rate(), Some(0.8));
/// assert_eq!(s.average_retries(), Some(0.3));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SiteStats {
    /// Calls made. A call still in its first attempt is counted when that attempt ends.
    pub calls: u64,
    /// Calls whose first attempt succeeded.
    pub first_try_successes: u64,
    /// Calls that succeeded, after any number of attempts.
    pub successes: u64,
    /// Attempts made, the first ones included.
    pub attempts: u64,
    /// Retries (sleeps followed by another attempt).
    pub retries: u64,
    /// Total time spent sleeping between attempts.
    pub slept: Duration,
    /// Calls whose future was dropped before they finished.
    pub cancelled: u64,
    /// Calls whose body panicked.
    pub panicked: u64,
    /// Calls that gave up, indexed like [`GiveUp::ALL`].
    pub gave_up: [u64; GiveUp::ALL.len()],
    /// Retries by the kind of the failure before them, indexed like [`ErrorKind::ALL`].
    pub retries_by_kind: [u64; ErrorKind::ALL.len()],
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl SiteStats {
    /// Calls that gave up for `reason`.
    ///
    /// ```
    /// use llm_retry_runtime::{GiveUp, SiteStats};
    /// assert_eq!(SiteStats::default().gave_up(GiveUp::Deadline), 0);
    /// ```
    pub fn gave_up(&self, reason: GiveUp) -> u64 {
        self.gave_up[reason.index()]
    }

    /// Retries made after a failure of `kind`.
    ///
    /// ```
    /// use llm_retry_runtime::{ErrorKind, SiteStats};
    /// assert_eq!(SiteStats::default().retries_of(ErrorKind::RateLimited), 0);
    /// ```
    pub fn retries_of(&self, kind: ErrorKind) -> u64 {
        self.retries_by_kind[kind.index()]
    }

    /// Calls that gave up, for any reason.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::SiteStats::default().failures(), 0);
    /// ```
    pub fn failures(&self) -> u64 {
        self.gave_up.iter().sum()
    }

    /// Calls that have ended, one way or another.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::SiteStats::default().finished(), 0);
    /// ```
    pub fn finished(&self) -> u64 {
        self.successes + self.failures() + self.cancelled + self.panicked
    }

    /// First-try successes over calls; `None` before the first call.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::SiteStats::default().first_try_success_rate(), None);
    /// ```
    pub fn first_try_success_rate(&self) -> Option<f64> {
        ratio(self.first_try_successes, self.calls)
    }

    /// Retries per call; `None` before the first call.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::SiteStats::default().average_retries(), None);
    /// ```
    pub fn average_retries(&self) -> Option<f64> {
        ratio(self.retries, self.calls)
    }

    /// Give-ups over finished calls; `None` before any call finished.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::SiteStats::default().failure_rate(), None);
    /// ```
    pub fn failure_rate(&self) -> Option<f64> {
        ratio(self.failures(), self.finished())
    }
}

/// Every site that has counted a call in this process, with its counters.
///
/// ```
/// let snapshot = llm_retry_runtime::stats();
/// for (name, s) in snapshot.iter() {
///     println!("{name}: {} calls", s.calls);
/// }
/// println!("{snapshot}");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    sites: Vec<(&'static str, SiteStats)>,
}

/// Takes a snapshot of every site that has counted a call, in the order they first did.
///
/// ```
/// assert!(llm_retry_runtime::stats().get("never::called").is_none());
/// ```
pub fn stats() -> StatsSnapshot {
    let mut sites = Vec::new();
    let mut next = HEAD.get();
    while let Some(site) = next {
        sites.push((site.name, site.stats()));
        next = site.next.get();
    }
    StatsSnapshot { sites }
}

impl StatsSnapshot {
    /// The stats of the site called `name`, summed if several sites share the name.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stats().get("nope"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<SiteStats> {
        let mut found = None::<SiteStats>;
        for (n, s) in &self.sites {
            if *n == name {
                let acc = found.get_or_insert_with(SiteStats::default);
                acc.calls += s.calls;
                acc.first_try_successes += s.first_try_successes;
                acc.successes += s.successes;
                acc.attempts += s.attempts;
                acc.retries += s.retries;
                acc.slept = acc.slept.saturating_add(s.slept);
                acc.cancelled += s.cancelled;
                acc.panicked += s.panicked;
                for (a, b) in acc.gave_up.iter_mut().zip(s.gave_up) {
                    *a += b;
                }
                for (a, b) in acc.retries_by_kind.iter_mut().zip(s.retries_by_kind) {
                    *a += b;
                }
            }
        }
        found
    }

    /// Every site's name and stats.
    ///
    /// ```
    /// let n = llm_retry_runtime::stats().iter().count();
    /// # let _ = n;
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &SiteStats)> {
        self.sites.iter().map(|(n, s)| (*n, s))
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{:.1}%", v * 100.0))
}

impl fmt::Display for StatsSnapshot {
    /// A table: one row per site.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.sites.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(4);
        writeln!(
            f,
            "{:<w$}  {:>6}  {:>9}  {:>11}  {:>8}  {:>7}  give-ups",
            "site", "calls", "first-try", "avg retries", "failures", "slept"
        )?;
        for (name, s) in &self.sites {
            let reasons: Vec<String> = GiveUp::ALL
                .iter()
                .filter(|r| s.gave_up(**r) > 0)
                .map(|r| format!("{}: {}", r.name(), s.gave_up(*r)))
                .collect();
            writeln!(
                f,
                "{:<w$}  {:>6}  {:>9}  {:>11}  {:>8}  {:>6.1}s  {}",
                name,
                s.calls,
                pct(s.first_try_success_rate()),
                s.average_retries().map_or_else(|| "-".to_string(), |v| format!("{v:.2}")),
                pct(s.failure_rate()),
                s.slept.as_secs_f64(),
                if reasons.is_empty() { "-".to_string() } else { reasons.join(", ") },
            )?;
        }
        Ok(())
    }
}
