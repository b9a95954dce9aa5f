//! Streaming retry: a [`RetryStream`] reopens an LLM stream that failed to start or broke off
//! halfway, and tells its consumer what happened with typed [`StreamEvent`]s instead of text
//! mixed into the content.
//!
//! Three ways to recover from a break in the middle ([`StreamMode`]):
//! - **Restart**: reopen from scratch and emit [`StreamEvent::Reset`] before the new text, so
//!   the consumer drops its partial output. Keeps no buffer.
//! - **Continue**: reopen with the text received so far ([`Resume::text`]), so that the opener
//!   can ask the model to continue it (assistant prefill, or a continuation prompt). The
//!   consumer sees one seamless text. Keeps the text so far.
//! - **Skip**: for deterministic replays (temperature 0, a seed): reopen the same request and
//!   drop the part of the new stream that was already delivered, checking that it matches.
//!   On a mismatch, fall back to `Reset` and deliver the new stream whole. Keeps the text so
//!   far.
//!
//! The whole [`Policy`](crate::Policy) applies through the [`Call`] the stream is built
//! from: per-kind limits, Retry-After, the deadline (no back-off sleep and no read crosses
//! it), hooks and stats. A first-chunk timeout and an idle timeout between chunks count as
//! retryable [`Timeout`]s. The stream is a plain state machine polled by its consumer: it
//! spawns nothing, and dropping it at any point (mid-read, mid-sleep, mid-reconnect) drops the
//! connection and the opener's future with it.

mod sse;

pub use sse::{TextDeltas, text_deltas};

use crate::ErrorKind;
use crate::classify::Classify;
use crate::engine::{Call, Mode};
use crate::hooks::{HookSet, Unpaced};
use crate::timeout::Timeout;
use core::fmt;
use core::future::Future;
use core::ops::ControlFlow;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_core::Stream;
use pin_project_lite::pin_project;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A piece of a streamed answer: its text, and its token count when the provider reports one.
///
/// Implemented for `String` and `&str`; implement it for your own chunk type to keep provider fields
/// (finish reasons, log-probs) next to the text.
///
/// ```
/// use llm_retry_runtime::StreamChunk;
///
/// struct Delta { text: String, tokens: u64 }
/// impl StreamChunk for Delta {
///     fn text(&self) -> &str { &self.text }
///     fn tokens(&self) -> Option<u64> { Some(self.tokens) }
///     fn skip_prefix(self, bytes: usize) -> Self {
///         // The token count of a partial chunk is not known any more.
///         Delta { text: self.text.get(bytes..).unwrap_or("").to_owned(), tokens: 0 }
///     }
/// }
/// assert_eq!("héllo".to_owned().skip_prefix(3), "llo");
/// ```
pub trait StreamChunk: Sized {
    /// The chunk's text.
    fn text(&self) -> &str;

    /// How many tokens the chunk holds, when known.
    fn tokens(&self) -> Option<u64> {
        None
    }

    /// The chunk without its first `bytes` bytes of text (always a `char` boundary). Called in
    /// [`StreamMode::Skip`] when a replayed chunk straddles the end of the text already
    /// delivered.
    fn skip_prefix(self, bytes: usize) -> Self;

    /// The chunk's text, owned.
    fn into_text(self) -> String {
        self.text().to_owned()
    }
}

impl StreamChunk for String {
    fn text(&self) -> &str {
        self
    }

    fn skip_prefix(mut self, bytes: usize) -> Self {
        if self.is_char_boundary(bytes) {
            self.replace_range(..bytes, "");
        } else {
            self.clear();
        }
        self
    }

    fn into_text(self) -> String {
        self
    }
}

impl StreamChunk for &str {
    fn text(&self) -> &str {
        self
    }

    fn skip_prefix(self, bytes: usize) -> Self {
        self.get(bytes..).unwrap_or("")
    }
}

