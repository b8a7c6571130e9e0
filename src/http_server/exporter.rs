//! A small HTTP listener for Prometheus beside a daemon's own work
//! (`[listen] metrics`, `[relay] metrics`): the shared core on a thread of
//! its own, answers made in memory, at most `MAX_IN_FLIGHT` at once (503
//! beyond), so no client can stop the daemon.

use super::{Handler, Limits, Response, Server};
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Answers being made at once.
const MAX_IN_FLIGHT: usize = 8;
/// The largest request body read (a GET has none).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a stop waits for answers being written.
const DRAIN: Duration = Duration::from_secs(1);
/// The content type of the exposition `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running metrics listener.
pub struct Exporter {
    address: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Binds `address` (`IP:PORT`, from the config key `setting`) and serves
    /// `pages` on a thread of its own; `log_prefix` starts its log lines.
    pub fn start(
        address: &str,
        setting: &str,
        log_prefix: &'static str,
        pages: Arc<dyn Handler>,
    ) -> Result<Exporter> {
        let limits = Limits {
            max_body_bytes: MAX_BODY_BYTES,
            max_requests: MAX_IN_FLIGHT,
            drain: DRAIN,
            log_prefix,
        };
        let server = Server::bind(address, setting, limits)?;
        let bound = server.address().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            if let Err(error) = server.serve(pages, &flag) {
                eprintln!("{log_prefix}: {error:#}");
            }
        });
        Ok(Exporter {
            address: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Stops listening.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What `method` `url` gets from a metrics listener: `exposition()` at
/// `/metrics`, `health()` at `/healthz` (`Ok` 200, `Err(why)` 503).
pub fn answer(
    method: &str,
    url: &str,
    exposition: impl FnOnce() -> String,
    health: impl FnOnce() -> Result<(), &'static str>,
) -> Response {
    if !matches!(method, "GET" | "HEAD") {
        return Response::text(405, "only GET");
    }
    match url.split('?').next().unwrap_or_default() {
        "/metrics" => Response {
            status: 200,
            content_type: OPENMETRICS,
            body: exposition(),
        },
        "/healthz" => match health() {
            Ok(()) => Response::text(200, "ok"),
            Err(why) => Response::text(503, why),
        },
        _ => Response::text(404, "not found: try /metrics or /healthz"),
    }
}
