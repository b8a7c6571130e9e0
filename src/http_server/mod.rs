//! The one HTTP/1.1 serving core of `hookbus webhook` and the metrics
//! listeners ([`exporter`]: `[listen] metrics`, `[relay] metrics`),
//! made to face hostile clients: hyper's connection state machine on a
//! current-thread tokio runtime, so an idle or slow client costs a socket and
//! a small task, never a thread. What one client can hold is bounded:
//!
//! - headers must arrive within [`HEADER_TIMEOUT`] (an idle keep-alive
//!   connection too) and fit in [`MAX_HEAD_BYTES`];
//! - a body is read up to the cap and no further: a declared length over it
//!   gets 413 unread, so nothing is ever allocated for what a client merely
//!   declares; it must arrive at [`MIN_BODY_RATE`] after [`HEADER_TIMEOUT`]
//!   of grace, else 408;
//! - connections past the cap (from the fd limit) are closed as soon as they
//!   are accepted, so the accept loop never waits for a slot;
//! - an accept error (EMFILE) is logged and retried after a back-off: the
//!   listening socket is never given up;
//! - a client that stops reading its answers (pipelining) is cut after
//!   [`WRITE_TIMEOUT`] (`deadline`);
//! - handlers are blocking code run on tokio's blocking pool, at most
//!   `max_requests` at once: past that a request gets 503 at once.

mod deadline;
pub mod exporter;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The slowest body accepted, in bytes per second, after the grace above.
pub const MIN_BODY_RATE: u64 = 64 * 1024;
/// How long a client may leave an answer unread.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request line and headers.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most connections one server holds, whatever the fd limit allows.
const MAX_CONNECTIONS: usize = 4096;
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// How often a full connection table is said, at most.
const FULL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The first and the longest pause after a failed accept.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// A request, its body read in full.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target: path and query.
    pub path: String,
    /// Header names and values as sent (values not UTF-8 read lossily).
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// An answer, made in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Response {
    /// A plain-text answer: `reason` and a newline.
    pub fn text(status: u16, reason: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{reason}\n"),
        }
    }
}

/// What a server answers with: blocking code, called on a pool thread.
pub trait Handler: Send + Sync + 'static {
    /// The answer to `request`.
    fn handle(&self, request: Request) -> Response;

    /// Told of every answer, those the core gives itself (408, 413, 503)
    /// included; nothing by default.
    fn answered(&self, _method: &str, _path: &str, _response: &Response, _started: Instant) {}
}

/// What a server allows.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest body read; a larger one gets 413.
    pub max_body_bytes: usize,
    /// Handlers running at once; one more request gets 503.
    pub max_requests: usize,
    /// How long a stop waits for the answers in flight.
    pub drain: Duration,
    /// The start of every log line, e.g. `hookbus webhook`.
    pub log_prefix: &'static str,
}

/// A bound listening socket, not yet served.
pub struct Server {
    listener: std::net::TcpListener,
    address: String,
    limits: Limits,
}

impl Server {
    /// Binds `address` (`HOST:PORT`); `setting` names it in the error
    /// (`[webhook] listen`).
    pub fn bind(address: &str, setting: &str, limits: Limits) -> Result<Server> {
        let listener = std::net::TcpListener::bind(address)
            .with_context(|| format!("cannot listen on {setting} = {address:?}"))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?.to_string();
        Ok(Server {
            listener,
            address,
            limits,
        })
    }

    /// The address it listens on (with the port the system chose for port 0).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Answers with `handler` until `stop` is set, then lets the answers in
    /// flight finish (at most `drain`).
    pub fn serve(self, handler: Arc<dyn Handler>, stop: &AtomicBool) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(self.limits.max_requests.max(1))
            .build()
            .context("cannot start the HTTP runtime")?;
        let (stopping, stopped) = watch::channel(false);
        let core = Arc::new(Core {
            handler,
            limits: self.limits,
            in_flight: Arc::new(AtomicUsize::new(0)),
            stopped,
        });
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            let connections = accept_loop(&listener, &core, stop).await;
            drop(listener);
            // Bodies still arriving are refused; answers being made finish.
            let _ = stopping.send(true);
            let _ = tokio::time::timeout(core.limits.drain, connections.shutdown()).await;
            Ok::<_, anyhow::Error>(())
        })?;
        runtime.shutdown_timeout(POLL);
        Ok(())
    }
}

/// What every connection shares.
struct Core {
    handler: Arc<dyn Handler>,
    limits: Limits,
    in_flight: Arc<AtomicUsize>,
    /// Becomes true when the server stops: bodies still arriving are refused.
    stopped: watch::Receiver<bool>,
}

