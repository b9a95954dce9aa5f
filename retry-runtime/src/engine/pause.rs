//! The loop whose caller runs the body itself: [`Call::settle_paused`] settles each attempt, and
//! the [`Pause`] it hands back sleeps the back-off delay before the next one.

use super::Call;
use super::guard::Phase;
use super::mode::Untimed;
use crate::classify::Classify;
use crate::hooks::{ControlSet, Controls, HookSet, Hooks};
use crate::stats::Site;
use core::future::Future;
use core::ops::ControlFlow;
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use tokio::time::Sleep;

impl<'p, T, E, V, W, B, A> Call<'p, T, E, Hooks<V, (), W>, Controls<B, (), A>, Untimed> {
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
    ///     match call.settle_paused(result) {
    ///         ControlFlow::Break(r) => break r,
    ///         ControlFlow::Continue(pause) => pause.await,
    ///     }
    /// };
    /// assert_eq!(out.unwrap(), 3);
    /// # }
    /// ```
    #[inline]
    pub fn settle_paused(&mut self, result: Result<T, E>) -> ControlFlow<Result<T, E>, Pause>
    where
        E: Classify,
        Hooks<V, (), W>: HookSet<T, E>,
        Controls<B, (), A>: ControlSet,
    {
        match self.settle(result, None) {
            ControlFlow::Break(out) => ControlFlow::Break(out),
            ControlFlow::Continue(plan) => ControlFlow::Continue(Pause::after(self.guard.site, plan.delay)),
        }
    }

    /// [`settle_paused`](Self::settle_paused) for a call made by [`Call::new`] at `site`, as the
    /// attribute's loop calls it with its `static`: a first-try success is counted at `site`,
    /// an address the compiler knows, rather than at a pointer read back from the call. Any
    /// other outcome goes through `settle_paused`. `site` must be the call's own site.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use llm_retry_runtime::{ApiError, Policy, stats::Site};
    /// static SITE: Site = Site::new("docs.settle_at", Policy::DEFAULT);
    /// let mut call = llm_retry_runtime::call::Call::new(&SITE);
    /// assert!(matches!(call.settle_at(&SITE, Ok::<_, ApiError>(7)), ControlFlow::Break(Ok(7))));
    /// assert_eq!(SITE.stats().first_try_successes, 1);
    /// ```
    #[doc(hidden)]
    #[inline]
    pub fn settle_at(&mut self, site: &'static Site, result: Result<T, E>) -> ControlFlow<Result<T, E>, Pause>
    where
        E: Classify,
        Hooks<V, (), W>: HookSet<T, E>,
        Controls<B, (), A>: ControlSet,
    {
        debug_assert!(self.guard.site.is_some_and(|s| core::ptr::eq(s, site)), "settle_at: not the call's site");
        match result {
            Ok(value) if !<Hooks<V, (), W> as HookSet<T, E>>::VALIDATES && self.guard.phase == Phase::First => {
                site.on_first_try_success();
                self.settle_success_end();
                ControlFlow::Break(Ok(value))
            }
            other => self.settle_paused(other),
        }
    }
}

/// The back-off sleep between two attempts of a [`Call::settle_paused`] loop; the next attempt is
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
/// if let ControlFlow::Continue(pause) = call.settle_paused(Err(ApiError::from_status(503))) {
///     pause.await;
/// }
/// # }
/// ```
#[must_use = "a pause does nothing unless awaited"]
#[derive(Debug)]
pub struct Pause {
    site: Option<&'static Site>,
    /// `None` when the next attempt starts at once (a fallback chain moving on).
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Pause {
    /// A pause of `delay`.
    pub(super) fn after(site: Option<&'static Site>, delay: core::time::Duration) -> Pause {
        Pause { site, sleep: Some(Box::pin(tokio::time::sleep(delay))) }
    }

    /// No pause: the next attempt starts at once, and nothing is allocated.
    pub(super) fn none(site: Option<&'static Site>) -> Pause {
        Pause { site, sleep: None }
    }
}

impl Future for Pause {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(sleep) = self.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        // A failed call is past its fast path: its next attempt is counted in the shared counters.
        if let Some(site) = self.site.take() {
            site.on_slow_attempt();
        }
        Poll::Ready(())
    }
}
