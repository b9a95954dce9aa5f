//! End to end over real TCP on loopback, one provider at a time: an `#[llm_retry]` fn calls the chaos
//! server's OpenAI, Anthropic, Gemini, Bedrock or Azure OpenAI persona with reqwest, and turns every
//! non-2xx answer into an error with `ApiError::from_response(status, &headers, &body)`.
//!
//! For each provider, two scripts: a rate limit (with the hint where that provider puts it: headers,
//! Gemini's `retryDelay` in the body, none on Bedrock), then an overload, then a success, which must be
//! retried to the success, the hint honoured; and the errors retrying cannot fix (a spent quota, a
//! prompt too long, a bad key, Azure's content filter), each sent exactly once. The kinds asserted are
//! what each provider's documentation says the answer means. Hints are 40 ms; the policies' own backoff
//! is a fixed 10 ms, so a hint that is not read shows as a shorter wait. One test waits a whole second:
//! Azure's message counts in whole seconds, and there it is the only hint.
//!
//! ```sh
//! cargo test --all-features --test it providers_e2e
//! ```

use std::time::Duration;

use llm_retry::{ApiError, ErrorKind, GiveUp, call::DelaySource, llm_retry};
use llm_retry_testkit::{ChaosServer, Fault, RetryAfterHeader, Route};
use serde_json::{Value, json};

use crate::support::*;

/// The wait every rate limit here asks for.
const HINT: Duration = Duration::from_millis(40);

/// The provider an annotated fn calls: its path, credentials header, request and reply shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    Azure,
}

impl Provider {
    fn url(self, server: &ChaosServer) -> String {
        let base = server.url();
        match self {
            Provider::OpenAi => server.chat_completions_url(),
            Provider::Anthropic => server.messages_url(),
            Provider::Gemini => format!("{base}/v1beta/models/gemini-2.0-flash:generateContent"),
            Provider::Bedrock => format!("{base}/model/anthropic.claude-3-haiku-20240307-v1:0/converse"),
            Provider::Azure => format!("{base}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"),
        }
    }

    fn route(self) -> Route {
        match self {
            Provider::OpenAi => Route::ChatCompletions,
            Provider::Anthropic => Route::Messages,
            Provider::Gemini => Route::GenerateContent,
            Provider::Bedrock => Route::Converse,
            Provider::Azure => Route::AzureChatCompletions,
        }
    }

    fn credentials(self) -> (&'static str, &'static str) {
        match self {
            Provider::OpenAi => ("authorization", "Bearer sk-e2e-not-a-real-key"),
            Provider::Anthropic => ("x-api-key", "sk-ant-e2e-not-a-real-key"),
            Provider::Gemini => ("x-goog-api-key", "AIza-e2e-not-a-real-key"),
            Provider::Bedrock => ("authorization", "Bearer bedrock-api-key-e2e-not-a-real-key"),
            Provider::Azure => ("api-key", "e2e-not-a-real-key"),
        }
    }

    fn request(self) -> Value {
        match self {
            Provider::OpenAi | Provider::Azure => {
                json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]})
            }
            Provider::Anthropic => json!({
                "model": "claude-3-5-haiku-latest", "max_tokens": 64,
                "messages": [{"role": "user", "content": "Say hello"}]
            }),
            Provider::Gemini => json!({"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}),
            Provider::Bedrock => json!({"messages": [{"role": "user", "content": [{"text": "Say hello"}]}]}),
        }
    }

    fn text(self, reply: &Value) -> Option<&str> {
        let pointer = match self {
            Provider::OpenAi | Provider::Azure => "/choices/0/message/content",
            Provider::Anthropic => "/content/0/text",
            Provider::Gemini => "/candidates/0/content/parts/0/text",
            Provider::Bedrock => "/output/message/content/0/text",
        };
        reply.pointer(pointer).and_then(Value::as_str)
    }

    /// The rate limit with this provider's hint, and its overload.
    fn rate_limit_and_overload(self) -> [Fault; 2] {
        let hint = match self {
            // Anthropic's `retry-after` is in seconds.
            Provider::Anthropic => RetryAfterHeader::Seconds(HINT.as_secs_f64()),
            // Azure also writes it, rounded up to a whole second, in the message: the header wins.
            _ => RetryAfterHeader::Millis(HINT.as_millis() as u64),
        };
        [Fault::RateLimited { retry_after: hint }, Fault::Overloaded]
    }

    /// The status of this provider's overload.
    fn overload_status(self) -> u16 {
        match self {
            Provider::Anthropic => 529,
            Provider::Bedrock => 429,
            _ => 503,
        }
    }
}

/// One call, as a user would write it for any of the providers: the error is classified from the
/// status, the headers and the body.
async fn complete(provider: Provider, http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    let (header, key) = provider.credentials();
    let response = http.post(url).header(header, key).json(&provider.request()).send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    if !(200..300).contains(&status) {
        return Err(ApiError::from_response(status, &headers, &body));
    }
    let reply: Value = serde_json::from_slice(&body).map_err(|e| ApiError::new(ErrorKind::Other, e.to_string()))?;
    provider.text(&reply).map(str::to_owned).ok_or_else(|| ApiError::new(ErrorKind::Other, "the reply has no text"))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().retry(reqwest::retry::never()).build().expect("a plain HTTP client builds")
}

