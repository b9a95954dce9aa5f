//! End to end over real TCP on loopback: `#[llm_retry]` fns that call the chaos LLM server through
//! async-openai, classified by `llm_retry::Classify for OpenAIError`.
//!
//! async-openai 0.43 retries on its own (`OpenAIRetryLayer`, installed by every constructor). These
//! tests switch it off the documented way, `with_http_service(ReqwestService::new(..))` (feature
//! `middleware`), and prove it is off: the server sees exactly as many requests as the policy made
//! attempts. One control test keeps the layer on, to show that the same check would catch it.
//!
//! ```sh
//! cargo test --test it e2e_async_openai
//! ```

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs};
use llm_retry::{ApiError, Classify, ErrorKind, GiveUp, call::DelaySource, llm_retry};
use llm_retry_testkit::{ChaosServer, Fault, RetryAfterHeader};
use tokio::time::Instant;

use crate::support::*;

fn config(server: &ChaosServer) -> OpenAIConfig {
    OpenAIConfig::new().with_api_base(server.openai_base()).with_api_key("sk-e2e-not-a-real-key")
}

/// An async-openai client for `server` with async-openai's own retries off: the bare `ReqwestService`,
/// without `OpenAIRetryLayer`, so every failure comes straight back to `llm_retry`.
fn openai(server: &ChaosServer) -> Client<OpenAIConfig> {
    let http = reqwest::Client::builder().retry(reqwest::retry::never()).build().expect("a plain HTTP client builds");
    Client::with_config(config(server)).with_http_service(ReqwestService::new(http))
}

