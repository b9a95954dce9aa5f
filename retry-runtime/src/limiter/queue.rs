//! A limiter's request bucket and the queue of tickets that attempts wait in: [`State`]
//! (with the token bucket and smoothed rates of rates.rs), the ticket that gives its place back
//! when its waiter gives up, and the waits themselves ([`Limiter::acquire`] and the engine's
//! [`Limiter::wait`]).

use super::builder::LimiterBuilder;
use super::headers::SendLog;
use super::rates::{Ewma, Tokens};
use super::{COLD, GATING, Limiter, OPEN, RateSource, SHARED, lock};
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
    /// `served - live()` is what a plain bucket would call its tokens; below zero, the queue.
    pub(super) issued: f64,
    /// Tickets given back before their turn (their waiters gave up), in order: each moves
    /// the tickets behind it up one place and leaves those ahead alone. Once its turn comes
    /// it is folded into `served`, so this holds only drops that are still ahead.
    pub(super) dropped: Vec<f64>,
    /// Tickets that went, and drops folded into `served`: together the places used so far,
    /// the most a drain leaves made, so the tickets due but not gone yet wait for new tokens
    /// rather than go as a herd when a pause ends.
    pub(super) gone: f64,
    pub(super) folded: f64,
    /// Tickets waiting now: the queue's length.
    pub(super) waiting: u64,
    /// When the bucket last filled; ahead of now while paused, so nothing is made until then.
    pub(super) last_refill: f64,
    /// No ticket goes before this.
    pub(super) pause_until: f64,
    /// The slow-start window (attempts in flight allowed), while in slow start.
    pub(super) window: f64,
    pub(super) source: RateSource,
    /// Admissions (tickets that went), smoothed.
    pub(super) sends: Ewma,
    /// Admitted (not throttled) responses, smoothed.
    pub(super) admitted: Ewma,
    /// When the last tickets went, to date the provider's `remaining` (see `headers`).
    pub(super) log: SendLog,
    /// Whether the learned rate is still a guess (from a slow start cut short): it then climbs
    /// as a slow start does, doubling every half second, until the next throttle.
    pub(super) probing: bool,
    /// The rate before the last cut, the rate it was cut to, and when.
    pub(super) w_max: f64,
    pub(super) cut_rate: f64,
    pub(super) last_cut: f64,
    /// The most the rate may be: the configured rate, else the builder's ceiling.
    pub(super) ceiling: f64,
    pub(super) tokens: Tokens,
}

impl State {
    pub(super) const fn new(b: &LimiterBuilder) -> State {
        let window = b.initial_window as f64;
        let (fill_rate, capacity, served, source) = match b.configured_rate() {
            // Tokens known, requests not, no slow start: tickets go unpaced, the token bucket
            // paces. (With a slow start, its window paces requests until a rate is known.)
            None if (b.token_rate().is_some() || b.max_in_flight > 0) && b.initial_window == 0 => {
                (b.max_rate, b.max_rate, b.max_rate, RateSource::None)
            }
            Some(r) => {
                let r = if r < b.min_rate {
                    b.min_rate
                } else if r > b.max_rate {
                    b.max_rate
                } else {
                    r
                };
                let cap = if r > 1.0 { r } else { 1.0 };
                (r, cap, cap, RateSource::Configured)
            }
            // Slow start: the window's tokens, refilled by responses, and by the floor rate so
            // that attempts lost without a response never close the window for good.
            None => (b.min_rate, window, window, RateSource::None),
        };
        State {
            base: None,
            fill_rate,
            capacity,
            served,
            issued: 0.0,
            dropped: Vec::new(),
            gone: 0.0,
            folded: 0.0,
            waiting: 0,
            last_refill: 0.0,
            pause_until: f64::NEG_INFINITY,
            window,
            source,
            sends: Ewma::NEW,
            admitted: Ewma::NEW,
            log: SendLog::NEW,
            probing: false,
            w_max: fill_rate,
            cut_rate: fill_rate,
            last_cut: f64::NEG_INFINITY,
            ceiling: match b.configured_rate() {
                Some(r) if r < b.max_rate => r,
                _ => b.max_rate,
            },
            tokens: Tokens::new(b.token_rate()),
        }
    }

    pub(super) fn secs(&mut self, now: Instant) -> f64 {
        let base = *self.base.get_or_insert(now);
        now.saturating_duration_since(base).as_secs_f64()
    }

    /// The request rate in force, when one is known.
    pub(super) fn request_rate(&self) -> Option<f64> {
        (self.source != RateSource::None).then_some(self.fill_rate)
    }

    pub(super) fn refill(&mut self, t: f64) {
        if t > self.last_refill {
            let dt = t - self.last_refill;
            self.served = (self.served + dt * self.fill_rate).min(self.live() + self.capacity);
            self.last_refill = t;
        }
        self.tokens.refill(t);
        self.fold_drops();
    }

