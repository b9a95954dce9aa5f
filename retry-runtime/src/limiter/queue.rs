//! A limiter's token bucket and the queue of tickets that attempts wait in: [`State`], the
//! ticket that gives its place back when its waiter gives up, and the waits themselves
//! ([`Limiter::acquire`] and the engine's [`Limiter::wait`]).

use super::{BUCKET, GATING, Limiter, SMOOTH, lock};
use core::future::Future;
use core::future::poll_fn;
use core::pin::{Pin, pin};
use core::task::Poll;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::time::Instant;

/// A waiter for a ticket this close sleeps the whole wait; one further off sleeps half of it.
const NAP: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub(super) struct State {
    pub(super) base: Option<Instant>,
    pub(super) fill_rate: f64,
    pub(super) capacity: f64,
    /// Tokens made so far (the bucket's fill, as a running total).
    pub(super) served: f64,
    /// Tickets handed out so far; ticket `k` may go once `served >= k - dropped below k`.
    /// `served - live()`
    /// is what a plain bucket would call its tokens; below zero, the queue.
    pub(super) issued: f64,
    /// Tickets given back before their turn (their waiters gave up), in order: each moves
    /// the tickets behind it up one place and leaves those ahead alone. Once its turn comes
    /// it is folded into `served`, so this holds only drops that are still ahead.
    pub(super) dropped: Vec<f64>,
    pub(super) last_refill: f64,
    pub(super) measured: f64,
    pub(super) measured_valid: bool,
    pub(super) bucket: f64,
    pub(super) count: f64,
    pub(super) w_max: f64,
    pub(super) k: f64,
    pub(super) last_throttle: f64,
    pub(super) last_cut: f64,
}

impl State {
    pub(super) const NEW: State = State {
        base: None,
        fill_rate: 0.0,
        capacity: 1.0,
        served: 0.0,
        issued: 0.0,
        dropped: Vec::new(),
        last_refill: 0.0,
        measured: 0.0,
        measured_valid: false,
        bucket: 0.0,
        count: 0.0,
        w_max: 0.0,
        k: 0.0,
        last_throttle: 0.0,
        last_cut: f64::NEG_INFINITY,
    };

    pub(super) fn secs(&mut self, now: Instant) -> f64 {
        let base = *self.base.get_or_insert(now);
        now.saturating_duration_since(base).as_secs_f64()
    }

    pub(super) fn refill(&mut self, t: f64) {
        let dt = (t - self.last_refill).max(0.0);
        self.served = (self.served + dt * self.fill_rate).min(self.live() + self.capacity);
        self.last_refill = t;
        // A dropped ticket whose turn has come: its token goes to the ticket behind it, which
        // is what `served + 1` says once it no longer counts as a drop below that ticket.
        while self.dropped.first().is_some_and(|&d| d <= self.served) {
            self.dropped.remove(0);
            self.served += 1.0;
        }
    }

    /// Tickets handed out and not given back.
    pub(super) fn live(&self) -> f64 {
        self.issued - self.dropped.len() as f64
    }

    /// Ticket `k`'s place in the queue: `k` less the tickets ahead of it that were given back.
    fn place(&self, ticket: f64) -> f64 {
        ticket - self.dropped.partition_point(|&d| d < ticket) as f64
    }

    /// Advances the measurement to `t`, counting one response if it was `admitted`.
    pub(super) fn measure(&mut self, t: f64, admitted: bool) {
        if t < self.bucket {
            return;
        }
        let b = (t / BUCKET).floor() * BUCKET;
        if b > self.bucket {
            let rate = self.count / (b - self.bucket);
            self.measured = if self.measured_valid { rate * SMOOTH + self.measured * (1.0 - SMOOTH) } else { rate };
            self.measured_valid = true;
            self.count = 0.0;
            self.bucket = b;
        }
        if admitted {
            self.count += 1.0;
        }
    }
}

