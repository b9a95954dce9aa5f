//! In-process tests of `expand`: expansion snapshots (one per option family), error
//! messages, and a property test that no token soup makes it panic.

use crate::expand::expand;
use proc_macro2::TokenStream;
use quote::quote;

/// The expansion, parsed with syn and printed with prettyplease.
fn pretty(args: TokenStream, item: TokenStream) -> String {
    let out = expand(args, item);
    let file: syn::File = syn::parse2(out.clone()).unwrap_or_else(|e| panic!("expansion does not parse: {e}\n{out}"));
    prettyplease::unparse(&file)
}

/// The messages of the `compile_error!`s in the expansion, in order.
fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
    let file: syn::File = syn::parse2(expand(args, item)).expect("an error expansion parses");
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Macro(m) if m.mac.path.segments.last().is_some_and(|s| s.ident == "compile_error") => {
                Some(m.mac.parse_body::<syn::LitStr>().expect("a string").value())
            }
            _ => None,
        })
        .collect()
}

/// The single error of an attribute on the `chat` method.
fn error(args: TokenStream) -> String {
    let errs = errors(args.clone(), chat());
    assert_eq!(errs.len(), 1, "{args}: {errs:#?}");
    errs.into_iter().next().unwrap_or_default()
}

fn chat() -> TokenStream {
    quote! {
        async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
            self.client.send(prompt).await
        }
    }
}

macro_rules! snapshot {
    ($name:ident, ($($args:tt)*)) => {
        snapshot!($name, ($($args)*), chat());
    };
    ($name:ident, ($($args:tt)*), $item:expr) => {
        #[test]
        fn $name() {
            let expanded = pretty(quote!($($args)*), $item);
            insta::with_settings!({ omit_expression => true, description => stringify!($($args)*) }, {
                insta::assert_snapshot!(expanded);
            });
        }
    };
}

#[test]
fn a_stream_takes_no_limiter() {
    let errs = errors(quote!(stream = "restart", limiter = OPENAI), chat());
    assert!(errs.iter().any(|e| e.contains("not paced by a `limiter`")), "{errs:?}");
}

