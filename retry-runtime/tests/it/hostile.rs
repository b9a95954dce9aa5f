//! Hostile input never panics, end to end through the engine.
//!
//! The parsers' own properties are in `retry_after.rs` and `classify.rs`, the backoff arithmetic's
//! in `backoff_props.rs`; here arbitrary header values and bodies go through a whole call in paused
//! time, and the time actually slept is checked. The fuzz targets' bodies (`fuzz/src/lib.rs`) run
//! here too, over the committed seed corpus, so every CI run replays it on stable.

use http::{HeaderMap, HeaderName, HeaderValue};
use llm_retry_runtime::{
    ApiError, Backoff, Classify, ErrorKind, GiveUp, Jitter, Policy, RetryEvent, RetryExt, call::DelaySource,
    stats::Site,
};
use proptest::prelude::*;
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz_bodies;

/// A paused current-thread runtime: sleeps cost no wall time and are exact.
fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

fn fixed_now() -> SystemTime {
    fuzz_bodies::now()
}

const CAP: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_millis(1);
/// The most the engine adds on top of a Retry-After hint.
const HINT_JITTER: Duration = Duration::from_secs(1);

/// Two attempts at most; the first fails as the input says, the second succeeds.
const TWO: Policy = match Policy::builder().max_attempts(2).max_retry_after(CAP).wall_clock(fixed_now).build() {
    Ok(p) => p,
    Err(_) => panic!(),
};
static HEADERS_SITE: Site = Site::new("hostile::headers", TWO);
static BODIES_SITE: Site = Site::new("hostile::bodies", TWO);

/// What one call did: its result, the gap between its two attempts (if there were two), and the
/// delay and source its notify hook was told.
struct Run {
    out: Result<u8, ApiError>,
    attempts: u32,
    gap: Option<Duration>,
    told: Option<(Duration, DelaySource)>,
}

/// Runs one call at `site` whose first attempt fails with `first` and whose second succeeds.
fn run(site: &'static Site, first: ApiError) -> Run {
    let rt = paused();
    let starts = RefCell::new(Vec::new());
    let told = Cell::new(None);
    let first = RefCell::new(Some(first));
    let out = rt.block_on(
        TWO.call().site(site).notify(|ev: &RetryEvent<'_, ApiError>| told.set(Some((ev.delay, ev.source)))).retry(
            || {
                starts.borrow_mut().push(Instant::now());
                let next = first.borrow_mut().take();
                async move {
                    match next {
                        Some(e) => Err(e),
                        None => Ok(7),
                    }
                }
            },
        ),
    );
    let starts = starts.into_inner();
    Run { out, attempts: starts.len() as u32, gap: starts.get(1).map(|s| *s - starts[0]), told: told.get() }
}

/// Checks a 429 carrying `headers`: retried after at most the cap plus jitter, exactly as the
/// notify hook was told, or given up at once.
fn check_429(headers: &HeaderMap) -> Result<(), TestCaseError> {
    let error = ApiError::from_response_at(429, headers, b"", fixed_now());
    let hint = error.retry_after().and_then(|h| h.resolve(fixed_now()));
    let said_no = error.should_retry() == Some(false);
    let r = run(&HEADERS_SITE, error);
    match (r.out, r.gap, r.told) {
        (Ok(7), Some(gap), Some((delay, source))) => {
            prop_assert_eq!(r.attempts, 2);
            prop_assert!(!said_no, "retried although x-should-retry: false");
            // Paused time: the sleep is exactly the planned delay, rounded up to the timer's tick.
            prop_assert!(gap >= delay && gap <= delay + TICK, "slept {:?} for a delay of {:?}", gap, delay);
            match source {
                DelaySource::RetryAfter => {
                    let h = hint.expect("a Retry-After delay needs a hint");
                    prop_assert!(h <= CAP);
                    prop_assert!(delay >= h && delay <= h + HINT_JITTER, "{:?} for a hint of {:?}", delay, h);
                }
                DelaySource::Backoff => prop_assert!(delay <= Backoff::DEFAULT_EXPONENTIAL.cap()),
            }
        }
        (Err(e), None, None) => {
            prop_assert_eq!(r.attempts, 1);
            prop_assert_eq!(e.status(), Some(429));
            prop_assert!(said_no || hint.is_some_and(|h| h > CAP), "gave up on a 429 with hint {:?}", hint);
        }
        (out, gap, told) => prop_assert!(false, "inconsistent run: {:?} {:?} {:?}", out, gap, told),
    }
    Ok(())
}

