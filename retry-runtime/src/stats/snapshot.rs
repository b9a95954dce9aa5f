//! What a reader of the stats gets: one site's [`SiteStats`], and the process-wide
//! [`StatsSnapshot`] that [`stats`] takes of every site, with its table.

use super::HEAD;
use crate::ErrorKind;
use crate::outcome::GiveUp;
use core::fmt;
use std::time::Duration;

/// One site's counters at one moment.
///
/// Every call ends as exactly one of: a success, a give-up (by reason), cancelled (its future
/// was dropped), or panicked. Calls still running are in `calls` only.
///
/// ```
/// use llm_retry_runtime::stats::SiteStats;
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
    /// use llm_retry_runtime::{GiveUp, stats::SiteStats};
    /// assert_eq!(SiteStats::default().gave_up(GiveUp::Deadline), 0);
    /// ```
    pub fn gave_up(&self, reason: GiveUp) -> u64 {
        self.gave_up[reason.index()]
    }

    /// Retries made after a failure of `kind`.
    ///
    /// ```
    /// use llm_retry_runtime::{ErrorKind, stats::SiteStats};
    /// assert_eq!(SiteStats::default().retries_of(ErrorKind::RateLimited), 0);
    /// ```
    pub fn retries_of(&self, kind: ErrorKind) -> u64 {
        self.retries_by_kind[kind.index()]
    }

    /// Calls that gave up, for any reason.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stats::SiteStats::default().failures(), 0);
    /// ```
    pub fn failures(&self) -> u64 {
        self.gave_up.iter().sum()
    }

    /// Calls that have ended, one way or another.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stats::SiteStats::default().finished(), 0);
    /// ```
    pub fn finished(&self) -> u64 {
        self.successes + self.failures() + self.cancelled + self.panicked
    }

    /// First-try successes over calls; `None` before the first call.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stats::SiteStats::default().first_try_success_rate(), None);
    /// ```
    pub fn first_try_success_rate(&self) -> Option<f64> {
        ratio(self.first_try_successes, self.calls)
    }

    /// Retries per call; `None` before the first call.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stats::SiteStats::default().average_retries(), None);
    /// ```
    pub fn average_retries(&self) -> Option<f64> {
        ratio(self.retries, self.calls)
    }

    /// Give-ups over finished calls; `None` before any call finished.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stats::SiteStats::default().failure_rate(), None);
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
