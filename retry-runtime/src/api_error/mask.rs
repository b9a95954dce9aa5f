//! Credential masking: [`mask_secrets`] replaces anything shaped like an API key, a token or
//! a `Basic` credential with `***`, in one linear pass, before an [`ApiError`](super::ApiError)
//! keeps a text.

/// Masks every credential in `s` that has a recognisable shape, keeping what names it:
/// - `sk-` and 8+ key characters (OpenAI, Anthropic, ...): `sk-***`;
/// - `AIza` and 8+ key characters (Google API keys are `AIza` and 35): `AIza***`;
/// - `AKIA` or `ASIA` and 16+ upper-case letters and digits (AWS access key ids): `AKIA***`;
/// - `Bearer`, any whitespace, 8+ token characters: `Bearer ***`;
/// - `Basic`, any whitespace, a base64 credential: `Basic ***`;
/// - a word ending in `key` (`api-key`, `x-api-key`, `api_key`, `apikey`, `key`), then
///   separators (whitespace, `:`, `=`, quotes), then 32+ key characters (Azure OpenAI's keys
///   are 32 hex digits): `api-key: ***`.
///
/// Schemes and `key` are matched in any case; whitespace is any Unicode whitespace. "Key
/// characters" are ASCII letters, digits, `-` and `_`; "token characters" add `.~+/=`.
///
/// Every rule is tried at every position, and the parts to mask are merged, so a secret is
/// masked whole even when another rule's match overlaps it. Linear in `s`: each rule's run of
/// characters is measured once (see [`Run`]), the output is never longer than `s`, and slices
/// are only taken at ASCII bytes or at the ends of whole characters.
pub(crate) fn mask_secrets(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut runs = Runs::default();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut pending: Option<Masked> = None;
    for at in 0..bytes.len() {
        let Some(found) = secret_at(s, at, &mut runs) else { continue };
        match pending.as_mut() {
            Some(cur) if found.start <= cur.end => {
                cur.start = cur.start.min(found.start);
                cur.end = cur.end.max(found.end);
            }
            _ => {
                if let Some(done) = pending.replace(found) {
                    copied = done.write(s, copied, &mut out);
                }
            }
        }
    }
    if let Some(done) = pending {
        copied = done.write(s, copied, &mut out);
    }
    out.push_str(s.get(copied..).unwrap_or_default());
    out
}

/// A part of the text to replace: `s[start..end]` becomes `with`.
struct Masked {
    start: usize,
    end: usize,
    with: &'static str,
}

impl Masked {
    /// Writes `s[copied..start]` and the mask; returns where the copy resumes.
    fn write(&self, s: &str, copied: usize, out: &mut String) -> usize {
        out.push_str(s.get(copied..self.start.max(copied)).unwrap_or_default());
        out.push_str(self.with);
        self.end.max(copied)
    }
}

fn key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn token_byte(c: u8) -> bool {
    key_byte(c) || matches!(c, b'.' | b'~' | b'+' | b'/' | b'=')
}