/// Accepts until `stop`; returns the connections, to be shut down.
async fn accept_loop(
    listener: &tokio::net::TcpListener,
    core: &Arc<Core>,
    stop: &AtomicBool,
) -> GracefulShutdown {
    let cap = max_connections();
    let slots = Arc::new(Semaphore::new(cap));
    let mut said_full: Option<Instant> = None;
    let graceful = GracefulShutdown::new();
    let mut connection = http1::Builder::new();
    connection
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut backoff = ACCEPT_BACKOFF.0;
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tokio::time::sleep(POLL) => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and the like: the socket stays; try again later.
                eprintln!(
                    "{}: accepting: {error} (retrying in {} ms)",
                    core.limits.log_prefix,
                    backoff.as_millis()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF.0;
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Over the cap: dropping the stream closes it at once.
            if said_full.is_none_or(|said| said.elapsed() >= FULL_LOG_INTERVAL) {
                eprintln!(
                    "{}: {cap} connections open (a quarter of the open-files limit): closing new ones",
                    core.limits.log_prefix
                );
                said_full = Some(Instant::now());
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(deadline::WriteDeadline::new(stream, WRITE_TIMEOUT));
        let core = Arc::clone(core);
        let service = hyper::service::service_fn(move |request| {
            let core = Arc::clone(&core);
            async move { Ok::<_, Infallible>(core.answer(request).await) }
        });
        let served = graceful.watch(connection.serve_connection(io, service));
        tokio::spawn(async move {
            // A client that goes away or times out is not our problem.
            let _ = served.await;
            drop(slot);
        });
    }
    graceful
}

/// Connections one server holds: a quarter of the fd limit (the process has
/// other files, and may serve twice), at most [`MAX_CONNECTIONS`].
fn max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let files = if known { limit.rlim_cur } else { 1024 };
    usize::try_from(files / 4)
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(8, MAX_CONNECTIONS)
}

impl Core {
    /// Reads the body, runs the handler, logs, and makes hyper's answer.
    async fn answer(&self, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let started = Instant::now();
        let method = request.method().as_str().to_string();
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |target| target.as_str())
            .to_string();
        let response = match self.read(request, &method, &path).await {
            Ok(request) => self.run(request).await,
            Err(refusal) => refusal,
        };
        self.handler.answered(&method, &path, &response, started);
        let status = hyper::StatusCode::from_u16(response.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let mut answer = hyper::Response::new(Full::new(Bytes::from(response.body)));
        *answer.status_mut() = status;
        answer.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(response.content_type),
        );
        answer
    }

    /// The request with its body, or the answer refusing it: 413 past the
    /// cap (declared or found), 408 when it comes too slowly, 400 when cut
    /// short, 503 when the server stops meanwhile.
    async fn read(
        &self,
        request: hyper::Request<Incoming>,
        method: &str,
        path: &str,
    ) -> Result<Request, Response> {
        let cap = self.limits.max_body_bytes;
        let too_large = || Response::text(413, &format!("body over the limit of {cap} bytes"));
        let declared = request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > cap as u64) {
            return Err(too_large());
        }
        let (parts, body) = request.into_parts();
        let expected = declared.unwrap_or(cap as u64);
        let deadline = HEADER_TIMEOUT + Duration::from_secs(expected / MIN_BODY_RATE);
        let mut stopped = self.stopped.clone();
        let body = tokio::select! {
            read = tokio::time::timeout(deadline, Limited::new(body, cap).collect()) => read,
            _ = stopped.wait_for(|stopped| *stopped) => {
                return Err(Response::text(503, "the server is stopping"));
            }
        };
        let body = match body {
            Err(_) => {
                let reason = format!("the body did not arrive within {} s", deadline.as_secs());
                return Err(Response::text(408, &reason));
            }
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(too_large());
            }
            Ok(Err(error)) => {
                return Err(Response::text(
                    400,
                    &format!("cannot read the body: {error}"),
                ));
            }
            Ok(Ok(collected)) => collected.to_bytes().to_vec(),
        };
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect();
        Ok(Request {
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body,
        })
    }

    /// Runs the handler on the blocking pool, or 503 when `max_requests`
    /// are running already.
    async fn run(&self, request: Request) -> Response {
        let max = self.limits.max_requests;
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= max {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Response::text(503, &format!("busy: {max} requests in flight"));
        }
        // Counted until the handler returns, even when its client has gone.
        let running = Running(Arc::clone(&self.in_flight));
        let handler = Arc::clone(&self.handler);
        let answer = tokio::task::spawn_blocking(move || {
            let _running = running;
            handler.handle(request)
        });
        answer
            .await
            .unwrap_or_else(|_| Response::text(500, "the request's handler failed"))
    }
}

/// One handler running; uncounted when dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