/// How a stream that broke off in the middle is recovered (the trade-offs of each mode are in
/// the repository's `docs/STREAMING.md`).
///
/// ```
/// use llm_retry_runtime::StreamMode;
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
    /// use llm_retry_runtime::StreamMode;
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
    /// assert_eq!(llm_retry_runtime::StreamMode::Continue.name(), "continue");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            StreamMode::Restart => "restart",
            StreamMode::Continue => "continue",
            StreamMode::Skip => "skip",
        }
    }

    const fn keeps_text(self) -> bool {
        !matches!(self, StreamMode::Restart)
    }
}

/// A stream's settings besides the policy: the recovery mode and the two timeouts. Every
/// method is a `const fn`, so a site can hold them in a `const`.
///
/// ```
/// use llm_retry_runtime::{StreamMode, StreamOptions};
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
    mode: StreamMode,
    first_chunk: Option<Duration>,
    idle: Option<Duration>,
}

impl StreamOptions {
    /// Restart mode, no timeouts.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::StreamOptions::new().get_idle_timeout(), None);
    /// ```
    pub const fn new() -> Self {
        StreamOptions { mode: StreamMode::Restart, first_chunk: None, idle: None }
    }

    /// The recovery mode (default [`StreamMode::Restart`]).
    ///
    /// ```
    /// use llm_retry_runtime::{StreamMode, StreamOptions};
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
    /// let o = llm_retry_runtime::StreamOptions::new().first_chunk_timeout(Duration::from_secs(20));
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
    /// let o = llm_retry_runtime::StreamOptions::new().idle_timeout(Duration::from_secs(10));
    /// assert_eq!(o.get_idle_timeout(), Some(Duration::from_secs(10)));
    /// ```
    pub const fn idle_timeout(mut self, limit: Duration) -> Self {
        self.idle = Some(limit);
        self
    }

    /// The recovery mode.
    ///
    /// ```
    /// use llm_retry_runtime::{StreamMode, StreamOptions};
    /// assert_eq!(StreamOptions::new().get_mode(), StreamMode::Restart);
    /// ```
    pub const fn get_mode(&self) -> StreamMode {
        self.mode
    }

    /// The first-chunk timeout, if set.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::StreamOptions::new().get_first_chunk_timeout(), None);
    /// ```
    pub const fn get_first_chunk_timeout(&self) -> Option<Duration> {
        self.first_chunk
    }

    /// The idle timeout, if set.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::StreamOptions::new().get_idle_timeout(), None);
    /// ```
    pub const fn get_idle_timeout(&self) -> Option<Duration> {
        self.idle
    }
}

/// What the consumer holds: chunks, characters and tokens delivered since the start (or since
/// the last [`StreamEvent::Reset`]).
///
/// ```
/// let r = llm_retry_runtime::Received::default();
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
    fn add(&mut self, chunk: &impl StreamChunk) {
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
/// use llm_retry_runtime::Resume;
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
    attempt: u32,
    text: String,
    received: Received,
}

impl Resume {
    /// The attempt about to be made, from 1.
    ///
    /// ```
    /// # let r = llm_retry_runtime::Resume::first();
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
    /// assert_eq!(llm_retry_runtime::Resume::first().text(), "");
    /// ```
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What the consumer holds: in Continue and Skip mode, everything delivered so far.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Resume::first().received().chunks, 0);
    /// ```
    pub fn received(&self) -> Received {
        self.received
    }

    /// The first attempt's `Resume`: attempt 1, no text (for tests of openers).
    ///
    /// ```
    /// assert!(llm_retry_runtime::Resume::first().text().is_empty());
    /// ```
    pub fn first() -> Resume {
        Resume { attempt: 1, text: String::new(), received: Received::default() }
    }
}

/// What a [`RetryStream`] yields (inside `Ok`): content, or a note about the recovery.
///
/// ```
/// use llm_retry_runtime::StreamEvent;
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
        /// The wait before the next attempt.
        delay: Duration,
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
    /// use llm_retry_runtime::StreamEvent;
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

