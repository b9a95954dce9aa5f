//! A limiter whose state a fleet shares through a [`Store`] ([`Limiter::share`]): each
//! attempt asks the store once and sleeps once; what responses say goes to the store; and
//! when the store cannot answer, the limiter paces locally at the shared rate divided by the
//! fleet's size, and tries the store again every half second.
//!
//! The mode is `SHARED` while the store answers. On a failure the limiter moves to local
//! pacing (`COLD` or `GATING`, its in-memory modes) with its state set from the last shared
//! rate, and marks the store due for a retry; the first admission after that asks the store
//! again. Each move is logged once.

use super::bulkhead::Taking;
use super::{COLD, GATING, Limiter, RateSource, SHARED, lock};
use crate::store::{Admission, Ask, Report, Sharing, Store, StoreError, Tuning};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// How long after a store failure the limiter asks the store again.
const RETRY: Duration = Duration::from_millis(500);
/// The longest an in-flight lease lives if its worker never gives it back (it died).
const LEASE: Duration = Duration::from_secs(120);
/// How much longer than its attempt's deadline a lease lives.
const LEASE_SLACK: Duration = Duration::from_secs(5);

/// What a limiter knows of its store, shared with the tasks that send its reports.
pub(super) struct Share {
    pub(super) store: Arc<dyn Store>,
    pub(super) link: Arc<Mutex<Link>>,
    /// The in-flight leases this process holds (any one of them is given back when one of
    /// its attempts ends: they are alike).
    leases: Mutex<Vec<u64>>,
}

/// The store's last word, and whether it can be asked now.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    pub(super) mode: Sharing,
    /// While falling back: when to ask the store again.
    retry_at: Option<Instant>,
    /// A report sent from a task failed: the next admission falls back.
    failed: bool,
    /// The shared request rate last seen, and the fleet's size.
    pub(super) rate: Option<f64>,
    pub(super) fleet: u32,
    /// Times the limiter fell back to local pacing.
    pub(super) fallbacks: u64,
    /// When this process last met a throttle.
    throttled_at: Option<Instant>,
    /// Attempts of this process sleeping on a slot the store granted.
    sleeping: u32,
}

/// An attempt sleeping on its slot, counted while it sleeps (a cancelled sleep included).
struct Sleeper<'a>(&'a Mutex<Link>);

impl<'a> Sleeper<'a> {
    fn new(link: &'a Mutex<Link>) -> Sleeper<'a> {
        let mut l = lock(link);
        l.sleeping = l.sleeping.saturating_add(1);
        Sleeper(link)
    }
}

impl Drop for Sleeper<'_> {
    fn drop(&mut self) {
        let mut l = lock(self.0);
        l.sleeping = l.sleeping.saturating_sub(1);
    }
}

/// This process's id in every fleet it joins: random, drawn once.
fn worker() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| rand::Rng::next_u64(&mut rand::make_rng::<rand::rngs::SmallRng>()))
}

impl Limiter {
    /// Shares this endpoint's pacing with every process that shares it through the same
    /// store: one Retry-After pauses the fleet, and the request and token buckets (configured,
    /// from the provider's headers, or learned from throttles) are the fleet's. Call it once
    /// at startup; the annotated fns and builder calls that name this limiter change nothing.
    /// Returns the store back if the limiter already shares one.
    ///
    /// When the store cannot answer (down, slow, paused), each process paces alone at the
    /// shared rate divided by the fleet's size, logs the move once, and asks the store again
    /// every half second; [`stats`](Self::stats)`().mode` says which it is doing.
    ///
    /// ```
    /// use llm_retry_runtime::store::{Admission, Ask, BreakerAnswer, BreakerOp, Sharing, Report, Store, StoreError, StoreFuture};
    /// use llm_retry_runtime::Limiter;
    /// use std::time::Duration;
    ///
    /// /// A store that admits at once and knows a rate of 5 requests a second.
    /// struct Fixed;
    /// impl Store for Fixed {
    ///     fn admit<'a>(&'a self, _: &'a Ask<'a>) -> StoreFuture<'a, Admission> {
    ///         Box::pin(async { Ok(Admission::Go { wait: Duration::ZERO, lease: None, rate: Some(5.0), fleet: 2 }) })
    ///     }
    ///     fn report<'a>(&'a self, _: &'a str, _: Report) -> StoreFuture<'a, ()> {
    ///         Box::pin(async { Ok(()) })
    ///     }
    ///     fn breaker<'a>(&'a self, _: BreakerOp<'a>) -> StoreFuture<'a, BreakerAnswer> {
    ///         Box::pin(async { Err(StoreError::Unavailable("no breakers here".into())) })
    ///     }
    ///     fn kind(&self) -> &'static str {
    ///         "fixed"
    ///     }
    /// }
    ///
    /// static OPENAI: Limiter = Limiter::new("docs::share");
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// assert!(OPENAI.share(Fixed).is_ok());
    /// OPENAI.acquire().await;
    /// let s = OPENAI.stats();
    /// assert_eq!((s.mode, s.rate, s.fleet), (Sharing::Shared, Some(5.0), Some(2)));
    /// # }
    /// ```
    pub fn share<S: Store>(&'static self, store: S) -> Result<(), S> {
        let mut store = Some(store);
        let share = self.share.get_or_init(|| {
            let s: Arc<dyn Store> = Arc::new(store.take().expect("taken once, here"));
            Share {
                store: s,
                leases: Mutex::new(Vec::new()),
                link: Arc::new(Mutex::new(Link {
                    mode: Sharing::Shared,
                    retry_at: None,
                    failed: false,
                    rate: None,
                    fleet: 1,
                    fallbacks: 0,
                    throttled_at: None,
                    sleeping: 0,
                })),
            }
        });
        if let Some(back) = store {
            return Err(back);
        }
        tracing::info!(endpoint = self.name, store = share.store.kind(), "the pacer shares its state");
        self.mode.store(SHARED, Relaxed);
        // Its mode is worth exporting from the start.
        self.register();
        Ok(())
    }

