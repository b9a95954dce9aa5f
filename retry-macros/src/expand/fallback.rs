//! `fallback = [...]`: the fn's target parameter, which the expansion supplies and callers do
//! not pass, and the loop that moves along the chain (`Call::next_target`, then
//! `Call::attempt_target`).

use super::Shape;
use crate::config::RetryConfig;
use crate::ctxt::Ctxt;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, Type};

/// The parameter the body names the attempt's target by: its pattern and type (`&Target`).
pub(crate) struct TargetParam {
    pub pat: Pat,
    pub ty: Type,
}

/// What a fn with `fallback` and no target parameter is told.
pub(crate) const MISSING_TARGET: &str = "a fn with `fallback` learns each attempt's target from a parameter that callers do not pass: add `target: &Target` (from `llm_retry::failover`), and call the model it names, `target.name()`";

/// Whether `ty` is `&Target` (any path that ends in `Target`, behind a shared reference).
pub(crate) fn is_target_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_none() && is_target(&r.elem))
}

/// Whether `ty` names the failover `Target` (any path that ends in `Target`).
fn is_target(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Target"),
        Type::Group(g) => is_target(&g.elem),
        Type::Paren(p) => is_target(&p.elem),
        _ => false,
    }
}

/// Takes the target parameter out of `func`'s signature, or reports why there is none.
pub(crate) fn take_target(cx: &mut Ctxt, func: &mut ItemFn, shape: &Shape) -> Option<TargetParam> {
    if let Shape::AsyncTrait { .. } = shape {
        cx.error_at(
            func.sig.ident.span(),
            "`fallback` takes a parameter out of the fn's signature, which a trait method cannot lose; call a fn with `fallback` from the method instead",
        );
        return None;
    }
    let mut found: Option<(usize, TargetParam)> = None;
    let mut ok = true;
    for (i, input) in func.sig.inputs.iter().enumerate() {
        let FnArg::Typed(t) = input else { continue };
        let by_ref = is_target_ref(&t.ty);
        let named_target = matches!(&*t.pat, Pat::Ident(p) if p.ident == "target");
        if by_ref {
            if found.is_some() {
                cx.error_spanned(
                    input,
                    "a second target parameter: the attempt's target is given once; remove this one",
                );
                ok = false;
            } else {
                found = Some((i, TargetParam { pat: (*t.pat).clone(), ty: (*t.ty).clone() }));
            }
        } else if is_target(&t.ty) {
            cx.error_spanned(&t.ty, "take the target by reference, as `&Target`: every attempt's target is a `static`");
            ok = false;
        } else if named_target {
            cx.error_spanned(
                &t.ty,
                "with `fallback`, `target` is the attempt's target and must be `&Target` (from `llm_retry::failover`); rename this parameter if it is something else",
            );
            ok = false;
        }
    }
    match found {
        Some((i, param)) if ok => {
            func.sig.inputs =
                func.sig.inputs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| a.clone()).collect();
            Some(param)
        }
        Some(_) => None,
        None => {
            if ok {
                cx.error_at(func.sig.ident.span(), MISSING_TARGET);
            }
            None
        }
    }
}

/// `static __LLM_RETRY_CHAIN: Fallback<'static> = ...;` for the chain `config` describes.
pub(crate) fn chain_static(p: &TokenStream, config: &RetryConfig, chain: &Ident) -> TokenStream {
    let Some(fallback) = &config.fallback else { return TokenStream::new() };
    // Each target as `&PATH`, spanned at the path: a path to anything but a `static Target` is
    // a type error there.
    let targets = fallback.targets.iter().map(|path| quote_spanned!(path.span()=> &#path));
    let move_on = fallback.move_on.iter().map(|k| {
        let k = Ident::new(k.name(), Span::call_site());
        quote!(.move_on(#p::ErrorKind::#k))
    });
    quote! {
        static #chain: #p::Fallback<'static> = match #p::Fallback::new(&[#(#targets),*]) {
            ::core::result::Result::Ok(chain) => chain #(#move_on)*,
            ::core::result::Result::Err(e) => ::core::panic!("{}", e.message()),
        };
    }
}

/// One turn of the loop: the next target, bound to the fn's parameter, then the attempt on it.
pub(crate) fn each_attempt(
    call: &Ident,
    route: &Ident,
    param: &TargetParam,
    attempt_body: &TokenStream,
    result: &Ident,
    span: Span,
) -> TokenStream {
    let (pat, ty) = (&param.pat, &param.ty);
    let bind = quote_spanned!(ty.span()=> let #pat: #ty = );
    let [target, error, pause] =
        ["__llm_retry_target", "__llm_retry_error", "__llm_retry_pause"].map(|n| Ident::new(n, Span::mixed_site()));
    quote_spanned! {span=>
        #bind match #call.next_target(&mut #route) {
            ::core::result::Result::Ok(#target) => #target,
            ::core::result::Result::Err(#error) => return ::core::result::Result::Err(#error),
        };
        match #call.attempt_target(&mut #route, #attempt_body).await {
            ::core::ops::ControlFlow::Break(#result) => return #result,
            ::core::ops::ControlFlow::Continue(#pause) => #pause.await,
        }
    }
}
