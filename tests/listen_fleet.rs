//! Presence and `hookbus fleet` end to end: three real listeners on one
//! machine (each its own state directory and `[listen] host`), ActiveMQ and
//! RabbitMQ, a real server repository. One host's mirror is frozen with
//! `hookbus ctl freeze` (it stays behind), one host is killed (quiet), one
//! stops cleanly (left).

mod brokers;
mod gitutil;
mod listenutil;

use brokers::{unique, Broker};
use gitutil::HOOKBUS;
use listenutil::{app_checkout, listen_table, wait_until, Listener, Server, FOLLOW_CAP};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One deploy host: its directory and daemon.
struct Host {
    dir: tempfile::TempDir,
    listener: Listener,
}

impl Host {
    fn start(
        broker: &Broker,
        server: &Server,
        name: &str,
        subscribe: &str,
        presence: &str,
    ) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let extra = format!("host = \"{name}\"\npresence = \"{presence}\"\npresence_s = 1");
        let config = format!(
            "{}{}{}",
            broker.config(),
            listen_table(d, subscribe, &extra),
            app_checkout(d, &server.url()),
        );
        let listener = Listener::start(d, &config);
        Host { dir, listener }
    }

    /// Freezes its mirror with `hookbus ctl freeze`.
    fn freeze(&self) {
        let clone = self.dir.path().join("clone");
        self.listener.ctl_ok(&["freeze", clone.to_str().unwrap()]);
    }

    fn at(&self, commit: &str) -> bool {
        std::fs::read_link(self.dir.path().join("www")).is_ok_and(|link| link.ends_with(commit))
    }

    fn wait_at(&self, commit: &str) {
        let reached = wait_until(FOLLOW_CAP, || self.at(commit));
        assert!(reached, "not at {commit}:\n{}", self.listener.log());
    }
}

/// `hookbus fleet` running, its stderr read up to "listening to" (it is
/// subscribed from then on).
fn start_fleet(config: &Path, state: &Path, seconds: &str, json: bool, durable: &str) -> Child {
    let mut command = Command::new(HOOKBUS);
    command
        .args([
            "--config",
            config.to_str().unwrap(),
            "fleet",
            "--for",
            seconds,
        ])
        .args(["--state", state.to_str().unwrap()])
        .args(["--durable", durable])
        .env_remove("HOOKBUS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if json {
        command.arg("--json");
    }
    let mut child = command.spawn().expect("start hookbus fleet");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("fleet: listening to"), "{line}");
    child
}

/// Waits (bounded: --for is short) for `hookbus fleet` and returns its output.
fn finish_fleet(mut child: Child) -> String {
    let exited = wait_until(FOLLOW_CAP, || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    assert!(child.wait().unwrap().success(), "hookbus fleet failed");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn run_fleet(config: &Path, state: &Path, seconds: &str, json: bool, durable: &str) -> String {
    finish_fleet(start_fleet(config, state, seconds, json, durable))
}

/// The JSON of one host from `hookbus fleet --json`.
fn host<'a>(hosts: &'a Value, name: &str) -> &'a Value {
    hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|host| host["host"] == name)
        .unwrap_or_else(|| panic!("no host {name} in {hosts:#}"))
}

