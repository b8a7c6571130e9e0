//! `hookbus listen` through trouble: killed and restarted, its broker
//! restarted, its link silently dropped by a "firewall", its config reloaded.
//! Real daemon, real brokers, real pushes; loops bounded, processes by pid.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::{Broker, OwnActiveMq};
use listenutil::{listen_table, mirror_table, read, rev, wait_until, Listener, Server, FOLLOW_CAP};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `N` of the daemon's last "stopped (N received, …)" line.
fn received_in_last_run(log: &str) -> usize {
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains("listen: stopped ("))
        .expect("a stopped line");
    let count = line
        .split("stopped (")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    count.parse().unwrap()
}

/// A config with a fetch and a checkout mirror of the server's repository.
fn two_mirrors(broker_table: &str, d: &Path, server: &Server, listen_extra: &str) -> String {
    format!(
        "{broker_table}{}{}{}",
        listen_table(d, &server.topic, listen_extra),
        mirror_table("app", &d.join("fetch"), &server.url(), "fetch", None),
        mirror_table(
            "app",
            &d.join("checkout"),
            &server.url(),
            "checkout",
            Some(&d.join("www"))
        ),
    )
}

fn assert_converged(d: &Path, commit: &str, listener: &Listener) {
    let converged = wait_until(FOLLOW_CAP, || {
        rev(&d.join("fetch"), "origin/master").as_deref() == Some(commit)
            && std::fs::read_link(d.join("www")).is_ok_and(|link| link.ends_with(commit))
    });
    assert!(
        converged,
        "mirrors did not reach {commit}:\n{}",
        listener.log()
    );
}

