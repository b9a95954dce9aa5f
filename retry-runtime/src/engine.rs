//! The per-call state machine shared by the attribute and the builder API.
//!
//! One [`Call`] lives for one call of a retried fn, and each attempt makes one call into it:
//! - [`Call::conclude`] when the caller runs the body itself (nothing wraps it: no deadline,
//!   attempt timeout, limiter or notify hook). It classifies the result and decides, and hands
//!   back either the result or a [`Pause`] to await before the next attempt.
//! - [`Call::attempt`] otherwise: its future runs the body under the timeouts and after the
//!   limiter's wait, decides, notifies, and sleeps.
//!
//! The caller's loop only returns on `Break`. When the first attempt succeeds, nothing is
//! allocated, no random number is drawn, and the clock is read only if a deadline, an attempt
//! timeout or a notify hook is configured.

use crate::ErrorKind;
use crate::adaptive::Adaptive;
use crate::budget::Budget;
use crate::classify::{Classification, Classify};
use crate::events;
use crate::hooks::{DelaySource, HookSet, Hooks, Notifier, Predicate, RetryEvent, SharedSlot, Validator};
use crate::limiter::Limiter;
use crate::outcome::GiveUp;
use crate::rng::with_rng;
use crate::stats::Site;
use crate::timeout::Timeout;
use crate::validate::InvalidOutput;
use crate::{MAX_RULES, Policy};
use core::future::Future;
use core::marker::PhantomData;
use core::num::NonZeroU32;
use core::ops::ControlFlow;
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use pin_project_lite::pin_project;
use rand::RngExt;
use std::time::Duration;
use tokio::time::Instant;
use tokio::time::Sleep;

/// Calls without a deadline or attempt timeout: the error type needs no `From<Timeout>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Untimed;

/// Calls with a deadline and/or an attempt timeout: the error type needs `From<Timeout>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timed {
    deadline: Option<Duration>,
    attempt_timeout: Option<Duration>,
}

/// How an attempt's future is run: as is, or under a timeout armed when the attempt starts.
#[diagnostic::on_unimplemented(
    message = "a call with a deadline or attempt timeout needs `{E}: From<llm_retry::Timeout>`",
    label = "the timed-out attempt has to become a `{E}`",
    note = "implement `From<llm_retry::Timeout> for {E}`, or drop `deadline`/`attempt_timeout`"
)]
pub trait Mode<E> {
    /// An attempt's future under this mode: the body's output, and `Some(timeout)` when the
    /// attempt was cut short.
    type Run<T, F: Future<Output = Result<T, E>>>: Future<Output = (Result<T, E>, Option<Timeout>)>;
    /// The total deadline, if any.
    fn deadline(&self) -> Option<Duration>;
    /// Whether the call needs to read the clock when it starts.
    fn timed(&self) -> bool;
    /// Wraps the body's future; no timer is armed until [`arm`](Self::arm).
    fn run<T, F: Future<Output = Result<T, E>>>(fut: F) -> Self::Run<T, F>;
    /// Arms the timer of an attempt that starts now (a no-op once armed, and when untimed).
    fn arm<T, F: Future<Output = Result<T, E>>>(&self, run: Pin<&mut Self::Run<T, F>>, started: Option<Instant>);
    /// Polls the timer alone, without the body (while the attempt waits for the limiter):
    /// ready with the timed-out outcome once it fires; never ready when untimed.
    fn expired<T, F: Future<Output = Result<T, E>>>(
        run: Pin<&mut Self::Run<T, F>>,
        cx: &mut Context<'_>,
    ) -> Poll<(Result<T, E>, Option<Timeout>)>;
}

pin_project! {
    /// An untimed attempt: the body's future, as is.
    #[doc(hidden)]
    pub struct Plain<F> {
        #[pin]
        fut: F,
    }
}

impl<T, E, F: Future<Output = Result<T, E>>> Future for Plain<F> {
    type Output = (Result<T, E>, Option<Timeout>);
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().fut.poll(cx).map(|out| (out, None))
    }
}

impl<E> Mode<E> for Untimed {
    type Run<T, F: Future<Output = Result<T, E>>> = Plain<F>;
    fn deadline(&self) -> Option<Duration> {
        None
    }
    fn timed(&self) -> bool {
        false
    }
    fn run<T, F: Future<Output = Result<T, E>>>(fut: F) -> Plain<F> {
        Plain { fut }
    }
    fn arm<T, F: Future<Output = Result<T, E>>>(&self, _: Pin<&mut Plain<F>>, _: Option<Instant>) {}
    fn expired<T, F: Future<Output = Result<T, E>>>(
        _: Pin<&mut Plain<F>>,
        _: &mut Context<'_>,
    ) -> Poll<(Result<T, E>, Option<Timeout>)> {
        Poll::Pending
    }
}

pin_project! {
    /// A timed attempt: the body's future and its timer, armed when the attempt starts.
    #[doc(hidden)]
    pub struct Bounded<T, E, F> {
        #[pin]
        fut: F,
        #[pin]
        timer: Option<Sleep>,
        cause: Timeout,
        _out: PhantomData<fn() -> (T, E)>,
    }
}

impl<T, E: From<Timeout>, F: Future<Output = Result<T, E>>> Future for Bounded<T, E, F> {
    type Output = (Result<T, E>, Option<Timeout>);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready((out, None));
        }
        match this.timer.as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| (Err(E::from(*this.cause)), Some(*this.cause))),
            None => Poll::Pending,
        }
    }
}

