//! Phase 3: the annotated fn, checked, and rewritten into the retry loop.

use crate::args;
use crate::config::{self, BackoffConfig, JitterConfig, RetryConfig, Target};
use crate::ctxt::Ctxt;
use crate::duration::Nanos;
use crate::early_exit;
use proc_macro2::{Ident, Literal, Span, TokenStream};
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
    if entries.iter().any(|e| e.key_name() == crate::keys::STREAM) {
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
    /// `#[async_trait]`'s rewrite: `fn f(..) -> Pin<Box<dyn Future<Output = R> + ..>> {
    /// Box::pin(async move { body }) }`; the loop goes inside the async block.
    AsyncTrait { output: Type },
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
    } else if let Some(output) = async_trait_output(&func) {
        Shape::AsyncTrait { output }
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

/// Recognises `#[async_trait]`'s rewrite and returns the future's `Output` type.
fn async_trait_output(func: &ItemFn) -> Option<Type> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = func.block.stmts.last() else { return None };
    let Expr::Path(path) = &*call.func else { return None };
    let path = path.path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>();
    if !path.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    let Some(Expr::Async(_)) = call.args.first() else { return None };
    let ReturnType::Type(_, ty) = &func.sig.output else { return None };
    future_output(ty)
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

    let (output, body): (Type, &mut Block) = match shape {
        Shape::AsyncFn { output } => (output, &mut func.block),
        Shape::AsyncTrait { output } => {
            let Some(Stmt::Expr(Expr::Call(pin), None)) = func.block.stmts.last_mut() else { unreachable!() };
            let Some(Expr::Async(inner)) = pin.args.first_mut() else { unreachable!() };
            (output, &mut inner.block)
        }
    };
    let span = output.span();
    let fake_ty = inferable(&output);
    // `#[async_trait]` rebinds the arguments (`let x = x;`) before the body; those moves stay
    // outside the loop.
    let prelude: Vec<Stmt> = {
        let n = body.stmts.iter().take_while(|s| is_async_trait_prelude(s)).count();
        body.stmts.drain(..n).collect()
    };
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

/// `let x = x;`, `let __self = self;` and async-trait's type-anchoring `if let` statement.
fn is_async_trait_prelude(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Local(local) => {
            let Some(init) = &local.init else { return false };
            init.diverge.is_none()
                && matches!(&*init.expr, Expr::Path(p) if p.path.get_ident().is_some_and(|i| {
                    let s = i.to_string();
                    s == "self" || s.starts_with("__") || matches!(&local.pat, syn::Pat::Ident(pi) if pi.ident == *i)
                }))
        }
        Stmt::Expr(Expr::If(_), None) => {
            let text = stmt.to_token_stream().to_string();
            text.starts_with("if let") && text.contains("__ret")
        }
        _ => false,
    }
}

pub(crate) fn duration(p: &TokenStream, d: Nanos) -> TokenStream {
    let n = d.0;
    let (ctor, value) = if n % 1_000_000_000 == 0 {
        ("from_secs", n / 1_000_000_000)
    } else if n % 1_000_000 == 0 {
        ("from_millis", n / 1_000_000)
    } else if n % 1_000 == 0 {
        ("from_micros", n / 1_000)
    } else {
        ("from_nanos", n)
    };
    let ctor = Ident::new(ctor, Span::call_site());
    let value = Literal::u64_unsuffixed(value);
    quote!(#p::Duration::#ctor(#value))
}

fn float(x: f64) -> Literal {
    Literal::f64_unsuffixed(x)
}

fn backoff(p: &TokenStream, b: &BackoffConfig) -> TokenStream {
    match *b {
        BackoffConfig::None => quote!(#p::Backoff::None),
        BackoffConfig::Fixed { delay } => {
            let delay = duration(p, delay);
            quote!(#p::Backoff::Fixed { delay: #delay })
        }
        BackoffConfig::Linear { start, increment, max_delay } => {
            let (start, increment, max_delay) = (duration(p, start), duration(p, increment), duration(p, max_delay));
            quote!(#p::Backoff::Linear { start: #start, increment: #increment, max_delay: #max_delay })
        }
        BackoffConfig::Exponential { initial, multiplier, min_delay, max_delay } => {
            let (initial, min_delay, max_delay) =
                (duration(p, initial), duration(p, min_delay), duration(p, max_delay));
            let multiplier = float(multiplier);
            quote!(#p::Backoff::Exponential { initial: #initial, multiplier: #multiplier, min_delay: #min_delay, max_delay: #max_delay })
        }
        BackoffConfig::Decorrelated { base, max_delay } => {
            let (base, max_delay) = (duration(p, base), duration(p, max_delay));
            quote!(#p::Backoff::Decorrelated { base: #base, max_delay: #max_delay })
        }
    }
}

fn jitter(p: &TokenStream, j: &JitterConfig) -> TokenStream {
    match *j {
        JitterConfig::None => quote!(#p::Jitter::None),
        JitterConfig::Full => quote!(#p::Jitter::Full),
        JitterConfig::Equal => quote!(#p::Jitter::Equal),
        JitterConfig::Proportional { factor } => {
            let factor = float(factor);
            quote!(#p::Jitter::Proportional { factor: #factor })
        }
        JitterConfig::Decorrelated => quote!(#p::Jitter::Decorrelated),
    }
}

fn strategy(p: &TokenStream, s: &config::Strategy) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(b) = &s.backoff {
        let b = backoff(p, b);
        out.extend(quote!(.backoff(#b)));
    }
    if let Some(j) = &s.jitter {
        let j = jitter(p, j);
        out.extend(quote!(.jitter(#j)));
    }
    out
}

fn kind(p: &TokenStream, name: &str) -> TokenStream {
    let ident = Ident::new(name, Span::call_site());
    quote!(#p::ErrorKind::#ident)
}

/// The `const` policy builder: only the keys given.
pub(crate) fn policy(p: &TokenStream, config: &RetryConfig) -> TokenStream {
    let mut b = quote!(#p::Policy::builder());
    if let Some(n) = config.max {
        let n = Literal::u32_unsuffixed(n);
        b.extend(quote!(.max_attempts(#n)));
    }
    b.extend(strategy(p, &config.strategy));
    if let Some(on) = &config.on {
        let mut set = quote!(#p::RetryOn::none());
        for t in on {
            set.extend(match t {
                Target::Kind(k) => {
                    let k = kind(p, k);
                    quote!(.kind(#k))
                }
                Target::Status(s) => {
                    let s = Literal::u16_unsuffixed(*s);
                    quote!(.status(#s))
                }
            });
        }
        b.extend(quote!(.retry_on(#set)));
    }
    for rule in &config.rules {
        let mut r = match &rule.target {
            Target::Kind(k) => {
                let k = kind(p, k);
                quote!(#p::Rule::kind(#k))
            }
            Target::Status(s) => {
                let s = Literal::u16_unsuffixed(*s);
                quote!(#p::Rule::status(#s))
            }
        };
        if let Some(n) = rule.max {
            let n = Literal::u32_unsuffixed(n);
            r.extend(quote!(.max_attempts(#n)));
        }
        r.extend(strategy(p, &rule.strategy));
        b.extend(quote!(.rule(#r)));
    }
    if let Some(yes) = config.retry_after {
        b.extend(quote!(.respect_retry_after(#yes)));
    }
    if let Some(d) = config.max_retry_after {
        let d = duration(p, d);
        b.extend(quote!(.max_retry_after(#d)));
    }
    b
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
