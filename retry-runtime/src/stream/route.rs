//! A stream along a fallback chain ([`WithFallback::stream`]), and the two ways a
//! [`RetryStream`] finds each attempt's target and settles the attempt: `Direct`, a
//! zero-sized no-op for a stream without a chain, and a chain's [`Route`].
//!
//! Along a chain, a stream attempt is settled like a plain call's attempt, from its open to
//! its end: the breaker sees it as one attempt (a stream that completes is a success; one that
//! fails, before or after its first chunk, counts by its kind), and the chain's move-on table
//! applies to a failure wherever it happens. A stream that moves on keeps its mode: Continue
//! re-opens on the next target with the text so far, Skip checks the new target's replay, and
//! Restart owes a `Reset`.

use super::{Resume, RetryStream, StreamChunk};
use crate::classify::Classify;
use crate::engine::{Call, Mode, Routed, WithFallback};
use crate::failover::{CircuitOpen, Route, Target};
use crate::hooks::{ControlSet, HookSet};
use crate::timeout::Timeout;
use core::future::Future;
use core::ops::ControlFlow;
use futures_core::Stream;

/// How a stream's attempts find their target and are settled: without a chain (`Direct`) or
/// along one ([`Route`]). Implemented by those two only (its module is private).
pub trait Way<E> {
    /// What the opener gets besides its [`Resume`]: nothing, or the attempt's target.
    type Picked: Copy;

    /// The next attempt's target; `Err` ends the stream (no target is left).
    fn pick<H, K, M>(&mut self, call: &mut Call<'_, (), E, H, K, M>) -> Result<Self::Picked, E>
    where
        E: Classify,
        H: HookSet<(), E>,
        K: ControlSet,
        M: Mode<E>;

    /// Settles the attempt that just ended: end, retry after a delay, or move on at once.
    fn settle<H, K, M>(
        &mut self,
        call: &mut Call<'_, (), E, H, K, M>,
        result: Result<(), E>,
        timed_out: Option<Timeout>,
    ) -> Routed<(), E>
    where
        E: Classify,
        H: HookSet<(), E>,
        K: ControlSet,
        M: Mode<E>;

    /// The current attempt's target, if the stream has a chain.
    fn target(&self) -> Option<&'static Target>;
}

/// A stream without a fallback chain: every attempt goes where the opener sends it, and the
/// policy alone settles it. Zero-sized; each method inlines to what the stream did before
/// chains existed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Direct;

impl<E> Way<E> for Direct {
    type Picked = ();

    #[inline(always)]
    fn pick<H, K, M>(&mut self, _: &mut Call<'_, (), E, H, K, M>) -> Result<(), E> {
        Ok(())
    }

    #[inline(always)]
    fn settle<H, K, M>(
        &mut self,
        call: &mut Call<'_, (), E, H, K, M>,
        result: Result<(), E>,
        timed_out: Option<Timeout>,
    ) -> Routed<(), E>
    where
        E: Classify,
        H: HookSet<(), E>,
        K: ControlSet,
        M: Mode<E>,
    {
        match call.settle(result, timed_out) {
            ControlFlow::Break(out) => Routed::End(out),
            ControlFlow::Continue(plan) => Routed::Retry(plan),
        }
    }

    #[inline(always)]
    fn target(&self) -> Option<&'static Target> {
        None
    }
}

impl<E: From<CircuitOpen>> Way<E> for Route<'_, E> {
    type Picked = &'static Target;

    fn pick<H, K, M>(&mut self, call: &mut Call<'_, (), E, H, K, M>) -> Result<&'static Target, E>
    where
        E: Classify,
        H: HookSet<(), E>,
        K: ControlSet,
        M: Mode<E>,
    {
        call.next_target(self)
    }

    fn settle<H, K, M>(
        &mut self,
        call: &mut Call<'_, (), E, H, K, M>,
        result: Result<(), E>,
        timed_out: Option<Timeout>,
    ) -> Routed<(), E>
    where
        E: Classify,
        H: HookSet<(), E>,
        K: ControlSet,
        M: Mode<E>,
    {
        call.settle_routed(self, result, timed_out)
    }

    fn target(&self) -> Option<&'static Target> {
        self.current()
    }
}