impl<E: From<Timeout>> Mode<E> for Timed {
    type Run<T, F: Future<Output = Result<T, E>>> = Bounded<T, E, F>;
    fn deadline(&self) -> Option<Duration> {
        self.deadline
    }
    fn timed(&self) -> bool {
        true
    }
    fn run<T, F: Future<Output = Result<T, E>>>(fut: F) -> Bounded<T, E, F> {
        Bounded { fut, timer: None, cause: Timeout::attempt(Duration::ZERO), _out: PhantomData }
    }
    fn arm<T, F: Future<Output = Result<T, E>>>(&self, run: Pin<&mut Bounded<T, E, F>>, started: Option<Instant>) {
        let mut this = run.project();
        if this.timer.is_some() {
            return;
        }
        let remaining = match (self.deadline, started) {
            (Some(d), Some(s)) => Some(d.saturating_sub(s.elapsed())),
            _ => None,
        };
        let (limit, cause) = match (self.attempt_timeout, remaining) {
            (Some(a), Some(r)) if r < a => (r, Timeout::deadline(self.deadline.unwrap_or(r))),
            (Some(a), _) => (a, Timeout::attempt(a)),
            (None, Some(r)) => (r, Timeout::deadline(self.deadline.unwrap_or(r))),
            (None, None) => return,
        };
        *this.cause = cause;
        this.timer.set(Some(tokio::time::sleep(limit)));
    }
    fn expired<T, F: Future<Output = Result<T, E>>>(
        run: Pin<&mut Bounded<T, E, F>>,
        cx: &mut Context<'_>,
    ) -> Poll<(Result<T, E>, Option<Timeout>)> {
        let this = run.project();
        match this.timer.as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| (Err(E::from(*this.cause)), Some(*this.cause))),
            None => Poll::Pending,
        }
    }
}

/// A [`Call`] with its hook and control slots `V, N, W, B, L, A` (see [`Hooks`]).
type CallWith<'p, T, E, V, N, W, B, L, A, M> = Call<'p, T, E, Hooks<V, N, W, B, L, A>, M>;

/// One call of a retried operation: the attempt counter, the per-kind counts, the previous
/// delay, and the hooks. The attribute builds one per call; builder users get one from
/// [`Policy::call`].
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, Policy};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let policy = Policy::DEFAULT;
/// let mut n = 0;
/// let out: Result<u32, ApiError> = policy
///     .call()
///     .deadline(Duration::from_secs(30))
///     .notify(|ev: &llm_retry_runtime::RetryEvent<'_, ApiError>| println!("retry in {:?}", ev.delay))
///     .retry(|| { n += 1; let k = n; async move { if k < 3 { Err(ApiError::from_status(502)) } else { Ok(k) } } })
///     .await;
/// assert_eq!(out.unwrap(), 3);
/// # }
/// ```
pub struct Call<'p, T, E, H = Hooks<(), (), ()>, M = Untimed> {
    policy: &'p Policy,
    guard: Guard,
    /// Written by the first attempt that does not end the call: a call that succeeds at once
    /// stores only this `None`.
    tally: Option<Tally>,
    started: Option<Instant>,
    hooks: H,
    mode: M,
    _out: PhantomData<fn() -> (T, E)>,
}

/// What a retrying call remembers between its attempts.
#[derive(Debug, Clone, Copy)]
struct Tally {
    /// The attempts that have ended: never 0, which leaves `Option<Tally>` no larger.
    attempt: NonZeroU32,
    /// The attempts that ended under each of the policy's rules.
    /// `u16` holds every limit a rule accepts ([`MAX_RULE_ATTEMPTS`](crate::MAX_RULE_ATTEMPTS)), and keeps `Tally` at
    /// 24 bytes, the same as `u8` would.
    counts: [u16; MAX_RULES],
    /// The previous delay in nanoseconds (saturating): 8 bytes where a `Duration` takes 16,
    /// which pays for one of the three per-endpoint references below.
    previous: u64,
}

impl Tally {
    /// The tally after a first attempt.
    const FIRST: Tally = Tally { attempt: NonZeroU32::MIN, counts: [0; MAX_RULES], previous: 0 };
}

/// Where a call is, for the stats: the success path touches one per-thread counter, so a call
/// is counted in the shared counters only once it leaves that path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Its first attempt has not started: it queues for the limiter.
    Fresh,
    /// In its first attempt (from the call's creation, unless a limiter holds it `Fresh`).
    First,
    /// Failed at least once: counted as a slow call.
    Slow,
    /// Finished and counted.
    Done,
}

/// Counts a call that is dropped unfinished (cancelled, or unwound by a panic).
struct Guard {
    site: Option<&'static Site>,
    phase: Phase,
}

impl Guard {
    /// The call failed: from now on it is counted in the shared counters.
    fn leave_fast_path(&mut self) {
        match (self.site, self.phase) {
            // No body ran: the first attempt timed out while it queued for the limiter.
            (Some(site), Phase::Fresh) => site.on_slow_call(false),
            (Some(site), Phase::First) => site.on_slow_call(true),
            _ => {}
        }
        self.phase = Phase::Slow;
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if self.phase != Phase::Done {
            self.abandon();
        }
    }
}

impl Guard {
    /// The call is dropped unfinished: cancelled, or unwound by a panic.
    #[cold]
    #[inline(never)]
    fn abandon(&mut self) {
        let Some(site) = self.site else { return };
        match self.phase {
            Phase::Done => return,
            Phase::Fresh => site.on_slow_call(false),
            Phase::First => site.on_slow_call(true),
            Phase::Slow => {}
        }
        site.on_abandoned(std::thread::panicking());
    }
}

