//! Phase 3: the annotated fn, checked, and rewritten into the retry loop.

use crate::args;
use crate::config::{self, RetryConfig};
use crate::ctxt::Ctxt;
use crate::early_exit;
use crate::policy::{duration, policy};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Block, Expr, GenericArgument, ItemFn, PathArguments, ReturnType, Stmt, Type, TypeParamBound};

/// Expands `#[llm_retry(args)] item`. On any error, returns every error as
/// `compile_error!` followed by the item unchanged, so the caller sees no follow-on errors.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let entries = args::parse(&mut cx, args);
    let config = config::validate(&mut cx, &entries);
    if entries.iter().any(|e| e.key_name() == llm_retry_rules::keys::STREAM) {
        // The stream form changes the signature: once the fn itself checks out, it is generated
        // even next to attribute errors, so callers see no follow-on errors.
        let target = crate::stream::check(&mut cx, &config, item.clone());
        let errors = cx.finish().err().map(|e| e.to_compile_error());
        return match target {
            Some(func) => {
                let func = crate::stream::generate(&config, func);
                quote!(#errors #func)
            }
            None => quote!(#errors #item),
        };
    }
    let target = check_item(&mut cx, item.clone());
    match (cx.finish(), target) {
        (Ok(()), Some((func, shape))) => generate(&config, func, shape),
        (Err(errors), _) => {
            let errors = errors.to_compile_error();
            quote!(#errors #item)
        }
        (Ok(()), None) => item,
    }
}

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

/// Recognises a fn that returns its future boxed, as `#[async_trait]` rewrites one, and returns
/// the future's `Output` type and the async block.
fn async_trait_output(func: &ItemFn) -> Option<(Type, &Block)> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = func.block.stmts.last() else { return None };
    if !is_box_pin(&call.func) || call.args.len() != 1 {
        return None;
    }
    let Some(Expr::Async(inner)) = call.args.first() else { return None };
    let ReturnType::Type(_, ty) = &func.sig.output else { return None };
    Some((future_output(ty)?, &inner.block))
}

/// The async block of `Box::pin(async move { .. })`, the fn's last statement: where the loop
/// goes for [`Shape::AsyncTrait`].
fn boxed_async_block(block: &mut Block) -> Option<&mut Block> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut() else { return None };
    if !is_box_pin(&call.func) || call.args.len() != 1 {
        return None;
    }
    let Some(Expr::Async(inner)) = call.args.first_mut() else { return None };
    Some(&mut inner.block)
}

/// `Box::pin`, `::std::boxed::Box::pin`, ...
fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else { return false };
    let mut rev = path.path.segments.iter().rev();
    matches!((rev.next(), rev.next()), (Some(pin), Some(boxed)) if pin.ident == "pin" && boxed.ident == "Box")
}

/// How many leading statements of the boxed async block are async-trait's prelude, to run once
/// before the loop; zero unless the block is exactly what async-trait 0.1 emits for a fn that
/// returns `R`:
///
/// ```text
/// if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<R> {
///     #[allow(unreachable_code)]
///     return __ret;
/// }
/// let __self = self;               // one per argument it moves in, in order
/// let x = x;
/// let (a, b) = { let __arg2 = __arg2; __arg2 };
/// let __ret: R = { /* the user's body */ };
/// #[allow(unreachable_code)]
/// __ret
/// ```
///
/// The prelude is the type anchor and the rebindings: each binds an argument to itself
/// (`self` to `__self`) and they are the fn's own parameters, in order, each at most once. The
/// user's body, `let mut x = x;` at its top included, is inside `let __ret: R = { .. }` and
/// stays in the loop. Anything else (a hand-written `Box::pin(async move { .. })`, another
/// macro's rewrite around async-trait's) has no prelude: the whole block runs every attempt.
fn async_trait_prelude(sig: &syn::Signature, stmts: &[Stmt]) -> usize {
    let [anchor, rest @ ..] = stmts else { return 0 };
    if !is_type_anchor(anchor) {
        return 0;
    }
    let mut params = sig.inputs.iter();
    let rebinds = rest.iter().take_while(|stmt| params.by_ref().any(|param| is_rebinding(stmt, param))).count();
    match &rest[rebinds..] {
        [ret, tail] if is_ret_binding(ret) && is_ret_tail(tail) => 1 + rebinds,
        _ => 0,
    }
}

/// `if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<R> { return __ret; }`
fn is_type_anchor(stmt: &Stmt) -> bool {
    let Stmt::Expr(Expr::If(expr), None) = stmt else { return false };
    let Expr::Let(cond) = &*expr.cond else { return false };
    let syn::Pat::TupleStruct(some) = &*cond.pat else { return false };
    let is_some = some.qself.is_none() && some.path.segments.last().is_some_and(|s| s.ident == "Some");
    let binds_ret = matches!(some.elems.iter().collect::<Vec<_>>().as_slice(), [syn::Pat::Ident(p)] if is_plain_binding(p, "__ret"));
    let Expr::Path(none) = &*cond.expr else { return false };
    let is_none_of_r = none.qself.is_none()
        && none.path.segments.last().is_some_and(|s| {
            s.ident == "None"
                && matches!(&s.arguments, PathArguments::AngleBracketed(a)
                    if matches!(a.args.iter().collect::<Vec<_>>().as_slice(), [GenericArgument::Type(_)]))
        });
    let returns_ret = matches!(expr.then_branch.stmts.as_slice(),
        [Stmt::Expr(Expr::Return(r), _)] if r.expr.as_deref().is_some_and(|e| is_path_to(e, "__ret")));
    is_some && binds_ret && is_none_of_r && returns_ret && expr.else_branch.is_none()
}

