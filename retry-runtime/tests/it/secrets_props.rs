//! Credentials never come out of an `ApiError`, whatever text they are buried in.
//!
//! Each test draws a random credential of one of the shapes `ApiError` masks (OpenAI and
//! Anthropic `sk-` keys, Google `AIza` keys, AWS `AKIA`/`ASIA` key ids, `Bearer` tokens, `Basic`
//! credentials, Azure OpenAI hex `api-key` values), puts it in arbitrary text with arbitrary
//! whitespace and punctuation around it, builds `ApiError`s from that text through every public
//! way in (`new`, an error response's body and headers, an SSE error event, `io::Error`,
//! `InvalidOutput`), and checks that neither the credential nor any 8 characters of its random
//! part are in the error's `Display`, `Debug`, `message()`, provider type and code, or source
//! chain. Masking also never panics, never grows the text, and is idempotent, on any string.
//!
//! Randomness is seeded (`PROPTEST_RNG_SEED` in `.cargo/config.toml`).

use futures_util::Stream;
use http::{HeaderMap, HeaderName, HeaderValue};
use llm_retry_runtime::{ApiError, ErrorKind, InvalidOutput, stream::text_deltas};
use proptest::prelude::*;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// A credential as it appears in text, and its random part (what must never be shown).
#[derive(Clone, Debug)]
struct Secret {
    text: String,
    random: String,
}

/// Any run of whitespace: ASCII and Unicode.
fn whitespace() -> impl Strategy<Value = String> {
    const WS: [char; 11] =
        [' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{2003}', '\u{2028}', '\u{3000}'];
    prop::collection::vec(prop::sample::select(&WS[..]), 1..5).prop_map(String::from_iter)
}

/// `word` with each letter's case drawn at random.
fn any_case(word: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
        word.chars().zip(upper).map(|(c, up)| if up { c.to_ascii_uppercase() } else { c }).collect()
    })
}

/// Standard base64, with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in data.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A random credential of one of the masked shapes.
fn secret() -> impl Strategy<Value = Secret> {
    let sk = (prop::sample::select(&["sk-", "sk-proj-", "sk-ant-api03-"][..]), "[A-Za-z0-9_-]{20,64}")
        .prop_map(|(prefix, random)| Secret { text: format!("{prefix}{random}"), random });
    let google = "[A-Za-z0-9_-]{35}".prop_map(|random| Secret { text: format!("AIza{random}"), random });
    let aws = (prop::sample::select(&["AKIA", "ASIA"][..]), "[A-Z0-9]{16}")
        .prop_map(|(prefix, random)| Secret { text: format!("{prefix}{random}"), random });
    let bearer = (any_case("bearer"), whitespace(), "[A-Za-z0-9._~+/=-]{8,80}")
        .prop_map(|(scheme, ws, random)| Secret { text: format!("{scheme}{ws}{random}"), random });
    let basic = (any_case("basic"), whitespace(), "[A-Za-z0-9._@-]{1,16}", "[ -~]{4,24}").prop_map(
        |(scheme, ws, user, pass)| {
            let random = base64(format!("{user}:{pass}").as_bytes());
            Secret { text: format!("{scheme}{ws}{random}"), random }
        },
    );
    const KEYWORDS: [&str; 7] =
        ["api-key", "x-api-key", "api_key", "apikey", "API-KEY", "Ocp-Apim-Subscription-Key", "key"];
    let separators = prop::collection::vec(prop::sample::select(&[' ', '\t', ':', '=', '"', '\'', '\u{a0}'][..]), 1..5);
    let azure =
        (prop::sample::select(&KEYWORDS[..]), separators, "[0-9a-fA-F]{32}").prop_map(|(keyword, sep, random)| {
            Secret { text: format!("{keyword}{}{random}", String::from_iter(sep)), random }
        });
    prop_oneof![sk, google, aws, bearer, basic, azure]
}

/// Fragments that start, end or look like credentials, to build text that stresses how the
/// masking rules meet.
const SOUP: [&str; 24] = [
    "sk-", "AIza", "AKIA", "ASIA", "Bearer", "bearer", "Basic", "basic", "key", "api-key", ":", "=", "\"", "'", " ",
    "\t", "\u{3000}", "é", "x", "0", "-", ".", "/", "abcdefgh",
];

fn soup(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&SOUP[..]), 0..max).prop_map(|parts| parts.concat())
}

