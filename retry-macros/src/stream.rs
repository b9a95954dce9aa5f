//! `#[llm_retry(stream = "...")]`: the annotated `async fn` opens one attempt's stream; it is
//! rewritten into a plain fn that returns the retrying stream at once (docs/STREAMING.md).
//!
//! ```text
//! async fn f(a: &A, b: B, resume: Resume) -> Result<impl Stream<Item = Result<C, E>>, E>
//! // becomes
//! fn f<'stream>(a: &'stream A, b: B) -> impl Stream<Item = Result<StreamEvent<C>, E>> + 'stream
//! ```
//!
//! Each attempt calls the body again: shared references are copied into it, owned arguments
//! cloned (`CloneEachAttempt`, spanned on the argument's type), and the parameter whose type is
//! named `Resume` becomes the opener's argument. What does not fit is an error at its token:
//! `&mut` arguments and receivers (the stream would hold the borrow across attempts), `self`
//! by value or typed, `impl Trait` arguments (name the type parameter), and `#[async_trait]`.

use crate::config::RetryConfig;
use crate::ctxt::Ctxt;
use crate::expand::{self, Shape};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, GenericParam, ItemFn, Lifetime, Pat, PathArguments, ReceiverKind, ReturnType, Type,
    TypeParamBound,
};

/// A checked stream fn, ready to generate.
pub struct StreamFn {
    func: ItemFn,
    /// The declared `Result<S, E>`.
    output: Type,
    /// The chunk type `C`: read from `impl Stream<Item = Result<C, E>>`, or projected from a named `S`.
    chunk: Chunk,
    error: Type,
    /// The `Resume` parameter's pattern and type.
    resume: Option<(Pat, Type)>,
    /// With `fallback`: the `&Target` parameter's pattern and type.
    target: Option<(Pat, Type)>,
    /// How each remaining parameter reaches an attempt.
    args: Vec<Arg>,
    lifetime: Lifetime,
}

enum Chunk {
    /// `C` of `impl Stream<Item = Result<C, E>>`, and the trait's path as written (so the
    /// user's `use futures::Stream` stays used).
    Written(Type, syn::Path),
    /// A named stream type.
    Named(Type),
}

/// `let #pat = #value;` at the top of each attempt's opener.
struct Arg {
    pat: Pat,
    /// The name the parameter has in the rewritten signature.
    name: Ident,
    /// `Some(ty)`: cloned per attempt; `None`: a shared reference, copied.
    clone: Option<Type>,
}

