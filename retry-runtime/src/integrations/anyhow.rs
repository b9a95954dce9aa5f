//! `anyhow` 1: [`Classify`] for `anyhow::Error`, by the errors in its chain.

use crate::any_error::classify_chain;
use crate::classify::{Classification, Classify};

/// Classifies an `anyhow::Error` by its chain (feature `anyhow`), so an annotated fn may
/// return `anyhow::Result<T>`.
///
/// The error and each cause below it (at most 32) are downcast to the types the runtime
/// knows: [`ApiError`](crate::ApiError), `std::io::Error`, [`Timeout`](crate::Timeout),
/// [`InvalidOutput`](crate::InvalidOutput), tokio's `Elapsed`, and with their features
/// `reqwest::Error` and async-openai's `OpenAIError`. The first that says something decides;
/// layers added with `.context(..)` are seen through. A chain with none of them (an
/// `anyhow!("...")` message, say) is [`ErrorKind::Other`](crate::ErrorKind::Other).
///
/// `deadline`, `attempt_timeout` and `validate` need `From<Timeout>` and
/// `From<InvalidOutput>`: anyhow's `From<E: Error>` provides both.
///
/// ```
/// use anyhow::Context;
/// use llm_retry_runtime::{ApiError, Classify, ErrorKind};
///
/// let e = anyhow::Error::from(ApiError::from_status(429)).context("calling openai");
/// assert_eq!(e.classify().kind, ErrorKind::RateLimited);
///
/// let read: Result<(), std::io::Error> = Err(std::io::ErrorKind::ConnectionReset.into());
/// let e = read.context("reading the reply").unwrap_err();
/// assert_eq!(e.classify().kind, ErrorKind::Connection);
///
/// assert_eq!(anyhow::anyhow!("no answer").classify().kind, ErrorKind::Other);
/// ```
impl Classify for ::anyhow::Error {
    fn classify(&self) -> Classification {
        classify_chain(&**self)
    }
}

#[cfg(test)]
mod tests {
    use crate::http::RetryAfter;
    use crate::{ApiError, Classify, ErrorKind, InvalidOutput, Timeout};
    use ::anyhow::Context;
    use std::time::Duration;

    #[test]
    fn context_layers_are_seen_through() {
        let hint = RetryAfter::Delay(Duration::from_secs(3));
        let e = ::anyhow::Error::from(ApiError::from_status(429).with_retry_after(hint))
            .context("calling openai")
            .context("summarising");
        let c = e.classify();
        assert_eq!((c.kind, c.status, c.retry_after), (ErrorKind::RateLimited, Some(429), Some(hint)));
        // On a Result of a std error, `.context` builds anyhow's other context type.
        let r: Result<(), ApiError> = Err(ApiError::from_status(401));
        assert_eq!(r.context("calling openai").unwrap_err().classify().kind, ErrorKind::Auth);
    }

    #[test]
    fn the_runtime_errors_convert_and_classify() {
        let t = ::anyhow::Error::from(Timeout::attempt(Duration::from_secs(1)));
        assert_eq!(t.classify().kind, ErrorKind::Timeout);
        let v = ::anyhow::Error::from(InvalidOutput::new("empty"));
        assert_eq!(v.classify().kind, ErrorKind::InvalidOutput);
    }

    #[test]
    fn a_message_is_other() {
        let e = ::anyhow::anyhow!("status 429").context("calling openai");
        assert_eq!(e.classify(), crate::Classification::new(ErrorKind::Other));
    }
}
