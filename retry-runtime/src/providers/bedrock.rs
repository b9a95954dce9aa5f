//! AWS Bedrock Runtime: the exception's name in the `x-amzn-ErrorType` header
//! (`ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/`) or the body's
//! `__type` (`com.amazon.coral.service#UnrecognizedClientException`), and a body
//! `{"message": "..."}` (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html#API_runtime_InvokeModel_Errors>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html>).

use super::{Provider, ProviderBody, str_field, text_field};
use crate::ErrorKind;
use serde_json::{Map, Value};

/// The header AWS services name the exception in.
const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// The longest exception name kept.
const MAX_NAME: usize = 64;

pub(super) fn parse(root: &Map<String, Value>) -> Option<ProviderBody> {
    let name = exception_name(str_field(root, "__type")?)?;
    let message = text_field(root.get("message")).or_else(|| text_field(root.get("Message")));
    Some(ProviderBody::shaped(Provider::Bedrock, message, Some(name.to_owned()), None))
}

/// `ThrottlingException` out of `ThrottlingException:http://...` or `com.amazon...#ThrottlingException`,
/// if it looks like an exception name.
fn exception_name(raw: &str) -> Option<&str> {
    let name = raw.rsplit('#').next()?.split(':').next()?.trim();
    let plausible = !name.is_empty() && name.len() <= MAX_NAME && name.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then_some(name)
}

fn header_name(headers: &http::HeaderMap) -> Option<&str> {
    exception_name(std::str::from_utf8(headers.get(ERROR_TYPE_HEADER)?.as_bytes()).ok()?)
}

/// The header's exception, for a body that names none (a bare message, or no JSON): the body
/// keeps its message and hint, and becomes Bedrock's. A body that names its own error wins.
pub(super) fn with_header(mut body: ProviderBody, headers: &http::HeaderMap) -> ProviderBody {
    let Some(name) = header_name(headers) else { return body };
    if matches!(body.provider, Provider::Cohere | Provider::Unknown | Provider::Bedrock) && body.error_type.is_none() {
        body.provider = Provider::Bedrock;
        body.error_type = Some(name.to_owned());
    }
    body
}

/// The header's exception alone, for a response whose body was not read.
pub(super) fn from_header(headers: &http::HeaderMap) -> Option<ProviderBody> {
    let name = header_name(headers)?;
    Some(ProviderBody::shaped(Provider::Bedrock, None, Some(name.to_owned()), None))
}

pub(super) fn refine(body: &ProviderBody) -> Option<ErrorKind> {
    Some(match body.error_type.as_deref()? {
        "ThrottlingException" | "TooManyRequestsException" => ErrorKind::RateLimited,
        // "Your request exceeds the service quota for your account."
        "ServiceQuotaExceededException" => ErrorKind::QuotaExhausted,
        // "The model specified in the request is not ready to serve inference requests. The
        // AWS SDK will automatically retry the operation up to 5 times."
        "ModelNotReadyException" => ErrorKind::Overloaded,
        "ModelTimeoutException" => ErrorKind::RequestTimeout,
        "ServiceUnavailableException"
        | "InternalServerException"
        | "InternalFailure"
        | "ModelErrorException"
        | "ModelStreamErrorException" => ErrorKind::Server,
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => ErrorKind::Auth,
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "ConflictException" => ErrorKind::Conflict,
        "ValidationException" if body.says_too_long() => ErrorKind::ContextLengthExceeded,
        "ValidationException" => ErrorKind::BadRequest,
        _ => return None,
    })
}