    /// The limiter's settings, as a store needs them.
    pub(super) fn tuning(&self) -> Tuning {
        let c = &self.config;
        let mut t = Tuning::DEFAULT;
        t.initial_rate = 4.0 * f64::from(c.initial_window.max(1));
        t.beta = c.beta;
        t.scale = c.scale;
        t.min_rate = c.min_rate;
        t.max_rate = c.max_rate;
        t.requests_per_second = c.configured_rate();
        t.tokens_per_second = c.token_rate();
        t.max_pause = c.max_pause;
        t
    }

    /// Where this limiter paces now, the shared rate and the fleet's size last seen.
    pub(super) fn share_view(&self) -> Option<Link> {
        self.share.get().map(|s| *lock(&s.link))
    }

    /// Sends what a response said to the store, from a task of its own (the report is not
    /// the caller's to wait for). Without a tokio runtime to run it on, the report is dropped:
    /// the next admission's answer still holds the fleet's state.
    pub(super) fn report(&self, report: Report) {
        self.reports([Some(report), None]);
    }

    /// [`report`](Self::report) for two reports in order, from one task.
    pub(super) fn reports(&self, reports: [Option<Report>; 2]) {
        let Some(share) = self.share.get() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let store = Arc::clone(&share.store);
        let link = Arc::clone(&share.link);
        let name = self.name;
        rt.spawn(async move {
            for report in reports.into_iter().flatten() {
                if let Err(e) = store.report(name, report).await {
                    let mut l = lock(&link);
                    if l.mode == Sharing::Shared && !l.failed {
                        l.failed = true;
                        tracing::debug!(endpoint = name, error = %e, "a report to the store failed");
                    }
                    return;
                }
            }
        });
    }

    /// A throttle met while shared: this process's attempts sleeping on slots reserved
    /// before it will ask again when they wake (see `admit_shared`), so their slots go back
    /// to the store first, then the throttle.
    pub(super) fn shared_throttle(&self, retry_after: Option<Duration>) {
        let Some(share) = self.share.get() else { return };
        let tuning = self.tuning();
        let (slots, fleet) = {
            let mut l = lock(&share.link);
            l.throttled_at = Some(Instant::now());
            (l.sleeping, l.fleet)
        };
        // Only a fleet of one holds every slot of the schedule, so only then can the slots go
        // back exactly: in a larger fleet the schedule would take back slots of other workers,
        // which still go, and the fleet would overshoot (measured at P = 4 on a loaded machine:
        // 1.35 calls per prompt). There the abandoned slots stay unused (a few per throttle).
        let abandon = (slots > 0 && fleet <= 1).then_some(Report::Abandon { slots, tuning });
        self.reports([abandon, Some(Report::Throttle { retry_after, tuning })]);
    }

