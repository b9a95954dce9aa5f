//! The jitter RNG: one small, fast generator per thread, seedable for reproducible tests.
//! It is touched only on the retry path, never when the first attempt succeeds.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<Option<SmallRng>> = const { RefCell::new(None) };
}

/// Seeds the jitter generator of the current thread, so that the delays that follow are
/// reproducible. Meant for tests, which run on a current-thread runtime.
///
/// Without a seed, each thread seeds itself from the operating system on its first retry.
///
/// ```
/// use llm_retry_runtime::{Backoff, Jitter, rng::seed_thread_rng};
/// seed_thread_rng(7);
/// // Every retry on this thread now draws its jitter from a generator seeded with 7.
/// ```
pub fn seed_thread_rng(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = Some(SmallRng::seed_from_u64(seed)));
}

/// Runs `f` with this thread's generator, seeding it from the OS the first time.
pub(crate) fn with_rng<R>(f: impl FnOnce(&mut SmallRng) -> R) -> R {
    RNG.with(|r| {
        let mut slot = r.borrow_mut();
        let rng = slot.get_or_insert_with(rand::make_rng::<SmallRng>);
        f(rng)
    })
}