/// Header values as providers (and broken proxies) send them.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<String>().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
        "[-+ ]?[0-9]{0,25}(\\.[0-9]{0,12})?([eE][-+]?[0-9]{1,4})?".prop_map(String::into_bytes),
        "([0-9]{1,4}(\\.[0-9]{1,3})?(h|m|s|ms|us|µs|ns)){1,4}".prop_map(String::into_bytes),
        "(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} (Jan|Feb|Dec|Foo) [0-9]{1,6} [0-9]{2}:[0-9]{2}:[0-9]{2} (GMT|UTC)"
            .prop_map(String::into_bytes),
        prop::sample::select(vec![
            "",
            " ",
            "inf",
            "-inf",
            "infinity",
            "nan",
            "NaN",
            "1e309",
            "-0",
            "0",
            "0.0001",
            "18446744073709551616",
            "604800",
            "604801",
            "30",
            "31",
            "true",
            "false",
            "TRUE",
        ])
        .prop_map(|s: &str| s.as_bytes().to_vec()),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let pair = (0..fuzz_bodies::HINT_HEADERS.len(), value());
    prop::collection::vec(pair, 0..6).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (i, v) in pairs {
            if let Ok(v) = HeaderValue::from_bytes(&v) {
                h.append(HeaderName::from_static(fuzz_bodies::HINT_HEADERS[i]), v);
            }
        }
        h
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let text = || any::<String>();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (text(), text(), text()).prop_map(|(m, t, c)| {
            serde_json::json!({"error": {"message": m, "type": t, "code": c}}).to_string().into_bytes()
        }),
        (text(), prop::sample::select(TOKENS.to_vec())).prop_map(|(m, t)| {
            serde_json::json!({"type": "error", "error": {"type": t, "message": m}}).to_string().into_bytes()
        }),
        (text(), prop::sample::select(TOKENS.to_vec())).prop_map(|(m, c)| {
            serde_json::json!({"error": {"message": m, "type": "invalid_request_error", "code": c}})
                .to_string()
                .into_bytes()
        }),
        (1usize..400).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
    ]
}

