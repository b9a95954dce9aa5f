//! The circuit breaker: a `static` per target, shared by every call to it, that stops
//! sending calls to a target that is down and lets one probe at a time find out when it is
//! back.
//!
//! One concern per file:
//! - `machine`: the states and every transition between them, pure (no lock, no clock), the
//!   seam a fleet-wide store would implement.
//! - `settings`: the settings, their builder and their validation.
//! - this file: the in-memory [`Breaker`] (the machine behind a mutex, and one atomic word
//!   that the success path reads), its [`Permit`]s, counters, events and metrics registry.

mod machine;
mod settings;
mod share;

pub use machine::{BreakerState, Cause};
pub use settings::{BreakerBuilder, BreakerError};

pub(crate) use machine::Verdict;

/// The defaults as a store needs them ([`BreakerRules::DEFAULT`](crate::store::BreakerRules::DEFAULT)).
pub(crate) const DEFAULT_RULES: crate::store::BreakerRules = Settings::DEFAULT.rules();
use machine::{Admit, Machine, Transition};
use settings::Settings;

use crate::events;
use crate::store::Sharing;
use core::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// The fast word's values: what a call can learn from one relaxed load.
const CLEAN: u8 = 0;
const COUNTING: u8 = 1;
const OPEN: u8 = 2;
const HALF_OPEN: u8 = 3;

/// A circuit breaker for one target (a model or an endpoint): declare it once as a `static`
/// and give it to the target ([`Target::breaker`](crate::failover::Target::breaker)).
///
/// Closed, it counts failed attempts; it opens after `consecutive_failures` in a row, when
/// `failure_rate` of a window's attempts fail, or at once for the time a 429 or 529 asks when
/// that is over the policy's `max_retry_after`. Errors that are the caller's fault (Auth,
/// BadRequest, ContextLengthExceeded, ContentFiltered, NotFound, InvalidOutput) never count.
/// Open, calls skip the target (or fail at once with
/// [`GiveUp::CircuitOpen`](crate::GiveUp::CircuitOpen)) until the cooldown ends; then exactly
/// one call at a time goes through as a probe: its success closes the breaker, its failure
/// opens it for another cooldown.
///
/// ```
/// use llm_retry_runtime::failover::{Breaker, BreakerState};
/// static GPT4O: Breaker = Breaker::new("gpt-4o");
/// assert_eq!(GPT4O.state(), BreakerState::Closed);
/// assert_eq!(GPT4O.stats().opened, 0);
/// ```
pub struct Breaker {
    name: &'static str,
    s: Settings,
    /// `CLEAN`, `COUNTING`, `OPEN` or `HALF_OPEN`: written under the lock after each change.
    word: AtomicU8,
    machine: Mutex<Machine>,
    registered: AtomicBool,
    opened: AtomicU64,
    half_opened: AtomicU64,
    closed: AtomicU64,
    refused: AtomicU64,
    probes: AtomicU64,
    /// Whether a store holds its state ([`share`](Self::share)); the store is in `share`'s
    /// registry.
    shared: AtomicBool,
}

/// A breaker's counters at one moment.
///
/// ```
/// let s = llm_retry_runtime::failover::BreakerStats::default();
/// assert_eq!(s.refused, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerStats {
    /// Times it opened (from closed, or from half-open after a failed probe).
    pub opened: u64,
    /// Times its cooldown ended and it turned half-open.
    pub half_opened: u64,
    /// Times a probe closed it.
    pub closed: u64,
    /// Calls it refused: each one moved on to the next target, or gave up.
    pub refused: u64,
    /// Probes it let through.
    pub probes: u64,
    /// Where its state lives: this process ([`Sharing::Local`]), the store it
    /// [`share`](Breaker::share)s, or this process because that store cannot answer.
    pub mode: Sharing,
}