impl<T, E> Call<'static, T, E> {
    /// A call at `site`, under the site's policy. Touches no counter and reads no clock: the
    /// call is counted when its first attempt ends, or when it is dropped (its first attempt
    /// is taken to start with it, unless a [`limiter`](Call::limiter) queues it).
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, Call, Policy, Site};
    /// static SITE: Site = Site::new("docs::new", Policy::DEFAULT);
    /// let call: Call<'_, (), ApiError> = Call::new(&SITE);
    /// # drop(call);
    /// assert_eq!(SITE.stats().calls, 1);
    /// ```
    pub fn new(site: &'static Site) -> Self {
        Call::with_policy(site.policy(), Some(site))
    }
}

impl<'p, T, E> Call<'p, T, E> {
    /// A call under `policy`, counted at `site` if there is one.
    pub(crate) fn with_policy(policy: &'p Policy, site: Option<&'static Site>) -> Self {
        Call {
            policy,
            // The first attempt starts with the call; a limiter moves it back to `Fresh`,
            // since that attempt may queue before its body runs.
            guard: Guard { site, phase: Phase::First },
            tally: None,
            started: None,
            hooks: Hooks { validate: (), notify: (), when: (), budget: (), limiter: (), adaptive: () },
            mode: Untimed,
            _out: PhantomData,
        }
    }
}

impl<'p, T, E, H, M> Call<'p, T, E, H, M> {
    /// Counts an attempt whose body starts now.
    fn count_attempt(&mut self) {
        match (self.guard.phase, self.guard.site) {
            (Phase::Fresh, _) => self.guard.phase = Phase::First,
            (Phase::Slow, Some(site)) => site.on_slow_attempt(),
            _ => {}
        }
    }

    /// The attempts that have ended.
    fn attempts(&self) -> u32 {
        self.tally.map_or(0, |t| t.attempt.get())
    }

    /// The same call with its hooks and mode mapped by `f`.
    fn map<H2, M2>(self, f: impl FnOnce(H, M) -> (H2, M2)) -> Call<'p, T, E, H2, M2> {
        let (hooks, mode) = f(self.hooks, self.mode);
        Call {
            policy: self.policy,
            guard: self.guard,
            tally: self.tally,
            started: self.started,
            hooks,
            mode,
            _out: PhantomData,
        }
    }
}

impl<'p, T, E, V, N, W, B, L, A, M> Call<'p, T, E, Hooks<V, N, W, B, L, A>, M> {
    /// Spends retries from `budget`, shared by every call to one endpoint: when it is empty
    /// the call gives up at once with [`GiveUp::BudgetExhausted`]. Successes refill it.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Budget, Policy};
    /// static OPENAI_BUDGET: Budget = Budget::new();
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>().budget(&OPENAI_BUDGET);
    /// # drop(call);
    /// ```
    pub fn budget<S: SharedSlot<Budget>>(self, budget: S) -> CallWith<'p, T, E, V, N, W, S, L, A, M> {
        self.map(|h, m| {
            (
                Hooks {
                    validate: h.validate,
                    notify: h.notify,
                    when: h.when,
                    budget,
                    limiter: h.limiter,
                    adaptive: h.adaptive,
                },
                m,
            )
        })
    }

    /// Sends every attempt through `limiter`, shared by every call to one endpoint: after the
    /// endpoint throttles, each attempt waits for a token; throttles are reported to it.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Limiter, Policy};
    /// static OPENAI: Limiter = Limiter::new("openai");
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>().limiter(&OPENAI);
    /// # drop(call);
    /// ```
    pub fn limiter<S: SharedSlot<Limiter>>(self, limiter: S) -> CallWith<'p, T, E, V, N, W, B, S, A, M> {
        let mut call = self.map(|h, m| {
            (
                Hooks {
                    validate: h.validate,
                    notify: h.notify,
                    when: h.when,
                    budget: h.budget,
                    limiter,
                    adaptive: h.adaptive,
                },
                m,
            )
        });
        if S::PRESENT && call.guard.phase == Phase::First && call.tally.is_none() {
            call.guard.phase = Phase::Fresh;
        }
        call
    }

    /// Scales the back-off delay by `adaptive`'s recent error rate (Retry-After hints are
    /// kept as the server gave them), and records this call's outcomes in it.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Adaptive, Policy};
    /// static OPENAI_ERRORS: Adaptive = Adaptive::new();
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>().adaptive(&OPENAI_ERRORS);
    /// # drop(call);
    /// ```
    pub fn adaptive<S: SharedSlot<Adaptive>>(self, adaptive: S) -> CallWith<'p, T, E, V, N, W, B, L, S, M> {
        self.map(|h, m| {
            (
                Hooks {
                    validate: h.validate,
                    notify: h.notify,
                    when: h.when,
                    budget: h.budget,
                    limiter: h.limiter,
                    adaptive,
                },
                m,
            )
        })
    }

    /// Counts this call in `site`'s stats, under `site`'s name (the policy stays this call's).
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Policy, Site};
    /// static SITE: Site = Site::new("docs::site", Policy::DEFAULT);
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>().site(&SITE);
    /// # drop(call);
    /// assert_eq!(SITE.stats().calls, 1);
    /// ```
    pub fn site(mut self, site: &'static Site) -> Self {
        self.guard.site = Some(site);
        self
    }

    /// Calls `f` before each sleep with a [`RetryEvent`].
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, Policy, RetryEvent};
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>()
    ///     .notify(|ev: &RetryEvent<'_, std::io::Error>| eprintln!("{} in {:?}", ev.kind, ev.delay));
    /// # drop(call);
    /// ```
    pub fn notify<F: Fn(&RetryEvent<'_, E>)>(self, f: F) -> CallWith<'p, T, E, V, Notifier<F>, W, B, L, A, M> {
        self.map(|h, m| {
            let Hooks { validate, when, budget, limiter, adaptive, .. } = h;
            (Hooks { validate, notify: Notifier(f), when, budget, limiter, adaptive }, m)
        })
    }

    /// Rejects unusable successful values: a rejected value is retried as
    /// [`ErrorKind::InvalidOutput`], and after the last attempt the caller gets the
    /// [`InvalidOutput`] converted into its error type.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, InvalidOutput, Policy};
    /// let call = Policy::DEFAULT.call::<String, std::io::Error>().validate(|s: &String| {
    ///     if s.is_empty() { Err(InvalidOutput::new("empty")) } else { Ok(()) }
    /// });
    /// # drop(call);
    /// ```
    pub fn validate<F: Fn(&T) -> Result<(), InvalidOutput>>(
        self,
        f: F,
    ) -> CallWith<'p, T, E, Validator<F>, N, W, B, L, A, M> {
        self.map(|h, m| {
            let Hooks { notify, when, budget, limiter, adaptive, .. } = h;
            (Hooks { validate: Validator(f), notify, when, budget, limiter, adaptive }, m)
        })
    }

    /// Decides retryability with `f` instead of the policy's `retry_on` set. Limits, the
    /// deadline and Retry-After still apply.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// use llm_retry_runtime::Policy;
    /// let call = Policy::DEFAULT.call::<(), std::io::Error>()
    ///     .when(|e: &std::io::Error| e.kind() == std::io::ErrorKind::Interrupted);
    /// # drop(call);
    /// ```
    pub fn when<F: Fn(&E) -> bool>(self, f: F) -> CallWith<'p, T, E, V, N, Predicate<F>, B, L, A, M> {
        self.map(|h, m| {
            let Hooks { validate, notify, budget, limiter, adaptive, .. } = h;
            (Hooks { validate, notify, when: Predicate(f), budget, limiter, adaptive }, m)
        })
    }
}