/// Checks the fn for the stream form; every problem goes to `cx`.
pub fn check(cx: &mut Ctxt, config: &RetryConfig, item: TokenStream) -> Option<StreamFn> {
    // A stream fn's output is checked here, before the plain form's "cannot carry an error".
    if let Ok(syn::Item::Fn(f)) = syn::parse2::<syn::Item>(item.clone()) {
        if let (Some(_), ReturnType::Type(_, ty)) = (f.sig.asyncness, &f.sig.output) {
            if result_args(ty).is_none() {
                cx.error_spanned(ty, output_wanted(&f.sig.ident));
                return None;
            }
        }
    }
    let (mut func, shape) = expand::check_item(cx, item)?;
    let Shape::AsyncFn { output } = shape else {
        cx.error_at(
            Span::call_site(),
            "`stream = ...` changes the fn's signature, which `#[async_trait]` fixes; use an inherent `impl` or a free fn",
        );
        return None;
    };
    let (chunk, error) = stream_output(cx, &output, &func.sig.ident)?;
    let lifetime = fresh_lifetime(&func);
    let mut resume: Option<(Pat, Type)> = None;
    let mut target: Option<(Pat, Type)> = None;
    let mut args = Vec::new();
    let mut inputs = syn::punctuated::Punctuated::new();
    let mut ok = true;
    for (i, arg) in std::mem::take(&mut func.sig.inputs).into_iter().enumerate() {
        match arg {
            FnArg::Receiver(mut r) => match &mut r.kind {
                ReceiverKind::Reference(_, lt, None) => {
                    if lt.as_ref().is_none_or(|l| l.ident == "_") {
                        *lt = Some(lifetime.clone());
                    }
                    inputs.push(FnArg::Receiver(r));
                }
                ReceiverKind::Reference(_, _, Some(m)) => {
                    ok = false;
                    cx.error_spanned(
                        m,
                        "a stream reopens its request on each attempt while the caller reads it, so it cannot hold `&mut self`; take `&self` (with interior mutability where needed)",
                    );
                }
                _ => {
                    ok = false;
                    cx.error_spanned(
                        &r,
                        "each attempt of a stream needs its own access to `self`; take `&self` (a clone of an owned `self` cannot be named in the body)",
                    );
                }
            },
            FnArg::Typed(mut t) => {
                if config.fallback.is_some() && expand::fallback::is_target_ref(&t.ty) {
                    if target.is_some() {
                        ok = false;
                        cx.error_spanned(
                            &t,
                            "a second target parameter: the attempt's target is given once; remove this one",
                        );
                    } else {
                        target = Some((*t.pat, *t.ty));
                    }
                    continue;
                }
                if is_resume(&t.ty) {
                    if resume.is_some() {
                        ok = false;
                        cx.error_spanned(&t.ty, "a second `Resume` parameter; keep one");
                    } else {
                        resume = Some((*t.pat, *t.ty));
                    }
                    continue;
                }
                if let Some(bad) = find_impl_trait(&t.ty) {
                    ok = false;
                    cx.error_spanned(
                        bad,
                        "a stream fn cannot take an `impl Trait` argument (its type must be named in the returned stream's lifetime bound); use a type parameter: `fn f<P: Trait + Clone>(arg: P)`",
                    );
                    continue;
                }
                let clone = match &mut *t.ty {
                    Type::Reference(r) if r.mutability.is_some() => {
                        ok = false;
                        cx.error_spanned(
                            r.mutability,
                            "a stream reopens its request on each attempt while the caller reads it, so it cannot hold a `&mut` argument; take `&` (with interior mutability where needed) or an owned, `Clone` value",
                        );
                        continue;
                    }
                    Type::Reference(_) => None,
                    ty => Some(ty.clone()),
                };
                fill_lifetimes(&mut t.ty, &lifetime);
                // The signature keeps a plain name (`mut` belongs to each attempt's copy); a
                // pattern is bound in each attempt from a generated name.
                let name = match &*t.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
                    _ => Ident::new(&format!("__llm_retry_arg{i}"), Span::mixed_site()),
                };
                let pat = std::mem::replace(&mut *t.pat, Pat::Verbatim(name.to_token_stream()));
                args.push(Arg { pat, name, clone });
                inputs.push(FnArg::Typed(t));
            }
        }
    }
    func.sig.inputs = inputs;
    if resume.is_none() && config.stream.as_ref().is_some_and(|m| m.value() == "continue") {
        ok = false;
        cx.error_at(
            func.sig.paren_token.span.join(),
            "`stream = \"continue\"` hands the text received so far to the opener, so it needs it as a parameter: add `resume: llm_retry::stream::Resume` and send `resume.text()` as the assistant prefill (or use `stream = \"restart\"`)",
        );
    }
    if config.fallback.is_some() && target.is_none() && ok {
        ok = false;
        cx.error_at(func.sig.ident.span(), expand::fallback::MISSING_TARGET);
    }
    if !ok {
        return None;
    }
    Some(StreamFn { func, output, chunk, error, resume, target, args, lifetime })
}

