//! Azure OpenAI: OpenAI's shapes, except where Azure documents its own.
//!
//! A rate limit is a `429` whose hint is in `retry-after` and `retry-after-ms` and again in the
//! message, "Please retry after N seconds."
//! (<https://learn.microsoft.com/azure/ai-services/openai/quotas-limits>); a bad key is a `401` with
//! Azure's `{"error":{"code":"401","message"}}`; a filtered prompt is a `400` with `code:
//! content_filter` and the filter's verdicts in `innererror`
//! (<https://learn.microsoft.com/azure/ai-services/openai/concepts/content-filter>).

use serde_json::json;

use super::{Answer, Failure};
use crate::RetryAfterHeader;

/// The API version quoted in messages.
const API_VERSION: &str = "2024-10-21";

/// Azure's own answer to a failure, or `None` where Azure answers as OpenAI.
pub(super) fn error(failure: Failure<'_>) -> Option<Answer> {
    Some(match failure {
        Failure::RateLimited(hint) => rate_limited(hint),
        Failure::Status(429) => rate_limited(&RetryAfterHeader::None),
        Failure::InvalidApiKey | Failure::Status(401) => Answer::json(
            401,
            json!({"error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
            }}),
        ),
        Failure::ContentFiltered => Answer::json(
            400,
            json!({"error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                "type": null,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        "hate": {"filtered": false, "severity": "safe"},
                        "jailbreak": {"filtered": false, "detected": false},
                        "self_harm": {"filtered": false, "severity": "safe"},
                        "sexual": {"filtered": false, "severity": "safe"},
                        "violence": {"filtered": true, "severity": "medium"}
                    }
                }
            }}),
        ),
        _ => return None,
    })
}

/// The hint's headers, and its wait again in the message in whole seconds, rounded up.
fn rate_limited(hint: &RetryAfterHeader) -> Answer {
    let advice = match hint.delay() {
        Some(wait) => {
            let secs = wait.as_nanos().div_ceil(1_000_000_000);
            format!(" Please retry after {secs} {}.", if secs == 1 { "second" } else { "seconds" })
        }
        None => String::new(),
    };
    let message = format!(
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {API_VERSION} have exceeded token rate limit of your current OpenAI S0 pricing tier.{advice} Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
    );
    Answer { status: 429, headers: hint.header_pairs(), body: json!({"error": {"code": "429", "message": message}}) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_rounds_the_hint_up_to_whole_seconds() {
        let message =
            |hint: RetryAfterHeader| rate_limited(&hint).body["error"]["message"].as_str().unwrap().to_owned();
        assert!(message(RetryAfterHeader::Millis(40)).contains("Please retry after 1 second."));
        assert!(message(RetryAfterHeader::Seconds(6.0)).contains("Please retry after 6 seconds."));
        assert!(message(RetryAfterHeader::Millis(6001)).contains("Please retry after 7 seconds."));
        assert!(!message(RetryAfterHeader::None).contains("retry after"));
    }
}