snapshot!(expand_defaults, ());
snapshot!(expand_shared_limits, (limiter = endpoints::OPENAI, budget = OPENAI_BUDGET, adaptive = true));
snapshot!(expand_shared_adaptive, (adaptive = OPENAI_ERRORS));
snapshot!(
    expand_max_and_exponential,
    (max = 5, backoff = "exponential", base = "250ms", multiplier = 1.5, max_delay = "10s", min_delay = "100ms")
);
snapshot!(expand_fixed_backoff, (backoff = "fixed", delay = "1.5s", jitter = "none"));
snapshot!(expand_linear_backoff, (backoff = "linear", increment = "2s"));
snapshot!(expand_decorrelated_backoff, (backoff = "decorrelated", base = "100ms", max_delay = "1m"));
snapshot!(expand_backoff_none, (backoff = "none"));
snapshot!(expand_proportional_jitter, (jitter = "proportional", jitter_factor = 0.5));
snapshot!(expand_on_list, (on = [Connection, Timeout, RateLimited, 500, 502, 503, 504]));
snapshot!(
    expand_article_rules,
    (
        max = 6,
        on = [RateLimited, Connection, 500, 502, 503],
        rule(RateLimited, max = 3, backoff = "fixed", delay = "60s"),
        rule(Connection, max = 5, backoff = "exponential"),
        rule(502, max = 2),
        rule(500, max = 3, backoff = "exponential", base = "1s"),
        rule(503, max = 3, backoff = "exponential", base = "1s"),
    )
);
snapshot!(expand_time_limits, (deadline = "2m", attempt_timeout = "30s"));
snapshot!(expand_retry_after, (retry_after = true, max_retry_after = "30s"));
snapshot!(expand_retry_after_off, (retry_after = false));
snapshot!(expand_hooks, (validate = checks::non_empty, notify = log_retry, when = crate::is_transient));
snapshot!(expand_name_and_crate, (name = "openai.chat", crate = "my_app::reexports::llm_retry"));
snapshot!(
    expand_generic_impl_trait_return,
    (max = 2),
    quote! {
        pub(crate) async fn complete<'a, C: Client + ?Sized>(client: &'a C, prompt: impl AsRef<str>) -> Result<impl Display + 'a, C::Error>
        where
            C::Error: Classify,
        {
            client.complete(prompt.as_ref()).await
        }
    }
);
snapshot!(
    expand_async_trait_rewrite,
    (max = 2),
    quote! {
        fn chat<'life0, 'life1, 'async_trait>(
            &'life0 self,
            prompt: &'life1 str,
        ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<String, ApiError>> + ::core::marker::Send + 'async_trait>>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<Result<String, ApiError>> {
                    #[allow(unreachable_code)]
                    return __ret;
                }
                let __self = self;
                let prompt = prompt;
                let __ret: Result<String, ApiError> = { __self.client.send(prompt).await };
                #[allow(unreachable_code)]
                __ret
            })
        }
    }
);
snapshot!(
    expand_early_exit_body,
    (),
    quote! {
        async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
            if prompt.is_empty() {
                return Err(ApiError::from_status(400));
            }
            let reply = self.client.send(prompt).await?;
            Ok(reply.text)
        }
    }
);
snapshot!(
    expand_statements_body,
    (),
    quote! {
        async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
            let reply = self.client.send(prompt).await;
            println!("{prompt}");
            reply.map(|r| r.text)
        }
    }
);
snapshot!(expand_error_keeps_the_fn, (max = 0, backoff = "exponentail"));
snapshot!(
    expand_stream_continue,
    (stream = "continue", max = 5, deadline = "120s", first_chunk_timeout = "30s", idle_timeout = "15s"),
    quote! {
        async fn chat(
            client: &reqwest::Client,
            prompt: &str,
            model: String,
            resume: Resume,
        ) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
            let body = request(&model, prompt, resume.text());
            let resp = client.post(URL).json(&body).send().await?;
            Ok(text_deltas(resp.bytes_stream()))
        }
    }
);
snapshot!(
    expand_stream_named_type_method,
    (stream = "skip", notify = log_retry),
    quote! {
        pub async fn chat<'c, C: Client>(&self, client: &'c C, (a, b): (u32, u32)) -> Result<BoxStream<'static, Result<String, C::Error>>, C::Error> {
            client.open(self.url, a + b).await
        }
    }
);

fn stream_chat() -> TokenStream {
    quote! {
        async fn chat(prompt: &str) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
            open(prompt).await
        }
    }
}

#[test]
fn a_stream_fn_is_rewritten_even_next_to_attribute_errors() {
    // Callers call the rewritten signature (no `Resume`, no `.await`): emitting the original
    // fn would add follow-on errors at every call site.
    let out = expand(quote!(stream = "contine", attempt_timeout = "1s"), stream_chat());
    let file: syn::File = syn::parse2(out).expect("parses");
    assert_eq!(file.items.iter().filter(|i| matches!(i, syn::Item::Macro(_))).count(), 2);
    let Some(syn::Item::Fn(f)) = file.items.last() else { panic!("no fn") };
    assert!(f.sig.asyncness.is_none(), "the stream form, not the original");
}

