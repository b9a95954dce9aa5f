//! Per-thread counters of first-try successes: each thread writes only its own blocks, so a
//! relaxed load and store suffice (no locked instruction); readers sum every block.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Sites beyond this many count their first-try successes in a shared atomic instead.
const MAX_SITES: usize = 1 << 16;
/// The first block of a thread holds this many sites.
const FIRST_BLOCK: usize = 64;

/// Every block of every thread. A thread that meets a site beyond its block's end takes a
/// block twice as long and counts there from then on; the old block keeps what it
/// counted, so a site's total is its sum over all blocks and nothing is ever copied.
/// Blocks are leaked on purpose: counts outlive their thread, and a thread's blocks add
/// up to at most twice its last one.
static ALL: Mutex<Vec<&'static [AtomicU64]>> = Mutex::new(Vec::new());
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's current block: the bump is two thread-local loads and a bounds check.
    static LOCAL: Cell<&'static [AtomicU64]> = const { Cell::new(&[]) };
}

pub(super) fn next_index() -> usize {
    NEXT.fetch_add(1, Relaxed)
}

/// Adds one to the site's counter in this thread's block; `false` if the site has no slot
/// (not registered yet, more sites than [`MAX_SITES`], or a thread being torn down).
#[inline]
pub(super) fn bump(index: usize) -> bool {
    LOCAL
        .try_with(|local| {
            let Some(c) = local.get().get(index).or_else(|| grow(local, index)) else {
                return false;
            };
            c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
            true
        })
        .unwrap_or(false)
}

/// Gives this thread a block long enough for `index`, and returns its counter there.
#[cold]
#[inline(never)]
fn grow(local: &Cell<&'static [AtomicU64]>, index: usize) -> Option<&'static AtomicU64> {
    if index >= MAX_SITES {
        return None;
    }
    let len = (index + 1).next_power_of_two().max(FIRST_BLOCK).max(local.get().len() * 2);
    let block: &'static [AtomicU64] = Box::leak((0..len).map(|_| AtomicU64::new(0)).collect());
    ALL.lock().unwrap_or_else(|e| e.into_inner()).push(block);
    local.set(block);
    block.get(index)
}

/// The site's count summed over every block of every thread.
pub(super) fn sum(index: usize) -> u64 {
    let all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    all.iter().filter_map(|block| block.get(index)).map(|c| c.load(Relaxed)).fold(0, u64::wrapping_add)
}
