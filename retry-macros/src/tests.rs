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

/// The endpoint's pacer paces a stream's attempts too: `limiter` (and `tokens`) with `stream`.
#[test]
fn a_stream_takes_a_limiter() {
    let stream_fn = quote! {
        async fn chat(prompt: &str) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
            open(prompt).await
        }
    };
    let args = quote!(stream = "restart", limiter = OPENAI, tokens = 512);
    assert!(errors(args.clone(), stream_fn.clone()).is_empty());
    let out = expand(args, stream_fn).to_string();
    assert!(out.contains(". limiter (& OPENAI) . tokens (512) . stream ("), "{out}");
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
snapshot!(
    expand_fallback_chain,
    (fallback = [models::GPT4O, CLAUDE], move_on = [Auth], max = 3),
    quote! {
        async fn chat(target: &Target, prompt: &str) -> Result<String, ApiError> {
            send(target.name(), prompt).await
        }
    }
);

/// `fallback` needs the target parameter, once, by reference; the chain is a non-empty list
/// of paths, each once; `move_on` lists kinds that neither always move on nor are retried.
#[test]
fn fallback_misconfigurations_name_the_fix() {
    let with_target = || {
        quote!(
            async fn chat(target: &Target, prompt: &str) -> Result<String, ApiError> {
                Ok(prompt.into())
            }
        )
    };
    let one = |args: TokenStream, item: TokenStream| {
        let errs = errors(args.clone(), item);
        assert_eq!(errs.len(), 1, "{args}: {errs:#?}");
        errs.into_iter().next().unwrap_or_default()
    };
    assert!(one(quote!(fallback = []), with_target()).contains("`fallback = []` has no target"));
    assert!(one(quote!(fallback = [A, A]), with_target()).contains("`A` is listed twice"));
    assert!(one(quote!(fallback = ["A"]), with_target()).contains("without quotes: `A`"));
    assert!(one(quote!(fallback = A), with_target()).contains("`fallback = [A]`"));
    assert!(one(quote!(fallback = [A]), chat()).contains("add `target: &Target`"));
    let by_value = quote!(
        async fn chat(target: Target) -> Result<String, ApiError> {
            Ok(String::new())
        }
    );
    assert!(one(quote!(fallback = [A]), by_value).contains("by reference"));
    let misnamed = quote!(
        async fn chat(target: &str) -> Result<String, ApiError> {
            Ok(String::new())
        }
    );
    assert!(one(quote!(fallback = [A]), misnamed).contains("must be `&Target`"));
    let twice = quote!(
        async fn chat(a: &Target, b: &Target) -> Result<String, ApiError> {
            Ok(String::new())
        }
    );
    assert!(one(quote!(fallback = [A]), twice).contains("a second target parameter"));
    assert!(one(quote!(move_on = [Auth]), with_target()).contains("there is none"));
    assert!(one(quote!(fallback = [A], move_on = [QuotaExhausted]), with_target()).contains("always moves on"));
    assert!(
        one(quote!(fallback = [A], move_on = [RateLimited]), with_target()).contains("the default policy retries it")
    );
    assert!(
        one(quote!(fallback = [A], on = [Timeout], move_on = [Timeout]), with_target()).contains("`on` retries it")
    );
    assert!(one(quote!(fallback = [A], move_on = [Auths]), with_target()).contains("did you mean `Auth`"));
    assert!(one(quote!(fallback = [A], move_on = [401]), with_target()).contains("not statuses"));
    assert!(errors(quote!(fallback = [A, B], move_on = [Auth, BadRequest]), with_target()).is_empty());
}

snapshot!(
    expand_stream_fallback_chain,
    (stream = "continue", fallback = [GPT4O, CLAUDE]),
    quote! {
        async fn chat(prompt: &str, target: &Target, resume: Resume) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
            open(target.name(), prompt, resume.text()).await
        }
    }
);

snapshot!(
    expand_tokens,
    (limiter = OPENAI, tokens = estimate(prompt) + 500),
    quote! {
        async fn chat(prompt: &str) -> Result<String, ApiError> {
            send(prompt).await
        }
    }
);

/// `tokens = ...` takes a positive whole number or an expression, and needs a limiter.
#[test]
fn tokens_misconfigurations_name_the_fix() {
    assert!(error(quote!(tokens = 100)).contains("add `limiter = OPENAI`"));
    assert!(error(quote!(limiter = L, tokens = 0)).contains("at least one token"));
    assert!(error(quote!(limiter = L, tokens = -5)).contains("fewer than zero"));
    assert!(error(quote!(limiter = L, tokens = "estimate(prompt)")).contains("without quotes"));
    assert!(error(quote!(limiter = L, tokens = 1.5)).contains("a whole number or an expression"));
    for ok in [
        quote!(limiter = L, tokens = 4096),
        quote!(limiter = L, tokens = COST),
        quote!(limiter = L, tokens = self.budget(prompt) * 2),
    ] {
        assert!(errors(ok.clone(), chat()).is_empty(), "{ok}");
    }
}

