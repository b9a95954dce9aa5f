//! What the server does to one request: [`Fault`] and the rate-limit hints of [`RetryAfterHeader`].

use std::time::{Duration, SystemTime};

/// How a rate-limited (429) response tells the client when to come back.
///
/// Each variant writes the header(s) real providers send; [`RetryAfterHeader::Many`] combines several,
/// the way OpenAI sends `retry-after` and `retry-after-ms` side by side.
///
/// ```
/// use std::time::Duration;
/// use llm_retry_testkit::RetryAfterHeader;
///
/// assert_eq!(RetryAfterHeader::Seconds(2.0).header_pairs(), vec![("retry-after", "2".to_owned())]);
/// assert_eq!(RetryAfterHeader::Seconds(1.5).header_pairs(), vec![("retry-after", "1.5".to_owned())]);
/// assert_eq!(RetryAfterHeader::Millis(250).header_pairs(), vec![("retry-after-ms", "250".to_owned())]);
/// assert_eq!(
///     RetryAfterHeader::ResetRequests(Duration::from_millis(20)).header_pairs(),
///     vec![("x-ratelimit-reset-requests", "20ms".to_owned())]
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RetryAfterHeader {
    /// No hint at all: a bare 429.
    None,
    /// `retry-after: <seconds>`. Whole values are written as integers (`2`), others as decimals (`1.5`),
    /// which some providers send although RFC 9110 only allows integers. Negative or non-finite values
    /// are written as Rust formats them, to test how a client copes with garbage.
    Seconds(f64),
    /// `retry-after: <HTTP-date>` (RFC 9110 IMF-fixdate) lying this far in the future, counted from the
    /// moment the response is built. HTTP dates have one-second resolution: the date is rounded *up*, so it
    /// lies at least this far and less than one second further in the future.
    HttpDate(Duration),
    /// `retry-after-ms: <milliseconds>` (OpenAI's and Azure's millisecond hint).
    Millis(u64),
    /// `x-ratelimit-reset-requests` in OpenAI's duration format (`20ms`, `1s`, `1.5s`, `6m0s`).
    ResetRequests(Duration),
    /// `x-ratelimit-reset-tokens` in OpenAI's duration format (`20ms`, `1s`, `1.5s`, `6m0s`).
    ResetTokens(Duration),
    /// All of these headers on one response, in order.
    Many(Vec<RetryAfterHeader>),
}

impl RetryAfterHeader {
    /// The `(name, value)` header pairs this hint puts on a response, with dates taken from the system clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::RetryAfterHeader;
    ///
    /// let both = RetryAfterHeader::Many(vec![RetryAfterHeader::Seconds(1.0), RetryAfterHeader::Millis(1000)]);
    /// assert_eq!(both.header_pairs().len(), 2);
    /// let date = RetryAfterHeader::HttpDate(Duration::from_secs(5)).header_pairs();
    /// assert!(date[0].1.ends_with(" GMT"));
    /// assert!(RetryAfterHeader::None.header_pairs().is_empty());
    /// ```
    pub fn header_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        self.push_pairs(SystemTime::now(), &mut out);
        out
    }

    /// The wait this hint asks for, whichever header carries it: the first of [`Many`](Self::Many) that
    /// asks for one. `None` for [`RetryAfterHeader::None`] and for seconds that are negative, not finite
    /// or too large for a [`Duration`]. The personas that carry a hint in the body (Gemini's `retryDelay`,
    /// Azure's "Please retry after N seconds.") write this wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::RetryAfterHeader;
    ///
    /// assert_eq!(RetryAfterHeader::Seconds(1.5).delay(), Some(Duration::from_millis(1500)));
    /// assert_eq!(RetryAfterHeader::Millis(40).delay(), Some(Duration::from_millis(40)));
    /// assert_eq!(RetryAfterHeader::Seconds(f64::NAN).delay(), None);
    /// let both = RetryAfterHeader::Many(vec![RetryAfterHeader::None, RetryAfterHeader::Millis(7)]);
    /// assert_eq!(both.delay(), Some(Duration::from_millis(7)));
    /// ```
    pub fn delay(&self) -> Option<Duration> {
        match self {
            RetryAfterHeader::None => None,
            RetryAfterHeader::Seconds(secs) if *secs >= 0.0 => Duration::try_from_secs_f64(*secs).ok(),
            RetryAfterHeader::Seconds(_) => None,
            RetryAfterHeader::HttpDate(d) | RetryAfterHeader::ResetRequests(d) | RetryAfterHeader::ResetTokens(d) => {
                Some(*d)
            }
            RetryAfterHeader::Millis(ms) => Some(Duration::from_millis(*ms)),
            RetryAfterHeader::Many(all) => all.iter().find_map(RetryAfterHeader::delay),
        }
    }

    fn push_pairs(&self, now: SystemTime, out: &mut Vec<(&'static str, String)>) {
        match self {
            RetryAfterHeader::None => {}
            RetryAfterHeader::Seconds(secs) => out.push(("retry-after", format_seconds(*secs))),
            RetryAfterHeader::HttpDate(after) => {
                // HTTP dates end with year 9999; anything later is written as its last second.
                const LAST_HTTP_DATE: u64 = 253_402_300_799;
                let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
                let target = since_epoch.saturating_add(*after);
                let secs = target.as_secs().saturating_add(u64::from(target.subsec_nanos() > 0)).min(LAST_HTTP_DATE);
                let date = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
                out.push(("retry-after", httpdate::fmt_http_date(date)));
            }
            RetryAfterHeader::Millis(ms) => out.push(("retry-after-ms", ms.to_string())),
            RetryAfterHeader::ResetRequests(d) => out.push(("x-ratelimit-reset-requests", format_openai_duration(*d))),
            RetryAfterHeader::ResetTokens(d) => out.push(("x-ratelimit-reset-tokens", format_openai_duration(*d))),
            RetryAfterHeader::Many(all) => {
                for one in all {
                    one.push_pairs(now, out);
                }
            }
        }
    }
}

