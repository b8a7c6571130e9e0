//! The HTTP side: tiny_http parses requests (each connection on a thread of
//! its own); every request is then handled on a thread of its own, at most
//! `max_requests` at once (more get 503), so a slow or bad request never
//! delays another. Bodies over the cap get 413 without being read.

use super::handler::{Incoming, Reply, Webhook};
use anyhow::{anyhow, Result};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// How long requests in flight may take to finish after a stop.
const DRAIN: Duration = Duration::from_secs(10);

/// A bound HTTP listener.
pub struct Listener {
    server: tiny_http::Server,
    max_body_bytes: usize,
    max_requests: usize,
}

impl Listener {
    /// Binds `address` (`HOST:PORT`).
    pub fn bind(address: &str, max_body_bytes: usize, max_requests: usize) -> Result<Listener> {
        let server = tiny_http::Server::http(address)
            .map_err(|error| anyhow!("cannot listen on [webhook] listen = {address:?}: {error}"))?;
        Ok(Listener {
            server,
            max_body_bytes,
            max_requests,
        })
    }

    /// The address it listens on (with the port the system chose for port 0).
    pub fn address(&self) -> String {
        self.server.server_addr().to_string()
    }

    /// Answers requests until `stop` is set, then waits (boundedly) for the
    /// ones in flight.
    pub fn serve(&self, webhook: &Arc<Webhook>, stop: &AtomicBool) {
        let in_flight = Arc::new(AtomicUsize::new(0));
        while !stop.load(Ordering::Relaxed) {
            let request = match self.server.recv_timeout(POLL) {
                Ok(Some(request)) => request,
                Ok(None) => continue,
                Err(error) => {
                    eprintln!("hookbus webhook: accepting: {error}");
                    continue;
                }
            };
            if in_flight.load(Ordering::Acquire) >= self.max_requests {
                let started = Instant::now();
                let answer = Reply {
                    status: 503,
                    reason: format!("busy: {} requests in flight", self.max_requests),
                };
                log(
                    &request.method().to_string(),
                    request.url(),
                    &answer,
                    started,
                );
                respond(request, &answer);
                continue;
            }
            in_flight.fetch_add(1, Ordering::AcqRel);
            let (webhook, in_flight, max_body) = (
                Arc::clone(webhook),
                Arc::clone(&in_flight),
                self.max_body_bytes,
            );
            std::thread::spawn(move || {
                handle(&webhook, request, max_body);
                in_flight.fetch_sub(1, Ordering::AcqRel);
            });
        }
        let until = Instant::now() + DRAIN;
        while in_flight.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(POLL / 10);
        }
    }
}

fn handle(webhook: &Webhook, mut request: tiny_http::Request, max_body: usize) {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.url().to_string();
    let answer = match read_body(&mut request, max_body) {
        Ok(body) => {
            let incoming = Incoming {
                method: method.clone(),
                path: path.clone(),
                headers: request
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_string(),
                            h.value.as_str().to_string(),
                        )
                    })
                    .collect(),
                body,
            };
            webhook.handle(&incoming)
        }
        Err(answer) => answer,
    };
    log(&method, &path, &answer, started);
    respond(request, &answer);
}

/// The body, or the reply refusing it: 413 over the cap (told by
/// Content-Length before reading, or found while reading), 400 when cut short.
fn read_body(request: &mut tiny_http::Request, max_body: usize) -> Result<Vec<u8>, Reply> {
    let too_large = || Reply {
        status: 413,
        reason: format!("body over [webhook] max_body_bytes = {max_body}"),
    };
    if request
        .body_length()
        .is_some_and(|length| length > max_body)
    {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(request.body_length().unwrap_or(0));
    request
        .as_reader()
        .take(max_body as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|error| Reply {
            status: 400,
            reason: format!("cannot read the body: {error}"),
        })?;
    if body.len() > max_body {
        return Err(too_large());
    }
    Ok(body)
}

fn respond(request: tiny_http::Request, answer: &Reply) {
    let response = tiny_http::Response::from_string(format!("{}\n", answer.reason))
        .with_status_code(answer.status);
    // A client that went away is not our problem; the log line is written.
    let _ = request.respond(response);
}

/// One line per request: status, method, path, time, reason.
fn log(method: &str, path: &str, answer: &Reply, started: Instant) {
    let path: String = path.chars().take(200).filter(|c| !c.is_control()).collect();
    eprintln!(
        "hookbus webhook: {} {method} {path} {:.1} ms: {}",
        answer.status,
        started.elapsed().as_secs_f64() * 1000.0,
        answer.reason
    );
}
