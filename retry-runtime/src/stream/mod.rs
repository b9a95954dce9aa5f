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
//!
//! This file holds the [`RetryStream`] itself, how it is built and configured, and
//! [`collect_text`](RetryStream::collect_text). The rest, one concern per file:
//! - `chunk`: [`StreamChunk`], what a piece of a streamed answer offers.
//! - `options`: the recovery [`StreamMode`] and the [`StreamOptions`] (mode and timeouts).
//! - `events`: what the consumer and the opener are told: [`StreamEvent`], [`Received`],
//!   [`Resume`].
//! - `recovery`: how a stream that broke off resumes in each mode (the Skip check, `Reset`s).
//! - `machine`: the state machine that `poll_next` runs: open, read, time out, settle, wait.
//! - `route`: a stream along a fallback chain ([`WithFallback::stream`]), and how each
//!   attempt finds its target and is settled, with a chain or without.
//! - `texts`: [`Texts`], the content alone.
//! - `sse`: [`text_deltas`], a server-sent-events reader for OpenAI and Anthropic bodies.

mod chunk;
mod events;
mod machine;
mod options;
mod recovery;
mod route;
mod sse;
mod texts;

pub use chunk::StreamChunk;
pub use events::{Received, Resume, StreamEvent};
pub use options::{StreamMode, StreamOptions};
pub use sse::{TextDeltas, text_deltas};
pub use texts::Texts;

use crate::classify::Classify;
#[cfg(doc)]
use crate::engine::WithFallback;
use crate::engine::{Call, Mode};
use crate::failover::Target;
use crate::hooks::{ControlSet, HookSet};
use crate::limiter::InFlight;
use crate::timeout::Timeout;
use core::fmt;
use core::future::Future;
use futures_core::Stream;
use pin_project_lite::pin_project;
use recovery::SkipCheck;
use route::{Direct, Opener, Way};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

pin_project! {
    #[project = StateProj]
    enum State<Fut, S> {
        Idle,
        // `wait`: the call's limiter, before the opener's future is first polled.
        Opening { wait: Option<core::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>>, #[pin] fut: Fut },
        Reading { #[pin] stream: S },
        Waiting,
        Done,
    }
}

/// Everything but the pinned state and timer.
struct Core<'p, E, H, K, M, F, C, R> {
    call: Call<'p, (), E, H, K, M>,
    opener: F,
    /// Where each attempt goes: `Direct` (no chain, a zero-sized no-op) or a chain's route.
    route: R,
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
    /// The open attempt's place in flight (a capped limiter's), from the limiter's wait to the
    /// attempt's end.
    slot: InFlight<'static>,
}

pin_project! {
    /// A stream that opens an LLM stream, retries opening it until a first chunk arrives, and
    /// recovers from breaks in the middle as its [`StreamMode`] says. Yields
    /// `Result<StreamEvent<C>, E>`; the last error, if the policy gives up, ends it.
    ///
    /// Build it with [`Policy::stream`] or [`Call::stream`] (to add a deadline, hooks or a
    /// stats site), or along a fallback chain with [`WithFallback::stream`], then set the mode
    /// and timeouts. Nothing happens until it is polled. It is
    /// `!Unpin`: pin it (`std::pin::pin!`) before calling `next()`.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, stream::StreamEvent, stream::StreamMode};
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
    pub struct RetryStream<'p, E, H, K, M, F, Fut, S, C, R = Direct> {
        core: Core<'p, E, H, K, M, F, C, R>,
        #[pin]
        state: State<Fut, S>,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<E, H, K, M, F, Fut, S, C, R: Way<E>> fmt::Debug for RetryStream<'_, E, H, K, M, F, Fut, S, C, R> {
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
            .field("target", &self.core.route.target().map(Target::name))
            .finish_non_exhaustive()
    }
}

impl<'p, E, H, K, M> Call<'p, (), E, H, K, M> {
    /// A [`RetryStream`] under this call's policy, deadline, hooks and site. `opener` opens one
    /// attempt's stream; it is called again for each retry with a [`Resume`].
    ///
    /// The call's `attempt_timeout` does not apply to streams (a long answer is not a slow
    /// one): use [`RetryStream::first_chunk_timeout`] and [`RetryStream::idle_timeout`].
    ///
    /// The call's [`limiter`](Call::limiter) paces the stream's attempts as it paces any
    /// other call to the endpoint: each opener's future is first polled once the limiter lets
    /// the attempt go (only the deadline runs while it waits, not the first-chunk timeout),
    /// and each attempt's end is reported to it.
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
    pub fn stream<F, Fut, S, C>(self, opener: F) -> RetryStream<'p, E, H, K, M, F, Fut, S, C>
    where
        F: FnMut(Resume) -> Fut,
        Fut: Future<Output = Result<S, E>>,
        S: Stream<Item = Result<C, E>>,
        C: StreamChunk,
    {
        RetryStream::build(self, opener, Direct)
    }
}

impl<'p, E, H, K, M, F, Fut, S, C, R> RetryStream<'p, E, H, K, M, F, Fut, S, C, R> {
    /// A stream of `call`, opened by `opener`, each attempt going where `route` says.
    fn build(call: Call<'p, (), E, H, K, M>, opener: F, route: R) -> Self {
        RetryStream {
            core: Core {
                call,
                opener,
                route,
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
                slot: InFlight::NONE,
            },
            state: State::Idle,
            timer: None,
        }
    }
}

impl<E, H, K, M, F, Fut, S, C, R> RetryStream<'_, E, H, K, M, F, Fut, S, C, R> {
    /// Sets the mode and both timeouts at once.
    ///
    /// ```
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, stream::StreamMode, stream::StreamOptions};
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
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, stream::StreamMode};
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
    /// use llm_retry_runtime::{RetryExt, ApiError, Policy, stream::StreamMode};
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

impl<'p, E, H, K, M, F, Fut, S, C, R> RetryStream<'p, E, H, K, M, F, Fut, S, C, R>
where
    E: Classify + From<Timeout>,
    H: HookSet<(), E>,
    K: ControlSet,
    M: Mode<E>,
    R: Way<E>,
    F: Opener<R::Picked, Fut>,
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
