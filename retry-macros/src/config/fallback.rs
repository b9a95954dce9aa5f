//! `fallback = [A, B]` and `move_on = [Kind, ...]`: the chain of targets a call moves along,
//! and the kinds that move on at once. Each target is the path of the user's `static Target`
//! (a path to anything else is a type error at the path); the kinds are the rulebook's.

use super::{RetryConfig, Target};
use crate::args::{Entry, Value};
use crate::ctxt::Ctxt;
use llm_retry_rules::{ErrorKind, Policy, keys, suggest};
use quote::ToTokens;

/// A validated chain.
pub struct FallbackConfig {
    /// The targets' paths, in order; at least one, none twice.
    pub targets: Vec<syn::Path>,
    /// The kinds listed in `move_on`.
    pub move_on: Vec<ErrorKind>,
}

/// The kinds that move on at once whatever `move_on` says.
const ALWAYS_MOVE_ON: [ErrorKind; 2] = [ErrorKind::ContextLengthExceeded, ErrorKind::QuotaExhausted];

fn written(path: &syn::Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// `fallback = [A, B]`.
pub fn targets(cx: &mut Ctxt, entry: &Entry) -> Option<Vec<syn::Path>> {
    let Value::List(group, items) = &entry.value else {
        let fix = match &entry.value {
            Value::Path(p) => format!("write a list, even of one target: `fallback = [{}]`", written(p)),
            _ => format!("`fallback` takes a list of `static Target`s, like `{}`", keys::example(keys::FALLBACK)),
        };
        cx.error_spanned(&entry.value, fix);
        return None;
    };
    if items.is_empty() {
        cx.error_spanned(
            group,
            "`fallback = []` has no target to call; list the targets in order, like `fallback = [GPT4O, CLAUDE]`, or remove `fallback`",
        );
        return None;
    }
    let mut out: Vec<syn::Path> = Vec::new();
    let mut valid = true;
    for item in items {
        match item {
            Value::Path(p) => {
                if out.iter().any(|q| written(q) == written(p)) {
                    cx.error_spanned(
                        item,
                        format!(
                            "`{}` is listed twice in `fallback`; a call tries each target once in order, so remove one",
                            written(p)
                        ),
                    );
                    valid = false;
                } else {
                    out.push(p.clone());
                }
            }
            Value::Lit(syn::Lit::Str(s)) => {
                let fix = match syn::parse_str::<syn::Path>(&s.value()) {
                    Ok(p) => format!("write the path of the `static Target` without quotes: `{}`", written(&p)),
                    Err(_) => "each target is the path of a `static Target`, like `GPT4O`".to_owned(),
                };
                cx.error_spanned(item, fix);
                valid = false;
            }
            _ => {
                cx.error_spanned(item, "each target is the path of a `static Target`, like `GPT4O`");
                valid = false;
            }
        }
    }
    valid.then_some(out)
}

/// `move_on = [Auth, BadRequest]`.
pub fn move_on(cx: &mut Ctxt, entry: &Entry) -> Option<Vec<ErrorKind>> {
    let Value::List(_, items) = &entry.value else {
        cx.error_spanned(
            &entry.value,
            format!("`move_on` takes a list of kinds, like `{}`", keys::example(keys::MOVE_ON)),
        );
        return None;
    };
    let mut out = Vec::new();
    for item in items {
        let name = match item {
            Value::Path(p) if p.get_ident().is_some() => p.to_token_stream().to_string(),
            Value::Lit(syn::Lit::Int(_)) => {
                cx.error_spanned(
                    item,
                    "`move_on` takes error kinds, not statuses: a status's kind moves on, like `Auth` for 401",
                );
                continue;
            }
            _ => {
                cx.error_spanned(item, "write a kind's bare name in `move_on`, like `Auth`");
                continue;
            }
        };
        let Some(kind) = ErrorKind::from_name(&name) else {
            let names = || ErrorKind::ALL.iter().map(|k| k.name());
            let hint = suggest::did_you_mean(&name, names());
            let list = names().collect::<Vec<_>>().join(", ");
            cx.error_spanned(item, format!("unknown error kind `{name}`{hint}\nkinds: {list}"));
            continue;
        };
        if out.contains(&kind) {
            cx.error_spanned(item, format!("`{name}` is listed twice in `move_on`; remove one"));
        } else {
            out.push(kind);
        }
    }
    Some(out)
}

/// Relations: `move_on` needs `fallback`; a kind that always moves on, or that the policy
/// retries, does not belong in `move_on`.
pub fn checks(cx: &mut Ctxt, config: &mut RetryConfig, move_on: Option<(&Entry, Vec<ErrorKind>)>) {
    let Some(chain) = config.fallback.as_mut() else {
        if let Some((entry, _)) = move_on {
            cx.error_at(
                entry.key_span(),
                "`move_on` says when to move to the next target of a `fallback` chain, and there is none; add `fallback = [PRIMARY, SECONDARY]` or remove `move_on`",
            );
        }
        return;
    };
    let Some((entry, kinds)) = move_on else { return };
    let retried = |k: ErrorKind| match &config.policy.on {
        Some(on) => on.contains(&Target::Kind(k)),
        None => config.loaded.is_none() && Policy::DEFAULT.retry_on().matches(k, None),
    };
    let Value::List(_, items) = &entry.value else { return };
    for kind in kinds {
        let at = items.iter().find(|v| v.to_token_stream().to_string() == kind.name());
        let at = at.map_or_else(|| entry.value.to_token_stream(), ToTokens::to_token_stream);
        if ALWAYS_MOVE_ON.contains(&kind) {
            cx.error_spanned(
                at,
                format!("`{kind}` always moves on to the next target at once; remove it from `move_on`"),
            );
        } else if retried(kind) {
            let by = if config.policy.on.is_some() { "`on` retries it" } else { "the default policy retries it" };
            cx.error_spanned(
                at,
                format!(
                    "`{kind}` cannot both be retried and move on at once: {by} on each target, then moves on once the retries are spent; remove it from `move_on`, or from what is retried"
                ),
            );
        } else {
            chain.move_on.push(kind);
        }
    }
}
