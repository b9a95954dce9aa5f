//! The annotated item, checked: an `async fn` (or `#[async_trait]`'s rewrite of one) whose
//! return type can carry an error, and the [`Shape`] in which it carries its body. Anything
//! else is an error at its token that says what `#[llm_retry]` goes on.

use super::async_trait::{async_trait_output, async_trait_prelude};
use crate::ctxt::Ctxt;
use proc_macro2::{Ident, Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{ItemFn, ReturnType, Type};

/// How the fn carries its body.
pub(crate) enum Shape {
    /// `async fn f(..) -> R { body }`.
    AsyncFn { output: Type },
    /// A fn that returns its future boxed: `fn f(..) -> Pin<Box<dyn Future<Output = R> + ..>> {
    /// Box::pin(async move { body }) }`, as `#[async_trait]` rewrites an `async fn`; the loop
    /// goes inside the async block. `prelude` counts the block's leading statements that are
    /// async-trait's own set-up, run once before the loop (zero unless the block is laid out
    /// exactly as async-trait lays it out; see [`async_trait_prelude`]).
    AsyncTrait { output: Type, prelude: usize },
}

pub(crate) fn check_item(cx: &mut Ctxt, item: TokenStream) -> Option<(ItemFn, Shape)> {
    let func = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(func)) => func,
        // A fn whose signature is whole but whose body does not parse: only the signature is
        // ours to check, and the body's syntax error is rustc's to report, at the user's
        // token. The item goes out unchanged, with no error of ours beside rustc's.
        Err(_) if is_fn_with_unparsed_body(item.clone()) => return None,
        Ok(syn::Item::Verbatim(_)) | Err(_) => {
            let message = if item.to_string().trim_end().ends_with(';') {
                "`#[llm_retry]` needs the fn's body; put it on the fn in the `impl`, not on the trait's declaration"
            } else {
                "`#[llm_retry]` goes on an `async fn` that returns a `Result`"
            };
            cx.error_at(Span::call_site(), message);
            return None;
        }
        Ok(other) => {
            let what = item_kind(&other);
            cx.error_spanned(
                first_tokens(&other),
                format!("`#[llm_retry]` goes on an `async fn` that returns a `Result`, not on {what}"),
            );
            return None;
        }
    };
    let sig = &func.sig;
    let shape = if sig.asyncness.is_some() {
        let output = check_output(cx, &sig.output, &sig.ident)?;
        Shape::AsyncFn { output }
    } else if let Some((output, inner)) = async_trait_output(&func) {
        let prelude = async_trait_prelude(sig, &inner.stmts);
        Shape::AsyncTrait { output, prelude }
    } else {
        let name = sig.ident.unraw();
        let at = sig.constness.as_ref().map_or_else(|| sig.fn_token.span, |c| c.span);
        cx.error_at(
            at,
            format!("`#[llm_retry]` retries an `async fn`; make it `async fn {name}(...)` (a blocking fn cannot be retried without blocking the runtime)"),
        );
        return None;
    };
    if let Some(c) = &sig.constness {
        cx.error_at(c.span, "an `async fn` with `#[llm_retry]` cannot be `const`; remove `const`");
        return None;
    }
    Some((func, shape))
}

fn item_kind(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Const(_) => "a const",
        syn::Item::Static(_) => "a static",
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Union(_) => "a union",
        syn::Item::Impl(_) => "an impl block; put it on each `async fn` inside",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Mod(_) => "a module",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Use(_) => "a `use`",
        _ => "this item",
    }
}

/// The item's keyword and name, where the error should point.
fn first_tokens(item: &syn::Item) -> TokenStream {
    let tokens = item.to_token_stream();
    let mut out = TokenStream::new();
    let mut idents = 0;
    for tt in tokens {
        let is_ident = matches!(tt, proc_macro2::TokenTree::Ident(_));
        if matches!(tt, proc_macro2::TokenTree::Punct(ref p) if p.as_char() == '#') {
            continue;
        }
        if matches!(tt, proc_macro2::TokenTree::Group(_)) && out.is_empty() {
            continue;
        }
        out.extend([tt]);
        if is_ident {
            idents += 1;
            if idents == 2 || (idents == 1 && out.to_string() == "impl") {
                break;
            }
        } else {
            break;
        }
    }
    out
}

/// The fn's return type, if it can carry an error.
fn check_output(cx: &mut Ctxt, output: &ReturnType, name: &Ident) -> Option<Type> {
    let ty = match output {
        ReturnType::Default => {
            cx.error_spanned(
                name,
                format!("`{}` returns nothing, so a failure cannot be seen; return `Result<T, E>` where `E: llm_retry::Classify`", name.unraw()),
            );
            return None;
        }
        ReturnType::Type(_, ty) => ty,
    };
    if let Some(what) = cannot_carry_error(ty) {
        cx.error_spanned(
            ty,
            format!("`{}` cannot carry an error ({what}), so there is nothing to retry on; return `Result<T, E>` where `E: llm_retry::Classify`", ty.to_token_stream().to_string().replace(" < ", "<").replace(" >", ">").replace("& ", "&")),
        );
        return None;
    }
    Some((**ty).clone())
}

/// Why a return type obviously cannot carry an error, or `None` when it may (`Result`, an
/// alias such as `io::Result<T>` or `anyhow::Result<T>`); the type checker judges the rest.
fn cannot_carry_error(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Paren(p) => cannot_carry_error(&p.elem),
        Type::Group(g) => cannot_carry_error(&g.elem),
        Type::Tuple(t) if t.elems.is_empty() => Some("it is the unit type"),
        Type::Tuple(_) => Some("it is a tuple"),
        Type::Reference(_) => Some("it is a reference"),
        Type::Array(_) | Type::Slice(_) => Some("it is an array"),
        Type::Ptr(_) => Some("it is a pointer"),
        Type::FnPtr(_) => Some("it is a fn pointer"),
        Type::Never(_) => Some("it never returns"),
        Type::ImplTrait(_) | Type::TraitObject(_) => Some("it is opaque"),
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?.ident.to_string();
            match last.as_str() {
                "bool" => Some("it is a `bool`"),
                "char" | "str" | "String" | "Cow" => Some("it is text"),
                "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128" | "isize"
                | "f32" | "f64" => Some("it is a number"),
                "Option" => Some("`None` says nothing about what failed"),
                "Vec" | "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet" | "VecDeque" => Some("it is a collection"),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether `item` is attributes, a visibility and a fn signature followed by a braced body,
/// whatever the body holds.
fn is_fn_with_unparsed_body(item: TokenStream) -> bool {
    let signature_then_braces = |input: syn::parse::ParseStream<'_>| -> syn::Result<()> {
        input.call(syn::Attribute::parse_outer)?;
        input.parse::<syn::Visibility>()?;
        input.parse::<syn::Signature>()?;
        match input.parse::<proc_macro2::TokenTree>()? {
            proc_macro2::TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace && input.is_empty() => {
                Ok(())
            }
            other => Err(syn::Error::new(other.span(), "not a fn body")),
        }
    };
    syn::parse::Parser::parse2(signature_then_braces, item).is_ok()
}
