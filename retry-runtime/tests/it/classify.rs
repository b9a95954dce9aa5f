//! Classification of HTTP responses and provider error bodies, `ApiError`, and the std,
//! tokio and reqwest impls.

use http::{HeaderMap, HeaderValue, StatusCode};
use llm_retry_runtime::{
    ApiError, Classify, ErrorKind, InvalidOutput, Timeout, http::MAX_BODY_BYTES, http::classify_response,
};
use proptest::prelude::*;
use std::time::Duration;

fn kind(status: u16, body: &str) -> ErrorKind {
    classify_response(status, &HeaderMap::new(), Some(body.as_bytes())).kind
}

fn openai(ty: &str, code: &str, message: &str) -> String {
    let code = if code.is_empty() { "null".to_string() } else { format!("{code:?}") };
    format!(r#"{{"error":{{"message":{message:?},"type":{ty:?},"param":null,"code":{code}}}}}"#)
}

fn anthropic(ty: &str, message: &str) -> String {
    format!(r#"{{"type":"error","error":{{"type":{ty:?},"message":{message:?}}}}}"#)
}

#[test]
fn every_status_without_a_body() {
    for status in 100..=599u16 {
        let c = classify_response(status, &HeaderMap::new(), None);
        assert_eq!(c.status, Some(status));
        assert_eq!(c.retry_after, None);
        assert_eq!(c.should_retry, None);
        let want = match status {
            400 | 422 => ErrorKind::BadRequest,
            401 | 403 => ErrorKind::Auth,
            // Payment Required means out of credits at every provider that sends it.
            402 => ErrorKind::QuotaExhausted,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::RequestTimeout,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::ContextLengthExceeded,
            429 => ErrorKind::RateLimited,
            // 529 is Anthropic's overloaded, 498 Groq's flex tier at capacity.
            498 | 529 => ErrorKind::Overloaded,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Other,
        };
        assert_eq!(c.kind, want, "{status}");
        // An empty or meaningless body changes nothing.
        assert_eq!(kind(status, ""), want, "{status} with empty body");
        assert_eq!(kind(status, "{}"), want, "{status} with {{}}");
        // The tuple impl agrees.
        if let Ok(code) = StatusCode::from_u16(status) {
            assert_eq!((code, &HeaderMap::new()).classify(), c, "{status}");
        }
    }
}

#[test]
fn openai_bodies() {
    let quota = "You exceeded your current quota, please check your plan and billing details.";
    let table = [
        (429, openai("insufficient_quota", "insufficient_quota", quota), ErrorKind::QuotaExhausted),
        (429, openai("insufficient_quota", "", quota), ErrorKind::QuotaExhausted),
        (429, openai("", "insufficient_quota", "x"), ErrorKind::QuotaExhausted),
        // A 429 whose message alone says the quota or spend limit is gone.
        (429, r#"{"error":{"message":"You exceeded your current quota"}}"#.into(), ErrorKind::QuotaExhausted),
        (429, r#"{"error":{"message":"Monthly spend limit reached"}}"#.into(), ErrorKind::QuotaExhausted),
        (429, r#"{"error":{"message":"Billing hard limit has been reached"}}"#.into(), ErrorKind::QuotaExhausted),
        (
            429,
            openai("requests", "rate_limit_exceeded", "Rate limit reached for gpt-4o on requests per min (RPM)"),
            ErrorKind::RateLimited,
        ),
        (429, openai("tokens", "rate_limit_exceeded", "see billing"), ErrorKind::RateLimited),
        // Azure's retryable 429 mentions a quota-increase link: still a rate limit.
        (
            429,
            r#"{"error":{"code":"429","message":"Requests have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 2 seconds. https://aka.ms/oai/quotaincrease"}}"#.into(),
            ErrorKind::RateLimited,
        ),
        (
            400,
            openai("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 8192 tokens"),
            ErrorKind::ContextLengthExceeded,
        ),
        (
            400,
            openai("invalid_request_error", "", "This model's maximum context length is 8192 tokens"),
            ErrorKind::ContextLengthExceeded,
        ),
        (400, openai("invalid_request_error", "content_filter", "filtered"), ErrorKind::ContentFiltered),
        (400, openai("invalid_request_error", "content_policy_violation", "no"), ErrorKind::ContentFiltered),
        (400, openai("invalid_request_error", "", "'messages' is required"), ErrorKind::BadRequest),
        // The generic type keeps a status that says something: Fireworks rate-limits with it.
        (429, openai("invalid_request_error", "", "Request rate limit exceeded"), ErrorKind::RateLimited),
        (500, openai("invalid_request_error", "", "upstream failed"), ErrorKind::Server),
        (405, openai("invalid_request_error", "", "Method not allowed"), ErrorKind::BadRequest),
        (422, openai("invalid_request_error", "invalid_value", "bad"), ErrorKind::BadRequest),
        (401, openai("invalid_request_error", "invalid_api_key", "Incorrect API key provided"), ErrorKind::Auth),
        (401, openai("invalid_request_error", "", "no key"), ErrorKind::Auth),
        (404, openai("invalid_request_error", "model_not_found", "The model `gpt-5x` does not exist"), ErrorKind::NotFound),
        (404, openai("invalid_request_error", "", "Invalid URL"), ErrorKind::NotFound),
        (500, openai("server_error", "", "The server had an error"), ErrorKind::Server),
        (503, openai("server_error", "", "The engine is currently overloaded"), ErrorKind::Overloaded),
        (503, openai("server_error", "", "Service unavailable"), ErrorKind::Server),
        // Body beats status: a 200 carrying an error object, a 500 carrying a rate limit.
        (200, openai("server_error", "", "oops"), ErrorKind::Server),
        (500, openai("tokens", "rate_limit_exceeded", "x"), ErrorKind::RateLimited),
        // Unknown codes and types leave the status in charge.
        (502, openai("weird", "also_weird", "?"), ErrorKind::Server),
        (429, openai("weird", "", "slow down"), ErrorKind::RateLimited),
        // Numeric codes and bare-string errors are read without fuss.
        (429, r#"{"error":{"code":429,"message":"Too many requests"}}"#.into(), ErrorKind::RateLimited),
        (500, r#"{"error":"internal"}"#.into(), ErrorKind::Server),
        (429, r#"[{"error":{"code":"insufficient_quota","message":"x"}}]"#.into(), ErrorKind::QuotaExhausted),
    ];
    for (status, body, want) in table {
        assert_eq!(kind(status, &body), want, "{status} {body}");
        assert_eq!(ApiError::from_response(status, &HeaderMap::new(), body.as_bytes()).kind(), want, "{status} {body}");
    }
}

#[test]
fn anthropic_bodies() {
    let table = [
        (529, anthropic("overloaded_error", "Overloaded"), ErrorKind::Overloaded),
        (503, anthropic("overloaded_error", "Overloaded"), ErrorKind::Overloaded),
        (500, anthropic("overloaded_error", "Overloaded"), ErrorKind::Overloaded),
        (
            429,
            anthropic("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
            ErrorKind::RateLimited,
        ),
        (500, anthropic("api_error", "Internal server error"), ErrorKind::Server),
        (401, anthropic("authentication_error", "invalid x-api-key"), ErrorKind::Auth),
        (403, anthropic("permission_error", "no access"), ErrorKind::Auth),
        (400, anthropic("invalid_request_error", "max_tokens: Field required"), ErrorKind::BadRequest),
        (
            400,
            anthropic("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            ErrorKind::ContextLengthExceeded,
        ),
        (400, anthropic("invalid_request_error", "input exceeds the context window"), ErrorKind::ContextLengthExceeded),
        (
            400,
            anthropic("invalid_request_error", "Your credit balance is too low to access the Anthropic API."),
            ErrorKind::QuotaExhausted,
        ),
        (404, anthropic("not_found_error", "model: claude-9"), ErrorKind::NotFound),
        (
            413,
            anthropic("request_too_large", "Request exceeds the maximum allowed number of bytes."),
            ErrorKind::ContextLengthExceeded,
        ),
    ];
    for (status, body, want) in table {
        assert_eq!(kind(status, &body), want, "{status} {body}");
    }
}

#[test]
fn plain_text_bodies() {
    assert_eq!(kind(503, "upstream overloaded"), ErrorKind::Overloaded);
    assert_eq!(kind(503, "Service Temporarily Overloaded"), ErrorKind::Overloaded);
    assert_eq!(kind(503, "<html>503 Service Unavailable</html>"), ErrorKind::Server);
    assert_eq!(kind(502, "overloaded"), ErrorKind::Server); // only a 503 (or 529) says overloaded
    assert_eq!(kind(429, "You exceeded your current quota"), ErrorKind::RateLimited); // not JSON: no refinement
    let e =
        ApiError::from_response(502, &HeaderMap::new(), b"upstream connect error or disconnect/reset before headers");
    assert_eq!(e.message(), Some("upstream connect error or disconnect/reset before headers"));
    let html = ApiError::from_response(502, &HeaderMap::new(), b"<html><body>Bad gateway</body></html>");
    assert_eq!(html.message(), None);
}

#[test]
fn huge_and_nested_bodies_fall_back_to_the_status() {
    // Deeper than serde_json's recursion limit.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(kind(429, &deep), ErrorKind::RateLimited);
    let deep_obj = format!(r#"{}"x"{}"#, r#"{"error":"#.repeat(5_000), "}".repeat(5_000));
    assert_eq!(kind(500, &deep_obj), ErrorKind::Server);
    // A valid error body past the cap is not read.
    let pad = "x".repeat(MAX_BODY_BYTES);
    let big = format!(r#"{{"error":{{"type":"insufficient_quota","message":"{pad}"}}}}"#);
    assert_eq!(kind(429, &big), ErrorKind::RateLimited);
    // Within the cap it is.
    let small = format!(r#"{{"error":{{"type":"insufficient_quota","message":"{}"}}}}"#, &pad[..1000]);
    assert_eq!(kind(429, &small), ErrorKind::QuotaExhausted);
    // A 503 whose 10 MB body says overloaded early on.
    let mut huge = b"overloaded ".to_vec();
    huge.resize(10 << 20, b'z');
    assert_eq!(classify_response(503, &HeaderMap::new(), Some(&huge)).kind, ErrorKind::Overloaded);
}

#[test]
fn headers_feed_the_classification() {
    let mut h = HeaderMap::new();
    h.insert("x-should-retry", HeaderValue::from_static("false"));
    h.insert("retry-after", HeaderValue::from_static("3"));
    let c = classify_response(500, &h, None);
    assert_eq!(c.should_retry, Some(false));
    assert_eq!(c.retry_after.and_then(|r| r.resolve(std::time::SystemTime::now())), Some(Duration::from_secs(3)));
    h.insert("x-should-retry", HeaderValue::from_static("true"));
    assert_eq!(classify_response(400, &h, None).should_retry, Some(true));
    assert_eq!((StatusCode::BAD_REQUEST, &h).classify().should_retry, Some(true));
    let e = ApiError::from_response(400, &h, b"");
    assert_eq!(e.should_retry(), Some(true));
    assert_eq!(e.classify().should_retry, Some(true));
    assert_eq!(e.classify().retry_after, e.retry_after());
}

#[test]
fn api_error_accessors_and_display() {
    let body = openai("insufficient_quota", "insufficient_quota", "You exceeded your current quota");
    let e = ApiError::from_response(429, &HeaderMap::new(), body.as_bytes());
    assert_eq!(e.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.message(), Some("You exceeded your current quota"));
    assert_eq!(e.provider_code(), Some("insufficient_quota"));
    assert_eq!(e.provider_type(), Some("insufficient_quota"));
    assert_eq!(
        e.to_string(),
        "QuotaExhausted (HTTP 429, insufficient_quota): You exceeded your current quota [not retryable: \
         the quota or spend limit is exhausted; it will not reset within a retry, raise the limit]"
    );
    // Every kind that retrying cannot fix says why; the others do not claim it.
    for k in ErrorKind::ALL {
        let shown = ApiError::new(k, "m").to_string();
        match k.never_retryable_reason() {
            Some(reason) => assert!(shown.contains(reason), "{shown}"),
            None => assert!(!shown.contains("not retryable"), "{shown}"),
        }
        assert!(shown.starts_with(k.name()), "{shown}");
    }
    assert_eq!(ApiError::from_status(503).to_string(), "Server (HTTP 503)");
    assert!(ApiError::from_status(503).kind().is_retryable_by_default());
    assert_eq!(ApiError::connection("reset").kind(), ErrorKind::Connection);
    assert_eq!(ApiError::timeout("slow").kind(), ErrorKind::Timeout);

    let clone = e.clone();
    assert_eq!(clone.to_string(), e.to_string());
}

#[test]
fn api_error_conversions() {
    let t = ApiError::from(Timeout::deadline(Duration::from_secs(9)));
    assert_eq!((t.kind(), t.status()), (ErrorKind::Timeout, None));
    assert!(t.to_string().contains("deadline"));
    let v = ApiError::from(InvalidOutput::new("empty text"));
    assert_eq!(v.kind(), ErrorKind::InvalidOutput);
    assert!(v.to_string().contains("empty text"));
    let io = ApiError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
    assert_eq!(io.kind(), ErrorKind::Connection);
    let io = ApiError::from(std::io::Error::from(Timeout::attempt(Duration::from_secs(1))));
    assert_eq!(io.kind(), ErrorKind::Timeout);
    let other = ApiError::from(std::io::Error::other("disk full"));
    assert_eq!(other.kind(), ErrorKind::Other);
    assert_eq!(other.message(), Some("disk full"));
    // As a std error, with Send + Sync + 'static for boxing.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(other);
    assert_eq!(boxed.to_string(), "Other: disk full");
}

const KEY: &str = "sk-proj-A1b2C3d4E5f6G7h8I9j0";
const ANT_KEY: &str = "sk-ant-api03-ZZZZZZZZZZZZZZZZ_yyyy";

#[test]
fn api_error_never_shows_secrets() {
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_str(&format!("Bearer {KEY}")).unwrap());
    h.insert("x-api-key", HeaderValue::from_str(ANT_KEY).unwrap());
    h.insert("set-cookie", HeaderValue::from_static("session=secret-cookie-value"));
    let bodies = [
        openai("invalid_request_error", "invalid_api_key", &format!("Incorrect API key provided: {KEY}.")),
        anthropic("authentication_error", &format!("invalid x-api-key {ANT_KEY}")),
        format!(
            r#"{{"error":{{"message":"Authorization: Bearer abcdefghijklmnopqrstuvwxyz","type":"{KEY}","code":"{ANT_KEY}"}}}}"#
        ),
        format!("plain text echoing {KEY} and Bearer {KEY}"),
        format!(r#"{{"request":{{"headers":{{"authorization":"Bearer {KEY}"}}}},"error":{{"message":"nope"}}}}"#),
    ];
    for body in &bodies {
        let e = ApiError::from_response(401, &h, body.as_bytes());
        for shown in [format!("{e}"), format!("{e:?}"), format!("{e:#?}")] {
            for secret in [KEY, ANT_KEY, "A1b2C3d4", "ZZZZZZZZ", "abcdefghijklmnop", "secret-cookie-value"] {
                assert!(!shown.contains(secret), "{secret} leaked: {shown}");
            }
            assert!(!shown.to_lowercase().contains("authorization:") || shown.contains("Bearer ***"), "{shown}");
        }
        assert_eq!(e.kind(), ErrorKind::Auth, "{body}");
    }
    // The masked key still says that a key was involved.
    let e = ApiError::from_response(401, &h, bodies[0].as_bytes());
    assert_eq!(e.message(), Some("Incorrect API key provided: sk-***."));
    // Constructors and conversions mask too.
    for e in [
        ApiError::connection(format!("proxy said {KEY}")),
        ApiError::from(std::io::Error::other(format!("key {KEY}"))),
        ApiError::from(InvalidOutput::new(format!("echoed {KEY}"))),
    ] {
        assert!(!format!("{e} {e:?}").contains("A1b2C3d4"), "{e:?}");
    }
}

#[test]
fn std_and_tokio_errors() {
    use std::io::{Error, ErrorKind as K};
    assert_eq!(Error::from(K::ConnectionRefused).classify().kind, ErrorKind::Connection);
    assert_eq!(Error::from(K::UnexpectedEof).classify().kind, ErrorKind::Connection);
    assert_eq!(Error::from(K::TimedOut).classify().kind, ErrorKind::Timeout);
    assert_eq!(Error::from(InvalidOutput::new("x")).classify().kind, ErrorKind::InvalidOutput);
    assert_eq!(Error::from(Timeout::attempt(Duration::from_secs(1))).classify().kind, ErrorKind::Timeout);
    assert_eq!(Error::from(K::PermissionDenied).classify().kind, ErrorKind::Other);
    assert_eq!(Timeout::attempt(Duration::from_secs(1)).classify().kind, ErrorKind::Timeout);
    assert_eq!(InvalidOutput::new("x").classify().kind, ErrorKind::InvalidOutput);
}

#[tokio::test(start_paused = true)]
async fn tokio_elapsed_is_a_timeout() {
    let elapsed = tokio::time::timeout(Duration::from_secs(5), std::future::pending::<()>()).await.unwrap_err();
    assert_eq!(elapsed.classify().kind, ErrorKind::Timeout);
}

#[cfg(feature = "reqwest")]
mod reqwest_errors {
    use super::*;

    fn response(status: u16, headers: &[(&'static str, &'static str)], body: Vec<u8>) -> reqwest::Response {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        reqwest::Response::from(b.body(body).unwrap())
    }

    #[test]
    fn status_errors() {
        for (status, want) in [(429, ErrorKind::RateLimited), (529, ErrorKind::Overloaded), (401, ErrorKind::Auth)] {
            let err = response(status, &[], vec![]).error_for_status().unwrap_err();
            let c = err.classify();
            assert_eq!((c.kind, c.status), (want, Some(status)));
            assert_eq!(ApiError::from(err).kind(), want);
        }
    }

    #[tokio::test]
    async fn builder_errors_are_other() {
        let err = reqwest::Client::new().get("not a url").send().await.unwrap_err();
        assert!(err.is_builder());
        assert_eq!(err.classify().kind, ErrorKind::Other);
    }

    #[tokio::test]
    async fn refused_connections_are_connection_errors_without_the_url() {
        // Bind then drop a listener: nothing listens on that port any more, so the connect
        // is refused at once (no waiting).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/v1/chat?key={KEY}");
        let err = reqwest::Client::new().get(&url).send().await.unwrap_err();
        assert_eq!(err.classify().kind, ErrorKind::Connection, "{err:?}");
        let e = ApiError::from(err);
        assert_eq!(e.kind(), ErrorKind::Connection);
        assert!(!format!("{e} {e:?}").contains("A1b2C3d4"), "{e:?}");
    }

    #[tokio::test]
    async fn error_responses_become_api_errors() {
        let body = anthropic("rate_limit_error", "slow down").into_bytes();
        let resp = response(429, &[("retry-after-ms", "1500"), ("x-should-retry", "true")], body);
        let e = ApiError::from_reqwest_response(resp).await;
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.provider_type(), Some("rate_limit_error"));
        assert_eq!(e.retry_after(), Some(llm_retry_runtime::http::RetryAfter::Delay(Duration::from_millis(1500))));
        assert_eq!(e.should_retry(), Some(true));
    }

    #[tokio::test]
    async fn response_bodies_are_read_up_to_the_cap() {
        // A valid quota body, padded past the cap: only the prefix is read, so it is not
        // understood and the status decides.
        let pad = "x".repeat(MAX_BODY_BYTES);
        let big = format!(r#"{{"error":{{"type":"insufficient_quota","message":"{pad}"}}}}"#);
        let e = ApiError::from_reqwest_response(response(429, &[], big.into_bytes())).await;
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        let small = openai("insufficient_quota", "", "x");
        let e = ApiError::from_reqwest_response(response(429, &[], small.into_bytes())).await;
        assert_eq!(e.kind(), ErrorKind::QuotaExhausted);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_never_panic(status in 0u16..1000, body in prop::collection::vec(any::<u8>(), 0..512)) {
        let c = classify_response(status, &HeaderMap::new(), Some(&body));
        prop_assert_eq!(c.status, Some(status));
        let e = ApiError::from_response(status, &HeaderMap::new(), &body);
        prop_assert_eq!(e.kind(), c.kind);
        let _ = (e.to_string(), format!("{e:?}"));
        if let Some(m) = e.message() {
            prop_assert!(m.chars().count() <= ApiError::MAX_MESSAGE_CHARS + 1);
        }
    }

    #[test]
    fn json_like_bodies_never_panic(
        status in 400u16..600,
        ty in prop::option::of("[a-z_]{0,30}"),
        code in prop::option::of(prop_oneof!["[a-z_]{0,30}".prop_map(|s| format!("{s:?}")), any::<i64>().prop_map(|n| n.to_string())]),
        message in any::<String>(),
        anthropic_shape in any::<bool>(),
    ) {
        let ty = ty.map(|t| format!("{t:?}")).unwrap_or_else(|| "null".into());
        let code = code.unwrap_or_else(|| "null".into());
        let message = serde_json::to_string(&message).unwrap();
        let body = if anthropic_shape {
            format!(r#"{{"type":"error","error":{{"type":{ty},"message":{message}}}}}"#)
        } else {
            format!(r#"{{"error":{{"message":{message},"type":{ty},"code":{code},"param":null}}}}"#)
        };
        let c = classify_response(status, &HeaderMap::new(), Some(body.as_bytes()));
        let e = ApiError::from_response(status, &HeaderMap::new(), body.as_bytes());
        prop_assert_eq!(e.kind(), c.kind);
        let shown = format!("{e} {e:?}");
        prop_assert!(!contains_key(&shown), "{}", shown);
    }

    #[test]
    fn keys_in_messages_are_always_masked(
        prefix in "[ -~]{0,40}", key in "[A-Za-z0-9_-]{8,60}", suffix in "[ -~]{0,40}",
    ) {
        let e = ApiError::new(ErrorKind::Auth, format!("{prefix}sk-{key}{suffix}"));
        let shown = format!("{e} {e:?}");
        prop_assert!(!contains_key(&shown), "{}", shown);
    }
}

/// Whether `s` holds `sk-` followed by 8 or more key characters.
fn contains_key(s: &str) -> bool {
    s.match_indices("sk-").any(|(i, _)| {
        s[i + 3..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').count() >= 8
    })
}
