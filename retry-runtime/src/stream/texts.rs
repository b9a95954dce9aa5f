//! [`Texts`]: the content of a [`RetryStream`](super::RetryStream) alone, without its notes.

#[cfg(doc)]
use super::StreamMode;
use super::{StreamChunk, StreamEvent};
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_core::Stream;
use pin_project_lite::pin_project;

pin_project! {
    /// The content of a [`RetryStream`] alone: see [`RetryStream::texts`].
    #[must_use = "streams do nothing unless polled"]
    #[derive(Debug)]
    pub struct Texts<S> {
        #[pin]
        pub(super) inner: S,
        pub(super) reset: bool,
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
