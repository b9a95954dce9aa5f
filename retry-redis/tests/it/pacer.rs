//! The shared pacer against a real redis-server: spacing, pauses, refusals, tokens, leases,
//! heartbeats, learning, TTLs and a corrupted state.

use crate::common::{Window, ask, assert_after, assert_spaced, configured, go_rate, keys, server, store, timed};
use llm_retry_runtime::store::{Admission, Report, Store, Tuning};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

#[tokio::test]
async fn a_configured_rate_spaces_admissions() {
    let Some(server) = server("a_configured_rate_spaces_admissions") else { return };
    let store = store(&server).await;
    let a = ask("openai", 1, configured(100.0));
    let mut times = Vec::new();
    for _ in 0..5 {
        times.push(timed(&store, &a).await);
    }
    assert_eq!(times[0].admission.wait(), Duration::ZERO);
    for (k, t) in times.iter().enumerate() {
        assert_spaced(&times[0], t, 10 * MS * u32::try_from(k).unwrap());
        assert_eq!(t.admission, Admission::Go { wait: t.admission.wait(), lease: None, rate: Some(100.0), fleet: 1 });
    }
}

#[tokio::test]
async fn a_throttles_pause_holds_another_connections_admissions() {
    let Some(server) = server("a_throttles_pause_holds_another_connections_admissions") else { return };
    let (one, other) = (store(&server).await, store(&server).await);
    let tuning = configured(1000.0);
    one.admit(&ask("e", 1, tuning)).await.unwrap();
    let (r, throttled) = Window::of(one.report("e", Report::Throttle { retry_after: Some(150 * MS), tuning })).await;
    r.unwrap();
    let held = timed(&other, &ask("e", 2, tuning)).await;
    assert_after(&held, &throttled, 150 * MS);
    // A configured rate is given, not learned: the throttle pauses but does not cut it.
    assert_eq!(go_rate(held.admission), Some(1000.0));
    // The next one goes a request's interval after the pause, not with it.
    let next = timed(&other, &ask("e", 2, tuning)).await;
    assert_spaced(&held, &next, MS);
}

#[tokio::test]
async fn a_deadline_refusal_reserves_nothing() {
    let Some(server) = server("a_deadline_refusal_reserves_nothing") else { return };
    let store = store(&server).await;
    let tuning = configured(10.0);
    let first = timed(&store, &ask("e", 1, tuning)).await;
    assert_eq!(first.admission.wait(), Duration::ZERO);
    let hurried = ask("e", 1, tuning);
    let hurried = llm_retry_runtime::store::Ask { max_wait: Some(50 * MS), ..hurried };
    let refused = timed(&store, &hurried).await;
    assert!(matches!(refused.admission, Admission::Refused { .. }), "{refused:?}");
    assert_spaced(&first, &refused, 100 * MS);
    // The place was not taken: the next ask goes one interval after the first, not two.
    let next = timed(&store, &ask("e", 1, tuning)).await;
    assert_spaced(&first, &next, 100 * MS);
    // A wait within the bound is granted.
    let patient = llm_retry_runtime::store::Ask { max_wait: Some(500 * MS), ..ask("e", 1, tuning) };
    assert!(matches!(store.admit(&patient).await.unwrap(), Admission::Go { .. }));
}