    /// The shared admission: one question to the store, one sleep. Falls back to the local
    /// queue when the store fails, or while it is due for a retry.
    pub(super) async fn admit_shared(&self, tokens: f64, max_wait: Option<Duration>) {
        let Some(share) = self.share.get() else { return };
        let cap = self.config.max_in_flight;
        let mut tuning = self.tuning();
        let mut lease = None;
        if cap > 0 {
            tuning.max_in_flight = Some(cap);
            // A lease outlives its attempt (bounded by the deadline when there is one), and
            // expires if this worker dies with it.
            lease = Some(max_wait.map_or(LEASE, |w| w.saturating_add(LEASE_SLACK)).min(LEASE));
        }
        let ask = Ask { endpoint: self.name, worker: worker(), tokens, max_wait, lease, tuning };
        loop {
            let asked = Instant::now();
            let answer = if lock(&share.link).failed {
                Err(StoreError::Unavailable("a report failed".into()))
            } else {
                share.store.admit(&ask).await
            };
            match answer {
                Ok(Admission::Go { wait, rate, fleet, lease }) => {
                    self.heard_store(share, rate, fleet);
                    // Held from here: given back if this wait is cancelled.
                    let place = lease.map(|id| {
                        lock(&share.leases).push(id);
                        Taking::counted(self)
                    });
                    if !wait.is_zero() {
                        self.waits.fetch_add(1, Relaxed);
                        let sleeper = Sleeper::new(&share.link);
                        tokio::time::sleep(wait).await;
                        drop(sleeper);
                        if self.throttled_since(share, asked) {
                            // A throttle this process met while this attempt slept: its slot
                            // was reserved at the rate before the cut (and maybe into the
                            // fleet's pause), and would add to the overshoot. The one case an
                            // attempt asks again (its lease goes back first).
                            drop(place);
                            continue;
                        }
                    }
                    if let Some(p) = place {
                        p.hand_over();
                    }
                    return;
                }
                // The deadline would pass first: the attempt waits on and the deadline, armed
                // before this wait, cuts it. Nothing was reserved.
                Ok(Admission::Refused { wait }) => {
                    self.waits.fetch_add(1, Relaxed);
                    tokio::time::sleep(wait).await;
                    return;
                }
                Ok(Admission::Busy { retry_in, fleet }) => {
                    self.heard_store(share, None, fleet);
                    tokio::time::sleep(retry_in).await;
                }
                Err(e) => {
                    self.fall_back(share, &e);
                    self.local_wait(tokens).await;
                    return;
                }
            }
        }
    }

    /// Whether this process met a throttle since `asked`.
    fn throttled_since(&self, share: &Share, asked: Instant) -> bool {
        lock(&share.link).throttled_at.is_some_and(|at| at >= asked)
    }

    /// The store answered: note its rate and the fleet, and share again if this limiter had
    /// fallen back.
    fn heard_store(&self, share: &Share, rate: Option<f64>, fleet: u32) {
        let mut l = lock(&share.link);
        if rate.is_some() {
            l.rate = rate;
        }
        l.fleet = fleet.max(1);
        l.failed = false;
        if l.mode != Sharing::Shared {
            l.mode = Sharing::Shared;
            l.retry_at = None;
            drop(l);
            self.mode.store(SHARED, Relaxed);
            tracing::info!(
                endpoint = self.name,
                store = share.store.kind(),
                "the store answers again: the pacer shares its state"
            );
        }
    }

    /// The store failed: pace locally at the shared rate ÷ the fleet's size (or from a slow
    /// start, when no rate was known), and ask the store again in [`RETRY`].
    fn fall_back(&self, share: &Share, error: &StoreError) {
        let mut l = lock(&share.link);
        let now = Instant::now();
        l.retry_at = Some(now + RETRY);
        l.failed = false;
        if l.mode == Sharing::Fallback {
            return;
        }
        l.mode = Sharing::Fallback;
        l.fallbacks += 1;
        let (rate, fleet) = (l.rate, l.fleet.max(1));
        drop(l);
        tracing::warn!(
            endpoint = self.name,
            store = share.store.kind(),
            %error,
            fleet,
            "the store cannot answer: the pacer paces alone at the shared rate / the fleet's size"
        );
        let mut s = lock(&self.state);
        let t = s.secs(now);
        s.refill(t);
        match rate {
            Some(r) => {
                let r = r / f64::from(fleet);
                s.w_max = r;
                s.cut_rate = r;
                s.last_cut = t;
                s.probing = false;
                s.source = RateSource::Learned;
                self.set_rate(&mut s, t, r);
                s.drain();
                drop(s);
                self.mode.store(GATING, Relaxed);
            }
            None => {
                s.window = f64::from(self.config.initial_window.max(1));
                s.capacity = s.window;
                s.served = s.live() + s.window;
                drop(s);
                self.mode.store(COLD, Relaxed);
            }
        }
        self.moved.notify_waiters();
    }

    /// An attempt holding a place ended: one of this process's leases goes back to the store,
    /// if it holds any.
    pub(super) fn release_lease(&self) {
        let Some(share) = self.share.get() else { return };
        let Some(lease) = lock(&share.leases).pop() else { return };
        self.report(Report::Release { lease });
    }

    /// While falling back: whether this admission should ask the store again (one does, the
    /// others pace locally meanwhile).
    pub(super) fn store_due(&self) -> bool {
        let Some(share) = self.share.get() else { return false };
        let mut l = lock(&share.link);
        match l.retry_at {
            Some(at) if l.mode == Sharing::Fallback && Instant::now() >= at => {
                l.retry_at = Some(Instant::now() + RETRY);
                true
            }
            _ => false,
        }
    }
}
