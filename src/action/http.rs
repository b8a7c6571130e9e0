//! The `http` step's transport: one request, sent with bounded time and a few
//! retries, its outcome described without secrets.
//!
//! - Each attempt is bounded by [`HttpRequest::timeout`] as a whole: connecting
//!   (at most half of it, and at most 10 s), sending, and the complete answer.
//! - Retries (backoff 0.5 s, 1 s, 2 s, … capped at 30 s) happen only when the
//!   request cannot have reached the server (DNS failure, connection refused or
//!   unreachable, connect timeout) or the server answered 5xx. A 4xx is final,
//!   and so is a request that was sent but got no complete answer in time: the
//!   server may have acted on it, and starting a build twice is worse than
//!   reporting one failure.
//! - A 2xx is a success even when its body breaks off (the server took the
//!   request); the tail keeps what arrived.
//! - Redirects are not followed: a 3xx is a failure naming the `Location`, so
//!   the admin puts the final URL in the step (following would turn a POST into
//!   a GET and could carry credentials to another host). Jenkins answers 201 to
//!   `/build`, which is a success like every 2xx.
//! - `error` strings and the URL in them never carry the query (tokens live
//!   there), userinfo, header values or the basic password.
//! - TLS: rustls with the ring provider and the system's CA certificates, as
//!   for brokers; no proxy from the environment is used.

use base64::Engine;
use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use ureq::http;

/// The most of a response body kept (its end, where errors usually are).
pub const TAIL_BYTES: usize = 4096;
/// The most of a response body read; the rest is left unread.
const MAX_READ: u64 = 1 << 20;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest time connecting may take within one attempt.
const MAX_CONNECT: Duration = Duration::from_secs(10);

/// One request, ready to send (templates already expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, … (any token; sent as given).
    pub method: String,
    /// An `http://` or `https://` URL.
    pub url: String,
    /// Extra header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The body, sent with `Content-Length`.
    pub body: Option<Vec<u8>>,
    /// `(user, password)` for `Authorization: Basic` (it replaces an
    /// `Authorization` field of `headers`).
    pub basic: Option<(String, String)>,
    /// The bound of each attempt, connect to the end of the answer.
    pub timeout: Duration,
    /// Extra attempts after a connection error or a 5xx.
    pub retries: u32,
}

/// What happened to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOutcome {
    /// The last answer's status, if any answer came.
    pub status: Option<u16>,
    /// The end of the last answer's body (at most [`TAIL_BYTES`], lossy UTF-8).
    pub body_tail: String,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// Why it failed (None when it did not); never holds a secret.
    pub error: Option<String>,
}

impl HttpOutcome {
    /// The server answered 2xx.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// One attempt's result: the outcome so far, and whether trying again may help.
struct Attempt {
    status: Option<u16>,
    body_tail: String,
    error: Option<String>,
    retry: bool,
}

/// Sends `request`, retrying as the module doc says; never panics on bad input.
pub fn send(request: &HttpRequest) -> HttpOutcome {
    let shown = redact_url(&request.url);
    let mut attempts = 0;
    let last = loop {
        attempts += 1;
        let attempt = attempt(request, &shown);
        if !attempt.retry || attempts > request.retries {
            break attempt;
        }
        std::thread::sleep(backoff(attempts));
    };
    let error = last.error.map(|reason| match attempts {
        1 => reason,
        n => format!("{reason} (after {n} attempts)"),
    });
    HttpOutcome {
        status: last.status,
        body_tail: last.body_tail,
        attempts,
        error,
    }
}

/// The wait after attempt number `attempt` (1-based): 0.5 s, 1 s, 2 s, …
fn backoff(attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    (Duration::from_millis(500) * factor).min(MAX_BACKOFF)
}

fn failed(error: String, retry: bool) -> Attempt {
    Attempt {
        status: None,
        body_tail: String::new(),
        error: Some(error),
        retry,
    }
}

fn attempt(request: &HttpRequest, shown: &str) -> Attempt {
    let built = match build(request) {
        Ok(built) => built,
        Err(reason) => return failed(format!("{reason} ({} {shown})", request.method), false),
    };
    let mut response = match agent(request.timeout).run(built) {
        Ok(response) => response,
        Err(error) => {
            let (reason, retry) = describe(&error, request);
            return failed(format!("{} {shown}: {reason}", request.method), retry);
        }
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(redact_url);
    // A body that breaks off keeps what came: the status already said it all.
    let mut tail = Tail::default();
    let _ = std::io::copy(
        &mut response.body_mut().as_reader().take(MAX_READ),
        &mut tail,
    );
    let body_tail = tail.text();
    let error = match status {
        200..=299 => None,
        300..=399 => Some(format!(
            "{} {shown}: HTTP {status} redirect to {} not followed: put the final URL in the step",
            request.method,
            location.as_deref().unwrap_or("(no Location)")
        )),
        _ => Some(format!("{} {shown}: HTTP {status}", request.method)),
    };
    Attempt {
        status: Some(status),
        body_tail,
        error,
        retry: status >= 500,
    }
}

/// The request as the http crate has it; errors name the bad part, not its value.
fn build(request: &HttpRequest) -> Result<http::Request<Vec<u8>>, String> {
    let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
        request
            .url
            .get(..scheme.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
    });
    if !scheme_ok {
        return Err("the URL must start with http:// or https://".to_string());
    }
    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("invalid HTTP method {:?}", request.method))?;
    let uri: http::Uri = request
        .url
        .parse()
        .map_err(|error| format!("invalid URL: {error}"))?;
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in &request.headers {
        if request.basic.is_some() && name.eq_ignore_ascii_case("authorization") {
            continue;
        }
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| format!("header {name} has a value with control characters (CR, LF)"))?;
        builder = builder.header(name, value);
    }
    if let Some((user, password)) = &request.basic {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = http::HeaderValue::from_str(&format!("Basic {credentials}"))
            .map_err(|_| "invalid basic credentials".to_string())?;
        value.set_sensitive(true);
        builder = builder.header(http::header::AUTHORIZATION, value);
    }
    builder
        .body(request.body.clone().unwrap_or_default())
        .map_err(|error| format!("cannot build the request: {error}"))
}

