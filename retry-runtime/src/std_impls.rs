//! [`Classify`] for the standard library's and tokio's errors, and the runtime's own.

use crate::ErrorKind;
use crate::classify::{Classification, Classify};
use crate::timeout::Timeout;
use crate::validate::InvalidOutput;

/// Connection failures are [`ErrorKind::Connection`], `TimedOut` is [`ErrorKind::Timeout`],
/// and an `io::Error` that wraps the runtime's [`Timeout`] or [`InvalidOutput`] (see their
/// `From` impls) or an [`ApiError`](crate::ApiError) is classified as the wrapped value.
/// Anything else is [`ErrorKind::Other`].
///
/// Connection kinds: `ConnectionRefused`, `ConnectionReset`, `ConnectionAborted`,
/// `NotConnected`, `BrokenPipe`, `UnexpectedEof`, `AddrNotAvailable`, `HostUnreachable`,
/// `NetworkUnreachable`, `NetworkDown`.
///
/// ```
/// use llm_retry_runtime::{Classify, ErrorKind, InvalidOutput};
/// use std::io;
///
/// assert_eq!(io::Error::from(io::ErrorKind::ConnectionReset).classify().kind, ErrorKind::Connection);
/// assert_eq!(io::Error::from(io::ErrorKind::TimedOut).classify().kind, ErrorKind::Timeout);
/// assert_eq!(io::Error::from(InvalidOutput::new("empty")).classify().kind, ErrorKind::InvalidOutput);
/// assert_eq!(io::Error::other("disk full").classify().kind, ErrorKind::Other);
/// ```
impl Classify for std::io::Error {
    fn classify(&self) -> Classification {
        if let Some(inner) = self.get_ref() {
            if let Some(t) = inner.downcast_ref::<Timeout>() {
                return t.classify();
            }
            if let Some(e) = inner.downcast_ref::<InvalidOutput>() {
                return e.classify();
            }
            if let Some(e) = inner.downcast_ref::<crate::ApiError>() {
                return e.classify();
            }
        }
        Classification::new(io_kind(self.kind()))
    }
}

/// The kind of an I/O error kind, without looking inside the error.
pub(crate) fn io_kind(kind: std::io::ErrorKind) -> ErrorKind {
    use std::io::ErrorKind as K;
    match kind {
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::NotConnected
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::AddrNotAvailable
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NetworkDown => ErrorKind::Connection,
        K::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Other,
    }
}

/// tokio's `timeout` ran out: [`ErrorKind::Timeout`].
///
/// ```
/// use llm_retry_runtime::{Classify, ErrorKind};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let elapsed = tokio::time::timeout(Duration::from_millis(1), std::future::pending::<()>()).await.unwrap_err();
/// assert_eq!(elapsed.classify().kind, ErrorKind::Timeout);
/// # }
/// ```
impl Classify for tokio::time::error::Elapsed {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::Timeout)
    }
}

/// The runtime's attempt or deadline timeout: [`ErrorKind::Timeout`].
///
/// ```
/// use llm_retry_runtime::{Classify, ErrorKind, Timeout};
/// assert_eq!(Timeout::attempt(std::time::Duration::from_secs(1)).classify().kind, ErrorKind::Timeout);
/// ```
impl Classify for Timeout {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::Timeout)
    }
}

/// A validator's rejection: [`ErrorKind::InvalidOutput`].
///
/// ```
/// use llm_retry_runtime::{Classify, ErrorKind, InvalidOutput};
/// assert_eq!(InvalidOutput::new("empty").classify().kind, ErrorKind::InvalidOutput);
/// ```
impl Classify for InvalidOutput {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::InvalidOutput)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn io_table() {
        use io::ErrorKind as K;
        let connection = [
            K::ConnectionRefused,
            K::ConnectionReset,
            K::ConnectionAborted,
            K::NotConnected,
            K::BrokenPipe,
            K::UnexpectedEof,
            K::AddrNotAvailable,
            K::HostUnreachable,
            K::NetworkUnreachable,
            K::NetworkDown,
        ];
        for k in connection {
            assert_eq!(io::Error::from(k).classify().kind, ErrorKind::Connection, "{k:?}");
        }
        assert_eq!(io::Error::from(K::TimedOut).classify().kind, ErrorKind::Timeout);
        for k in [K::NotFound, K::PermissionDenied, K::InvalidData, K::Interrupted, K::WouldBlock, K::Other] {
            assert_eq!(io::Error::from(k).classify().kind, ErrorKind::Other, "{k:?}");
        }
    }

    #[test]
    fn wrapped_runtime_errors() {
        let t: io::Error = Timeout::deadline(std::time::Duration::from_secs(1)).into();
        assert_eq!(t.classify().kind, ErrorKind::Timeout);
        // InvalidData alone would be Other: the downcast is what makes it InvalidOutput.
        let v: io::Error = InvalidOutput::new("bad json").into();
        assert_eq!(v.kind(), io::ErrorKind::InvalidData);
        assert_eq!(v.classify().kind, ErrorKind::InvalidOutput);
        let a = io::Error::other(crate::ApiError::from_status(429));
        assert_eq!(a.classify().kind, ErrorKind::RateLimited);
        assert_eq!(a.classify().status, Some(429));
    }
}