/// async-trait's rebinding of `param`: `let __self = self;` for the receiver, `let x = x;` (or
/// `let mut x = x;`) for `x`, `let pat = { let __argN = __argN; __argN };` for an argument it
/// renamed `__argN` because it was a pattern. Only `#[cfg]` attributes (forwarded from the
/// parameter) may sit on it.
fn is_rebinding(stmt: &Stmt, param: &syn::FnArg) -> bool {
    let Stmt::Local(local) = stmt else { return false };
    let Some(init) = &local.init else { return false };
    if init.diverge.is_some() || !local.attrs.iter().all(|a| a.path().is_ident("cfg")) {
        return false;
    }
    match param {
        syn::FnArg::Receiver(_) => {
            matches!(&local.pat, syn::Pat::Ident(p) if is_plain_binding(p, "__self")) && is_path_to(&init.expr, "self")
        }
        syn::FnArg::Typed(typed) => {
            let syn::Pat::Ident(param) = &*typed.pat else { return false };
            let name = param.ident.to_string();
            let to_itself = |pat: &syn::Pat, expr: &Expr| {
                matches!(pat, syn::Pat::Ident(p) if is_plain_binding(p, &name)) && is_path_to(expr, &name)
            };
            if to_itself(&local.pat, &init.expr) {
                return true;
            }
            // `let (a, b) = { let __arg1 = __arg1; __arg1 };`
            let Expr::Block(block) = &*init.expr else { return false };
            let [Stmt::Local(inner), Stmt::Expr(tail, None)] = block.block.stmts.as_slice() else { return false };
            block.label.is_none()
                && block.attrs.is_empty()
                && inner.attrs.is_empty()
                && inner.init.as_ref().is_some_and(|i| i.diverge.is_none() && to_itself(&inner.pat, &i.expr))
                && is_path_to(tail, &name)
        }
    }
}

/// `let __ret: R = { .. };`, which holds the user's body.
fn is_ret_binding(stmt: &Stmt) -> bool {
    let Stmt::Local(local) = stmt else { return false };
    let syn::Pat::Type(typed) = &local.pat else { return false };
    matches!(&*typed.pat, syn::Pat::Ident(p) if is_plain_binding(p, "__ret"))
        && local.init.as_ref().is_some_and(|i| i.diverge.is_none() && matches!(&*i.expr, Expr::Block(_)))
}

/// `__ret`, the block's value.
fn is_ret_tail(stmt: &Stmt) -> bool {
    matches!(stmt, Stmt::Expr(e, None) if is_path_to(e, "__ret"))
}

/// `name` or `mut name`, nothing more.
fn is_plain_binding(pat: &syn::PatIdent, name: &str) -> bool {
    pat.by_ref.is_none() && pat.subpat.is_none() && pat.ident == name
}

/// The bare path `name`.
fn is_path_to(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some_and(|i| i == name))
}

/// `R` in `Pin<Box<dyn Future<Output = R> + Send + 'a>>`.
fn future_output(ty: &Type) -> Option<Type> {
    match ty {
        Type::Path(p) => {
            let args = p.path.segments.last().map(|s| &s.arguments)?;
            let PathArguments::AngleBracketed(args) = args else { return None };
            args.args.iter().find_map(|a| match a {
                GenericArgument::Type(t) => future_output(t),
                _ => None,
            })
        }
        Type::TraitObject(o) => o.bounds.iter().find_map(|b| match b {
            TypeParamBound::Trait(t) => {
                let last = t.path.segments.last()?;
                let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
                args.args.iter().find_map(|a| match a {
                    GenericArgument::AssocType(a) if a.ident == "Output" => Some(a.ty.clone()),
                    _ => None,
                })
            }
            _ => None,
        }),
        Type::Paren(p) => future_output(&p.elem),
        Type::Group(g) => future_output(&g.elem),
        _ => None,
    }
}

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

fn generate(config: &RetryConfig, mut func: ItemFn, shape: Shape) -> TokenStream {
    let krate = config.krate.as_ref().map_or_else(|| quote!(::llm_retry), ToTokens::to_token_stream);
    let p = quote!(#krate::__private);
    let site = Ident::new("__LLM_RETRY_SITE", Span::mixed_site());
    let call = Ident::new("__llm_retry", Span::mixed_site());
    let result = Ident::new("__llm_retry_result", Span::mixed_site());
    let fake = Ident::new("__llm_retry_fake_return", Span::mixed_site());

    let name = site_name(config, &func);
    let policy = policy(&p, config);
    let options = call_options(&p, config);
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
    let each_attempt = if runs_body_directly(config) {
        // Nothing wraps the body (no timer around it, no queue before it, no clock for the
        // notify hook): the fn's own future runs it, and the runtime only settles the result.
        // A body with no early exit needs no async block of its own to keep one inside the
        // attempt: it runs as it is, in a plain block (or bare, if it is one expression).
        let run = if early_exit::may_exit_early(quote!(#(#stmts)*)) {
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
        // A body that always panics diverges inside the `let` and leaves the rest unreachable:
        // both come of the loop around the body, so both are allowed on the loop's glue.
        quote_spanned! {span=>
            #[allow(clippy::diverging_sub_expression)]
            let #result: #fake_ty = #run;
            #[allow(unreachable_code)]
            let #pause = match #call_at.conclude_at(&#site, #result) {
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
            #own_adaptive
            #(#prelude)*
            let mut #call = #p::Call::new(&#site) #options;
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

/// Whether the body can run in the fn's own future, settled by `Call::conclude_at`: nothing has
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
        let d = duration(p, d);
        out.extend(quote!(.deadline(#d)));
    }
    if let Some(d) = config.attempt_timeout {
        let d = duration(p, d);
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
    out
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