impl Breaker {
    /// A breaker named `name` (the events' and metrics' label) with the defaults: open after
    /// 5 failed attempts in a row, or when half of a 60 s window's attempts fail once it holds
    /// 20; stay open 30 s; honour a server's cooldown up to 15 minutes.
    ///
    /// ```
    /// static B: llm_retry_runtime::failover::Breaker = llm_retry_runtime::failover::Breaker::new("claude");
    /// assert_eq!(B.name(), "claude");
    /// ```
    pub const fn new(name: &'static str) -> Breaker {
        Breaker::with(name, Settings::DEFAULT)
    }

    /// A builder starting from the defaults of [`Breaker::new`].
    ///
    /// ```
    /// assert!(llm_retry_runtime::failover::Breaker::builder("x").consecutive_failures(0).build().is_err());
    /// ```
    pub const fn builder(name: &'static str) -> BreakerBuilder {
        BreakerBuilder { name, s: Settings::DEFAULT }
    }

    pub(crate) const fn with(name: &'static str, s: Settings) -> Breaker {
        Breaker {
            name,
            s,
            word: AtomicU8::new(CLEAN),
            machine: Mutex::new(Machine::new()),
            registered: AtomicBool::new(false),
            opened: AtomicU64::new(0),
            half_opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            shared: AtomicBool::new(false),
        }
    }

    /// The breaker's name.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::Breaker::new("gpt-4o").name(), "gpt-4o");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// How long it stays open before a probe.
    ///
    /// ```
    /// let b = llm_retry_runtime::failover::Breaker::new("x");
    /// assert_eq!(b.cooldown(), std::time::Duration::from_secs(30));
    /// ```
    pub const fn cooldown(&self) -> Duration {
        self.s.cooldown
    }

    /// Where it is now. An open breaker whose cooldown is over still says `Open` until a
    /// call asks to go through.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, BreakerState};
    /// assert_eq!(Breaker::new("x").state(), BreakerState::Closed);
    /// ```
    pub fn state(&self) -> BreakerState {
        self.lock().state()
    }