/// Writes seconds the way providers do: `2` for whole values, `1.5` otherwise.
fn format_seconds(secs: f64) -> String {
    if secs.is_finite() && secs.fract() == 0.0 && secs.abs() < 1e15 {
        format!("{}", secs as i64)
    } else {
        format!("{secs}")
    }
}

/// Formats a duration the way OpenAI's `x-ratelimit-reset-*` headers do: `20ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`.
///
/// Durations under a second are written in whole milliseconds, rounded up (a non-zero duration never
/// becomes `0ms`).
///
/// ```
/// use std::time::Duration;
/// use llm_retry_testkit::format_openai_duration;
///
/// assert_eq!(format_openai_duration(Duration::from_millis(20)), "20ms");
/// assert_eq!(format_openai_duration(Duration::from_secs(1)), "1s");
/// assert_eq!(format_openai_duration(Duration::from_millis(1500)), "1.5s");
/// assert_eq!(format_openai_duration(Duration::from_secs(360)), "6m0s");
/// assert_eq!(format_openai_duration(Duration::from_secs(3723)), "1h2m3s");
/// ```
pub fn format_openai_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        let ms = d.as_nanos().div_ceil(1_000_000);
        return format!("{ms}ms");
    }
    let total_secs = d.as_secs();
    let hours = total_secs / 3600;
    let minutes = (total_secs % 3600) / 60;
    let secs = total_secs % 60;
    let millis = d.subsec_millis();
    let secs_text = if millis == 0 {
        format!("{secs}")
    } else {
        let frac = format!("{millis:03}");
        format!("{secs}.{}", frac.trim_end_matches('0'))
    };
    if hours > 0 {
        format!("{hours}h{minutes}m{secs_text}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs_text}s")
    } else {
        format!("{secs_text}s")
    }
}

