//! `hookbus relay` for tests: the real binary started with its stderr
//! gathered and stopped by pid, and a TCP forwarder that plays a broker
//! going away, coming back or falling silent.

#![allow(dead_code)] // each test binary uses a different part of the fixture

use crate::gitutil::HOOKBUS;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the relay may take to hold the outbox, or to log a delivery.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `hookbus relay`, its stderr gathered line by line; stopped by
/// pid when dropped.
pub struct Relay {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts the relay on `config` (its command passed through `wrap`) and
    /// waits until it holds the outbox.
    pub fn start(config: &Path, wrap: impl Fn(Command) -> Command) -> Relay {
        let mut command = Command::new(HOOKBUS);
        command.arg("--config").arg(config).arg("relay");
        // The pushes' state directory (tests/pushutil): the relay takes a
        // hook's push only when both would keep pushes in one place, as
        // under systemd, where both have the account's HOME.
        let root = config.parent().unwrap();
        command.env("XDG_STATE_HOME", root.join("state"));
        let mut child = wrap(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                lines.lock().unwrap().push(line.unwrap());
            }
        });
        let relay = Relay {
            child,
            log,
            reader: Some(reader),
        };
        relay.wait_for("the relay holding the outbox", |lines| {
            lines
                .iter()
                .any(|line| line.contains("relay: holding outbox"))
        });
        relay
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most [`PATIENCE`]) until `done` holds for the log.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let until = Instant::now() + PATIENCE;
        while !done(&self.lines()) {
            assert!(
                Instant::now() < until,
                "no {what} in the relay's log: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Messages the relay logged as delivered.
    pub fn delivered(&self) -> usize {
        delivered(&self.lines())
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-s", signal, &pid]).status();
        assert!(sent.unwrap().success());
    }

    /// SIGTERM; the exit status and the whole log.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        (status, self.lines())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The messages in the relay's "delivered N message(s)" lines.
pub fn delivered(lines: &[String]) -> usize {
    (lines.iter())
        .filter_map(|line| line.split("relay: delivered ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum()
}

/// `hookbus flush` on `config` (through `wrap`), beside the relay.
pub fn flush(config: &Path, wrap: impl Fn(Command) -> Command) -> Output {
    let mut command = Command::new(HOOKBUS);
    command.arg("--config").arg(config).arg("flush");
    wrap(command).output().unwrap()
}
/// Forwards connections from `listen` to `target` (the broker "coming
/// back" at the address the config names), or, made silent, accepts them
/// and answers nothing; stops accepting when dropped.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    silent: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accepting: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// A forwarder at `listen`, an address that was dead until now.
    pub fn start(listen: &str, target: String) -> Forwarder {
        Forwarder::serve(TcpListener::bind(listen).unwrap(), target)
    }

    /// A forwarder on a loopback port of its own, and that port's address:
    /// bound before anyone learns it, so no other connection can take it
    /// meanwhile (as one can a port `dead_address` released).
    pub fn listening(target: String) -> (Forwarder, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        (Forwarder::serve(listener, target), address)
    }

    fn serve(listener: TcpListener, target: String) -> Forwarder {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let silent = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (stopping, quiet, streams) =
            (Arc::clone(&stop), Arc::clone(&silent), Arc::clone(&open));
        let accepting = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let mut streams = streams.lock().unwrap();
                        streams.push(client.try_clone().unwrap());
                        if quiet.load(Ordering::Relaxed) {
                            continue; // held open, never answered
                        }
                        let broker = TcpStream::connect(&target).unwrap();
                        streams.push(broker.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), broker.try_clone().unwrap());
                        pipe(broker, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Forwarder {
            stop,
            silent,
            open,
            accepting: Some(accepting),
        }
    }

    /// Cuts every open connection; new ones are held and never answered
    /// (`true`) or forwarded again (`false`).
    pub fn go_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Relaxed);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` on a thread until `from` ends.
pub fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.go_silent(true);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

/// `[relay] metrics`: where the relay serves them, from its log.
pub fn metrics_address(relay: &Relay) -> String {
    let lines = relay.lines();
    let line = lines
        .iter()
        .find_map(|line| line.split("relay: metrics on http://").nth(1));
    let address = line.unwrap_or_else(|| panic!("no metrics address: {lines:#?}"));
    address.trim_end_matches("/metrics").to_string()
}

/// The relay's samples (as the prometheus_client package reads them:
/// `name{labels}`) and its `/healthz` status.
pub fn scrape(address: &str) -> (std::collections::BTreeMap<String, f64>, u16) {
    let (status, exposition) = crate::listenutil::http_get(address, "/metrics");
    assert_eq!(status, 200, "{exposition}");
    let samples = crate::listenutil::parse_metrics(&exposition);
    (samples, crate::listenutil::http_get(address, "/healthz").0)
}

/// Adds `[relay] metrics` on a free loopback port to the server's config.
pub fn with_metrics(server: &crate::pushutil::Server) {
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&server.config)
        .unwrap();
    std::io::Write::write_all(&mut config, b"\n[relay]\nmetrics = \"127.0.0.1:0\"\n").unwrap();
}

/// A server of `layout` configured for `broker`, with `[relay] metrics`, and
/// a relay holding its outbox: the server, the relay and its metrics address.
pub fn metered_relay(
    broker: &crate::brokers::Broker,
    layout: crate::pushutil::Layout,
) -> (crate::pushutil::Server, Relay, String) {
    let server = crate::pushutil::Server::new(layout);
    server.configure(broker);
    with_metrics(&server);
    let relay = Relay::start(&server.config, |command| command);
    let metrics = metrics_address(&relay);
    (server, relay, metrics)
}
