//! A breaker whose state a fleet shares through a [`Store`] ([`Breaker::share`]).
//!
//! The in-process machine stays the breaker every call reads, so admitting a call to a closed
//! target is still one relaxed load. What changes:
//! - every attempt's outcome goes to the store (from a task of its own), whose fleet-wide
//!   counts open the breaker; its answer is mirrored here;
//! - when the cooldown is over, a call may probe only once the store has granted this
//!   process the fleet's one probe: the first call to find the cooldown over asks for it and
//!   is refused meanwhile, and the next call goes as the probe;
//! - a trip (a long Retry-After) opens it here at once, and in the store.
//!
//! When the store cannot answer, the breaker decides alone (logged once), as an unshared one
//! does, until the store answers again.

use super::machine::{Transition, Verdict};
use super::{Breaker, BreakerState};
use crate::store::{BreakerAnswer, BreakerOp, BreakerRules, Outcome, SharedBreakerState, Sharing, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::time::Instant;

/// Every shared breaker's store, by the breaker's address (breakers are `static`), each
/// leaked once: a breaker shares for the life of the process.
fn fleets() -> MutexGuard<'static, Vec<(usize, &'static Fleet)>> {
    static FLEETS: Mutex<Vec<(usize, &'static Fleet)>> = Mutex::new(Vec::new());
    FLEETS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a breaker knows of its store.
pub(super) struct Fleet {
    store: Arc<dyn Store>,
    /// The store granted this process the fleet's probe: the next call goes as it.
    granted: AtomicBool,
    /// A request for the probe is on its way.
    claiming: AtomicBool,
    /// The store failed last time: the breaker decides alone until it answers.
    alone: AtomicBool,
}

impl Breaker {
    /// Shares this breaker's state with every process that shares it through the same store
    /// (the same name): the fleet's failures open it for all, and when the cooldown is over
    /// exactly one call in the whole fleet probes the target. Call it once at startup; the
    /// targets and chains that name this breaker change nothing. Returns the store back if
    /// the breaker already shares one.
    ///
    /// Shared, every attempt's outcome is reported to the store from a task of its own (a
    /// closed breaker's success included, so that the fleet's failure rate counts the whole
    /// fleet); admitting a call to a closed target is still one relaxed load. When the store
    /// cannot answer, the breaker decides alone, and logs it once.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, BreakerState, Fallback, Route, Target};
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt};
    /// use llm_retry_runtime::store::{
    ///     Admission, Ask, BreakerAnswer, BreakerOp, Report, SharedBreakerState, Store, StoreError, StoreFuture,
    /// };
    /// use std::time::Duration;
    ///
    /// /// A store whose fleet has this breaker open for a minute.
    /// struct Open;
    /// impl Store for Open {
    ///     fn admit<'a>(&'a self, _: &'a Ask<'a>) -> StoreFuture<'a, Admission> {
    ///         Box::pin(async { Err(StoreError::Unavailable("breakers only".into())) })
    ///     }
    ///     fn report<'a>(&'a self, _: &'a str, _: Report) -> StoreFuture<'a, ()> {
    ///         Box::pin(async { Ok(()) })
    ///     }
    ///     fn breaker<'a>(&'a self, _: BreakerOp<'a>) -> StoreFuture<'a, BreakerAnswer> {
    ///         let open = SharedBreakerState::Open;
    ///         let for_ = Some(Duration::from_secs(60));
    ///         Box::pin(async move { Ok(BreakerAnswer { state: open, admit: false, probe: false, open_for: for_, changed: false }) })
    ///     }
    ///     fn kind(&self) -> &'static str {
    ///         "open"
    ///     }
    /// }
    ///
    /// static GPT4O: Breaker = Breaker::new("docs::share");
    /// static MODEL: Target = Target::new("gpt-4o").breaker(&GPT4O);
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// assert!(GPT4O.share(Open).is_ok());
    /// // One attempt that succeeds here: its outcome goes to the store, whose answer (the
    /// // fleet has it open) is mirrored.
    /// let targets = [&MODEL];
    /// let mut call = Policy::DEFAULT.call::<u8, ApiError>();
    /// let mut route = Route::new(Fallback::new(&targets).unwrap());
    /// let _target = call.next_target(&mut route).unwrap();
    /// let _ = call.settle_target(&mut route, Ok(1));
    /// tokio::task::yield_now().await;
    /// assert_eq!(GPT4O.state(), BreakerState::Open);
    /// # }
    /// ```
    pub fn share<S: Store>(&'static self, store: S) -> Result<(), S> {
        let mut fleets = fleets();
        if self.shared.load(Relaxed) {
            return Err(store);
        }
        let fleet: &'static Fleet = Box::leak(Box::new(Fleet {
            store: Arc::new(store),
            granted: AtomicBool::new(false),
            claiming: AtomicBool::new(false),
            alone: AtomicBool::new(false),
        }));
        fleets.push((core::ptr::from_ref(self) as usize, fleet));
        self.shared.store(true, Relaxed);
        drop(fleets);
        tracing::info!(breaker = self.name, store = fleet.store.kind(), "the breaker shares its state");
        // A shared breaker is never "clean": every outcome goes to the store.
        let m = self.lock();
        self.changed(&m, None);
        drop(m);
        // Its mode is worth exporting from the start.
        self.register();
        Ok(())
    }

    /// This breaker's store, once shared. (Kept in a registry, not in the breaker: a field
    /// with a destructor would stop `static B: Breaker = match Breaker::builder(..).build()
    /// { .. }` from compiling.)
    fn fleet(&self) -> Option<&'static Fleet> {
        if !self.shared.load(Relaxed) {
            return None;
        }
        let me = core::ptr::from_ref(self) as usize;
        fleets().iter().find(|(b, _)| *b == me).map(|(_, f)| *f)
    }

    /// Where the breaker's state lives now.
    pub(super) fn mode(&self) -> Sharing {
        match self.fleet() {
            None => Sharing::Local,
            Some(f) if f.alone.load(Relaxed) => Sharing::Fallback,
            Some(_) => Sharing::Shared,
        }
    }

    /// Whether a store holds this breaker's state.
    pub(super) fn is_shared(&self) -> bool {
        self.shared.load(Relaxed)
    }

    fn rules(&self) -> BreakerRules {
        self.s.rules()
    }

    /// The local machine says the cooldown is over and this call may probe. Shared, it may only
    /// if the store granted this process the fleet's probe; otherwise it asks for it and the
    /// call is refused. `true`: the call probes.
    pub(super) fn may_probe(&'static self) -> bool {
        let Some(fleet) = self.fleet() else { return true };
        if fleet.alone.load(Relaxed) || fleet.granted.swap(false, Relaxed) {
            return true;
        }
        if !fleet.claiming.swap(true, Relaxed) {
            let sent = self.spawn(BreakerOp::Admit { breaker: self.name, rules: self.rules() }, |b, answer| {
                let fleet = b.fleet().expect("shared");
                fleet.claiming.store(false, Relaxed);
                match answer {
                    Some(a) => {
                        if a.admit && a.probe {
                            fleet.granted.store(true, Relaxed);
                        }
                        b.mirror(a);
                    }
                    // Alone: this process probes by itself, as an unshared breaker does.
                    None => fleet.granted.store(true, Relaxed),
                }
            });
            if !sent {
                fleet.claiming.store(false, Relaxed);
                return true;
            }
        }
        false
    }

    /// An attempt's outcome, shared: the store counts it and its answer is mirrored; alone
    /// (the store failed), the local machine counts it. `false` when not shared.
    pub(super) fn record_shared(&'static self, verdict: Verdict, probe: bool) -> bool {
        if self.fleet().is_none() {
            return false;
        }
        let outcome = match verdict {
            Verdict::Success => Outcome::Success,
            Verdict::Failure => Outcome::Failure,
            Verdict::Neutral => Outcome::Neutral,
        };
        let op = BreakerOp::Record { breaker: self.name, rules: self.rules(), outcome, probe };
        self.spawn(op, move |b, answer| match answer {
            Some(a) => b.mirror(a),
            None => b.record_here(verdict, probe),
        })
    }

    /// A long Retry-After: the store opens the fleet's breaker too.
    pub(super) fn trip_shared(&'static self, wait: std::time::Duration) {
        if self.fleet().is_some() {
            let op = BreakerOp::Trip { breaker: self.name, rules: self.rules(), wait };
            self.spawn(op, |b, answer| {
                if let Some(a) = answer {
                    b.mirror(a);
                }
            });
        }
    }

    /// A probe dropped unsettled: another worker may probe.
    pub(super) fn release_shared(&'static self) {
        if self.fleet().is_some() {
            self.spawn(BreakerOp::Release { breaker: self.name }, |_, _| {});
        }
    }

    /// The fleet's state over this process's.
    fn mirror(&'static self, a: BreakerAnswer) {
        let to = match a.state {
            SharedBreakerState::Closed => BreakerState::Closed,
            SharedBreakerState::Open => BreakerState::Open,
            SharedBreakerState::HalfOpen => BreakerState::HalfOpen,
        };
        let until = a.open_for.and_then(|d| Instant::now().checked_add(d));
        let mut m = self.lock();
        let t: Option<Transition> = m.mirror(to, until);
        self.changed(&m, t);
    }

    /// Sends one step to the store from a task of its own, then runs `then` with the answer
    /// (`None`: the store failed, and the breaker decides alone until it answers again).
    /// `false` when there is no tokio runtime to run it on.
    fn spawn(
        &'static self,
        op: BreakerOp<'static>,
        then: impl FnOnce(&'static Breaker, Option<BreakerAnswer>) + Send + 'static,
    ) -> bool {
        let Some(fleet) = self.fleet() else { return false };
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return false };
        let store = Arc::clone(&fleet.store);
        rt.spawn(async move {
            let answer = store.breaker(op).await;
            then(self, self.heard(answer));
        });
        true
    }

    /// Notes whether the store answered, logging each move between shared and alone once.
    fn heard(&self, answer: Result<BreakerAnswer, StoreError>) -> Option<BreakerAnswer> {
        let fleet = self.fleet()?;
        match answer {
            Ok(a) => {
                if fleet.alone.swap(false, Relaxed) {
                    tracing::info!(breaker = self.name, "the store answers again: the breaker shares its state");
                }
                Some(a)
            }
            Err(error) => {
                if !fleet.alone.swap(true, Relaxed) {
                    tracing::warn!(breaker = self.name, %error, "the store cannot answer: the breaker decides alone");
                }
                None
            }
        }
    }
}
