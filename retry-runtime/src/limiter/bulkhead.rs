//! A limiter's bulkhead ([`max_in_flight`](super::LimiterBuilder::max_in_flight)): at most
//! that many attempts in flight to the endpoint at once, each holding an [`InFlight`] slot from
//! the moment the limiter lets it go until it ends, however it ends (a response, a timeout, a
//! cancelled call). With a shared store the cap is the fleet's: each slot is a lease in the
//! store, which expires if its worker dies; while the store cannot answer, each process caps
//! itself at its share (the cap ÷ the fleet's size, rounded up).

use super::Limiter;
use core::fmt;
use core::pin::pin;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

/// One attempt's place in flight to an endpoint with a
/// [`max_in_flight`](super::LimiterBuilder::max_in_flight) cap: the place is given back when
/// this is dropped. The engine holds one for every attempt it sends through such a limiter;
/// a loop that runs attempts itself holds the one
/// [`wait_for_limiter`](crate::call::Call::wait_for_limiter) returns until the attempt ends.
///
/// ```
/// use llm_retry_runtime::{Limiter, limits::InFlight};
/// static L: Limiter = Limiter::from_config(match Limiter::builder("docs::in_flight").max_in_flight(1).build() {
///     Ok(c) => c,
///     Err(_) => panic!(),
/// });
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let slot: InFlight<'_> = L.enter().await;
/// assert_eq!(L.stats().in_flight, 1);
/// drop(slot);
/// assert_eq!(L.stats().in_flight, 0);
/// # }
/// ```
#[must_use = "the place in flight is given back as soon as this is dropped"]
pub struct InFlight<'a> {
    limiter: Option<&'a Limiter>,
}

impl<'a> InFlight<'a> {
    /// No place held: the limiter has no cap, or the call no limiter.
    pub(crate) const NONE: InFlight<'static> = InFlight { limiter: None };

    /// The place an attempt that a capped limiter let go now holds.
    pub(crate) fn of(limiter: Option<&'a Limiter>) -> InFlight<'a> {
        InFlight { limiter: limiter.filter(|l| l.config.max_in_flight > 0) }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(l) = self.limiter.take() {
            l.leave();
        }
    }
}

impl fmt::Debug for InFlight<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlight").field("endpoint", &self.limiter.map(Limiter::name)).finish()
    }
}

/// A place taken inside a wait that may still be cancelled: given back if dropped before the
/// wait hands it over to the attempt's [`InFlight`].
pub(super) struct Taking<'a> {
    limiter: &'a Limiter,
    held: bool,
}

impl<'a> Taking<'a> {
    /// A place already counted in `in_flight` (a lease the store granted).
    pub(super) fn counted(limiter: &'a Limiter) -> Taking<'a> {
        limiter.in_flight.fetch_add(1, AcqRel);
        Taking { limiter, held: true }
    }

    /// The wait is over: the attempt's `InFlight` gives the place back from now on.
    pub(super) fn hand_over(mut self) {
        self.held = false;
    }
}

impl Drop for Taking<'_> {
    fn drop(&mut self) {
        if self.held {
            self.limiter.leave();
        }
    }
}

impl Limiter {
    /// Waits for a place in flight (when the limiter caps them) and for the limiter's pace,
    /// then holds the place until the returned [`InFlight`] is dropped: for loops that send
    /// requests themselves. Without a cap it is [`acquire`](Self::acquire).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static L: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("docs::enter");
    /// let _slot = L.enter().await; // no cap: holds nothing
    /// assert_eq!(L.stats().in_flight, 0);
    /// # }
    /// ```
    pub async fn enter(&self) -> InFlight<'_> {
        if let Some(wait) = self.wait(0.0, || None) {
            wait.await;
        }
        InFlight::of(Some(self))
    }

    /// Takes a place in flight, waiting for one while the cap is reached. In shared mode the
    /// store's lease is the place, so this takes none.
    pub(super) async fn take_place(&self, cap: u32) -> Taking<'_> {
        loop {
            // Registered before the check, so a place given back in between is not missed.
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            let n = self.in_flight.load(Acquire);
            if n < cap {
                if self.in_flight.compare_exchange(n, n + 1, AcqRel, Relaxed).is_ok() {
                    return Taking { limiter: self, held: true };
                }
                continue;
            }
            room.await;
        }
    }

    /// The local cap in force: the configured one, or while a store is set but cannot answer,
    /// this process's share of it.
    pub(super) fn local_cap(&self) -> u32 {
        let cap = self.config.max_in_flight;
        match self.share_view() {
            Some(link) if link.fleet > 1 => cap.div_ceil(link.fleet).max(1),
            _ => cap,
        }
    }

    /// An attempt holding a place ended: the place goes to the next waiter, or its lease back
    /// to the store.
    pub(super) fn leave(&self) {
        let _ = self.in_flight.fetch_update(AcqRel, Acquire, |n| n.checked_sub(1));
        self.room.notify_one();
        self.release_lease();
    }
}