/// A stream's opener, called with what its [`Way`] picked: `FnMut(Resume)` without a chain,
/// `FnMut(&'static Target, Resume)` along one.
pub trait Opener<P, Fut> {
    /// Opens one attempt.
    fn open(&mut self, picked: P, resume: Resume) -> Fut;
}

impl<F, Fut> Opener<(), Fut> for F
where
    F: FnMut(Resume) -> Fut,
{
    #[inline(always)]
    fn open(&mut self, (): (), resume: Resume) -> Fut {
        self(resume)
    }
}

impl<F, Fut> Opener<&'static Target, Fut> for F
where
    F: FnMut(&'static Target, Resume) -> Fut,
{
    #[inline]
    fn open(&mut self, target: &'static Target, resume: Resume) -> Fut {
        self(target, resume)
    }
}

impl<'c, 'p, E, H, K, M> WithFallback<'c, Call<'p, (), E, H, K, M>> {
    /// A [`RetryStream`] along the chain: `opener` opens one attempt's stream on the target
    /// it is given. The policy's attempts apply per target; a failure before the first chunk
    /// moves on as a plain call's would, and a failure in the middle moves on under the
    /// stream's mode (Continue re-opens the next target with [`Resume::text`], Skip checks its
    /// replay, Restart sends a `Reset` before its first chunk). Each `Retrying` event names the
    /// target that failed and whether the stream is moving on.
    ///
    /// A breaker counts a stream attempt when it ends: a stream that completes is a success,
    /// one that fails (at the open or in the middle) counts by its kind. A half-open breaker's
    /// probe is the whole stream; dropping the stream releases it.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use llm_retry_runtime::{ApiError, Policy, RetryExt, failover::{Fallback, Target}};
    /// use llm_retry_runtime::stream::{StreamEvent, StreamMode};
    /// static GPT4O: Target = Target::new("gpt-4o");
    /// static CLAUDE: Target = Target::new("claude-sonnet");
    /// static CHAIN: Fallback<'static> = match Fallback::new(&[&GPT4O, &CLAUDE]) {
    ///     Ok(c) => c,
    ///     Err(e) => panic!("{}", e.message()),
    /// };
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let stream = Policy::DEFAULT
    ///     .call()
    ///     .fallback(CHAIN)
    ///     .stream(|target, resume| async move {
    ///         // A real opener asks `target.name()` to continue `resume.text()`. Here the
    ///         // primary runs out of quota after "Hel"; the backup continues the text.
    ///         let parts: Vec<Result<String, ApiError>> = if target.name() == "gpt-4o" {
    ///             vec![Ok("Hel".into()), Err(ApiError::from_status(402))]
    ///         } else {
    ///             assert_eq!(resume.text(), "Hel");
    ///             vec![Ok("lo".into())]
    ///         };
    ///         Ok::<_, ApiError>(futures_util::stream::iter(parts))
    ///     })
    ///     .mode(StreamMode::Continue);
    /// let mut stream = std::pin::pin!(stream);
    /// let mut text = String::new();
    /// while let Some(event) = stream.next().await {
    ///     match event.unwrap() {
    ///         StreamEvent::Chunk(c) => text.push_str(&c),
    ///         StreamEvent::Retrying { target, moving_on, .. } => {
    ///             assert_eq!((target, moving_on), (Some(&GPT4O), true));
    ///         }
    ///         StreamEvent::Reset => text.clear(),
    ///     }
    /// }
    /// assert_eq!(text, "Hello");
    /// # }
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn stream<F, Fut, S, C>(self, opener: F) -> RetryStream<'p, E, H, K, M, F, Fut, S, C, Route<'c, E>>
    where
        E: From<CircuitOpen>,
        F: FnMut(&'static Target, Resume) -> Fut,
        Fut: Future<Output = Result<S, E>>,
        S: Stream<Item = Result<C, E>>,
        C: StreamChunk,
    {
        let (call, chain) = self.into_parts();
        RetryStream::build(call, opener, Route::new(chain))
    }
}
