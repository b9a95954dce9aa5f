//! Phase 1: the attribute's tokens as a raw, span-carrying list of entries.
//!
//! ```text
//! args  := entry (',' entry)* ','?
//! entry := key '=' value | key '(' args ')' | value
//! value := literal | '-' literal | path | '[' (value (',' value)* ','?)? ']'
//! ```
//!
//! Entries are split at top-level commas first, so a malformed entry is reported and the
//! others are still checked.

use crate::ctxt::Ctxt;
use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;

/// One `key = value`, `key(...)` or bare value.
pub struct Entry {
    /// The key, or `None` for a bare value.
    pub key: Option<Ident>,
    /// The value.
    pub value: Value,
    /// The entry's tokens, for errors about the whole entry.
    pub tokens: TokenStream,
}

impl Entry {
    /// The key without `r#`, or "" for a bare value.
    pub fn key_name(&self) -> String {
        self.key.as_ref().map_or_else(String::new, |k| k.unraw().to_string())
    }

    /// The key's span, or the value's for a bare value.
    pub fn key_span(&self) -> Span {
        self.key.as_ref().map_or_else(|| self.value.span(), Ident::span)
    }
}

/// A value as written.
pub enum Value {
    /// A literal: `3`, `"500ms"`, `2.0`, `true`.
    Lit(syn::Lit),
    /// A negated literal: `-1.0`.
    Neg(TokenStream, syn::Lit),
    /// A path: `RateLimited`, `my::validator`.
    Path(syn::Path),
    /// `[a, b, c]`.
    List(Group, Vec<Value>),
    /// `key(...)`: nested entries.
    Call(Group, Vec<Entry>),
    /// An expression, for the keys that take one (`tokens = estimate(prompt)`).
    Expr(Box<syn::Expr>),
    /// Anything else, already reported.
    Invalid(TokenStream),
}

impl Value {
    /// The span of the whole value.
    pub fn span(&self) -> Span {
        match self {
            Value::Lit(l) => l.span(),
            Value::Neg(t, _) | Value::Invalid(t) => {
                t.clone().into_iter().next().map_or_else(Span::call_site, |t| t.span())
            }
            Value::Path(p) => p.segments.last().map_or_else(Span::call_site, |s| s.ident.span()),
            Value::List(g, _) | Value::Call(g, _) => g.span(),
            Value::Expr(e) => syn::spanned::Spanned::span(e),
        }
    }
}

impl ToTokens for Value {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Value::Lit(l) => l.to_tokens(tokens),
            Value::Neg(t, _) | Value::Invalid(t) => t.to_tokens(tokens),
            Value::Path(p) => p.to_tokens(tokens),
            Value::List(g, _) | Value::Call(g, _) => g.to_tokens(tokens),
            Value::Expr(e) => e.to_tokens(tokens),
        }
    }
}

/// Parses `args := entry (',' entry)* ','?`, reporting malformed entries and dropping them.
pub fn parse(cx: &mut Ctxt, tokens: TokenStream) -> Vec<Entry> {
    split_commas(cx, tokens).into_iter().filter_map(|segment| entry(cx, segment)).collect()
}

/// Splits at top-level commas. An empty segment (`a, , b`) is an error; a trailing comma is not.
fn split_commas(cx: &mut Ctxt, tokens: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for tt in tokens {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => {
                if current.is_empty() {
                    cx.error_at(p.span(), "unexpected `,`: remove the extra comma");
                } else {
                    out.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(tt),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn entry(cx: &mut Ctxt, segment: Vec<TokenTree>) -> Option<Entry> {
    let tokens: TokenStream = segment.iter().cloned().collect();
    match segment.as_slice() {
        [TokenTree::Ident(key), TokenTree::Punct(eq), rest @ ..] if eq.as_char() == '=' => {
            if rest.is_empty() {
                cx.error_spanned(&tokens, format!("`{}` needs a value after `=`", key.unraw()));
                return None;
            }
            let value =
                if key.unraw() == llm_retry_rules::keys::TOKENS { expression(cx, rest) } else { value(cx, rest) };
            Some(Entry { key: Some(key.clone()), value, tokens })
        }
        [TokenTree::Ident(key), TokenTree::Group(g)] if g.delimiter() == Delimiter::Parenthesis => {
            let inner = parse(cx, g.stream());
            Some(Entry { key: Some(key.clone()), value: Value::Call(g.clone(), inner), tokens })
        }
        _ => {
            let value = value(cx, &segment);
            Some(Entry { key: None, value, tokens })
        }
    }
}

/// The value of a key that takes an expression: a literal stays a literal (so that it can be
/// checked), anything else is parsed as an expression.
fn expression(cx: &mut Ctxt, tokens: &[TokenTree]) -> Value {
    if let [TokenTree::Literal(_)] | [TokenTree::Punct(_), TokenTree::Literal(_)] = tokens {
        return value(cx, tokens);
    }
    let stream: TokenStream = tokens.iter().cloned().collect();
    match syn::parse2::<syn::Expr>(stream.clone()) {
        Ok(e) => Value::Expr(Box::new(e)),
        Err(e) => {
            cx.error_spanned(&stream, format!("expected an expression, like `estimate(prompt)`: {e}"));
            Value::Invalid(stream)
        }
    }
}

fn value(cx: &mut Ctxt, tokens: &[TokenTree]) -> Value {
    let stream: TokenStream = tokens.iter().cloned().collect();
    match tokens {
        [TokenTree::Literal(l)] => Value::Lit(syn::Lit::new(l.clone())),
        [TokenTree::Punct(minus), TokenTree::Literal(l)] if minus.as_char() == '-' => {
            Value::Neg(stream, syn::Lit::new(l.clone()))
        }
        [TokenTree::Ident(i)] if i == "true" || i == "false" => {
            Value::Lit(syn::Lit::Bool(syn::LitBool::new(i == "true", i.span())))
        }
        [TokenTree::Group(g)] if g.delimiter() == Delimiter::Bracket => {
            let items = split_commas(cx, g.stream()).into_iter().map(|item| value(cx, &item)).collect();
            Value::List(g.clone(), items)
        }
        [TokenTree::Group(g)] if g.delimiter() == Delimiter::None => {
            // A value passed through a `macro_rules!` fragment arrives wrapped in an invisible group.
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            value(cx, &inner)
        }
        _ => match syn::parse2::<syn::Path>(stream.clone()) {
            Ok(path) => Value::Path(path),
            Err(_) => {
                cx.error_spanned(
                    &stream,
                    "expected a value: a number (`3`), a string (`\"500ms\"`), `true`/`false`, a path (`my::hook`) or a list (`[RateLimited, 503]`)",
                );
                Value::Invalid(stream)
            }
        },
    }
}