/// One thing the server can do to a request: answer it normally, or fail it the way real LLM providers do.
///
/// Bodies follow the route: `/v1/chat/completions` gets OpenAI-shaped error bodies
/// (`{"error":{"message","type","param","code"}}`), `/v1/messages` gets Anthropic-shaped ones
/// (`{"type":"error","error":{"type","message"}}`), and the Gemini, Bedrock and Azure OpenAI routes get
/// their provider's shapes, statuses and hint placement (see [`Route`](crate::Route) and
/// docs/TESTKIT.md): the variants below describe the OpenAI and Anthropic answers. Faults are plain data: put them in a
/// [script](crate::ChaosServer::script), give them rates in a [`Chaos`](crate::Chaos), and compare them in
/// [recorded requests](crate::RecordedRequest::fault).
///
/// ```
/// use std::time::Duration;
/// use llm_retry_testkit::{Fault, RetryAfterHeader};
///
/// let plan = [
///     Fault::RateLimited { retry_after: RetryAfterHeader::Seconds(2.0) },
///     Fault::Status(503).with_should_retry(true),
///     Fault::ResetBeforeResponse,
///     Fault::slow_first_byte(Duration::from_millis(20)),
///     Fault::Ok,
/// ];
/// assert_eq!(plan.len(), 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// A normal `200`: a `chat.completion` (or Anthropic `message`), or an SSE stream when the request
    /// asked for `"stream": true`.
    Ok,
    /// `429` with a rate-limit error body (`rate_limit_exceeded` / `rate_limit_error`) and the given hint headers.
    RateLimited {
        /// Which `retry-after`-style header(s) to send.
        retry_after: RetryAfterHeader,
    },
    /// `429` whose body says the account is out of credit: OpenAI's `insufficient_quota` (on `/v1/messages`,
    /// an Anthropic `billing_error` body). Not retryable, although the status is 429.
    InsufficientQuota,
    /// `401` with `invalid_api_key` (Anthropic: `authentication_error`).
    InvalidApiKey,
    /// `400` with `context_length_exceeded` (Anthropic: `invalid_request_error`, "prompt is too long").
    ContextLengthExceeded,
    /// The provider's "overloaded, try again later": OpenAI's `503` (`server_error`), Anthropic's `529`
    /// (`overloaded_error`), Gemini's `503 UNAVAILABLE` ("The model is overloaded"), Bedrock's `429`
    /// `ModelNotReadyException`; Azure answers as OpenAI.
    Overloaded,
    /// The provider refused the prompt for its content: `400` with OpenAI's `content_policy_violation`,
    /// Anthropic's `invalid_request_error` ("Output blocked by content filtering policy") or Azure's
    /// `content_filter` (with `innererror.code: ResponsibleAIPolicyViolation`). Gemini and Bedrock report a
    /// blocked prompt in a `200`: `promptFeedback.blockReason: SAFETY`, and a guardrail's
    /// `stopReason: guardrail_intervened`.
    ContentFiltered,
    /// A bare status with the provider's usual error body: `500`, `502`, `503` and `504` as server errors,
    /// `529` always in Anthropic's shape (`overloaded_error`, "Overloaded"), any other 4xx as an
    /// `invalid_request_error`, anything else as a server error. A code outside `100..=999` becomes `500`.
    Status(u16),
    /// Any response you spell out: status, extra headers and body text (sent as `application/json`
    /// unless a `content-type` header is given). Invalid header names or values are skipped; a status
    /// outside `100..=999` becomes `500`.
    Custom {
        /// The status code.
        status: u16,
        /// Extra headers, `(name, value)`.
        headers: Vec<(String, String)>,
        /// The body, verbatim.
        body: String,
    },
    /// Read the request, then reset the connection (TCP RST) without sending a single byte.
    ResetBeforeResponse,
    /// Send the `200` headers and the first half of the body, then reset the connection (TCP RST).
    /// Non-streaming responses announce their full `content-length`; a streaming request gets the SSE
    /// head and the first half of its content chunks, rounded down (like [`Fault::StreamCut`]).
    ResetDuringBody,
    /// Never answer. The connection stays open until the client closes it or the server shuts down.
    Hang,
    /// A `200` SSE stream that is dropped (TCP RST) after `after_chunks` content chunks, with no `[DONE]`
    /// (Anthropic: no `message_stop`). Anthropic's `message_start` and `content_block_start` always come
    /// first. On a non-streaming request this is [`Fault::ResetDuringBody`].
    StreamCut {
        /// How many content chunks are sent before the cut (capped at the number of chunks).
        after_chunks: usize,
    },
    /// A `200` SSE stream that sends `after_chunks` content chunks, then an `event: error` whose data is an
    /// overloaded error (`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` on
    /// `/v1/messages`, `{"error":{"type":"server_error","code":"overloaded",..}}` on chat completions),
    /// then ends the body cleanly. Served as SSE even when the request did not ask to stream.
    StreamError {
        /// How many content chunks are sent before the error event (capped at the number of chunks).
        after_chunks: usize,
    },
    /// The inner fault with an `x-should-retry: true|false` header (ignored by faults that send no headers).
    /// Build it with [`Fault::with_should_retry`].
    ShouldRetry {
        /// The header's value.
        should_retry: bool,
        /// What is served otherwise.
        fault: Box<Fault>,
    },
    /// Wait this long before doing anything (a slow first byte), then serve the inner fault. Build it with
    /// [`Fault::delayed`] or [`Fault::slow_first_byte`].
    Delayed {
        /// The wait before the status line.
        delay: Duration,
        /// What is served after the wait.
        fault: Box<Fault>,
    },
}

impl Fault {
    /// A `429` with `retry-after: <secs>` (written as an integer when whole).
    ///
    /// ```
    /// use llm_retry_testkit::{Fault, RetryAfterHeader};
    /// assert_eq!(Fault::rate_limited(2.0), Fault::RateLimited { retry_after: RetryAfterHeader::Seconds(2.0) });
    /// ```
    pub fn rate_limited(secs: f64) -> Fault {
        Fault::RateLimited { retry_after: RetryAfterHeader::Seconds(secs) }
    }

