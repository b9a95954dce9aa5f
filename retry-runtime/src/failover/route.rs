//! A call's way through its chain: which target it is on, the breaker's permit for the
//! attempt there, and what to end with when no target is left.

use crate::Classification;
use crate::breaker::{Permit, Refused, Verdict};
use crate::failover::{CircuitOpen, Fallback, Target};

/// One call's place in a [`Fallback`] chain, for loops that run the attempts themselves: ask
/// [`Call::next_target`](crate::call::Call::next_target) which target to use, run the body
/// with it, and settle with [`Call::settle_target`](crate::call::Call::settle_target). The
/// attribute's `fallback = [...]` writes this loop. Dropped mid-attempt, it releases a
/// half-open breaker's probe.
///
/// ```
/// use llm_retry_runtime::failover::{Fallback, Route, Target};
/// static A: Target = Target::new("a");
/// let targets = [&A];
/// let route: Route<'_, std::io::Error> = Route::new(Fallback::new(&targets).unwrap());
/// # drop(route);
/// ```
#[doc(hidden)]
#[derive(Debug)]
pub struct Route<'c, E> {
    chain: Fallback<'c>,
    /// The index of the next target to try.
    next: usize,
    /// The target of the attempt in flight, and its breaker's permit (taken when settled).
    current: Option<(&'static Target, Option<Permit>)>,
    /// The error the call moved on from, to end with if no target is left.
    pub(crate) last: Option<(E, Classification)>,
    /// The last refusal, to end with if no attempt was made.
    refused: Option<Refused>,
    /// The attempts made on the targets the call moved on from.
    pub(crate) before: u32,
}

impl<'c, E> Route<'c, E> {
    /// A call's route through `chain`, before its first attempt.
    pub fn new(chain: Fallback<'c>) -> Self {
        Route { chain, next: 0, current: None, last: None, refused: None, before: 0 }
    }

    /// The chain.
    pub(crate) fn chain(&self) -> &Fallback<'c> {
        &self.chain
    }

    /// The target of the attempt in flight.
    pub fn current(&self) -> Option<&'static Target> {
        self.current.as_ref().map(|(t, _)| *t)
    }

    /// Stays on the current target if its breaker still lets calls through (a retry there),
    /// or takes the first target from `next` on whose breaker does.
    pub(crate) fn pick(&mut self) -> Option<&'static Target> {
        if let Some((t, permit @ None)) = &mut self.current {
            match t.circuit_breaker().map(|b| b.admit()) {
                None => *permit = Some(Permit::NONE),
                Some(Ok(p)) => *permit = Some(p),
                Some(Err(r)) => {
                    self.refused = Some(r);
                    self.current = None;
                }
            }
            if let Some((t, _)) = self.current {
                return Some(t);
            }
        }
        while let Some(&t) = self.chain.targets().get(self.next) {
            self.next += 1;
            let permit = match t.circuit_breaker() {
                None => Permit::NONE,
                Some(b) => match b.admit() {
                    Ok(p) => p,
                    Err(r) => {
                        self.refused = Some(r);
                        continue;
                    }
                },
            };
            self.current = Some((t, Some(permit)));
            return Some(t);
        }
        None
    }

    /// Whether a later target exists (its breaker is asked only when the call gets there).
    pub(crate) fn has_next(&self) -> bool {
        self.next < self.chain.targets().len()
    }

    /// Reports the attempt's outcome to the current target's breaker (once per attempt).
    pub(crate) fn settle(&mut self, verdict: Verdict) {
        if let Some((_, permit)) = &mut self.current
            && let Some(p) = permit.take()
        {
            p.settle(verdict);
        }
    }

    /// Whether the current target's breaker refuses calls now (it opened on this attempt).
    pub(crate) fn current_is_open(&self) -> bool {
        self.current().and_then(Target::circuit_breaker).is_some_and(|b| b.is_open_now())
    }

    /// Leaves the current target: the next [`pick`](Self::pick) starts at the next one.
    pub(crate) fn leave(&mut self, error: E, class: Classification) {
        self.current = None;
        self.last = Some((error, class));
    }

    /// The refusal to end with when no attempt was made.
    pub(crate) fn circuit_open(&self) -> CircuitOpen {
        match self.refused {
            Some(r) => CircuitOpen::refused(r),
            // Unreachable: a chain has a target, so an empty pick saw a refusal.
            None => CircuitOpen::new("fallback chain", None),
        }
    }
}
