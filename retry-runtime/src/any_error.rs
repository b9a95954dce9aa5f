//! Type-erased errors: [`Classify`] for `dyn Error` (so for `Box<dyn Error + Send + Sync>`),
//! and the source-chain walk that it, `anyhow::Error` and `eyre::Report` share.
//!
//! An application's error type often says nothing itself: it wraps the error that does. The
//! walk looks at the error, then at each `source()` in turn, and downcasts every link to each
//! type the runtime knows how to classify.

use crate::ErrorKind;
use crate::api_error::ApiError;
use crate::classify::{Classification, Classify};
use crate::timeout::Timeout;
use crate::validate::InvalidOutput;
use std::error::Error;

/// The most links of a source chain looked at: a hand-written `source()` that loops (or a
/// chain built to be endless) ends the walk here, as [`ErrorKind::Other`] if nothing known
/// came before.
pub(crate) const MAX_LINKS: usize = 32;

/// Classifies an error by its source chain: the error itself, then `source()` repeatedly, at
/// most [`MAX_LINKS`] links.
///
/// Each link is downcast to every type the runtime classifies: [`ApiError`], `std::io::Error`,
/// [`Timeout`], [`InvalidOutput`], tokio's `Elapsed`, and behind their features
/// `reqwest::Error` and async-openai's `OpenAIError`. The first known link that says
/// something decides. A known link that says nothing, a bare [`ErrorKind::Other`] with no
/// status and no hint (`io::Error::other(..)` is one), does not hide what lies below it: the
/// walk goes on, and ends in that link's classification only if nothing later says more.
/// A chain with no known link is [`ErrorKind::Other`].
///
/// An `io::Error`'s `source()` skips the error it wraps (it returns that error's own
/// source), so after an `io::Error` the walk goes to the wrapped error itself.
pub(crate) fn classify_chain(error: &(dyn Error + 'static)) -> Classification {
    let silent = Classification::new(ErrorKind::Other);
    let mut link = Some(error);
    for _ in 0..MAX_LINKS {
        let Some(err) = link else { break };
        if let Some(c) = classify_link(err)
            && c != silent
        {
            return c;
        }
        link = next_link(err);
    }
    silent
}

/// The classification of one link, if its type is one the runtime knows.
fn classify_link(err: &(dyn Error + 'static)) -> Option<Classification> {
    if let Some(e) = err.downcast_ref::<ApiError>() {
        return Some(e.classify());
    }
    if let Some(e) = err.downcast_ref::<std::io::Error>() {
        return Some(e.classify());
    }
    if let Some(e) = err.downcast_ref::<Timeout>() {
        return Some(e.classify());
    }
    if let Some(e) = err.downcast_ref::<InvalidOutput>() {
        return Some(e.classify());
    }
    if let Some(e) = err.downcast_ref::<tokio::time::error::Elapsed>() {
        return Some(e.classify());
    }
    #[cfg(feature = "reqwest")]
    if let Some(e) = err.downcast_ref::<::reqwest::Error>() {
        return Some(e.classify());
    }
    #[cfg(feature = "async-openai")]
    if let Some(e) = err.downcast_ref::<::async_openai::error::OpenAIError>() {
        return Some(e.classify());
    }
    None
}

/// The link after `err`: what it wraps. An `io::Error` is transparent (its `source()` is the
/// wrapped error's source), so its next link is the wrapped error itself.
fn next_link<'e>(err: &'e (dyn Error + 'static)) -> Option<&'e (dyn Error + 'static)> {
    match err.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
        None => err.source(),
    }
}

/// Classifies a type-erased error by its source chain, so that
/// `Result<T, Box<dyn Error + Send + Sync>>` works with `#[llm_retry]` (through the
/// `Box<E>` impl).
///
/// The error and each of its sources in turn (at most 32) are downcast to the types the
/// runtime knows: [`ApiError`], `std::io::Error`, [`Timeout`], [`InvalidOutput`], tokio's
/// `Elapsed`, and with their features `reqwest::Error` and async-openai's `OpenAIError`.
/// The first that says something decides; a chain with none of them is
/// [`ErrorKind::Other`].
///
/// ```
/// use llm_retry_runtime::{ApiError, Classify, ErrorKind, Timeout};
/// use std::error::Error;
///
/// let rate_limited: Box<dyn Error + Send + Sync> = ApiError::from_status(429).into();
/// assert_eq!(rate_limited.classify().kind, ErrorKind::RateLimited);
///
/// let reset: Box<dyn Error + Send + Sync> = std::io::Error::from(std::io::ErrorKind::ConnectionReset).into();
/// assert_eq!(reset.classify().kind, ErrorKind::Connection);
///
/// // `From<Timeout>` (needed by `deadline` and `attempt_timeout`) is std's `From<E: Error>`.
/// let timed_out: Box<dyn Error + Send + Sync> = Timeout::attempt(std::time::Duration::from_secs(5)).into();
/// assert_eq!(timed_out.classify().kind, ErrorKind::Timeout);
///
/// let unknown: Box<dyn Error + Send + Sync> = "the model said no".into();
/// assert_eq!(unknown.classify().kind, ErrorKind::Other);
/// ```
impl Classify for dyn Error + Send + Sync + 'static {
    fn classify(&self) -> Classification {
        classify_chain(self)
    }
}

/// Classifies a type-erased error by its source chain, as
/// `Classify for dyn Error + Send + Sync` does.
///
/// ```
/// use llm_retry_runtime::{ApiError, Classify, ErrorKind};
///
/// let e: Box<dyn std::error::Error + Send> = Box::new(ApiError::from_status(401));
/// assert_eq!(e.classify().kind, ErrorKind::Auth);
/// ```
impl Classify for dyn Error + Send + 'static {
    fn classify(&self) -> Classification {
        classify_chain(self)
    }
}

