//! Adaptive delay: the multiplier rises with the recent error rate, falls as successes come
//! back and fades with time; the engine scales back-off delays by it (not Retry-After hints).

use llm_retry_runtime::{Adaptive, ApiError, Backoff, Jitter, Policy, RetryEvent, RetryExt, http::RetryAfter};
use std::sync::Mutex;
use std::time::Duration;

const FIXED_1S: Policy = match Policy::builder()
    .max_attempts(2)
    .backoff(Backoff::Fixed { delay: Duration::from_secs(1) })
    .jitter(Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!(),
};

fn leak() -> &'static Adaptive {
    Box::leak(Box::new(Adaptive::new()))
}

/// Fills the 128-outcome ring with `errors` failures among `128` attempts, spread evenly.
fn load(a: &Adaptive, errors: usize) {
    for i in 0..128 {
        if i * errors / 128 != (i + 1) * errors / 128 {
            a.record_error();
        } else {
            a.record_success();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_multiplier_rises_with_the_error_rate() {
    let mut last = 0.0;
    for (errors, expected) in [(0, 1.0), (16, 1.25), (32, 1.5), (64, 2.0), (96, 2.5), (128, 3.0)] {
        let a = leak();
        a.record_error(); // so that successes count from here on
        load(a, errors);
        let m = a.multiplier();
        println!("{:>5.1}% errors: delay x{m:.2}", errors as f64 / 1.28);
        assert!((m - expected).abs() < 1e-9, "{errors} errors: {m}");
        assert!(m >= last);
        last = m;
    }
}

#[tokio::test(start_paused = true)]
async fn the_multiplier_decays_when_errors_stop() {
    let a = leak();
    load(a, 128);
    assert_eq!(a.multiplier(), 3.0);
    // Successes push failures out of the window...
    let mut last = a.multiplier();
    for _ in 0..8 {
        for _ in 0..16 {
            a.record_success();
        }
        let m = a.multiplier();
        assert!(m < last, "{m} >= {last}");
        last = m;
    }
    assert_eq!(last, 1.0);
    // ...and with no traffic at all, errors fade over the window.
    let b = leak();
    load(b, 128);
    let mut last = b.multiplier();
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(60)).await;
        let m = b.multiplier();
        assert!(m < last, "{m} >= {last}");
        last = m;
    }
    assert_eq!(last, 1.0);
}

#[tokio::test(start_paused = true)]
async fn the_engine_scales_backoff_delays_but_not_retry_after() {
    let a = leak();
    load(a, 64); // 50%: twice the delay
    let delays = Mutex::new(Vec::new());
    let notify = |ev: &RetryEvent<'_, ApiError>| delays.lock().unwrap().push(ev.delay);
    let _: Result<(), ApiError> =
        FIXED_1S.call().adaptive(a).notify(notify).retry(|| async { Err(ApiError::from_status(503)) }).await;
    let hint = ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(5)));
    let _: Result<(), ApiError> =
        FIXED_1S.call().adaptive(a).notify(notify).retry(|| async { Err(hint.clone()) }).await;
    let delays = delays.into_inner().unwrap();
    // The recorded failures nudge the rate from 64/128 to 65/128 before the first delay.
    assert!((delays[0].as_secs_f64() - (1.0 + 2.0 * 65.0 / 128.0)).abs() < 1e-6, "{delays:?}");
    assert!(delays[1] >= Duration::from_secs(5) && delays[1] < Duration::from_millis(5_500), "{delays:?}");
}

#[test]
fn many_tasks_and_threads_share_one_window() {
    static SHARED: Adaptive = Adaptive::new();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    let hammer = |error: bool| {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                rt.spawn(async move {
                    for _ in 0..50 {
                        if error { SHARED.record_error() } else { SHARED.record_success() }
                    }
                })
            })
            .collect();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
                    let _guard = rt.enter();
                    for _ in 0..500 {
                        if error { SHARED.record_error() } else { SHARED.record_success() }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
    };
    rt.block_on(async {}); // the runtime's clock for the errors recorded on its workers
    hammer(true);
    assert_eq!(SHARED.error_rate(), 1.0);
    hammer(false);
    assert_eq!(SHARED.error_rate(), 0.0);
}