impl<'p, T, E, H, M: Into<Timed>> Call<'p, T, E, H, M> {
    fn timed(self, f: impl FnOnce(&mut Timed)) -> Call<'p, T, E, H, Timed> {
        self.map(|h, m| {
            let mut mode: Timed = m.into();
            f(&mut mode);
            (h, mode)
        })
    }

    /// A total deadline: time in attempts and sleeps counts. No sleep crosses it, and an
    /// attempt still running when it passes is cut short. Needs `E: From<Timeout>`.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>()
    ///     .deadline(std::time::Duration::from_secs(120));
    /// # drop(call);
    /// ```
    pub fn deadline(self, total: Duration) -> Call<'p, T, E, H, Timed> {
        self.timed(|m| m.deadline = Some(total))
    }

    /// A per-attempt timeout: a slower attempt is cancelled and counted as a
    /// [`Timeout`](ErrorKind::Timeout). Needs `E: From<Timeout>`.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>()
    ///     .attempt_timeout(std::time::Duration::from_secs(30));
    /// # drop(call);
    /// ```
    pub fn attempt_timeout(self, each: Duration) -> Call<'p, T, E, H, Timed> {
        self.timed(|m| m.attempt_timeout = Some(each))
    }
}

impl From<Untimed> for Timed {
    fn from(_: Untimed) -> Timed {
        Timed::default()
    }
}

/// The decision to retry: what failed, and how long to wait before the next attempt.
///
/// Returned by [`Call::settle`] for loops that sleep themselves, such as a stream that reports
/// the retry to its consumer before waiting.
///
/// ```
/// use core::ops::ControlFlow;
/// use llm_retry_runtime::{RetryExt, ApiError, ErrorKind, Policy};
/// let mut call = Policy::DEFAULT.call::<(), ApiError>();
/// call.start_attempt();
/// match call.settle(Err(ApiError::from_status(503)), None) {
///     ControlFlow::Continue(plan) => {
///         assert_eq!((plan.attempt, plan.kind, plan.status), (1, ErrorKind::Server, Some(503)));
///     }
///     ControlFlow::Break(_) => unreachable!("a 503 is retried"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPlan {
    /// The attempt that failed, from 1.
    pub attempt: u32,
    /// What it failed with.
    pub kind: ErrorKind,
    /// Its HTTP status, if any.
    pub status: Option<u16>,
    /// How long to wait before the next attempt.
    pub delay: Duration,
    /// Where the delay came from.
    pub source: DelaySource,
}

type Next<T, E> = ControlFlow<Result<T, E>, RetryPlan>;

/// Whether an attempt's request went out: `No` for an attempt cut short while it queued for
/// the limiter, whose body never ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Yes,
    No,
}

