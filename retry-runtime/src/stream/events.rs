//! What a stream tells its consumer and its opener: the [`StreamEvent`]s it yields, what the
//! consumer holds ([`Received`]), and what the opener is told on each attempt ([`Resume`]).

use super::StreamChunk;
#[cfg(doc)]
use super::{RetryStream, StreamMode};
use crate::ErrorKind;
use crate::failover::Target;
use std::time::Duration;

/// What the consumer holds: chunks, characters and tokens delivered since the start (or since
/// the last [`StreamEvent::Reset`]).
///
/// ```
/// let r = llm_retry_runtime::stream::Received::default();
/// assert_eq!((r.chunks, r.chars, r.tokens), (0, 0, None));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// Chunks delivered.
    pub chunks: u64,
    /// Characters (Unicode scalar values) delivered.
    pub chars: u64,
    /// The sum of the token counts that delivered chunks reported; `None` if none did.
    pub tokens: Option<u64>,
}

impl Received {
    pub(super) fn add(&mut self, chunk: &impl StreamChunk) {
        self.chunks = self.chunks.saturating_add(1);
        let chars = u64::try_from(chunk.text().chars().count()).unwrap_or(u64::MAX);
        self.chars = self.chars.saturating_add(chars);
        if let Some(n) = chunk.tokens() {
            self.tokens = Some(self.tokens.unwrap_or(0).saturating_add(n));
        }
    }
}

/// What the opener is told when it is called: which attempt this is, and, in
/// [`StreamMode::Continue`], the text received so far.
///
/// ```
/// use llm_retry_runtime::stream::Resume;
/// fn messages(prompt: &str, resume: &Resume) -> Vec<(&'static str, String)> {
///     let mut m = vec![("user", prompt.to_owned())];
///     if !resume.text().is_empty() {
///         m.push(("assistant", resume.text().to_owned())); // prefill: the model continues it
///     }
///     m
/// }
/// # let _ = messages;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub(super) attempt: u32,
    pub(super) text: String,
    pub(super) received: Received,
}

impl Resume {
    /// The attempt about to be made, from 1.
    ///
    /// ```
    /// # let r = llm_retry_runtime::stream::Resume::first();
    /// assert_eq!(r.attempt(), 1);
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// In [`StreamMode::Continue`], the text delivered so far, for the opener to ask the model
    /// to continue (as an assistant prefill or in a continuation prompt). Empty on the first
    /// attempt and in the other modes.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stream::Resume::first().text(), "");
    /// ```
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What the consumer holds: in Continue and Skip mode, everything delivered so far.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::stream::Resume::first().received().chunks, 0);
    /// ```
    pub fn received(&self) -> Received {
        self.received
    }

    /// The first attempt's `Resume`: attempt 1, no text (for tests of openers).
    ///
    /// ```
    /// assert!(llm_retry_runtime::stream::Resume::first().text().is_empty());
    /// ```
    pub fn first() -> Resume {
        Resume { attempt: 1, text: String::new(), received: Received::default() }
    }
}

/// What a [`RetryStream`] yields (inside `Ok`): content, or a note about the recovery.
///
/// ```
/// use llm_retry_runtime::stream::StreamEvent;
///
/// fn show(ev: &StreamEvent<String>, out: &mut String) {
///     match ev {
///         StreamEvent::Chunk(text) => out.push_str(text),
///         StreamEvent::Retrying { attempt, kind, delay, .. } => {
///             eprintln!("[attempt {attempt} failed ({kind}); retrying in {delay:?}]")
///         }
///         StreamEvent::Reset => out.clear(),
///     }
/// }
/// let mut out = String::new();
/// show(&StreamEvent::Chunk("Hi".to_owned()), &mut out);
/// show(&StreamEvent::Reset, &mut out);
/// assert!(out.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent<C> {
    /// A chunk of content, to append.
    Chunk(C),
    /// An attempt failed; the stream waits `delay`, then reopens. Sent before the wait.
    #[non_exhaustive]
    Retrying {
        /// The attempt that failed, from 1.
        attempt: u32,
        /// What the consumer held when it failed.
        received: Received,
        /// What it failed with.
        kind: ErrorKind,
        /// Its HTTP status, if any.
        status: Option<u16>,
        /// The wait before the next attempt: zero when moving on to the next target.
        delay: Duration,
        /// Along a fallback chain, the target the attempt failed on; `None` without a chain.
        target: Option<&'static Target>,
        /// Along a fallback chain, whether the next attempt goes to the next target (at
        /// once, with no back-off) rather than to this one again.
        moving_on: bool,
    },
    /// Drop everything received so far: the text that follows replaces it. Sent in
    /// [`StreamMode::Restart`] before the first chunk of a new attempt, and in
    /// [`StreamMode::Skip`] when the replay differed.
    Reset,
}

impl<C: StreamChunk> StreamEvent<C> {
    /// The chunk's text, if this is a chunk.
    ///
    /// ```
    /// use llm_retry_runtime::stream::StreamEvent;
    /// assert_eq!(StreamEvent::Chunk("a".to_owned()).text(), Some("a"));
    /// assert_eq!(StreamEvent::<String>::Reset.text(), None);
    /// ```
    pub fn text(&self) -> Option<&str> {
        match self {
            StreamEvent::Chunk(c) => Some(c.text()),
            _ => None,
        }
    }
}
