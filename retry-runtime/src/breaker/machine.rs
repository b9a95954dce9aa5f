//! The breaker's state machine, and the one place its state changes: what a call may do
//! ([`Machine::admit`]), what an attempt's outcome does ([`Machine::record`]), a server's
//! long cooldown ([`Machine::trip`]), and an abandoned probe ([`Machine::release`]).
//!
//! Pure: no atomics, no lock and no clock (the caller passes `now`). The in-memory
//! [`Breaker`](super::Breaker) keeps one `Machine` behind a mutex; a store shared by a fleet
//! would run the same transitions against its own copy of this state.

use super::settings::Settings;
use core::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// Where a breaker is.
///
/// ```
/// use llm_retry_runtime::failover::BreakerState;
/// assert_eq!(BreakerState::HalfOpen.name(), "half-open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail at once, or move on to the next target, until the cooldown ends.
    Open,
    /// The cooldown has ended: one call at a time is let through as a probe.
    HalfOpen,
}

impl BreakerState {
    /// A short name for logs and labels.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::BreakerState::Open.name(), "open");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a breaker moved.
///
/// ```
/// use llm_retry_runtime::failover::Cause;
/// assert_eq!(Cause::RetryAfter.name(), "retry-after over the cap");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// `consecutive_failures` attempts failed in a row.
    ConsecutiveFailures,
    /// The failure rate over the window reached `failure_rate`.
    FailureRate,
    /// A 429 or 529 asked for a wait longer than the policy's `max_retry_after`: the breaker
    /// opens for the time the server asked (a cooldown).
    RetryAfter,
    /// The cooldown ended: the next call is a probe.
    CooldownOver,
    /// The probe succeeded (or the server answered it).
    ProbeSucceeded,
    /// The probe failed: a new cooldown.
    ProbeFailed,
    /// The fleet's shared state moved it (another worker's failures, probe or trip, through
    /// the store the breaker [`share`](super::Breaker::share)s).
    Fleet,
}

impl Cause {
    /// A short phrase for logs.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::Cause::ProbeFailed.name(), "probe failed");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Cause::ConsecutiveFailures => "consecutive failures",
            Cause::FailureRate => "failure rate",
            Cause::RetryAfter => "retry-after over the cap",
            Cause::CooldownOver => "cooldown over",
            Cause::ProbeSucceeded => "probe succeeded",
            Cause::ProbeFailed => "probe failed",
            Cause::Fleet => "the fleet's shared state",
        }
    }
}

/// A breaker's move from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: BreakerState,
    pub(crate) to: BreakerState,
    pub(crate) cause: Cause,
}

/// An attempt's outcome, as a breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The target served the call.
    Success,
    /// The target is failing: connection, timeout, 429, quota, 5xx.
    Failure,
    /// The caller's fault (auth, bad request, context length, content filter, ...): the
    /// target answered, so nothing is counted; a probe that ends this way closes the breaker.
    Neutral,
}

/// What a breaker lets a call do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go ahead (closed).
    Yes,
    /// Go ahead as the one probe (half-open).
    Probe,
    /// Refused: open until the given instant, or half-open with a probe in flight (`None`).
    No(Option<Instant>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The failures counted while closed.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// When the window began: at its first failure.
    start: Option<Instant>,
    calls: u32,
    failures: u32,
}

/// A breaker's whole state.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    state: State,
    /// Failures since the last success.
    consecutive: u32,
    window: Window,
}

impl Machine {
    pub(crate) const fn new() -> Machine {
        Machine { state: State::Closed, consecutive: 0, window: Window { start: None, calls: 0, failures: 0 } }
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Until when the breaker stays open, if it is open.
    pub(crate) fn open_until(&self) -> Option<Instant> {
        match self.state {
            State::Open { until } => Some(until),
            _ => None,
        }
    }

    /// Whether a closed breaker has nothing to count: a success changes nothing, so the
    /// success path may skip it.
    pub(crate) fn is_clean(&self) -> bool {
        self.state == State::Closed && self.consecutive == 0 && self.window.start.is_none()
    }

    /// May a call go to this target now? An open breaker whose cooldown is over turns
    /// half-open and lets this call through as its probe.
    pub(crate) fn admit(&mut self, now: Instant) -> (Admit, Option<Transition>) {
        match self.state {
            State::Closed => (Admit::Yes, None),
            State::Open { until } if now < until => (Admit::No(Some(until)), None),
            State::Open { .. } => {
                self.state = State::HalfOpen { probing: true };
                let t = Transition { from: BreakerState::Open, to: BreakerState::HalfOpen, cause: Cause::CooldownOver };
                (Admit::Probe, Some(t))
            }
            State::HalfOpen { probing: true } => (Admit::No(None), None),
            State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                (Admit::Probe, None)
            }
        }
    }