fn killed_listener_catches_up(broker: &Broker) {
    let server = Server::new(broker);
    server.push_files("master", "first", &[("a.txt", b"0\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let durable = format!("durable = \"test-{}\"", std::process::id());
    let mut listener = Listener::start(d, &two_mirrors(&broker.config(), d, &server, &durable));
    listener.wait_log("connected to", 1);
    for round in 1..=3 {
        server.push_files(
            "master",
            &format!("up {round}"),
            &[("a.txt", format!("{round}\n").as_bytes())],
        );
    }
    listener.kill();
    for round in 4..=8 {
        server.push_files(
            "master",
            &format!("down {round}"),
            &[("a.txt", format!("{round}\n").as_bytes())],
        );
    }
    let last = server.fixture.rev("HEAD");
    listener.restart();
    assert_converged(d, &last, &listener);
    assert_eq!(read(&d.join("www/a.txt")).as_deref(), Some("8\n"));
    // SIGTERM leaves queued work undone (and unacknowledged, for redelivery):
    // let this run answer everything first.
    listener.wait_quiet(Duration::from_secs(2));
    assert!(listener.terminate().success());
    let caught_up = received_in_last_run(&listener.log());
    assert!(
        caught_up >= 5,
        "the durable subscription kept {caught_up} of 5 messages:\n{}",
        listener.log()
    );
    // Everything was acknowledged: a third run is given nothing again.
    listener.restart();
    listener.wait_log("connected to", 3);
    std::thread::sleep(Duration::from_secs(2));
    assert!(listener.terminate().success());
    assert_eq!(
        received_in_last_run(&listener.log()),
        0,
        "{}",
        listener.log()
    );
}

#[test]
fn a_killed_listener_gets_what_it_missed_from_activemq() {
    killed_listener_catches_up(&brokers::activemq());
}

#[test]
fn a_killed_listener_gets_what_it_missed_from_rabbitmq() {
    killed_listener_catches_up(&brokers::rabbitmq());
}

#[test]
fn a_restarted_broker_is_reconnected_and_the_mirrors_converge() {
    let scratch = tempfile::tempdir().unwrap();
    let own = OwnActiveMq::start(scratch.path());
    let broker = own.broker();
    let server = Server::new(&broker);
    server.push_files("master", "first", &[("a.txt", b"0\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listener = Listener::start(
        d,
        &two_mirrors(
            &broker.config(),
            d,
            &server,
            "durable = \"restart\"\nmetrics = \"127.0.0.1:0\"",
        ),
    );
    listener.wait_log("connected to", 1);
    let connected = "hookbus_broker_connected{}";
    let reconnects = "hookbus_broker_reconnects_total{}";
    // The loop updates the metrics right after the log line: wait for them.
    let shows =
        |key: &str, value: f64| wait_until(FOLLOW_CAP, || listener.metric(key) == Some(value));
    assert!(shows(connected, 1.0));
    let up = server.push_files("master", "while up", &[("a.txt", b"1\n")]);
    assert_converged(d, &up, &listener);
    own.down();
    for round in 2..=4 {
        // The hook keeps these in its outbox while the broker is down.
        server.push_files(
            "master",
            &format!("down {round}"),
            &[("a.txt", format!("{round}\n").as_bytes())],
        );
    }
    let last = server.fixture.rev("HEAD");
    listener.wait_log("lost ", 1);
    assert!(shows(connected, 0.0), "{}", listener.log());
    own.up();
    let flushed = wait_until(FOLLOW_CAP, || {
        server.fixture.hookbus(&["flush"], "").status.success()
    });
    assert!(flushed, "the server's outbox did not flush");
    assert_converged(d, &last, &listener);
    listener.wait_log("connected to", 2);
    assert!(shows(connected, 1.0));
    assert_eq!(listener.metric(reconnects), Some(1.0));
}

/// A loopback TCP proxy that behaves like a firewall dropping idle
/// connections: after [`Firewall::drop_existing`] it silently stops
/// forwarding on every connection open at the time (no FIN, no RST), while
/// new connections pass. It counts what it did.
struct Firewall {
    address: String,
    generation: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    dropped_bytes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Firewall {
    fn start(upstream: String) -> Firewall {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let firewall = Firewall {
            address: listener.local_addr().unwrap().to_string(),
            generation: Arc::new(AtomicUsize::new(0)),
            connections: Arc::new(AtomicUsize::new(0)),
            dropped_bytes: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(Vec::new())),
        };
        listener.set_nonblocking(true).unwrap();
        let (generation, connections, dropped, stop, open) = (
            Arc::clone(&firewall.generation),
            Arc::clone(&firewall.connections),
            Arc::clone(&firewall.dropped_bytes),
            Arc::clone(&firewall.stop),
            Arc::clone(&firewall.open),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let server = TcpStream::connect(&upstream).unwrap();
                connections.fetch_add(1, Ordering::Relaxed);
                let born = generation.load(Ordering::Relaxed);
                open.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (generation, dropped, stop) = (
                        Arc::clone(&generation),
                        Arc::clone(&dropped),
                        Arc::clone(&stop),
                    );
                    std::thread::spawn(move || pump(from, to, born, &generation, &dropped, &stop));
                }
            }
        });
        firewall
    }

    fn drop_existing(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

/// Forwards bytes until the connection's generation is dropped; after that
/// it reads and discards them.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    born: usize,
    generation: &AtomicUsize,
    dropped: &AtomicUsize,
    stop: &AtomicBool,
) {
    from.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buffer = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match from.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) if generation.load(Ordering::Relaxed) == born => {
                if to.write_all(&buffer[..read]).is_err() {
                    return;
                }
            }
            Ok(read) => {
                dropped.fetch_add(read, Ordering::Relaxed);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for stream in self.open.lock().unwrap().iter() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn heart_beats_notice_a_firewall_that_silently_drops_the_link() {
    let broker = brokers::activemq();
    let firewall = Firewall::start(broker.address.clone());
    let server = Server::new(&broker);
    server.push_files("master", "first", &[("a.txt", b"0\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let through_firewall = broker.config().replace(&broker.address, &firewall.address);
    let config = two_mirrors(&through_firewall, d, &server, "durable = \"firewalled\"");
    let listener = Listener::start(d, &config);
    listener.wait_log("connected to", 1);
    let before = server.push_files("master", "before", &[("a.txt", b"1\n")]);
    assert_converged(d, &before, &listener);
    firewall.drop_existing();
    let after = server.push_files("master", "after", &[("a.txt", b"2\n")]);
    listener.wait_log("went silent", 1);
    assert_converged(d, &after, &listener);
    eprintln!(
        "{}firewall: {} connections, {} bytes dropped",
        listener.log(),
        firewall.connections.load(Ordering::Relaxed),
        firewall.dropped_bytes.load(Ordering::Relaxed)
    );
    assert!(firewall.connections.load(Ordering::Relaxed) >= 2);
}

#[test]
fn sighup_reloads_the_config_and_a_bad_one_is_refused() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    server.push_files("master", "first", &[("a.txt", b"0\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = two_mirrors(&broker.config(), d, &server, "");
    let mut listener = Listener::start(d, &config);
    listener.wait_log("connected to", 1);
    std::fs::write(&listener.config, format!("{config}\n[listen.typo]\n")).unwrap();
    listener.signal(libc::SIGHUP);
    listener.wait_log("config not reloaded, keeping the old one", 1);
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    assert_converged(d, &second, &listener);
    let more = mirror_table("app", &d.join("third"), &server.url(), "in-place", None);
    std::fs::write(&listener.config, format!("{config}{more}")).unwrap();
    listener.signal(libc::SIGHUP);
    listener.wait_log("config reloaded: 3 mirror(s)", 1);
    let cloned = wait_until(FOLLOW_CAP, || {
        read(&d.join("third/a.txt")).as_deref() == Some("2\n")
    });
    assert!(cloned, "{}", listener.log());
    assert!(listener.terminate().success());
}

#[test]
fn the_listener_subscribes_over_tls() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    server.push_files("master", "first", &[("a.txt", b"0\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tls = format!(
        "{}ca_file = \"{}\"\n",
        broker.config().replace(
            &format!("stomp://{}", broker.address),
            &format!("stomp+ssl://{}", brokers::activemq_tls())
        ),
        brokers::test_ca()
    );
    let listener = Listener::start(d, &two_mirrors(&tls, d, &server, ""));
    listener.wait_log("connected to stomp+ssl://localhost:", 1);
    let pushed = server.push_files("master", "over tls", &[("a.txt", b"1\n")]);
    assert_converged(d, &pushed, &listener);
}
