//! `hookbus fleet` believes only what `[fleet] trust` vouches for, against
//! real brokers and the real binaries: three listeners, each signing its
//! presence and its answers with its own key (`hookbus keygen`), and the
//! independent client forging a "leaving" document for a live host and an
//! "ok" answer for a host that never froze: unsigned, signed by a stranger's
//! key, and signed by another host's (trusted) key. With trust each forgery
//! is ignored and counted; without, the old behaviour believes it.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::{unique, Broker};
use gitutil::HOOKBUS;
use hookbus::listen::ops::control::Verdict;
use hookbus::listen::ops::presence::Document;
use hookbus::listen::ops::remote::{Command as FleetCommand, Commanded};
use hookbus::sign::Signer;
use listenutil::{
    app_checkout, fleet_state, keygen, listen_table, published, wait_until, write_config,
};
use listenutil::{Listener, Server, FOLLOW_CAP};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

/// The destinations the listeners and the operator share.
struct Topics {
    presence: String,
    report: String,
    control: String,
}

impl Topics {
    fn new() -> Topics {
        Topics {
            presence: unique("topic", "trust.presence"),
            report: unique("topic", "trust.reports"),
            control: unique("topic", "trust.control"),
        }
    }

    /// The `[listen]` lines naming them.
    fn lines(&self) -> String {
        format!(
            "presence = \"{}\"\npresence_s = 1\nreport = \"{}\"\ncontrol_topic = \"{}\"\n",
            self.presence, self.report, self.control
        )
    }
}

/// One deploy host: its directory, its daemon and its key pair.
struct Host {
    dir: tempfile::TempDir,
    listener: Listener,
    key: PathBuf,
    public: String,
}

impl Host {
    /// Starts host `name`, signing with a key of its own, trusting
    /// `operator` for fleet commands.
    fn start(
        broker: &Broker,
        server: &Server,
        name: &str,
        topics: &Topics,
        operator: &str,
    ) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (key, public) = keygen(d, "sign.key");
        let extra = format!(
            "host = \"{name}\"\n{}trust = [\"{operator}\"]\n",
            topics.lines()
        );
        let config = format!(
            "{}{}{}[sign]\nkey_file = \"{}\"\n",
            broker.config(),
            listen_table(d, &server.topic, &extra),
            app_checkout(d, &server.url()),
            key.display()
        );
        let listener = Listener::start(d, &config);
        listener.wait_log("connected to", 1);
        Host {
            dir,
            listener,
            key,
            public,
        }
    }

    fn wait_at(&self, commit: &str) {
        let www = self.dir.path().join("www");
        let reached = wait_until(FOLLOW_CAP, || published(&www).as_deref() == Some(commit));
        assert!(reached, "not at {commit}:\n{}", self.listener.log());
    }
}

/// The operator's config: the broker, the shared destinations, its own
/// signing key and, with `trust`, the `[fleet] trust` table.
fn operator_config(
    dir: &Path,
    name: &str,
    broker: &Broker,
    topics: &Topics,
    trust: &str,
) -> PathBuf {
    let key = dir.join("operator.key");
    let text = format!(
        "{}{}[sign]\nkey_file = \"{}\"\n{trust}",
        broker.config(),
        listen_table(dir, "/topic/unused", &topics.lines()),
        key.display()
    );
    let path = dir.join(name);
    write_config(&path, &text);
    path
}