/// Provider `type`/`code` tokens, so that the strategies reach every branch of the refinement.
const TOKENS: &[&str] = &[
    "insufficient_quota",
    "context_length_exceeded",
    "rate_limit_exceeded",
    "rate_limit_error",
    "overloaded_error",
    "server_error",
    "api_error",
    "invalid_api_key",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "content_filter",
    "invalid_request_error",
    "billing_error",
    "",
];

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        any::<u16>(),
        400u16..600,
        prop::sample::select(vec![0u16, 200, 401, 408, 429, 500, 503, 529, 999, 1000])
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_rate_limit_headers_on_a_429_retry_within_the_cap_or_give_up(h in headers()) {
        check_429(&h)?;
    }

    #[test]
    fn any_error_body_is_retried_or_returned_as_its_kind_says(status in status(), body in body()) {
        let error = ApiError::from_response_at(status, &HeaderMap::new(), &body, fixed_now());
        let kind = error.kind();
        let class = error.classify();
        let retryable = TWO.retry_on().matches(class.kind, class.status);
        let _ = (error.to_string(), format!("{error:?}"));
        let r = run(&BODIES_SITE, error);
        if kind.never_retryable_reason().is_some() {
            prop_assert!(!retryable, "{:?} is retryable", kind);
        }
        if !retryable {
            prop_assert_eq!(r.attempts, 1, "{:?} was retried", kind);
            prop_assert_eq!(r.out.unwrap_err().kind(), kind);
        } else {
            prop_assert_eq!(r.attempts, 2, "{:?} was not retried", kind);
            prop_assert!(r.out.is_ok());
            prop_assert!(r.gap.unwrap() <= Backoff::DEFAULT_EXPONENTIAL.cap() + TICK);
        }
    }

    /// Policy arithmetic through the engine: any valid policy, a call that always fails, and every
    /// sleep is at most the cap (one tick for the timer's rounding); the number of attempts is the
    /// policy's maximum. `backoff_props.rs` covers attempt numbers up to `u32::MAX` without the engine.
    #[test]
    fn any_valid_policy_sleeps_within_its_cap(
        max in 1u32..12,
        initial in 0u64..5_000,
        extra in 0u64..60_000,
        multiplier in 1.0f64..1e6,
        pick in 0usize..5,
        jitter in 0usize..5,
        factor in 0.0f64..10.0,
        seed in any::<u64>(),
    ) {
        let initial = Duration::from_millis(initial);
        let cap = initial + Duration::from_millis(extra);
        let backoff = [
            Backoff::None,
            Backoff::Fixed { delay: initial },
            Backoff::Linear { base: initial, increment: initial, max_delay: cap },
            Backoff::Exponential { base: initial, multiplier, min_delay: Duration::ZERO, max_delay: cap },
            Backoff::Decorrelated { base: initial, max_delay: cap },
        ][pick];
        let jitter = [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated, Jitter::Proportional { factor }][jitter];
        let Ok(policy) = Policy::builder().max_attempts(max).backoff(backoff).jitter(jitter).build() else {
            return Ok(());
        };
        llm_retry_runtime::rng::seed_thread_rng(seed);
        let rt = paused();
        let starts = RefCell::new(Vec::new());
        let out: Result<(), ApiError> = rt.block_on(policy.call().retry(|| {
            starts.borrow_mut().push(Instant::now());
            async { Err(ApiError::from_status(503)) }
        }));
        prop_assert_eq!(out.unwrap_err().kind(), ErrorKind::Server);
        let starts = starts.into_inner();
        prop_assert_eq!(starts.len() as u32, max);
        for w in starts.windows(2) {
            prop_assert!(w[1] - w[0] <= backoff.cap() + TICK, "slept {:?} over the cap {:?}", w[1] - w[0], backoff.cap());
        }
    }
}

