//! The policy's tokens: the `const` builder expression the expansion emits. It is made from
//! the same settings the rulebook checked (`config::rulebook::settings`), so what compiles is
//! what was validated.

use crate::config::rulebook::{Setting, settings};
use crate::config::{RetryConfig, RuleConfig, Target};
use llm_retry_rules::{Backoff, Jitter};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;
use std::time::Duration;

/// The `const` policy builder: only the keys given.
pub(crate) fn policy(p: &TokenStream, config: &RetryConfig) -> TokenStream {
    let mut b = quote!(#p::Policy::builder());
    for setting in settings(config) {
        b.extend(match setting {
            Setting::MaxAttempts(n) => {
                let n = Literal::u32_unsuffixed(n);
                quote!(.max_attempts(#n))
            }
            Setting::Backoff(backoff) => {
                let backoff = self::backoff(p, backoff);
                quote!(.backoff(#backoff))
            }
            Setting::Jitter(jitter) => {
                let jitter = self::jitter(p, jitter);
                quote!(.jitter(#jitter))
            }
            Setting::RetryOn(targets) => {
                let mut set = quote!(#p::RetryOn::none());
                for t in targets {
                    set.extend(match *t {
                        Target::Kind(k) => {
                            let k = kind(p, k.name());
                            quote!(.kind(#k))
                        }
                        Target::Status(s) => {
                            let s = Literal::u16_unsuffixed(s);
                            quote!(.status(#s))
                        }
                    });
                }
                quote!(.retry_on(#set))
            }
            Setting::Rule(r) => {
                let r = rule(p, r);
                quote!(.rule(#r))
            }
            Setting::RespectRetryAfter(yes) => quote!(.respect_retry_after(#yes)),
            Setting::MaxRetryAfter(d) => {
                let d = duration(p, d);
                quote!(.max_retry_after(#d))
            }
        });
    }
    b
}

fn rule(p: &TokenStream, rule: &RuleConfig) -> TokenStream {
    let mut r = match rule.target {
        Target::Kind(k) => {
            let k = kind(p, k.name());
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
        let b = backoff(p, b);
        r.extend(quote!(.backoff(#b)));
    }
    if let Some(j) = rule.strategy.jitter {
        let j = jitter(p, j);
        r.extend(quote!(.jitter(#j)));
    }
    r
}

fn kind(p: &TokenStream, name: &str) -> TokenStream {
    let ident = Ident::new(name, Span::call_site());
    quote!(#p::ErrorKind::#ident)
}

/// A `Duration` in the largest whole unit that holds it exactly.
pub(crate) fn duration(p: &TokenStream, d: Duration) -> TokenStream {
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

fn backoff(p: &TokenStream, b: Backoff) -> TokenStream {
    match b {
        Backoff::None => quote!(#p::Backoff::None),
        Backoff::Fixed { delay } => {
            let delay = duration(p, delay);
            quote!(#p::Backoff::Fixed { delay: #delay })
        }
        Backoff::Linear { base, increment, max_delay } => {
            let (base, increment, max_delay) = (duration(p, base), duration(p, increment), duration(p, max_delay));
            quote!(#p::Backoff::Linear { base: #base, increment: #increment, max_delay: #max_delay })
        }
        Backoff::Exponential { base, multiplier, min_delay, max_delay } => {
            let (base, min_delay, max_delay) = (duration(p, base), duration(p, min_delay), duration(p, max_delay));
            let multiplier = float(multiplier);
            quote!(#p::Backoff::Exponential { base: #base, multiplier: #multiplier, min_delay: #min_delay, max_delay: #max_delay })
        }
        Backoff::Decorrelated { base, max_delay } => {
            let (base, max_delay) = (duration(p, base), duration(p, max_delay));
            quote!(#p::Backoff::Decorrelated { base: #base, max_delay: #max_delay })
        }
    }
}

fn jitter(p: &TokenStream, j: Jitter) -> TokenStream {
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