pin_project! {
    #[project = StateProj]
    enum State<Fut, S> {
        Idle,
        Opening { #[pin] fut: Fut },
        Reading { #[pin] stream: S },
        Waiting,
        Done,
    }
}

/// The already-delivered prefix being checked against a Skip replay.
struct SkipCheck<C> {
    /// Bytes of the delivered text matched so far.
    matched: usize,
    /// The replayed chunks dropped so far, delivered after a `Reset` if the replay differs.
    held: Vec<C>,
}

/// Everything but the pinned state and timer.
struct Core<'p, E, H, M, F, C> {
    call: Call<'p, (), E, H, M>,
    opener: F,
    options: StreamOptions,
    /// The deadline as an instant (set on the first attempt) and its length.
    deadline: Option<(Instant, Duration)>,
    /// What the armed timer means when it fires; `None` for the back-off sleep.
    cause: Option<Timeout>,
    received: Received,
    /// The delivered text (Continue and Skip only).
    text: String,
    /// Attempts opened so far.
    attempts: u32,
    /// No chunk yet in this attempt (the first-chunk timeout is armed).
    awaiting_first: bool,
    /// Restart: a `Reset` is owed before the next chunk.
    reset_owed: bool,
    skip: Option<SkipCheck<C>>,
    /// The next event for the consumer, then the ones after it (see `emit`).
    next: Option<StreamEvent<C>>,
    pending: VecDeque<StreamEvent<C>>,
    /// The error to yield once `pending` is drained.
    error: Option<E>,
}

pin_project! {
    /// A stream that opens an LLM stream, retries opening it until a first chunk arrives, and
    /// recovers from breaks in the middle as its [`StreamMode`] says. Yields
    /// `Result<StreamEvent<C>, E>`; the last error, if the policy gives up, ends it.
    ///
    /// Build it with [`Policy::stream`] or [`Call::stream`] (to add a deadline, hooks or a
    /// stats site), then set the mode and timeouts. Nothing happens until it is polled. It is
    /// `!Unpin`: pin it (`std::pin::pin!`) before calling `next()`.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, StreamEvent, StreamMode};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let stream = Policy::DEFAULT
    ///     .call()
    ///     .deadline(Duration::from_secs(60))
    ///     .stream(|resume| async move {
    ///         // A real opener sends the request here, with `resume.text()` as an assistant
    ///         // prefill in Continue mode. This one breaks off once, after "Hel".
    ///         let parts: Vec<Result<String, ApiError>> = if resume.attempt() == 1 {
    ///             vec![Ok("Hel".into()), Err(ApiError::connection("reset by peer"))]
    ///         } else {
    ///             assert_eq!(resume.text(), "Hel");
    ///             vec![Ok("lo".into())]
    ///         };
    ///         Ok::<_, ApiError>(futures_util::stream::iter(parts))
    ///     })
    ///     .mode(StreamMode::Continue)
    ///     .idle_timeout(Duration::from_secs(10));
    /// let mut stream = std::pin::pin!(stream);
    /// let mut text = String::new();
    /// while let Some(event) = stream.next().await {
    ///     match event.unwrap() {
    ///         StreamEvent::Chunk(c) => text.push_str(&c),
    ///         StreamEvent::Retrying { attempt, .. } => eprintln!("attempt {attempt} broke off"),
    ///         StreamEvent::Reset => text.clear(),
    ///     }
    /// }
    /// assert_eq!(text, "Hello");
    /// # }
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct RetryStream<'p, E, H, M, F, Fut, S, C> {
        core: Core<'p, E, H, M, F, C>,
        #[pin]
        state: State<Fut, S>,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<E, H, M, F, Fut, S, C> fmt::Debug for RetryStream<'_, E, H, M, F, Fut, S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Opening { .. } => "opening",
            State::Reading { .. } => "reading",
            State::Waiting => "waiting",
            State::Done => "done",
        };
        f.debug_struct("RetryStream")
            .field("options", &self.core.options)
            .field("state", &state)
            .field("received", &self.core.received)
            .finish_non_exhaustive()
    }
}

