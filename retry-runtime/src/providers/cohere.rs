//! A bare `{"message": "..."}` (with perhaps an `id`): Cohere's errors
//! (<https://docs.cohere.com/reference/errors>), and what gateways in front of other providers
//! send (Mistral's 401, Bedrock without its `x-amzn-ErrorType` header). The status and the
//! message decide, as for OpenAI's shape.

use super::{Provider, ProviderBody};
use serde_json::{Map, Value};

pub(super) fn parse(root: &Map<String, Value>) -> Option<ProviderBody> {
    if root.contains_key("error") {
        return None;
    }
    let message = root.get("message").or_else(|| root.get("Message"))?.as_str()?;
    if message.is_empty() {
        return None;
    }
    Some(ProviderBody::shaped(Provider::Cohere, Some(message.to_owned()), None, None))
}
