//! The retry loop, generated from the config alone: the site's `static`, the `Call` with its
//! options, and each attempt, settled by `Call::settle_at` when nothing has to wrap the body
//! or run through `Call::attempt` otherwise. The stream form reuses the shared pieces (the
//! call's options, the site's name, the fake return edge).

use super::Shape;
use super::async_trait::boxed_async_block;
use super::fallback::{self, TargetParam};
use crate::config::{self, RetryConfig};
use crate::early_exit;
use crate::policy::{duration_tokens, policy};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Block, Expr, GenericArgument, ItemFn, PathArguments, Stmt, Type};

/// The declared type with every `impl Trait` replaced by `_`, so it can annotate a `let`.
pub(crate) fn inferable(ty: &Type) -> Type {
    let mut ty = ty.clone();
    replace_impl_trait(&mut ty);
    ty
}

fn replace_impl_trait(ty: &mut Type) {
    match ty {
        Type::ImplTrait(i) => {
            *ty = Type::Infer(syn::TypeInfer { attrs: Vec::new(), underscore_token: syn::Token![_](i.span()) })
        }
        Type::Path(p) => {
            for seg in &mut p.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut seg.arguments {
                    for arg in &mut args.args {
                        if let GenericArgument::Type(t) = arg {
                            replace_impl_trait(t);
                        }
                    }
                }
            }
        }
        Type::Reference(r) => replace_impl_trait(&mut r.elem),
        Type::Tuple(t) => t.elems.iter_mut().for_each(replace_impl_trait),
        Type::Paren(p) => replace_impl_trait(&mut p.elem),
        Type::Group(g) => replace_impl_trait(&mut g.elem),
        Type::Array(a) => replace_impl_trait(&mut a.elem),
        Type::Slice(s) => replace_impl_trait(&mut s.elem),
        _ => {}
    }
}

