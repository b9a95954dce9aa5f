//! One key's value: a number, a duration, a boolean, a choice among names, or a path.

use super::Adaptive;
use crate::args::{Entry, Value};
use crate::ctxt::Ctxt;
use llm_retry_rules::keys;
use llm_retry_rules::suggest;
use std::time::Duration;
use syn::Lit;

/// "`key` takes WHAT, like `EXAMPLE`", at the value.
pub fn wrong_type(cx: &mut Ctxt, entry: &Entry, key: &str, what: &str) {
    cx.error_spanned(&entry.value, format!("`{key}` takes {what}, like `{}`", keys::example(key)));
}

/// `max = N`: a whole number of attempts. Whether it is a valid one is the rulebook's
/// (`rulebook`): zero is reported there, with the same words as the builder's check.
pub fn attempts(cx: &mut Ctxt, entry: &Entry) -> Option<u32> {
    let key = keys::MAX;
    let n = match &entry.value {
        Value::Lit(Lit::Int(i)) => match i.base10_parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                wrong_type(cx, entry, key, "a whole number of attempts");
                return None;
            }
        },
        Value::Neg(_, Lit::Int(_)) => 0,
        Value::Lit(Lit::Str(s)) if s.value().parse::<u32>().is_ok() => {
            cx.error_spanned(&entry.value, format!("`max` takes a number, not a string: write `max = {}`", s.value()));
            return None;
        }
        _ => {
            wrong_type(cx, entry, key, "a whole number of attempts");
            return None;
        }
    };
    match u32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            cx.error_spanned(
                &entry.value,
                format!(
                    "`max = {n}` is more attempts than a call can count (at most {}); to retry for a long time, bound it with `deadline = \"2m\"`",
                    u32::MAX
                ),
            );
            None
        }
    }
}

/// A duration string with a unit: `"500ms"`, `"2s"`.
pub fn duration(cx: &mut Ctxt, entry: &Entry, key: &str) -> Option<Duration> {
    match &entry.value {
        Value::Lit(Lit::Str(s)) => match llm_retry_rules::duration::parse(&s.value()) {
            Ok(d) => Some(d),
            Err(msg) => {
                cx.error_spanned(s, format!("`{key}`: {msg}"));
                None
            }
        },
        Value::Lit(Lit::Int(i)) => {
            let n = i.base10_digits();
            cx.error_spanned(
                &entry.value,
                format!("`{key}` takes a duration string with a unit: write `{key} = \"{n}ms\"` or `{key} = \"{n}s\"`"),
            );
            None
        }
        _ => {
            wrong_type(cx, entry, key, "a duration string (units ms, s, m, h)");
            None
        }
    }
}

/// A number, possibly negative (the rulebook says which are valid).
pub fn float(cx: &mut Ctxt, entry: &Entry, key: &str) -> Option<f64> {
    let (lit, negative) = match &entry.value {
        Value::Lit(l) => (l, false),
        Value::Neg(_, l) => (l, true),
        Value::Path(p)
            if p.segments.last().is_some_and(|s| s.ident.to_string().contains("INFINITY") || s.ident == "NAN") =>
        {
            cx.error_spanned(&entry.value, format!("`{key}` must be a finite number, like `{}`", keys::example(key)));
            return None;
        }
        _ => {
            wrong_type(cx, entry, key, "a number");
            return None;
        }
    };
    let parsed = match lit {
        Lit::Float(f) => f.base10_parse::<f64>().ok(),
        Lit::Int(i) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(x) => Some(if negative { -x } else { x }),
        None => {
            wrong_type(cx, entry, key, "a number");
            None
        }
    }
}

/// `true` or `false`.
pub fn boolean(cx: &mut Ctxt, entry: &Entry, key: &str) -> Option<bool> {
    match &entry.value {
        Value::Lit(Lit::Bool(b)) => Some(b.value()),
        Value::Lit(Lit::Str(s)) if matches!(s.value().as_str(), "true" | "false") => {
            cx.error_spanned(&entry.value, format!("write the boolean without quotes: `{key} = {}`", s.value()));
            None
        }
        _ => {
            wrong_type(cx, entry, key, "`true` or `false`");
            None
        }
    }
}

