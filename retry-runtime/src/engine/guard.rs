//! Where a call is for the stats ([`Phase`]), and the [`Guard`] that counts a call dropped
//! unfinished (cancelled, or unwound by a panic).

use crate::stats::Site;

/// Where a call is, for the stats: the success path touches one per-thread counter, so a call
/// is counted in the shared counters only once it leaves that path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
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
pub(super) struct Guard {
    pub(super) site: Option<&'static Site>,
    pub(super) phase: Phase,
    /// The tokens each attempt declares to the limiter ([`Call::tokens`](super::Call::tokens)).
    /// Kept here because it fits the padding after `phase`: the call grows by no byte.
    pub(super) tokens: u32,
}

impl Guard {
    /// The call failed: from now on it is counted in the shared counters.
    pub(super) fn leave_fast_path(&mut self) {
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