/// One chat completion through async-openai: the body of every annotated fn here.
async fn ask(client: &Client<OpenAIConfig>) -> Result<String, OpenAIError> {
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .messages([ChatCompletionRequestUserMessageArgs::default().content("Say hello").build()?.into()])
        .build()?;
    let response = client.chat().create(request).await?;
    Ok(response.choices.into_iter().next().and_then(|c| c.message.content).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------------
// Retryable failures are retried, once per attempt.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 8, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "e2e_openai::retried")]
async fn retried_call(client: &Client<OpenAIConfig>) -> Result<String, OpenAIError> {
    ask(client).await
}

#[tokio::test]
async fn rate_limits_server_errors_and_resets_are_retried_until_success() {
    const SITE: &str = "e2e_openai::retried";
    let faults = [
        Fault::RateLimited { retry_after: RetryAfterHeader::None },
        Fault::Status(500),
        Fault::ResetBeforeResponse,
        Fault::Status(503),
        Fault::ResetDuringBody,
        Fault::Status(529),
    ];
    let server = server(faults.iter().cloned().chain([Fault::Ok])).await;
    let client = openai(&server);
    let before = stats(SITE);

    let out = retried_call(&client).await;

    assert_eq!(out.expect("the seventh attempt succeeds"), REPLY);
    // With async-openai's layer on, each 429/5xx would have been sent up to 4 times.
    assert_eq!(server.request_count(), faults.len() + 1, "one request per attempt");
    let kinds: Vec<_> = retries(SITE).iter().map(|r| (r.kind, r.status)).collect();
    assert_eq!(
        kinds,
        [
            (ErrorKind::RateLimited, Some(429)),
            (ErrorKind::Server, Some(500)),
            (ErrorKind::Connection, None),
            (ErrorKind::Overloaded, Some(503)),
            (ErrorKind::Connection, None),
            (ErrorKind::Overloaded, Some(529)),
        ]
    );
    assert_stats(SITE, before, faults.len() + 1, Ok(()));
}

#[llm_retry(max = 3, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "e2e_openai::exhausted")]
async fn exhausted_call(client: &Client<OpenAIConfig>) -> Result<String, OpenAIError> {
    ask(client).await
}

#[tokio::test]
async fn three_attempts_are_three_requests() {
    const SITE: &str = "e2e_openai::exhausted";
    // With async-openai's layer on, three attempts would be twelve requests, over a second of its backoff.
    let server = server(vec![Fault::Status(500); 12]).await;
    let client = openai(&server);
    let before = stats(SITE);

    let err = exhausted_call(&client).await.unwrap_err();

    let c = err.classify();
    assert_eq!((c.kind, c.status), (ErrorKind::Server, Some(500)), "{err}");
    assert_eq!(server.request_count(), 3);
    assert_eq!(server.script_len(), 9);
    for gap in gaps(&server.requests()) {
        assert!(gap >= ms(10) && gap <= ms(10) + SCHED, "gap {gap:?}: our 10 ms backoff, not async-openai's");
    }
    assert_stats(SITE, before, 3, Err(GiveUp::Exhausted));
}

#[llm_retry(max = 1, name = "e2e_openai::control")]
async fn control_call(client: &Client<OpenAIConfig>) -> Result<String, OpenAIError> {
    ask(client).await
}

#[tokio::test]
async fn control_the_default_client_retries_behind_the_policys_back() {
    const SITE: &str = "e2e_openai::control";
    // `with_http_client` keeps OpenAIRetryLayer: one attempt of ours, two requests on the wire.
    let server = server([Fault::Status(500), Fault::Ok]).await;
    let http = reqwest::Client::builder().retry(reqwest::retry::never()).build().expect("a plain HTTP client builds");
    let client = Client::with_config(config(&server)).with_http_client(http);
    let before = stats(SITE);

    let out = control_call(&client).await;

    assert_eq!(out.expect("async-openai's own retry succeeds"), REPLY);
    assert_eq!(stats(SITE).attempts - before.attempts, 1, "llm_retry made one attempt");
    assert_eq!(server.request_count(), 2, "the layer sent a second request: the check above would catch it");
}

// ---------------------------------------------------------------------------------------------------
// What retrying cannot fix is sent exactly once.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 5, backoff = "fixed", delay = "10ms", notify = record, name = "e2e_openai::fatal")]
async fn fatal_call(client: &Client<OpenAIConfig>) -> Result<String, OpenAIError> {
    ask(client).await
}

#[tokio::test]
async fn auth_quota_and_context_length_errors_make_exactly_one_request() {
    const SITE: &str = "e2e_openai::fatal";
    let cases = [
        (Fault::InvalidApiKey, ErrorKind::Auth, 401),
        (Fault::InsufficientQuota, ErrorKind::QuotaExhausted, 429),
        (Fault::ContextLengthExceeded, ErrorKind::ContextLengthExceeded, 400),
    ];
    for (fault, kind, status) in cases {
        // A success waits behind the fault: only a retry (ours or async-openai's) would reach it.
        let server = server([fault.clone(), Fault::Ok]).await;
        let client = openai(&server);
        let before = stats(SITE);

        let err = fatal_call(&client).await.unwrap_err();

        assert_gave_up_at_once(&format!("{fault:?}"), SITE, before, &server);
        let OpenAIError::ApiError(resp) = &err else { panic!("{fault:?}: not an API error: {err}") };
        assert_eq!(resp.status_code.as_u16(), status, "{fault:?}");
        let c = err.classify();
        assert_eq!((c.kind, c.status), (kind, Some(status)), "{fault:?}");
        assert_stats(SITE, before, 1, Err(GiveUp::NonRetryable));
    }
    assert!(retries(SITE).is_empty(), "{:?}", retries(SITE));
}

// ---------------------------------------------------------------------------------------------------
// Timeouts: `OpenAIError` has no `From<llm_retry::Timeout>`, so these fns return `ApiError`, which
// converts from both (`?` on the `OpenAIError` keeps its classification).
// ---------------------------------------------------------------------------------------------------

#[llm_retry(
    max = 3,
    backoff = "fixed",
    delay = "20ms",
    jitter = "none",
    attempt_timeout = "200ms",
    notify = record,
    name = "e2e_openai::hang"
)]
async fn hang_call(client: &Client<OpenAIConfig>) -> Result<String, ApiError> {
    Ok(ask(client).await?)
}

#[tokio::test]
async fn a_hang_past_the_attempt_timeout_is_cut_and_retried() {
    const SITE: &str = "e2e_openai::hang";
    let server = server([Fault::Hang, Fault::Status(502), Fault::Ok]).await;
    let client = openai(&server);
    let before = stats(SITE);
    let started = Instant::now();

    let out = hang_call(&client).await;

    assert_eq!(out.expect("the third attempt succeeds"), REPLY);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let planned: Vec<_> = retries(SITE).iter().map(|r| (r.kind, r.status, r.delay)).collect();
    assert_eq!(planned, [(ErrorKind::Timeout, None, ms(20)), (ErrorKind::Server, Some(502), ms(20))]);
    let second = requests[1].at.duration_since(started);
    assert!(second >= ms(220) && second <= ms(220) + SCHED, "the retry arrived after {second:?}");
    assert_stats(SITE, before, 3, Ok(()));
}