/// `C` and `E` of the declared `Result<impl Stream<Item = Result<C, E>>, E>` (or `Result<S, E>`).
fn stream_output(cx: &mut Ctxt, output: &Type, name: &Ident) -> Option<(Chunk, Type)> {
    let wanted = output_wanted(name);
    let Some([stream, error]) = result_args(output) else {
        cx.error_spanned(output, wanted);
        return None;
    };
    match &stream {
        Type::ImplTrait(i) => {
            let bound = i.bounds.iter().find_map(|b| match b {
                TypeParamBound::Trait(t) => {
                    let last = t.path.segments.last().filter(|s| s.ident == "Stream")?;
                    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
                    let item = args.args.iter().find_map(|a| match a {
                        GenericArgument::AssocType(a) if a.ident == "Item" => Some(a.ty.clone()),
                        _ => None,
                    })?;
                    let mut path = t.path.clone();
                    path.segments.last_mut()?.arguments = PathArguments::None;
                    Some((item, path))
                }
                _ => None,
            });
            let item = bound.as_ref().map(|b| &b.0);
            match item.and_then(result_args) {
                Some([chunk, _]) => Some((Chunk::Written(chunk, bound.map(|b| b.1)?), error)),
                None => {
                    let at = item.map_or_else(|| stream.to_token_stream(), ToTokens::to_token_stream);
                    cx.error_spanned(at, wanted);
                    None
                }
            }
        }
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            let not_stream = [
                "String", "str", "Vec", "Option", "Result", "bool", "char", "u8", "u16", "u32", "u64", "usize", "i32",
                "i64", "f32", "f64", "Value",
            ];
            if not_stream.contains(&last.as_str()) {
                cx.error_spanned(&stream, format!("`{last}` is not a stream; {wanted}"));
                return None;
            }
            Some((Chunk::Named(stream.clone()), error))
        }
        _ => {
            cx.error_spanned(&stream, wanted);
            None
        }
    }
}

fn output_wanted(name: &Ident) -> String {
    format!(
        "with `stream = ...`, `{}` opens one attempt: return `Result<impl Stream<Item = Result<C, E>>, E>`, where `C` is a chunk (like `String`)",
        name.unraw()
    )
}

/// `[T, E]` of a type written `Result<T, E>`.
fn result_args(ty: &Type) -> Option<[Type; 2]> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last().filter(|s| s.ident == "Result")?;
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    let out = [types.next()?, types.next()?];
    types.next().is_none().then_some(out)
}

fn is_resume(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Resume"))
}