    /// A dropped ticket whose turn has come: its token goes to the ticket behind it, which
    /// is what `served + 1` says once it no longer counts as a drop below that ticket.
    pub(super) fn fold_drops(&mut self) {
        while self.dropped.first().is_some_and(|&d| d <= self.served) {
            self.dropped.remove(0);
            self.served += 1.0;
            self.folded += 1.0;
        }
    }

    /// Tickets handed out and not given back.
    pub(super) fn live(&self) -> f64 {
        self.issued - self.dropped.len() as f64
    }

    /// Nothing banked: the provider's bucket is empty, so ours is too. Tickets that were due
    /// but have not gone yet wait for new tokens too.
    pub(super) fn drain(&mut self) {
        self.served = self.served.min(self.live()).min(self.gone + self.folded);
    }

    /// A ticket goes now.
    fn went(&mut self, t: f64) {
        self.sends.add(t);
        self.log.push(t);
        self.gone += 1.0;
    }

    /// Holds every ticket until `until`; the first one goes then.
    pub(super) fn pause(&mut self, until: f64) {
        if until > self.pause_until {
            self.pause_until = until;
        }
        self.drain();
        let first = until - 1.0 / self.fill_rate.max(f64::MIN_POSITIVE);
        if first > self.last_refill {
            self.last_refill = first;
        }
    }

    /// Ticket `k`'s place in the queue: `k` less the tickets ahead of it that were given back.
    fn place(&self, ticket: f64) -> f64 {
        ticket - self.dropped.partition_point(|&d| d < ticket) as f64
    }
}

/// A place in a limiter's queue. Dropped before its waiter went (the attempt timed out or
/// the call was cancelled while it queued), it gives the place back, so the waiters behind
/// it are not held for a request that was never sent.
pub(super) struct Ticket<'a> {
    limiter: &'a Limiter,
    number: f64,
    /// The tokens it asked for.
    declared: f64,
    /// The tokens it reserved: 0 while no token rate is known (it reserves them once one is).
    tokens: f64,
    /// The running total of tokens reserved up to and including this ticket's.
    upto: f64,
    used: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.limiter.return_ticket(self.number, self.tokens);
        }
    }
}

impl Limiter {
    /// Waits for room to send one request. Returns at once (after one relaxed load) once the
    /// limiter is open: never throttled, past its slow start, no rate configured. The engine
    /// calls it before every attempt.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static L: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("docs");
    /// L.acquire().await;
    /// # }
    /// ```
    pub async fn acquire(&self) {
        if let Some(wait) = self.wait(0.0, || None) {
            wait.await;
        }
    }

    /// Waits for room to send one request that will use about `tokens` tokens (prompt and
    /// expected output): with a token rate known (configured or from the provider's headers)
    /// it also waits until the token bucket has room. Correct the estimate once the response
    /// reports its usage with [`correct_tokens`](Self::correct_tokens).
    ///
    /// ```
    /// use llm_retry_runtime::Limiter;
    /// use std::time::Duration;
    /// static L: Limiter = Limiter::from_config(match Limiter::builder("docs::tokens").tokens_per_minute(6_000.0).build() {
    ///     Ok(c) => c,
    ///     Err(_) => panic!(),
    /// });
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let t = tokio::time::Instant::now();
    /// L.acquire_tokens(6_000).await; // a minute's worth: the bucket starts full
    /// L.acquire_tokens(100).await; // then 100 tokens a second
    /// assert_eq!(t.elapsed().as_secs(), 1);
    /// # }
    /// ```
    pub async fn acquire_tokens(&self, tokens: u64) {
        #[allow(clippy::cast_precision_loss)]
        if let Some(wait) = self.wait(tokens as f64, || None) {
            wait.await;
        }
    }

