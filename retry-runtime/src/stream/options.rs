//! A stream's settings besides the policy: the recovery [`StreamMode`] and the
//! [`StreamOptions`] that hold it with the first-chunk and idle timeouts.

#[cfg(doc)]
use super::{Resume, StreamEvent};
#[cfg(doc)]
use crate::Timeout;
use std::time::Duration;

/// How a stream that broke off in the middle is recovered (the trade-offs of each mode are in
/// the repository's `docs/STREAMING.md`).
///
/// ```
/// use llm_retry_runtime::stream::StreamMode;
/// assert_eq!(StreamMode::default(), StreamMode::Restart);
/// assert_eq!(StreamMode::from_name("continue"), Some(StreamMode::Continue));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamMode {
    /// Reopen from scratch; emit [`StreamEvent::Reset`] before the new text. Keeps no buffer.
    #[default]
    Restart,
    /// Reopen with the text so far ([`Resume::text`]) so the model continues it; the consumer
    /// sees one seamless text.
    Continue,
    /// Reopen the same (deterministic) request and drop the already-delivered prefix of the new
    /// stream after checking it; on a mismatch, fall back to `Reset`.
    Skip,
}

impl StreamMode {
    /// The mode named `restart`, `continue` or `skip` (the attribute's spelling).
    ///
    /// ```
    /// use llm_retry_runtime::stream::StreamMode;
    /// assert_eq!(StreamMode::from_name("skip"), Some(StreamMode::Skip));
    /// assert_eq!(StreamMode::from_name("resume"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<StreamMode> {
        match name {
            "restart" => Some(StreamMode::Restart),
            "continue" => Some(StreamMode::Continue),
            "skip" => Some(StreamMode::Skip),
            _ => None,
        }
    }

    /// The mode's name, as [`from_name`](Self::from_name) reads it.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stream::StreamMode::Continue.name(), "continue");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            StreamMode::Restart => "restart",
            StreamMode::Continue => "continue",
            StreamMode::Skip => "skip",
        }
    }

    pub(super) const fn keeps_text(self) -> bool {
        !matches!(self, StreamMode::Restart)
    }
}

/// A stream's settings besides the policy: the recovery mode and the two timeouts. Every
/// method is a `const fn`, so a site can hold them in a `const`.
///
/// ```
/// use llm_retry_runtime::{stream::StreamMode, stream::StreamOptions};
/// use std::time::Duration;
///
/// const OPTIONS: StreamOptions = StreamOptions::new()
///     .mode(StreamMode::Continue)
///     .first_chunk_timeout(Duration::from_secs(20))
///     .idle_timeout(Duration::from_secs(10));
/// assert_eq!(OPTIONS.get_mode(), StreamMode::Continue);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamOptions {
    pub(super) mode: StreamMode,
    pub(super) first_chunk: Option<Duration>,
    pub(super) idle: Option<Duration>,
}

impl StreamOptions {
    /// Restart mode, no timeouts.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stream::StreamOptions::new().get_idle_timeout(), None);
    /// ```
    pub const fn new() -> Self {
        StreamOptions { mode: StreamMode::Restart, first_chunk: None, idle: None }
    }

    /// The recovery mode (default [`StreamMode::Restart`]).
    ///
    /// ```
    /// use llm_retry_runtime::{stream::StreamMode, stream::StreamOptions};
    /// assert_eq!(StreamOptions::new().mode(StreamMode::Skip).get_mode(), StreamMode::Skip);
    /// ```
    pub const fn mode(mut self, mode: StreamMode) -> Self {
        self.mode = mode;
        self
    }

    /// The longest wait from opening an attempt to its first chunk (connect, request, headers
    /// and first chunk). A slower attempt counts as a retryable [`Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = llm_retry_runtime::stream::StreamOptions::new().first_chunk_timeout(Duration::from_secs(20));
    /// assert_eq!(o.get_first_chunk_timeout(), Some(Duration::from_secs(20)));
    /// ```
    pub const fn first_chunk_timeout(mut self, limit: Duration) -> Self {
        self.first_chunk = Some(limit);
        self
    }

    /// The longest wait between two chunks. A longer silence counts as a retryable
    /// [`Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = llm_retry_runtime::stream::StreamOptions::new().idle_timeout(Duration::from_secs(10));
    /// assert_eq!(o.get_idle_timeout(), Some(Duration::from_secs(10)));
    /// ```
    pub const fn idle_timeout(mut self, limit: Duration) -> Self {
        self.idle = Some(limit);
        self
    }

    /// The recovery mode.
    ///
    /// ```
    /// use llm_retry_runtime::{stream::StreamMode, stream::StreamOptions};
    /// assert_eq!(StreamOptions::new().get_mode(), StreamMode::Restart);
    /// ```
    pub const fn get_mode(&self) -> StreamMode {
        self.mode
    }

    /// The first-chunk timeout, if set.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stream::StreamOptions::new().get_first_chunk_timeout(), None);
    /// ```
    pub const fn get_first_chunk_timeout(&self) -> Option<Duration> {
        self.first_chunk
    }

    /// The idle timeout, if set.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stream::StreamOptions::new().get_idle_timeout(), None);
    /// ```
    pub const fn get_idle_timeout(&self) -> Option<Duration> {
        self.idle
    }
}
