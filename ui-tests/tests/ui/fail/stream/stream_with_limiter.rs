// A limiter does not pace streams: `Call::limiter(..).stream(..)` is refused at compile time
// rather than compiling into a stream that silently ignores the limiter.
use llm_retry::{ApiError, Limiter, Policy, stream::Resume, RetryExt};

static OPENAI: Limiter = Limiter::new("openai");

fn main() {
    let stream = Policy::DEFAULT.call().limiter(&OPENAI).stream(|_: Resume| async {
        Ok::<_, ApiError>(futures::stream::iter([Ok::<String, ApiError>("hi".into())]))
    });
    drop(stream);
}
