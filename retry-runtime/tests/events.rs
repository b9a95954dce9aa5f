//! The default tracing events: one WARN per retry and one per give-up, with structured
//! fields, and nothing from the error's text, headers or credentials.

use llm_retry_runtime::{ApiError, Backoff, Budget, Jitter, Policy, RetryExt, stats::Site};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

#[derive(Debug, Clone, Default)]
struct Captured {
    level: String,
    target: String,
    fields: BTreeMap<String, String>,
}

struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct V<'a>(&'a mut BTreeMap<String, String>);
        impl Visit for V<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_string(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.0.insert(field.name().to_string(), value.to_string());
            }
        }
        let mut c = Captured {
            level: event.metadata().level().to_string(),
            target: event.metadata().target().to_string(),
            ..Default::default()
        };
        event.record(&mut V(&mut c.fields));
        self.0.lock().unwrap().push(c);
    }
}

const POLICY: Policy = match Policy::builder()
    .max_attempts(3)
    .backoff(Backoff::Fixed { delay: Duration::from_millis(250) })
    .jitter(Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!(),
};
static SITE: Site = Site::new("events::chat", POLICY);

/// Runs `call` to its end in paused time, on this thread, with a subscriber that keeps every
/// event: its result, and the events.
fn captured<T>(call: impl std::future::Future<Output = T>) -> (T, Vec<Captured>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Registry::default().with(Capture(events.clone()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let out = tracing::subscriber::with_default(subscriber, || rt.block_on(call));
    let events = events.lock().unwrap().clone();
    (out, events)
}

const SECRET: &str = "sk-proj-SECRETSECRETSECRET1234";

#[test]
fn one_warn_per_retry_and_one_on_giving_up() {
    let (out, events) = captured(POLICY.call().site(&SITE).retry(|| async {
        let body = format!(r#"{{"error":{{"message":"Server error, key {SECRET}","type":"server_error"}}}}"#);
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {SECRET}").parse().unwrap());
        Err::<(), _>(ApiError::from_response(503, &headers, body.as_bytes()))
    }));
    assert!(out.is_err());
    assert_eq!(events.len(), 3, "{events:#?}");
    for (i, e) in events[..2].iter().enumerate() {
        assert_eq!(e.level, "WARN");
        assert_eq!(e.target, "llm_retry");
        assert_eq!(e.fields["message"], "retrying");
        assert_eq!(e.fields["site"], "events::chat");
        assert_eq!(e.fields["attempt"], (i + 1).to_string());
        assert_eq!(e.fields["kind"], "Server");
        assert_eq!(e.fields["status"], "503");
        assert_eq!(e.fields["delay_ms"], "250");
        assert_eq!(e.fields["source"], "backoff");
    }
    let last = &events[2];
    assert_eq!(last.fields["message"], "giving up");
    assert_eq!(last.fields["reason"], "attempts exhausted");
    assert_eq!(last.fields["attempt"], "3");
    let all = format!("{events:?}");
    assert!(!all.contains("SECRET"), "a credential reached the logs: {all}");
    assert!(!all.contains("Server error"), "error text reached the logs: {all}");
}

#[test]
fn giving_up_on_a_non_retryable_error_says_why() {
    let (_, events) = captured(POLICY.retry(|| async { Err::<(), _>(ApiError::from_status(401)) }));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].fields["reason"], "non-retryable");
    assert_eq!(events[0].fields["kind"], "Auth");
    assert!(events[0].fields["why"].contains("API key"));
}

#[test]
fn an_empty_budget_gives_up_saying_so() {
    static EMPTY: Budget = match Budget::builder().burst(1).ratio(0.0).build() {
        Ok(b) => b,
        Err(_) => panic!(),
    };
    let (out, events) =
        captured(POLICY.call().budget(&EMPTY).retry(|| async { Err::<(), _>(ApiError::from_status(503)) }));
    assert!(out.is_err());
    // One retry from the budget's one token, then the give-up, two attempts before the policy's 3.
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0].fields["message"], "retrying");
    assert_eq!(events[1].fields["message"], "giving up");
    assert_eq!(events[1].fields["reason"], "budget exhausted");
    assert_eq!(events[1].fields["attempt"], "2");
}
