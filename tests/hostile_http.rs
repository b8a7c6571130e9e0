//! `hookbus webhook` and `[listen] metrics` against hostile HTTP clients: the
//! real daemons, raw-socket attackers written here (real clients do not
//! misbehave on demand), and a signed push or a metrics read that must still
//! be answered.

mod brokers;
mod gitutil;
mod listenutil;
mod webhookutil;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use webhookutil::{github_headers, pairs, try_post, FileLimit, Server};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhook");
/// A length no server should try to hold: a terabyte.
const HUGE_LENGTH: &str = "1000000000000";
/// The servers' header timeout (src/http_server), which frees what idle
/// attackers hold.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A webhook with a GitHub endpoint storing pushes in its outbox.
fn config(dir: &Path) -> String {
    format!(
        "[outbox]\ndir = \"{}/outbox\"\n[log]\nsyslog = \"\"\n[[route]]\ndestination = \"/topic/t\"\nformat = \"text\"\n\
         [webhook]\nlisten = \"{{listen}}\"\n[[webhook.endpoint]]\npath = \"/github\"\nkind = \"github\"\nsecret_file = \"{{secret}}\"\n",
        dir.display()
    )
}

/// The webhook of [`config`] with at most `nofile` files, `busy` of them
/// open from the start.
fn start_with_files(dir: &Path, nofile: u64, busy: u32) -> Server {
    let files = FileLimit { nofile, busy };
    Server::start_limited(dir, &config(dir), Some(files))
}

/// A signed push with a fresh delivery id; the status, or why none came.
fn push(address: &str, delivery: &str) -> Result<(u16, String), String> {
    let body = std::fs::read(Path::new(FIXTURES).join("github-push-branch-create.json")).unwrap();
    let headers = github_headers("push", delivery, &body);
    try_post(address, "/github", &pairs(&headers), &body)
}

/// Pushes until one is answered 202 or `cap` passes; how long it took.
fn push_answered_within(address: &str, cap: Duration) -> Duration {
    let started = Instant::now();
    for attempt in 0.. {
        let delivery = format!("retry-{attempt}-{}", started.elapsed().as_nanos());
        let last = match push(address, &delivery) {
            Ok((202, _)) => return started.elapsed(),
            Ok((status, reason)) => format!("{status} {reason}"),
            Err(error) => error,
        };
        assert!(
            started.elapsed() < cap,
            "no push answered within {cap:?}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    unreachable!()
}

/// A connection that has sent `bytes` and then says nothing more.
fn attacker(address: &str, bytes: &[u8]) -> std::io::Result<TcpStream> {
    let address = address.parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.write_all(bytes)?;
    Ok(stream)
}

/// What the server says on `stream` until it closes (bounded): the status of
/// its first answer, or `None` when it closed without one.
fn status_of(stream: &mut TcpStream, bound: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(bound)).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    reply.split(' ').nth(1)?.parse().ok()
}

/// A client that pipelines `request` over and over and never reads an
/// answer; it gives up writing once the server stops reading (bounded).
fn pipeline_without_reading(address: &str, request: &'static [u8]) -> JoinHandle<TcpStream> {
    let mut stream = TcpStream::connect(address).unwrap();
    let small: libc::c_int = 4096;
    // SAFETY: setsockopt reads `small` for the size given; the fd is open.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) && stream.write_all(request).is_ok() {}
        stream
    })
}

#[test]
fn a_huge_declared_length_is_refused_unread_and_the_webhook_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(dir.path()));
    for path in ["/github", "/nowhere"] {
        let request =
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {HUGE_LENGTH}\r\n\r\n");
        let mut stream = attacker(&server.address, request.as_bytes()).unwrap();
        assert_eq!(
            status_of(&mut stream, Duration::from_secs(10)),
            Some(413),
            "{path}"
        );
    }
    assert_eq!(push(&server.address, "after-huge").unwrap().0, 202);
    assert!(
        !server.log().contains("memory allocation"),
        "{}",
        server.log()
    );
}