impl<'p, T, E, H, M> Call<'p, T, E, H, M>
where
    E: Classify,
    H: HookSet<T, E>,
    M: Mode<E>,
{
    /// Runs one attempt, then decides: `Break(result)` to return it, `Continue` after sleeping
    /// to run the next attempt. This is the one runtime call per attempt that the attribute's
    /// expansion makes.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let policy = Policy::DEFAULT;
    /// let mut call = policy.call::<u8, ApiError>();
    /// let out = loop {
    ///     if let ControlFlow::Break(r) = call.attempt(async { Ok(7) }).await {
    ///         break r;
    ///     }
    /// };
    /// assert_eq!(out.unwrap(), 7);
    /// # }
    /// ```
    #[inline(always)]
    pub fn attempt<F: Future<Output = Result<T, E>>>(&mut self, fut: F) -> Attempt<'_, 'p, T, E, H, M, F> {
        self.start_clock();
        // The limiter's wait is boxed (16 bytes here); it exists only while the limiter throttles.
        // The attempt is counted when its body can start, not while it queues.
        let wait = self.hooks.limiter().and_then(Limiter::wait);
        if wait.is_none() {
            self.count_attempt();
        }
        Attempt { call: self, step: Step::Running { wait, run: M::run(fut) } }
    }

    /// Waits for the [`limiter`](Self::limiter)'s token, if the call has one (for loops that
    /// run attempts themselves: call it after [`start_attempt`](Self::start_attempt)).
    /// Returns at once after one relaxed load while the endpoint has never throttled.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>();
    /// call.wait_for_limiter().await;
    /// # }
    /// ```
    pub async fn wait_for_limiter(&self) {
        if let Some(wait) = self.hooks.limiter().and_then(Limiter::wait) {
            wait.await;
        }
    }

    /// Marks the start of an attempt (for loops that run attempts themselves; see
    /// [`settle`](Self::settle)). Reads the clock on the first attempt only if a deadline,
    /// timeout or notify hook needs it.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let mut call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>();
    /// call.start_attempt();
    /// ```
    pub fn start_attempt(&mut self) {
        self.start_clock();
        self.count_attempt();
    }

    /// Reads the clock on the first attempt, if a deadline, timeout or notify hook needs it.
    fn start_clock(&mut self) {
        if self.started.is_none() && (self.mode.timed() || H::NOTIFIES) {
            self.started = Some(Instant::now());
        }
    }

    /// The time left before the deadline, if there is one (for loops that bound their own
    /// waits, such as a stream's reads).
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// let call = llm_retry_runtime::Policy::DEFAULT.call::<(), std::io::Error>();
    /// assert_eq!(call.remaining(), None);
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        let deadline = self.mode.deadline()?;
        Some(deadline.saturating_sub(self.started.map_or(Duration::ZERO, |s| s.elapsed())))
    }

    /// Settles an attempt's outcome without sleeping: `Break(result)` to return it, or
    /// `Continue(plan)` to wait `plan.delay` and try again. `timed_out` says the attempt was
    /// cut short by a timeout (the error is then treated as a Timeout; a deadline gives up).
    /// Stats, events and hooks are handled here, exactly as in [`attempt`](Self::attempt).
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// let mut call = Policy::DEFAULT.call::<u8, ApiError>();
    /// call.start_attempt();
    /// assert!(matches!(call.settle(Ok(1), None), ControlFlow::Break(Ok(1))));
    /// ```
    #[inline]
    pub fn settle(&mut self, result: Result<T, E>, timed_out: Option<Timeout>) -> ControlFlow<Result<T, E>, RetryPlan> {
        self.settle_sent(result, timed_out, Sent::Yes)
    }

    /// [`settle`](Self::settle), saying whether the attempt's request went out.
    #[inline(always)]
    fn settle_sent(&mut self, result: Result<T, E>, timed_out: Option<Timeout>, sent: Sent) -> Next<T, E> {
        match result {
            // The fast path: an unvalidated success returns as it is; only counters move.
            Ok(value) if !H::VALIDATES => {
                self.succeeded_unvalidated();
                ControlFlow::Break(Ok(value))
            }
            other => self.decide(other, timed_out, sent),
        }
    }

    /// Runs `op` until it succeeds or the policy gives up.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let out: Result<(), ApiError> = Policy::DEFAULT.call().retry(|| async { Err(ApiError::from_status(401)) }).await;
    /// assert_eq!(out.unwrap_err().status(), Some(401));
    /// # }
    /// ```
    pub async fn retry<F, Fut>(mut self, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        loop {
            if let ControlFlow::Break(r) = self.attempt(op()).await {
                return r;
            }
        }
    }

    fn site_name(&self) -> &'static str {
        self.guard.site.map_or("anonymous", Site::name)
    }

    fn finish(&mut self, out: Result<T, E>, class: Option<(&Classification, GiveUp)>) -> Next<T, E> {
        if class.is_some() {
            self.guard.leave_fast_path();
        }
        self.guard.phase = Phase::Done;
        match class {
            None => self.succeeded(),
            Some((c, reason)) => {
                if let Some(site) = self.guard.site {
                    site.on_give_up(reason);
                }
                events::gave_up(self.site_name(), self.attempts(), c.kind, c.status, reason);
            }
        }
        ControlFlow::Break(out)
    }

    /// The bookkeeping of a success that needs no validation. The call ends here, so the
    /// attempt number is left as it is: only a first attempt has `Phase::First`.
    #[inline]
    fn succeeded_unvalidated(&mut self) {
        if let Some(site) = self.guard.site {
            if self.guard.phase == Phase::First {
                site.on_first_try_success();
            } else {
                site.on_success(self.attempts().saturating_add(1));
            }
        }
        self.close_success();
    }

    /// The end of an unvalidated success, once it is counted: the endpoint's controls hear of
    /// it, and the call is done.
    #[inline]
    fn close_success(&mut self) {
        self.controls_on_success();
        // Last, after the counters' stores: the compiler then sees `Done` when the guard is
        // dropped right after, and the drop's check folds away.
        self.guard.phase = Phase::Done;
    }

    /// The bookkeeping of a success: the attempt's number, the stats and the endpoint's
    /// controls. Kept apart from the result, so the fast path never moves it.
    #[inline]
    fn succeeded(&mut self) {
        if let Some(site) = self.guard.site {
            site.on_success(self.attempts());
        }
        self.controls_on_success();
    }

    /// Tells the endpoint's controls that a call succeeded.
    #[inline]
    fn controls_on_success(&self) {
        if let Some(budget) = self.hooks.budget() {
            budget.deposit();
        }
        if let Some(limiter) = self.hooks.limiter() {
            limiter.record(false);
        }
        if let Some(adaptive) = self.hooks.adaptive() {
            adaptive.record_success();
        }
    }

    /// Classifies a finished attempt and decides. `sent` says whether its request went out:
    /// an attempt cut short while it queued for the limiter tells the endpoint's controls
    /// nothing, since the server never saw it.
    #[inline(never)]
    fn decide(&mut self, result: Result<T, E>, timed_out: Option<Timeout>, sent: Sent) -> Next<T, E> {
        let attempt = match &mut self.tally {
            Some(t) => {
                t.attempt = t.attempt.saturating_add(1);
                t.attempt
            }
            None => self.tally.insert(Tally::FIRST).attempt,
        }
        .get();
        let policy = self.policy;
        let (error, class, validated) = match result {
            Ok(value) => match self.hooks.validate(&value) {
                None => return self.finish(Ok(value), None),
                Some(e) => (e, Classification::new(ErrorKind::InvalidOutput), true),
            },
            Err(e) => match timed_out {
                Some(t) if t.is_deadline() => {
                    let c = Classification::new(ErrorKind::Timeout);
                    return self.finish(Err(e), Some((&c, GiveUp::Deadline)));
                }
                Some(_) => (e, Classification::new(ErrorKind::Timeout), false),
                None => {
                    let c = e.classify();
                    (e, c, false)
                }
            },
        };
        let sent = sent == Sent::Yes;
        if let Some(limiter) = self.hooks.limiter().filter(|_| sent) {
            limiter.record(matches!(class.kind, ErrorKind::RateLimited | ErrorKind::Overloaded));
        }

        let retryable = validated
            || self.hooks.when(&error).unwrap_or_else(|| {
                class.should_retry.unwrap_or_else(|| policy.retry_on().matches(class.kind, class.status))
            });
        if !retryable {
            return self.finish(Err(error), Some((&class, GiveUp::NonRetryable)));
        }
        if let Some(adaptive) = self.hooks.adaptive().filter(|_| sent) {
            adaptive.record_error();
        }

        let rule = policy.rule_for(class.kind, class.status);
        // The tally was written at the top; `get_or_insert` only reaches it.
        let tally = self.tally.get_or_insert(Tally::FIRST);
        let mut n = attempt;
        if let Some((i, r)) = rule {
            tally.counts[i] = tally.counts[i].saturating_add(1);
            n = u32::from(tally.counts[i]);
            if r.attempt_limit().is_some_and(|max| n >= max) {
                return self.finish(Err(error), Some((&class, GiveUp::Exhausted)));
            }
        }
        if attempt >= policy.max_attempts() {
            return self.finish(Err(error), Some((&class, GiveUp::Exhausted)));
        }

        let hint = if policy.respects_retry_after() {
            class.retry_after.and_then(|h| h.resolve((policy.wall_clock())()))
        } else {
            None
        };
        let elapsed = self.started.map_or(Duration::ZERO, |s| s.elapsed());
        // The time left before the deadline, if there is one.
        let left = self.mode.deadline().map(|d| d.saturating_sub(elapsed));
        let (delay, source) = match hint {
            Some(h) if h > policy.max_retry_after() => {
                return self.finish(Err(error), Some((&class, GiveUp::RetryAfterTooLong)));
            }
            // The server's hint decides, not the jitter drawn on top of it: a hint that lands
            // inside the deadline is waited for, its jitter clamped to the time left.
            Some(h) => match left {
                Some(left) if h > left => {
                    return self.finish(Err(error), Some((&class, GiveUp::Deadline)));
                }
                _ => {
                    let room = left.map_or(Duration::MAX, |l| l.saturating_sub(h));
                    (h.saturating_add(with_rng(|rng| hint_jitter(h, rng)).min(room)), DelaySource::RetryAfter)
                }
            },
            None => {
                let (backoff, jitter) = policy.backoff_for(rule.map(|(_, r)| r));
                let d = with_rng(|rng| {
                    crate::backoff::jittered(&jitter, &backoff, n, Duration::from_nanos(tally.previous), rng)
                });
                let d = self.hooks.adaptive().map_or(d, |a| a.scale(d));
                if left.is_some_and(|l| d >= l) {
                    return self.finish(Err(error), Some((&class, GiveUp::Deadline)));
                }
                (d, DelaySource::Backoff)
            }
        };
        if sent && self.hooks.budget().is_some_and(|b| !b.withdraw()) {
            return self.finish(Err(error), Some((&class, GiveUp::BudgetExhausted)));
        }

        self.hooks.notify(&RetryEvent {
            site: self.site_name(),
            attempt,
            error: &error,
            kind: class.kind,
            status: class.status,
            delay,
            source,
            elapsed,
        });
        events::retrying(self.site_name(), attempt, class.kind, class.status, delay, source);
        if let Some(site) = self.guard.site {
            site.on_retry(delay);
            site.on_retry_kind(class.kind);
            #[cfg(feature = "metrics")]
            crate::metrics::record_retry(site, class.kind, delay);
        }
        self.tally.get_or_insert(Tally::FIRST).previous = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.guard.leave_fast_path();
        ControlFlow::Continue(RetryPlan { attempt, kind: class.kind, status: class.status, delay, source })
    }
}