#[tokio::test]
async fn tokens_are_paced_and_corrected() {
    let Some(server) = server("tokens_are_paced_and_corrected") else { return };
    let store = store(&server).await;
    // 1,000 tokens a second: a bucket of 60,000, full at first. Requests are not the limit.
    let mut tuning = configured(100_000.0);
    tuning.tokens_per_second = Some(1000.0);
    let tokens = |n: f64| llm_retry_runtime::store::Ask { tokens: n, ..ask("e", 1, tuning) };
    let full = timed(&store, &tokens(60_000.0)).await;
    assert_eq!(full.admission.wait(), Duration::ZERO);
    let a = timed(&store, &tokens(10.0)).await;
    let b = timed(&store, &tokens(10.0)).await;
    assert_spaced(&full, &a, 10 * MS);
    assert_spaced(&full, &b, 20 * MS);
    // The second one used 20 tokens fewer than it declared: they go to the next.
    store.report("e", Report::Tokens { delta: -20.0 }).await.unwrap();
    let c = timed(&store, &tokens(10.0)).await;
    assert_spaced(&full, &c, 10 * MS);
    // And 50 more than declared are taken from those behind.
    store.report("e", Report::Tokens { delta: 50.0 }).await.unwrap();
    let d = timed(&store, &tokens(10.0)).await;
    assert_spaced(&full, &d, 70 * MS);
    // More than the bucket holds waits for a full bucket, not for ever.
    let huge = timed(&store, &tokens(1e12)).await;
    assert!(huge.admission.wait() <= Duration::from_secs(61), "{huge:?}");
}

#[tokio::test]
async fn limits_from_headers_set_the_rates_and_what_remains() {
    let Some(server) = server("limits_from_headers_set_the_rates_and_what_remains") else { return };
    let store = store(&server).await;
    let tuning = Tuning::DEFAULT;
    let limits = Report::Limits {
        requests_per_second: Some(20.0),
        tokens_per_second: Some(100.0),
        remaining_requests: Some(5),
        remaining_tokens: Some(0),
        pause: None,
        tuning,
    };
    let (r, told) = Window::of(store.report("e", limits)).await;
    r.unwrap();
    // No tokens remain: 50 tokens at 100 a second take half a second.
    let t = llm_retry_runtime::store::Ask { tokens: 50.0, ..ask("e", 1, tuning) };
    let first = timed(&store, &t).await;
    assert_after(&first, &told, 500 * MS);
    assert_eq!(go_rate(first.admission), Some(20.0));
    // The request rate from the headers spaces requests: one that declares no tokens goes
    // a request's interval (50 ms) after the first's request slot, not behind its tokens.
    let second = store.admit(&ask("e", 1, tuning)).await.unwrap().wait();
    assert!(second > 45 * MS && second <= 50 * MS, "{second:?}");
    // "Nothing remains, reset in 1 s" holds everyone.
    let pause = Report::Limits {
        requests_per_second: None,
        tokens_per_second: None,
        remaining_requests: Some(0),
        remaining_tokens: None,
        pause: Some(Duration::from_secs(1)),
        tuning,
    };
    let (r, paused) = Window::of(store.report("e", pause)).await;
    r.unwrap();
    assert_after(&timed(&store, &ask("e", 1, tuning)).await, &paused, Duration::from_secs(1));
    // A configured rate is the ceiling of what headers say.
    let capped = Report::Limits {
        requests_per_second: Some(500.0),
        tokens_per_second: None,
        remaining_requests: None,
        remaining_tokens: None,
        pause: None,
        tuning: configured(40.0),
    };
    store.report("e", capped).await.unwrap();
    assert_eq!(go_rate(store.admit(&ask("e", 1, configured(40.0))).await.unwrap()), Some(40.0));
}