impl<'p, E, H, M> Call<'p, (), E, H, M> {
    /// A [`RetryStream`] under this call's policy, deadline, hooks and site. `opener` opens one
    /// attempt's stream; it is called again for each retry with a [`Resume`].
    ///
    /// The call's `attempt_timeout` does not apply to streams (a long answer is not a slow
    /// one): use [`RetryStream::first_chunk_timeout`] and [`RetryStream::idle_timeout`].
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, RetryEvent};
    /// use std::time::Duration;
    ///
    /// let stream = Policy::DEFAULT
    ///     .call()
    ///     .deadline(Duration::from_secs(120))
    ///     .notify(|ev: &RetryEvent<'_, ApiError>| eprintln!("retrying after {}", ev.kind))
    ///     .stream(|_resume| async { Ok::<_, ApiError>(futures_util::stream::iter([Ok::<String, ApiError>("hi".into())])) });
    /// # drop(stream);
    /// ```
    pub fn stream<F, Fut, S, C>(self, opener: F) -> RetryStream<'p, E, H, M, F, Fut, S, C>
    where
        H: Unpaced,
        F: FnMut(Resume) -> Fut,
        Fut: Future<Output = Result<S, E>>,
        S: Stream<Item = Result<C, E>>,
        C: StreamChunk,
    {
        RetryStream {
            core: Core {
                call: self,
                opener,
                options: StreamOptions::new(),
                deadline: None,
                cause: None,
                attempts: 0,
                awaiting_first: false,
                received: Received::default(),
                text: String::new(),
                reset_owed: false,
                skip: None,
                next: None,
                pending: VecDeque::new(),
                error: None,
            },
            state: State::Idle,
            timer: None,
        }
    }
}

impl<E, H, M, F, Fut, S, C> RetryStream<'_, E, H, M, F, Fut, S, C> {
    /// Sets the mode and both timeouts at once.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, StreamMode, StreamOptions};
    /// const OPTIONS: StreamOptions = StreamOptions::new().mode(StreamMode::Continue);
    /// let s = Policy::DEFAULT
    ///     .stream(|_| async { Ok::<_, ApiError>(futures_util::stream::empty::<Result<String, ApiError>>()) })
    ///     .options(OPTIONS);
    /// # drop(s);
    /// ```
    pub fn options(mut self, options: StreamOptions) -> Self {
        self.core.options = options;
        self
    }

    /// The recovery mode (default [`StreamMode::Restart`]).
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, StreamMode};
    /// let s = Policy::DEFAULT
    ///     .stream(|_| async { Ok::<_, ApiError>(futures_util::stream::empty::<Result<String, ApiError>>()) })
    ///     .mode(StreamMode::Continue);
    /// # drop(s);
    /// ```
    pub fn mode(mut self, mode: StreamMode) -> Self {
        self.core.options = self.core.options.mode(mode);
        self
    }

    /// See [`StreamOptions::first_chunk_timeout`].
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// let s = Policy::DEFAULT
    ///     .stream(|_| async { Ok::<_, ApiError>(futures_util::stream::empty::<Result<String, ApiError>>()) })
    ///     .first_chunk_timeout(std::time::Duration::from_secs(20));
    /// # drop(s);
    /// ```
    pub fn first_chunk_timeout(mut self, limit: Duration) -> Self {
        self.core.options = self.core.options.first_chunk_timeout(limit);
        self
    }

    /// See [`StreamOptions::idle_timeout`].
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// let s = Policy::DEFAULT
    ///     .stream(|_| async { Ok::<_, ApiError>(futures_util::stream::empty::<Result<String, ApiError>>()) })
    ///     .idle_timeout(std::time::Duration::from_secs(10));
    /// # drop(s);
    /// ```
    pub fn idle_timeout(mut self, limit: Duration) -> Self {
        self.core.options = self.core.options.idle_timeout(limit);
        self
    }

    /// What the consumer holds now (see [`Received`]).
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// let s = Policy::DEFAULT
    ///     .stream(|_| async { Ok::<_, ApiError>(futures_util::stream::empty::<Result<String, ApiError>>()) });
    /// assert_eq!(s.received().chunks, 0);
    /// ```
    pub fn received(&self) -> Received {
        self.core.received
    }

    /// The content alone: the chunks' text, without the `Retrying` notes. Seamless in
    /// [`StreamMode::Continue`] and in [`StreamMode::Skip`] while replays match. A `Reset`
    /// (Restart mode, or a Skip replay that differed) cannot be expressed in plain text:
    /// [`Texts::was_reset`] tells whether one was dropped. When you need the final text in any
    /// mode, use [`collect_text`](RetryStream::collect_text).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, StreamMode};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let texts = Policy::DEFAULT
    ///     .stream(|_| async { Ok::<_, ApiError>(futures_util::stream::iter([Ok::<String, ApiError>("a".into()), Ok("b".into())])) })
    ///     .mode(StreamMode::Continue)
    ///     .texts();
    /// let parts: Vec<String> = std::pin::pin!(texts).map(|t| t.unwrap()).collect().await;
    /// assert_eq!(parts.concat(), "ab");
    /// # }
    /// ```
    pub fn texts(self) -> Texts<Self> {
        Texts { inner: self, reset: false }
    }
}

