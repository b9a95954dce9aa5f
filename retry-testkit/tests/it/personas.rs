//! The provider personas over real TCP, as reqwest sees them: each route answers every fault in its
//! provider's documented shape (status, headers, body), and hints go where that provider puts them.

use std::time::Duration;

use llm_retry_testkit::{ChaosServer, Fault, Outcome, RetryAfterHeader, Route};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const GEMINI: &str = "/v1beta/models/gemini-2.0-flash:generateContent";
const GEMINI_STREAM: &str = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse";
const CONVERSE: &str = "/model/amazon.nova-lite-v1:0/converse";
const INVOKE: &str = "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke";
const AZURE: &str = "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21";

fn gemini_body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]})
}

fn messages_body() -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": "Say hi"}]}]})
}

fn anthropic_body() -> Value {
    json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [{"role": "user", "content": "Say hi"}]})
}

/// What came back: status, headers and the body as text.
struct Got {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// No header of the OpenAI family of hints.
    fn has_no_hint_header(&self) -> bool {
        ["retry-after", "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
            .iter()
            .all(|h| self.header(h).is_none())
    }
}

async fn post(server: &ChaosServer, path: &str, body: &Value) -> Got {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client
        .post(format!("{}{path}", server.url()))
        .header("x-goog-api-key", "AIza-not-a-real-key")
        .header("api-key", "azure-not-a-real-key")
        .header("x-amz-security-token", "not-a-real-token")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Got { status, headers, text: resp.text().await.unwrap() }
}

/// Serves `fault` once on `path` and returns what came back.
async fn one(path: &str, body: &Value, fault: Fault) -> Got {
    let server = ChaosServer::builder().reply("Hello there").script([fault]).start().await;
    post(&server, path, body).await
}

/// The `@type`-tagged detail of a Gemini error, if present.
fn detail<'a>(body: &'a Value, kind: &str) -> Option<&'a Value> {
    body["error"]["details"].as_array()?.iter().find(|d| d["@type"] == format!("type.googleapis.com/google.rpc.{kind}"))
}

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

#[test]
fn each_provider_path_has_its_route() {
    for (path, route) in [
        ("/v1beta/models/gemini-2.5-pro:generateContent", Route::GenerateContent),
        ("/v1/models/gemini-pro:streamGenerateContent", Route::GenerateContent),
        (
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent",
            Route::GenerateContent,
        ),
        ("/v1beta/models/gemini-2.0-flash:countTokens", Route::Unknown),
        ("/v1beta/models/:generateContent", Route::Unknown),
        ("/model/us.anthropic.claude-3-5-sonnet-20241022-v2:0/converse", Route::Converse),
        ("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fx/converse", Route::Converse),
        ("/model/amazon.titan-text-express-v1/invoke", Route::Invoke),
        ("/model/amazon.titan-text-express-v1/converse-stream", Route::Unknown),
        ("/openai/deployments/gpt-4o/chat/completions", Route::AzureChatCompletions),
        ("/openai/deployments//chat/completions", Route::Unknown),
    ] {
        assert_eq!(Route::from_path(path), route, "{path}");
    }
}