snapshot!(expand_loaded_policy, (policy = config::CHAT_POLICY, deadline = "2m", limiter = OPENAI));

/// `policy = PATH` loads the whole policy, so every key that sets part of it is an error at
/// that key, and a rule at its `rule`.
#[test]
fn a_loaded_policy_takes_no_policy_key() {
    for key in [
        "max = 3",
        "backoff = \"fixed\"",
        "base = \"1s\"",
        "jitter = \"none\"",
        "on = [RateLimited]",
        "retry_after = false",
        "max_retry_after = \"30s\"",
        "rule(RateLimited, max = 2)",
    ] {
        let args: TokenStream = format!("policy = CHAT, {key}").parse().unwrap();
        let e = error(args);
        assert!(e.contains("`policy = CHAT` loads the whole policy at startup"), "{key}: {e}");
    }
    // The call's own options combine with it.
    let args =
        quote!(policy = CHAT, deadline = "2m", attempt_timeout = "30s", name = "chat", when = is_transient, budget = B);
    assert!(errors(args, chat()).is_empty());
    assert!(error(quote!(policy = "CHAT")).contains("`policy` takes the path"));
}
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
        (quote!(stream = "continue"), stream_chat(), "add `resume: llm_retry::stream::Resume`"),
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
        (quote!(max = 5000000000), "more attempts than a call can count"),
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

/// Nothing of a plain `async fn`'s body is hoisted out of the retry loop (the prelude-hoisting
/// bug: a body starting `let mut prompt = prompt;` bound once per call, so each retry saw what
/// the previous attempt left); of `#[async_trait]`'s rewrite, exactly async-trait's own prelude
/// is, and the user's body stays in the loop.
mod hoisting {
    use super::*;
    use proptest::prelude::*;
    use syn::{Block, Expr, Stmt};

    /// The parameters the generated statements use, `self` aside.
    const NAMES: &[&str] = &["prompt", "n", "items", "__x"];

    /// Statements a body may start with, over the parameter `X` (and another, `Y`): rebindings
    /// of every kind, mutations, nested blocks, and look-alikes of async-trait's prelude.
    const TEMPLATES: &[&str] = &[
        "let X = X;",
        "let mut X = X;",
        "let mut X = X; X.push_str(\" Answer briefly.\");",
        "let X = X.clone();",
        "let X: u32 = X;",
        "let Y = X;",
        "X.push(1);",
        "X += 1;",
        "let __self = self;",
        "let mut __self = self;",
        "let __ret = X;",
        "{ let X = X; }",
        "{ let mut X = X; X += 1; }",
        "let X = { let X = X; X };",
        "let _ = &X;",
        "#[allow(unused)] let X = X;",
        "drop(X);",
        "if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<Result<String, ApiError>> { #[allow(unreachable_code)] return __ret; }",
    ];

    /// Tails, with and without an early exit.
    const TAILS: &[&str] = &["send(&prompt).await", "Ok(String::new())", "let r = send(&prompt).await?; Ok(r)"];

    fn statement() -> impl Strategy<Value = String> {
        (prop::sample::select(TEMPLATES), prop::sample::select(NAMES), prop::sample::select(NAMES))
            .prop_map(|(t, x, y)| t.replace('X', x).replace('Y', y))
    }

    fn body() -> impl Strategy<Value = String> {
        (prop::collection::vec(statement(), 0..6), prop::sample::select(TAILS))
            .prop_map(|(v, tail)| v.join(" ") + " " + tail)
    }

    fn stmts(body: &str) -> Vec<Stmt> {
        let block: Block = syn::parse_str(&format!("{{ {body} }}")).unwrap_or_else(|e| panic!("`{body}`: {e}"));
        block.stmts
    }