impl<'p, E, H, M, F, Fut, S, C> RetryStream<'p, E, H, M, F, Fut, S, C>
where
    E: Classify + From<Timeout>,
    H: HookSet<(), E>,
    M: Mode<E>,
    F: FnMut(Resume) -> Fut,
    Fut: Future<Output = Result<S, E>>,
    S: Stream<Item = Result<C, E>>,
    C: StreamChunk,
{
    /// Runs the stream to its end and returns the final text: `Reset`s are applied, notes are
    /// dropped. Correct in every mode.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let mut n = 0;
    /// let text = Policy::DEFAULT
    ///     .stream(|_| {
    ///         n += 1;
    ///         let parts: Vec<Result<String, ApiError>> = if n == 1 {
    ///             vec![Ok("Hel".into()), Err(ApiError::connection("reset"))]
    ///         } else {
    ///             vec![Ok("Hel".into()), Ok("lo".into())]
    ///         };
    ///         async move { Ok::<_, ApiError>(futures_util::stream::iter(parts)) }
    ///     })
    ///     .collect_text()
    ///     .await;
    /// assert_eq!(text.unwrap(), "Hello");
    /// # }
    /// ```
    pub async fn collect_text(self) -> Result<String, E> {
        let mut this = core::pin::pin!(self);
        let mut text = String::new();
        while let Some(event) = core::future::poll_fn(|cx| this.as_mut().poll_next(cx)).await {
            match event? {
                StreamEvent::Chunk(c) => text.push_str(c.text()),
                StreamEvent::Reset => text.clear(),
                StreamEvent::Retrying { .. } => {}
            }
        }
        Ok(text)
    }
}

impl<E, H, M, F, C> Core<'_, E, H, M, F, C>
where
    E: Classify + From<Timeout>,
    H: HookSet<(), E>,
    M: Mode<E>,
    C: StreamChunk,
{
    /// Delivers a chunk to the consumer (queues it) and records it.
    fn deliver(&mut self, chunk: C) {
        self.received.add(&chunk);
        if self.options.mode.keeps_text() {
            self.text.push_str(chunk.text());
        }
        self.emit(StreamEvent::Chunk(chunk));
    }

    /// Drops what the consumer holds and queues a `Reset`.
    fn reset(&mut self) {
        self.received = Received::default();
        self.text.clear();
        self.emit(StreamEvent::Reset);
    }

    fn on_chunk(&mut self, chunk: C) {
        if self.reset_owed {
            self.reset_owed = false;
            self.reset();
        }
        let Some(skip) = self.skip.as_mut() else {
            return self.deliver(chunk);
        };
        let rest = self.text.get(skip.matched..).unwrap_or("");
        let t = chunk.text();
        if t.len() <= rest.len() && rest.starts_with(t) {
            skip.matched = skip.matched.saturating_add(t.len());
            let done = skip.matched >= self.text.len();
            skip.held.push(chunk);
            if done {
                self.skip = None;
            }
        } else if t.len() > rest.len() && t.starts_with(rest) {
            let n = rest.len();
            self.skip = None;
            self.deliver(chunk.skip_prefix(n));
        } else {
            self.replay_differs(Some(chunk));
        }
    }

    /// A Skip replay differs from what was delivered: `Reset`, then the replay so far.
    fn replay_differs(&mut self, chunk: Option<C>) {
        let held = self.skip.take().map(|s| s.held).unwrap_or_default();
        self.reset();
        for c in held.into_iter().chain(chunk) {
            self.deliver(c);
        }
    }

    /// The next attempt's `Resume`, and the Skip check it starts.
    fn resume(&mut self) -> Resume {
        if self.options.mode == StreamMode::Skip && !self.text.is_empty() {
            self.skip = Some(SkipCheck { matched: 0, held: Vec::new() });
        }
        let text = if self.options.mode == StreamMode::Continue { self.text.clone() } else { String::new() };
        Resume { attempt: self.attempts, text, received: self.received }
    }
}

