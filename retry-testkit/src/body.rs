//! The response body type: a list of frames, optionally spaced in time.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// A body of known frames. A `Full` body announces its length (`content-length`); a streamed one is sent
/// chunked, one frame per chunk, with `delay` between frames.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    frames: VecDeque<Bytes>,
    streamed: bool,
    delay: Duration,
    sent_any: bool,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl ResponseBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        let bytes = bytes.into();
        let frames = if bytes.is_empty() { VecDeque::new() } else { VecDeque::from([bytes]) };
        ResponseBody { frames, streamed: false, delay: Duration::ZERO, sent_any: false, sleep: None }
    }

    pub(crate) fn streamed(frames: Vec<Bytes>, delay: Duration) -> ResponseBody {
        ResponseBody { frames: frames.into(), streamed: true, delay, sent_any: false, sleep: None }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.frames.is_empty() {
            return Poll::Ready(None);
        }
        if this.sent_any && !this.delay.is_zero() {
            let delay = this.delay;
            let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        this.sent_any = true;
        Poll::Ready(this.frames.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.streamed {
            SizeHint::default()
        } else {
            SizeHint::with_exact(self.frames.iter().map(|b| b.len() as u64).sum())
        }
    }
}
