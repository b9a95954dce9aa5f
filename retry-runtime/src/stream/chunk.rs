//! [`StreamChunk`]: what a piece of a streamed answer offers a [`RetryStream`](super::RetryStream)
//! (its text, its token count, and how to drop a prefix of it), and its `String` and `&str`
//! implementations.

#[cfg(doc)]
use super::StreamMode;

/// A piece of a streamed answer: its text, and its token count when the provider reports one.
///
/// Implemented for `String` and `&str`; implement it for your own chunk type to keep provider fields
/// (finish reasons, log-probs) next to the text.
///
/// ```
/// use llm_retry_runtime::stream::StreamChunk;
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
