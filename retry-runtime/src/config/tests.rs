use super::*;
use crate::__private::{Call, ControlFlow, Site};
use crate::{ApiError, Policy, RetryExt};
use std::time::Duration;
use tokio::time::Instant;

#[test]
fn endpoint_sections_are_checked_by_their_builders() {
    let c = from_toml_str(
        "[limiter]\nmax_rate = 20\nmin_rate = 1\n[budget]\nratio = 0.5\nburst = 7\n[adaptive]\nwindow = \"1m\"",
    )
    .unwrap();
    assert_eq!(c.budget.unwrap().build().unwrap().burst(), 7);
    assert_eq!(c.adaptive.unwrap().build().unwrap().window(), Duration::from_secs(60));
    assert_eq!(crate::Limiter::from_config(c.limiter.unwrap().config("x").unwrap()).name(), "x");
    for (text, path, allowed) in [
        ("[budget]\nratio = 1.5", "budget.ratio", "0.0..=1.0"),
        ("[budget]\nburst = 0", "budget.burst", "1..=1000000"),
        ("[budget]\nburst = -3", "budget.burst", "4294967295"),
        ("[limiter]\nbeta = 1.0", "limiter.beta", "strictly between 0 and 1"),
        ("[limiter]\nmin_rate = 10\nmax_rate = 5", "limiter.min_rate", "min_rate <= max_rate"),
        ("[limiter]\nmax_rate = inf", "limiter.max_rate", "finite"),
        ("[limiter]\nscale = nan", "limiter.scale", "above zero"),
        ("[adaptive]\nwindow = \"0s\"", "adaptive.window", "at most a day"),
        ("[adaptive]\nmax_multiplier = 0.5", "adaptive.max_multiplier", "1.0..=100.0"),
        ("[limiter]\nmax_rat = 5", "limiter.max_rat", "did you mean `max_rate`?"),
        ("limitr = 1", "limitr", "did you mean `limiter`?"),
    ] {
        let e = from_toml_str(text).unwrap_err();
        assert_eq!(e.path(), path, "{text}: {e}");
        assert!(e.message().contains(allowed), "{text}: {e}");
    }
}