    fn text(stmts: &[Stmt]) -> Vec<String> {
        stmts.iter().map(|s| quote!(#s).to_string()).collect()
    }

    /// The expansion's fn.
    fn expanded_fn(args: TokenStream, item: TokenStream) -> syn::ItemFn {
        let out = expand(args, item);
        assert!(!out.to_string().contains("compile_error"), "{out}");
        let file: syn::File =
            syn::parse2(out.clone()).unwrap_or_else(|e| panic!("expansion does not parse: {e}\n{out}"));
        match file.items.as_slice() {
            [syn::Item::Fn(f)] => f.clone(),
            _ => panic!("not one fn: {out}"),
        }
    }

    /// The statements before the retry `loop`, without the generated ones (the site's `static`
    /// and `let mut __llm_retry = ..`), and the loop's body.
    fn split_at_loop(stmts: &[Stmt]) -> (Vec<String>, &Block) {
        let Some((at, lp)) = stmts.iter().enumerate().find_map(|(i, s)| match s {
            Stmt::Expr(Expr::Loop(lp), _) => Some((i, lp)),
            _ => None,
        }) else {
            panic!("no loop in {}", quote!(#(#stmts)*))
        };
        let before = stmts[..at]
            .iter()
            .filter(|s| match s {
                Stmt::Item(syn::Item::Static(_)) => false,
                Stmt::Local(l) => !matches!(&l.pat, syn::Pat::Ident(p) if p.ident == "__llm_retry"),
                _ => true,
            })
            .cloned()
            .collect::<Vec<_>>();
        (text(&before), &lp.body)
    }

    /// Every statement list inside `block`, each printed, and each `let`'s initialiser as a list
    /// of one (a body that is one expression is bound directly).
    fn lists(block: &Block, out: &mut Vec<Vec<String>>) {
        out.push(text(&block.stmts));
        for stmt in &block.stmts {
            match stmt {
                Stmt::Local(l) => {
                    if let Some(init) = &l.init {
                        let expr = &init.expr;
                        out.push(vec![quote!(#expr).to_string()]);
                        expr_lists(&init.expr, out);
                    }
                }
                Stmt::Expr(e, _) => expr_lists(e, out),
                _ => {}
            }
        }
    }

    fn expr_lists(expr: &Expr, out: &mut Vec<Vec<String>>) {
        match expr {
            Expr::Block(b) => lists(&b.block, out),
            Expr::Async(a) => lists(&a.block, out),
            Expr::Loop(l) => lists(&l.body, out),
            Expr::Await(a) => expr_lists(&a.base, out),
            Expr::Paren(p) => expr_lists(&p.expr, out),
            Expr::Let(l) => expr_lists(&l.expr, out),
            Expr::Call(c) => c.args.iter().for_each(|a| expr_lists(a, out)),
            Expr::MethodCall(m) => {
                expr_lists(&m.receiver, out);
                m.args.iter().for_each(|a| expr_lists(a, out));
            }
            Expr::If(i) => {
                expr_lists(&i.cond, out);
                lists(&i.then_branch, out);
                if let Some((_, e)) = &i.else_branch {
                    expr_lists(e, out);
                }
            }
            Expr::Match(m) => {
                expr_lists(&m.expr, out);
                m.arms.iter().for_each(|a| expr_lists(&a.body, out));
            }
            _ => {}
        }
    }

    /// Whether `want`, in order and together, is one of the statement lists inside `block`.
    fn holds(block: &Block, want: &[Stmt]) -> bool {
        let want = text(want);
        let mut found = Vec::new();
        lists(block, &mut found);
        found.iter().any(|list| list.windows(want.len().max(1)).any(|w| w == want.as_slice()))
    }

    /// The attribute's forms: no key (a plain block or, with an early exit, an async block),
    /// a `max` (the same), and a `deadline` (the `attempt` form).
    fn forms() -> [TokenStream; 3] {
        [quote!(), quote!(max = 3), quote!(deadline = "1s")]
    }

    fn plain_fn(body: &[Stmt]) -> TokenStream {
        quote! {
            async fn chat(&self, prompt: String, n: u32, items: Vec<u32>, __x: u8) -> Result<String, ApiError> {
                #(#body)*
            }
        }
    }

    fn assert_nothing_hoisted(body: &str) -> Result<(), TestCaseError> {
        let user = stmts(body);
        for args in forms() {
            let f = expanded_fn(args.clone(), plain_fn(&user));
            let (before, inside) = split_at_loop(&f.block.stmts);
            prop_assert!(before.is_empty(), "`{}` on `{}` hoisted {:?}", args, body, before);
            prop_assert!(
                holds(inside, &user),
                "`{}`: `{}` is not whole inside the loop:\n{}",
                args,
                body,
                quote!(#inside)
            );
        }
        Ok(())
    }

    #[test]
    fn the_reported_bodies_stay_in_the_loop() {
        for body in [
            "let mut prompt = prompt; prompt.push_str(\" Answer briefly.\"); send(&prompt).await",
            "let mut n = n; n += 1; Ok(n.to_string())",
            "let mut prompt = prompt; prompt.push_str(\" Answer briefly.\"); let r = send(&prompt).await?; Ok(r)",
            "let p = prompt; consume(p)",
            "let __self = self; __self.send(&prompt).await",
            "let y = __x; Ok(y.to_string())",
        ] {
            assert_nothing_hoisted(body).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// One parameter of the async fn async-trait rewrote: as it appears in the rewritten
    /// signature, and the rebinding async-trait puts in the boxed future, if any.
    const ASYNC_TRAIT_PARAMS: &[(&str, &str)] = &[
        ("prompt: String", "let prompt = prompt;"),
        ("n: u32", "let mut n = n;"), // `mut n: u32`: async-trait moves the `mut` to the binding
        ("text: &'life1 str", ""),    // a reference is not rebound
        ("__arg3: (u8, u8)", "let (a, b) = { let __arg3 = __arg3; __arg3 };"), // `(a, b): (u8, u8)`
        ("#[cfg(all())] items: Vec<u32>", "#[cfg(all())] let items = items;"),
    ];

    const RECEIVERS: &[(&str, &str)] = &[
        ("", ""),
        ("&'life0 self,", "let __self = self;"),
        ("&'life0 mut self,", "let mut __self = self;"),
        ("self,", "let __self = self;"),
    ];

    /// async-trait 0.1's rewrite of `async fn chat(<params>) -> Result<String, ApiError> { body }`.
    fn async_trait_fn(receiver: &str, params: &[&str], prelude: &[Stmt], body: &[Stmt]) -> TokenStream {
        let receiver: TokenStream = receiver.parse().expect("a receiver");
        let params: Vec<TokenStream> = params.iter().map(|p| p.parse().expect("a parameter")).collect();
        let (anchor, decls) = prelude.split_first().expect("the anchor");
        quote! {
            fn chat<'life0, 'life1, 'async_trait>(
                #receiver #(#params),*
            ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<String, ApiError>> + ::core::marker::Send + 'async_trait>>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async move {
                    #anchor
                    #(#decls)*
                    let __ret: Result<String, ApiError> = { #(#body)* };
                    #[allow(unreachable_code)]
                    __ret
                })
            }
        }
    }

    const ANCHOR: &str = "if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<Result<String, ApiError>> { #[allow(unreachable_code)] return __ret; }";

    fn assert_only_async_trait_prelude_hoisted(
        receiver: (&str, &str),
        params: &[(&str, &str)],
        body: &str,
    ) -> Result<(), TestCaseError> {
        let decls = std::iter::once(receiver.1).chain(params.iter().map(|p| p.1)).collect::<Vec<_>>().join(" ");
        let prelude = stmts(&format!("{ANCHOR} {decls}"));
        let user = stmts(body);
        let names = params.iter().map(|p| p.0).collect::<Vec<_>>();
        let item = async_trait_fn(receiver.0, &names, &prelude, &user);
        for args in forms() {
            let f = expanded_fn(args.clone(), item.clone());
            let Some(Stmt::Expr(Expr::Call(pin), None)) = f.block.stmts.last() else { panic!("no Box::pin") };
            let Some(Expr::Async(inner)) = pin.args.first() else { panic!("no async block") };
            let (before, inside) = split_at_loop(&inner.block.stmts);
            prop_assert_eq!(&before, &text(&prelude), "`{}` on `{}`", args, item);
            prop_assert!(
                holds(inside, &user),
                "`{}`: the user's `{}` is not whole inside the loop:\n{}",
                args,
                body,
                quote!(#inside)
            );
            let ret = stmts("let __ret: Result<String, ApiError> = { BODY }; #[allow(unreachable_code)] __ret");
            let ret = [ret[0].clone(), ret[1].clone()];
            let ret_text = text(&ret);
            let mut found = Vec::new();
            lists(inside, &mut found);
            prop_assert!(
                found
                    .iter()
                    .any(|l| l.len() >= 2 && l[l.len() - 1] == ret_text[1] && l[l.len() - 2].starts_with("let __ret")),
                "`{}`: async-trait's `let __ret = {{ .. }}; __ret` is not in the loop",
                args
            );
        }
        Ok(())
    }

    #[test]
    fn async_trait_keeps_a_user_body_that_starts_with_a_rebinding_in_the_loop() {
        let body = "let mut prompt = prompt; prompt.push_str(\" Answer briefly.\"); __self.send(&prompt).await";
        assert_only_async_trait_prelude_hoisted(RECEIVERS[1], &[ASYNC_TRAIT_PARAMS[0]], body)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// `Box::pin(async move { .. })` written by hand, or another macro's rewrite around
    /// async-trait's, is not async-trait's layout: nothing is hoisted.
    #[test]
    fn a_boxed_future_not_laid_out_by_async_trait_hoists_nothing() {
        let bodies = [
            // By hand: rebindings, but no type anchor.
            "let prompt = prompt; let __self = self; __self.send(&prompt).await",
            // The anchor, then a rebinding of something that is not a parameter.
            &format!(
                "{ANCHOR} let other = other; let __ret: Result<String, ApiError> = {{ send(&other).await }}; __ret"
            ),
            // The anchor and rebindings, but not followed by async-trait's `let __ret`.
            &format!("{ANCHOR} let prompt = prompt; send(&prompt).await"),
            // The parameters out of order.
            &format!(
                "{ANCHOR} let n = n; let prompt = prompt; let __ret: Result<String, ApiError> = {{ send(&prompt).await }}; __ret"
            ),
            // A rebinding to something else.
            &format!("{ANCHOR} let prompt = n; let __ret: Result<String, ApiError> = {{ send(&prompt).await }}; __ret"),
            // A rebinding twice.
            &format!(
                "{ANCHOR} let prompt = prompt; let prompt = prompt; let __ret: Result<String, ApiError> = {{ send(&prompt).await }}; __ret"
            ),
        ];
        for body in bodies {
            let user = stmts(body);
            let item = quote! {
                fn chat<'life0, 'async_trait>(&'life0 self, prompt: String, n: u32)
                    -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<String, ApiError>> + ::core::marker::Send + 'async_trait>>
                {
                    Box::pin(async move { #(#user)* })
                }
            };
            for args in forms() {
                let f = expanded_fn(args.clone(), item.clone());
                let Some(Stmt::Expr(Expr::Call(pin), None)) = f.block.stmts.last() else { panic!("no Box::pin") };
                let Some(Expr::Async(inner)) = pin.args.first() else { panic!("no async block") };
                let (before, inside) = split_at_loop(&inner.block.stmts);
                assert!(before.is_empty(), "`{args}` on `{body}` hoisted {before:?}");
                assert!(holds(inside, &user), "`{args}`: `{body}` is not whole inside the loop");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn a_plain_async_fn_hoists_nothing(body in body()) {
            assert_nothing_hoisted(&body)?;
        }

        #[test]
        fn async_trait_hoists_exactly_its_prelude(
            receiver in prop::sample::select(RECEIVERS),
            params in prop::sample::subsequence(ASYNC_TRAIT_PARAMS, 0..=ASYNC_TRAIT_PARAMS.len()),
            body in body(),
        ) {
            assert_only_async_trait_prelude_hoisted(receiver, &params, &body)?;
        }
    }
}

/// The attribute and the builder accept and reject exactly the same policies: random settings,
/// written once as attribute keys and once as builder calls, are an error in both or in
/// neither. (The attribute's key-level lints, such as a backoff key with `max = 1` or a jitter
/// that a decorrelated backoff ignores, say a written key does nothing; the builder has no
/// notion of a written key, so the settings drawn here never trip them.)
mod rulebook_agreement {
    use super::*;
    use llm_retry_rules::{Backoff, ErrorKind, Jitter, Policy, PolicyBuilder, RetryOn, Rule};
    use proptest::prelude::*;
    use std::time::Duration;

    const MS: u64 = 1;

    #[derive(Debug, Clone)]
    struct Settings {
        max: Option<u32>,
        backoff: Option<(&'static str, [u64; 3], f64)>,
        jitter: Option<(&'static str, f64)>,
        on: Option<Vec<&'static str>>,
        rules: Vec<(&'static str, Option<u32>, Option<u64>)>,
        max_retry_after: Option<u64>,
    }

    fn settings() -> impl Strategy<Value = Settings> {
        let ms = prop_oneof![Just(0u64), 1u64..5, Just(500), Just(20_000), Just(30_000)];
        let backoff = (
            prop::sample::select(&["none", "fixed", "linear", "exponential", "decorrelated"][..]),
            [ms.clone(), ms.clone(), ms.clone()],
            prop::sample::select(&[0.5, 1.0, 2.0, -1.0][..]),
        );
        let jitter = (
            prop::sample::select(&["none", "full", "equal", "proportional"][..]),
            prop::sample::select(&[0.0, 0.25, 10.0, 10.5, -1.0][..]),
        );
        let target = prop::sample::select(&["RateLimited", "Server", "Timeout", "Connection", "503", "502"][..]);
        let rule = (
            target.clone(),
            prop::option::of(0u32..8),
            prop::option::of(prop_oneof![Just(0u64), Just(10), Just(60_000)]),
        );
        (
            prop::option::of(prop_oneof![Just(0u32), 2u32..8, Just(70_000)]),
            prop::option::of(backoff),
            prop::option::of(jitter),
            prop::option::of(prop::sample::subsequence(&["RateLimited", "Timeout", "Server", "503"][..], 1..=4)),
            prop::collection::vec(rule, 0..8),
            prop::option::of(prop_oneof![Just(0u64), Just(1_000)]),
        )
            .prop_map(|(max, backoff, jitter, on, rules, max_retry_after)| Settings {
                max,
                backoff,
                jitter,
                on,
                rules,
                max_retry_after,
            })
    }

    fn kind(name: &str) -> Option<ErrorKind> {
        ErrorKind::from_name(name)
    }

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms * MS)
    }

    fn backoff(name: &str, [a, b, c]: [u64; 3], m: f64) -> (String, Backoff) {
        match name {
            "none" => ("backoff = \"none\"".into(), Backoff::None),
            "fixed" => (format!("backoff = \"fixed\", delay = \"{a}ms\""), Backoff::Fixed { delay: d(a) }),
            "linear" => (
                format!("backoff = \"linear\", base = \"{a}ms\", increment = \"{b}ms\", max_delay = \"{c}ms\""),
                Backoff::Linear { base: d(a), increment: d(b), max_delay: d(c) },
            ),
            "exponential" => (
                format!(
                    "backoff = \"exponential\", base = \"{a}ms\", multiplier = {m:?}, min_delay = \"{b}ms\", max_delay = \"{c}ms\""
                ),
                Backoff::Exponential { base: d(a), multiplier: m, min_delay: d(b), max_delay: d(c) },
            ),
            _ => (
                format!("backoff = \"decorrelated\", base = \"{a}ms\", max_delay = \"{c}ms\""),
                Backoff::Decorrelated { base: d(a), max_delay: d(c) },
            ),
        }
    }

    fn jitter(name: &str, factor: f64) -> (String, Jitter) {
        match name {
            "none" => ("jitter = \"none\"".into(), Jitter::None),
            "full" => ("jitter = \"full\"".into(), Jitter::Full),
            "equal" => ("jitter = \"equal\"".into(), Jitter::Equal),
            _ => (format!("jitter = \"proportional\", jitter_factor = {factor:?}"), Jitter::Proportional { factor }),
        }
    }

    /// The settings as attribute keys and as the builder calls that say the same.
    fn both_ways(s: &Settings) -> (String, PolicyBuilder) {
        let mut keys = Vec::new();
        let mut b = Policy::builder();
        if let Some(n) = s.max {
            keys.push(format!("max = {n}"));
            b = b.max_attempts(n);
        }
        let backoff_name = s.backoff.map(|(name, ..)| name);
        if let Some((name, v, m)) = s.backoff {
            let (k, backoff) = backoff(name, v, m);
            keys.push(k);
            b = b.backoff(backoff);
        }
        // A jitter means nothing to `none` and is drawn by `decorrelated` itself: those are
        // the attribute's lints, not the rulebook's.
        if let (Some((name, f)), None | Some("fixed" | "linear" | "exponential")) = (s.jitter, backoff_name) {
            let (k, jitter) = jitter(name, f);
            keys.push(k);
            b = b.jitter(jitter);
        }
        if let Some(on) = &s.on {
            keys.push(format!("on = [{}]", on.join(", ")));
            b = b.retry_on(on.iter().fold(RetryOn::none(), |set, t| match t.parse::<u16>() {
                Ok(status) => set.status(status),
                Err(_) => set.kind(kind(t).unwrap()),
            }));
        }
        for (target, max, delay) in &s.rules {
            let mut rule = match target.parse::<u16>() {
                Ok(status) => Rule::status(status),
                Err(_) => Rule::kind(kind(target).unwrap()),
            };
            let mut k = format!("rule({target}");
            if let Some(n) = max {
                k.push_str(&format!(", max = {n}"));
                rule = rule.max_attempts(*n);
            }
            match delay {
                Some(ms) => {
                    k.push_str(&format!(", backoff = \"fixed\", delay = \"{ms}ms\""));
                    rule = rule.backoff(Backoff::Fixed { delay: d(*ms) });
                }
                // A rule must change something.
                None if max.is_none() => {
                    k.push_str(", backoff = \"none\"");
                    rule = rule.backoff(Backoff::None);
                }
                None => {}
            }
            keys.push(k + ")");
            b = b.rule(rule);
        }
        if let Some(ms) = s.max_retry_after {
            keys.push(format!("max_retry_after = \"{ms}ms\""));
            b = b.max_retry_after(d(ms));
        }
        (keys.join(", "), b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_attribute_and_the_builder_reject_the_same_settings(s in settings()) {
            // `max = 1` with backoff keys is an attribute lint (the keys do nothing).
            prop_assume!(s.max != Some(1));
            let (keys, builder) = both_ways(&s);
            let args: TokenStream = keys.parse().unwrap();
            let attribute = errors(args, chat());
            let problems = builder.problems();
            prop_assert_eq!(
                attribute.is_empty(),
                problems.is_empty(),
                "`#[llm_retry({})]`: attribute says {:#?}, builder says {:?}",
                keys,
                attribute,
                problems
            );
        }
    }

    /// The same invalid settings, by name, through both: each is one error in the attribute
    /// and the named problem in the builder.
    #[test]
    fn each_problem_is_an_error_both_ways() {
        use llm_retry_rules::Problem;
        let ms = Duration::from_millis;
        let exp = |base, m, min, max| Backoff::Exponential {
            base: ms(base),
            multiplier: m,
            min_delay: ms(min),
            max_delay: ms(max),
        };
        let rl = Rule::kind(ErrorKind::RateLimited);
        let b = Policy::builder;
        let cases: Vec<(TokenStream, PolicyBuilder, Problem)> = vec![
            (quote!(max = 0), b().max_attempts(0), Problem::ZeroAttempts),
            (quote!(backoff = "fixed", delay = "0s"), b().backoff(Backoff::Fixed { delay: ms(0) }), Problem::ZeroDelay),
            (quote!(base = "0s"), b().backoff(exp(0, 2.0, 0, 20_000)), Problem::ZeroBase),
            (quote!(max_delay = "0s"), b().backoff(exp(500, 2.0, 0, 0)), Problem::ZeroMaxDelay),
            (quote!(base = "2s", max_delay = "1s"), b().backoff(exp(2_000, 2.0, 0, 1_000)), Problem::MaxDelayBelowBase),
            (quote!(base = "30s"), b().backoff(exp(30_000, 2.0, 0, 20_000)), Problem::MaxDelayBelowBase),
            (
                quote!(min_delay = "2s", max_delay = "1s"),
                b().backoff(exp(500, 2.0, 2_000, 1_000)),
                Problem::MinDelayAboveMaxDelay,
            ),
            (quote!(multiplier = 0.5), b().backoff(exp(500, 0.5, 0, 20_000)), Problem::InvalidMultiplier),
            (
                quote!(jitter = "proportional", jitter_factor = 11.0),
                b().jitter(Jitter::Proportional { factor: 11.0 }),
                Problem::InvalidJitterFactor,
            ),
            (quote!(max_retry_after = "0s"), b().max_retry_after(Duration::ZERO), Problem::ZeroMaxRetryAfter),
            (quote!(rule(RateLimited, max = 0)), b().rule(rl.max_attempts(0)), Problem::ZeroRuleAttempts),
            (quote!(rule(RateLimited, max = 5)), b().rule(rl.max_attempts(5)), Problem::RuleAttemptsAboveMax),
            (
                quote!(max = 70000, rule(RateLimited, max = 66000)),
                b().max_attempts(70_000).rule(rl.max_attempts(66_000)),
                Problem::RuleAttemptsTooMany,
            ),
            (
                quote!(rule(RateLimited, max = 2), rule(RateLimited, max = 3)),
                b().rule(rl.max_attempts(2)).rule(rl.max_attempts(3)),
                Problem::DuplicateRule,
            ),
            (
                quote!(on = [Timeout], rule(RateLimited, max = 2)),
                b().retry_on(RetryOn::none().kind(ErrorKind::Timeout)).rule(rl.max_attempts(2)),
                Problem::RuleForUnretried,
            ),
        ];
        for (args, builder, problem) in cases {
            assert_eq!(builder.build().unwrap_err(), problem, "builder: {args}");
            let errs = errors(args.clone(), chat());
            assert_eq!(errs.len(), 1, "attribute `{args}`: {errs:#?}");
        }
    }
}

/// The macro's rustdoc lists every key the attribute accepts: its table is the rulebook's
/// reference, one row per key.
#[test]
fn the_macro_doc_lists_every_key() {
    assert!(include_str!("lib.rs").contains("#[doc = llm_retry_rules::key_reference!()]"));
    let rows: Vec<&str> = llm_retry_rules::key_reference!().lines().collect();
    assert_eq!(rows.len(), llm_retry_rules::keys::TOP.len());
    for (row, key) in rows.iter().zip(llm_retry_rules::keys::TOP) {
        let example = llm_retry_rules::keys::example(key);
        assert!(!example.is_empty(), "`{key}` has no example");
        assert!(row.starts_with(&format!("| `{key}` | `{example}` | ")), "{row}");
    }
}

/// A syntax error in the body is rustc's to report: the macro checks only the signature, adds no
/// error of its own, and hands the fn back unchanged.
#[test]
fn a_syntax_error_in_the_body_gets_no_error_of_ours() {
    let item = quote! {
        async fn chat(prompt: &str) -> Result<String, ApiError> {
            let x = ;
            Ok(prompt.to_owned())
        }
    };
    let out = expand(quote!(max = 3), item.clone());
    assert_eq!(out.to_string(), item.to_string());
    // A broken signature is still ours to report.
    let errs = errors(
        quote!(),
        quote!(
            struct NotAFn;
        ),
    );
    assert_eq!(errs.len(), 1);
}

/// The attribute and configuration files read the backoff and jitter keys the same way (the
/// rulebook's `strategy`): every combination of a backoff name, the value keys written, a
/// jitter name and a `jitter_factor`, in the attribute's scope and in a rule's, is accepted
/// by both or refused by both, and the loader's message is one of the attribute's.
mod loader_agreement {
    use super::*;
    use llm_retry_rules::Policy;

    const BACKOFFS: [Option<&str>; 6] =
        [None, Some("none"), Some("fixed"), Some("linear"), Some("exponential"), Some("decorrelated")];
    const JITTERS: [Option<&str>; 6] =
        [None, Some("none"), Some("full"), Some("equal"), Some("proportional"), Some("decorrelated")];
    /// The value keys, each with a value the rulebook accepts with every backoff it applies to
    /// (written alike in the attribute and in JSON).
    const VALUES: [(&str, &str); 6] = [
        ("delay", "\"1s\""),
        ("base", "\"1s\""),
        ("max_delay", "\"30s\""),
        ("min_delay", "\"1s\""),
        ("increment", "\"1s\""),
        ("multiplier", "3.0"),
    ];

    /// One scope's keys and their values: the backoff, the value keys whose bit is set in
    /// `values`, the jitter, and `jitter_factor`.
    fn combination(backoff: Option<&str>, values: u32, jitter: Option<&str>, factor: bool) -> Vec<(String, String)> {
        let mut keys = Vec::new();
        if let Some(b) = backoff {
            keys.push(("backoff".to_owned(), format!("{b:?}")));
        }
        for (i, (k, v)) in VALUES.iter().enumerate() {
            if values & (1 << i) != 0 {
                keys.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        if let Some(j) = jitter {
            keys.push(("jitter".to_owned(), format!("{j:?}")));
        }
        if factor {
            keys.push(("jitter_factor".to_owned(), "0.5".to_owned()));
        }
        keys
    }

    /// The attribute's errors and the loader's, for `keys` at the top or in a rule.
    fn both(keys: &[(String, String)], in_rule: bool) -> (String, Vec<String>, Result<Policy, String>) {
        let attr = keys.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>();
        let json = keys.iter().map(|(k, v)| format!("{k:?}: {v}")).collect::<Vec<_>>();
        let (attr, json) = if in_rule {
            let attr = std::iter::once("rule(RateLimited".to_owned()).chain(attr).collect::<Vec<_>>().join(", ") + ")";
            let json = std::iter::once("\"on\": \"RateLimited\"".to_owned()).chain(json).collect::<Vec<_>>();
            (attr, format!("{{\"rule\": [{{{}}}]}}", json.join(", ")))
        } else {
            (attr.join(", "), format!("{{{}}}", json.join(", ")))
        };
        let args: TokenStream = attr.parse().unwrap_or_else(|e| panic!("{attr}: {e}"));
        (attr, errors(args, chat()), load(&json))
    }

    /// The policy `json` describes, or the loader's message (read from a JSON value, so that
    /// it carries no line and column).
    fn load(json: &str) -> Result<Policy, String> {
        let value: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn agree(attr: &str, errors: &[String], loaded: &Result<Policy, String>) {
        match loaded {
            Ok(_) => assert!(errors.is_empty(), "`{attr}`: the loader accepts, the attribute says {errors:#?}"),
            Err(e) => assert!(
                errors.iter().any(|m| e.ends_with(m.as_str())),
                "`{attr}`: the loader says {e:?}, the attribute {errors:#?}"
            ),
        }
    }

    #[test]
    fn every_combination_of_strategy_keys_is_read_alike() {
        let (mut accepted, mut refused) = (0, 0);
        for in_rule in [false, true] {
            for backoff in BACKOFFS {
                for values in 0..(1u32 << VALUES.len()) {
                    for jitter in JITTERS {
                        for factor in [false, true] {
                            let keys = combination(backoff, values, jitter, factor);
                            let (attr, errors, loaded) = both(&keys, in_rule);
                            agree(&attr, &errors, &loaded);
                            if loaded.is_ok() { accepted += 1 } else { refused += 1 }
                        }
                    }
                }
            }
        }
        // Both outcomes are drawn, in numbers: the test can tell a refusal from an acceptance.
        assert!(accepted > 500 && refused > 500, "{accepted} accepted, {refused} refused");
    }

    #[test]
    fn an_empty_retry_set_and_a_rule_that_sets_nothing_are_refused_alike() {
        for (attr, json) in
            [("on = []", r#"{"on": []}"#), ("rule(RateLimited)", r#"{"rule": [{"on": "RateLimited"}]}"#)]
        {
            let errors = errors(attr.parse().unwrap(), chat());
            let loaded = load(json);
            assert!(loaded.is_err(), "{json}");
            agree(attr, &errors, &loaded);
        }
    }
}