/// A place in a limiter's queue. Dropped before its waiter went (the attempt timed out or
/// the call was cancelled while it queued), it gives the place back, so the waiters behind
/// it are not held for a request that was never sent.
struct Ticket<'a> {
    limiter: &'a Limiter,
    number: f64,
    used: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.limiter.return_ticket(self.number);
        }
    }
}

impl Limiter {
    /// Waits for a token to send one request. Returns at once (after one relaxed load) until
    /// the endpoint has been throttled. The engine calls it before every attempt.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static L: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("docs");
    /// L.acquire().await;
    /// # }
    /// ```
    pub async fn acquire(&self) {
        if let Some(ticket) = self.ticket() {
            self.wait_for(ticket).await;
        }
    }

    /// The engine's form of [`acquire`](Self::acquire): `None` to go now, or the wait boxed,
    /// so that an attempt's future grows by one pointer rather than by a timer. Allocates only
    /// for an attempt that has to wait.
    pub(crate) fn wait(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        let ticket = self.ticket()?;
        Some(Box::pin(self.wait_for(ticket)))
    }

    /// A place in the queue, if the limiter is on and the place is not due yet.
    fn ticket(&self) -> Option<Ticket<'_>> {
        if self.mode.load(Relaxed) != GATING {
            return None;
        }
        let (number, wait) = self.take_ticket();
        // Taken even when due at once, so that the `Ticket` below is made only to wait.
        let ticket = Ticket { limiter: self, number, used: wait.is_none() };
        wait?;
        self.waits.fetch_add(1, Relaxed);
        Some(ticket)
    }

    async fn wait_for(&self, mut ticket: Ticket<'_>) {
        // Tickets are served in order at the rate in force when they come up. A waiter sleeps
        // half its estimate and looks again: after a cut it sleeps on rather than going early,
        // and after a rise it oversleeps by at most half a wait (a few wake-ups per ticket).
        // A waiter dropped on the way (a timeout, a deadline, a cancelled call) gives its
        // place back when its `Ticket` drops, and wakes the waiters behind it to move up.
        loop {
            // Registered before the check, so a place given back in between is not missed.
            let mut moved = pin!(self.moved.notified());
            moved.as_mut().enable();
            let Some(w) = self.check_ticket(ticket.number) else { break };
            let nap = if w <= NAP { w } else { (w / 2).max(NAP) };
            let mut nap = pin!(tokio::time::sleep(nap));
            poll_fn(|cx| {
                if moved.as_mut().poll(cx).is_ready() || nap.as_mut().poll(cx).is_ready() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
        ticket.used = true;
    }

    /// A ticket that was never used: the queue behind it moves up one place. In the bucket's
    /// terms, the token made (or to be made) for it goes to the next ticket instead.
    fn return_ticket(&self, ticket: f64) {
        {
            let mut s = lock(&self.state);
            let t = s.secs(Instant::now());
            s.refill(t);
            if let Err(at) = s.dropped.binary_search_by(|d| d.total_cmp(&ticket)) {
                s.dropped.insert(at, ticket);
            }
            s.refill(t);
        }
        self.moved.notify_waiters();
    }

    /// Takes the next ticket: it and how long until it comes up (`None`: now).
    fn take_ticket(&self) -> (f64, Option<Duration>) {
        let mut s = lock(&self.state);
        s.issued += 1.0;
        let ticket = s.issued;
        (ticket, Limiter::until(&mut s, ticket))
    }

    fn check_ticket(&self, ticket: f64) -> Option<Duration> {
        Limiter::until(&mut lock(&self.state), ticket)
    }

    fn until(s: &mut State, ticket: f64) -> Option<Duration> {
        let t = s.secs(Instant::now());
        s.refill(t);
        let place = s.place(ticket);
        if s.served >= place {
            return None;
        }
        let wait = (place - s.served) / s.fill_rate.max(f64::MIN_POSITIVE);
        Some(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX).max(Duration::from_micros(1)))
    }
}