#[test]
fn the_environment_reads_the_same_keys_and_names_the_variable() {
    let vars = [
        ("LLM_RETRY_MAX", "5"),
        ("LLM_RETRY_BASE", "250ms"),
        ("LLM_RETRY_ON", "RateLimited, 503"),
        ("LLM_RETRY_RETRY_AFTER", "false"),
        ("LLM_RETRY_LIMITER_MAX_RATE", "50"),
        ("LLM_RETRY_RULE", r#"[{"on": "RateLimited", "max": 3}]"#),
        ("PATH", "/bin"),
    ];
    let c = from_env_vars("LLM_RETRY_", vars).unwrap();
    assert_eq!(c.policy.max_attempts(), 5);
    assert!(c.policy.retry_on().contains_status(503));
    assert!(!c.policy.respects_retry_after());
    assert!(c.limiter.is_some());
    assert_eq!(c.policy.rule_for(crate::ErrorKind::RateLimited, None).unwrap().1.attempt_limit(), Some(3));
    for (vars, path) in [
        (vec![("LLM_RETRY_MAX", "0")], "LLM_RETRY_MAX"),
        (vec![("LLM_RETRY_MAX", "lots")], "LLM_RETRY_MAX"),
        (vec![("LLM_RETRY_ON", "RateLimited,Auth")], "LLM_RETRY_ON[1]"),
        (vec![("LLM_RETRY_BUDGET_BURST", "0")], "LLM_RETRY_BUDGET_BURST"),
        (vec![("LLM_RETRY_MAXX", "3")], "LLM_RETRY_MAXX"),
        (vec![("LLM_RETRY_MAX", "3"), ("LLM_RETRY_RULE", r#"[{"on": 503, "max": 4}]"#)], "LLM_RETRY_RULE[0].max"),
        (vec![("LLM_RETRY_RULE", "max = 3")], "LLM_RETRY_RULE"),
    ] {
        let e = from_env_vars("LLM_RETRY", vars).unwrap_err();
        assert_eq!(e.path(), path, "{e}");
    }
    assert!(from_env_vars("", [("MAX", "3")]).is_err());
}

fn fixed(max: u32, delay_ms: u64) -> Policy {
    let text = format!("max = {max}\nbackoff = \"fixed\"\ndelay = \"{delay_ms}ms\"\njitter = \"none\"");
    from_toml_str(&text).unwrap().policy
}

/// A builder-API call under a loaded policy obeys its `max` and backoff, not the fallback's.
#[tokio::test(start_paused = true)]
async fn a_builder_call_obeys_the_loaded_policy() {
    static CHAT: PolicySlot = PolicySlot::new("tests::builder", Policy::DEFAULT);
    CHAT.set(fixed(3, 700)).unwrap();
    let start = Instant::now();
    let mut attempts = 0;
    let out: Result<(), ApiError> = CHAT
        .get()
        .retry(|| {
            attempts += 1;
            async { Err(ApiError::from_status(503)) }
        })
        .await;
    assert!(out.is_err());
    assert_eq!(attempts, 3);
    assert_eq!(start.elapsed(), Duration::from_millis(1400));
}

/// The attribute's loop, as `policy = PATH` will expand: the site's `const` policy counts,
/// the loaded one decides, through `settle_at`.
#[tokio::test(start_paused = true)]
async fn a_private_call_settles_under_the_loaded_policy_not_the_sites() {
    static SITE: Site = Site::new("tests::private_loaded", Policy::DEFAULT);
    static CHAT: PolicySlot = PolicySlot::new("tests::private", Policy::DEFAULT);
    CHAT.set(fixed(2, 300)).unwrap();
    let start = Instant::now();
    let mut attempts = 0u32;
    let mut call = Call::at_site(&SITE, CHAT.get());
    let out: Result<(), ApiError> = loop {
        attempts += 1;
        let r = Err(ApiError::from_status(503));
        match call.settle_at(&SITE, r) {
            ControlFlow::Break(r) => break r,
            ControlFlow::Continue(p) => p.await,
        }
    };
    assert!(out.is_err());
    assert_eq!(attempts, 2, "the loaded max, not the site's 4");
    assert_eq!(start.elapsed(), Duration::from_millis(300), "the loaded fixed delay");
    let stats = SITE.stats();
    assert_eq!((stats.calls, stats.attempts, stats.retries), (1, 2, 1));

    // A first-try success is counted at the site, on its fast path.
    let mut call = Call::at_site(&SITE, CHAT.get());
    assert!(matches!(call.settle_at(&SITE, Ok::<_, ApiError>(7)), ControlFlow::Break(Ok(7))));
    assert_eq!(SITE.stats().first_try_successes, 1);
}

#[test]
fn a_float_written_as_json_reads_back_as_the_same_f64() {
    // Found by the loader-against-builder proptest on another seed: without serde_json's
    // `float_roundtrip`, this multiplier read back one unit in the last place lower.
    let multiplier = 3.746_435_375_299_540_3_f64;
    let text = format!(r#"{{"backoff": "exponential", "multiplier": {multiplier}}}"#);
    let c = from_json_str(&text).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("3.7464353752995403"), "{json}");
    assert_eq!(format!("{:?}", from_json_str(&json).unwrap()), format!("{c:?}"));
}

#[test]
fn an_endpoint_config_writes_and_reads_back() {
    let text = "max = 6\nbase = \"1.5s\"\non = [\"Timeout\", 502]\n[[rule]]\non = 502\nmax = 2\n[limiter]\nbeta = 0.5\n[adaptive]\nwindow = \"90s\"";
    let c = from_toml_str(text).unwrap();
    let written = toml::to_string(&c).unwrap();
    let back = from_toml_str(&written).unwrap();
    assert_eq!(format!("{back:?}"), format!("{c:?}"), "{written}");
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(format!("{:?}", from_json_str(&json).unwrap()), format!("{c:?}"));
}
