//! Raw HTTP/1.1 over TCP, so that resets, cuts and hangs are observed exactly as they happen on the wire.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a raw exchange may take before it counts as hanging. Only hang tests ever wait this long
/// for nothing; everything else finishes in well under a millisecond on loopback.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// How the server's side of the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Orderly close (FIN).
    Eof,
    /// TCP RST.
    Reset,
    /// Nothing more came within the wait.
    TimedOut,
}

/// A raw response: what arrived, and how the connection ended.
#[derive(Debug)]
pub struct Raw {
    pub bytes: Vec<u8>,
    pub end: End,
}

/// A parsed response head and body.
#[derive(Debug)]
pub struct Parsed {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as sent (still chunked if it was).
    pub body: Vec<u8>,
}

impl Parsed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    }

    /// The body with chunked framing removed, and whether the terminating chunk arrived.
    pub fn payload(&self) -> (Vec<u8>, bool) {
        if self.is_chunked() { dechunk(&self.body) } else { (self.body.clone(), true) }
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.payload().0).expect("utf-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload().0).expect("JSON body")
    }
}

impl Raw {
    pub fn parse(&self) -> Option<Parsed> {
        let split = self.bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&self.bytes[..split]).ok()?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Parsed { status, headers, body: self.bytes[split + 4..].to_vec() })
    }

    /// The parsed response; panics with the raw bytes if there is none.
    pub fn response(&self) -> Parsed {
        self.parse().unwrap_or_else(|| {
            panic!("no HTTP response in {:?} ({:?})", String::from_utf8_lossy(&self.bytes), self.end)
        })
    }
}

/// Removes chunked framing; says whether the terminating zero-size chunk was there.
pub fn dechunk(mut body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else { return (out, false) };
        let Ok(size) = usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap_or("x").trim(), 16) else {
            return (out, false);
        };
        body = &body[eol + 2..];
        if size == 0 {
            return (out, true);
        }
        if body.len() < size + 2 {
            out.extend_from_slice(&body[..size.min(body.len())]);
            return (out, false);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Sends `request` on a fresh connection and reads until the server closes, resets, or `wait` passes.
pub async fn exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> Raw {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write request");
    read_all(&mut tcp, wait).await
}

/// Reads until close, reset, or `wait` passes.
pub async fn read_all(tcp: &mut TcpStream, wait: Duration) -> Raw {
    let mut bytes = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 8192];
    let end = loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => break End::TimedOut,
            Ok(Ok(0)) => break End::Eof,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => break End::Reset,
            Ok(Err(e)) => panic!("read failed: {e}"),
        }
    };
    Raw { bytes, end }
}

/// A `POST` with `connection: close`, so that a normal answer ends with EOF.
pub fn post(path: &str, body: &str, extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request.into_bytes()
}

pub const CHAT: &str = "/v1/chat/completions";
pub const MESSAGES: &str = "/v1/messages";

/// A chat body with one user message.
pub fn chat_body(prompt: &str, stream: bool) -> String {
    serde_json::json!({"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": prompt}]})
        .to_string()
}

/// An Anthropic messages body with one user message.
pub fn messages_body(prompt: &str, stream: bool) -> String {
    serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": prompt}]})
    .to_string()
}

/// One chat request on its own connection.
pub async fn chat(addr: SocketAddr, stream: bool) -> Raw {
    exchange(addr, &post(CHAT, &chat_body("Hi", stream), &[]), PATIENCE).await
}

/// One messages request on its own connection.
pub async fn messages(addr: SocketAddr, stream: bool) -> Raw {
    exchange(addr, &post(MESSAGES, &messages_body("Hi", stream), &[]), PATIENCE).await
}

/// The `data:` payloads of an SSE text, with the event name of each (`None` when unnamed).
pub fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}
