//! `#[async_trait]`'s rewrite of an `async fn`, recognised: a fn that returns
//! `Box::pin(async move { .. })`, its future's `Output` type, and the leading statements of the
//! async block that are async-trait's own prelude (run once, before the loop).

#[cfg(doc)]
use super::Shape;
use syn::{Block, Expr, GenericArgument, ItemFn, PathArguments, ReturnType, Stmt, Type, TypeParamBound};

/// Recognises a fn that returns its future boxed, as `#[async_trait]` rewrites one, and returns
/// the future's `Output` type and the async block.
pub(super) fn async_trait_output(func: &ItemFn) -> Option<(Type, &Block)> {
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
pub(super) fn boxed_async_block(block: &mut Block) -> Option<&mut Block> {
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
pub(super) fn async_trait_prelude(sig: &syn::Signature, stmts: &[Stmt]) -> usize {
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
