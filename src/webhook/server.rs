//! The HTTP side: the shared serving core ([`crate::http_server`]) reads
//! requests, bounded against hostile clients, and runs [`Webhook::handle`]
//! on its blocking pool, at most `max_requests` at once (more get 503), so a
//! slow or bad request never delays another. Bodies over the cap get 413
//! without being read. Every answer is logged in one line.

use super::handler::{Incoming, Reply, Webhook};
use crate::http_server::{self, Handler, Limits, Request, Response};
use anyhow::Result;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long requests in flight may take to finish after a stop.
const DRAIN: Duration = Duration::from_secs(10);

/// A bound HTTP listener.
pub struct Listener {
    server: http_server::Server,
}

impl Listener {
    /// Binds `address` (`HOST:PORT`).
    pub fn bind(address: &str, max_body_bytes: usize, max_requests: usize) -> Result<Listener> {
        let limits = Limits {
            max_body_bytes,
            max_requests,
            drain: DRAIN,
            log_prefix: "hookbus webhook",
        };
        let server = http_server::Server::bind(address, "[webhook] listen", limits)?;
        Ok(Listener { server })
    }

    /// The address it listens on (with the port the system chose for port 0).
    pub fn address(&self) -> String {
        self.server.address().to_string()
    }

    /// Answers requests until `stop` is set, then waits (boundedly) for the
    /// ones in flight.
    pub fn serve(self, webhook: &Arc<Webhook>, stop: &AtomicBool) -> Result<()> {
        let handler = Arc::new(Forges(Arc::clone(webhook)));
        self.server.serve(handler, stop)
    }
}

/// The webhook as the serving core sees it.
struct Forges(Arc<Webhook>);

impl Handler for Forges {
    fn handle(&self, request: Request) -> Response {
        let incoming = Incoming {
            method: request.method,
            path: request.path,
            headers: request.headers,
            body: request.body,
        };
        let Reply { status, reason } = self.0.handle(&incoming);
        Response::text(status, &reason)
    }

    /// One line per request: status, method, path, time, reason.
    fn answered(&self, method: &str, path: &str, response: &Response, started: Instant) {
        let path: String = path.chars().take(200).filter(|c| !c.is_control()).collect();
        eprintln!(
            "hookbus webhook: {} {method} {path} {:.1} ms: {}",
            response.status,
            started.elapsed().as_secs_f64() * 1000.0,
            response.body.trim_end()
        );
    }
}