pin_project! {
    /// One attempt of a [`Call`]: the body's future (under the call's timeouts), then, when the
    /// call retries, the back-off sleep in the same place. Returned by [`Call::attempt`].
    #[must_use = "an attempt does nothing unless awaited"]
    pub struct Attempt<'c, 'p, T, E, H, M, F>
    where
        M: Mode<E>,
        F: Future<Output = Result<T, E>>,
    {
        call: &'c mut Call<'p, T, E, H, M>,
        #[pin]
        step: Step<M::Run<T, F>>,
    }
}

pin_project! {
    #[project = StepProj]
    enum Step<R> {
        Running { wait: Option<Pin<Box<dyn Future<Output = ()> + Send + 'static>>>, #[pin] run: R },
        Sleeping { #[pin] sleep: Sleep },
        Done,
    }
}

impl<T, E, H, M, F> Future for Attempt<'_, '_, T, E, H, M, F>
where
    E: Classify,
    H: HookSet<T, E>,
    M: Mode<E>,
    F: Future<Output = Result<T, E>>,
{
    type Output = ControlFlow<Result<T, E>>;

    /// Inlined down to the body's poll: with no limiter wait pending, a success costs the
    /// body, one per-thread counter and a few stores. Everything else is in `poll_slow`.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut step = this.step;
        if let StepProj::Running { wait, mut run } = step.as_mut().project()
            && (!H::LIMITS || wait.is_none())
        {
            this.call.mode.arm(run.as_mut(), this.call.started);
            let (result, timed_out) = ready!(run.poll(cx));
            return match result {
                // The step stays `Running` with the finished body: resetting it would drop the
                // body here and again in the attempt's own drop. Polling after `Ready` breaks
                // the `Future` contract, and the attribute and `retry` never do.
                Ok(value) if !H::VALIDATES => {
                    this.call.succeeded_unvalidated();
                    Poll::Ready(ControlFlow::Break(Ok(value)))
                }
                other => match settle_step(this.call, step.as_mut(), other, timed_out, Sent::Yes) {
                    Some(out) => Poll::Ready(out),
                    None => poll_slow(this.call, step, cx),
                },
            };
        }
        poll_slow(this.call, step, cx)
    }
}

/// Settles a finished attempt of an [`Attempt`]: `Some(output)` when the call ends, `None`
/// once the back-off sleep is in its step.
fn settle_step<T, E, H, M, F>(
    call: &mut Call<'_, T, E, H, M>,
    mut step: Pin<&mut Step<M::Run<T, F>>>,
    result: Result<T, E>,
    timed_out: Option<Timeout>,
    sent: Sent,
) -> Option<ControlFlow<Result<T, E>>>
where
    E: Classify,
    H: HookSet<T, E>,
    M: Mode<E>,
    F: Future<Output = Result<T, E>>,
{
    match call.settle_sent(result, timed_out, sent) {
        ControlFlow::Break(out) => {
            step.set(Step::Done);
            Some(ControlFlow::Break(out))
        }
        ControlFlow::Continue(plan) => {
            step.set(Step::Sleeping { sleep: tokio::time::sleep(plan.delay) });
            None
        }
    }
}

/// The rest of an attempt: the limiter's wait, the back-off sleep, and polls after the end.
#[inline(never)]
fn poll_slow<T, E, H, M, F>(
    call: &mut Call<'_, T, E, H, M>,
    mut step: Pin<&mut Step<M::Run<T, F>>>,
    cx: &mut Context<'_>,
) -> Poll<ControlFlow<Result<T, E>>>
where
    E: Classify,
    H: HookSet<T, E>,
    M: Mode<E>,
    F: Future<Output = Result<T, E>>,
{
    loop {
        match step.as_mut().project() {
            StepProj::Running { wait, mut run } => {
                // Armed before the limiter's wait: the deadline and the attempt timeout
                // bound the time an attempt queues as well as the time it runs.
                call.mode.arm(run.as_mut(), call.started);
                let ((result, timed_out), sent) = match wait {
                    Some(w) => match w.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            *wait = None;
                            call.count_attempt();
                            (ready!(run.poll(cx)), Sent::Yes)
                        }
                        // Timed out in the queue: the body never ran, no request went out.
                        Poll::Pending => (ready!(M::expired(run.as_mut(), cx)), Sent::No),
                    },
                    None => (ready!(run.poll(cx)), Sent::Yes),
                };
                if let Some(out) = settle_step(call, step.as_mut(), result, timed_out, sent) {
                    return Poll::Ready(out);
                }
            }
            StepProj::Sleeping { sleep } => {
                ready!(sleep.poll(cx));
                step.set(Step::Done);
                return Poll::Ready(ControlFlow::Continue(()));
            }
            StepProj::Done => return Poll::Pending,
        }
    }
}

