//! What an [`ApiError`] keeps of a text: trimmed, masked (see `mask`) and cut to a length;
//! and whether a body of no known JSON shape is readable enough to keep as the message.

use super::ApiError;
use super::mask::mask_secrets;

/// The longest provider `type`/`code` kept.
const MAX_TOKEN_CHARS: usize = 100;

/// Masks API keys in `s` and cuts it to [`ApiError::MAX_MESSAGE_CHARS`]; `None` if empty.
pub(super) fn clean_message(s: &str) -> Option<String> {
    clean(s, ApiError::MAX_MESSAGE_CHARS)
}

pub(super) fn clean_token(s: &str) -> Option<String> {
    clean(s, MAX_TOKEN_CHARS)
}

fn clean(s: &str, max_chars: usize) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let masked = mask_secrets(s);
    Some(match masked.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &masked[..cut]),
        None => masked,
    })
}

/// A body of no known JSON shape, kept as the message when it is short, readable text.
pub(super) fn plain_text_message(body: &[u8]) -> Option<String> {
    let head = body.get(..4 * ApiError::MAX_MESSAGE_CHARS).unwrap_or(body);
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // Cut in the middle of a character by the slice above: keep the whole ones.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let text = text.trim();
    let readable = !text.starts_with('<') && !text.chars().any(|c| c.is_control() && !c.is_whitespace());
    if readable { clean_message(text) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn messages_are_cut_on_char_boundaries() {
        let e = ApiError::new(ErrorKind::Server, "é".repeat(1000));
        let m = e.message().unwrap();
        assert_eq!(m.chars().count(), ApiError::MAX_MESSAGE_CHARS + 1);
        assert!(m.ends_with('…'));
        assert_eq!(ApiError::new(ErrorKind::Server, "  ").message(), None);
    }

    #[test]
    fn plain_text_bodies() {
        assert_eq!(plain_text_message(b"upstream connect error"), Some("upstream connect error".into()));
        assert_eq!(plain_text_message(b"<html><body>502</body></html>"), None);
        assert_eq!(plain_text_message(b"\xff\xfe"), None);
        assert_eq!(plain_text_message(b"a\x00b"), None);
    }
}
