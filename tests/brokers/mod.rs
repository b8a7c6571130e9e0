//! Test brokers started by `scripts/test` (addresses in `HOOKBUS_TEST_*`), and
//! an independent subscriber (python3-stomp) to check what arrived.

#![allow(dead_code)] // each test binary uses a different part of the helper

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The publishing account on both brokers (see scripts/brokers): the passcode
/// holds a backslash and a colon on purpose.
pub const LOGIN: &str = "hookbus";
pub const PASSCODE: &str = r"hb\pass:word";

const SUBSCRIBER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/subscribe.py");
const PUBLISHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/publish.py");
/// How long a subscriber waits for its messages.
const SUBSCRIBER_TIMEOUT_S: u64 = 10;

/// One running test broker.
#[derive(Debug, Clone)]
pub struct Broker {
    pub name: &'static str,
    /// `host:port` of the plain STOMP listener.
    pub address: String,
    /// The CONNECT `host` header publishers use.
    pub vhost: &'static str,
    /// The subscriber's own account (not the publisher's).
    subscriber_login: &'static str,
    subscriber_passcode: &'static str,
}

fn address(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: start the test brokers: run scripts/test (or scripts/brokers start-activemq DIR PORT SSL_PORT / start-rabbitmq DIR PORT and export HOOKBUS_TEST_ACTIVEMQ, HOOKBUS_TEST_ACTIVEMQ_SSL, HOOKBUS_TEST_CA, HOOKBUS_TEST_RABBITMQ)"
        )
    })
}

pub fn activemq() -> Broker {
    activemq_at(address("HOOKBUS_TEST_ACTIVEMQ"))
}

/// An ActiveMQ started by `scripts/brokers start-activemq` at `address`, such
/// as one a test starts and stops itself.
pub fn activemq_at(address: String) -> Broker {
    Broker {
        name: "ActiveMQ",
        address,
        vhost: "/",
        subscriber_login: "reader",
        subscriber_passcode: "reader",
    }
}

pub fn rabbitmq() -> Broker {
    Broker {
        name: "RabbitMQ",
        address: address("HOOKBUS_TEST_RABBITMQ"),
        vhost: "hookbus",
        subscriber_login: "guest",
        subscriber_passcode: "guest",
    }
}

pub fn both() -> [Broker; 2] {
    [activemq(), rabbitmq()]
}

/// `host:port` of ActiveMQ's stomp+ssl listener (its certificate names `localhost`).
pub fn activemq_tls() -> String {
    address("HOOKBUS_TEST_ACTIVEMQ_SSL")
}

/// The test CA that signed ActiveMQ's TLS certificate.
pub fn test_ca() -> String {
    address("HOOKBUS_TEST_CA")
}

/// A loopback port where nothing listens (bound, then released).
pub fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address.to_string()
}

/// A destination name no other test uses.
pub fn unique(kind: &str, name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "/{kind}/hookbus-test.{name}.{}.{}.{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl Broker {
    /// A `[broker]` table publishing to this broker as the test account.
    pub fn config(&self) -> String {
        format!(
            "[broker]\nurl = \"stomp://{}\"\nlogin = \"{LOGIN}\"\npasscode = '{PASSCODE}'\nvhost = \"{}\"\n",
            self.address, self.vhost
        )
    }

    /// The same `[broker]` table with ActiveMQ's `reader` account, which may
    /// log in and read but not write: every SEND is refused.
    pub fn reader_config(&self) -> String {
        self.config()
            .replace(&format!("login = \"{LOGIN}\""), "login = \"reader\"")
            .replace(PASSCODE, "reader")
    }

    /// Publishes `messages` (headers, body) with the independent client
    /// (python3-stomp) as an account allowed to publish, each receipted.
    pub fn publish_independently(&self, destination: &str, messages: &[(Vec<(&str, &str)>, &str)]) {
        use std::io::Write;
        let list: Vec<Value> = messages
            .iter()
            .map(|(headers, body)| {
                let headers: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(key, value)| (key.to_string(), Value::from(*value)))
                    .collect();
                serde_json::json!({"headers": headers, "body": body})
            })
            .collect();
        let (host, port) = self.address.rsplit_once(':').unwrap();
        // stomp.py does not escape CONNECT headers, which RabbitMQ unescapes:
        // there the subscriber's plain account (allowed to write) is used.
        let (login, passcode) = match self.name {
            "RabbitMQ" => (self.subscriber_login, self.subscriber_passcode),
            _ => (LOGIN, PASSCODE),
        };
        let mut child = Command::new("/usr/bin/python3")
            .arg(PUBLISHER)
            .args([host, port, login, passcode, self.vhost, destination])
            .stdin(Stdio::piped())
            .spawn()
            .expect(
                "run tests/support/publish.py (needs python3-stomp: scripts/install-test-deps)",
            );
        let json = serde_json::to_vec(&list).unwrap();
        child.stdin.take().unwrap().write_all(&json).unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{} publish.py failed: {status}",
            self.name
        );
    }

    /// Subscribes with the independent client; returns once the broker has
    /// receipted the subscription.
    pub fn subscribe(&self, destination: &str, count: usize) -> Subscription {
        self.listen(destination, count, SUBSCRIBER_TIMEOUT_S as f64, None)
    }

    /// Like [`Broker::subscribe`], but after `count` messages it goes on until
    /// none has come for `idle`, so a duplicate shows; with `count` 0 it drains
    /// a queue until idle. `cap` bounds the whole wait.
    pub fn drain(
        &self,
        destination: &str,
        count: usize,
        idle: Duration,
        cap: Duration,
    ) -> Subscription {
        self.listen(destination, count, cap.as_secs_f64(), Some(idle))
    }

    fn listen(
        &self,
        destination: &str,
        count: usize,
        timeout_s: f64,
        idle: Option<Duration>,
    ) -> Subscription {
        let (host, port) = self.address.rsplit_once(':').unwrap();
        let mut child = Command::new("/usr/bin/python3")
            .arg(SUBSCRIBER)
            .args([host, port, self.subscriber_login, self.subscriber_passcode])
            .args([self.vhost, destination])
            .arg(count.to_string())
            .arg(timeout_s.to_string())
            .args(idle.map(|idle| idle.as_secs_f64().to_string()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "run tests/support/subscribe.py (needs python3-stomp: scripts/install-test-deps)",
            );
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if line.trim() != "READY" {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} subscriber for {destination} did not get ready: {line:?}",
                self.name
            );
        }
        Subscription {
            child,
            stdout,
            expected: count,
        }
    }
}