#[test]
fn stream_messages_name_the_fix() {
    let cases: &[(TokenStream, TokenStream, &str)] = &[
        (quote!(stream = "contine"), stream_chat(), "did you mean \"continue\"?"),
        (quote!(stream = continue), stream_chat(), "expected a value"),
        (quote!(stream = "continue"), stream_chat(), "add `resume: llm_retry::Resume`"),
        (quote!(stream = "restart", attempt_timeout = "30s"), stream_chat(), "`first_chunk_timeout = \"30s\"`"),
        (quote!(stream = "restart", validate = check), stream_chat(), "a stream has none to check"),
        (quote!(first_chunk_timeout = "30s"), chat(), "add `stream = \"restart\"`"),
        (quote!(idle_timeout = "15s"), chat(), "applies only to streams"),
        (quote!(stream = "restart", idle_timeout = "0s"), stream_chat(), "a zero `idle_timeout`"),
        (quote!(stream = "restart"), chat(), "`String` is not a stream"),
        (
            quote!(stream = "restart"),
            quote!(
                async fn chat() -> impl Stream<Item = Result<String, E>> {
                    s
                }
            ),
            "return `Result<impl Stream<Item = Result<C, E>>, E>`",
        ),
        (
            quote!(stream = "restart"),
            quote!(
                async fn chat() -> Result<impl Stream<Item = String>, E> {
                    s
                }
            ),
            "return `Result<impl Stream<Item = Result<C, E>>, E>`",
        ),
        (
            quote!(stream = "restart"),
            quote!(
                async fn chat(&mut self) -> Result<impl Stream<Item = Result<String, E>>, E> {
                    s
                }
            ),
            "cannot hold `&mut self`",
        ),
        (
            quote!(stream = "restart"),
            quote!(
                async fn chat(self) -> Result<impl Stream<Item = Result<String, E>>, E> {
                    s
                }
            ),
            "take `&self`",
        ),
        (
            quote!(stream = "restart"),
            quote!(
                async fn chat(p: impl AsRef<str>) -> Result<impl Stream<Item = Result<String, E>>, E> {
                    s
                }
            ),
            "use a type parameter",
        ),
        (
            quote!(stream = "restart"),
            quote!(
                async fn chat(buf: &mut Vec<u8>) -> Result<impl Stream<Item = Result<String, E>>, E> {
                    s
                }
            ),
            "cannot hold a `&mut` argument",
        ),
        (
            quote!(stream = "restart"),
            quote!(
                fn chat() -> Result<impl Stream<Item = Result<String, E>>, E> {
                    s
                }
            ),
            "make it `async fn chat(...)`",
        ),
    ];
    for (args, item, want) in cases {
        let errs = errors(args.clone(), item.clone());
        assert_eq!(errs.len(), 1, "`{args}` on `{item}`: {errs:#?}");
        assert!(errs[0].contains(want), "`{args}`:\n  got:  {}\n  want: …{want}…", errs[0]);
    }
}