/// One of `valid`, as a string.
pub fn choice(cx: &mut Ctxt, entry: &Entry, key: &str, valid: &[&str]) -> Option<String> {
    let list = valid.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
    match &entry.value {
        Value::Lit(Lit::Str(s)) => {
            let v = s.value();
            if valid.contains(&v.as_str()) {
                Some(v)
            } else {
                let hint = suggest::closest(&v, valid.iter().copied())
                    .map_or_else(String::new, |c| format!("; did you mean \"{c}\"?"));
                cx.error_spanned(s, format!("unknown {key} \"{v}\"{hint}\nvalid: {list}"));
                None
            }
        }
        Value::Path(p) if p.get_ident().is_some() => {
            let v = p.get_ident().map(ToString::to_string).unwrap_or_default();
            let fix = suggest::closest(&v, valid.iter().copied()).unwrap_or(valid[0]);
            cx.error_spanned(&entry.value, format!("write the {key} as a string: `{key} = \"{fix}\"` (valid: {list})"));
            None
        }
        _ => {
            wrong_type(cx, entry, key, &format!("one of {list}"));
            None
        }
    }
}

/// A quoted string's content, when it is a path (so that suggesting it unquoted suggests
/// valid code).
fn unquoted_path(s: &syn::LitStr) -> Option<String> {
    let path = s.parse::<syn::Path>().ok()?;
    Some(quote::ToTokens::to_token_stream(&path).to_string().replace(' ', ""))
}

/// How to write a quoted path: unquoted, when it is a path (so the suggestion is valid code),
/// else like the key's example.
fn unquote(key: &str, s: &syn::LitStr) -> String {
    match unquoted_path(s) {
        Some(path) => format!("without quotes: `{key} = {path}`"),
        None => format!("like `{}`", keys::example(key)),
    }
}

/// The path of a function.
pub fn hook_path(cx: &mut Ctxt, entry: &Entry, key: &str) -> Option<syn::Path> {
    match &entry.value {
        Value::Path(p) => Some(p.clone()),
        Value::Lit(Lit::Str(s)) => {
            cx.error_spanned(&entry.value, format!("`{key}` takes the path of a function, {}", unquote(key, s)));
            None
        }
        _ => {
            wrong_type(cx, entry, key, "the path of a function");
            None
        }
    }
}

/// The path of a user's `static` (`what` names its type, for the messages).
pub fn static_path(cx: &mut Ctxt, entry: &Entry, key: &str, what: &str) -> Option<syn::Path> {
    match &entry.value {
        Value::Path(p) => Some(p.clone()),
        Value::Lit(Lit::Str(s)) => {
            cx.error_spanned(&entry.value, format!("`{key}` takes the path of a {what}, {}", unquote(key, s)));
            None
        }
        _ => {
            cx.error_spanned(
                &entry.value,
                format!(
                    "`{key}` takes the path of a {what} declared once and shared by every call to the endpoint, like `{}`",
                    keys::example(key)
                ),
            );
            None
        }
    }
}

/// `adaptive = true | false | PATH`.
pub fn adaptive(cx: &mut Ctxt, entry: &Entry) -> Option<Adaptive> {
    let key = keys::ADAPTIVE;
    match &entry.value {
        Value::Lit(Lit::Bool(b)) => Some(if b.value() { Adaptive::Own } else { Adaptive::Off }),
        Value::Path(p) => Some(Adaptive::Shared(p.clone())),
        Value::Lit(Lit::Str(s)) => {
            let fix = match (s.value().as_str(), unquoted_path(s)) {
                (v @ ("true" | "false"), _) => format!("write the boolean without quotes: `{key} = {v}`"),
                (_, Some(path)) => {
                    format!("`{key}` takes `true` or the path of a `static Adaptive`, without quotes: `{key} = {path}`")
                }
                (_, None) => {
                    format!("`{key}` takes `true` or the path of a `static Adaptive`, like `{key} = OPENAI_ERRORS`")
                }
            };
            cx.error_spanned(&entry.value, fix);
            None
        }
        _ => {
            cx.error_spanned(
                &entry.value,
                format!(
                    "`{key}` takes `true` (a window of this fn's own errors), `false`, or the path of a `static Adaptive` shared per endpoint, like `{key} = OPENAI_ERRORS`"
                ),
            );
            None
        }
    }
}