impl<'p, T, E, V, W, B, A> Call<'p, T, E, Hooks<V, (), W, B, (), A>, Untimed> {
    /// Settles an attempt whose body the caller ran itself: `Break(result)` to return it, or
    /// `Continue(pause)`, a future that sleeps the back-off delay and then starts the next
    /// attempt. This is the attribute's one runtime call per attempt when its body needs no
    /// wrapping (no deadline, attempt timeout, limiter or notify hook; those calls go through
    /// [`attempt`](Self::attempt)). A success is settled inline and builds no future at all.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let policy = Policy::DEFAULT;
    /// let mut call = policy.call::<u32, ApiError>();
    /// let mut n = 0;
    /// let out = loop {
    ///     n += 1;
    ///     let result = async { if n < 3 { Err(ApiError::from_status(503)) } else { Ok(n) } }.await;
    ///     match call.conclude(result) {
    ///         ControlFlow::Break(r) => break r,
    ///         ControlFlow::Continue(pause) => pause.await,
    ///     }
    /// };
    /// assert_eq!(out.unwrap(), 3);
    /// # }
    /// ```
    #[inline]
    pub fn conclude(&mut self, result: Result<T, E>) -> ControlFlow<Result<T, E>, Pause>
    where
        E: Classify,
        Hooks<V, (), W, B, (), A>: HookSet<T, E>,
    {
        match self.settle(result, None) {
            ControlFlow::Break(out) => ControlFlow::Break(out),
            ControlFlow::Continue(plan) => {
                ControlFlow::Continue(Pause { site: self.guard.site, sleep: Box::pin(tokio::time::sleep(plan.delay)) })
            }
        }
    }