#[tokio::test]
async fn leases_cap_what_is_in_flight() {
    let Some(server) = server("leases_cap_what_is_in_flight") else { return };
    let store = store(&server).await;
    let mut tuning = configured(100_000.0);
    tuning.max_in_flight = Some(2);
    let leased = llm_retry_runtime::store::Ask { lease: Some(300 * MS), ..ask("e", 1, tuning) };
    let lease = |a: Admission| match a {
        Admission::Go { lease: Some(l), .. } => l,
        other => panic!("a lease: {other:?}"),
    };
    let first = lease(store.admit(&leased).await.unwrap());
    let second = lease(store.admit(&leased).await.unwrap());
    assert_ne!(first, second);
    let Admission::Busy { retry_in, fleet } = store.admit(&leased).await.unwrap() else { panic!("busy") };
    assert!(retry_in >= MS && retry_in <= 25 * MS, "{retry_in:?}");
    assert_eq!(fleet, 1);
    // Busy reserved nothing: the request bucket is where it was.
    store.report("e", Report::Release { lease: first }).await.unwrap();
    let third = lease(store.admit(&leased).await.unwrap());
    assert!(matches!(store.admit(&leased).await.unwrap(), Admission::Busy { .. }));
    // Releasing twice, or a lease that expired, is harmless.
    store.report("e", Report::Release { lease: first }).await.unwrap();
    // A dead worker's leases expire: after their 300 ms both places are free again.
    tokio::time::sleep(310 * MS).await;
    let _ = (second, third);
    lease(store.admit(&leased).await.unwrap());
    lease(store.admit(&leased).await.unwrap());
    assert!(matches!(store.admit(&leased).await.unwrap(), Admission::Busy { .. }));
    // Without a cap, leases are taken and never refused, and the expired ones do not pile up.
    let uncapped = llm_retry_runtime::store::Ask { lease: Some(50 * MS), ..ask("free", 1, configured(100_000.0)) };
    for _ in 0..3 {
        lease(store.admit(&uncapped).await.unwrap());
    }
    tokio::time::sleep(60 * MS).await;
    lease(store.admit(&uncapped).await.unwrap());
    assert_eq!(server.command(&["ZCARD", "{llm-retry:free}:l"]).unwrap(), "1");
}

#[tokio::test]
async fn heartbeats_count_the_fleet_and_forget_the_dead() {
    let Some(server) = server("heartbeats_count_the_fleet_and_forget_the_dead") else { return };
    let store = store(&server).await;
    let tuning = configured(100_000.0);
    let fleet = |a: Admission| match a {
        Admission::Go { fleet, .. } => fleet,
        other => panic!("a go: {other:?}"),
    };
    assert_eq!(fleet(store.admit(&ask("e", 1, tuning)).await.unwrap()), 1);
    assert_eq!(fleet(store.admit(&ask("e", 2, tuning)).await.unwrap()), 2);
    assert_eq!(fleet(store.admit(&ask("e", 3, tuning)).await.unwrap()), 3);
    assert_eq!(fleet(store.admit(&ask("e", 1, tuning)).await.unwrap()), 3);
    // Worker 2 was last heard from six seconds ago (on the server's clock): it has left.
    let time = server.command(&["TIME"]).unwrap();
    let mut parts = time.lines().map(|p| p.parse::<i64>().unwrap());
    let now = parts.next().unwrap() * 1_000_000 + parts.next().unwrap();
    server.command(&["ZADD", "{llm-retry:e}:w", &(now - 6_000_000).to_string(), "2"]).unwrap();
    assert_eq!(fleet(store.admit(&ask("e", 1, tuning)).await.unwrap()), 2);
    // Endpoints are counted apart.
    assert_eq!(fleet(store.admit(&ask("other", 1, tuning)).await.unwrap()), 1);
}