fn fleet_shows_hosts_marks_the_quiet_one_the_left_one_and_the_mirror_behind(broker: &Broker) {
    let server = Server::new(broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let presence = unique("topic", "fleet.presence");
    let mut web1 = Host::start(broker, &server, "web1", &server.topic, &presence);
    let mut web2 = Host::start(broker, &server, "web2", &server.topic, &presence);
    let web3 = Host::start(broker, &server, "web3", &server.topic, &presence);
    for host in [&web1, &web2, &web3] {
        host.wait_at(&first);
        host.listener.wait_log("connected to", 1);
    }
    web3.freeze();
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    web1.wait_at(&second);
    web2.wait_at(&second);
    // Frozen: it fetches the push (and says so) but its target stays.
    web3.listener.wait_log("1 message(s)", 1);
    assert!(web3.at(&first), "web3 is frozen");

    let scratch = tempfile::tempdir().unwrap();
    let state: PathBuf = scratch.path().join("fleet.json");
    let config = &web1.listener.config;
    let durable = unique("durable", "fleet").replace('/', "");
    let hosts: Value =
        serde_json::from_str(&run_fleet(config, &state, "3", true, &durable)).unwrap();
    for name in ["web1", "web2", "web3"] {
        assert_eq!(host(&hosts, name)["status"], "up", "{hosts:#}");
    }
    let mirror = |hosts: &Value, name: &str| host(hosts, name)["mirrors"][0].clone();
    assert_eq!(mirror(&hosts, "web1")["commit"], second.as_str());
    assert_eq!(mirror(&hosts, "web1")["majority"], Value::Null);
    assert_eq!(mirror(&hosts, "web3")["commit"], first.as_str());
    assert_eq!(mirror(&hosts, "web3")["state"], "FROZEN");
    assert_eq!(
        mirror(&hosts, "web3")["majority"],
        second.as_str(),
        "{hosts:#}"
    );

    // Killed: no goodbye. The state file remembers it; it is quiet after
    // three of its 1 s intervals and still votes with what it last said.
    web2.listener.kill();
    let table = run_fleet(config, &state, "4", false, &durable);
    let line = |name: &str| {
        table
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{table}"))
            .to_string()
    };
    assert!(line("web2").contains(" quiet "), "{table}");
    assert!(line("web1").contains(" up "), "{table}");
    let short = &second[..12];
    assert!(
        line("web3").contains(&format!("differs: most hosts have {short}")),
        "{table}"
    );

    // A clean stop says goodbye while fleet listens.
    let fleet = start_fleet(config, &state, "3", true, &durable);
    assert!(web1.listener.terminate().success());
    let hosts: Value = serde_json::from_str(&finish_fleet(fleet)).unwrap();
    assert_eq!(host(&hosts, "web1")["status"], "left", "{hosts:#}");
    assert_eq!(host(&hosts, "web2")["status"], "quiet", "{hosts:#}");
    assert_eq!(host(&hosts, "web3")["status"], "up", "{hosts:#}");
}

/// A host that stopped cleanly while no `hookbus fleet` listened is shown
/// left by the next one (its last word kept for fleet's durable subscription).
fn a_fleet_started_after_a_host_left_shows_it_left(broker: &Broker) {
    let server = Server::new(broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let presence = unique("topic", "fleet.last");
    let durable = unique("durable", "fleet").replace('/', "");
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("fleet.json");
    let mut web1 = Host::start(broker, &server, "web1", &server.topic, &presence);
    let config = web1.listener.config.clone();
    // The fleet's reader has run once: its subscription exists.
    run_fleet(&config, &state, "0", true, &durable);
    web1.wait_at(&first);
    assert!(
        web1.listener.terminate().success(),
        "{}",
        web1.listener.log()
    );
    let _ = std::fs::remove_file(&state);

    // Started after the stop, with no memory of its own: it reads the last word.
    let hosts: Value =
        serde_json::from_str(&run_fleet(&config, &state, "1", true, &durable)).unwrap();
    assert_eq!(host(&hosts, "web1")["status"], "left", "{hosts:#}");
    assert_eq!(host(&hosts, "web1")["mirrors"][0]["commit"], first.as_str());
    assert_eq!(host(&hosts, "web1")["mirrors"][0]["name"], "app");
    // Read once, it stays known from the state file (and is not read again).
    let again: Value =
        serde_json::from_str(&run_fleet(&config, &state, "1", true, &durable)).unwrap();
    assert_eq!(host(&again, "web1")["status"], "left", "{again:#}");
}

#[test]
fn fleet_after_a_host_left_on_activemq() {
    a_fleet_started_after_a_host_left_shows_it_left(&brokers::activemq());
}

#[test]
fn fleet_after_a_host_left_on_rabbitmq() {
    a_fleet_started_after_a_host_left_shows_it_left(&brokers::rabbitmq());
}

#[test]
fn fleet_on_activemq() {
    fleet_shows_hosts_marks_the_quiet_one_the_left_one_and_the_mirror_behind(&brokers::activemq());
}

#[test]
fn fleet_on_rabbitmq() {
    fleet_shows_hosts_marks_the_quiet_one_the_left_one_and_the_mirror_behind(&brokers::rabbitmq());
}