pub(super) fn generate(
    config: &RetryConfig,
    mut func: ItemFn,
    shape: Shape,
    target: Option<&TargetParam>,
) -> TokenStream {
    let krate = config.krate.as_ref().map_or_else(|| quote!(::llm_retry), ToTokens::to_token_stream);
    let p = quote!(#krate::__private);
    let site = Ident::new("__LLM_RETRY_SITE", Span::mixed_site());
    let call = Ident::new("__llm_retry", Span::mixed_site());
    let result = Ident::new("__llm_retry_result", Span::mixed_site());
    let fake = Ident::new("__llm_retry_fake_return", Span::mixed_site());

    let name = site_name(config, &func);
    let policy = policy(&p, config);
    let options = call_options(&p, config);
    let start = call_start(&p, &site, config);
    let own_adaptive = own_adaptive(&p, config);

    // A plain `async fn`'s body runs whole on every attempt: a `let mut x = x;` at its top binds
    // afresh each time, so a retry starts from the arguments as the caller passed them.
    // `#[async_trait]`'s own prelude (its type anchor, and its rebinding of the arguments into
    // the boxed future: `let x = x;` moves) runs once, before the loop.
    let (output, body, prelude): (Type, &mut Block, usize) = match shape {
        Shape::AsyncFn { output } => (output, &mut func.block, 0),
        Shape::AsyncTrait { output, prelude } => match boxed_async_block(&mut func.block) {
            Some(inner) => (output, inner, prelude),
            // `check_item` found this block, so it is still there; were it not, say so rather
            // than emit a fn that does not retry.
            None => {
                let message = "`#[llm_retry]` lost track of the boxed future it recognised; please report this";
                return quote!(::core::compile_error!(#message); #func);
            }
        },
    };
    let span = output.span();
    let fake_ty = inferable(&output);
    let prelude: Vec<Stmt> = body.stmts.drain(..prelude.min(body.stmts.len())).collect();
    let stmts = &body.stmts;
    // The runtime call is located at the return type, so type errors (an `E` that is not
    // `Classify`, an output that is not a `Result`) point there rather than at the attribute.
    let call_at = Ident::new("__llm_retry", Span::mixed_site().located_at(span));
    let return_edge = fake_return_edge(&fake, &fake_ty);
    let attempt_body = quote_spanned! {span=>
        async {
            #return_edge
            #(#stmts)*
        }
    };
    let chain = Ident::new("__LLM_RETRY_CHAIN", Span::mixed_site());
    let route = Ident::new("__llm_retry_route", Span::mixed_site());
    let (chain_static, route_start) = match target {
        Some(_) => (fallback::chain_static(&p, config, &chain), quote!(let mut #route = #p::Route::new(#chain);)),
        None => (TokenStream::new(), TokenStream::new()),
    };
    let each_attempt = if let Some(param) = target {
        fallback::each_attempt(&call_at, &route, param, &attempt_body, &result, span)
    } else if runs_body_directly(config) {
        // Nothing wraps the body (no timer around it, no queue before it, no clock for the
        // notify hook): the fn's own future runs it, and the runtime only settles the result.
        // A body with no early exit needs no async block of its own to keep one inside the
        // attempt: it runs as it is, in a plain block (or bare, if it is one expression).
        let run = if early_exit::may_exit_early(quote!(#(#stmts)*)) || ends_in_a_panic(stmts) {
            quote_spanned! {span=> #attempt_body.await }
        } else if let [Stmt::Expr(tail, None)] = stmts.as_slice() {
            tail.to_token_stream()
        } else {
            quote!({ #(#stmts)* })
        };
        let pause = Ident::new("__llm_retry_pause", Span::mixed_site());
        // The pause is bound first and awaited after the `match`: awaited inside an arm, the
        // whole `ControlFlow` would stay alive across that await, so the fn's future would
        // keep a slot for it and every success would store its result there.
        // A body that ends in a panic runs in its async block (above), so that no lint about
        // a diverging `let` reaches the user's code; the loop's glue after it is then
        // unreachable, which is allowed on the glue alone.
        quote_spanned! {span=>
            let #result: #fake_ty = #run;
            #[allow(unreachable_code)]
            let #pause = match #call_at.settle_at(&#site, #result) {
                ::core::ops::ControlFlow::Break(#result) => return #result,
                ::core::ops::ControlFlow::Continue(#pause) => #pause,
            };
            #pause.await;
        }
    } else {
        quote_spanned! {span=>
            if let ::core::ops::ControlFlow::Break(#result) = #call_at.attempt(#attempt_body).await {
                return #result;
            }
        }
    };
    let new_body = quote! {
        {
            static #site: #p::Site = #p::Site::new(#name, #p::policy(#policy));
            #chain_static
            #own_adaptive
            #(#prelude)*
            let mut #call = #start #options;
            #route_start
            loop {
                #each_attempt
            }
        }
    };
    let mut new_body: Block = syn::parse2(new_body).expect("the generated body parses as a block");
    // The user's braces keep the fn's spans the user's, so lints such as `dead_code` still fire.
    new_body.brace_token = body.brace_token;
    *body = new_body;
    func.into_token_stream()
}

/// Whether the body can run in the fn's own future, settled by `Call::settle_at`: nothing has
/// to wrap it. A deadline or attempt timeout puts a timer around it, a limiter may queue it,
/// and a notify hook needs the clock read when the first attempt starts; those go through
/// `Call::attempt`.
fn runs_body_directly(config: &RetryConfig) -> bool {
    config.deadline.is_none() && config.attempt_timeout.is_none() && config.limiter.is_none() && config.notify.is_none()
}

/// `.deadline(..).attempt_timeout(..).notify(..).validate(..).when(..)`, only those given.
pub(crate) fn call_options(p: &TokenStream, config: &RetryConfig) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(d) = config.deadline {
        let d = duration_tokens(p, d);
        out.extend(quote!(.deadline(#d)));
    }
    if let Some(d) = config.attempt_timeout {
        let d = duration_tokens(p, d);
        out.extend(quote!(.attempt_timeout(#d)));
    }
    for (method, path) in [("notify", &config.notify), ("validate", &config.validate), ("when", &config.when)] {
        if let Some(path) = path {
            let method = Ident::new(method, path.span());
            out.extend(quote!(.#method(#path)));
        }
    }
    // The shared controls are the user's `static`s, borrowed for `'static`: a path to anything
    // else (a `const`, a `Budget` given as the limiter) is a type error at the path.
    let adaptive = match &config.adaptive {
        Some(config::Adaptive::Shared(path)) => Some(path.clone()),
        Some(config::Adaptive::Own) => Some(syn::Path::from(adaptive_static())),
        Some(config::Adaptive::Off) | None => None,
    };
    for (method, path) in [("limiter", &config.limiter), ("budget", &config.budget), ("adaptive", &adaptive)] {
        if let Some(path) = path {
            let method = Ident::new(method, path.span());
            out.extend(quote_spanned!(path.span()=> .#method(&#path)));
        }
    }
    // Evaluated once, as the call starts; spanned at the user's expression, so a cost of the
    // wrong type is an error there.
    if let Some(tokens) = &config.tokens {
        out.extend(quote_spanned!(tokens.span()=> .tokens(#tokens)));
    }
    out
}

/// The call, under the site's `const` policy, or with `policy = PATH` under the policy loaded
/// into that `static PolicySlot` (a path to anything else is a type error at the path).
pub(crate) fn call_start(p: &TokenStream, site: &Ident, config: &RetryConfig) -> TokenStream {
    match &config.loaded {
        None => quote!(#p::Call::new(&#site)),
        Some(path) => {
            let slot = quote_spanned!(path.span()=> #p::PolicySlot::get(&#path));
            quote!(#p::Call::at_site(&#site, #slot))
        }
    }
}

/// The fn's own error window, for `adaptive = true`.
fn adaptive_static() -> Ident {
    Ident::new("__LLM_RETRY_ADAPTIVE", Span::mixed_site())
}

/// `static __LLM_RETRY_ADAPTIVE: Adaptive = Adaptive::new();` for `adaptive = true`, else nothing.
pub(crate) fn own_adaptive(p: &TokenStream, config: &RetryConfig) -> TokenStream {
    match config.adaptive {
        Some(config::Adaptive::Own) => {
            let ident = adaptive_static();
            quote!(static #ident: #p::Adaptive = #p::Adaptive::new();)
        }
        _ => TokenStream::new(),
    }
}

/// A fake return edge (as in tracing-attributes): an unreachable `return` of the fn's declared
/// type, which gives an attempt's `async` block that output type, so `?` converts through `From`
/// and `return` type-checks. Its lints are allowed on the glue alone.
pub(crate) fn fake_return_edge(fake: &Ident, ty: &impl ToTokens) -> TokenStream {
    quote! {
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    }
}

/// The stats key: `name = "..."`, or the module path and the fn's name.
pub(crate) fn site_name(config: &RetryConfig, func: &ItemFn) -> TokenStream {
    match &config.name {
        Some(name) => name.to_token_stream(),
        None => {
            let fn_name = func.sig.ident.unraw().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #fn_name))
        }
    }
}

/// Whether the body ends in a call of the standard library's panicking macros (`panic!`,
/// `todo!`, `unimplemented!`, `unreachable!`), so that it always diverges: bound by a plain
/// `let`, it would set off clippy's `diverging_sub_expression` in the user's code.
fn ends_in_a_panic(stmts: &[Stmt]) -> bool {
    let path = match stmts.last() {
        Some(Stmt::Macro(m)) => &m.mac.path,
        Some(Stmt::Expr(Expr::Macro(m), _)) => &m.mac.path,
        _ => return false,
    };
    path.segments
        .last()
        .is_some_and(|s| matches!(s.ident.to_string().as_str(), "panic" | "todo" | "unimplemented" | "unreachable"))
}