#[tokio::test]
async fn the_first_throttle_while_probing_sets_a_learned_rate_and_one_overshoot_cuts_once() {
    let Some(server) = server("the_first_throttle_while_probing_sets_a_learned_rate") else { return };
    let store = store(&server).await;
    let tuning = Tuning::DEFAULT;
    // Nothing known: probing, and no rate to tell.
    for _ in 0..5 {
        assert_eq!(go_rate(store.admit(&ask("e", 1, tuning)).await.unwrap()), None);
    }
    // Five admissions over well under the hold: a guess of 5 / 0.5 s = 10/s, cut by beta.
    let throttle = Report::Throttle { retry_after: None, tuning };
    let (r, first_cut) = Window::of(store.report("e", throttle)).await;
    r.unwrap();
    // A guess climbs as probing does, doubling every half second from the cut: 8 * 4^t.
    let probed = |w: &Window, rate: f64| {
        let (least, most) = first_cut.before(w);
        let bounds = (8.0 * 4f64.powf(least.as_secs_f64()), 8.0 * 4f64.powf(most.as_secs_f64()));
        assert!(rate >= bounds.0 * 0.999 && rate <= bounds.1 * 1.001, "{rate} outside {bounds:?}");
    };
    let (a, asked) = Window::of(store.admit(&ask("e", 1, tuning))).await;
    let learned = go_rate(a.unwrap()).expect("a learned rate");
    probed(&asked, learned);
    // More throttles of the same overshoot (within 0.5 s) cut nothing more.
    store.report("e", throttle).await.unwrap();
    store.report("e", throttle).await.unwrap();
    let (a, asked) = Window::of(store.admit(&ask("e", 1, tuning))).await;
    probed(&asked, go_rate(a.unwrap()).unwrap());
    // Past the hold a throttle cuts again, from the rate in force (not yet settled: a second
    // of admissions is needed to weigh what was admitted).
    tokio::time::sleep(Duration::from_millis(520)).await;
    let (a, asked) = Window::of(store.admit(&ask("e", 1, tuning))).await;
    let climbed = go_rate(a.unwrap()).unwrap();
    probed(&asked, climbed);
    assert!(climbed > 16.0, "{climbed}");
    store.report("e", throttle).await.unwrap();
    let cut = go_rate(store.admit(&ask("e", 1, tuning)).await.unwrap()).unwrap();
    assert!(cut >= 0.8 * climbed && cut < 0.9 * climbed, "{climbed} cut to {cut}");
}

#[tokio::test]
async fn a_throttle_with_retry_after_starts_the_climb_when_sending_does() {
    let Some(server) = server("a_throttle_with_retry_after_starts_the_climb_when_sending_does") else { return };
    let store = store(&server).await;
    let tuning = Tuning::DEFAULT;
    store.admit(&ask("e", 1, tuning)).await.unwrap();
    let (r, throttled) = Window::of(store.report("e", Report::Throttle { retry_after: Some(200 * MS), tuning })).await;
    r.unwrap();
    assert_after(&timed(&store, &ask("e", 1, tuning)).await, &throttled, 200 * MS);
    // One admission over no time: 1 / 0.5 s = 2/s, cut to 1.6/s; still 1.6 after 200 ms of
    // pause, because the climb starts when the pause ends (from the throttle, it would be
    // 1.6 * 4^0.21 = 2.14 by now).
    tokio::time::sleep(210 * MS).await;
    let rate = go_rate(store.admit(&ask("e", 1, tuning)).await.unwrap()).unwrap();
    assert!((1.6..1.95).contains(&rate), "{rate}");
}