/// An agent for one attempt: statuses are answers, not errors; no redirects,
/// no proxy; the attempt's bound covers everything.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(timeout))
        .timeout_connect(Some((timeout / 2).min(MAX_CONNECT)))
        .user_agent(concat!("hookbus/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls().clone())
        .build()
        .into()
}

/// rustls with our ring provider and the system roots, loaded once.
fn tls() -> &'static ureq::tls::TlsConfig {
    static TLS: OnceLock<ureq::tls::TlsConfig> = OnceLock::new();
    TLS.get_or_init(|| {
        let roots = rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
            .collect();
        ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build()
    })
}

/// A transport error as a reason without secrets, and whether the request
/// cannot have reached the server (so retrying is safe).
fn describe(error: &ureq::Error, request: &HttpRequest) -> (String, bool) {
    use std::io::ErrorKind as Kind;
    use ureq::Error as E;
    match error {
        E::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => {
            ("could not connect in time".to_string(), true)
        }
        E::Timeout(_) => (
            format!("no complete answer within {:?}", request.timeout),
            false,
        ),
        E::HostNotFound => ("host not found".to_string(), true),
        E::ConnectionFailed => ("could not connect".to_string(), true),
        E::Io(io)
            if matches!(
                io.kind(),
                Kind::ConnectionRefused
                    | Kind::HostUnreachable
                    | Kind::NetworkUnreachable
                    | Kind::AddrNotAvailable
            ) =>
        {
            (format!("could not connect: {io}"), true)
        }
        // rustls reports handshake failures through the socket's io::Error
        E::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            (tls_failure(error), false)
        }
        E::Io(io) if io.kind() == Kind::TimedOut => (
            format!("no complete answer within {:?}", request.timeout),
            false,
        ),
        E::Io(io) => (io.to_string(), false),
        E::Tls(_) | E::Rustls(_) => (tls_failure(error), false),
        E::BadUri(_) => ("invalid URL".to_string(), false),
        other => (scrub(&other.to_string(), request), false),
    }
}

fn tls_failure(error: &ureq::Error) -> String {
    format!("TLS: {error} (hookbus trusts the system's CA certificates: install the CA that signed the server's certificate, and use https only where the server speaks TLS)")
}

/// Removes the URL's query and credentials from a message we did not write.
fn scrub(text: &str, request: &HttpRequest) -> String {
    let mut text = text.replace(&request.url, &redact_url(&request.url));
    if let Some((_, password)) = request.basic.as_ref().filter(|(_, p)| !p.is_empty()) {
        text = text.replace(password.as_str(), "[redacted]");
    }
    text
}

/// A URL fit for logs: no userinfo, the query replaced by `?[redacted]`, no fragment.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (before_query, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?[redacted]"),
        None => (rest, ""),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}{host}{path}{query}")
}

/// The last [`TAIL_BYTES`] bytes written to it.
#[derive(Default)]
struct Tail(Vec<u8>);

impl std::io::Write for Tail {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        if self.0.len() > TAIL_BYTES {
            self.0.drain(..self.0.len() - TAIL_BYTES);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Tail {
    /// As text, starting at a character boundary, at most [`TAIL_BYTES`] bytes.
    fn text(&self) -> String {
        crate::text::tail(&String::from_utf8_lossy(&self.0), TAIL_BYTES).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn urls_lose_query_credentials_and_fragment() {
        assert_eq!(
            redact_url("https://u:pw@ci.example:8443/job/a%20b/build?token=s3cret#x"),
            "https://ci.example:8443/job/a%20b/build?[redacted]"
        );
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        assert_eq!(redact_url("http://h?x=1"), "http://h?[redacted]");
    }

    #[test]
    fn backoff_doubles_from_half_a_second_and_is_capped() {
        let waits: Vec<u128> = (1..=4).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000]);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn the_tail_keeps_the_last_4_kib_on_a_character_boundary() {
        let mut tail = Tail::default();
        tail.write_all("é".repeat(3000).as_bytes()).unwrap();
        tail.write_all(b"END").unwrap();
        let text = tail.text();
        assert!(
            text.len() <= TAIL_BYTES && text.ends_with("éEND"),
            "{}",
            text.len()
        );
    }

    #[test]
    fn bad_requests_fail_without_sending_and_without_the_secret() {
        let mut request = HttpRequest {
            method: "GET".into(),
            url: "ftp://h/x?token=s3cret".into(),
            headers: Vec::new(),
            body: None,
            basic: None,
            timeout: Duration::from_secs(1),
            retries: 3,
        };
        let outcome = send(&request);
        assert_eq!((outcome.ok(), outcome.attempts), (false, 1));
        let error = outcome.error.unwrap();
        assert!(
            error.contains("http:// or https://") && !error.contains("s3cret"),
            "{error}"
        );
        request.url = "http://h/x?token=s3cret".into();
        request.headers = vec![("X-A".into(), "a\r\nInjected: 1".into())];
        let error = send(&request).error.unwrap();
        assert!(
            error.contains("header x-a") && !error.contains("s3cret"),
            "{error}"
        );
    }
}
