//! Streaming retry: tokens printed live from the chaos LLM server while it cuts the stream.
//!
//! ```sh
//! cargo run --example stream
//! ```
//!
//! The server (in-process, 127.0.0.1) streams an OpenAI-style SSE reply a few characters at a
//! time and breaks it on purpose: a connection reset midway, an `event: error` after the 200, a
//! 503 on reconnect. The same reply is read in the three recovery modes. The text goes to
//! stdout; each retry is noted on stderr (dimmed on a terminal), outside the content. Every run
//! ends with the exact reply.

use futures::StreamExt;
use llm_retry::{
    ApiError, Backoff, Jitter, Policy, RetryExt, stream::StreamEvent, stream::StreamMode, stream::text_deltas,
};
use llm_retry_testkit::{ChaosServer, Fault};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const REPLY: &str = "A stream that breaks halfway is not lost: llm-retry reopens it and picks up \
                     where it stopped, so not one token is duplicated or dropped.";

const POLICY: Policy = match Policy::builder()
    .max_attempts(5)
    .backoff(Backoff::Exponential {
        base: Duration::from_millis(100),
        multiplier: 2.0,
        min_delay: Duration::ZERO,
        max_delay: Duration::from_millis(400),
    })
    .jitter(Jitter::Equal)
    .build()
{
    Ok(p) => p,
    Err(e) => panic!("{}", e.message()),
};

/// A note beside the text: on stderr, dimmed when stderr is a terminal.
fn note(text: &str) {
    let _ = std::io::stdout().flush();
    if std::io::stderr().is_terminal() {
        eprint!("\x1b[2m {text} \x1b[0m");
    } else {
        eprint!(" [{text}] ");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ApiError> {
    let server =
        ChaosServer::builder().reply(REPLY).chunk_chars(4).chunk_delay(Duration::from_millis(12)).start().await;
    let client = reqwest::Client::new();
    let url = server.chat_completions_url();

    for mode in [StreamMode::Continue, StreamMode::Skip, StreamMode::Restart] {
        server.script([
            Fault::StreamCut { after_chunks: 10 },
            Fault::Status(503),
            Fault::StreamError { after_chunks: 20 },
        ]);
        println!("\n== {} ==", mode.name());
        let (client, url) = (client.clone(), url.clone());
        let started = Instant::now();
        let stream = POLICY
            .call()
            .deadline(Duration::from_secs(10))
            .stream(move |resume| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let mut messages = vec![json!({"role": "user", "content": "Explain streaming retries."})];
                    if !resume.text().is_empty() {
                        // Continue mode: ask the model to continue its own partial answer.
                        messages.push(json!({"role": "assistant", "content": resume.text()}));
                    }
                    let body = json!({"model": "chaos-model", "stream": true, "messages": messages});
                    let resp = client.post(url).json(&body).send().await?;
                    if !resp.status().is_success() {
                        return Err(ApiError::from_reqwest_response(resp).await);
                    }
                    Ok(text_deltas(resp.bytes_stream()))
                }
            })
            .mode(mode)
            .first_chunk_timeout(Duration::from_secs(2))
            .idle_timeout(Duration::from_secs(1));
        let mut stream = std::pin::pin!(stream);

        let mut text = String::new();
        while let Some(event) = stream.next().await {
            match event? {
                StreamEvent::Chunk(c) => {
                    print!("{c}");
                    let _ = std::io::stdout().flush();
                    text.push_str(&c);
                }
                StreamEvent::Retrying { attempt, received, kind, delay, .. } => {
                    note(&format!(
                        "⟲ attempt {attempt}: {kind} after {} chars; retrying in {delay:.0?}",
                        received.chars
                    ));
                }
                StreamEvent::Reset => {
                    note("↺ reset: the partial text above is dropped");
                    println!();
                    text.clear();
                }
            }
        }
        println!();
        let verdict = if text == REPLY { "exact reply" } else { "TEXT DIFFERS" };
        note(&format!("{verdict}, {} chars in {:.2?}", text.chars().count(), started.elapsed()));
        eprintln!();
        assert_eq!(text, REPLY);
    }
    Ok(())
}