/// What one poll of the inner future or stream produced.
enum Step<S, C, E> {
    Open,
    Opened(S),
    Chunk(C),
    Failed(E, Option<Timeout>),
    Ended,
    Pending,
}

/// Whether the armed timer (if any) has fired.
fn fired(timer: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>) -> bool {
    timer.as_pin_mut().is_some_and(|t| t.poll(cx).is_ready())
}

impl<E, H, M, F, C> Core<'_, E, H, M, F, C> {
    /// Queues an event for the consumer. The first one waiting takes a slot of its own, so a
    /// stream without retries never allocates a queue.
    fn emit(&mut self, event: StreamEvent<C>) {
        if self.next.is_none() && self.pending.is_empty() {
            self.next = Some(event);
        } else {
            self.pending.push_back(event);
        }
    }

    /// The next queued event.
    fn take_event(&mut self) -> Option<StreamEvent<C>> {
        self.next.take().or_else(|| self.pending.pop_front())
    }

    /// Arms the timer for the next wait: `limit` from now, or the deadline if sooner. Disarms
    /// it when neither applies. Reads the clock only when there is something to arm.
    fn arm(&mut self, mut timer: Pin<&mut Option<Sleep>>, limit: Option<Duration>) {
        let now = match (limit, self.deadline) {
            (None, None) => {
                self.cause = None;
                return timer.set(None);
            }
            _ => Instant::now(),
        };
        let mut best = limit.and_then(|l| Some((now.checked_add(l)?, Timeout::attempt(l))));
        if let Some((at, total)) = self.deadline {
            if best.is_none_or(|(b, _)| at <= b) {
                best = Some((at, Timeout::deadline(total)));
            }
        }
        let Some((at, cause)) = best else {
            self.cause = None;
            return timer.set(None);
        };
        self.cause = Some(cause);
        match timer.as_mut().as_pin_mut() {
            Some(sleep) => sleep.reset(at),
            None => timer.set(Some(tokio::time::sleep_until(at))),
        }
    }
}

