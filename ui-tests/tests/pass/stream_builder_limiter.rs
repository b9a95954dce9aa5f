//! The builder's streaming call takes a limiter: the endpoint's pacer paces a stream's
//! attempts as it paces any other call (issue #15).
use llm_retry::{ApiError, Limiter, Policy, RetryExt, stream::Resume};

static OPENAI: Limiter = Limiter::new("openai");

#[test]
fn compiles() {
    let stream =
        Policy::DEFAULT.call().limiter(&OPENAI).tokens(512).stream(|_: Resume| async {
            Ok::<_, ApiError>(futures::stream::iter([Ok::<String, ApiError>("hi".into())]))
        });
    drop(stream);
}