    /// [`conclude`](Self::conclude) for a call made by [`Call::new`] at `site`, as the
    /// attribute's loop calls it with its `static`: a first-try success is counted at `site`,
    /// an address the compiler knows, rather than at a pointer read back from the call. Any
    /// other outcome goes through `conclude`. `site` must be the call's own site.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{ApiError, Policy, Site};
    /// static SITE: Site = Site::new("docs.conclude_at", Policy::DEFAULT);
    /// let mut call = llm_retry_runtime::Call::new(&SITE);
    /// assert!(matches!(call.conclude_at(&SITE, Ok::<_, ApiError>(7)), ControlFlow::Break(Ok(7))));
    /// assert_eq!(SITE.stats().first_try_successes, 1);
    /// ```
    #[doc(hidden)]
    #[inline]
    pub fn conclude_at(&mut self, site: &'static Site, result: Result<T, E>) -> ControlFlow<Result<T, E>, Pause>
    where
        E: Classify,
        Hooks<V, (), W, B, (), A>: HookSet<T, E>,
    {
        debug_assert!(self.guard.site.is_some_and(|s| core::ptr::eq(s, site)), "conclude_at: not the call's site");
        match result {
            Ok(value)
                if !<Hooks<V, (), W, B, (), A> as HookSet<T, E>>::VALIDATES && self.guard.phase == Phase::First =>
            {
                site.on_first_try_success();
                self.close_success();
                ControlFlow::Break(Ok(value))
            }
            other => self.conclude(other),
        }
    }
}

/// The back-off sleep between two attempts of a [`Call::conclude`] loop; the next attempt is
/// counted when it ends.
///
/// The sleep is boxed: a caller's future holds one pointer for it, and its drop stays small
/// enough to inline on the success path. A retry allocates that box; a success allocates
/// nothing.
///
/// ```
/// use core::ops::ControlFlow;
/// use llm_retry_runtime::{RetryExt, ApiError, Policy};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let policy = Policy::DEFAULT;
/// let mut call = policy.call::<(), ApiError>();
/// if let ControlFlow::Continue(pause) = call.conclude(Err(ApiError::from_status(503))) {
///     pause.await;
/// }
/// # }
/// ```
#[must_use = "a pause does nothing unless awaited"]
#[derive(Debug)]
pub struct Pause {
    site: Option<&'static Site>,
    sleep: Pin<Box<Sleep>>,
}

impl Future for Pause {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.sleep.as_mut().poll(cx));
        // A failed call is past its fast path: its next attempt is counted in the shared counters.
        if let Some(site) = self.site.take() {
            site.on_slow_attempt();
        }
        Poll::Ready(())
    }
}

/// The jitter on top of a Retry-After hint, so that clients told the same instant do not all
/// come back together: `U(0, clamp(hint/10, 10 ms, 1 s))`.
pub(crate) fn hint_jitter(hint: Duration, rng: &mut impl rand::Rng) -> Duration {
    let spread = (hint / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    spread.mul_f64(rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The per-endpoint references (budget, limiter, adaptive: 24 bytes) cost 16, because
    /// the previous delay is kept in 8 bytes instead of a 16-byte `Duration`.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_per_endpoint_references_add_at_most_16_bytes() {
        let size = core::mem::size_of::<Call<'static, (), std::io::Error>>();
        println!("size_of::<Call> = {size}");
        assert!(size <= 72 + 16, "{size}");
    }

    #[test]
    fn hint_jitter_is_small_and_bounded() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for (hint, max) in [(1u64, 10u64), (500, 50), (2_000, 200), (60_000, 1_000), (u64::MAX / 2, 1_000)] {
            let hint = Duration::from_millis(hint);
            for _ in 0..1000 {
                assert!(hint_jitter(hint, &mut rng) <= Duration::from_millis(max));
            }
        }
    }
}
