//! What a call can be told and asked: the `notify` event before each sleep, the `validate`
//! check on a successful value, and the `when` predicate on an error.
//!
//! Hooks are type parameters of [`Call`](crate::call::Call), so a fn item costs nothing when absent
//! and nothing is boxed when present.

use crate::ErrorKind;
use crate::adaptive::Adaptive;
use crate::budget::Budget;
use crate::limiter::Limiter;
use crate::validate::InvalidOutput;
use std::time::Duration;

/// Where a retry's delay came from.
///
/// ```
/// use llm_retry_runtime::call::DelaySource;
/// assert_ne!(DelaySource::Backoff, DelaySource::RetryAfter);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelaySource {
    /// The policy's backoff and jitter.
    Backoff,
    /// The server's Retry-After (or an equivalent header), plus a small jitter.
    RetryAfter,
}

/// Handed to the `notify` hook before each sleep.
///
/// ```
/// use llm_retry_runtime::{ApiError, RetryEvent};
///
/// fn log_retry(ev: &RetryEvent<'_, ApiError>) {
///     eprintln!("{}: attempt {} failed ({}), retrying in {:?}", ev.site, ev.attempt, ev.kind, ev.delay);
/// }
/// # let _ = log_retry;
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a, E> {
    /// The call site's name (the stats key).
    pub site: &'static str,
    /// The attempt that just failed, from 1.
    pub attempt: u32,
    /// Its error.
    pub error: &'a E,
    /// Its kind.
    pub kind: ErrorKind,
    /// Its HTTP status, if any.
    pub status: Option<u16>,
    /// How long the call sleeps before the next attempt.
    pub delay: Duration,
    /// Whether the delay came from the backoff or from Retry-After.
    pub source: DelaySource,
    /// Time since the first attempt started.
    pub elapsed: Duration,
}

/// The set of hooks a call carries. Implemented by [`Hooks`]; not meant to be implemented
/// elsewhere.
pub trait HookSet<T, E> {
    /// Whether a notify hook is present (it needs the elapsed time, so a clock read).
    const NOTIFIES: bool;
    /// Whether a validator is present (without one, a success returns as it is).
    const VALIDATES: bool;
    /// `Some(error)` when the validator rejects `value`.
    fn validate(&self, value: &T) -> Option<E>;
    /// The `when` predicate's verdict, if there is one.
    fn when(&self, error: &E) -> Option<bool>;
    /// Calls the notify hook, if there is one.
    fn notify(&self, event: &RetryEvent<'_, E>);
}

/// A call's hooks: a validator `V`, a notify hook `N` and a predicate `W`; `()` means none,
/// and costs no byte in the call's future. The per-endpoint controls are apart, in
/// [`Controls`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Hooks<V = (), N = (), W = ()> {
    pub(crate) validate: V,
    pub(crate) notify: N,
    pub(crate) when: W,
}

/// The per-endpoint controls a call carries. Implemented by [`Controls`]; not meant to be
/// implemented elsewhere.
pub trait ControlSet {
    /// Whether a limiter may be present (without one, no attempt waits before its body).
    const LIMITS: bool;
    /// The endpoint's retry budget, if the call has one.
    fn budget(&self) -> Option<&'static Budget>;
    /// The endpoint's limiter, if the call has one.
    fn limiter(&self) -> Option<&'static Limiter>;
    /// The endpoint's adaptive delay, if the call has one.
    fn adaptive(&self) -> Option<&'static Adaptive>;
}

/// A call's per-endpoint controls, shared with every call to the endpoint: a budget `B`, a
/// limiter `L` and an adaptive delay `A`; `()` means none, and costs no byte.
#[derive(Debug, Clone, Copy, Default)]
pub struct Controls<B = (), L = (), A = ()> {
    pub(crate) budget: B,
    pub(crate) limiter: L,
    pub(crate) adaptive: A,
}

impl<B, L, A> ControlSet for Controls<B, L, A>
where
    B: SharedSlot<Budget>,
    L: SharedSlot<Limiter>,
    A: SharedSlot<Adaptive>,
{
    const LIMITS: bool = L::PRESENT;
    fn budget(&self) -> Option<&'static Budget> {
        self.budget.get()
    }
    fn limiter(&self) -> Option<&'static Limiter> {
        self.limiter.get()
    }
    fn adaptive(&self) -> Option<&'static Adaptive> {
        self.adaptive.get()
    }
}