#[llm_retry(max = 5, deadline = "300ms", name = "e2e_openai::deadline")]
async fn deadline_call(client: &Client<OpenAIConfig>) -> Result<String, ApiError> {
    Ok(ask(client).await?)
}

#[tokio::test]
async fn the_deadline_cuts_a_hanging_attempt() {
    const SITE: &str = "e2e_openai::deadline";
    let server = server([Fault::Hang, Fault::Ok]).await;
    let client = openai(&server);
    let before = stats(SITE);
    let started = Instant::now();

    let err = deadline_call(&client).await.unwrap_err();

    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(elapsed >= ms(300) && elapsed <= ms(300) + SCHED, "took {elapsed:?}");
    assert_eq!(server.request_count(), 1);
    assert_stats(SITE, before, 1, Err(GiveUp::Deadline));
}

#[llm_retry(max = 5, backoff = "fixed", delay = "10ms", name = "e2e_openai::fatal_api_error")]
async fn fatal_api_error_call(client: &Client<OpenAIConfig>) -> Result<String, ApiError> {
    Ok(ask(client).await?)
}

#[tokio::test]
async fn through_api_error_quota_is_still_sent_once_and_keeps_the_provider_code() {
    const SITE: &str = "e2e_openai::fatal_api_error";
    let server = server([Fault::InsufficientQuota, Fault::Ok]).await;
    let client = openai(&server);
    let before = stats(SITE);

    let err = fatal_api_error_call(&client).await.unwrap_err();

    assert_eq!((err.kind(), err.status()), (ErrorKind::QuotaExhausted, Some(429)), "{err}");
    assert_eq!(err.provider_code(), Some("insufficient_quota"));
    assert_eq!(server.request_count(), 1);
    assert_stats(SITE, before, 1, Err(GiveUp::NonRetryable));
}

// ---------------------------------------------------------------------------------------------------
// What async-openai passes on: the body, not the headers.
// ---------------------------------------------------------------------------------------------------

#[llm_retry(max = 3, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "e2e_openai::no_hint")]
async fn no_hint_call(client: &Client<OpenAIConfig>) -> Result<String, OpenAIError> {
    ask(client).await
}

#[tokio::test]
async fn the_hint_in_the_message_survives_openai_error() {
    const SITE: &str = "e2e_openai::no_hint";
    // `OpenAIError::ApiError` keeps the status and body but not the headers. OpenAI's message says
    // when to come back too ("Please try again in 150ms."), and that is read.
    let server = server([Fault::RateLimited { retry_after: RetryAfterHeader::Millis(150) }, Fault::Ok]).await;
    let client = openai(&server);

    let out = no_hint_call(&client).await;

    assert_eq!(out.expect("the retry succeeds"), REPLY);
    assert_eq!(server.request_count(), 2);
    let planned: Vec<_> = retries(SITE).iter().map(|r| (r.kind, r.source)).collect();
    assert_eq!(planned, [(ErrorKind::RateLimited, DelaySource::RetryAfter)]);
    assert!(retries(SITE)[0].delay >= ms(150), "the hint is a floor: {:?}", retries(SITE)[0].delay);
    let gap = gaps(&server.requests())[0];
    assert!(gap >= ms(150), "the 150 ms hint was waited for: gap {gap:?}");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "10ms", jitter = "none", notify = record, name = "e2e_openai::header_only")]
async fn header_only_call(client: &Client<OpenAIConfig>) -> Result<String, OpenAIError> {
    ask(client).await
}

#[tokio::test]
async fn a_hint_only_in_headers_does_not_survive_openai_error_so_the_backoff_applies() {
    const SITE: &str = "e2e_openai::header_only";
    // A 429 whose message says nothing of when ("Please try again later."): only the headers did,
    // and async-openai drops them. Callers who need every header call the endpoint with reqwest
    // (the `e2e_reqwest` module).
    let server = server([Fault::Status(429), Fault::Ok]).await;
    let client = openai(&server);

    let out = header_only_call(&client).await;

    assert_eq!(out.expect("the retry succeeds"), REPLY);
    assert_eq!(server.request_count(), 2);
    let planned: Vec<_> = retries(SITE).iter().map(|r| (r.kind, r.delay, r.source)).collect();
    assert_eq!(planned, [(ErrorKind::RateLimited, ms(10), DelaySource::Backoff)]);
}
