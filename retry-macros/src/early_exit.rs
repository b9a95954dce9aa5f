//! Whether a fn body can leave before its end: a `return`, `?`, `break` or `continue` of its
//! own, or a macro that may hide one. A body that cannot runs as a plain block in the retry
//! loop. A body that can runs as an async block of its own, so that its early exit ends the
//! attempt (and is retried) rather than the fn.
//!
//! The scan reads tokens, not syntax, and errs towards "may exit": an exit inside a nested
//! closure, async block or item, a `?Sized` bound, or any macro not listed below keeps the
//! async block, which is always correct.

use proc_macro2::{Spacing, TokenStream, TokenTree};

/// Keywords that leave the enclosing fn, block or loop (`yield` and `become` are reserved for
/// that too).
const EXITS: &[&str] = &["return", "break", "continue", "yield", "become"];

/// Macros of the standard library whose expansion adds no exit of its own; their arguments
/// are scanned like the rest of the body. Matched by bare name only: a path such as
/// `anyhow::bail!` or `std::format!` counts as a macro that may exit.
const EXIT_FREE_MACROS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "cfg",
    "column",
    "concat",
    "dbg",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "env",
    "eprint",
    "eprintln",
    "file",
    "format",
    "format_args",
    "include_bytes",
    "include_str",
    "line",
    "matches",
    "module_path",
    "option_env",
    "panic",
    "pin",
    "print",
    "println",
    "stringify",
    "todo",
    "unimplemented",
    "unreachable",
    "vec",
    "write",
    "writeln",
];

/// Whether `body` may leave before its end (see the module docs).
pub(crate) fn may_exit_early(body: TokenStream) -> bool {
    let tokens: Vec<TokenTree> = body.into_iter().collect();
    tokens.iter().enumerate().any(|(i, token)| match token {
        TokenTree::Group(group) => may_exit_early(group.stream()),
        TokenTree::Ident(ident) => EXITS.contains(&ident.to_string().as_str()),
        TokenTree::Punct(p) if p.as_char() == '?' => true,
        // `name!(..)`, `name![..]`, `name! {..}`, or `macro_rules! name`; `!=` is joint.
        TokenTree::Punct(p) if p.as_char() == '!' && p.spacing() == Spacing::Alone => {
            let before = |back: usize| i.checked_sub(back).map(|j| &tokens[j]);
            match (before(1), tokens.get(i + 1)) {
                (Some(TokenTree::Ident(name)), Some(TokenTree::Group(_) | TokenTree::Ident(_))) => {
                    let in_path = matches!(before(2), Some(TokenTree::Punct(c)) if c.as_char() == ':');
                    in_path || !EXIT_FREE_MACROS.contains(&name.to_string().as_str())
                }
                _ => false,
            }
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::may_exit_early;
    use quote::quote;

    #[test]
    fn bodies_that_run_to_their_end() {
        let bodies = [
            quote!(self.client.send(prompt).await),
            quote!(Ok(format!("echo: {prompt}"))),
            quote!(let n = v.len(); if n != 0 { Ok(vec![n]) } else { Err(ApiError::from_status(503)) }),
            quote!(println!("{}", x); assert_ne!(a, b); Ok(matches!(k, Kind::A))),
            quote!(match r {
                Ok(v) => Ok(v),
                Err(e) => Err(e.into()),
            }),
            quote!(for x in xs { total += x; } Ok(total)),
            quote!(while let Some(c) = s.next().await { out.push(c); } Ok(out)),
            quote!(let f = pin!(fut); f.await),
            quote!(if a != b { todo!() } else { Ok(r#return) }),
        ];
        for body in bodies {
            assert!(!may_exit_early(body.clone()), "{body}");
        }
    }

    #[test]
    fn bodies_that_may_leave_early() {
        let bodies = [
            quote!(let v = fetch().await?; Ok(v)),
            quote!(if bad { return Err(e); } Ok(1)),
            quote!(let Some(x) = y else { return Err(e) }; Ok(x)),
            quote!(for x in xs { if x { break; } } Ok(())),
            quote!(loop {
                continue;
            }),
            quote!(anyhow::bail!("no")),
            quote!(bail!("no")),
            quote!(std::format!("x"); Ok(())),
            quote!(Ok(format!("{}", parse(s)?))),
            quote!(let f = || { return 1; }; Ok(f())),
            quote!(
                macro_rules! m {
                    () => {};
                },
                Ok(())
            ),
            quote!(tokio::select! { a = x => Ok(a), b = y => Ok(b) }),
        ];
        for body in bodies {
            assert!(may_exit_early(body.clone()), "{body}");
        }
    }
}