    /// An attempt's outcome. `probe` says whether the attempt was the half-open probe;
    /// outcomes of attempts let through before the breaker opened change nothing.
    pub(crate) fn record(&mut self, s: &Settings, now: Instant, verdict: Verdict, probe: bool) -> Option<Transition> {
        match (self.state, probe) {
            (State::HalfOpen { .. }, true) => Some(match verdict {
                Verdict::Success | Verdict::Neutral => self.close(),
                Verdict::Failure => self.open(now, s.cooldown, BreakerState::HalfOpen, Cause::ProbeFailed),
            }),
            (State::Closed, _) => self.record_closed(s, now, verdict),
            _ => None,
        }
    }

    fn record_closed(&mut self, s: &Settings, now: Instant, verdict: Verdict) -> Option<Transition> {
        if let Some(start) = self.window.start
            && now.saturating_duration_since(start) >= s.window
        {
            self.window = Window::default();
        }
        match verdict {
            Verdict::Neutral => None,
            Verdict::Success => {
                self.consecutive = 0;
                if self.window.start.is_some() {
                    self.window.calls = self.window.calls.saturating_add(1);
                }
                None
            }
            Verdict::Failure => {
                self.consecutive = self.consecutive.saturating_add(1);
                let w = &mut self.window;
                w.start.get_or_insert(now);
                w.calls = w.calls.saturating_add(1);
                w.failures = w.failures.saturating_add(1);
                let rate = f64::from(w.failures) / f64::from(w.calls);
                if self.consecutive >= s.consecutive_failures {
                    Some(self.open(now, s.cooldown, BreakerState::Closed, Cause::ConsecutiveFailures))
                } else if w.calls >= s.min_calls && rate >= s.failure_rate {
                    Some(self.open(now, s.cooldown, BreakerState::Closed, Cause::FailureRate))
                } else {
                    None
                }
            }
        }
    }

    /// The server asked for a wait over the policy's cap: open now for that long (at most
    /// `max_cooldown`), or longer if already open for longer.
    pub(crate) fn trip(&mut self, s: &Settings, now: Instant, wait: Duration) -> Option<Transition> {
        let wait = wait.min(s.max_cooldown);
        let from = self.state();
        if let State::Open { until } = self.state
            && until >= now + wait
        {
            return None;
        }
        Some(self.open(now, wait, from, Cause::RetryAfter))
    }

    /// The fleet's state, from a store, over this process's: open until `until`, half-open
    /// (the fleet's probe decides; a call here must claim it from the store), or closed.
    pub(crate) fn mirror(&mut self, to: BreakerState, until: Option<Instant>) -> Option<Transition> {
        let from = self.state();
        let t = |to| Some(Transition { from, to, cause: Cause::Fleet });
        match (to, until) {
            (BreakerState::Open, Some(until)) => {
                if matches!(self.state, State::Open { until: mine } if mine >= until) {
                    return None;
                }
                *self = Machine { state: State::Open { until }, ..Machine::new() };
                t(BreakerState::Open)
            }
            (BreakerState::Closed, _) if from != BreakerState::Closed => {
                *self = Machine::new();
                t(BreakerState::Closed)
            }
            (BreakerState::HalfOpen, _) if from == BreakerState::Open => {
                self.state = State::HalfOpen { probing: false };
                t(BreakerState::HalfOpen)
            }
            _ => None,
        }
    }

    /// The probe was dropped before it settled: the next call may probe.
    pub(crate) fn release(&mut self) {
        if self.state == (State::HalfOpen { probing: true }) {
            self.state = State::HalfOpen { probing: false };
        }
    }

    fn open(&mut self, now: Instant, cooldown: Duration, from: BreakerState, cause: Cause) -> Transition {
        self.state = State::Open { until: now.checked_add(cooldown).unwrap_or(now + Settings::MAX_DURATION) };
        self.consecutive = 0;
        self.window = Window::default();
        Transition { from, to: BreakerState::Open, cause }
    }