#[test]
fn every_error_of_one_attribute_is_reported() {
    let errs = errors(quote!(max = 0, backof = "fixed", on = [Auth], deadline = "soon"), chat());
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn messages_name_the_fix() {
    let cases: &[(TokenStream, &str)] = &[
        (quote!(max = 0), "use `max = 1` to disable retries"),
        (quote!(max = 1000), "the bound is 100"),
        (quote!(max = "3"), "write `max = 3`"),
        (quote!(retries = 3), "`retries = 3` is `max = 4`"),
        (quote!(max_attempts = 3), "did you mean `max`?"),
        (quote!(backof = "fixed"), "did you mean `backoff`?"),
        (quote!(max = 3, max = 4), "duplicate `max`"),
        (quote!(backoff = "exponentail"), "did you mean \"exponential\"?"),
        (quote!(backoff = fixed), "`backoff = \"fixed\"`"),
        (quote!(jitter = "ful"), "did you mean \"full\"?"),
        (quote!(delay = "1s"), "its first delay is `base`"),
        (quote!(backoff = "fixed", multiplier = 2.0), "only to `backoff = \"exponential\"`"),
        (quote!(multiplier = 0.5), "at least 1.0"),
        (quote!(multiplier = -2.0), "at least 1.0"),
        (quote!(multiplier = "2"), "`multiplier` takes a number"),
        (quote!(base = "2s", max_delay = "1s"), "below `base = \"2s\"`"),
        (quote!(base = "30s"), "above the default `max_delay` of 20s"),
        (quote!(deadline = "soon"), "does not start with a number"),
        (quote!(deadline = "5 fortnights"), "unknown unit `fortnights`"),
        (quote!(deadline = 30), "write `deadline = \"30ms\"` or `deadline = \"30s\"`"),
        (quote!(deadline = "0s"), "a zero `deadline`"),
        (quote!(deadline = "10s", attempt_timeout = "30s"), "can never fire"),
        (quote!(on = []), "`on = []` retries nothing"),
        (quote!(on = RateLimited), "write a list: `on = [RateLimited]`"),
        (quote!(on = [RateLimit]), "did you mean `RateLimited`?"),
        (quote!(on = [Auth]), "the credentials were refused"),
        (quote!(on = [401]), "401 means the credentials are wrong; retrying cannot fix it"),
        (quote!(on = [200]), "200 is not an error status"),
        (quote!(on = [700]), "700 is not an HTTP status"),
        (quote!(on = [503, 503]), "listed twice"),
        (quote!(on = [Timeout], rule(RateLimited, max = 2)), "add `RateLimited` to `on`"),
        (quote!(rule(RateLimited, max = 9)), "exceeds the call's `max = 4` (the default)"),
        (quote!(rule(RateLimited, deadline = "1s")), "cannot be set per kind"),
        (quote!(rule(RateLimited)), "changes nothing"),
        (quote!(rule(max = 3)), "starts with the kind or status"),
        (quote!(validate = "check"), "without quotes"),
        (quote!(retry_after = "false"), "without quotes"),
        (quote!(retry_after = false, max_retry_after = "1m"), "does nothing with `retry_after = false`"),
        (quote!(jitter_factor = 0.1), "only to `jitter = \"proportional\"`"),
        (quote!(backoff = "decorrelated", jitter = "full"), "draws its own jitter"),
        (quote!(name = ""), "cannot be empty"),
        (quote!(when = f, on = [Timeout]), "`when` replaces the `on` decision"),
        (quote!(max = 1, backoff = "fixed"), "does nothing with `max = 1`"),
        (quote!(5), "expected `key = value`"),
        (quote!(limiter = "OPENAI"), "`limiter = OPENAI`"),
        (quote!(limiter = 10), "the path of a `static Limiter`"),
        (quote!(budget = 0.1), "the path of a `static Budget`"),
        (quote!(budget = B, budget = B), "duplicate `budget`"),
        (quote!(adaptive = "true"), "without quotes: `adaptive = true`"),
        (quote!(adaptive = 3), "`adaptive` takes `true`"),
        (quote!(adaptive = true, adaptive = false), "duplicate `adaptive`"),
        (quote!(rate_limiter = OPENAI), "limiter"),
        (quote!(max = 1, budget = B), "`budget` does nothing with `max = 1`"),
        (quote!(max = 3,, on = [Timeout]), "remove the extra comma"),
    ];
    for (args, want) in cases {
        let got = error(args.clone());
        assert!(got.contains(want), "`{args}`:\n  got:  {got}\n  want: …{want}…");
    }
}

#[test]
fn seven_rules_are_too_many() {
    let errs = errors(
        quote!(
            on = [500, 502, 503, 504, 529, RateLimited, Timeout],
            rule(500, max = 2),
            rule(502, max = 2),
            rule(503, max = 2),
            rule(504, max = 2),
            rule(529, max = 2),
            rule(RateLimited, max = 2),
            rule(Timeout, max = 2)
        ),
        chat(),
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains("at most 6 rules"), "{errs:#?}");
}

#[test]
fn items_that_are_not_async_fns() {
    let cases: &[(TokenStream, &str)] = &[
        (
            quote!(
                struct Client;
            ),
            "not on a struct",
        ),
        (
            quote!(
                const N: u32 = 3;
            ),
            "not on a const",
        ),
        (
            quote!(
                fn chat() -> Result<(), E> {
                    Ok(())
                }
            ),
            "make it `async fn chat(...)`",
        ),
        (
            quote!(
                async fn chat() {}
            ),
            "returns nothing",
        ),
        (
            quote!(
                async fn chat() -> () {}
            ),
            "it is the unit type",
        ),
        (
            quote!(
                async fn chat() -> bool {
                    true
                }
            ),
            "it is a `bool`",
        ),
        (
            quote!(
                async fn chat() -> String {
                    String::new()
                }
            ),
            "it is text",
        ),
        (
            quote!(
                async fn chat() -> u32 {
                    0
                }
            ),
            "it is a number",
        ),
        (
            quote!(
                async fn chat(s: &str) -> &str {
                    s
                }
            ),
            "it is a reference",
        ),
        (
            quote!(
                async fn chat() -> (u8, u8) {
                    (0, 0)
                }
            ),
            "it is a tuple",
        ),
        (
            quote!(
                async fn chat() -> Option<String> {
                    None
                }
            ),
            "`None` says nothing",
        ),
        (
            quote!(
                async fn chat(&self) -> Result<String, E>;
            ),
            "needs the fn's body",
        ),
    ];
    for (item, want) in cases {
        let errs = errors(TokenStream::new(), item.clone());
        assert_eq!(errs.len(), 1, "{item}: {errs:#?}");
        assert!(errs[0].contains(want), "`{item}`:\n  got:  {}\n  want: …{want}…", errs[0]);
    }
}

#[test]
fn the_original_item_follows_the_errors() {
    let out = expand(quote!(max = 0), chat()).to_string();
    assert!(out.contains("compile_error"));
    assert!(out.ends_with(&chat().to_string()), "{out}");
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    /// Fragments an attribute is made of, valid and not.
    const PIECES: &[&str] = &[
        "max",
        "backoff",
        "delay",
        "base",
        "max_delay",
        "min_delay",
        "increment",
        "multiplier",
        "jitter",
        "jitter_factor",
        "on",
        "rule",
        "deadline",
        "attempt_timeout",
        "retry_after",
        "max_retry_after",
        "validate",
        "notify",
        "when",
        "name",
        "crate",
        "stream",
        "first_chunk_timeout",
        "idle_timeout",
        "\"continue\"",
        "\"skip\"",
        "bogus",
        "=",
        ",",
        ",",
        "=",
        "-",
        "::",
        "0",
        "1",
        "3",
        "100",
        "101",
        "4294967296",
        "99999999999999999999999",
        "2.0",
        "-1.0",
        "0.0",
        "1e999",
        "\"500ms\"",
        "\"1.5s\"",
        "\"0s\"",
        "\"fixed\"",
        "\"exponential\"",
        "\"decorrelated\"",
        "\"full\"",
        "\"proportional\"",
        "\"none\"",
        "\"\"",
        "\"x::y\"",
        "\"9999999999h\"",
        "true",
        "false",
        "RateLimited",
        "Auth",
        "Timeout",
        "429",
        "503",
        "401",
        "200",
        "700",
        "[]",
        "[RateLimited, 503]",
        "(RateLimited, max = 2)",
        "(502)",
        "()",
        "a::b",
        "'a",
        "#",
        "!",
        ";",
        "{}",
        "b\"x\"",
        "'c'",
    ];

    fn attribute() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|v| v.join(" "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn expand_never_panics(attr in attribute()) {
            // Unbalanced delimiters are not a token stream; rustc never hands us one.
            let Ok(args) = attr.parse::<TokenStream>() else { return Ok(()) };
            let out = expand(args, chat());
            let file: syn::File = syn::parse2(out.clone()).expect("the expansion parses");
            let has_error = out.to_string().contains("compile_error");
            let has_fn = file.items.iter().any(|i| matches!(i, syn::Item::Fn(f) if f.sig.ident == "chat"));
            prop_assert!(has_fn, "no fn in the expansion of `{}`", attr);
            if !has_error {
                prop_assert!(out.to_string().contains("__LLM_RETRY_SITE"));
            }
        }
    }
}