    /// A normal `200` whose status line comes only after `delay`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::Fault;
    /// let slow = Fault::slow_first_byte(Duration::from_millis(30));
    /// assert_eq!(slow, Fault::Ok.delayed(Duration::from_millis(30)));
    /// ```
    pub fn slow_first_byte(delay: Duration) -> Fault {
        Fault::Ok.delayed(delay)
    }

    /// This fault, served after `delay`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::Fault;
    /// let late_503 = Fault::Status(503).delayed(Duration::from_millis(10));
    /// assert_eq!(late_503.base(), &Fault::Status(503));
    /// ```
    pub fn delayed(self, delay: Duration) -> Fault {
        Fault::Delayed { delay, fault: Box::new(self) }
    }

    /// This fault with an `x-should-retry` header.
    ///
    /// ```
    /// use llm_retry_testkit::Fault;
    /// let f = Fault::Status(500).with_should_retry(false);
    /// assert!(matches!(f, Fault::ShouldRetry { should_retry: false, .. }));
    /// ```
    pub fn with_should_retry(self, should_retry: bool) -> Fault {
        Fault::ShouldRetry { should_retry, fault: Box::new(self) }
    }

    /// The fault under any [`Fault::ShouldRetry`] and [`Fault::Delayed`] wrappers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_retry_testkit::Fault;
    /// let f = Fault::Hang.with_should_retry(true).delayed(Duration::from_millis(1));
    /// assert_eq!(f.base(), &Fault::Hang);
    /// ```
    pub fn base(&self) -> &Fault {
        let mut f = self;
        loop {
            match f {
                Fault::ShouldRetry { fault, .. } | Fault::Delayed { fault, .. } => f = fault,
                other => return other,
            }
        }
    }

    /// The status code this fault answers with on OpenAI's route, or `None` when no status line is ever
    /// sent ([`Fault::ResetBeforeResponse`], [`Fault::Hang`]). Cut and reset streams count as `200`. Other
    /// routes differ where their provider does: [`Fault::Overloaded`] is a `529` on Anthropic's and a
    /// `429` on Bedrock's, [`Fault::InvalidApiKey`] a `400` on Gemini's and a `403` on Bedrock's.
    ///
    /// ```
    /// use llm_retry_testkit::Fault;
    /// assert_eq!(Fault::InsufficientQuota.status(), Some(429));
    /// assert_eq!(Fault::StreamCut { after_chunks: 1 }.status(), Some(200));
    /// assert_eq!(Fault::ResetBeforeResponse.status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self.base() {
            Fault::Ok | Fault::ResetDuringBody | Fault::StreamCut { .. } | Fault::StreamError { .. } => Some(200),
            Fault::RateLimited { .. } | Fault::InsufficientQuota => Some(429),
            Fault::InvalidApiKey => Some(401),
            Fault::ContextLengthExceeded | Fault::ContentFiltered => Some(400),
            Fault::Overloaded => Some(503),
            Fault::Status(code) | Fault::Custom { status: code, .. } => Some(valid_status(*code)),
            Fault::ResetBeforeResponse | Fault::Hang => None,
            Fault::ShouldRetry { .. } | Fault::Delayed { .. } => unreachable!("base() unwraps wrappers"),
        }
    }
}

/// `code` if it is a valid HTTP status code, else 500.
pub(crate) fn valid_status(code: u16) -> u16 {
    if (100..=999).contains(&code) { code } else { 500 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_rounds_up() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_300);
        let mut out = Vec::new();
        RetryAfterHeader::HttpDate(Duration::from_secs(2)).push_pairs(now, &mut out);
        let parsed = httpdate::parse_http_date(&out[0].1).unwrap();
        assert_eq!(parsed, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_003));
    }

    #[test]
    fn http_date_far_future_does_not_panic() {
        let pairs = RetryAfterHeader::HttpDate(Duration::MAX).header_pairs();
        assert_eq!(pairs[0].1, "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn seconds_formatting() {
        assert_eq!(format_seconds(0.0), "0");
        assert_eq!(format_seconds(0.25), "0.25");
        assert_eq!(format_seconds(f64::NAN), "NaN");
        assert_eq!(format_seconds(-1.0), "-1");
    }

    #[test]
    fn openai_durations() {
        assert_eq!(format_openai_duration(Duration::from_nanos(1)), "1ms");
        assert_eq!(format_openai_duration(Duration::ZERO), "0ms");
        assert_eq!(format_openai_duration(Duration::from_millis(60_250)), "1m0.25s");
    }
}