#[tokio::test]
async fn every_fault_has_each_providers_status() {
    // (fault, OpenAI, Anthropic, Gemini, Bedrock Converse, Azure)
    let table = [
        (Fault::Ok, [200, 200, 200, 200, 200]),
        (Fault::rate_limited(0.05), [429, 429, 429, 429, 429]),
        (Fault::InsufficientQuota, [429, 429, 429, 400, 429]),
        (Fault::InvalidApiKey, [401, 401, 400, 403, 401]),
        (Fault::ContextLengthExceeded, [400, 400, 400, 400, 400]),
        (Fault::Overloaded, [503, 529, 503, 429, 503]),
        (Fault::ContentFiltered, [400, 400, 200, 200, 400]),
        (Fault::Status(500), [500, 500, 500, 500, 500]),
        (Fault::Status(503), [503, 503, 503, 503, 503]),
        (Fault::Status(529), [529, 529, 529, 529, 529]),
    ];
    let routes = [
        ("/v1/chat/completions", json!({"messages": [{"role": "user", "content": "hi"}]})),
        ("/v1/messages", json!({"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})),
        (GEMINI, gemini_body()),
        (CONVERSE, messages_body()),
        (AZURE, json!({"messages": [{"role": "user", "content": "hi"}]})),
    ];
    for (fault, statuses) in table {
        let server = ChaosServer::start().await;
        server.script(std::iter::repeat_n(fault.clone(), routes.len()));
        for ((path, body), status) in routes.iter().zip(statuses) {
            let got = post(&server, path, body).await;
            assert_eq!(got.status, status, "{fault:?} on {path}: {}", got.text);
            assert_eq!(got.header("content-type"), Some("application/json"), "{fault:?} on {path}");
        }
        assert!(server.requests().iter().all(|r| r.fault() == Some(&fault)));
    }
}

#[tokio::test]
async fn credentials_of_every_provider_are_never_recorded() {
    let server = ChaosServer::start().await;
    post(&server, GEMINI, &gemini_body()).await;
    post(&server, CONVERSE, &messages_body()).await;
    let seen = server.requests();
    assert!(seen.iter().all(|r| r.had_authorization));
    let dump = format!("{seen:?}");
    for secret in ["AIza-not-a-real-key", "azure-not-a-real-key", "not-a-real-token"] {
        assert!(!dump.contains(secret), "{secret} was recorded");
    }
}

// ---------------------------------------------------------------------------------------------------
// Gemini
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn gemini_reply_has_candidates_and_usage() {
    let server = ChaosServer::builder().reply("Hello there").start().await;
    let got = post(&server, GEMINI, &gemini_body()).await;
    assert_eq!(got.status, 200);
    let body = got.json();
    assert_eq!(body["candidates"][0]["content"]["parts"][0]["text"], "Hello there");
    assert_eq!(body["candidates"][0]["content"]["role"], "model");
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["usageMetadata"], json!({"promptTokenCount": 2, "candidatesTokenCount": 2, "totalTokenCount": 4}));
    assert_eq!(body["modelVersion"], "gemini-2.0-flash", "the model comes from the path");
    assert_eq!(server.requests()[0].route, Route::GenerateContent);
}

#[tokio::test]
async fn gemini_rate_limit_carries_its_hint_in_the_body_only() {
    let got = one(GEMINI, &gemini_body(), Fault::RateLimited { retry_after: RetryAfterHeader::Millis(50) }).await;
    assert_eq!(got.status, 429);
    assert!(got.has_no_hint_header(), "Gemini sends no retry header: {:?}", got.headers);
    let body = got.json();
    assert_eq!(
        (body["error"]["code"].as_u64(), body["error"]["status"].as_str()),
        (Some(429), Some("RESOURCE_EXHAUSTED"))
    );
    assert_eq!(detail(&body, "RetryInfo").unwrap()["retryDelay"], "0.050s");
    let quota = detail(&body, "QuotaFailure").unwrap();
    assert!(quota["violations"][0]["quotaId"].as_str().unwrap().contains("PerMinute"), "{quota}");

    for hint in [RetryAfterHeader::Seconds(35.0), RetryAfterHeader::HttpDate(Duration::from_secs(35))] {
        let body = one(GEMINI, &gemini_body(), Fault::RateLimited { retry_after: hint }).await.json();
        assert_eq!(detail(&body, "RetryInfo").unwrap()["retryDelay"], "35s");
    }
    let bare = one(GEMINI, &gemini_body(), Fault::RateLimited { retry_after: RetryAfterHeader::None }).await.json();
    assert!(detail(&bare, "RetryInfo").is_none(), "no hint, no RetryInfo: {bare}");
}

#[tokio::test]
async fn gemini_spent_quota_is_a_per_day_quota_failure_without_retry_info() {
    let got = one(GEMINI, &gemini_body(), Fault::InsufficientQuota).await;
    assert_eq!(got.status, 429);
    let body = got.json();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("You exceeded your current quota"));
    let quota = detail(&body, "QuotaFailure").unwrap();
    assert!(quota["violations"][0]["quotaId"].as_str().unwrap().contains("PerDay"), "{quota}");
    assert!(detail(&body, "RetryInfo").is_none());
}

#[tokio::test]
async fn gemini_errors_carry_googles_status_names() {
    let cases = [
        (Fault::InvalidApiKey, 400, "INVALID_ARGUMENT", "API key not valid"),
        (Fault::Status(403), 403, "PERMISSION_DENIED", "unregistered callers"),
        (Fault::ContextLengthExceeded, 400, "INVALID_ARGUMENT", "input token count (1200293) exceeds the maximum"),
        (Fault::Overloaded, 503, "UNAVAILABLE", "The model is overloaded"),
        (Fault::Status(503), 503, "UNAVAILABLE", "The model is overloaded"),
        (Fault::Status(500), 500, "INTERNAL", "An internal error has occurred"),
        (Fault::Status(504), 504, "DEADLINE_EXCEEDED", "Deadline expired"),
        (Fault::Status(404), 404, "NOT_FOUND", "not found"),
        (Fault::Status(429), 429, "RESOURCE_EXHAUSTED", "Resource has been exhausted"),
    ];
    for (fault, status, name, message) in cases {
        let got = one(GEMINI, &gemini_body(), fault.clone()).await;
        assert_eq!(got.status, status, "{fault:?}");
        let error = &got.json()["error"];
        assert_eq!(
            (error["code"].as_u64(), error["status"].as_str()),
            (Some(u64::from(status)), Some(name)),
            "{fault:?}"
        );
        assert!(error["message"].as_str().unwrap().contains(message), "{fault:?}: {error}");
        assert!(got.has_no_hint_header(), "{fault:?}");
    }
    let key = one(GEMINI, &gemini_body(), Fault::InvalidApiKey).await.json();
    assert_eq!(detail(&key, "ErrorInfo").unwrap()["reason"], "API_KEY_INVALID");
}

#[tokio::test]
async fn gemini_blocked_prompt_is_a_200_with_prompt_feedback() {
    let got = one(GEMINI, &gemini_body(), Fault::ContentFiltered).await;
    assert_eq!(got.status, 200);
    let body = got.json();
    assert_eq!(body["promptFeedback"]["blockReason"], "SAFETY");
    assert!(body.get("candidates").is_none());
}

/// The `data:` payloads of an SSE body, split the way Google frames them (CRLF blank lines).
fn sse_data(text: &str) -> Vec<Value> {
    text.split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").expect("a data event")).unwrap())
        .collect()
}

#[tokio::test]
async fn gemini_stream_is_sse_of_candidates() {
    let server = ChaosServer::builder().reply("streaming works fine").chunks(3).start().await;
    let got = post(&server, GEMINI_STREAM, &gemini_body()).await;
    assert_eq!(got.status, 200);
    assert!(got.header("content-type").unwrap().starts_with("text/event-stream"));
    let events = sse_data(&got.text);
    assert_eq!(events.len(), 4, "three pieces and the finish");
    let text: String =
        events.iter().filter_map(|e| e["candidates"][0]["content"]["parts"][0]["text"].as_str()).collect();
    assert_eq!(text, "streaming works fine");
    assert_eq!(events[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(events[3]["usageMetadata"]["candidatesTokenCount"], 3);
    assert!(server.requests()[0].stream, "the stream method streams without a `stream` field");

    server.script([Fault::StreamError { after_chunks: 1 }]);
    let events = sse_data(&post(&server, GEMINI_STREAM, &gemini_body()).await.text);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn gemini_body_without_contents_is_refused_in_googles_shape() {
    let server = ChaosServer::builder().script([Fault::Status(500)]).start().await;
    let got = post(&server, GEMINI, &json!({"messages": []})).await;
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(server.requests()[0].outcome, Outcome::Rejected { status: 400 });
    assert_eq!(server.script_len(), 1, "a refused request takes no step");
}

#[tokio::test]
async fn gemini_rate_limiter_answers_with_retry_info() {
    let server = ChaosServer::builder().rate_limit(60, 1).start().await;
    assert_eq!(post(&server, GEMINI, &gemini_body()).await.status, 200);
    let got = post(&server, GEMINI, &gemini_body()).await;
    assert_eq!(got.status, 429);
    assert!(got.has_no_hint_header());
    let delay = detail(&got.json(), "RetryInfo").unwrap()["retryDelay"].as_str().unwrap().to_owned();
    let secs: f64 = delay.strip_suffix('s').unwrap().parse().unwrap();
    assert!(secs > 0.5 && secs <= 1.0, "a token a second: {delay}");
}

// ---------------------------------------------------------------------------------------------------
// Bedrock
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn bedrock_converse_and_invoke_replies() {
    let server = ChaosServer::builder().reply("Hello there").start().await;
    let got = post(&server, CONVERSE, &messages_body()).await;
    assert_eq!(got.status, 200);
    let body = got.json();
    assert_eq!(body["output"]["message"]["content"][0]["text"], "Hello there");
    assert_eq!(body["output"]["message"]["role"], "assistant");
    assert_eq!(body["stopReason"], "end_turn");
    assert_eq!(body["usage"], json!({"inputTokens": 2, "outputTokens": 2, "totalTokens": 4}));

    let got = post(&server, INVOKE, &anthropic_body()).await;
    assert_eq!(got.status, 200);
    let body = got.json();
    assert_eq!((body["type"].as_str(), body["content"][0]["text"].as_str()), (Some("message"), Some("Hello there")));
    assert_eq!(body["model"], "anthropic.claude-3-haiku-20240307-v1:0");

    // Converse has no `stream` field: the answer is JSON whatever the body says.
    let mut streaming = messages_body();
    streaming["stream"] = json!(true);
    let got = post(&server, CONVERSE, &streaming).await;
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(!server.requests()[2].stream);
}

#[tokio::test]
async fn bedrock_errors_name_their_exception_in_x_amzn_errortype() {
    let cases = [
        (
            Fault::RateLimited { retry_after: RetryAfterHeader::Millis(50) },
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        (Fault::Overloaded, 429, "ModelNotReadyException", "not ready"),
        (Fault::Status(503), 503, "ServiceUnavailableException", "unable to process"),
        (Fault::Status(500), 500, "InternalServerException", "internal error"),
        (Fault::Status(408), 408, "ModelTimeoutException", "timed out"),
        (Fault::InsufficientQuota, 400, "ServiceQuotaExceededException", "service quota"),
        (Fault::InvalidApiKey, 403, "AccessDeniedException", "access"),
        (Fault::ContextLengthExceeded, 400, "ValidationException", "Input is too long for requested model."),
    ];
    for (path, body) in [(CONVERSE, messages_body()), (INVOKE, anthropic_body())] {
        for (fault, status, exception, message) in &cases {
            let got = one(path, &body, fault.clone()).await;
            assert_eq!(got.status, *status, "{fault:?} on {path}");
            let error_type = got.header("x-amzn-errortype").unwrap();
            assert!(error_type.starts_with(&format!("{exception}:http://")), "{fault:?}: {error_type}");
            assert!(got.header("x-amzn-requestid").is_some());
            let body = got.json();
            assert_eq!(body.as_object().unwrap().len(), 1, "only a message: {body}");
            assert!(body["message"].as_str().unwrap().contains(message), "{fault:?}: {body}");
            assert!(got.has_no_hint_header(), "Bedrock sends no hint: {fault:?}");
        }
    }
    let throttled = one(CONVERSE, &messages_body(), Fault::rate_limited(0.05)).await;
    assert_eq!(throttled.json(), json!({"message": "Too many requests, please wait before trying again."}));
}

#[tokio::test]
async fn bedrock_guardrail_block_is_a_200() {
    let body = one(CONVERSE, &messages_body(), Fault::ContentFiltered).await.json();
    assert_eq!(body["stopReason"], "guardrail_intervened");
    let body = one(INVOKE, &anthropic_body(), Fault::ContentFiltered).await.json();
    assert_eq!(body["amazon-bedrock-guardrailAction"], "INTERVENED");
}

#[tokio::test]
async fn bedrock_refusals_are_validation_exceptions() {
    let server = ChaosServer::start().await;
    let got = post(&server, CONVERSE, &json!({"contents": []})).await;
    assert_eq!(got.status, 400);
    assert!(got.header("x-amzn-errortype").unwrap().starts_with("ValidationException:"));
    // InvokeModel takes any model's body.
    assert_eq!(post(&server, INVOKE, &json!({"inputText": "hi"})).await.status, 200);
}

// ---------------------------------------------------------------------------------------------------
// Azure OpenAI
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn azure_rate_limit_carries_its_hint_in_headers_and_message() {
    let hint = RetryAfterHeader::Many(vec![RetryAfterHeader::Seconds(6.0), RetryAfterHeader::Millis(6000)]);
    let got = one(AZURE, &messages_body(), Fault::RateLimited { retry_after: hint }).await;
    assert_eq!(got.status, 429);
    assert_eq!((got.header("retry-after"), got.header("retry-after-ms")), (Some("6"), Some("6000")));
    let error = &got.json()["error"];
    assert_eq!(error["code"], "429");
    assert!(error["message"].as_str().unwrap().contains("Please retry after 6 seconds."), "{error}");

    let got = one(AZURE, &messages_body(), Fault::RateLimited { retry_after: RetryAfterHeader::Millis(40) }).await;
    assert_eq!(got.header("retry-after-ms"), Some("40"));
    assert!(got.json()["error"]["message"].as_str().unwrap().contains("Please retry after 1 second."));
}

#[tokio::test]
async fn azure_auth_and_content_filter_are_azures_own() {
    let got = one(AZURE, &messages_body(), Fault::InvalidApiKey).await;
    assert_eq!(got.status, 401);
    assert_eq!(got.json()["error"]["code"], "401");
    assert!(
        got.json()["error"]["message"].as_str().unwrap().starts_with("Access denied due to invalid subscription key")
    );

    let got = one(AZURE, &messages_body(), Fault::ContentFiltered).await;
    assert_eq!(got.status, 400);
    let error = &got.json()["error"];
    assert_eq!(
        (error["code"].as_str(), error["innererror"]["code"].as_str()),
        (Some("content_filter"), Some("ResponsibleAIPolicyViolation"))
    );
    assert_eq!(error["innererror"]["content_filter_result"]["violence"]["filtered"], true);
}

#[tokio::test]
async fn azure_otherwise_answers_as_openai() {
    let server = ChaosServer::builder().reply("Hello there").script([Fault::ContextLengthExceeded]).start().await;
    let got = post(&server, AZURE, &messages_body()).await;
    assert_eq!((got.status, got.json()["error"]["code"].as_str()), (400, Some("context_length_exceeded")));
    let body = post(&server, AZURE, &messages_body()).await.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello there");
    assert_eq!(body["model"], "gpt4o-prod", "a body without a model gets the deployment's name");
    assert_eq!(server.requests()[1].route, Route::AzureChatCompletions);
}

// ---------------------------------------------------------------------------------------------------
// The new faults on OpenAI's and Anthropic's routes, and scripts per route
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn overloaded_and_content_filtered_on_openai_and_anthropic() {
    let openai = json!({"messages": [{"role": "user", "content": "hi"}]});
    let got = one("/v1/chat/completions", &openai, Fault::ContentFiltered).await;
    assert_eq!(got.json()["error"]["code"], "content_policy_violation");
    let got = one("/v1/messages", &openai, Fault::ContentFiltered).await;
    assert_eq!(got.json()["error"]["message"], "Output blocked by content filtering policy");
    let got = one("/v1/messages", &openai, Fault::Overloaded).await;
    assert_eq!((got.status, got.json()["error"]["type"].as_str()), (529, Some("overloaded_error")));
}

#[tokio::test]
async fn each_persona_route_has_a_script_of_its_own() {
    let server = ChaosServer::start().await;
    server.script_route(Route::GenerateContent, [Fault::Overloaded]);
    server.script_route(Route::Converse, [Fault::rate_limited(0.01)]);
    assert_eq!(post(&server, CONVERSE, &messages_body()).await.status, 429);
    assert_eq!(post(&server, AZURE, &messages_body()).await.status, 200);
    assert_eq!(post(&server, GEMINI, &gemini_body()).await.status, 503);
    assert_eq!(post(&server, GEMINI, &gemini_body()).await.status, 200);
}