    /// Until when it stays open, if it is open.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::Breaker::new("x").open_until(), None);
    /// ```
    pub fn open_until(&self) -> Option<Instant> {
        self.lock().open_until()
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::Breaker::new("x").stats().probes, 0);
    /// ```
    pub fn stats(&self) -> BreakerStats {
        BreakerStats {
            opened: self.opened.load(Relaxed),
            half_opened: self.half_opened.load(Relaxed),
            closed: self.closed.load(Relaxed),
            refused: self.refused.load(Relaxed),
            probes: self.probes.load(Relaxed),
            mode: self.mode(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // The machine's transitions cannot panic; a poisoned lock still holds a whole state.
        self.machine.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// May a call go to this target now? Closed, this is one relaxed load.
    #[inline]
    pub(crate) fn admit(&'static self) -> Result<Permit, Refused> {
        let w = self.word.load(Relaxed);
        if w <= COUNTING {
            return Ok(Permit { breaker: Some(self), clean: w == CLEAN, probe: false });
        }
        self.admit_slow()
    }

    #[cold]
    fn admit_slow(&'static self) -> Result<Permit, Refused> {
        let mut m = self.lock();
        let (admit, t) = m.admit(Instant::now());
        self.changed(&m, t);
        drop(m);
        match admit {
            Admit::Yes => Ok(Permit { breaker: Some(self), clean: false, probe: false }),
            Admit::Probe if self.may_probe() => {
                self.probes.fetch_add(1, Relaxed);
                Ok(Permit { breaker: Some(self), clean: false, probe: true })
            }
            Admit::Probe => {
                // Shared: the fleet's one probe is not this process's (yet). The probe the
                // local machine handed out goes back; the call is refused as a half-open
                // breaker with its probe in flight refuses.
                let mut m = self.lock();
                m.release();
                self.changed(&m, None);
                drop(m);
                self.refused.fetch_add(1, Relaxed);
                Err(Refused { breaker: self.name, until: None })
            }
            Admit::No(until) => {
                self.refused.fetch_add(1, Relaxed);
                Err(Refused { breaker: self.name, until })
            }
        }
    }

    /// Whether it refuses calls now (one relaxed load).
    pub(crate) fn is_open_now(&self) -> bool {
        self.word.load(Relaxed) == OPEN
    }

    fn record(&'static self, verdict: Verdict, probe: bool) {
        if !self.record_shared(verdict, probe) {
            self.record_here(verdict, probe);
        }
    }

    /// An outcome counted by this process's machine (not shared, or the store failed).
    fn record_here(&'static self, verdict: Verdict, probe: bool) {
        let mut m = self.lock();
        let t = m.record(&self.s, Instant::now(), verdict, probe);
        self.changed(&m, t);
    }

    /// A 429 or 529 asked for `wait`, over the policy's cap: open for that long (here at
    /// once, and in the fleet's store when shared).
    pub(crate) fn trip(&'static self, wait: Duration) {
        let mut m = self.lock();
        let t = m.trip(&self.s, Instant::now(), wait);
        self.changed(&m, t);
        drop(m);
        self.trip_shared(wait);
    }

    fn release(&'static self) {
        let mut m = self.lock();
        m.release();
        self.changed(&m, None);
        drop(m);
        self.release_shared();
    }

    /// Called under the lock after each change: the fast word, the counters, the event.
    fn changed(&'static self, m: &Machine, t: Option<Transition>) {
        let word = match m.state() {
            // Shared, never clean: every outcome goes to the store.
            BreakerState::Closed if m.is_clean() && !self.is_shared() => CLEAN,
            BreakerState::Closed => COUNTING,
            BreakerState::Open => OPEN,
            BreakerState::HalfOpen => HALF_OPEN,
        };
        self.word.store(word, Relaxed);
        let Some(t) = t else { return };
        match t.to {
            BreakerState::Open => &self.opened,
            BreakerState::HalfOpen => &self.half_opened,
            BreakerState::Closed => &self.closed,
        }
        .fetch_add(1, Relaxed);
        let open_for = m.open_until().map(|u| u.saturating_duration_since(Instant::now()));
        events::breaker_moved(self.name, t.from, t.to, t.cause, open_for);
        self.register();
    }

    /// Listed for the metrics export, once.
    fn register(&'static self) {
        if !self.registered.swap(true, Relaxed) {
            registry().push(self);
        }
    }
}

fn registry() -> MutexGuard<'static, Vec<&'static Breaker>> {
    static MOVED: Mutex<Vec<&'static Breaker>> = Mutex::new(Vec::new());
    MOVED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Every breaker that has moved at least once (for the metrics export).
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn moved_breakers() -> Vec<&'static Breaker> {
    registry().clone()
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("consecutive_failures", &self.s.consecutive_failures)
            .field("failure_rate", &self.s.failure_rate)
            .field("min_calls", &self.s.min_calls)
            .field("window", &self.s.window)
            .field("cooldown", &self.s.cooldown)
            .field("max_cooldown", &self.s.max_cooldown)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A breaker's leave for one attempt; an attempt of a target without a breaker holds an
/// empty one. Dropped unsettled (the call was cancelled), a probe is released for the next
/// call.
#[derive(Debug)]
pub(crate) struct Permit {
    breaker: Option<&'static Breaker>,
    /// The breaker had nothing to count when the call was admitted: a success skips it.
    clean: bool,
    probe: bool,
}

impl Permit {
    /// The permit of a target without a breaker.
    pub(crate) const NONE: Permit = Permit { breaker: None, clean: true, probe: false };

    /// Reports the attempt's outcome. A success (or a caller's error) on a breaker that had
    /// nothing to count touches nothing.
    #[inline]
    pub(crate) fn settle(mut self, verdict: Verdict) {
        let Some(b) = self.breaker else { return };
        if self.clean && !self.probe && verdict != Verdict::Failure {
            return;
        }
        let probe = core::mem::replace(&mut self.probe, false);
        b.record(verdict, probe);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe
            && let Some(b) = self.breaker
        {
            b.release();
        }
    }
}

/// A breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) breaker: &'static str,
    /// Open until then; `None` while half-open with its probe in flight.
    pub(crate) until: Option<Instant>,
}
