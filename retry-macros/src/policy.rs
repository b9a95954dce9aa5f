//! The policy's tokens: the `const` builder expression the expansion emits. It is made from
//! the same settings the rulebook checked (`config::rulebook::settings`), so what compiles is
//! what was validated.

use crate::config::rulebook::settings;
use crate::config::{RetryConfig, RuleConfig, Target};
use llm_retry_rules::{Backoff, Jitter};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;
use std::time::Duration;

/// The `const` policy builder: only the keys given, each written by its [`Setting`].
pub(crate) fn policy(p: &TokenStream, config: &RetryConfig) -> TokenStream {
    let mut b = quote!(#p::Policy::builder());
    for setting in settings(config) {
        b.extend(setting.tokens(p));
    }
    b
}

pub(crate) fn rule_tokens(p: &TokenStream, rule: &RuleConfig) -> TokenStream {
    let mut r = match rule.target {
        Target::Kind(k) => {
            let k = kind_tokens(p, k.name());
            quote!(#p::Rule::kind(#k))
        }
        Target::Status(s) => {
            let s = Literal::u16_unsuffixed(s);
            quote!(#p::Rule::status(#s))
        }
    };
    if let Some(n) = rule.max {
        let n = Literal::u32_unsuffixed(n);
        r.extend(quote!(.max_attempts(#n)));
    }
    if let Some(b) = rule.strategy.backoff {
        let b = backoff_tokens(p, b);
        r.extend(quote!(.backoff(#b)));
    }
    if let Some(j) = rule.strategy.jitter {
        let j = jitter_tokens(p, j);
        r.extend(quote!(.jitter(#j)));
    }
    r
}

pub(crate) fn kind_tokens(p: &TokenStream, name: &str) -> TokenStream {
    let ident = Ident::new(name, Span::call_site());
    quote!(#p::ErrorKind::#ident)
}

/// A `Duration` in the largest whole unit that holds it exactly.
pub(crate) fn duration_tokens(p: &TokenStream, d: Duration) -> TokenStream {
    let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
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

pub(crate) fn backoff_tokens(p: &TokenStream, b: Backoff) -> TokenStream {
    match b {
        Backoff::None => quote!(#p::Backoff::None),
        Backoff::Fixed { delay } => {
            let delay = duration_tokens(p, delay);
            quote!(#p::Backoff::Fixed { delay: #delay })
        }
        Backoff::Linear { base, increment, max_delay } => {
            let (base, increment, max_delay) =
                (duration_tokens(p, base), duration_tokens(p, increment), duration_tokens(p, max_delay));
            quote!(#p::Backoff::Linear { base: #base, increment: #increment, max_delay: #max_delay })
        }
        Backoff::Exponential { base, multiplier, min_delay, max_delay } => {
            let (base, min_delay, max_delay) =
                (duration_tokens(p, base), duration_tokens(p, min_delay), duration_tokens(p, max_delay));
            let multiplier = float(multiplier);
            quote!(#p::Backoff::Exponential { base: #base, multiplier: #multiplier, min_delay: #min_delay, max_delay: #max_delay })
        }
        Backoff::Decorrelated { base, max_delay } => {
            let (base, max_delay) = (duration_tokens(p, base), duration_tokens(p, max_delay));
            quote!(#p::Backoff::Decorrelated { base: #base, max_delay: #max_delay })
        }
    }
}

pub(crate) fn jitter_tokens(p: &TokenStream, j: Jitter) -> TokenStream {
    match j {
        Jitter::None => quote!(#p::Jitter::None),
        Jitter::Full => quote!(#p::Jitter::Full),
        Jitter::Equal => quote!(#p::Jitter::Equal),
        Jitter::Proportional { factor } => {
            let factor = float(factor);
            quote!(#p::Jitter::Proportional { factor: #factor })
        }
        Jitter::Decorrelated => quote!(#p::Jitter::Decorrelated),
    }
}
