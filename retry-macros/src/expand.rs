//! Phase 3: the annotated fn, checked, and rewritten into the retry loop.
//!
//! This file is the entry point: it runs the phases and decides what is emitted on an error.
//! `shape` checks the item and tells how the fn carries its body (an `async fn`, or a boxed
//! future); `async_trait` recognises `#[async_trait]`'s rewrite of an `async fn` and its
//! prelude; `generate` writes the retry loop and the pieces the stream form shares.

mod async_trait;
pub(crate) mod fallback;
mod generate;
mod shape;

pub(crate) use generate::{call_options, call_start, fake_return_edge, inferable, own_adaptive, site_name};
pub(crate) use shape::{Shape, check_item};

use crate::args;
use crate::config;
use crate::ctxt::Ctxt;
use generate::generate;
use proc_macro2::TokenStream;
use quote::quote;

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
    let target = check_item(&mut cx, item.clone()).and_then(|(mut func, shape)| {
        // `fallback` takes the target parameter out of the signature: the loop supplies it.
        match &config.fallback {
            None => Some((func, shape, None)),
            Some(_) => fallback::take_target(&mut cx, &mut func, &shape).map(|param| (func, shape, Some(param))),
        }
    });
    match (cx.finish(), target) {
        (Ok(()), Some((func, shape, param))) => generate(&config, func, shape, param.as_ref()),
        (Err(errors), _) => {
            let errors = errors.to_compile_error();
            quote!(#errors #item)
        }
        (Ok(()), None) => item,
    }
}
