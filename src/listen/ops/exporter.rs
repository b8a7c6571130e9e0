//! `[listen] metrics`: a small HTTP listener for Prometheus. `GET /metrics`
//! is the exposition; `GET /healthz` answers 503 until the first pass over
//! all mirrors has finished, then 200 (like git-sync's). It is served by the
//! shared core ([`crate::http_server`]), bounded against hostile clients, on
//! a thread of its own; answers are made in memory, at most `MAX_IN_FLIGHT`
//! at once (503 beyond), so no client can stop the listener's other work.

use super::metrics::Metrics;
use super::status::Board;
use crate::http_server::{self, Handler, Limits, Request, Response};
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
    /// Binds `address` (`IP:PORT`) and serves `metrics` and `board` on a
    /// thread of its own.
    pub fn start(address: &str, metrics: Metrics, board: Board) -> Result<Exporter> {
        let limits = Limits {
            max_body_bytes: MAX_BODY_BYTES,
            max_requests: MAX_IN_FLIGHT,
            drain: DRAIN,
            log_prefix: "hookbus: listen: metrics",
        };
        let server = http_server::Server::bind(address, "[listen] metrics", limits)?;
        let bound = server.address().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let pages = Arc::new(Pages { metrics, board });
        let thread = std::thread::spawn(move || {
            if let Err(error) = server.serve(pages, &flag) {
                eprintln!("hookbus: listen: metrics: {error:#}");
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

/// The pages it serves.
struct Pages {
    metrics: Metrics,
    board: Board,
}

impl Handler for Pages {
    fn handle(&self, request: Request) -> Response {
        answer(&request.method, &request.path, &self.metrics, &self.board)
    }
}

/// What `method` `url` gets.
fn answer(method: &str, url: &str, metrics: &Metrics, board: &Board) -> Response {
    if !matches!(method, "GET" | "HEAD") {
        return Response::text(405, "only GET");
    }
    match url.split('?').next().unwrap_or_default() {
        "/metrics" => Response {
            status: 200,
            content_type: OPENMETRICS,
            body: metrics.encode(),
        },
        "/healthz" if board.first_pass_done() => Response::text(200, "ok"),
        "/healthz" => Response::text(503, "the first pass over the mirrors has not finished"),
        _ => Response::text(404, "not found: try /metrics or /healthz"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_waits_for_the_first_pass_and_unknown_paths_are_404() {
        let mirror: crate::config::mirror::MirrorConfig =
            toml::from_str("repo = 'a'\npath = '/m/a'").unwrap();
        let board = Board::new(&[mirror]);
        let metrics = Metrics::new(board.clone());
        let get = |url| answer("GET", url, &metrics, &board).status;
        assert_eq!(get("/healthz"), 503);
        let done = crate::listen::ops::status::Outcome::Done(None);
        board.updated("/m/a", &done).unwrap();
        assert_eq!(get("/healthz"), 200);
        assert_eq!(get("/metrics?x=1"), 200);
        assert_eq!(get("/"), 404);
        let post = answer("POST", "/metrics", &metrics, &board);
        assert_eq!(post.status, 405);
    }
}
