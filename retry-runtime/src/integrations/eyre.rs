//! `eyre` 0.6: [`Classify`] for `eyre::Report`, by the errors in its chain.

use crate::any_error::classify_chain;
use crate::classify::{Classification, Classify};

/// Classifies an `eyre::Report` by its chain (feature `eyre`), so an annotated fn may return
/// `eyre::Result<T>` (or `color_eyre::Result<T>`, the same type).
///
/// The report's error and each cause below it (at most 32) are downcast to the types the
/// runtime knows: [`ApiError`](crate::ApiError), `std::io::Error`, [`Timeout`](crate::Timeout),
/// [`InvalidOutput`](crate::InvalidOutput), tokio's `Elapsed`, and with their features
/// `reqwest::Error` and async-openai's `OpenAIError`. The first that says something decides;
/// layers added with `.wrap_err(..)` are seen through. A chain with none of them (an
/// `eyre!("...")` message, say) is [`ErrorKind::Other`](crate::ErrorKind::Other).
///
/// `deadline`, `attempt_timeout` and `validate` need `From<Timeout>` and
/// `From<InvalidOutput>`: eyre's `From<E: Error>` provides both.
///
/// ```
/// use eyre::WrapErr;
/// use llm_retry_runtime::{ApiError, Classify, ErrorKind};
///
/// let e = eyre::Report::new(ApiError::from_status(503)).wrap_err("calling anthropic");
/// assert_eq!(e.classify().kind, ErrorKind::Server);
///
/// let read: Result<(), std::io::Error> = Err(std::io::ErrorKind::ConnectionReset.into());
/// let e = read.wrap_err("reading the reply").unwrap_err();
/// assert_eq!(e.classify().kind, ErrorKind::Connection);
///
/// assert_eq!(eyre::eyre!("no answer").classify().kind, ErrorKind::Other);
/// ```
impl Classify for ::eyre::Report {
    fn classify(&self) -> Classification {
        classify_chain(&**self)
    }
}

#[cfg(test)]
mod tests {
    use crate::http::RetryAfter;
    use crate::{ApiError, Classify, ErrorKind, InvalidOutput, Timeout};
    use ::eyre::WrapErr;
    use std::time::Duration;

    #[test]
    fn wrap_err_layers_are_seen_through() {
        let hint = RetryAfter::Delay(Duration::from_secs(3));
        let e = ::eyre::Report::new(ApiError::from_status(429).with_retry_after(hint))
            .wrap_err("calling openai")
            .wrap_err("summarising");
        let c = e.classify();
        assert_eq!((c.kind, c.status, c.retry_after), (ErrorKind::RateLimited, Some(429), Some(hint)));
        let r: Result<(), ApiError> = Err(ApiError::from_status(401));
        assert_eq!(r.wrap_err("calling openai").unwrap_err().classify().kind, ErrorKind::Auth);
    }

    #[test]
    fn the_runtime_errors_convert_and_classify() {
        let t = ::eyre::Report::from(Timeout::attempt(Duration::from_secs(1)));
        assert_eq!(t.classify().kind, ErrorKind::Timeout);
        let v = ::eyre::Report::from(InvalidOutput::new("empty"));
        assert_eq!(v.classify().kind, ErrorKind::InvalidOutput);
    }

    #[test]
    fn a_message_is_other() {
        let e = ::eyre::eyre!("status 429").wrap_err("calling openai");
        assert_eq!(e.classify(), crate::Classification::new(ErrorKind::Other));
    }
}