#[tokio::test]
async fn every_key_has_a_ttl() {
    let Some(server) = server("every_key_has_a_ttl") else { return };
    let store = store(&server).await;
    let mut tuning = configured(1000.0);
    tuning.max_in_flight = Some(4);
    tuning.tokens_per_second = Some(100.0);
    let a = llm_retry_runtime::store::Ask { lease: Some(Duration::from_secs(90)), tokens: 5.0, ..ask("e", 1, tuning) };
    store.admit(&a).await.unwrap();
    store.report("e", Report::Throttle { retry_after: Some(MS), tuning }).await.unwrap();
    store.report("e", Report::Tokens { delta: 3.0 }).await.unwrap();
    let rules = llm_retry_runtime::store::BreakerRules::DEFAULT;
    let failure = llm_retry_runtime::store::BreakerOp::Record {
        breaker: "gpt",
        rules,
        outcome: llm_retry_runtime::store::Outcome::Failure,
        probe: false,
    };
    store.breaker(failure).await.unwrap();
    assert_eq!(
        keys(&server),
        ["{llm-retry:b:gpt}", "{llm-retry:e}:l", "{llm-retry:e}:n", "{llm-retry:e}:p", "{llm-retry:e}:w"]
    );
    for key in keys(&server) {
        let ttl: i64 = server.command(&["PTTL", &key]).unwrap().parse().unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    let ttl = |key: &str| server.command(&["PTTL", key]).unwrap().parse::<i64>().unwrap();
    assert!(ttl("{llm-retry:e}:w") <= 60_000);
    assert!(ttl("{llm-retry:e}:l") >= 90_000, "leases live as long as the longest lease");
    assert!((590_000..=660_000).contains(&ttl("{llm-retry:e}:p")));
}

#[tokio::test]
async fn garbage_in_the_state_is_no_state() {
    let Some(server) = server("garbage_in_the_state_is_no_state") else { return };
    let store = store(&server).await;
    let p = "{llm-retry:e}:p";
    #[rustfmt::skip]
    let garbage = [
        "HSET", p, "src", "banana", "rate", "nan", "tat", "inf", "pause", "1e400", "t0", "-5", "cut_at", "{}",
        "cut_rate", "-inf", "w_max", "0x", "probing", "7", "sv", "NaN", "sa", "", "sn", "1e999", "ss", " ",
        "hv", "\u{0}", "ha", "9999999999999999999999", "trate", "-1", "ttat", "1e300",
    ];
    server.command(&garbage).unwrap();
    // Keys of the wrong type are dropped, not an error on every call.
    server.command(&["SET", "{llm-retry:e}:w", "not a sorted set"]).unwrap();
    server.command(&["SET", "{llm-retry:e}:n", "not a number"]).unwrap();
    // A live lease (it expires in the year 2255) under a counter that is garbage.
    server.command(&["ZADD", "{llm-retry:e}:l", "9000000000000000", "99"]).unwrap();
    let mut tuning = configured(100.0);
    tuning.max_in_flight = Some(3);
    let a = llm_retry_runtime::store::Ask { lease: Some(Duration::from_secs(1)), ..ask("e", 1, tuning) };
    let first = timed(&store, &a).await;
    let Admission::Go { wait, lease: Some(lease), rate: Some(rate), fleet: 1 } = first.admission else {
        panic!("a go: {first:?}")
    };
    assert_eq!((wait, rate), (Duration::ZERO, 100.0));
    assert!(lease > 99, "a corrupted counter starts above the leases held: {lease}");
    let second = timed(&store, &ask("e", 1, tuning)).await;
    assert_spaced(&first, &second, 10 * MS);
    // The learning side too.
    server.command(&["HSET", p, "src", "3", "w_max", "zzz", "cut_rate", "[]", "cut_at", "nope"]).unwrap();
    store.report("e", Report::Throttle { retry_after: None, tuning: Tuning::DEFAULT }).await.unwrap();
    assert!(matches!(store.admit(&ask("e", 1, Tuning::DEFAULT)).await.unwrap(), Admission::Go { .. }));
    // A breaker's hash as well.
    server.command(&["HSET", "{llm-retry:b:x}", "st", "open?", "upto", "soon", "claim", "x", "cons", "-"]).unwrap();
    let rules = llm_retry_runtime::store::BreakerRules::DEFAULT;
    let answer = store.breaker(llm_retry_runtime::store::BreakerOp::Admit { breaker: "x", rules }).await.unwrap();
    assert!(answer.admit && !answer.probe);
    server.command(&["SET", "{llm-retry:b:y}", "a string"]).unwrap();
    let answer = store.breaker(llm_retry_runtime::store::BreakerOp::Admit { breaker: "y", rules }).await.unwrap();
    assert!(answer.admit);
}

#[tokio::test]
async fn the_round_trip_of_one_admission() {
    let Some(server) = server("the_round_trip_of_one_admission") else { return };
    let store = store(&server).await;
    let a = ask("e", 1, configured(1_000_000.0));
    store.admit(&a).await.unwrap();
    let mut times = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let t = Instant::now();
        store.admit(&a).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let (median, p99) = (times[500], times[990]);
    println!("one admission's round trip over 1,000 asks on loopback: median {median:?}, p99 {p99:?}");
    assert!(median < 5 * MS, "median {median:?}");
}

#[tokio::test]
async fn slots_reserved_ahead_follow_the_probe_as_it_climbs() {
    let Some(server) = server("slots_reserved_ahead_follow_the_probe_as_it_climbs") else { return };
    let store = store(&server).await;
    // Probing from 10/s, doubling every half second: 40 callers asking at once. Spaced at the
    // rate of the moment they asked, the last would wait 4 s; spaced at the rate in force at
    // each slot's own time, the 40 slots take the integral of 10 * 4^t: about 1.36 s.
    let mut tuning = Tuning::DEFAULT;
    tuning.initial_rate = 10.0;
    let mut last = Duration::ZERO;
    for _ in 0..40 {
        last = store.admit(&ask("e", 1, tuning)).await.unwrap().wait();
    }
    assert!(last > Duration::from_millis(1_200) && last < Duration::from_millis(1_450), "{last:?}");
}

#[tokio::test]
async fn a_spell_without_admissions_does_not_read_as_a_rate_of_zero() {
    let Some(server) = server("a_spell_without_admissions_does_not_read_as_a_rate_of_zero") else { return };
    let store = store(&server).await;
    let tuning = Tuning::DEFAULT;
    store.admit(&ask("e", 1, tuning)).await.unwrap();
    // The fleet sent 100 a second until five seconds ago (smoothed over more than a second),
    // then nothing reached this store: it was down, or everyone was paused.
    let key = "{llm-retry:e}:p";
    let now_us = {
        let t = server.command(&["TIME"]).unwrap();
        let mut parts = t.split_whitespace().map(|p| p.parse::<u64>().unwrap());
        parts.next().unwrap() * 1_000_000 + parts.next().unwrap()
    };
    let sa = (now_us - 5_000_000).to_string();
    let ss = (now_us - 20_000_000).to_string();
    server.command(&["HSET", key, "sv", "100", "sa", &sa, "ss", &ss, "sn", "2000"]).unwrap();
    // A throttle reported late (Redis ran it once it answered again) cuts from what the fleet
    // was sending, not from the smoothing decayed over the silence to nothing.
    store.report("e", Report::Throttle { retry_after: None, tuning }).await.unwrap();
    let learned = go_rate(store.admit(&ask("e", 1, tuning)).await.unwrap()).unwrap();
    assert!((75.0..=101.0).contains(&learned), "cut from about 100/s: {learned}");
    // And the first admission after the silence keeps the smoothed rate, plus itself.
    let sv: f64 = server.command(&["HGET", key, "sv"]).unwrap().trim().parse().unwrap();
    assert!(sv > 100.0, "{sv}");
}

#[tokio::test]
async fn abandoned_slots_go_back_to_the_schedule() {
    let Some(server) = server("abandoned_slots_go_back_to_the_schedule") else { return };
    let store = store(&server).await;
    let tuning = configured(100.0);
    // Five slots, 10 ms apart: the next would be 50 ms after the first.
    let first = timed(&store, &ask("e", 1, tuning)).await;
    for _ in 0..4 {
        store.admit(&ask("e", 1, tuning)).await.unwrap();
    }
    // Three of them will not be used: the next goes 20 ms after the first, not 50.
    store.report("e", Report::Abandon { slots: 3, tuning }).await.unwrap();
    let next = timed(&store, &ask("e", 1, tuning)).await;
    assert_spaced(&first, &next, 20 * MS);
    // Never before now: giving back more than are ahead leaves the next one due at once.
    store.report("e", Report::Abandon { slots: 1_000, tuning }).await.unwrap();
    assert_eq!(store.admit(&ask("e", 1, tuning)).await.unwrap().wait(), Duration::ZERO);
}
