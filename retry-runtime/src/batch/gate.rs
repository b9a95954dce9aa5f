//! The shared rate-limit gate of a batch run: after a rate limit it holds every new attempt,
//! then lets them start a pace apart, and relaxes the pace as successes come back. The
//! design is on [`Batch`](super::Batch).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Below this, the gate's pace is dropped and attempts start freely again.
const MIN_SPACING: Duration = Duration::from_micros(100);

/// The shared rate-limit gate: a hold, then a pace.
#[derive(Debug)]
pub(super) struct Gate {
    concurrency: u32,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// No attempt starts before this.
    hold_until: Option<Instant>,
    /// While pacing: the gap between two attempt starts; zero when not pacing.
    spacing: Duration,
    /// Whether the pace is still on trial: no attempt has been rate limited since it was set,
    /// so each success shrinks it by a quarter (a one-off 429 costs little time). Cleared by
    /// the first rate limit under the pace; from then on each success shrinks it by 1/32 only.
    trial: bool,
    /// When the last attempt started (tracked only while pacing).
    last_start: Option<Instant>,
    /// Bumped when an attempt that started after the last close is rate limited, which is
    /// news; a rate limit from an attempt of an older generation is a straggler of a herd
    /// already handled.
    generation: u64,
}

/// `t + d`, saturating at a far but representable instant.
fn later(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

impl Gate {
    pub(super) fn new(concurrency: usize) -> Self {
        Gate { concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX).max(1), state: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn wait_left(&self) -> Duration {
        self.lock().hold_until.map_or(Duration::ZERO, |h| h.saturating_duration_since(Instant::now()))
    }

    /// Waits until the gate lets one more attempt start; returns the generation it starts in.
    ///
    /// Waiters take no reservation: each wakes at the earliest instant the gate could let it
    /// through and checks again, so a hold that moves or a pace that changes applies at once
    /// to every waiter. At most `K` items wait, so the extra wake-ups are bounded.
    pub(super) async fn acquire(&self) -> u64 {
        loop {
            let now = Instant::now();
            let at = {
                let mut st = self.lock();
                let mut at = st.hold_until.map_or(now, |h| h.max(now));
                if let (false, Some(last)) = (st.spacing.is_zero(), st.last_start) {
                    at = at.max(later(last, st.spacing));
                }
                if at <= now {
                    if !st.spacing.is_zero() {
                        st.last_start = Some(now);
                    }
                    return st.generation;
                }
                at
            };
            tokio::time::sleep_until(at).await;
        }
    }

    /// An attempt of `generation` was rate limited and will be retried after `delay`, which
    /// is the server's hint (plus jitter) when `hinted`, else the policy's back-off.
    ///
    /// Only a hinted rate limit paces: the hint is the server's word on when capacity comes
    /// back, so a pace never grows past it. A back-off is the client's guess and an overload
    /// is not a rate, so those only hold.
    pub(super) fn close(&self, delay: Duration, generation: u64, hinted: bool) {
        let until = later(Instant::now(), delay);
        let mut st = self.lock();
        if generation == st.generation {
            st.generation = st.generation.wrapping_add(1);
            if hinted && st.spacing.is_zero() {
                st.trial = true;
                st.spacing = delay / self.concurrency;
            } else if hinted {
                st.trial = false;
                st.spacing = st.spacing.saturating_mul(2).min(delay.max(st.spacing));
            }
        }
        if st.hold_until.is_none_or(|h| until > h) {
            st.hold_until = Some(until);
        }
    }

    /// An attempt of `generation` succeeded: if it started after the last close, the pace
    /// works, so relax it (by a quarter on trial, else by 1/32), and drop it once it is
    /// negligible. A success of an attempt that started before the close says nothing.
    pub(super) fn opened_by_success(&self, generation: u64) {
        let mut st = self.lock();
        if !st.spacing.is_zero() && generation == st.generation {
            st.spacing = if st.trial { st.spacing.saturating_mul(3) / 4 } else { st.spacing.saturating_mul(31) / 32 };
            if st.spacing < MIN_SPACING {
                st.spacing = Duration::ZERO;
                st.last_start = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn gate_holds_then_paces_then_relaxes() {
        let gate = Gate::new(4);
        let t0 = Instant::now();
        assert_eq!(gate.acquire().await, 0);
        gate.close(400 * MS, 0, true);
        assert_eq!(gate.wait_left(), 400 * MS);
        // The first waiter starts when the hold ends, the next one a pace (400 ms / 4) later.
        assert_eq!(gate.acquire().await, 1);
        assert_eq!(t0.elapsed(), 400 * MS);
        gate.acquire().await;
        assert_eq!(t0.elapsed(), 500 * MS);
        // A straggler of generation 0 may extend the hold, but does not double the pace.
        gate.close(50 * MS, 0, true);
        assert_eq!(gate.lock().spacing, 100 * MS);
        // News doubles the pace, but never past the server's hint.
        gate.close(150 * MS, 1, true);
        assert_eq!(gate.lock().spacing, 150 * MS);
        gate.close(1_000 * MS, 2, true);
        assert_eq!(gate.lock().spacing, 300 * MS);
        // A rate limit without a hint holds, and leaves the pace alone.
        gate.close(2_000 * MS, 3, false);
        assert_eq!(gate.lock().spacing, 300 * MS);
        gate.opened_by_success(3);
        assert_eq!(gate.lock().spacing, 300 * MS, "an older generation's success");
        for _ in 0..300 {
            gate.opened_by_success(4);
        }
        assert_eq!(gate.lock().spacing, Duration::ZERO);
        let t1 = Instant::now();
        gate.acquire().await;
        gate.acquire().await;
        assert_eq!(t1.elapsed(), 2_000 * MS, "the hold, then no pace");
    }

    #[test]
    fn far_instants_saturate() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        let gate = Gate::new(usize::MAX);
        gate.close(Duration::MAX, 0, true);
        assert!(gate.wait_left() > Duration::from_secs(86_400));
    }
}