/// Runs `call` against a server scripted with the provider's rate limit, overload and success, and
/// checks the three records: the server saw three requests, the policy retried a `RateLimited` after
/// the hint (Bedrock: after its backoff, having no hint) and an `Overloaded` after its backoff, and the
/// call returned the reply.
async fn assert_retried_to_success(
    provider: Provider,
    site: &str,
    call: impl AsyncFn(&reqwest::Client, &str) -> Result<String, ApiError>,
) {
    let server = server(provider.rate_limit_and_overload()).await;
    let (http, url) = (client(), provider.url(&server));
    let before = stats(site);

    let out = call(&http, &url).await;

    assert_eq!(out.expect("the third attempt succeeds"), REPLY, "{provider:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{provider:?}");
    assert!(requests.iter().all(|r| r.route == provider.route()), "{provider:?}");
    let planned = retries(site);
    let seen: Vec<_> = planned.iter().map(|r| (r.attempt, r.kind, r.status)).collect();
    let expected =
        [(1, ErrorKind::RateLimited, Some(429)), (2, ErrorKind::Overloaded, Some(provider.overload_status()))];
    assert_eq!(seen, expected, "{provider:?}");

    let first = planned[0];
    if provider == Provider::Bedrock {
        // Bedrock sends no hint: the backoff decides.
        assert_eq!((first.source, first.delay), (DelaySource::Backoff, ms(10)), "{provider:?}");
    } else {
        let jitter = hint_jitter_max(HINT);
        assert_eq!(first.source, DelaySource::RetryAfter, "{provider:?}: the hint was not read");
        assert!(
            first.delay >= HINT && first.delay <= HINT + jitter,
            "{provider:?}: planned {:?} for a hint of {HINT:?} (+ up to {jitter:?})",
            first.delay
        );
    }
    assert_eq!((planned[1].source, planned[1].delay), (DelaySource::Backoff, ms(10)), "{provider:?}");
    let gaps = gaps(&requests);
    for (gap, retry) in gaps.iter().zip(&planned) {
        assert!(
            *gap >= retry.delay,
            "{provider:?}: a retry came {gap:?} after its failure, before the planned {:?}",
            retry.delay
        );
    }
    if provider != Provider::Bedrock {
        assert!(gaps[0] >= HINT, "{provider:?}: the retry came {:?} after the 429, before the hint {HINT:?}", gaps[0]);
    }
    assert_stats(site, before, 3, Ok(()));
}

/// Serves each fault, with a success behind it that only a retry would reach, and checks that the call
/// gave up at once with the documented kind and status.
async fn assert_sent_once(
    provider: Provider,
    site: &str,
    cases: &[(Fault, ErrorKind, u16)],
    call: impl AsyncFn(&reqwest::Client, &str) -> Result<String, ApiError>,
) {
    for (fault, kind, status) in cases {
        let server = server([fault.clone(), Fault::Ok]).await;
        let (http, url) = (client(), provider.url(&server));
        let before = stats(site);

        let err = call(&http, &url).await.expect_err("the fault is returned");

        let what = format!("{provider:?} {fault:?}");
        assert_gave_up_at_once(&what, site, before, &server);
        assert_eq!((err.kind(), err.status()), (*kind, Some(*status)), "{what}: {err}");
        assert_eq!(server.script_len(), 1, "{what}: the success behind it is never asked for");
        assert_stats(site, before, 1, Err(GiveUp::NonRetryable));
    }
}

// ---------------------------------------------------------------------------------------------------
// OpenAI
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::openai_retry")]
async fn openai_retry(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::OpenAi, http, url).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::openai_fatal")]
async fn openai_fatal(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::OpenAi, http, url).await
}

#[tokio::test]
async fn openai_rate_limit_and_overload_are_retried_to_success() {
    assert_retried_to_success(Provider::OpenAi, "providers_e2e::openai_retry", openai_retry).await;
}

#[tokio::test]
async fn openai_quota_context_and_auth_are_sent_once() {
    let cases = [
        (Fault::InsufficientQuota, ErrorKind::QuotaExhausted, 429),
        (Fault::ContextLengthExceeded, ErrorKind::ContextLengthExceeded, 400),
        (Fault::InvalidApiKey, ErrorKind::Auth, 401),
    ];
    assert_sent_once(Provider::OpenAi, "providers_e2e::openai_fatal", &cases, openai_fatal).await;
}

// ---------------------------------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::anthropic_retry")]
async fn anthropic_retry(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Anthropic, http, url).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::anthropic_fatal")]
async fn anthropic_fatal(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Anthropic, http, url).await
}

#[tokio::test]
async fn anthropic_rate_limit_and_overload_are_retried_to_success() {
    assert_retried_to_success(Provider::Anthropic, "providers_e2e::anthropic_retry", anthropic_retry).await;
}

