//! Seeded random faults: [`Chaos`].

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::Fault;

/// Random faults at given rates, reproducible from a seed.
///
/// Each request draws one number from a [`SmallRng`] seeded with the seed and walks the faults in the order
/// they were added: with faults `a` at rate `0.1` and `b` at `0.2`, a draw below `0.1` serves `a`, a draw
/// below `0.3` serves `b`, anything else serves [`Fault::Ok`]. Exactly one number is drawn per request, so
/// the same seed and the same request order give the same faults, whatever they are. (`SmallRng`'s
/// sequence is stable for a given `rand` version and platform word size.)
///
/// ```
/// use llm_retry_testkit::{Chaos, Fault};
///
/// let chaos = Chaos::seeded(42).with(Fault::Status(500), 0.1).with(Fault::rate_limited(1.0), 0.2);
/// let first: Vec<Fault> = chaos.clone().take(100);
/// let again: Vec<Fault> = chaos.take(100);
/// assert_eq!(first, again);
/// assert!(first.iter().any(|f| *f == Fault::Ok));
/// ```
#[derive(Debug, Clone)]
pub struct Chaos {
    seed: u64,
    rng: SmallRng,
    faults: Vec<(Fault, f64)>,
}

impl Chaos {
    /// No faults yet, with the generator seeded from `seed`.
    ///
    /// ```
    /// use llm_retry_testkit::{Chaos, Fault};
    /// let mut calm = Chaos::seeded(7);
    /// assert_eq!(calm.next_fault(), Fault::Ok);
    /// ```
    pub fn seeded(seed: u64) -> Chaos {
        Chaos { seed, rng: SmallRng::seed_from_u64(seed), faults: Vec::new() }
    }

    /// Adds `fault`, served to a share `rate` of requests.
    ///
    /// # Panics
    /// If `rate` is not within `0.0..=1.0`, or the rates added so far sum to more than `1.0`.
    ///
    /// ```
    /// use llm_retry_testkit::{Chaos, Fault};
    /// let mut always = Chaos::seeded(1).with(Fault::Status(503), 1.0);
    /// assert_eq!(always.next_fault(), Fault::Status(503));
    /// ```
    pub fn with(mut self, fault: Fault, rate: f64) -> Chaos {
        assert!((0.0..=1.0).contains(&rate), "Chaos rate must be within 0.0..=1.0, got {rate}");
        let total: f64 = self.faults.iter().map(|(_, r)| r).sum::<f64>() + rate;
        assert!(total <= 1.0 + 1e-9, "Chaos rates must sum to at most 1.0, got {total}");
        self.faults.push((fault, rate));
        self
    }

    /// The seed this chaos was made from.
    ///
    /// ```
    /// use llm_retry_testkit::Chaos;
    /// assert_eq!(Chaos::seeded(9).seed(), 9);
    /// ```
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The faults and their rates, in the order they were added.
    ///
    /// ```
    /// use llm_retry_testkit::{Chaos, Fault};
    /// assert_eq!(Chaos::seeded(1).with(Fault::Hang, 0.5).faults(), &[(Fault::Hang, 0.5)]);
    /// ```
    pub fn faults(&self) -> &[(Fault, f64)] {
        &self.faults
    }

    /// Draws the fault for the next request.
    ///
    /// ```
    /// use llm_retry_testkit::{Chaos, Fault};
    /// let mut chaos = Chaos::seeded(3).with(Fault::Status(500), 0.5);
    /// let f = chaos.next_fault();
    /// assert!(f == Fault::Ok || f == Fault::Status(500));
    /// ```
    pub fn next_fault(&mut self) -> Fault {
        let draw: f64 = self.rng.random();
        let mut upto = 0.0;
        for (fault, rate) in &self.faults {
            upto += rate;
            if draw < upto {
                return fault.clone();
            }
        }
        Fault::Ok
    }

    /// The next `n` faults, consuming this chaos (clone it first to keep it): handy to predict what a
    /// server made with the same chaos will serve.
    ///
    /// ```
    /// use llm_retry_testkit::{Chaos, Fault};
    /// let faults = Chaos::seeded(5).with(Fault::Status(502), 0.3).take(10);
    /// assert_eq!(faults.len(), 10);
    /// ```
    pub fn take(mut self, n: usize) -> Vec<Fault> {
        (0..n).map(|_| self.next_fault()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_roughly_respected() {
        let faults = Chaos::seeded(11).with(Fault::Status(500), 0.25).with(Fault::Hang, 0.25).take(4000);
        let s500 = faults.iter().filter(|f| **f == Fault::Status(500)).count();
        let hang = faults.iter().filter(|f| **f == Fault::Hang).count();
        assert!((800..1200).contains(&s500), "{s500}");
        assert!((800..1200).contains(&hang), "{hang}");
    }

    #[test]
    fn different_seeds_differ() {
        let a = Chaos::seeded(1).with(Fault::Status(500), 0.5).take(64);
        let b = Chaos::seeded(2).with(Fault::Status(500), 0.5).take(64);
        assert_ne!(a, b);
    }

    #[test]
    #[should_panic(expected = "sum to at most")]
    fn rates_over_one_panic() {
        let _ = Chaos::seeded(1).with(Fault::Hang, 0.6).with(Fault::Ok, 0.6);
    }
}
