//! A stand-in HTTP server (a fake Jenkins) on a free loopback port: it logs
//! exactly every request it got and answers from a script.
//!
//! ```ignore
//! mod httputil;
//! use httputil::{FakeHttp, Reply};
//!
//! let server = FakeHttp::start();                 // answers 200 "ok" by default
//! server.push(Reply::status(500));                // the next request gets 500,
//! server.push(Reply::status(201).header("Location", "/queue/item/1/"));
//! server.on_path("/job/x/build", Reply::status(404)); // then per path (query ignored)
//! server.set_default(Reply::hang());              // then the default
//! let url = server.url("/job/x/build?token=t");   // "http://127.0.0.1:PORT/job/x/build?token=t"
//! // … make requests (in-process, or from a `hookbus` daemon) …
//! let got = server.wait_for(2);                   // bounded wait for ≥ 2 requests
//! assert_eq!(got[0].method, "GET");
//! assert_eq!(got[0].target, "/job/x/build?token=t");
//! assert_eq!(got[0].header("authorization"), Some("Basic Y2k6cHc="));
//! assert_eq!(server.requests().len(), 2);         // nothing more arrived
//! ```
//!
//! Choosing the reply: the queue first (one entry per request, any path), then
//! the reply for the request's path, then the default. [`Reply::hang`] keeps the
//! request unanswered (a server that never answers) until the server is dropped.
//! The server runs on its own thread; dropping it stops the thread. It serves
//! plain HTTP on 127.0.0.1 only, so daemon tests point the real `hookbus` at
//! [`FakeHttp::url`] and assert on [`FakeHttp::requests`].

#![allow(dead_code)] // each test binary uses a different part

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long [`FakeHttp::wait_for`] waits before failing the test.
const BOUND: Duration = Duration::from_secs(30);

/// One request, as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target: path and query, byte for byte as sent.
    pub target: String,
    /// Header fields in the order they arrived (names as sent).
    pub headers: Vec<(String, String)>,
    /// The body (empty when there was none).
    pub body: Vec<u8>,
}

impl Logged {
    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
    hang: bool,
}

impl Reply {
    /// This status with the body `"ok"` for 2xx, else the status's number.
    pub fn status(status: u16) -> Reply {
        let body = if (200..300).contains(&status) {
            "ok".to_string()
        } else {
            format!("status {status}")
        };
        Reply {
            status,
            body,
            headers: Vec::new(),
            hang: false,
        }
    }

    /// Never answers: the request stays open until the server is dropped.
    pub fn hang() -> Reply {
        Reply {
            hang: true,
            ..Reply::status(200)
        }
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<String>) -> Reply {
        self.body = body.into();
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    paths: HashMap<String, Reply>,
    default: Option<Reply>,
}

impl Script {
    fn next(&mut self, path: &str) -> Reply {
        self.queue
            .pop_front()
            .or_else(|| self.paths.get(path).cloned())
            .or_else(|| self.default.clone())
            .unwrap_or_else(|| Reply::status(200))
    }
}

/// The running server; stopped when dropped.
pub struct FakeHttp {
    /// `127.0.0.1:PORT`.
    pub address: String,
    server: Arc<tiny_http::Server>,
    log: Arc<Mutex<Vec<Logged>>>,
    script: Arc<Mutex<Script>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHttp {
    /// Starts a server on a free port of 127.0.0.1 that answers 200 "ok".
    pub fn start() -> FakeHttp {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let address = server
            .server_addr()
            .to_ip()
            .expect("an IP address")
            .to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, log, script, stopping) = (
                Arc::clone(&server),
                Arc::clone(&log),
                Arc::clone(&script),
                Arc::clone(&stopping),
            );
            std::thread::spawn(move || serve(&server, &log, &script, &stopping))
        };
        FakeHttp {
            address,
            server,
            log,
            script,
            stopping,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `target` (a path, maybe with a query).
    pub fn url(&self, target: &str) -> String {
        format!("http://{}{target}", self.address)
    }

    /// Queues a reply for the next request that has none queued before it.
    pub fn push(&self, reply: Reply) {
        self.script.lock().unwrap().queue.push_back(reply);
    }

    /// The reply for requests to `path` (query ignored) once the queue is empty.
    pub fn on_path(&self, path: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .paths
            .insert(path.to_string(), reply);
    }

    /// The reply when neither the queue nor a path says otherwise.
    pub fn set_default(&self, reply: Reply) {
        self.script.lock().unwrap().default = Some(reply);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `count` requests arrived; panics with
    /// what did arrive otherwise.
    pub fn wait_for(&self, count: usize) -> Vec<Logged> {
        let deadline = Instant::now() + BOUND;
        loop {
            let got = self.requests();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the fake HTTP server got {} of {count} requests within {BOUND:?}: {got:#?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server's loop: log, then answer (or keep hanging requests until the end).
fn serve(
    server: &tiny_http::Server,
    log: &Mutex<Vec<Logged>>,
    script: &Mutex<Script>,
    stopping: &AtomicBool,
) {
    let mut hanging = Vec::new();
    while !stopping.load(Ordering::SeqCst) {
        let Ok(mut request) = server.recv() else {
            continue; // an accept error, or unblocked to stop (checked above)
        };
        let mut body = Vec::new();
        let _ = request.as_reader().read_to_end(&mut body);
        let logged = Logged {
            method: request.method().as_str().to_string(),
            target: request.url().to_string(),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                .collect(),
            body,
        };
        let reply = script.lock().unwrap().next(logged.path());
        log.lock().unwrap().push(logged);
        if reply.hang {
            hanging.push(request);
            continue;
        }
        let mut response =
            tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
        for (name, value) in &reply.headers {
            let header = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                .expect("a valid scripted header");
            response.add_header(header);
        }
        let _ = request.respond(response);
    }
}
