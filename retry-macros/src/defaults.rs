// The runtime's defaults, in the one place the macro keeps them.
//
// The macro emits only the keys a user gives and leaves the rest to the runtime's
// `Policy::DEFAULT`; these copies are used to fill in the parameters a named backoff leaves
// out and to check relations at compile time (a `base` above the default `max_delay`, a
// rule allowing more attempts than the default `max`). The facade test
// `tests/attribute_defaults.rs` proves they equal the runtime's.

use crate::duration::Nanos;

/// `max` when not given.
pub const MAX_ATTEMPTS: u32 = 4;
/// The largest `max` the attribute accepts. A call that needs more attempts than this is
/// better bounded by `deadline`.
pub const MAX_ATTEMPTS_BOUND: u32 = 100;
/// The most `rule(...)` entries (the runtime's `MAX_RULES`).
pub const MAX_RULES: usize = 6;

/// `backoff = "fixed"`: `delay`.
pub const FIXED_DELAY: Nanos = Nanos::from_secs(1);
/// `backoff = "linear"`: `base`, `increment`, `max_delay`.
pub const LINEAR_START: Nanos = Nanos::from_millis(500);
/// See [`LINEAR_START`].
pub const LINEAR_INCREMENT: Nanos = Nanos::from_millis(500);
/// See [`LINEAR_START`].
pub const LINEAR_MAX: Nanos = Nanos::from_secs(20);
/// `backoff = "exponential"` (the default backoff): `base`, `multiplier`, `min_delay`, `max_delay`.
pub const EXP_INITIAL: Nanos = Nanos::from_millis(500);
/// See [`EXP_INITIAL`].
pub const EXP_MULTIPLIER: f64 = 2.0;
/// See [`EXP_INITIAL`].
pub const EXP_MIN: Nanos = Nanos(0);
/// See [`EXP_INITIAL`].
pub const EXP_MAX: Nanos = Nanos::from_secs(20);
/// `backoff = "decorrelated"`: `base`, `max_delay`.
pub const DECORRELATED_BASE: Nanos = Nanos::from_millis(500);
/// See [`DECORRELATED_BASE`].
pub const DECORRELATED_MAX: Nanos = Nanos::from_secs(20);
/// `jitter = "proportional"`: `jitter_factor`.
pub const PROPORTIONAL_FACTOR: f64 = 0.25;