/// Text around a credential: printable Unicode, any string at all, punctuation and whitespace,
/// or fragments of other credentials.
fn filler() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        any::<String>().prop_map(|s| s.chars().take(30).collect()),
        "[ \t\n.,;:!?()\\[\\]{}<>\"'`=/&|-]{0,6}",
        soup(6),
    ]
}

/// The items of a stream that never waits.
fn poll_all<S: Stream>(s: S) -> Vec<S::Item> {
    let mut s = pin!(s);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(item)) = s.as_mut().poll_next(&mut cx) {
        out.push(item);
    }
    out
}

/// The errors built from `text` through every public way in.
fn errors_from(text: &str) -> Vec<ApiError> {
    let mut out = vec![
        ApiError::new(ErrorKind::Auth, text),
        ApiError::connection(text),
        ApiError::from(std::io::Error::other(text.to_owned())),
        ApiError::from(InvalidOutput::new(text.to_owned())),
    ];
    let openai = serde_json::json!({"error": {"message": text, "type": text, "code": text, "param": null}});
    let anthropic = serde_json::json!({"type": "error", "error": {"type": text, "message": text}});
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(text) {
        for name in ["authorization", "x-api-key", "api-key", "retry-after", "x-should-retry"] {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    for body in [openai.to_string().into_bytes(), anthropic.to_string().into_bytes(), text.as_bytes().to_vec()] {
        for status in [401, 429, 500] {
            out.push(ApiError::from_response(status, &headers, &body));
        }
    }
    // An error event in the middle of a 200's SSE stream.
    let event = format!("event: error\ndata: {anthropic}\n\ndata: {openai}\n\n");
    for body in [event.clone(), event.replace("event: error\n", "")] {
        let chunks = futures_util::stream::iter([Ok::<_, ApiError>(body)]);
        out.extend(poll_all(text_deltas(chunks)).into_iter().filter_map(Result::err));
    }
    out
}

/// Everything an error shows: its Display and Debug, its fields, and its source chain.
fn shown(e: &ApiError) -> Vec<String> {
    let mut out = vec![
        e.to_string(),
        format!("{e:?}"),
        format!("{e:#?}"),
        e.message().unwrap_or_default().to_owned(),
        e.provider_type().unwrap_or_default().to_owned(),
        e.provider_code().unwrap_or_default().to_owned(),
    ];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.extend([s.to_string(), format!("{s:?}")]);
        source = s.source();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_credential_is_ever_shown(before in filler(), secret in secret(), after in filler()) {
        let text = format!("{before}{}{after}", secret.text);
        let windows: Vec<&str> = (0..=secret.random.len().saturating_sub(8)).map(|i| &secret.random[i..i + 8]).collect();
        for e in errors_from(&text) {
            for out in shown(&e) {
                prop_assert!(!out.contains(&secret.text), "the credential in {text:?} leaked: {out}");
                for w in &windows {
                    prop_assert!(!out.contains(w), "{w:?} of {:?} in {text:?} leaked: {out}", secret.random);
                }
            }
        }
    }

    #[test]
    fn two_credentials_side_by_side_are_both_masked(a in secret(), between in filler(), b in secret()) {
        let text = format!("{}{between}{}", a.text, b.text);
        let e = ApiError::new(ErrorKind::Auth, text.as_str());
        for out in shown(&e) {
            for secret in [&a, &b] {
                for i in 0..=secret.random.len().saturating_sub(8) {
                    let w = &secret.random[i..i + 8];
                    prop_assert!(!out.contains(w), "{w:?} of {:?} in {text:?} leaked: {out}", secret.random);
                }
            }
        }
    }

    #[test]
    fn masking_any_string_never_panics_grows_or_changes_twice(
        text in prop_oneof![any::<String>(), "\\PC{0,200}", soup(80)],
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let lossy = String::from_utf8_lossy(&bytes);
        for e in errors_from(&text).into_iter().chain(errors_from(&lossy)) {
            let _ = shown(&e);
        }
        for status in [200, 401, 429, 500, 529] {
            let _ = shown(&ApiError::from_response(status, &HeaderMap::new(), &bytes));
        }
        let e = ApiError::new(ErrorKind::Auth, text.as_str());
        if let Some(m) = e.message().filter(|m| m.chars().count() <= ApiError::MAX_MESSAGE_CHARS) {
            prop_assert!(m.len() <= text.trim().len(), "{text:?} grew to {m:?}");
            let again = ApiError::new(ErrorKind::Auth, m);
            prop_assert_eq!(again.message(), Some(m), "masked twice: {:?}", text);
        }
    }
}
