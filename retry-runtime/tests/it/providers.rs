//! Every major provider's documented error shapes: status, headers and body → the kind and the
//! retry hint `classify_response` and `ApiError::from_response` give. One table per provider,
//! each fixture citing the page that documents it. Bodies are the documented examples, with
//! identifiers shortened.
//!
//! `cargo test -p llm-retry-runtime --all-features --test it providers:: -- --nocapture` also prints
//! the provider × kind table of what the fixtures prove.

use http::{HeaderMap, HeaderName, HeaderValue};
use llm_retry_runtime::{ApiError, Classify, ErrorKind, http::RetryAfter, http::classify_response_at};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use ErrorKind::{
    Auth, BadRequest, ContentFiltered, ContextLengthExceeded, NotFound, Overloaded, QuotaExhausted, RateLimited,
    RequestTimeout, Server,
};

/// One documented response and what it means.
struct Fixture {
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    kind: ErrorKind,
    /// The retry hint, in milliseconds, from a header or the body.
    hint_ms: Option<u64>,
}

const fn fx(status: u16, body: &'static str, kind: ErrorKind) -> Fixture {
    Fixture { status, headers: &[], body, kind, hint_ms: None }
}

impl Fixture {
    const fn hint(self, ms: u64) -> Fixture {
        Fixture { hint_ms: Some(ms), ..self }
    }
    const fn headers(self, headers: &'static [(&'static str, &'static str)]) -> Fixture {
        Fixture { headers, ..self }
    }
}