#[test]
fn forty_slow_bodies_and_a_slow_header_do_not_delay_a_signed_push() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(dir.path()));
    let head = b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"ref\"";
    let mut slow_bodies: Vec<TcpStream> = (0..40)
        .map(|_| attacker(&server.address, head).unwrap())
        .collect();
    let mut slow_header = attacker(&server.address, b"POST /github HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let answer = push(&server.address, "among-slow-bodies");
    assert_eq!(
        answer.as_ref().map(|(status, _)| *status),
        Ok(202),
        "{answer:?}"
    );
    // Answered while every attacker still holds its connection, long before
    // any of them could have been timed out.
    assert!(
        started.elapsed() < HEADER_TIMEOUT / 2,
        "{:?}",
        started.elapsed()
    );
    // Then the attackers are timed out: 408 for a body, a close for a header.
    let bound = HEADER_TIMEOUT * 3;
    assert_eq!(status_of(&mut slow_bodies[0], bound), Some(408));
    assert_eq!(status_of(&mut slow_header, bound), None);
    let log = server.log();
    assert!(log.contains("hookbus webhook: 408 POST /github"), "{log}");
}

#[test]
fn more_idle_connections_than_open_files_leave_the_port_answering() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_files(dir.path(), 128, 0);
    let mut idle = Vec::new();
    let mut refused = 0;
    while idle.len() < 300 && refused < 5 {
        match attacker(&server.address, b"") {
            Ok(stream) => idle.push(stream),
            Err(_) => refused += 1,
        }
    }
    // While they are all connected, a push gets in once the idle ones it
    // holds are timed out and free their slots.
    push_answered_within(&server.address, HEADER_TIMEOUT * 4);
    drop(idle);
    push_answered_within(&server.address, Duration::from_secs(10));
    let log = server.log();
    assert!(log.contains("32 connections open"), "{log}");
}

#[test]
fn a_client_that_pipelines_and_never_reads_does_not_freeze_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(dir.path()));
    let pipeliner = pipeline_without_reading(
        &server.address,
        b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    );
    let stuck = pipeliner.join().unwrap();
    let answer = push(&server.address, "beside-a-pipeliner");
    assert_eq!(
        answer.as_ref().map(|(status, _)| *status),
        Ok(202),
        "{answer:?}"
    );
    drop(stuck);
}

#[test]
fn the_metrics_listener_survives_a_huge_declared_length_and_a_pipeliner() {
    let broker = brokers::activemq();
    let origin = listenutil::Server::new(&broker);
    origin.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        "{}{}{}",
        broker.config(),
        listenutil::listen_table(d, &origin.topic, "metrics = \"127.0.0.1:0\""),
        listenutil::mirror_table("app", &d.join("app"), &origin.url(), "fetch", None),
    );
    let listener = listenutil::Listener::start(d, &config);
    let address = listener.metrics_address();
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {HUGE_LENGTH}\r\n\r\n");
    let mut huge = attacker(&address, request.as_bytes()).unwrap();
    assert_eq!(status_of(&mut huge, Duration::from_secs(10)), Some(413));
    let pipeliner = pipeline_without_reading(&address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let stuck = pipeliner.join().unwrap();
    let healthy = || listenutil::http_get(&address, "/healthz").0 == 200;
    assert!(listenutil::wait_until(listenutil::FOLLOW_CAP, healthy));
    let (status, body) = listenutil::http_get(&address, "/metrics");
    assert_eq!(status, 200, "{body}");
    drop(stuck);
}

#[test]
fn a_process_out_of_files_backs_off_and_accepts_again() {
    // Other files use up most of the limit, so accepting fails with EMFILE
    // long before the connection cap (a quarter of the limit) is reached.
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_files(dir.path(), 128, 110);
    let idle: Vec<TcpStream> = (0..40)
        .filter_map(|_| attacker(&server.address, b"").ok())
        .collect();
    let out_of_files = || server.log().contains("accepting: Too many open files");
    assert!(
        listenutil::wait_until(Duration::from_secs(10), out_of_files),
        "{}",
        server.log()
    );
    drop(idle);
    push_answered_within(&server.address, HEADER_TIMEOUT * 2);
}