/// A message as the independent subscriber received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: serde_json::Map<String, Value>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no header {name} in {:?}", self.headers))
    }
}

/// A running subscriber.
pub struct Subscription {
    child: Child,
    stdout: BufReader<ChildStdout>,
    expected: usize,
}

impl Subscription {
    /// Waits (bounded by the subscriber's own timeout) for the messages and
    /// returns them; fails when fewer than expected arrived.
    pub fn messages(mut self) -> Vec<Received> {
        let messages = self.received();
        assert_eq!(
            messages.len(),
            self.expected,
            "expected {} message(s), got {messages:#?}",
            self.expected
        );
        messages
    }

    /// Returns once the first message has arrived; fails when none came
    /// before the subscriber's timeout.
    pub fn wait_first(&mut self) {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "FIRST", "no message arrived");
    }

    /// Whatever arrived before the subscriber's timeout (or idle end); the
    /// subscriber stops itself (SIGALRM) shortly after it, so reading to its
    /// end is bounded.
    pub fn received(&mut self) -> Vec<Received> {
        let mut out = String::new();
        self.stdout.read_to_string(&mut out).unwrap();
        let _ = self.child.wait();
        let out = out.trim_start().strip_prefix("FIRST").unwrap_or(&out);
        let list: Vec<Value> =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        list.into_iter()
            .map(|item| Received {
                headers: item["headers"].as_object().unwrap().clone(),
                body: base64_decode(item["body"].as_str().unwrap()),
            })
            .collect()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Decodes standard base64 (the subscriber script sends bodies so).
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {text:?}"),
        }
    };
    let mut out = Vec::new();
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | value(c) << (18 - 6 * i));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

const BROKERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/brokers");

fn script(args: &[&str]) -> Output {
    let out = Command::new(BROKERS).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "scripts/brokers {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An ActiveMQ of this test's own under a scratch directory, stopped by pid
/// (scripts/brokers stop) when dropped, even on panic.
pub struct OwnActiveMq {
    dir: PathBuf,
    port: String,
}

impl OwnActiveMq {
    pub fn start(scratch: &Path) -> OwnActiveMq {
        let port = String::from_utf8_lossy(&script(&["free-port"]).stdout)
            .trim()
            .to_string();
        let own = OwnActiveMq {
            dir: scratch.join("activemq"),
            port,
        };
        own.up();
        own
    }

    pub fn up(&self) {
        script(&["start-activemq", self.dir.to_str().unwrap(), &self.port]);
    }

    pub fn down(&self) {
        script(&["stop", self.dir.to_str().unwrap()]);
    }

    pub fn broker(&self) -> Broker {
        activemq_at(format!("127.0.0.1:{}", self.port))
    }
}

impl Drop for OwnActiveMq {
    fn drop(&mut self) {
        let _ = Command::new(BROKERS)
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}