/// <https://platform.openai.com/docs/guides/error-codes>
const OPENAI: &[Fixture] = &[
    // https://platform.openai.com/docs/guides/error-codes (401 Invalid Authentication)
    fx(401, r#"{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#, Auth),
    // https://platform.openai.com/docs/guides/error-codes (429 You exceeded your current quota)
    fx(429, r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#, QuotaExhausted),
    // https://platform.openai.com/docs/guides/rate-limits (429 with "Please try again in 2.5s")
    fx(429, r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 2.5s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#, RateLimited).hint(2_500),
    // https://platform.openai.com/docs/guides/rate-limits (a header beats the body's hint)
    fx(429, r#"{"error":{"message":"Rate limit reached for gpt-4o on requests per min (RPM): Limit 500. Please try again in 120ms.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#, RateLimited).headers(&[("retry-after-ms", "1000")]).hint(1_000),
    // https://platform.openai.com/docs/guides/rate-limits (minutes and seconds)
    fx(429, r#"{"error":{"message":"Rate limit reached for gpt-4o on requests per day (RPD): Limit 10000. Please try again in 1m30s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#, RateLimited).hint(90_000),
    // https://platform.openai.com/docs/guides/rate-limits (one request larger than the TPM limit:
    // waiting cannot make it fit, so it is no rate limit)
    fx(429, r#"{"error":{"message":"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 42000. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#, ContextLengthExceeded),
    // https://platform.openai.com/docs/guides/error-codes (400 context length)
    fx(400, r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#, ContextLengthExceeded),
    // https://platform.openai.com/docs/guides/error-codes (404 model)
    fx(404, r#"{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#, NotFound),
    // https://platform.openai.com/docs/guides/error-codes (500 The server had an error)
    fx(500, r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#, Server),
    // https://platform.openai.com/docs/guides/error-codes (503 The engine is currently overloaded)
    fx(503, r#"{"error":{"message":"The engine is currently overloaded, please try again later.","type":"server_error","param":null,"code":null}}"#, Overloaded),
    // https://platform.openai.com/docs/guides/image-generation (content policy)
    fx(400, r#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#, ContentFiltered),
];

/// <https://learn.microsoft.com/en-us/azure/ai-services/openai/quotas-limits>,
/// <https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter>
const AZURE: &[Fixture] = &[
    // https://learn.microsoft.com/en-us/azure/ai-services/openai/quotas-limits (429, hint in the body)
    fx(429, r#"{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}}"#, RateLimited).hint(6_000),
    // https://learn.microsoft.com/en-us/azure/ai-services/openai/quotas-limits (retry-after header wins)
    fx(429, r#"{"error":{"code":"429","message":"Requests to the Embeddings_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}"#, RateLimited).headers(&[("retry-after", "10")]).hint(10_000),
    // https://learn.microsoft.com/en-us/azure/ai-services/openai/how-to/quota (retry-after-ms header)
    fx(429, r#"{"error":{"code":"429","message":"Rate limit is exceeded. Try again in 6 seconds."}}"#, RateLimited).headers(&[("retry-after-ms", "5500"), ("retry-after", "6")]).hint(5_500),
    // https://learn.microsoft.com/en-us/azure/api-management/azure-openai-token-limit-policy ("Try again in 1 seconds")
    fx(429, r#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 1 seconds."}"#, RateLimited).hint(1_000),
    // https://learn.microsoft.com/en-us/azure/ai-services/openai/quotas-limits (the singular/plural form)
    fx(429, r#"{"error":{"code":"RateLimitReached","message":"Your requests to gpt-4o have exceeded the rate limit. Please retry after 6 second(s)."}}"#, RateLimited).hint(6_000),
    // https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter (prompt filtered)
    fx(400, r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}"#, ContentFiltered),
    // https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter (inner code only)
    fx(400, r#"{"error":{"code":"contentFilter","message":"Your task failed as a result of our safety system.","innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#, ContentFiltered),
    // https://learn.microsoft.com/en-us/azure/ai-services/openai/reference (DeploymentNotFound)
    fx(404, r#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#, NotFound),
    // https://learn.microsoft.com/en-us/azure/ai-services/openai/reference (401)
    fx(401, r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}"#, Auth),
];

/// <https://docs.anthropic.com/en/api/errors>
const ANTHROPIC: &[Fixture] = &[
    // https://docs.anthropic.com/en/api/errors (529 overloaded_error)
    fx(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, Overloaded),
    // https://docs.anthropic.com/en/api/rate-limits (429 with retry-after)
    fx(429, r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#, RateLimited).headers(&[("retry-after", "30")]).hint(30_000),
    // https://docs.anthropic.com/en/api/errors (400 invalid_request_error, prompt too long)
    fx(400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215000 tokens > 200000 maximum"}}"#, ContextLengthExceeded),
    // https://docs.anthropic.com/en/api/errors (401 authentication_error)
    fx(401, r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#, Auth),
    // https://docs.anthropic.com/en/api/errors (credit balance)
    fx(400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#, QuotaExhausted),
    // https://docs.anthropic.com/en/api/errors (402 billing_error)
    fx(402, r#"{"type":"error","error":{"type":"billing_error","message":"There is an issue with your billing."}}"#, QuotaExhausted),
    // https://docs.anthropic.com/en/api/errors (413 request_too_large)
    fx(413, r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#, ContextLengthExceeded),
    // https://docs.anthropic.com/en/api/errors (500 api_error)
    fx(500, r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#, Server),
    // https://docs.anthropic.com/en/api/errors (403 permission_error)
    fx(403, r#"{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}"#, Auth),
    // https://docs.anthropic.com/en/api/errors (404 not_found_error)
    fx(404, r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}"#, NotFound),
];

/// <https://ai.google.dev/gemini-api/docs/troubleshooting>, <https://ai.google.dev/gemini-api/docs/rate-limits>
const GEMINI: &[Fixture] = &[
    // https://ai.google.dev/gemini-api/docs/rate-limits (per-minute quota: a rate limit, RetryInfo)
    fx(429, r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.0-flash"},"quotaValue":"15"}]},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"35s"}]}}"#, RateLimited).hint(35_000),
    // https://ai.google.dev/gemini-api/docs/rate-limits (per-day quota: exhausted until tomorrow)
    fx(429, r#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"50"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3600s"}]}}"#, QuotaExhausted).hint(3_600_000),
    // https://ai.google.dev/api/generate-content (RetryInfo's Duration with a fraction)
    fx(429, r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.500s"}]}}"#, RateLimited).hint(1_500),
    // https://ai.google.dev/gemini-api/docs/rate-limits (the hint in the message only)
    fx(429, r#"{"error":{"code":429,"message":"Quota exceeded for metric: generate_content_free_tier_input_token_count, limit: 250000. Please retry in 12.5s.","status":"RESOURCE_EXHAUSTED"}}"#, RateLimited).hint(12_500),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (400 INVALID_ARGUMENT, too many tokens)
    fx(400, r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#, ContextLengthExceeded),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (400 API_KEY_INVALID)
    fx(400, r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}"#, Auth),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (400 INVALID_ARGUMENT, malformed)
    fx(400, r#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"foo\": Cannot find field.","status":"INVALID_ARGUMENT"}}"#, BadRequest),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (400 FAILED_PRECONDITION)
    fx(400, r#"{"error":{"code":400,"message":"Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.","status":"FAILED_PRECONDITION"}}"#, BadRequest),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (403 PERMISSION_DENIED)
    fx(403, r#"{"error":{"code":403,"message":"Method doesn't allow unregistered callers.","status":"PERMISSION_DENIED"}}"#, Auth),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (404 NOT_FOUND)
    fx(404, r#"{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta.","status":"NOT_FOUND"}}"#, NotFound),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (500 INTERNAL)
    fx(500, r#"{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}"#, Server),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (503 UNAVAILABLE)
    fx(503, r#"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}"#, Overloaded),
    // https://ai.google.dev/gemini-api/docs/troubleshooting (504 DEADLINE_EXCEEDED)
    fx(504, r#"{"error":{"code":504,"message":"Deadline expired before operation could complete.","status":"DEADLINE_EXCEEDED"}}"#, Server),
];

/// <https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429>,
/// <https://cloud.google.com/vertex-ai/docs/general/troubleshooting>
const VERTEX: &[Fixture] = &[
    // https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 (shared quota: retry)
    fx(
        429,
        r#"{"error":{"code":429,"message":"Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.","status":"RESOURCE_EXHAUSTED"}}"#,
        RateLimited,
    ),
    // https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 (streaming: array-wrapped)
    fx(
        429,
        r#"[{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model.","status":"RESOURCE_EXHAUSTED"}}]"#,
        RateLimited,
    ),
    // https://cloud.google.com/vertex-ai/docs/general/troubleshooting (503 UNAVAILABLE, overloaded)
    fx(
        503,
        r#"[{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}]"#,
        Overloaded,
    ),
    // https://cloud.google.com/vertex-ai/docs/general/troubleshooting (403 PERMISSION_DENIED)
    fx(
        403,
        r#"{"error":{"code":403,"message":"Permission 'aiplatform.endpoints.predict' denied on resource.","status":"PERMISSION_DENIED"}}"#,
        Auth,
    ),
    // https://cloud.google.com/vertex-ai/docs/general/troubleshooting (400 INVALID_ARGUMENT, too long)
    fx(
        400,
        r#"{"error":{"code":400,"message":"The input token count (2100000) exceeds the maximum number of tokens allowed (2097152).","status":"INVALID_ARGUMENT"}}"#,
        ContextLengthExceeded,
    ),
];

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html#API_runtime_InvokeModel_Errors>,
/// <https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html>
const BEDROCK: &[Fixture] = &[
    // https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html (ThrottlingException)
    fx(429, r#"{"message":"Too many requests, please wait before trying again."}"#, RateLimited).headers(&[("x-amzn-errortype", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html (ValidationException, too long)
    fx(400, r#"{"message":"Input is too long for requested model."}"#, ContextLengthExceeded).headers(&[("x-amzn-errortype", "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html (a 400 that says too many tokens, no header)
    fx(400, r#"{"message":"The model returned the following errors: too many tokens in the request"}"#, ContextLengthExceeded),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html (ValidationException, malformed)
    fx(400, r#"{"message":"Malformed input request: #: required key [messages] not found, please reformat your input and try again."}"#, BadRequest).headers(&[("x-amzn-errortype", "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html (AccessDeniedException)
    fx(403, r#"{"message":"You don't have access to the model with the specified model ID."}"#, Auth).headers(&[("x-amzn-errortype", "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html (ModelNotReadyException, the SDK retries it)
    fx(429, r#"{"message":"Model is not ready for inference. Wait and try your request again."}"#, Overloaded).headers(&[("x-amzn-errortype", "ModelNotReadyException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html (ModelTimeoutException)
    fx(408, r#"{"message":"Model has timed out in processing the request. Try your request again."}"#, RequestTimeout).headers(&[("x-amzn-errortype", "ModelTimeoutException")]),
    // https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html (ServiceUnavailableException)
    fx(503, r#"{"message":"Bedrock is unable to process your request."}"#, Server).headers(&[("x-amzn-errortype", "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html (ServiceQuotaExceededException, in __type)
    fx(400, r#"{"__type":"com.amazon.bedrock#ServiceQuotaExceededException","message":"Your request exceeds the service quota for your account."}"#, QuotaExhausted),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html (InternalServerException)
    fx(500, r#"{"message":"The server encountered an internal error while processing the request."}"#, Server).headers(&[("x-amzn-errortype", "InternalServerException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html (ResourceNotFoundException)
    fx(404, r#"{"message":"The specified resource ARN was not found."}"#, NotFound).headers(&[("x-amzn-errortype", "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html (ModelErrorException, 424)
    fx(424, r#"{"message":"The model returned an error.","originalStatusCode":500}"#, Server).headers(&[("x-amzn-errortype", "ModelErrorException:http://internal.amazon.com/coral/com.amazon.bedrock/")]),
    // https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html (UnrecognizedClientException in __type)
    fx(403, r#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}"#, Auth),
];

/// <https://docs.mistral.ai/resources/error-glossary>
const MISTRAL: &[Fixture] = &[
    // https://docs.mistral.ai/resources/error-glossary (error response format, unknown model)
    fx(
        400,
        r#"{"object":"error","message":"Invalid model: mistral-huge-latest","type":"invalid_request_error","param":"model","code":"unknown_model"}"#,
        NotFound,
    ),
    // https://docs.mistral.ai/resources/error-glossary (429 rate_limit_error)
    fx(
        429,
        r#"{"object":"error","message":"Requests rate limit exceeded","type":"rate_limit_error","param":null,"code":null}"#,
        RateLimited,
    ),
    // https://docs.mistral.ai/resources/error-glossary (401 from the gateway)
    fx(401, r#"{"message":"Unauthorized","request_id":"a1b2c3"}"#, Auth),
    // https://docs.mistral.ai/resources/error-glossary (400, prompt over the context window)
    fx(
        400,
        r#"{"object":"error","message":"Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length","type":"invalid_request_error","param":null,"code":null}"#,
        ContextLengthExceeded,
    ),
    // https://docs.mistral.ai/resources/error-glossary (422, validation detail as an object)
    fx(
        422,
        r#"{"object":"error","message":{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required"}]},"type":"invalid_request_error","param":null,"code":null}"#,
        BadRequest,
    ),
    // https://docs.mistral.ai/resources/error-glossary (5xx server_error)
    fx(
        503,
        r#"{"object":"error","message":"Service unavailable","type":"server_error","param":null,"code":null}"#,
        Server,
    ),
];

/// <https://console.groq.com/docs/errors>, <https://console.groq.com/docs/rate-limits>
const GROQ: &[Fixture] = &[
    // https://console.groq.com/docs/rate-limits (429 with retry-after header, which wins)
    fx(429, r#"{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_1` on tokens per minute (TPM): Limit 6000, Used 5411, Requested 1133. Please try again in 5.44s. Visit https://console.groq.com/docs/rate-limits for more information.","type":"tokens","code":"rate_limit_exceeded"}}"#, RateLimited).headers(&[("retry-after", "6")]).hint(6_000),
    // https://console.groq.com/docs/rate-limits (the body's hint alone)
    fx(429, r#"{"error":{"message":"Rate limit reached for model `llama-3.1-8b-instant` on tokens per minute (TPM): Limit 6000, Used 5800, Requested 900. Please try again in 7.66s.","type":"tokens","code":"rate_limit_exceeded"}}"#, RateLimited).hint(7_660),
    // https://console.groq.com/docs/rate-limits (requests per day: minutes and fractional seconds)
    fx(429, r#"{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` on requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try again in 2m59.56s.","type":"requests","code":"rate_limit_exceeded"}}"#, RateLimited).hint(179_560),
    // https://console.groq.com/docs/errors (413: one request over the per-minute token limit)
    fx(413, r#"{"error":{"message":"Request too large for model `llama3-8b-8192` in organization `org_1` on tokens per minute (TPM): Limit 6000, Requested 8640, please reduce your message size and try again.","type":"tokens","code":"rate_limit_exceeded"}}"#, ContextLengthExceeded),
    // https://console.groq.com/docs/flex-processing (498 capacity_exceeded)
    fx(498, r#"{"error":{"message":"Flex tier capacity exceeded. Please try again later.","type":"service_unavailable","code":"capacity_exceeded"}}"#, Overloaded),
    // https://console.groq.com/docs/errors (401)
    fx(401, r#"{"error":{"message":"Invalid API Key","type":"invalid_request_error","code":"invalid_api_key"}}"#, Auth),
    // https://console.groq.com/docs/errors (404)
    fx(404, r#"{"error":{"message":"The model `llama-9` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}}"#, NotFound),
];

/// <https://docs.cohere.com/reference/errors>
const COHERE: &[Fixture] = &[
    // https://docs.cohere.com/reference/errors (400 too many tokens)
    fx(
        400,
        r#"{"id":"3f1c","message":"too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292. Try using a shorter prompt, or enabling prompt truncating."}"#,
        ContextLengthExceeded,
    ),
    // https://docs.cohere.com/reference/errors (429 trial key per minute)
    fx(
        429,
        r#"{"id":"3f1d","message":"You are using a Trial key, which is limited to 40 API calls / minute. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits."}"#,
        RateLimited,
    ),
    // https://docs.cohere.com/reference/errors (429 trial key per month)
    fx(
        429,
        r#"{"id":"3f1e","message":"You are using a Trial key, which is limited to 1000 API calls / month. You can continue to use the Trial key for free or upgrade to a Production key."}"#,
        QuotaExhausted,
    ),
    // https://docs.cohere.com/reference/errors (402 billing limit)
    fx(
        402,
        r#"{"id":"3f1f","message":"Please add or update your payment method at https://dashboard.cohere.com/billing?tab=payment to continue"}"#,
        QuotaExhausted,
    ),
    // https://docs.cohere.com/reference/errors (401)
    fx(401, r#"{"id":"3f20","message":"invalid api token"}"#, Auth),
    // https://docs.cohere.com/reference/errors (404)
    fx(
        404,
        r#"{"id":"3f21","message":"model 'command-x' not found, make sure the correct model ID was used and that you have access to the model."}"#,
        NotFound,
    ),
    // https://docs.cohere.com/reference/errors (500)
    fx(500, r#"{"id":"3f22","message":"internal server error, this has been reported to our developers"}"#, Server),
];

/// <https://openrouter.ai/docs/api-reference/errors>
const OPENROUTER: &[Fixture] = &[
    // https://openrouter.ai/docs/api-reference/errors (402 insufficient credits)
    fx(
        402,
        r#"{"error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits","metadata":{"limit_source":"openrouter_credits"}}}"#,
        QuotaExhausted,
    ),
    // https://openrouter.ai/docs/api-reference/errors (403 moderation: flagged input)
    fx(
        403,
        r#"{"error":{"code":403,"message":"meta-llama/llama-guard-3-8b flagged your input","metadata":{"reasons":["violence"],"flagged_input":"...","provider_name":"OpenAI","model_slug":"openai/gpt-4o"}}}"#,
        ContentFiltered,
    ),
    // https://openrouter.ai/docs/api-reference/errors (429)
    fx(429, r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min."}}"#, RateLimited),
    // https://openrouter.ai/docs/api-reference/errors (502 provider error, raw upstream body)
    fx(
        502,
        r#"{"error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"Together","raw":"{\"error\":\"upstream\"}"}}}"#,
        Server,
    ),
    // https://openrouter.ai/docs/api-reference/errors (408)
    fx(408, r#"{"error":{"code":408,"message":"Request timed out"}}"#, RequestTimeout),
    // https://openrouter.ai/docs/api-reference/errors (503 no provider)
    fx(503, r#"{"error":{"code":503,"message":"No allowed providers are available for the selected model."}}"#, Server),
    // https://openrouter.ai/docs/api-reference/errors (401)
    fx(401, r#"{"error":{"code":401,"message":"No auth credentials found"}}"#, Auth),
];

/// <https://api-docs.deepseek.com/quick_start/error_codes>
const DEEPSEEK: &[Fixture] = &[
    // https://api-docs.deepseek.com/quick_start/error_codes (402 Insufficient Balance)
    fx(
        402,
        r#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#,
        QuotaExhausted,
    ),
    // https://api-docs.deepseek.com/quick_start/error_codes (422 Invalid Parameters)
    fx(
        422,
        r#"{"error":{"message":"Invalid max_tokens value, the valid range of max_tokens is [1, 8192]","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#,
        BadRequest,
    ),
    // https://api-docs.deepseek.com/quick_start/error_codes (400, context length)
    fx(
        400,
        r#"{"error":{"message":"This model's maximum context length is 65536 tokens. However, you requested 70000 tokens (69000 in the messages, 1000 in the completion).","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#,
        ContextLengthExceeded,
    ),
    // https://api-docs.deepseek.com/quick_start/error_codes (503 Server Overloaded)
    fx(
        503,
        r#"{"error":{"message":"The server is overloaded due to high traffic. Please retry your request after a brief wait.","type":"server_error","param":null,"code":null}}"#,
        Overloaded,
    ),
    // https://api-docs.deepseek.com/quick_start/error_codes (429 Rate Limit Reached)
    fx(
        429,
        r#"{"error":{"message":"Rate Limit Reached","type":"rate_limit_error","param":null,"code":null}}"#,
        RateLimited,
    ),
    // https://api-docs.deepseek.com/quick_start/error_codes (401 Authentication Fails)
    fx(
        401,
        r#"{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid","type":"authentication_error","param":null,"code":"invalid_request_error"}}"#,
        Auth,
    ),
];

/// <https://docs.x.ai/docs/key-information/debugging>
const XAI: &[Fixture] = &[
    // https://docs.x.ai/docs/key-information/debugging (400: an incorrect API key)
    fx(
        400,
        r#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***yz. You can obtain an API key from https://console.x.ai."}"#,
        Auth,
    ),
    // https://docs.x.ai/docs/key-information/debugging (429: credits or spending limit)
    fx(
        429,
        r#"{"code":"Some resource has been exhausted","error":"Your team abc has either used all available credits or reached its monthly spending limit. To continue making API requests, please purchase more credits or raise your spending limit."}"#,
        QuotaExhausted,
    ),
    // https://docs.x.ai/docs/key-information/debugging (400: prompt too long)
    fx(
        400,
        r#"{"code":"Client specified an invalid argument","error":"This model's maximum prompt length is 131072 but the request contains 150000 tokens."}"#,
        ContextLengthExceeded,
    ),
    // https://docs.x.ai/docs/key-information/debugging (404)
    fx(
        404,
        r#"{"code":"Some requested entity was not found","error":"The model grok-9 does not exist or your team does not have access to it."}"#,
        NotFound,
    ),
    // https://docs.x.ai/docs/key-information/debugging (429 rate limit)
    fx(
        429,
        r#"{"code":"Some resource has been exhausted","error":"Too many requests. Please slow down."}"#,
        RateLimited,
    ),
    // https://docs.x.ai/docs/key-information/debugging (403 blocked)
    fx(
        403,
        r#"{"code":"The caller does not have permission to execute the specified operation","error":"Your team is blocked."}"#,
        Auth,
    ),
];

/// <https://docs.together.ai/docs/error-codes>
const TOGETHER: &[Fixture] = &[
    // https://docs.together.ai/docs/error-codes (403: tokens over the context length)
    fx(
        403,
        r#"{"error":{"message":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 32769. Given: 40000 `inputs` tokens and 512 `max_new_tokens`","type":"invalid_request_error","param":"max_tokens","code":null}}"#,
        ContextLengthExceeded,
    ),
    // https://docs.together.ai/docs/error-codes (402 credit limit)
    fx(
        402,
        r#"{"error":{"message":"Credit limit exceeded. Please add a payment method.","type":"invalid_request_error","param":null,"code":null}}"#,
        QuotaExhausted,
    ),
    // https://docs.together.ai/docs/error-codes (503 engine overloaded)
    fx(
        503,
        r#"{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}"#,
        Overloaded,
    ),
    // https://docs.together.ai/docs/error-codes (429)
    fx(
        429,
        r#"{"error":{"message":"You have reached the rate limit specific to this model.","type":"rate_limit","param":null,"code":"rate_limit_exceeded"}}"#,
        RateLimited,
    ),
    // https://docs.together.ai/docs/error-codes (401)
    fx(
        401,
        r#"{"error":{"message":"Invalid API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        Auth,
    ),
    // https://docs.together.ai/docs/error-codes (524 Cloudflare timeout)
    fx(524, "<html><body>A timeout occurred</body></html>", Server),
];

/// <https://docs.fireworks.ai/guides/inference-error-codes>
const FIREWORKS: &[Fixture] = &[
    // https://docs.fireworks.ai/guides/inference-error-codes (400, prompt too long)
    fx(
        400,
        r#"{"error":{"object":"error","type":"invalid_request_error","message":"The prompt is too long: 40000, model maximum context length: 32768"}}"#,
        ContextLengthExceeded,
    ),
    // https://docs.fireworks.ai/guides/inference-error-codes (402 Payment Required)
    fx(
        402,
        r#"{"error":{"object":"error","type":"invalid_request_error","message":"Account is not on a paid plan or has exceeded usage limits."}}"#,
        QuotaExhausted,
    ),
    // https://docs.fireworks.ai/guides/inference-error-codes (429)
    fx(
        429,
        r#"{"error":{"object":"error","type":"invalid_request_error","message":"Request rate limit exceeded, please try again later"}}"#,
        RateLimited,
    ),
    // https://docs.fireworks.ai/guides/inference-error-codes (404)
    fx(
        404,
        r#"{"error":{"object":"error","type":"invalid_request_error","message":"Model not found, inaccessible, and/or not deployed"}}"#,
        NotFound,
    ),
    // https://docs.fireworks.ai/guides/inference-error-codes (401)
    fx(
        401,
        r#"{"error":{"object":"error","type":"invalid_request_error","message":"The API key you provided is invalid."}}"#,
        Auth,
    ),
    // https://docs.fireworks.ai/guides/inference-error-codes (503)
    fx(503, r#"{"error":{"object":"error","type":"internal_server_error","message":"Service unavailable"}}"#, Server),
];

/// <https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html>
const VLLM: &[Fixture] = &[
    // https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html (ErrorResponse, context)
    fx(
        400,
        r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).","type":"BadRequestError","param":null,"code":400}"#,
        ContextLengthExceeded,
    ),
    // https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html (unknown model)
    fx(
        404,
        r#"{"object":"error","message":"The model `llama-9` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
        NotFound,
    ),
    // https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html (other bad request)
    fx(
        400,
        r#"{"object":"error","message":"temperature must be non-negative, got -1.0.","type":"BadRequestError","param":null,"code":400}"#,
        BadRequest,
    ),
    // https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html (newer: nested under "error")
    fx(
        400,
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your request has 9000 input tokens.","type":"BadRequestError","param":null,"code":400}}"#,
        ContextLengthExceeded,
    ),
];

/// <https://huggingface.github.io/text-generation-inference/> (`ErrorResponse`)
const TGI: &[Fixture] = &[
    // https://huggingface.github.io/text-generation-inference/ (429 overloaded: the queue is full)
    fx(429, r#"{"error":"Model is overloaded","error_type":"overloaded"}"#, Overloaded),
    // https://huggingface.github.io/text-generation-inference/ (422 validation, input too long)
    fx(
        422,
        r#"{"error":"Input validation error: `inputs` must have less than 4096 tokens. Given: 5000","error_type":"validation"}"#,
        ContextLengthExceeded,
    ),
    // https://huggingface.github.io/text-generation-inference/ (422 validation)
    fx(
        422,
        r#"{"error":"Input validation error: `temperature` must be strictly positive","error_type":"validation"}"#,
        BadRequest,
    ),
    // https://huggingface.github.io/text-generation-inference/ (424 generation)
    fx(
        424,
        r#"{"error":"Request failed during generation: Server error: CUDA out of memory.","error_type":"generation"}"#,
        Server,
    ),
    // https://huggingface.github.io/text-generation-inference/ (500 incomplete_generation)
    fx(500, r#"{"error":"Incomplete generation","error_type":"incomplete_generation"}"#, Server),
];

/// <https://github.com/ollama/ollama/blob/main/docs/api.md> (errors), <https://github.com/ollama/ollama/blob/main/docs/faq.md> (OLLAMA_MAX_QUEUE)
const OLLAMA: &[Fixture] = &[
    // https://github.com/ollama/ollama/blob/main/docs/api.md (404 model not pulled)
    fx(404, r#"{"error":"model \"llama9\" not found, try pulling it first"}"#, NotFound),
    // https://github.com/ollama/ollama/blob/main/docs/faq.md (503 when the queue is full)
    fx(503, r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#, Overloaded),
    // https://github.com/ollama/ollama/blob/main/docs/api.md (500 runner died)
    fx(500, r#"{"error":"llama runner process has terminated: exit status 2"}"#, Server),
    // https://github.com/ollama/ollama/blob/main/docs/api.md (400 bad options)
    fx(400, r#"{"error":"invalid options: foo"}"#, BadRequest),
];

const PROVIDERS: &[(&str, &[Fixture])] = &[
    ("OpenAI", OPENAI),
    ("Azure OpenAI", AZURE),
    ("Anthropic", ANTHROPIC),
    ("Gemini (AI Studio)", GEMINI),
    ("Vertex AI", VERTEX),
    ("AWS Bedrock", BEDROCK),
    ("Mistral", MISTRAL),
    ("Groq", GROQ),
    ("Cohere", COHERE),
    ("OpenRouter", OPENROUTER),
    ("DeepSeek", DEEPSEEK),
    ("xAI", XAI),
    ("Together", TOGETHER),
    ("Fireworks", FIREWORKS),
    ("vLLM", VLLM),
    ("TGI", TGI),
    ("Ollama", OLLAMA),
];

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    h
}

#[test]
fn every_documented_shape_classifies_as_its_provider_means() {
    let mut failures = Vec::new();
    for (provider, fixtures) in PROVIDERS {
        for (i, f) in fixtures.iter().enumerate() {
            let headers = header_map(f.headers);
            let want_hint = f.hint_ms.map(|ms| RetryAfter::Delay(Duration::from_millis(ms)));
            let c = classify_response_at(f.status, &headers, Some(f.body.as_bytes()), now());
            let e = ApiError::from_response_at(f.status, &headers, f.body.as_bytes(), now());
            let got = (c.kind, c.status, c.retry_after, e.kind(), e.retry_after(), e.classify());
            if (got.0, got.1, got.2, got.3, got.4) != (f.kind, Some(f.status), want_hint, f.kind, want_hint)
                || got.5 != c
            {
                failures.push(format!(
                    "{provider} #{i} ({} {}): want {:?} {want_hint:?}, got classify {:?} {:?}, ApiError {:?} {:?}",
                    f.status,
                    f.body,
                    f.kind,
                    c.kind,
                    c.retry_after,
                    e.kind(),
                    e.retry_after()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} fixtures misclassified:\n{}", failures.len(), failures.join("\n"));
}

/// The header alone carries Bedrock's kind: a response whose body was not read.
#[test]
fn bedrock_header_reaches_the_decision_without_a_body() {
    let h = header_map(&[(
        "x-amzn-errortype",
        "ModelNotReadyException:http://internal.amazon.com/coral/com.amazon.bedrock/",
    )]);
    assert_eq!(classify_response_at(429, &h, None, now()).kind, Overloaded);
    let h = header_map(&[("x-amzn-errortype", "ServiceQuotaExceededException")]);
    assert_eq!(classify_response_at(400, &h, None, now()).kind, QuotaExhausted);
    // A body that names its own error wins over the header.
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    assert_eq!(classify_response_at(529, &h, Some(body), now()).kind, Overloaded);
    // Garbage in the header is ignored.
    let h = header_map(&[("x-amzn-errortype", "not an exception; drop table")]);
    assert_eq!(classify_response_at(429, &h, None, now()).kind, RateLimited);
}

/// Body hints obey the header rules: capped at `MAX_HINT`, zero ignored, a header wins.
#[test]
fn body_hints_follow_the_header_rules() {
    let body = |delay: &str| {
        format!(
            r#"{{"error":{{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{delay}"}}]}}}}"#
        )
    };
    let hint = |b: &str, h: &HeaderMap| classify_response_at(429, h, Some(b.as_bytes()), now()).retry_after;
    let none = HeaderMap::new();
    assert_eq!(hint(&body("604800s"), &none), Some(RetryAfter::Delay(RetryAfter::MAX_HINT)));
    for unusable in ["604801s", "0s", "-5s", "NaNs", "1e3s", "", "s", "35"] {
        assert_eq!(hint(&body(unusable), &none), None, "{unusable:?}");
    }
    // An unusable header does not hide the body's hint; a usable one beats it.
    assert_eq!(
        hint(&body("35s"), &header_map(&[("retry-after", "soon")])),
        Some(RetryAfter::Delay(Duration::from_secs(35)))
    );
    assert_eq!(
        hint(&body("35s"), &header_map(&[("retry-after", "2")])),
        Some(RetryAfter::Delay(Duration::from_secs(2)))
    );
    // x-ratelimit-reset-* (on a 429) is a header too.
    let reset = header_map(&[("x-ratelimit-reset-tokens", "250ms")]);
    assert_eq!(hint(&body("35s"), &reset), Some(RetryAfter::Delay(Duration::from_millis(250))));
}

#[test]
fn the_fixtures_cover_every_major_provider() {
    let total: usize = PROVIDERS.iter().map(|(_, f)| f.len()).sum();
    assert!(total >= 60, "{total} fixtures");
    assert!(PROVIDERS.len() >= 12, "{} providers", PROVIDERS.len());
    for (provider, fixtures) in PROVIDERS {
        assert!(fixtures.len() >= 4, "{provider}: only {} fixtures", fixtures.len());
    }
    // The provider × kind table of what the fixtures prove (see the report and docs/RELIABILITY.md).
    let kinds: Vec<ErrorKind> =
        ErrorKind::ALL.into_iter().filter(|k| PROVIDERS.iter().any(|(_, f)| f.iter().any(|x| x.kind == *k))).collect();
    let mut table = format!(
        "| provider | fixtures | {} | hint |\n",
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(" | ")
    );
    table.push_str(&format!("| --- | ---: |{} :---: |\n", " :---: |".repeat(kinds.len())));
    let mut per_kind: BTreeMap<ErrorKind, usize> = BTreeMap::new();
    for (provider, fixtures) in PROVIDERS {
        let cells: Vec<&str> = kinds
            .iter()
            .map(|k| {
                let n = fixtures.iter().filter(|f| f.kind == *k).count();
                *per_kind.entry(*k).or_default() += n;
                if n > 0 { "✓" } else { "" }
            })
            .collect();
        let hint = if fixtures.iter().any(|f| f.hint_ms.is_some()) { "✓" } else { "" };
        table.push_str(&format!("| {provider} | {} | {} | {hint} |\n", fixtures.len(), cells.join(" | ")));
    }
    println!("{total} fixtures, {} providers\n\n{table}", PROVIDERS.len());
    assert!(per_kind.len() >= 9, "{per_kind:?}");
}