/// One per-endpoint control slot: absent (`()`), a `&'static` shared by every call, an
/// `Option` of one chosen at run time, or a `static OnceLock` of one built at startup from
/// configuration (absent until it is set).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `{X}` shared by the calls to an endpoint",
    label = "expected a `&'static {X}`, an `Option` of one, or a `static OnceLock<{X}>`: name a `static` of that type",
    note = "declare the endpoint's state once, as a `static {X}`, and give its path here"
)]
pub trait SharedSlot<X: 'static> {
    /// Whether the slot can hold a control (`false` only for `()`), so an absent one costs
    /// no check at run time.
    const PRESENT: bool = true;
    /// The control, if present.
    fn get(&self) -> Option<&'static X>;
}
impl<X: 'static> SharedSlot<X> for () {
    const PRESENT: bool = false;
    fn get(&self) -> Option<&'static X> {
        None
    }
}
impl<X: 'static> SharedSlot<X> for &'static X {
    fn get(&self) -> Option<&'static X> {
        Some(*self)
    }
}
impl<X: 'static> SharedSlot<X> for Option<&'static X> {
    fn get(&self) -> Option<&'static X> {
        *self
    }
}
/// A control built at startup (from configuration) into a `static OnceLock`: absent until set.
impl<X: 'static> SharedSlot<X> for &'static std::sync::OnceLock<X> {
    fn get(&self) -> Option<&'static X> {
        std::sync::OnceLock::get(self)
    }
}

/// A validator: `Fn(&T) -> Result<(), InvalidOutput>`.
#[derive(Debug, Clone, Copy)]
pub struct Validator<F>(pub(crate) F);
/// A notify hook: `Fn(&RetryEvent<'_, E>)`.
#[derive(Debug, Clone, Copy)]
pub struct Notifier<F>(pub(crate) F);
/// A predicate: `Fn(&E) -> bool`.
#[derive(Debug, Clone, Copy)]
pub struct Predicate<F>(pub(crate) F);

/// One hook slot: either absent (`()`) or a wrapped closure.
pub trait ValidateSlot<T, E> {
    /// Whether the slot holds a validator.
    const PRESENT: bool;
    /// See [`HookSet::validate`].
    fn run(&self, value: &T) -> Option<E>;
}
impl<T, E> ValidateSlot<T, E> for () {
    const PRESENT: bool = false;
    fn run(&self, _: &T) -> Option<E> {
        None
    }
}
impl<T, E: From<InvalidOutput>, F: Fn(&T) -> Result<(), InvalidOutput>> ValidateSlot<T, E> for Validator<F> {
    const PRESENT: bool = true;
    fn run(&self, value: &T) -> Option<E> {
        (self.0)(value).err().map(E::from)
    }
}

/// One hook slot: either absent (`()`) or a wrapped closure.
pub trait NotifySlot<E> {
    /// Whether the slot holds a hook.
    const PRESENT: bool;
    /// See [`HookSet::notify`].
    fn run(&self, event: &RetryEvent<'_, E>);
}
impl<E> NotifySlot<E> for () {
    const PRESENT: bool = false;
    fn run(&self, _: &RetryEvent<'_, E>) {}
}
impl<E, F: Fn(&RetryEvent<'_, E>)> NotifySlot<E> for Notifier<F> {
    const PRESENT: bool = true;
    fn run(&self, event: &RetryEvent<'_, E>) {
        (self.0)(event)
    }
}

/// One hook slot: either absent (`()`) or a wrapped closure.
pub trait WhenSlot<E> {
    /// See [`HookSet::when`].
    fn run(&self, error: &E) -> Option<bool>;
}
impl<E> WhenSlot<E> for () {
    fn run(&self, _: &E) -> Option<bool> {
        None
    }
}
impl<E, F: Fn(&E) -> bool> WhenSlot<E> for Predicate<F> {
    fn run(&self, error: &E) -> Option<bool> {
        Some((self.0)(error))
    }
}

impl<T, E, V, N, W> HookSet<T, E> for Hooks<V, N, W>
where
    V: ValidateSlot<T, E>,
    N: NotifySlot<E>,
    W: WhenSlot<E>,
{
    const NOTIFIES: bool = N::PRESENT;
    const VALIDATES: bool = V::PRESENT;
    fn validate(&self, value: &T) -> Option<E> {
        self.validate.run(value)
    }
    fn when(&self, error: &E) -> Option<bool> {
        self.when.run(error)
    }
    fn notify(&self, event: &RetryEvent<'_, E>) {
        self.notify.run(event)
    }
}