fn find_impl_trait(ty: &Type) -> Option<&Type> {
    match ty {
        Type::ImplTrait(_) => Some(ty),
        Type::Reference(r) => find_impl_trait(&r.elem),
        Type::Paren(p) => find_impl_trait(&p.elem),
        Type::Group(g) => find_impl_trait(&g.elem),
        Type::Slice(s) => find_impl_trait(&s.elem),
        Type::Array(a) => find_impl_trait(&a.elem),
        Type::Tuple(t) => t.elems.iter().find_map(find_impl_trait),
        Type::Path(p) => p.path.segments.iter().find_map(|s| match &s.arguments {
            PathArguments::AngleBracketed(a) => a.args.iter().find_map(|a| match a {
                GenericArgument::Type(t) => find_impl_trait(t),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    }
}

/// Names every elided lifetime of an argument's type (`&T`, `Foo<'_>`) with the stream's one.
/// Fn pointers and trait objects keep theirs: those are not borrows the stream holds.
fn fill_lifetimes(ty: &mut Type, lt: &Lifetime) {
    match ty {
        Type::Reference(r) => {
            match &mut r.lifetime {
                Some(l) if l.ident == "_" => *l = lt.clone(),
                Some(_) => {}
                None => r.lifetime = Some(lt.clone()),
            }
            fill_lifetimes(&mut r.elem, lt);
        }
        Type::Paren(p) => fill_lifetimes(&mut p.elem, lt),
        Type::Group(g) => fill_lifetimes(&mut g.elem, lt),
        Type::Slice(s) => fill_lifetimes(&mut s.elem, lt),
        Type::Array(a) => fill_lifetimes(&mut a.elem, lt),
        Type::Tuple(t) => t.elems.iter_mut().for_each(|t| fill_lifetimes(t, lt)),
        Type::Path(p) => {
            for seg in &mut p.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut seg.arguments {
                    for arg in &mut args.args {
                        match arg {
                            GenericArgument::Lifetime(l) if l.ident == "_" => *l = lt.clone(),
                            GenericArgument::Type(t) => fill_lifetimes(t, lt),
                            _ => {}
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Makes every lifetime and type parameter outlive `lifetime`, the stream's: the bound goes
/// where the parameter's other bounds are, inline or in the `where` clause, never split over
/// both (which clippy's `multiple_bound_locations` reports on the user's parameter).
fn outlive(generics: &mut syn::Generics, lifetime: &Lifetime) {
    let in_where = |generics: &syn::Generics, param: &GenericParam| {
        generics.where_clause.as_ref().is_some_and(|w| {
            w.predicates.iter().any(|p| match (p, param) {
                (syn::WherePredicate::Lifetime(p), GenericParam::Lifetime(l)) => p.lifetime == l.lifetime,
                (syn::WherePredicate::Type(p), GenericParam::Type(t)) => {
                    matches!(&p.bounded_ty, syn::Type::Path(ty) if ty.qself.is_none() && ty.path.is_ident(&t.ident))
                }
                _ => false,
            })
        })
    };
    let mut predicates: Vec<syn::WherePredicate> = Vec::new();
    let in_where: Vec<bool> = generics.params.iter().map(|g| in_where(generics, g)).collect();
    for (param, where_bound) in generics.params.iter_mut().zip(in_where) {
        match param {
            GenericParam::Lifetime(l) if where_bound => {
                let l = &l.lifetime;
                predicates.push(syn::parse_quote!(#l: #lifetime));
            }
            GenericParam::Lifetime(l) => {
                l.colon_token.get_or_insert_with(Default::default);
                l.bounds.push(lifetime.clone());
            }
            GenericParam::Type(t) if where_bound => {
                let t = &t.ident;
                predicates.push(syn::parse_quote!(#t: #lifetime));
            }
            GenericParam::Type(t) => {
                t.colon_token.get_or_insert_with(Default::default);
                t.bounds.push(syn::TypeParamBound::Lifetime(lifetime.clone()));
            }
            GenericParam::Const(_) => {}
        }
    }
    if !predicates.is_empty() {
        generics.make_where_clause().predicates.extend(predicates);
    }
}

/// `'stream`, unless the fn already has a lifetime of that name.
fn fresh_lifetime(func: &ItemFn) -> Lifetime {
    let taken = |name: &str| func.sig.generics.lifetimes().any(|l| l.lifetime.ident == name);
    let name = if taken("stream") { "'__llm_retry_stream" } else { "'stream" };
    Lifetime::new(name, Span::call_site())
}

/// The rewritten fn.
pub fn generate(config: &RetryConfig, s: StreamFn) -> TokenStream {
    let StreamFn { mut func, output, chunk, error, resume, target, args, lifetime } = s;
    let krate = config.krate.as_ref().map_or_else(|| quote!(::llm_retry), ToTokens::to_token_stream);
    let p = quote!(#krate::__private);
    let site = Ident::new("__LLM_RETRY_SITE", Span::mixed_site());
    let options = Ident::new("__LLM_RETRY_STREAM", Span::mixed_site());
    let fake = Ident::new("__llm_retry_fake_return", Span::mixed_site());
    let name = expand::site_name(config, &func);
    let policy = crate::policy::policy(&p, config);
    let start = crate::expand::call_start(&p, &site, config);
    let call_options = expand::call_options(&p, config);
    let own_adaptive = expand::own_adaptive(&p, config);

    let mode = match config.stream.as_ref().map(syn::LitStr::value).as_deref() {
        Some("continue") => quote!(Continue),
        Some("skip") => quote!(Skip),
        _ => quote!(Restart),
    };
    let mut stream_options = quote!(#p::StreamOptions::new().mode(#p::StreamMode::#mode));
    for (method, d) in [("first_chunk_timeout", config.first_chunk_timeout), ("idle_timeout", config.idle_timeout)] {
        if let Some(d) = d {
            let method = Ident::new(method, Span::call_site());
            let d = crate::policy::duration_tokens(&p, d);
            stream_options.extend(quote!(.#method(#d)));
        }
    }

    // The signature: not async, the `Resume` parameter gone, one lifetime for the borrows.
    let sig = &mut func.sig;
    sig.asyncness = None;
    outlive(&mut sig.generics, &lifetime);
    sig.generics.params.insert(0, GenericParam::Lifetime(syn::LifetimeParam::new(lifetime.clone())));
    let (chunk, stream_trait) = match chunk {
        Chunk::Written(c, path) => (c, path.into_token_stream()),
        Chunk::Named(mut s) => {
            fill_lifetimes(&mut s, &lifetime);
            // rustc reports a type that is not a stream at the attribute (the signature's
            // well-formedness), naming the type: "`S: Stream` is not satisfied".
            (syn::parse_quote!(<#s as #p::ChunkStream>::Chunk), quote!(#p::Stream))
        }
    };
    let span = output.span();
    sig.output = syn::parse_quote_spanned! {span=>
        -> impl #stream_trait<Item = ::core::result::Result<#p::StreamEvent<#chunk>, #error>> + #lifetime
    };

    // Each attempt: its own copies of the arguments, then the body as an async block whose
    // output is the declared `Result`.
    let (resume_pat, resume_ty) = match resume {
        Some((pat, ty)) => (pat.into_token_stream(), ty.into_token_stream()),
        None => (quote!(_), quote!(#p::Resume)),
    };
    // With `fallback`: the chain, and each attempt's target as the opener's first argument,
    // bound to the fn's own parameter (a `&'static Target`, so the opener's future may keep it).
    let chain = Ident::new("__LLM_RETRY_CHAIN", Span::mixed_site());
    let (chain_static, through_chain, target_param, bind_target) = match &target {
        Some((pat, ty)) => {
            let given = Ident::new("__llm_retry_target", Span::mixed_site());
            (
                expand::fallback::chain_static(&p, config, &chain),
                quote!(.fallback(#chain)),
                quote!(#given: &'static #p::Target,),
                quote_spanned!(ty.span()=> let #pat: #ty = #given;),
            )
        }
        None => (TokenStream::new(), TokenStream::new(), TokenStream::new(), TokenStream::new()),
    };
    let copies = args.iter().map(|Arg { pat, name, clone }| match clone {
        Some(ty) => {
            let at = ty.span();
            quote_spanned!(at=> let #pat = <#ty as #p::CloneEachAttempt>::clone_each_attempt(&#name);)
        }
        None if matches!(pat, Pat::Ident(i) if i.mutability.is_none() && i.ident == *name) => TokenStream::new(),
        None => quote!(let #pat = #name;),
    });
    let fake_ty = expand::inferable(&output);
    let return_edge = expand::fake_return_edge(&fake, &fake_ty);
    let stmts = &func.block.stmts;
    let body = quote! {
        {
            static #site: #p::Site = #p::Site::new(#name, #p::policy(#policy));
            const #options: #p::StreamOptions = #stream_options;
            #chain_static
            #own_adaptive
            #start #call_options #through_chain
                .stream(move |#target_param #resume_pat: #resume_ty| {
                    #bind_target
                    #(#copies)*
                    async move {
                        #return_edge
                        #(#stmts)*
                    }
                })
                .options(#options)
        }
    };
    let mut new_body: syn::Block = syn::parse2(body).expect("the generated body parses as a block");
    new_body.brace_token = func.block.brace_token;
    *func.block = new_body;
    func.into_token_stream()
}