fn upper_byte(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn base64_byte(c: u8) -> bool {
    key_byte(c) || matches!(c, b'+' | b'/' | b'=')
}

/// The end of the run of bytes satisfying `is_in` that starts at a given index, remembering the
/// last run measured. Each rule asks about positions in increasing order, and every position
/// inside a run has the same end, so a run is walked once however many matches start in it
/// (`sk-sk-sk-...`): what keeps [`mask_secrets`] linear.
struct Run {
    is_in: fn(u8) -> bool,
    /// `bytes[from..to]` all satisfy `is_in`, and `bytes[to]` does not (or is the end).
    from: usize,
    to: usize,
}

impl Run {
    fn new(is_in: fn(u8) -> bool) -> Self {
        // Empty: `from > to` matches no index.
        Run { is_in, from: 1, to: 0 }
    }

    /// The end of the run starting at `at`.
    fn end(&mut self, bytes: &[u8], at: usize) -> usize {
        if (self.from..=self.to).contains(&at) {
            return self.to;
        }
        let len = bytes.get(at..).map_or(0, |rest| rest.iter().take_while(|&&c| (self.is_in)(c)).count());
        (self.from, self.to) = (at, at.saturating_add(len));
        self.to
    }

    /// How long the run starting at `at` is.
    fn len(&mut self, bytes: &[u8], at: usize) -> usize {
        self.end(bytes, at).saturating_sub(at)
    }
}

/// One [`Run`] per rule.
struct Runs {
    sk: Run,
    google: Run,
    aws: Run,
    bearer: Run,
    basic: Run,
    keyed: Run,
}

impl Default for Runs {
    fn default() -> Self {
        Runs {
            sk: Run::new(key_byte),
            google: Run::new(key_byte),
            aws: Run::new(upper_byte),
            bearer: Run::new(token_byte),
            basic: Run::new(base64_byte),
            keyed: Run::new(key_byte),
        }
    }
}

/// The secret whose rule anchors at byte `at`: a prefix starting there, or a keyword ending
/// just before it followed by whitespace or separators.
fn secret_at(s: &str, at: usize, runs: &mut Runs) -> Option<Masked> {
    let bytes = s.as_bytes();
    let rest = bytes.get(at..)?;
    let prefixed = |prefix_len: usize, run: &mut Run, min: usize, with: &'static str| {
        let start = at.saturating_add(prefix_len);
        (run.len(bytes, start) >= min).then(|| Masked { start, end: run.end(bytes, start), with })
    };
    if rest.starts_with(b"sk-") {
        return prefixed(3, &mut runs.sk, 8, "***");
    }
    if rest.starts_with(b"AIza") {
        return prefixed(4, &mut runs.google, 8, "***");
    }
    if rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA") {
        return prefixed(4, &mut runs.aws, 16, "***");
    }
    let ends_with = |word: &[u8]| {
        at.checked_sub(word.len()).and_then(|from| bytes.get(from..at)).is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    // The keyword is ASCII and ends at `at`, so `at` is a character boundary.
    let after = || s.get(at..).unwrap_or_default();
    if ends_with(b"bearer") || ends_with(b"basic") {
        let gap = after().len().saturating_sub(after().trim_start().len());
        if gap == 0 {
            return None;
        }
        let start = at.saturating_add(gap);
        let (run, end) = if ends_with(b"bearer") {
            let end = runs.bearer.end(bytes, start);
            (end.saturating_sub(start) >= 8, end)
        } else {
            let end = runs.basic.end(bytes, start);
            (bytes.get(start..end).is_some_and(is_basic_credential), end)
        };
        return run.then_some(Masked { start: at, end, with: " ***" });
    }
    if ends_with(b"key") {
        let is_separator = |c: char| c.is_whitespace() || matches!(c, ':' | '=' | '"' | '\'' | '`');
        let gap = after().len().saturating_sub(after().trim_start_matches(is_separator).len());
        let start = at.saturating_add(gap);
        if gap > 0 && runs.keyed.len(bytes, start) >= 32 {
            // Show the prefix of a key of a known shape (`key=AIza***`), as its own rule would.
            let value = bytes.get(start..).unwrap_or_default();
            let shown = match value {
                [b's', b'k', b'-', ..] => 3,
                [b'A', b'I', b'z', b'a', ..] | [b'A', b'K' | b'S', b'I', b'A', ..] => 4,
                _ => 0,
            };
            return Some(Masked { start: start.saturating_add(shown), end: runs.keyed.end(bytes, start), with: "***" });
        }
    }
    None
}

