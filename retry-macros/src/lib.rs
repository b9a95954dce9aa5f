//! The `#[llm_retry]` attribute. Use it through the `llm-retry` crate, which documents it.
//!
//! Three phases (STYLE.md §1): [`args`] parses the attribute's tokens into span-carrying
//! entries, [`config`] validates them into a [`config::RetryConfig`] (every error, at its
//! token), and [`expand`] checks the fn and generates the retry loop from the config alone.
#![forbid(unsafe_code)]

mod args;
mod config;
mod ctxt;
mod early_exit;
mod expand;
mod policy;
mod stream;
mod suggest;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Rewrites an `async fn` into a retry loop. See the `llm-retry` crate for the reference.
#[proc_macro_attribute]
pub fn llm_retry(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
