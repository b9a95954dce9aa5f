//! How a stream that broke off resumes, in each [`StreamMode`]: delivering and recording
//! chunks, the `Reset` of Restart mode, the text kept for Continue, and the check of a Skip
//! replay against what was already delivered.

use super::events::Received;
use super::{Core, Resume, StreamChunk, StreamEvent, StreamMode};
use crate::classify::Classify;
use crate::engine::Mode;
use crate::hooks::{ControlSet, HookSet};
use crate::timeout::Timeout;

/// The already-delivered prefix being checked against a Skip replay.
pub(super) struct SkipCheck<C> {
    /// Bytes of the delivered text matched so far.
    matched: usize,
    /// The replayed chunks dropped so far, delivered after a `Reset` if the replay differs.
    held: Vec<C>,
}

impl<E, H, K, M, F, C, R> Core<'_, E, H, K, M, F, C, R>
where
    E: Classify + From<Timeout>,
    H: HookSet<(), E>,
    K: ControlSet,
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
    pub(super) fn reset(&mut self) {
        self.received = Received::default();
        self.text.clear();
        self.emit(StreamEvent::Reset);
    }

    pub(super) fn on_chunk(&mut self, chunk: C) {
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
    pub(super) fn replay_differs(&mut self, chunk: Option<C>) {
        let held = self.skip.take().map(|s| s.held).unwrap_or_default();
        self.reset();
        for c in held.into_iter().chain(chunk) {
            self.deliver(c);
        }
    }

    /// The next attempt's `Resume`, and the Skip check it starts.
    pub(super) fn resume(&mut self) -> Resume {
        if self.options.mode == StreamMode::Skip && !self.text.is_empty() {
            self.skip = Some(SkipCheck { matched: 0, held: Vec::new() });
        }
        let text = if self.options.mode == StreamMode::Continue { self.text.clone() } else { String::new() };
        Resume { attempt: self.attempts, text, received: self.received }
    }
}
