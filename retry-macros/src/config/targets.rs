//! The kinds and statuses named in `on = [...]` and `rule(...)`. Which of them can be retried
//! is the rulebook's call (`RetryOn::check_kind`, `RetryOn::check_status`), the same check the
//! builder makes.

use crate::args::{Entry, Value};
use crate::ctxt::Ctxt;
use core::fmt;
use llm_retry_rules::suggest;
use llm_retry_rules::{ErrorKind, RetryOn, keys, never_retryable_status_reason};
use syn::Lit;

/// A kind or an HTTP status, as listed in `on` or named by a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Kind(ErrorKind),
    Status(u16),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Kind(k) => f.write_str(k.name()),
            Target::Status(s) => write!(f, "{s}"),
        }
    }
}

/// What to do with a never-retried target: take it out of `on`, or remove its rule.
fn remove(context: &str) -> &'static str {
    if context.contains("rule") { "remove this rule" } else { "remove it from `on`" }
}

/// `on = [...]`.
pub fn on_list(cx: &mut Ctxt, entry: &Entry) -> Option<Vec<Target>> {
    let Value::List(group, items) = &entry.value else {
        let fix = match &entry.value {
            Value::Path(_) | Value::Lit(Lit::Int(_)) => {
                format!("write a list: `on = [{}]`", quote::ToTokens::to_token_stream(&entry.value))
            }
            _ => format!("`on` takes a list of kinds and statuses, like `{}`", keys::example(keys::ON)),
        };
        cx.error_spanned(&entry.value, fix);
        return None;
    };
    if items.is_empty() {
        cx.error_spanned(group, keys::EMPTY_ON);
        return None;
    }
    let mut out: Vec<Target> = Vec::new();
    for item in items {
        if let Some(t) = target(cx, item, "in `on`") {
            if out.contains(&t) {
                cx.error_spanned(item, format!("`{t}` is listed twice in `on`; remove one"));
            } else {
                out.push(t);
            }
        }
    }
    Some(out)
}

/// A kind or a status, checked for being one that retrying can fix.
pub fn target(cx: &mut Ctxt, value: &Value, context: &str) -> Option<Target> {
    match value {
        Value::Path(p) => {
            let Some(ident) = p.get_ident() else {
                let last = p.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
                cx.error_spanned(value, format!("write the kind's bare name {context}, like `{last}`"));
                return None;
            };
            let name = ident.to_string();
            let Some(kind) = ErrorKind::from_name(&name) else {
                let names = || ErrorKind::ALL.iter().map(|k| k.name());
                let list = names().collect::<Vec<_>>().join(", ");
                let hint = suggest::did_you_mean(&name, names());
                cx.error_spanned(
                    value,
                    format!("unknown error kind `{name}`{hint}\nkinds: {list}; or an HTTP status like 503"),
                );
                return None;
            };
            if RetryOn::check_kind(kind).is_err() {
                let reason = kind.never_retryable_reason().unwrap_or_default();
                cx.error_spanned(value, format!("`{name}` is never retried, so {}: {reason}", remove(context)));
                return None;
            }
            Some(Target::Kind(kind))
        }
        Value::Lit(Lit::Int(i)) => {
            let Ok(status) = i.base10_parse::<u16>() else {
                cx.error_spanned(
                    value,
                    "an HTTP status is a number from 100 to 599; the retried ones are 4xx and 5xx, like 429 or 503",
                );
                return None;
            };
            match status {
                100..=399 => {
                    cx.error_spanned(
                        value,
                        format!(
                            "{status} is not an error status; only 4xx and 5xx responses are retried, like 429 or 503"
                        ),
                    );
                    None
                }
                400..=599 => match RetryOn::check_status(status) {
                    Ok(()) => Some(Target::Status(status)),
                    Err(_) => {
                        let reason = never_retryable_status_reason(status).unwrap_or_default();
                        cx.error_spanned(value, format!("{status} is never retried, so {}: {reason}", remove(context)));
                        None
                    }
                },
                _ => {
                    cx.error_spanned(
                        value,
                        format!("{status} is not an HTTP status; statuses run from 100 to 599, and the retried ones are 4xx and 5xx, like 429 or 503"),
                    );
                    None
                }
            }
        }
        Value::Lit(Lit::Str(s)) => {
            let v = s.value();
            let fix = v.trim();
            let valid = fix.parse::<u16>().is_ok() || ErrorKind::from_name(fix).is_some();
            let message = if valid {
                format!("write kinds and statuses without quotes {context}: `{fix}`")
            } else {
                format!("write kinds and statuses without quotes {context}, like `RateLimited` or `503`")
            };
            cx.error_spanned(value, message);
            None
        }
        Value::Invalid(_) => None,
        _ => {
            cx.error_spanned(
                value,
                format!("expected an error kind like `RateLimited` or a status like `503` {context}"),
            );
            None
        }
    }
}