/// Named cases from real providers and broken proxies, each with the outcome it must have.
#[test]
fn real_world_hint_shapes_end_to_end() {
    let cases: &[(&[(&str, &str)], Duration)] = &[
        (&[("retry-after", "2")], Duration::from_secs(2)),
        (&[("retry-after", "0.25")], Duration::from_millis(250)),
        (&[("retry-after-ms", "150"), ("retry-after", "9")], Duration::from_millis(150)),
        (&[("x-ratelimit-reset-requests", "6m0s"), ("x-ratelimit-reset-tokens", "20ms")], Duration::from_millis(20)),
        (&[("retry-after", "Thu, 01 Jan 2026 00:00:05 GMT")], Duration::from_secs(5)),
    ];
    for (pairs, hint) in cases {
        let mut h = HeaderMap::new();
        for (n, v) in *pairs {
            h.append(HeaderName::from_static(n), HeaderValue::from_str(v).unwrap());
        }
        check_429(&h).unwrap();
        let r = run(&HEADERS_SITE, ApiError::from_response_at(429, &h, b"", fixed_now()));
        let (delay, source) = r.told.unwrap();
        let hint = *hint;
        assert_eq!(source, DelaySource::RetryAfter, "{pairs:?}");
        assert!(delay >= hint && delay <= hint + Duration::from_millis(10).max(hint / 10), "{pairs:?}: {delay:?}");
    }
    // Garbage falls back to the backoff; a hint over the cap gives up at once.
    for garbage in ["inf", "nan", "-1", "", "1e3", "18446744073709551616", "Sat, 01 Jan 100000 00:00:00 GMT"] {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_str(garbage).unwrap());
        let r = run(&HEADERS_SITE, ApiError::from_response_at(429, &h, b"", fixed_now()));
        assert_eq!(r.told.map(|t| t.1), Some(DelaySource::Backoff), "{garbage:?}");
    }
    // A site of its own: the header proptest above counts its give-ups at HEADERS_SITE too,
    // and may run at the same time.
    static TOO_LONG_SITE: Site = Site::new("hostile::too_long", TWO);
    for too_long in ["31", "3600", "Thu, 01 Jan 2026 01:00:00 GMT", "x"] {
        let mut h = HeaderMap::new();
        h.insert(if too_long == "x" { "x-ratelimit-reset-requests" } else { "retry-after" }, {
            HeaderValue::from_str(if too_long == "x" { "1h" } else { too_long }).unwrap()
        });
        let r = run(&TOO_LONG_SITE, ApiError::from_response_at(429, &h, b"", fixed_now()));
        assert_eq!(r.attempts, 1, "{too_long:?}");
    }
    assert_eq!(TOO_LONG_SITE.stats().gave_up(GiveUp::RetryAfterTooLong), 4);
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(out.len() >= 30, "the {target} seed corpus is missing");
    out
}

/// The fuzz targets' bodies over the committed seeds (`fuzz/seeds/`), on stable.
#[test]
fn the_fuzz_seed_corpus_replays_without_a_panic() {
    for (name, data) in seeds("retry_after") {
        let caught = std::panic::catch_unwind(|| fuzz_bodies::retry_after(&data));
        assert!(caught.is_ok(), "retry_after seed {name} ({:?}) panicked", String::from_utf8_lossy(&data));
    }
    for (name, data) in seeds("error_body") {
        let caught = std::panic::catch_unwind(|| fuzz_bodies::error_body(&data));
        assert!(caught.is_ok(), "error_body seed {name} panicked");
    }
    for (name, data) in seeds("body_hint") {
        let caught = std::panic::catch_unwind(|| fuzz_bodies::body_hint(&data));
        assert!(caught.is_ok(), "body_hint seed {name} ({:?}) panicked", String::from_utf8_lossy(&data));
    }
}

/// async-openai errors that quote a key (a provider echoing it, or a URL carrying it) reach
/// `ApiError`'s Display and Debug masked or stripped. The facade's `tests/secrets.rs` covers the
/// rest of the error types; the facade has no async-openai dependency of its own.
#[cfg(feature = "async-openai")]
#[tokio::test]
async fn async_openai_errors_keep_no_key() {
    use async_openai::error::{ApiError as OpenAiApiError, ApiErrorResponse, OpenAIError};
    const KEY: &str = "sk-proj-fakeKEYdoNOTuse9999888877776666";
    let echoed = OpenAIError::ApiError(ApiErrorResponse {
        status_code: reqwest::StatusCode::UNAUTHORIZED,
        api_error: OpenAiApiError {
            message: format!("Incorrect API key provided: {KEY}. Bearer {KEY}"),
            r#type: Some("invalid_request_error".into()),
            code: Some("invalid_api_key".into()),
            ..Default::default()
        },
    });
    // A refused connection to a URL with the key in its query string.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/chat/completions?api_key={KEY}", refused.local_addr().unwrap());
    drop(refused);
    let transport = OpenAIError::Reqwest(reqwest::Client::new().post(url).send().await.unwrap_err());
    for e in [echoed, transport] {
        let e = ApiError::from(e);
        let text = format!("{e} / {e:?} / {:?}", std::error::Error::source(&e));
        assert!(!text.contains("fakeKEYdoNOTuse"), "a key leaked: {text}");
    }
}
