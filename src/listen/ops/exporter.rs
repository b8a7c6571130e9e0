//! `[listen] metrics`: `GET /metrics` is the exposition; `GET /healthz`
//! answers 503 until the first pass over all mirrors has finished, then 200
//! (like git-sync's). Served by the shared metrics listener
//! ([`crate::http_server::exporter`]), bounded against hostile clients.

use super::metrics::Metrics;
use super::status::Board;
use crate::http_server::exporter::{self, Exporter};
use crate::http_server::{Handler, Request, Response};
use anyhow::Result;
use std::sync::Arc;

/// Binds `address` (`IP:PORT`) and serves `metrics` and `board` on a thread
/// of its own.
pub fn start(address: &str, metrics: Metrics, board: Board) -> Result<Exporter> {
    let pages = Arc::new(Pages { metrics, board });
    Exporter::start(
        address,
        "[listen] metrics",
        "hookbus: listen: metrics",
        pages,
    )
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
    exporter::answer(
        method,
        url,
        || metrics.encode(),
        || {
            if board.first_pass_done() {
                Ok(())
            } else {
                Err("the first pass over the mirrors has not finished")
            }
        },
    )
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