    fn close(&mut self) -> Transition {
        self.state = State::Closed;
        self.consecutive = 0;
        self.window = Window::default();
        Transition { from: BreakerState::HalfOpen, to: BreakerState::Closed, cause: Cause::ProbeSucceeded }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::DEFAULT
    }

    #[test]
    fn consecutive_failures_open_it_and_a_success_resets_the_count() {
        let s = settings();
        let now = Instant::now();
        let mut m = Machine::new();
        for _ in 0..s.consecutive_failures - 1 {
            assert_eq!(m.record(&s, now, Verdict::Failure, false), None);
        }
        assert_eq!(m.record(&s, now, Verdict::Success, false), None);
        for _ in 0..s.consecutive_failures - 1 {
            assert_eq!(m.record(&s, now, Verdict::Failure, false), None);
        }
        let t = m.record(&s, now, Verdict::Failure, false).expect("opens");
        assert_eq!((t.from, t.to, t.cause), (BreakerState::Closed, BreakerState::Open, Cause::ConsecutiveFailures));
        assert_eq!(m.open_until(), Some(now + s.cooldown));
    }

    #[test]
    fn the_failure_rate_opens_it_once_the_window_has_enough_calls() {
        let s = Settings { consecutive_failures: 1000, ..settings() };
        let now = Instant::now();
        let mut m = Machine::new();
        // Alternate: 50% failures; opens when the window holds min_calls calls.
        let mut opened = None;
        for i in 0..100 {
            let v = if i % 2 == 0 { Verdict::Failure } else { Verdict::Success };
            if let Some(t) = m.record(&s, now, v, false) {
                opened = Some((i, t.cause));
                break;
            }
        }
        let (i, cause) = opened.expect("opens");
        assert_eq!(cause, Cause::FailureRate);
        // Evaluated at failures: the first one once the window holds min_calls attempts.
        assert_eq!(i, s.min_calls as usize);
    }

    #[test]
    fn the_window_expires() {
        let s = Settings { consecutive_failures: 1000, ..settings() };
        let t0 = Instant::now();
        let mut m = Machine::new();
        for _ in 0..s.min_calls - 1 {
            m.record(&s, t0, Verdict::Failure, false);
        }
        // One window later the count starts again: one more failure is not enough.
        assert_eq!(m.record(&s, t0 + s.window, Verdict::Failure, false), None);
    }

    #[test]
    fn neutral_outcomes_count_nothing() {
        let s = settings();
        let now = Instant::now();
        let mut m = Machine::new();
        for _ in 0..100 {
            assert_eq!(m.record(&s, now, Verdict::Neutral, false), None);
        }
        assert!(m.is_clean());
    }

    #[test]
    fn half_open_lets_one_probe_through_at_a_time() {
        let s = settings();
        let t0 = Instant::now();
        let mut m = Machine::new();
        m.trip(&s, t0, Duration::from_secs(10));
        assert_eq!(m.admit(t0 + Duration::from_secs(9)).0, Admit::No(Some(t0 + Duration::from_secs(10))));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(m.admit(later).0, Admit::Probe);
        assert_eq!(m.admit(later).0, Admit::No(None));
        m.release();
        assert_eq!(m.admit(later).0, Admit::Probe);
        let t = m.record(&s, later, Verdict::Failure, true).expect("reopens");
        assert_eq!((t.from, t.cause), (BreakerState::HalfOpen, Cause::ProbeFailed));
        let again = later + s.cooldown;
        assert_eq!(m.admit(again).0, Admit::Probe);
        // An attempt let through before the breaker opened changes nothing.
        assert_eq!(m.record(&s, again, Verdict::Success, false), None);
        let t = m.record(&s, again, Verdict::Neutral, true).expect("closes");
        assert_eq!((t.to, t.cause), (BreakerState::Closed, Cause::ProbeSucceeded));
        assert!(m.is_clean());
    }

    #[test]
    fn a_long_retry_after_opens_it_for_the_hint_capped() {
        let s = settings();
        let t0 = Instant::now();
        let mut m = Machine::new();
        m.trip(&s, t0, Duration::from_secs(300));
        assert_eq!(m.open_until(), Some(t0 + Duration::from_secs(300)));
        // A shorter hint does not shorten it.
        assert_eq!(m.trip(&s, t0, Duration::from_secs(10)), None);
        m.trip(&s, t0, Duration::MAX);
        assert_eq!(m.open_until(), Some(t0 + s.max_cooldown));
    }
}
