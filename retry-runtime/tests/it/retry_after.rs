//! Retry-After and the other "come back later" headers: a table of values, garbage
//! included, against a fixed clock, and a property test over arbitrary input.

use http::{HeaderMap, HeaderValue};
use llm_retry_runtime::{http::RetryAfter, http::classify_response_at, http::should_retry_header};
use proptest::prelude::*;
use std::time::{Duration, SystemTime};

/// Wed, 21 Oct 2015 07:26:40 GMT.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_400)
}

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn ms(m: u64) -> Option<Duration> {
    Some(Duration::from_millis(m))
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_bytes(value).unwrap());
    }
    h
}

#[test]
fn retry_after_values() {
    let table: &[(&str, Option<Duration>)] = &[
        ("1", secs(1)),
        ("120", secs(120)),
        (" 7 ", secs(7)),
        ("0.5", ms(500)),
        ("1.25", ms(1250)),
        ("3600", secs(3600)), // above the policy cap but kept: the engine gives up on it
        ("604800", Some(WEEK)),
        ("604801", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", secs(80)),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", secs(80)), // RFC 850
        ("Wed Oct 21 07:28:00 2015", secs(80)),          // asctime
        ("Wed, 21 Oct 2015 07:26:40 GMT", None),         // now: nothing to wait for
        ("Wed, 21 Oct 2015 07:00:00 GMT", None),         // in the past
        ("Wed, 28 Oct 2015 07:26:40 GMT", Some(WEEK)),
        ("Wed, 28 Oct 2015 07:26:41 GMT", None), // a week and a second away
        ("Fri, 31 Dec 9999 23:59:59 GMT", None),
        ("Sat, 01 Jan 100000 00:00:00 GMT", None),
        ("Wed, 21 Oct 2015", None),
        ("", None),
        ("   ", None),
        ("0", None),
        ("0.0", None),
        ("0.0000000001", None), // rounds to zero nanoseconds
        ("-1", None),
        ("-0.5", None),
        ("+1", None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-inf", None),
        ("infinity", None),
        ("1e400", None),
        ("1e3", None),
        ("99999999999999999999999", None),
        ("18446744073709551615", None),
        ("1.2.3", None),
        ("1s", None),
        ("soon", None),
    ];
    for (value, want) in table {
        let got = RetryAfter::parse(value, now()).and_then(|h| h.resolve(now()));
        assert_eq!(got, *want, "Retry-After: {value:?}");
        let via_headers = RetryAfter::from_headers(&headers(&[("retry-after", value.as_bytes())]), now());
        assert_eq!(via_headers.and_then(|h| h.resolve(now())), *want, "header {value:?}");
    }
}

#[test]
fn dates_are_kept_as_dates_and_resolved_later() {
    let hint = RetryAfter::parse("Wed, 21 Oct 2015 07:28:00 GMT", now()).unwrap();
    assert!(matches!(hint, RetryAfter::At(_)));
    // Resolved against the engine's clock, not the one used at parse time.
    assert_eq!(hint.resolve(now() + Duration::from_secs(30)), secs(50));
    // A date that was in the past for the parser's clock is still handed to the engine.
    let past = RetryAfter::parse("Wed, 21 Oct 2015 07:00:00 GMT", now());
    assert!(matches!(past, Some(RetryAfter::At(_))));
}

#[test]
fn retry_after_ms_values() {
    let table: &[(&str, Option<Duration>)] = &[
        ("250", ms(250)),
        ("1", ms(1)),
        ("1.5", Some(Duration::from_micros(1500))),
        ("604800000", Some(WEEK)),
        ("604800001", None),
        ("0", None),
        ("-5", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        ("1e400", None),
        ("99999999999999999999999", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None), // dates are not milliseconds
    ];
    for (value, want) in table {
        let got = RetryAfter::parse_ms(value).and_then(|h| h.resolve(now()));
        assert_eq!(got, *want, "retry-after-ms: {value:?}");
    }
}

#[test]
fn reset_durations() {
    let table: &[(&str, Option<Duration>)] = &[
        ("1s", secs(1)),
        ("6m0s", secs(360)),
        ("20ms", ms(20)),
        ("1h2m3.5s", ms(3_723_500)),
        ("0.5s", ms(500)),
        ("2m59.56s", ms(179_560)),
        ("17ms", ms(17)),
        ("1h", secs(3600)),
        ("168h", Some(WEEK)),
        ("169h", None),
        ("7", secs(7)),
        ("0s", None),
        ("0ms0s", None),
        ("-1s", None),
        ("1d", None),
        ("1 s", None),
        ("s", None),
        ("", None),
        ("nan", None),
        ("infs", None),
        ("1e400s", None),
        ("99999999999999999999999s", None),
    ];
    for (value, want) in table {
        let got = RetryAfter::parse_reset(value).and_then(|h| h.resolve(now()));
        assert_eq!(got, *want, "reset: {value:?}");
    }
}

#[test]
fn precedence_between_headers() {
    let resolve = |h: &HeaderMap| RetryAfter::from_headers(h, now()).and_then(|r| r.resolve(now()));
    // retry-after-ms wins when both are valid...
    assert_eq!(resolve(&headers(&[("retry-after", b"3"), ("retry-after-ms", b"1500")])), ms(1500));
    // ...but an invalid one does not hide a valid other.
    assert_eq!(resolve(&headers(&[("retry-after", b"3"), ("retry-after-ms", b"nan")])), secs(3));
    assert_eq!(resolve(&headers(&[("retry-after", b"-3"), ("retry-after-ms", b"1500")])), ms(1500));
    assert_eq!(resolve(&headers(&[("retry-after", b"x"), ("retry-after-ms", b"y")])), None);
    // The reset headers are not Retry-After.
    assert_eq!(resolve(&headers(&[("x-ratelimit-reset-requests", b"1s")])), None);

    let reset = |h: &HeaderMap| RetryAfter::from_rate_limit_headers(h).and_then(|r| r.resolve(now()));
    assert_eq!(
        reset(&headers(&[("x-ratelimit-reset-requests", b"6m0s"), ("x-ratelimit-reset-tokens", b"20ms")])),
        ms(20)
    );
    assert_eq!(reset(&headers(&[("x-ratelimit-reset-requests", b"2s"), ("x-ratelimit-reset-tokens", b"9s")])), secs(2));
    assert_eq!(
        reset(&headers(&[("x-ratelimit-reset-requests", b"junk"), ("x-ratelimit-reset-tokens", b"9s")])),
        secs(9)
    );
    assert_eq!(reset(&headers(&[("x-ratelimit-reset-tokens", b"0s")])), None);
    assert_eq!(reset(&HeaderMap::new()), None);
}

#[test]
fn classify_response_uses_reset_headers_only_on_429_and_only_as_a_fallback() {
    let h = headers(&[("x-ratelimit-reset-requests", b"6m0s"), ("x-ratelimit-reset-tokens", b"1s")]);
    let hint = |status, h: &HeaderMap| classify_response_at(status, h, None, now()).retry_after;
    assert_eq!(hint(429, &h).and_then(|r| r.resolve(now())), secs(1));
    assert_eq!(hint(503, &h), None);
    assert_eq!(hint(200, &h), None);

    let mut with_retry_after = h.clone();
    with_retry_after.insert("retry-after", HeaderValue::from_static("4"));
    assert_eq!(hint(429, &with_retry_after).and_then(|r| r.resolve(now())), secs(4));
    // Retry-After applies to any status.
    assert_eq!(hint(503, &with_retry_after).and_then(|r| r.resolve(now())), secs(4));
    // An unusable Retry-After falls through to the reset headers.
    with_retry_after.insert("retry-after", HeaderValue::from_static("-4"));
    assert_eq!(hint(429, &with_retry_after).and_then(|r| r.resolve(now())), secs(1));
}

#[test]
fn non_utf8_and_repeated_headers() {
    let h = headers(&[("retry-after", b"\xff\xfe"), ("retry-after-ms", b"\x80"), ("x-should-retry", b"tr\xffue")]);
    assert_eq!(RetryAfter::from_headers(&h, now()), None);
    assert_eq!(should_retry_header(&h), None);
    // A microsecond sign is not visible ASCII but is valid UTF-8.
    let micro = headers(&[("x-ratelimit-reset-tokens", "500µs".as_bytes())]);
    assert_eq!(RetryAfter::from_rate_limit_headers(&micro), Some(RetryAfter::Delay(Duration::from_micros(500))));
    // The first of repeated values is the one read.
    let repeated = headers(&[("retry-after", b"2"), ("retry-after", b"9")]);
    assert_eq!(RetryAfter::from_headers(&repeated, now()), Some(RetryAfter::Delay(Duration::from_secs(2))));
}

#[test]
fn should_retry_values() {
    let table: &[(&[u8], Option<bool>)] = &[
        (b"true", Some(true)),
        (b"false", Some(false)),
        (b"TRUE", Some(true)),
        (b" False ", Some(false)),
        (b"1", None),
        (b"yes", None),
        (b"", None),
    ];
    for (value, want) in table {
        assert_eq!(should_retry_header(&headers(&[("x-should-retry", value)])), *want, "{value:?}");
    }
    assert_eq!(should_retry_header(&HeaderMap::new()), None);
}

/// `None`, or a positive delay of at most a week from `now()`.
fn sane(hint: Option<RetryAfter>) -> Result<(), TestCaseError> {
    if let Some(hint) = hint {
        if let Some(d) = hint.resolve(now()) {
            prop_assert!(!d.is_zero() && d <= RetryAfter::MAX_HINT, "{hint:?} -> {d:?}");
        }
        if let RetryAfter::Delay(d) = hint {
            prop_assert!(!d.is_zero() && d <= RetryAfter::MAX_HINT, "{hint:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        sane(RetryAfter::parse(&s, now()))?;
        sane(RetryAfter::parse_ms(&s))?;
        sane(RetryAfter::parse_reset(&s))?;
    }

    #[test]
    fn number_like_strings_never_panic(s in "[-+ ]?[0-9.eEinfa]{0,30}[hmsuµn]{0,2}([0-9.]{0,5}[hms]){0,3}") {
        sane(RetryAfter::parse(&s, now()))?;
        sane(RetryAfter::parse_ms(&s))?;
        sane(RetryAfter::parse_reset(&s))?;
    }

    #[test]
    fn date_like_strings_never_panic(
        day in 0u32..40, month in prop::sample::select(vec!["Jan", "Feb", "Oct", "Dec", "Xyz"]),
        year in 0u32..200_000, h in 0u32..30, m in 0u32..70, sec in 0u32..70,
    ) {
        let s = format!("Wed, {day:02} {month} {year} {h:02}:{m:02}:{sec:02} GMT");
        sane(RetryAfter::parse(&s, now()))?;
    }

    #[test]
    fn arbitrary_header_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..40),
        name in prop::sample::select(vec![
            "retry-after", "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "x-should-retry",
        ]),
        status in 100u16..600,
    ) {
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let mut h = HeaderMap::new();
            h.insert(name, value);
            sane(RetryAfter::from_headers(&h, now()))?;
            sane(RetryAfter::from_rate_limit_headers(&h))?;
            let _ = should_retry_header(&h);
            sane(classify_response_at(status, &h, None, now()).retry_after)?;
        }
    }
}

/// Hints written in error messages, as each provider's documentation shows them.
#[test]
fn hints_written_in_messages() {
    let table: &[(&str, Option<Duration>)] = &[
        // OpenAI and Groq.
        ("Please try again in 6s.", secs(6)),
        ("Please try again in 1.5s.", ms(1500)),
        ("Please try again in 20ms.", ms(20)),
        ("Please try again in 1m30s.", secs(90)),
        ("Please try again in 2m59.56s.", ms(179_560)),
        ("Please try again in 7m12s. Visit https://console.groq.com/docs/rate-limits", secs(432)),
        ("Please try again in 1h2m3.5s", ms(3_723_500)),
        // Azure OpenAI.
        ("Please retry after 6 seconds.", secs(6)),
        ("Please retry after 1 second.", secs(1)),
        ("Please retry after 6 second(s).", secs(6)),
        ("Rate limit is exceeded. Try again in 6 seconds.", secs(6)),
        ("Rate limit is exceeded. Try again in 1 seconds.", secs(1)),
        ("retry after 500 milliseconds", ms(500)),
        ("retry after 2 minutes", secs(120)),
        // Gemini.
        ("Please retry in 35.338443s.", Some(Duration::from_nanos(35_338_443_000))),
        // The first usable phrase wins; unusable ones are skipped.
        ("try again in a moment, or retry after 3s", secs(3)),
        ("RETRY AFTER 4 SECONDS", secs(4)),
        // No hint.
        ("Please try again later.", None),
        ("try again in 5", None),
        ("try again in 5 parsecs", None),
        ("try again in 0s", None),
        ("try again in 0.0000000001s", None),
        ("try again in -5s", None),
        ("try again in 1e3s", None),
        ("try again in .5s", None),
        ("try again in 168h0m0.000000001s", None),
        ("try again in 99999999999999999999h", None),
        ("pretry after 6 seconds", None),
        ("try again in6s", None),
        ("", None),
    ];
    for (text, want) in table {
        let got = RetryAfter::from_message(text);
        assert_eq!(got, want.map(RetryAfter::Delay), "{text:?}");
    }
    assert_eq!(RetryAfter::from_message("try again in 168h"), Some(RetryAfter::Delay(WEEK)));
    // Only the first 4 KiB are read.
    let late = format!("{}try again in 6s", "x ".repeat(4096));
    assert_eq!(RetryAfter::from_message(&late), None);
}

/// Hostile messages (thousands of phrases, 100,000-digit numbers) give no hint: each phrase reads
/// a bounded number of bytes after it, and only the first 4 KiB are searched.
#[test]
fn hostile_messages_are_bounded() {
    let phrases = "try again in ".repeat(10_000);
    assert_eq!(RetryAfter::from_message(&phrases), None);
    let digits = format!("retry after {}", "9".repeat(100_000));
    assert_eq!(RetryAfter::from_message(&digits), None);
    let fraction = format!("retry after 1.{}s", "9".repeat(100_000));
    assert_eq!(RetryAfter::from_message(&fraction), None);
}

/// `total_ms` milliseconds as each documented format writes them. The compact form
/// splits into minutes and seconds; the word forms use whole seconds or milliseconds.
fn hint_formats(total_ms: u64) -> Vec<String> {
    let (secs, millis) = (total_ms / 1000, total_ms % 1000);
    let (mins, rem_secs) = (secs / 60, secs % 60);
    let mut out = vec![
        // OpenAI / Groq: "6.5s", "20ms", "1m30.5s".
        format!("Please try again in {secs}.{millis:03}s."),
        format!("Please try again in {total_ms}ms."),
        // Gemini's message: "Please retry in 35.338s."
        format!("Please retry in {secs}.{millis:03}s."),
    ];
    if mins > 0 {
        out.push(format!("Please try again in {mins}m{rem_secs}.{millis:03}s."));
    }
    if millis == 0 {
        let unit = if secs == 1 { "second" } else { "seconds" };
        out.push(format!("Please retry after {secs} {unit}."));
        out.push(format!("Please retry after {secs} second(s)."));
        out.push(format!("Rate limit is exceeded. Try again in {secs} seconds."));
        out.push(format!("Please try again in {secs}s."));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Every documented hint format, with random values, parses exactly to the millisecond, in a
    /// message and (for the seconds form) as Gemini's `RetryInfo.retryDelay`.
    #[test]
    fn documented_hint_formats_parse_exactly(
        total_ms in 1u64..=RetryAfter::MAX_HINT.as_millis() as u64,
        whole_seconds in any::<bool>(),
        prefix in "[a-zA-Z ,.:]{0,40}",
    ) {
        let total_ms = if whole_seconds { (total_ms / 1000).max(1) * 1000 } else { total_ms };
        let want = Some(RetryAfter::Delay(Duration::from_millis(total_ms)));
        for text in hint_formats(total_ms) {
            let text = format!("{prefix} {text}");
            prop_assert_eq!(RetryAfter::from_message(&text), want, "{:?}", text);
        }
        let body = format!(
            r#"{{"error":{{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{}.{:03}s"}}]}}}}"#,
            total_ms / 1000, total_ms % 1000
        );
        let c = classify_response_at(429, &HeaderMap::new(), Some(body.as_bytes()), now());
        prop_assert_eq!(c.retry_after, want);
    }

    /// Any text: a hint is a non-zero delay of at most `MAX_HINT`.
    #[test]
    fn arbitrary_messages_give_sane_hints(s in any::<String>(), tail in "(try again in|retry after|retry in) [0-9.]{0,12}[ a-z()]{0,12}") {
        sane(RetryAfter::from_message(&s))?;
        sane(RetryAfter::from_message(&format!("{s}{tail}")))?;
    }
}