/// Whether the run after `Basic ` is a credential (base64 of `user:password`) rather than a
/// word ("Basic authentication failed", "Basic realm=..."): masked if it is not a plain word,
/// or if it decodes to something with a `:` in it.
fn is_basic_credential(run: &[u8]) -> bool {
    let word = run.iter().rposition(|&c| c != b'=').and_then(|last| run.get(..=last)).unwrap_or_default();
    let plain_word = match word {
        [first, rest @ ..] => {
            first.is_ascii_alphabetic() && rest.iter().all(|&c| c.is_ascii_lowercase() || c == b'-' || c == b'_')
        }
        [] => true,
    };
    run.len() >= 4 && (!plain_word || base64_has_colon(run))
}

/// Whether `run`, decoded as base64 (standard or URL-safe, up to its padding), holds a `:`.
fn base64_has_colon(run: &[u8]) -> bool {
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in run {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return false,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if (acc >> bits) & 0xff == u32::from(b':') {
                return true;
            }
            acc &= (1 << bits) - 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiError, ErrorKind};

    #[test]
    fn masks_keys() {
        let table = [
            ("key sk-abcdefgh end", "key sk-*** end"),
            ("sk-proj-AbC_123-xyz9", "sk-***"),
            ("sk-ant-api03-abcdefghijk.", "sk-***."),
            ("sk-short", "sk-short"),
            ("desk-top sk-", "desk-top sk-"),
            ("Authorization: Bearer abc.def.ghi-jkl", "Authorization: Bearer ***"),
            ("bearer tok", "bearer tok"),
            ("two sk-aaaaaaaa and sk-bbbbbbbbbb", "two sk-*** and sk-***"),
            ("ünïcødé sk-12345678é", "ünïcødé sk-***é"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(mask_secrets(input), want, "{input:?}");
        }
    }

    /// Builds an `ApiError` from `input` and checks that `secret` is in none of its outputs
    /// and that its message is `want`.
    #[track_caller]
    fn assert_masked(input: &str, secret: &str, want: &str) {
        let e = ApiError::new(ErrorKind::Auth, input);
        for shown in [e.to_string(), format!("{e:?}"), e.message().unwrap_or_default().to_owned()] {
            assert!(!shown.contains(secret), "{secret:?} leaked from {input:?}: {shown}");
        }
        assert_eq!(e.message(), Some(want), "{input:?}");
    }

    #[test]
    fn bearer_tokens_after_any_whitespace_are_masked() {
        let token = "abc.def.ghi-jkl";
        for (input, want) in [
            ("Authorization: Bearer  abc.def.ghi-jkl", "Authorization: Bearer ***"),
            ("Authorization: Bearer\tabc.def.ghi-jkl", "Authorization: Bearer ***"),
            ("bearer \t \n abc.def.ghi-jkl end", "bearer *** end"),
            ("BEARER\u{a0}abc.def.ghi-jkl", "BEARER ***"),
        ] {
            assert_masked(input, token, want);
        }
    }

    #[test]
    fn google_api_keys_are_masked() {
        let key = "AIzaSyA1b2C3d4E5f6G7h8I9j0K-L_mnopqrstu";
        assert_eq!(key.len(), 39);
        assert_masked(
            &format!("API key not valid: {key}. Please pass a valid API key."),
            "SyA1b2C3",
            "API key not valid: AIza***. Please pass a valid API key.",
        );
        assert_masked(&format!("GET /v1/models?key={key}"), "SyA1b2C3", "GET /v1/models?key=AIza***");
    }

    #[test]
    fn aws_access_key_ids_are_masked() {
        assert_masked(
            "The security token AKIAIOSFODNN7EXAMPLE is invalid",
            "IOSFODNN7",
            "The security token AKIA*** is invalid",
        );
        assert_masked(
            "Credential=ASIAY34FZKBOKMUTVV7A/20260101/us-east-1",
            "Y34FZKBO",
            "Credential=ASIA***/20260101/us-east-1",
        );
    }

    #[test]
    fn hex_api_key_values_are_masked() {
        let key = "0123456789abcdef0123456789ABCDEF";
        for (input, want) in [
            (format!("api-key: {key}"), "api-key: ***"),
            (format!("{{\"api_key\": \"{key}\"}}"), "{\"api_key\": \"***\"}"),
            (format!("x-api-key={key}&a=b"), "x-api-key=***&a=b"),
            (format!("apikey '{key}' rejected"), "apikey '***' rejected"),
            (format!("invalid subscription key\t{key}."), "invalid subscription key\t***."),
        ] {
            assert_masked(&input, "0123456789abcdef", want);
        }
    }

    #[test]
    fn basic_credentials_are_masked() {
        // base64("user:password") and base64("api:sk")
        for (input, want) in [
            ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
            ("authorization: basic\t\tdXNlcjpwYXNzd29yZA== rejected", "authorization: basic *** rejected"),
            ("BASIC  YXBpOnNr", "BASIC ***"),
        ] {
            assert_masked(input, "dXNlcjpw", want);
            assert_masked(input, "YXBpOnNr", want);
        }
        // Words after "Basic" are left alone.
        assert_eq!(mask_secrets("Basic authentication failed"), "Basic authentication failed");
    }

    #[test]
    fn overlapping_shapes_are_masked_whole() {
        let hex = "0123456789abcdef0123456789abcdef";
        let table = [
            // The `sk-` key's run swallows a keyword: what follows the keyword is masked too.
            ("sk-aaaaaaaa_bearer abcdefghij", "sk-***".to_owned()),
            (&*format!("sk-aaaaaaaa_api-key: {hex}"), "sk-***: ***".to_owned()),
            (&*format!("Bearer abcdefgh_api_key=\"{hex}\""), "Bearer ***\"***\"".to_owned()),
            // A key of a known shape after `key` keeps its prefix.
            ("key: AKIAIOSFODNN7EXAMPLEabcdefghijklmnop", "key: AKIA***".to_owned()),
            (&*format!("api_key={hex} sk-proj-abcdefghijkl"), "api_key=*** sk-***".to_owned()),
        ];
        for (input, want) in table {
            assert_eq!(mask_secrets(input), want, "{input:?}");
            assert_eq!(mask_secrets(&want), want, "masked twice: {input:?}");
        }
    }

    #[test]
    fn words_after_schemes_and_keys_are_kept() {
        for text in [
            "WWW-Authenticate: Basic realm=\"api\"",
            "Basic authentication failed; basic auth is off",
            "Bearer error=\"invalid_token\"",
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "AKIA too short AKIAABCDEFGH",
            "key: 0123456789abcdef",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        ] {
            assert_eq!(mask_secrets(text), text);
        }
    }

    /// Hostile inputs that made the old masking quadratic (256 KiB of `sk-x ` took 5.9 s, even in
    /// a release build): each is masked whole, and masking it again changes nothing. Their time
    /// is measured, not asserted: `cargo test --release -p llm-retry-runtime --lib
    /// masking_hostile_text -- --nocapture` prints it (docs/RELIABILITY.md).
    #[test]
    fn masking_hostile_text_is_masked_whole() {
        let n = 1 << 18;
        for text in [
            "sk-x ".repeat(n / 5),
            "sk-".repeat(n / 3),
            "AIza".repeat(n / 4),
            "AKIAa".repeat(n / 5),
            "key:".repeat(n / 4),
            "bearer basic ".repeat(n / 13),
            format!("basic {}", "a".repeat(n)),
            "sk-aaaaaaaa_bearer key: ".repeat(n / 24),
        ] {
            let started = std::time::Instant::now();
            let masked = mask_secrets(&text);
            println!("{:>8} bytes of {:?}...: masked in {:?}", text.len(), &text[..12], started.elapsed());
            assert!(masked.len() <= text.len());
            assert_eq!(mask_secrets(&masked), masked, "masking is idempotent");
        }
    }
}
