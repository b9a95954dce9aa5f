//! The success path costs nothing: no heap allocation per call, in the `attempt` form and the
//! `settle_at` form. A path with retries allocates only its errors (and, in the `settle_paused` form,
//! one boxed sleep per retry), after one warm-up call that registers the site and seeds the RNG.

use llm_retry_runtime::{ApiError, Backoff, InvalidOutput, Jitter, Policy, RetryEvent, RetryExt, stats::Site};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const POLICY: Policy = match Policy::builder()
    .max_attempts(5)
    .backoff(Backoff::Fixed { delay: Duration::from_millis(10) })
    .jitter(Jitter::Full)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!(),
};
static SITE: Site = Site::new("alloc::site", POLICY);

/// Polls a future that completes without waiting, with no runtime at all.
fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the success path should complete in one poll"),
    }
}

fn notify(_: &RetryEvent<'_, ApiError>) {}

fn validate(v: &u32) -> Result<(), InvalidOutput> {
    if *v == 0 { Err(InvalidOutput::new("zero")) } else { Ok(()) }
}

#[test]
fn the_counter_sees_allocations() {
    // A control, so that the zeros below mean something.
    let info = allocation_counter::measure(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(info.count_total, 1);
    let err = allocation_counter::measure(|| {
        drop(std::hint::black_box(ApiError::new(llm_retry_runtime::ErrorKind::Other, "x")))
    });
    assert!(err.count_total >= 1);
}

#[test]
fn the_success_path_allocates_nothing() {
    let once = || {
        poll_once(async {
            let mut call = llm_retry_runtime::call::Call::new(&SITE).notify(notify).validate(validate);
            loop {
                if let core::ops::ControlFlow::Break(r) = call.attempt(async { Ok::<u32, ApiError>(1) }).await {
                    return r;
                }
            }
        })
    };
    assert_eq!(once().unwrap(), 1); // registers the site
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            assert_eq!(once().unwrap(), 1);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    let builder = allocation_counter::measure(|| {
        for _ in 0..1000 {
            let r: Result<u32, ApiError> = poll_once(POLICY.retry(|| async { Ok(2) }));
            assert_eq!(r.unwrap(), 2);
        }
    });
    assert_eq!(builder.count_total, 0, "{builder:?}");
}

#[test]
fn the_success_path_with_a_budget_limiter_and_adaptive_delay_allocates_nothing() {
    static BUDGET: llm_retry_runtime::Budget = llm_retry_runtime::Budget::new();
    static LIMITER: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("alloc");
    static ADAPTIVE: llm_retry_runtime::Adaptive = llm_retry_runtime::Adaptive::new();
    // No runtime at all: an unthrottled limiter needs no timer, and a full budget no CAS.
    let once = || {
        poll_once(async {
            let mut call =
                llm_retry_runtime::call::Call::new(&SITE).budget(&BUDGET).limiter(&LIMITER).adaptive(&ADAPTIVE);
            loop {
                if let core::ops::ControlFlow::Break(r) = call.attempt(async { Ok::<u32, ApiError>(1) }).await {
                    return r;
                }
            }
        })
    };
    assert_eq!(once().unwrap(), 1);
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            assert_eq!(once().unwrap(), 1);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    assert_eq!(BUDGET.tokens(), 5.0);
    assert_eq!(LIMITER.rate(), None);
}

#[test]
fn a_path_with_retries_allocates_nothing_but_its_errors() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let run = || {
        rt.block_on(async {
            let mut n = 0u32;
            POLICY
                .call()
                .site(&SITE)
                .retry(|| {
                    n += 1;
                    let k = n;
                    async move { if k < 4 { Err(ApiError::from_status(503)) } else { Ok(k) } }
                })
                .await
        })
    };
    assert_eq!(run().unwrap(), 4); // warms up the timer wheel and the thread's RNG
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            assert_eq!(run().unwrap(), 4);
        }
    });
    // An `ApiError` is one box (so that `Result<T, ApiError>` stays small); the 300 errors the
    // bodies return are all that is allocated: the engine adds nothing.
    let errors = allocation_counter::measure(|| {
        for _ in 0..300 {
            drop(std::hint::black_box(ApiError::from_status(503)));
        }
    });
    assert_eq!(errors.count_total, 300, "{errors:?}");
    assert_eq!(info.count_total, errors.count_total, "{info:?}");
}

/// The attribute's form for a body that needs no wrapping: the fn runs the body and
/// `Call::settle_at` settles it, for a call built by `$call` at `$site`. A success allocates
/// nothing; a retry allocates its error and the boxed sleep of its `Pause`, and nothing else.
macro_rules! check_paused_form {
    ($site:ident, $call:expr) => {{
        use core::ops::ControlFlow;
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let run = |failures: u32| {
            rt.block_on(async {
                let mut call = $call;
                let mut n = 0;
                loop {
                    n += 1;
                    let k = n;
                    let result =
                        async move { if k <= failures { Err(ApiError::from_status(503)) } else { Ok(k) } }.await;
                    match call.settle_at(&$site, result) {
                        ControlFlow::Break(r) => return r,
                        ControlFlow::Continue(pause) => pause.await,
                    }
                }
            })
        };
        // Registers the site and this thread's stats block; warms up the timer wheel and the RNG.
        assert_eq!(run(0).unwrap(), 1);
        assert_eq!(run(3).unwrap(), 4);
        let success = allocation_counter::measure(|| {
            for _ in 0..1000 {
                assert_eq!(run(0).unwrap(), 1);
            }
        });
        assert_eq!(success.count_total, 0, "{success:?}");
        let retries = allocation_counter::measure(|| {
            for _ in 0..100 {
                assert_eq!(run(3).unwrap(), 4);
            }
        });
        // 300 errors (one box each) and 300 pauses (one boxed sleep each).
        assert_eq!(retries.count_total, 600, "{retries:?}");
        let stats = $site.stats();
        assert_eq!((stats.calls, stats.successes, stats.first_try_successes), (1102, 1102, 1001));
        assert_eq!((stats.attempts, stats.retries), (1001 + 101 * 4, 303));
    }};
}

/// With no hooks, a first-try success takes `settle_at`'s inline path.
#[test]
fn the_paused_form_allocates_only_errors_and_one_box_per_pause() {
    static PAUSED: Site = Site::new("alloc::settle_paused", POLICY);
    check_paused_form!(PAUSED, llm_retry_runtime::call::Call::new(&PAUSED));
}

/// With `validate`, every success is checked first, through the decision path.
#[test]
fn the_validated_paused_form_allocates_only_errors_and_one_box_per_pause() {
    static VALIDATED: Site = Site::new("alloc::paused_validated", POLICY);
    check_paused_form!(VALIDATED, llm_retry_runtime::call::Call::new(&VALIDATED).validate(validate));
}