/// `name = "..."`: the stats key.
pub fn name(cx: &mut Ctxt, entry: &Entry) -> Option<syn::LitStr> {
    match &entry.value {
        Value::Lit(Lit::Str(s)) if s.value().trim().is_empty() => {
            cx.error_spanned(s, "`name` is the key of this call's stats and cannot be empty; remove it to use the module path and fn name");
            None
        }
        Value::Lit(Lit::Str(s)) => Some(s.clone()),
        _ => {
            wrong_type(cx, entry, keys::NAME, "a string");
            None
        }
    }
}

/// `crate = "path"` or `crate = path`.
pub fn crate_path(cx: &mut Ctxt, entry: &Entry) -> Option<syn::Path> {
    match &entry.value {
        Value::Path(p) => Some(p.clone()),
        Value::Lit(Lit::Str(s)) => match s.parse::<syn::Path>() {
            Ok(p) => Some(p),
            Err(_) => {
                cx.error_spanned(
                    s,
                    format!("\"{}\" is not a path; write `crate = \"my_crate::llm_retry\"`", s.value()),
                );
                None
            }
        },
        _ => {
            wrong_type(cx, entry, keys::CRATE, "the path of the `llm_retry` crate");
            None
        }
    }
}

/// `stream = "restart" | "continue" | "skip"`.
pub fn stream_mode(cx: &mut Ctxt, entry: &Entry) -> Option<syn::LitStr> {
    match &entry.value {
        // `stream = continue`: a keyword, already reported as not a value.
        Value::Invalid(_) => None,
        Value::Lit(Lit::Str(s)) if keys::STREAM_MODES.contains(&s.value().as_str()) => Some(s.clone()),
        Value::Lit(Lit::Str(s)) => {
            let hint = suggest::closest(&s.value(), keys::STREAM_MODES.iter().copied())
                .map_or_else(String::new, |c| format!("; did you mean \"{c}\"?"));
            cx.error_spanned(
                s,
                format!("unknown stream mode \"{}\"{hint}\nvalid: \"restart\" (reopen, and `Reset` the text), \"continue\" (the model continues the text so far), \"skip\" (replay, and drop what was delivered)", s.value()),
            );
            None
        }
        _ => {
            choice(cx, entry, keys::STREAM, keys::STREAM_MODES);
            None
        }
    }
}

/// `tokens = EXPR`: the call's cost in tokens. A literal is checked here (a positive whole
/// number); an expression's type (`u64`) is rustc's to check, at the expression.
pub fn tokens(cx: &mut Ctxt, entry: &Entry) -> Option<syn::Expr> {
    let example = keys::example(keys::TOKENS);
    match &entry.value {
        Value::Expr(e) => Some((**e).clone()),
        Value::Path(p) => Some(syn::Expr::Path(syn::ExprPath { attrs: Vec::new(), qself: None, path: p.clone() })),
        Value::Lit(Lit::Int(i)) => {
            match i.base10_parse::<u64>() {
                Ok(0) => {
                    cx.error_spanned(&entry.value, "a call costs at least one token; remove `tokens`, or count them, like `tokens = estimate(prompt)`");
                    None
                }
                Ok(_) => Some(syn::Expr::Lit(syn::ExprLit { attrs: Vec::new(), lit: Lit::Int(i.clone()) })),
                Err(_) => {
                    cx.error_spanned(
                        &entry.value,
                        format!("`tokens` is a whole number of tokens that fits a `u64`, like `{example}`"),
                    );
                    None
                }
            }
        }
        Value::Neg(..) => {
            cx.error_spanned(
                &entry.value,
                "a call cannot cost fewer than zero tokens; count them, like `tokens = estimate(prompt)`",
            );
            None
        }
        Value::Lit(Lit::Str(_)) => {
            cx.error_spanned(
                &entry.value,
                format!("`tokens` takes an expression that counts the call's tokens, without quotes, like `{example}`"),
            );
            None
        }
        _ => {
            cx.error_spanned(
                &entry.value,
                format!(
                    "`tokens` takes a whole number or an expression that counts the call's tokens, like `{example}`"
                ),
            );
            None
        }
    }
}