/// Classifies a type-erased error by its source chain, as
/// `Classify for dyn Error + Send + Sync` does.
///
/// ```
/// use llm_retry_runtime::{ApiError, Classify, ErrorKind};
///
/// let e: Box<dyn std::error::Error> = Box::new(ApiError::from_status(503));
/// assert_eq!(e.classify().kind, ErrorKind::Server);
/// ```
impl Classify for dyn Error + 'static {
    fn classify(&self) -> Classification {
        classify_chain(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RetryAfter;
    use core::fmt;
    use std::io;
    use std::time::Duration;

    /// An error the runtime does not know, with an optional source.
    #[derive(Debug)]
    struct Wrapper {
        name: &'static str,
        source: Option<Box<dyn Error + Send + Sync>>,
    }

    impl Wrapper {
        fn around(name: &'static str, inner: impl Error + Send + Sync + 'static) -> Self {
            Wrapper { name, source: Some(Box::new(inner)) }
        }
    }

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name)
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    /// `depth` unknown wrappers around `inner`.
    fn nested(depth: usize, inner: impl Error + Send + Sync + 'static) -> Box<dyn Error + Send + Sync> {
        let mut e: Box<dyn Error + Send + Sync> = Box::new(inner);
        for _ in 0..depth {
            e = Box::new(Wrapper { name: "layer", source: Some(e) });
        }
        e
    }

    fn kind(e: &(dyn Error + 'static)) -> ErrorKind {
        classify_chain(e).kind
    }

    #[test]
    fn each_known_type_is_found_as_a_link() {
        let table: Vec<(Box<dyn Error + Send + Sync>, ErrorKind)> = vec![
            (Box::new(ApiError::from_status(429)), ErrorKind::RateLimited),
            (Box::new(io::Error::from(io::ErrorKind::ConnectionReset)), ErrorKind::Connection),
            (Box::new(Timeout::deadline(Duration::from_secs(1))), ErrorKind::Timeout),
            (Box::new(InvalidOutput::new("empty")), ErrorKind::InvalidOutput),
        ];
        for (inner, expected) in table {
            let shown = inner.to_string();
            let wrapped = Wrapper { name: "outer", source: Some(inner) };
            assert_eq!(kind(&wrapped), expected, "{shown}");
        }
    }

    #[cfg(feature = "reqwest")]
    #[test]
    fn a_reqwest_error_is_a_link() {
        let resp = ::reqwest::Response::from(http::Response::builder().status(503).body("").unwrap());
        let e = Wrapper::around("outer", resp.error_for_status().unwrap_err());
        let c = classify_chain(&e);
        assert_eq!((c.kind, c.status), (ErrorKind::Server, Some(503)));
    }

    #[cfg(feature = "async-openai")]
    #[test]
    fn an_openai_error_is_a_link() {
        let e = Wrapper::around("outer", ::async_openai::error::OpenAIError::InvalidArgument("n must be > 0".into()));
        assert_eq!(kind(&e), ErrorKind::BadRequest);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_elapsed_is_a_timeout() {
        let elapsed = tokio::time::timeout(Duration::from_millis(1), std::future::pending::<()>()).await.unwrap_err();
        assert_eq!(kind(&Wrapper::around("outer", elapsed)), ErrorKind::Timeout);
    }

    #[test]
    fn the_whole_classification_is_kept() {
        let hint = RetryAfter::Delay(Duration::from_secs(7));
        let e = Wrapper::around("outer", ApiError::from_status(429).with_retry_after(hint));
        let c = classify_chain(&e);
        assert_eq!((c.kind, c.status, c.retry_after), (ErrorKind::RateLimited, Some(429), Some(hint)));
    }

    /// An unknown error that holds a known one as a field, not as its source.
    #[derive(Debug)]
    struct ApiOver(ApiError, io::Error);

    impl fmt::Display for ApiOver {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} over io", self.0)
        }
    }

    impl Error for ApiOver {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn the_outermost_known_link_decides() {
        // A reset whose payload chain holds a 401: the reset is met first.
        let e = io::Error::new(io::ErrorKind::ConnectionReset, Wrapper::around("w", ApiError::from_status(401)));
        assert_eq!(kind(&Wrapper::around("outer", e)), ErrorKind::Connection);
        // An ApiError (a timeout) whose source chain reaches a 401: the ApiError decides.
        let io = io::Error::new(io::ErrorKind::TimedOut, Wrapper::around("w", ApiError::from_status(401)));
        let e = ApiError::from(io);
        assert_eq!(e.source().and_then(|s| s.downcast_ref::<ApiError>()).map(ApiError::kind), Some(ErrorKind::Auth));
        assert_eq!(kind(&e), ErrorKind::Timeout);
        // Below unknown links, the first known one.
        let e = Wrapper::around("outer", Wrapper::around("middle", ApiError::from_status(401)));
        assert_eq!(kind(&e), ErrorKind::Auth);
        // A known value held in a field is not a link: only `source()` is followed.
        let e = ApiOver(ApiError::from_status(401), io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(kind(&e), ErrorKind::Connection);
    }

    #[test]
    fn a_silent_known_link_does_not_hide_what_it_wraps() {
        // io::Error::other says only "Other"; the ApiError two links below says 503.
        let e = io::Error::other(Wrapper::around("middle", ApiError::from_status(503)));
        assert_eq!(kind(&e), ErrorKind::Server);
        // An io::Error's source() skips the error it wraps: the walk does not.
        let e = Wrapper::around("outer", io::Error::other(Timeout::attempt(Duration::from_secs(1))));
        assert_eq!(kind(&e), ErrorKind::Timeout);
        // Nothing below says more: the silent link's Other.
        assert_eq!(kind(&io::Error::other("disk full")), ErrorKind::Other);
    }

    #[test]
    fn an_unknown_chain_is_other() {
        assert_eq!(kind(&Wrapper { name: "alone", source: None }), ErrorKind::Other);
        let e: Box<dyn Error + Send + Sync> = "plain text".into();
        assert_eq!(e.classify().kind, ErrorKind::Other);
        assert_eq!(e.classify().status, None);
        assert_eq!(kind(&*nested(5, Wrapper { name: "bottom", source: None })), ErrorKind::Other);
    }

    #[test]
    fn the_walk_stops_after_max_links() {
        // The known error is the last link the walk looks at: found.
        let e = nested(MAX_LINKS - 1, ApiError::from_status(503));
        assert_eq!(kind(&*e), ErrorKind::Server);
        // One link further: not looked at.
        let e = nested(MAX_LINKS, ApiError::from_status(503));
        assert_eq!(kind(&*e), ErrorKind::Other);
    }

    /// An error whose `source()` is itself: a chain that never ends.
    #[derive(Debug)]
    struct Cycle;

    impl fmt::Display for Cycle {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cycle")
        }
    }

    impl Error for Cycle {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(self)
        }
    }

    #[test]
    fn a_cyclic_chain_ends() {
        assert_eq!(kind(&Cycle), ErrorKind::Other);
    }

    #[test]
    fn every_dyn_form_and_smart_pointer_classifies() {
        let sync: Box<dyn Error + Send + Sync> = Box::new(ApiError::from_status(529));
        let send: Box<dyn Error + Send> = Box::new(ApiError::from_status(529));
        let bare: Box<dyn Error> = Box::new(ApiError::from_status(529));
        let shared: std::sync::Arc<dyn Error + Send + Sync> = std::sync::Arc::new(ApiError::from_status(529));
        // By value, as the generated loop holds it: `&E`'s impl over `dyn Error`'s.
        fn owned<C: Classify>(c: C) -> Classification {
            c.classify()
        }
        for c in [sync.classify(), send.classify(), bare.classify(), shared.classify(), owned(&*sync)] {
            assert_eq!((c.kind, c.status), (ErrorKind::Overloaded, Some(529)));
        }
    }

    #[test]
    fn from_the_runtime_errors_for_box_dyn() {
        // What `deadline`/`attempt_timeout` and `validate` need of the fn's error type.
        let t: Box<dyn Error + Send + Sync> = Timeout::deadline(Duration::from_secs(1)).into();
        assert_eq!(t.classify().kind, ErrorKind::Timeout);
        let v: Box<dyn Error + Send + Sync> = InvalidOutput::new("empty").into();
        assert_eq!(v.classify().kind, ErrorKind::InvalidOutput);
    }
}
