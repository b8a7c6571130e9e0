//! `[listen] metrics`: a small HTTP listener for Prometheus. `GET /metrics`
//! is the exposition; `GET /healthz` answers 503 until the first pass over
//! all mirrors has finished, then 200 (like git-sync's). tiny_http reads
//! requests (a connection per thread of its own, so a client that sends
//! slowly holds only its own; tiny_http sets no read timeout, so such a
//! client holds its thread until it goes); answers are made in memory and
//! written on a thread per request, at most `MAX_IN_FLIGHT` at once (beyond
//! that a request is closed unanswered), so a client that does not read
//! cannot hold the loop either.

use super::metrics::Metrics;
use super::status::Board;
use anyhow::{anyhow, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Answers being written at once.
const MAX_IN_FLIGHT: usize = 8;
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
        let server = tiny_http::Server::http(address)
            .map_err(|error| anyhow!("cannot listen on [listen] metrics = {address:?}: {error}"))?;
        let bound = server.server_addr().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || serve(&server, &metrics, &board, &flag));
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

fn serve(server: &tiny_http::Server, metrics: &Metrics, board: &Board, stop: &AtomicBool) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let request = match server.recv_timeout(POLL) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(error) => {
                eprintln!("hookbus: listen: metrics: accepting: {error}");
                continue;
            }
        };
        if in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            // Dropping the request closes its connection without an answer.
            continue;
        }
        let answer = answer(request.method(), request.url(), metrics, board);
        in_flight.fetch_add(1, Ordering::AcqRel);
        let in_flight = Arc::clone(&in_flight);
        std::thread::spawn(move || {
            let mut response =
                tiny_http::Response::from_string(answer.body).with_status_code(answer.status);
            if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", answer.content_type) {
                response.add_header(header);
            }
            // A client that went away is not our problem.
            let _ = request.respond(response);
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// An answer, before it is written.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
}

/// What `method` `url` gets.
fn answer(method: &tiny_http::Method, url: &str, metrics: &Metrics, board: &Board) -> Answer {
    let text = |status, body: &str| Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{body}\n"),
    };
    if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        return text(405, "only GET");
    }
    match url.split('?').next().unwrap_or_default() {
        "/metrics" => Answer {
            status: 200,
            content_type: OPENMETRICS,
            body: metrics.encode(),
        },
        "/healthz" if board.first_pass_done() => text(200, "ok"),
        "/healthz" => text(503, "the first pass over the mirrors has not finished"),
        _ => text(404, "not found: try /metrics or /healthz"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_waits_for_the_first_pass_and_unknown_paths_are_404() {
        let mirror: crate::listen::config::MirrorConfig =
            toml::from_str("repo = 'a'\npath = '/m/a'").unwrap();
        let board = Board::new(&[mirror]);
        let metrics = Metrics::new(board.clone());
        let get = |url| answer(&tiny_http::Method::Get, url, &metrics, &board).status;
        assert_eq!(get("/healthz"), 503);
        let done = crate::listen::status::Outcome::Done(None);
        board.updated("/m/a", &done).unwrap();
        assert_eq!(get("/healthz"), 200);
        assert_eq!(get("/metrics?x=1"), 200);
        assert_eq!(get("/"), 404);
        let post = answer(&tiny_http::Method::Post, "/metrics", &metrics, &board);
        assert_eq!(post.status, 405);
    }
}
