//! The `http` step's transport. A stub with the agreed signature until branch
//! http-legacy's implementation is merged.

use std::time::Duration;

/// One request, filled in.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The method.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Option<Vec<u8>>,
    /// Basic authentication.
    pub basic: Option<(String, String)>,
    /// Bound on one attempt.
    pub timeout: Duration,
    /// Extra attempts on connection errors and 5xx.
    pub retries: u32,
}

/// What came of it.
#[derive(Debug, Clone, Default)]
pub struct HttpOutcome {
    /// The last response's status.
    pub status: Option<u16>,
    /// The end of the last response's body.
    pub body_tail: String,
    /// Attempts made.
    pub attempts: u32,
    /// How long it all took.
    pub duration: Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl HttpOutcome {
    /// True for a 2xx answer.
    pub fn ok(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// Sends the request.
pub fn send(request: &HttpRequest) -> HttpOutcome {
    let _ = request;
    HttpOutcome {
        error: Some("http steps are not implemented yet".into()),
        ..HttpOutcome::default()
    }
}