#[tokio::test]
async fn anthropic_billing_context_and_auth_are_sent_once() {
    let cases = [
        (Fault::InsufficientQuota, ErrorKind::QuotaExhausted, 429),
        (Fault::ContextLengthExceeded, ErrorKind::ContextLengthExceeded, 400),
        (Fault::InvalidApiKey, ErrorKind::Auth, 401),
    ];
    assert_sent_once(Provider::Anthropic, "providers_e2e::anthropic_fatal", &cases, anthropic_fatal).await;
}

// ---------------------------------------------------------------------------------------------------
// Gemini: the hint is a `google.rpc.RetryInfo` in the body; a per-day quota is spent, not a rate limit.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::gemini_retry")]
async fn gemini_retry(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Gemini, http, url).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::gemini_fatal")]
async fn gemini_fatal(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Gemini, http, url).await
}

#[tokio::test]
async fn gemini_rate_limit_and_overload_are_retried_to_success() {
    assert_retried_to_success(Provider::Gemini, "providers_e2e::gemini_retry", gemini_retry).await;
}

#[tokio::test]
async fn gemini_daily_quota_context_and_auth_are_sent_once() {
    let cases = [
        (Fault::InsufficientQuota, ErrorKind::QuotaExhausted, 429),
        (Fault::ContextLengthExceeded, ErrorKind::ContextLengthExceeded, 400),
        (Fault::InvalidApiKey, ErrorKind::Auth, 400),
        (Fault::Status(403), ErrorKind::Auth, 403),
    ];
    assert_sent_once(Provider::Gemini, "providers_e2e::gemini_fatal", &cases, gemini_fatal).await;
}

// ---------------------------------------------------------------------------------------------------
// Bedrock: the kind is in `x-amzn-ErrorType`; no hint.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::bedrock_retry")]
async fn bedrock_retry(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Bedrock, http, url).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::bedrock_fatal")]
async fn bedrock_fatal(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Bedrock, http, url).await
}

#[tokio::test]
async fn bedrock_throttling_and_model_not_ready_are_retried_to_success() {
    assert_retried_to_success(Provider::Bedrock, "providers_e2e::bedrock_retry", bedrock_retry).await;
}

#[tokio::test]
async fn bedrock_service_quota_input_too_long_and_access_denied_are_sent_once() {
    let cases = [
        (Fault::InsufficientQuota, ErrorKind::QuotaExhausted, 400),
        (Fault::ContextLengthExceeded, ErrorKind::ContextLengthExceeded, 400),
        (Fault::InvalidApiKey, ErrorKind::Auth, 403),
    ];
    assert_sent_once(Provider::Bedrock, "providers_e2e::bedrock_fatal", &cases, bedrock_fatal).await;
}

// ---------------------------------------------------------------------------------------------------
// Azure OpenAI: the hint in `retry-after-ms` beats the whole second in the message.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::azure_retry")]
async fn azure_retry(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Azure, http, url).await
}

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::azure_fatal")]
async fn azure_fatal(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Azure, http, url).await
}

#[tokio::test]
async fn azure_rate_limit_and_overload_are_retried_to_success() {
    assert_retried_to_success(Provider::Azure, "providers_e2e::azure_retry", azure_retry).await;
}

#[tokio::test]
async fn azure_content_filter_context_and_auth_are_sent_once() {
    let cases = [
        (Fault::ContentFiltered, ErrorKind::ContentFiltered, 400),
        (Fault::ContextLengthExceeded, ErrorKind::ContextLengthExceeded, 400),
        (Fault::InvalidApiKey, ErrorKind::Auth, 401),
    ];
    assert_sent_once(Provider::Azure, "providers_e2e::azure_fatal", &cases, azure_fatal).await;
}

// ---------------------------------------------------------------------------------------------------
// A hint only in the body: Azure's message when no header carries it.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 3, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "providers_e2e::azure_body_hint")]
async fn azure_body_hint(http: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    complete(Provider::Azure, http, url).await
}

#[tokio::test]
async fn azure_message_alone_sets_the_wait() {
    const SITE: &str = "providers_e2e::azure_body_hint";
    // Azure's 429 without its headers: only "Please retry after 1 second." is left.
    let message = "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have \
                   exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second. \
                   Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.";
    let server = server([Fault::Custom {
        status: 429,
        headers: Vec::new(),
        body: json!({"error": {"code": "429", "message": message}}).to_string(),
    }])
    .await;
    let before = stats(SITE);

    let out = azure_body_hint(&client(), &Provider::Azure.url(&server)).await;

    assert_eq!(out.expect("the retry succeeds"), REPLY);
    let planned = retries(SITE);
    assert_eq!(planned.len(), 1);
    let hint = Duration::from_secs(1);
    assert_eq!((planned[0].kind, planned[0].source), (ErrorKind::RateLimited, DelaySource::RetryAfter));
    assert!(planned[0].delay >= hint && planned[0].delay <= hint + hint_jitter_max(hint), "{:?}", planned[0].delay);
    assert!(gaps(&server.requests())[0] >= hint, "the retry came before the second the message asked for");
    assert_stats(SITE, before, 2, Ok(()));
}