    /// The engine's form of [`acquire_tokens`](Self::acquire_tokens): `None` to go now, or the
    /// wait boxed, so that an attempt's future grows by one pointer rather than by a timer.
    /// Allocates only for an attempt that has to wait, or asks a shared store. `remaining`
    /// is what is left of the call's deadline: a store refuses a wait that would cross it.
    #[inline]
    pub(crate) fn wait(
        &self,
        tokens: f64,
        remaining: impl FnOnce() -> Option<Duration>,
    ) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        // Inlined down to this load: an open limiter costs the caller nothing more.
        if self.mode.load(Relaxed) == OPEN {
            return None;
        }
        self.wait_slow(tokens, remaining)
    }

    #[cold]
    #[inline(never)]
    fn wait_slow(
        &self,
        tokens: f64,
        remaining: impl FnOnce() -> Option<Duration>,
    ) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        if self.mode.load(Relaxed) == SHARED || self.store_due() {
            let declared = if tokens.is_finite() && tokens > 0.0 { tokens } else { 0.0 };
            return Some(Box::pin(self.admit_shared(declared, remaining())));
        }
        if self.config.max_in_flight > 0 {
            return Some(Box::pin(self.local_wait(tokens)));
        }
        let ticket = self.ticket(tokens)?;
        Some(Box::pin(self.wait_for(ticket)))
    }

    /// The in-process wait: a place in flight first (with a cap), then the pace.
    pub(super) async fn local_wait(&self, tokens: f64) {
        let place = if self.config.max_in_flight > 0 { Some(self.take_place(self.local_cap()).await) } else { None };
        if let Some(ticket) = self.ticket(tokens) {
            self.wait_for(ticket).await;
        }
        if let Some(p) = place {
            p.hand_over();
        }
    }

    /// A place in the queue, unless the limiter is open or the place is due now.
    pub(super) fn ticket(&self, tokens: f64) -> Option<Ticket<'_>> {
        let mode = self.mode.load(Relaxed);
        if mode != COLD && mode != GATING {
            return None;
        }
        let declared = if tokens.is_finite() && tokens > 0.0 { tokens } else { 0.0 };
        let (number, tokens, upto, wait) = self.take_ticket(declared);
        // Taken even when due at once, so that the `Ticket` below is made only to wait.
        let ticket = Ticket { limiter: self, number, declared, tokens, upto, used: wait.is_none() };
        wait?;
        self.waits.fetch_add(1, Relaxed);
        Some(ticket)
    }

    pub(super) async fn wait_for(&self, mut ticket: Ticket<'_>) {
        // Tickets are served in order at the rate in force when they come up. A waiter sleeps
        // half its estimate and looks again: after a cut it sleeps on rather than going early,
        // and after a rise it oversleeps by at most half a wait (a few wake-ups per ticket).
        // A waiter dropped on the way (a timeout, a deadline, a cancelled call) gives its
        // place back when its `Ticket` drops, and wakes the waiters behind it to move up.
        loop {
            // Registered before the check, so a place given back in between is not missed.
            let mut moved = pin!(self.moved.notified());
            moved.as_mut().enable();
            let Some(w) = self.check_ticket(&mut ticket) else { break };
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
    /// terms, the token made (or to be made) for it goes to the next ticket instead; its
    /// reserved tokens go back to the token bucket.
    fn return_ticket(&self, ticket: f64, tokens: f64) {
        {
            let mut s = lock(&self.state);
            let t = s.secs(Instant::now());
            s.refill(t);
            if let Err(at) = s.dropped.binary_search_by(|d| d.total_cmp(&ticket)) {
                s.dropped.insert(at, ticket);
            }
            if tokens > 0.0 {
                s.tokens.made += tokens;
            }
            s.waiting = s.waiting.saturating_sub(1);
            s.refill(t);
        }
        self.moved.notify_waiters();
    }

    /// Takes the next ticket (and reserves its tokens): it, the tokens reserved, their place
    /// in the token queue, and how long until it comes up (`None`: now).
    fn take_ticket(&self, tokens: f64) -> (f64, f64, f64, Option<Duration>) {
        let mut s = lock(&self.state);
        let t = s.secs(Instant::now());
        s.refill(t);
        s.issued += 1.0;
        let ticket = s.issued;
        let (tokens, upto) = s.tokens.reserve(tokens);
        let due = Limiter::until(&mut s, t, ticket, upto);
        if due.is_none() {
            s.went(t);
        } else {
            s.waiting += 1;
        }
        (ticket, tokens, upto, due)
    }

    fn check_ticket(&self, ticket: &mut Ticket<'_>) -> Option<Duration> {
        let mut s = lock(&self.state);
        let t = s.secs(Instant::now());
        s.refill(t);
        if ticket.tokens == 0.0 && ticket.declared > 0.0 {
            // Taken before a token rate was known (in slow start, before the first headers):
            // its tokens count from now.
            (ticket.tokens, ticket.upto) = s.tokens.reserve(ticket.declared);
        }
        // A waiter's tokens are due once everything reserved up to its own is made.
        let due = Limiter::until(&mut s, t, ticket.number, ticket.upto);
        if due.is_none() {
            s.went(t);
            s.waiting = s.waiting.saturating_sub(1);
        }
        due
    }

    fn until(s: &mut State, t: f64, ticket: f64, tokens_upto: f64) -> Option<Duration> {
        let mut wait: f64 = 0.0;
        if t < s.pause_until {
            wait = s.pause_until - t;
        }
        let place = s.place(ticket);
        if s.served < place {
            let ahead = (s.last_refill - t).max(0.0);
            wait = wait.max(ahead + (place - s.served) / s.fill_rate.max(f64::MIN_POSITIVE));
        }
        if s.tokens.rate > 0.0 && s.tokens.made < tokens_upto {
            wait = wait.max((tokens_upto - s.tokens.made) / s.tokens.rate);
        }
        if wait <= 0.0 {
            return None;
        }
        Some(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX).max(Duration::from_micros(1)))
    }
}