impl<E, H, M, F, Fut, S, C> Stream for RetryStream<'_, E, H, M, F, Fut, S, C>
where
    E: Classify + From<Timeout>,
    H: HookSet<(), E>,
    M: Mode<E>,
    F: FnMut(Resume) -> Fut,
    Fut: Future<Output = Result<S, E>>,
    S: Stream<Item = Result<C, E>>,
    C: StreamChunk,
{
    type Item = Result<StreamEvent<C>, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(event) = this.core.take_event() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(e) = this.core.error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            let step = match this.state.as_mut().project() {
                StateProj::Done => return Poll::Ready(None),
                StateProj::Idle => Step::Open,
                StateProj::Waiting => {
                    if this.timer.as_mut().as_pin_mut().is_some_and(|sleep| sleep.poll(cx).is_pending()) {
                        return Poll::Pending;
                    }
                    Step::Open
                }
                StateProj::Opening { fut } => match fut.poll(cx) {
                    Poll::Ready(Ok(stream)) => Step::Opened(stream),
                    Poll::Ready(Err(e)) => Step::Failed(e, None),
                    Poll::Pending => Step::Pending,
                },
                StateProj::Reading { stream } => match stream.poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => Step::Chunk(chunk),
                    Poll::Ready(Some(Err(e))) => Step::Failed(e, None),
                    Poll::Ready(None) => Step::Ended,
                    Poll::Pending => Step::Pending,
                },
            };
            let core = &mut *this.core;
            let outcome = match step {
                Step::Open => {
                    core.attempts = core.attempts.saturating_add(1);
                    core.call.start_attempt();
                    if core.attempts == 1 && core.call.remaining().is_some() {
                        // Read the clock before the remaining time, so the instant is never late.
                        let now = Instant::now();
                        if let Some(left) = core.call.remaining() {
                            core.deadline = now.checked_add(left).map(|at| (at, left));
                        }
                    }
                    let resume = core.resume();
                    let fut = (core.opener)(resume);
                    this.state.set(State::Opening { fut });
                    core.awaiting_first = true;
                    let limit = core.options.first_chunk;
                    core.arm(this.timer.as_mut(), limit);
                    continue;
                }
                Step::Opened(stream) => {
                    this.state.set(State::Reading { stream });
                    continue;
                }
                Step::Chunk(chunk) => {
                    core.on_chunk(chunk);
                    if core.awaiting_first || core.options.idle.is_some() {
                        core.awaiting_first = false;
                        let limit = core.options.idle;
                        core.arm(this.timer.as_mut(), limit);
                    }
                    continue;
                }
                Step::Pending => {
                    if !fired(this.timer.as_mut(), cx) {
                        return Poll::Pending;
                    }
                    let cause = core.cause.take().unwrap_or(Timeout::attempt(Duration::ZERO));
                    core.call.settle(Err(E::from(cause)), Some(cause))
                }
                Step::Failed(e, timed_out) => core.call.settle(Err(e), timed_out),
                Step::Ended => {
                    if core.skip.is_some() {
                        core.replay_differs(None);
                    }
                    if core.reset_owed {
                        core.reset_owed = false;
                        core.reset();
                    }
                    core.call.settle(Ok(()), None)
                }
            };
            // The attempt is over: drop its connection before anything else.
            this.state.set(State::Done);
            this.timer.set(None);
            core.cause = None;
            match outcome {
                ControlFlow::Break(Ok(())) => {}
                ControlFlow::Break(Err(e)) => core.error = Some(e),
                ControlFlow::Continue(plan) => {
                    if core.options.mode == StreamMode::Restart && core.received.chunks > 0 {
                        core.reset_owed = true;
                    }
                    core.skip = None;
                    core.emit(StreamEvent::Retrying {
                        attempt: plan.attempt,
                        received: core.received,
                        kind: plan.kind,
                        status: plan.status,
                        delay: plan.delay,
                    });
                    this.timer.set(Some(tokio::time::sleep(plan.delay)));
                    this.state.set(State::Waiting);
                }
            }
        }
    }
}

pin_project! {
    /// The content of a [`RetryStream`] alone: see [`RetryStream::texts`].
    #[must_use = "streams do nothing unless polled"]
    #[derive(Debug)]
    pub struct Texts<S> {
        #[pin]
        inner: S,
        reset: bool,
    }
}

impl<S> Texts<S> {
    /// Whether a `Reset` was dropped: the text yielded before it is not part of the answer.
    /// Never true in [`StreamMode::Continue`].
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy};
    /// let t = Policy::DEFAULT
    ///     .stream(|_| async { Ok::<_, ApiError>(futures_util::stream::empty::<Result<String, ApiError>>()) })
    ///     .texts();
    /// assert!(!t.was_reset());
    /// ```
    pub fn was_reset(&self) -> bool {
        self.reset
    }
}

impl<S, C, E> Stream for Texts<S>
where
    S: Stream<Item = Result<StreamEvent<C>, E>>,
    C: StreamChunk,
{
    type Item = Result<String, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            return Poll::Ready(match core::task::ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(StreamEvent::Chunk(c))) => Some(Ok(c.into_text())),
                Some(Ok(StreamEvent::Reset)) => {
                    *this.reset = true;
                    continue;
                }
                Some(Ok(StreamEvent::Retrying { .. })) => continue,
                Some(Err(e)) => Some(Err(e)),
                None => None,
            });
        }
    }
}