/// Publishes `body` on `destination` with the independent client, signed
/// by `signer` (as hookbus signs: the destination is covered) or unsigned.
fn forge(broker: &Broker, destination: &str, body: &[u8], signer: Option<&Signer>) {
    let mut headers = vec![
        ("destination".to_string(), destination.to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    if let Some(signer) = signer {
        signer.sign(&mut headers, body, hookbus::sign::unix_now());
    }
    let headers: Vec<(&str, &str)> = (headers.iter())
        .filter(|(name, _)| name != "destination")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let body = std::str::from_utf8(body).unwrap();
    broker.publish_independently(destination, &[(headers, body)]);
}

/// A "leaving" document for `host`, said an hour from now (so that it
/// would win over what the host says next, were it believed).
fn leaving(host: &str) -> Vec<u8> {
    let document = Document {
        host: host.into(),
        version: "0".into(),
        status: "leaving".into(),
        uptime_s: 1,
        sent: hookbus::sign::unix_now() + 3600,
        interval_s: 1,
        mirrors: Vec::new(),
    };
    serde_json::to_vec(&document).unwrap()
}

/// `hookbus --config CONFIG fleet ARGS --state STATE` started; its stderr.
fn spawn_fleet(config: &Path, state: &Path, args: &[&str]) -> (Child, BufReader<ChildStderr>) {
    let mut child = Command::new(HOOKBUS)
        .args(["--config", config.to_str().unwrap(), "fleet"])
        .args(args)
        .args(["--state", state.to_str().unwrap()])
        .env_remove("HOOKBUS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hookbus fleet");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    (child, stderr)
}

/// `hookbus fleet --for SECONDS --json` started, subscribed ("listening to").
fn start_view(config: &Path, state: &Path, seconds: &str) -> (Child, BufReader<ChildStderr>) {
    let args = ["--for", seconds, "--json", "--durable", "trust-fleet"];
    let (child, mut stderr) = spawn_fleet(config, state, &args);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("fleet: listening to"), "{line}");
    (child, stderr)
}

/// Waits (bounded) for a fleet run: its exit code, stdout and stderr.
fn finish(mut child: Child, mut stderr: BufReader<ChildStderr>) -> (Option<i32>, String, String) {
    let mut said = String::new();
    stderr.read_to_string(&mut said).unwrap();
    if !wait_until(FOLLOW_CAP, || child.try_wait().unwrap().is_some()) {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    (output.status.code(), stdout, said)
}

/// Each host's status in `hookbus fleet --json`'s output.
fn statuses(stdout: &str) -> Vec<(String, String)> {
    let hosts: Value = serde_json::from_str(stdout).unwrap();
    (hosts.as_array().unwrap().iter())
        .map(|host| {
            let text = |key: &str| host[key].as_str().unwrap().to_string();
            (text("host"), text("status"))
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    (list.iter())
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// An "ok" answer from `host` to the command received on the control topic.
fn forged_ok(command: &brokers::Received, host: &str) -> Vec<u8> {
    let command = FleetCommand::read(&command.body).unwrap();
    let answer = Commanded {
        host: host.into(),
        result: Verdict::Ok,
        message: "frozen: its target stays where it is; it still fetches".into(),
        hookbus_id: Some(command.id.clone()),
        command: Some(command),
        key: Some("0000000000000000".into()),
        destination: "/topic/anything".into(),
    };
    serde_json::to_vec(&answer).unwrap()
}

#[test]
fn fleet_believes_presence_and_answers_only_from_the_key_of_their_host() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let topics = Topics::new();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let (_, operator_public) = keygen(s, "operator.key");
    let (stranger_key, _) = keygen(s, "stranger.key");
    let stranger = Signer::load(&stranger_key).unwrap();
    let mut hosts: Vec<Host> = ["web1", "web2", "web3"]
        .iter()
        .map(|name| Host::start(&broker, &server, name, &topics, &operator_public))
        .collect();
    for host in &hosts {
        host.wait_at(&first);
    }
    let web1_key = Signer::load(&hosts[0].key).unwrap();
    let trust: String = ["web1", "web2", "web3"]
        .iter()
        .zip(&hosts)
        .map(|(name, host)| format!("{name} = \"{}\"\n", host.public))
        .collect();
    let trusting = operator_config(
        s,
        "trusting.toml",
        &broker,
        &topics,
        &format!("[fleet.trust]\n{trust}"),
    );
    let believing = operator_config(s, "believing.toml", &broker, &topics, "");
    let (polluted, state) = (s.join("polluted.json"), s.join("fleet.json"));

    // Without trust: today's behaviour. An unsigned "leaving" for web1 is
    // believed, and one line says nothing is verified.
    let (child, stderr) = start_view(&believing, &polluted, "3");
    forge(&broker, &topics.presence, &leaving("web1"), None);
    let (code, stdout, said) = finish(child, stderr);
    assert_eq!(code, Some(0), "{said}");
    let all = |web1: &str| pairs(&[("web1", web1), ("web2", "up"), ("web3", "up")]);
    assert_eq!(statuses(&stdout), all("left"), "{stdout}");
    assert!(
        said.contains(&format!(
            "fleet: presence documents on {} are not verified: ",
            topics.presence
        )),
        "{said}"
    );

    // With trust, from the polluted state file: its three unverified
    // records are dropped, the three hosts' signed documents shown, and a
    // "leaving" for each host (unsigned, a stranger's key, web1's key for
    // web3) ignored; one line counts the six and names the hosts.
    std::fs::copy(&polluted, &state).unwrap();
    let (child, stderr) = start_view(&trusting, &state, "3");
    forge(&broker, &topics.presence, &leaving("web1"), None);
    forge(&broker, &topics.presence, &leaving("web2"), Some(&stranger));
    forge(&broker, &topics.presence, &leaving("web3"), Some(&web1_key));
    let (code, stdout, said) = finish(child, stderr);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(statuses(&stdout), all("up"), "{stdout}\n{said}");
    let hosts_json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(hosts_json[0]["mirrors"][0]["commit"], first.as_str());
    let ignored = format!(
        "fleet: ignored 6 presence documents on {} claiming to come from web1, web2, web3: not signed by a key [fleet] trust lists for that host (",
        topics.presence
    );
    assert!(said.contains(&ignored), "{said}");
    let web1_id = web1_key.public().id();
    for why in [
        "unsigned".to_string(),
        format!("unknown key {}", stranger.public().id()),
        format!("key {web1_id} is not listed for this host"),
        "kept unverified in the state file".to_string(),
    ] {
        assert!(said.contains(&why), "{why}: {said}");
    }
    assert!(!said.contains("not verified"), "{said}");

    // web3 dies without a word (the state file has all three up). A
    // freeze for web*: web1 and web2 answer, signed; three forged "ok"
    // answers for web3 are ignored, so web3 is listed as silent: exit 7.
    hosts[2].listener.kill();
    let ids: Vec<String> = (hosts.iter())
        .map(|host| Signer::load(&host.key).unwrap().public().id().to_string())
        .collect();
    let up = [
        ("web1", Some(&*ids[0])),
        ("web2", Some(&*ids[1])),
        ("web3", Some(&*ids[2])),
    ];
    fleet_state(&state, &up);
    let freeze = ["freeze", "--hosts", "web*", "--wait", "8", "app"];
    let mut captured = broker.subscribe(&topics.control, 1);
    let (child, stderr) = spawn_fleet(&trusting, &state, &freeze);
    let command = captured.received().remove(0);
    let ok = forged_ok(&command, "web3");
    forge(&broker, &topics.report, &ok, None);
    forge(&broker, &topics.report, &ok, Some(&stranger));
    forge(&broker, &topics.report, &ok, Some(&web1_key));
    let (code, stdout, said) = finish(child, stderr);
    assert_eq!(code, Some(7), "{stdout}\n{said}");
    let table: Vec<&str> = stdout.lines().skip(2).collect();
    assert_eq!(table.len(), 3, "{stdout}");
    assert!(table[0].starts_with("web1  ok "), "{stdout}");
    assert!(table[1].starts_with("web2  ok "), "{stdout}");
    assert_eq!(table[2], "no answer from web3", "{stdout}");
    let ignored = format!(
        "fleet: ignored 3 answers on {} claiming to come from web3: ",
        topics.report
    );
    assert!(said.contains(&ignored), "{said}");
    assert!(
        said.ends_with(": 2 ok, 0 refused, 0 failed; no answer from web3\n"),
        "{said}"
    );

    // Without trust the same forgery passes for web3's answer: exit 0.
    let unfreeze = ["unfreeze", "--hosts", "web*", "--wait", "8", "app"];
    let mut captured = broker.subscribe(&topics.control, 1);
    let (child, stderr) = spawn_fleet(&believing, &state, &unfreeze);
    let command = captured.received().remove(0);
    forge(&broker, &topics.report, &forged_ok(&command, "web3"), None);
    let (code, stdout, said) = finish(child, stderr);
    assert_eq!(code, Some(0), "{stdout}\n{said}");
    assert!(stdout.contains("\nweb3  ok "), "{stdout}");
    assert!(
        said.contains(&format!(
            "fleet: answers on {} are not verified: ",
            topics.report
        )),
        "{said}"
    );
    for host in &mut hosts[..2] {
        assert!(
            host.listener.terminate().success(),
            "{}",
            host.listener.log()
        );
    }
}

/// A host that stopped cleanly while no `hookbus fleet` listened: its last
/// word, kept for the fleet's durable subscription, is signed for the
/// `.last` destination and believed when the next fleet reads it.
fn a_signed_last_word_read_later_is_believed(broker: &Broker) {
    let server = Server::new(broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let topics = Topics::new();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let (_, operator_public) = keygen(s, "operator.key");
    let mut host = Host::start(broker, &server, "web1", &topics, &operator_public);
    host.wait_at(&first);
    let trust = format!("[fleet.trust]\n\"web*\" = [\"{}\"]\n", host.public);
    let trusting = operator_config(s, "trusting.toml", broker, &topics, &trust);
    let state = s.join("fleet.json");
    // The first run makes the durable subscription.
    let (child, stderr) = start_view(&trusting, &state, "2");
    let (_, stdout, said) = finish(child, stderr);
    assert_eq!(statuses(&stdout), pairs(&[("web1", "up")]), "{said}");
    assert!(host.listener.terminate().success());
    let (child, stderr) = start_view(&trusting, &state, "2");
    let (code, stdout, said) = finish(child, stderr);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(statuses(&stdout), pairs(&[("web1", "left")]), "{said}");
    assert!(!said.contains("ignored"), "{said}");
}

#[test]
fn a_signed_last_word_read_later_is_believed_on_activemq() {
    a_signed_last_word_read_later_is_believed(&brokers::activemq());
}

#[test]
fn a_signed_last_word_read_later_is_believed_on_rabbitmq() {
    a_signed_last_word_read_later_is_believed(&brokers::rabbitmq());
}
