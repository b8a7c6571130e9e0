//! Fleet commands over the bus (issue 27 item 5), against real brokers and
//! the real binaries: three listeners, each its own host name and files (as
//! in tests/listen_names.rs) sharing one config, an operator's `hookbus fleet
//! freeze|unfreeze` signed with a key made by `hookbus keygen`, and the
//! independent client publishing unsigned commands, replaying a signed one
//! and reading the listeners' reports, which `hookbus fleet` shows too.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::{unique, Broker};
use gitutil::HOOKBUS;
use hookbus::listen::ops::control::Request;
use hookbus::listen::ops::remote::Command as FleetCommand;
use listenutil::{
    fleet_state, hookbus, keygen, published, rev, wait_until, write_config, Host, Listener, Server,
    FOLLOW_CAP,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long the daemons must stay quiet before "nothing more happens" holds.
const QUIET: Duration = Duration::from_millis(1500);

/// The fleet commands' reports among `reports` (a `ctl` event has a mirror,
/// a fleet command's report a message and a key): (host, result, message).
fn commanded(reports: &mut brokers::Subscription) -> Vec<(String, String, String)> {
    let mut found: Vec<(String, String, String)> = (reports.received().iter())
        .map(|m| serde_json::from_slice::<Value>(&m.body).unwrap())
        .filter(|event| event.get("key").is_some())
        .map(|event| {
            let text = |key: &str| event[key].as_str().unwrap().to_string();
            (text("host"), text("result"), text("message"))
        })
        .collect();
    found.sort();
    found
}

/// A fleet state file in `dir` with `hosts` up (listenutil::fleet_state).
fn state_file(dir: &Path, name: &str, hosts: &[&str]) -> PathBuf {
    let hosts: Vec<(&str, Option<&str>)> = hosts.iter().map(|host| (*host, None)).collect();
    let path = dir.join(name);
    fleet_state(&path, &hosts);
    path
}

/// The answers `hookbus fleet freeze|unfreeze|rollback` printed, as its table
/// has them (host, result, message); none when it printed no table.
fn answers(out: &Output) -> Vec<(String, String, String)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines().skip(1);
    let head: Option<Vec<&str>> = lines.next().map(|line| line.split_whitespace().collect());
    if head.as_deref() != Some(&["HOST", "RESULT", "MESSAGE"][..]) {
        return Vec::new();
    }
    (lines.take_while(|line| !line.starts_with("no answer ")))
        .map(|line| {
            let (host, rest) = line.split_once(' ').unwrap();
            let (result, message) = rest.trim_start().split_once(' ').unwrap();
            (host.into(), result.into(), message.trim_start().into())
        })
        .collect()
}

/// Publishes a well-formed command for `hosts` on `control` with the
/// independent client, unsigned.
fn publish_unsigned(broker: &Broker, control: &str, hosts: &str, request: Request) {
    let command = FleetCommand::new(hosts, request).unwrap();
    let message = command.message(control).unwrap();
    let headers: Vec<(&str, &str)> = (message.headers.iter())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = String::from_utf8(message.body.clone()).unwrap();
    broker.publish_independently(control, &[(headers, &body)]);
}

/// The headers a signed message was received with that its republication
/// needs: the covered headers it has, and the signature itself.
fn as_received(message: &brokers::Received) -> Vec<(&str, &str)> {
    ["hookbus-id", "hookbus-signed-at", "hookbus-signature"]
        .iter()
        .map(|name| (*name, message.header(name)))
        .collect()
}

#[test]
fn a_signed_freeze_for_web_hosts_freezes_two_of_three_and_unsigned_or_replayed_ones_nothing() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let keys = tempfile::tempdir().unwrap();
    let (operator_key, operator_public) = keygen(keys.path(), "operator");
    let (stranger_key, _) = keygen(keys.path(), "stranger");
    let shared = tempfile::tempdir().unwrap();
    let (control, report) = (
        unique("topic", "fleet.control"),
        unique("topic", "fleet.reports"),
    );
    let extra = format!(
        "control_topic = \"{control}\"\nreport = \"{report}\"\ntrust = [\"{operator_public}\"]\n"
    );
    let listeners = format!(
        "{}{}{}",
        broker.config(),
        listenutil::listen_table(shared.path(), &server.topic, &extra),
        listenutil::site_mirror(shared.path(), &server.url(), "name = \"app\"\n"),
    );
    let configs = tempfile::tempdir().unwrap();
    let config = configs.path().join("hookbus.toml");
    write_config(&config, &listeners);
    let signing = |name: &str, key: &Path| {
        let path = configs.path().join(name);
        let text = format!("{listeners}[sign]\nkey_file = \"{}\"\n", key.display());
        write_config(&path, &text);
        path
    };
    let (operator, stranger) = (
        signing("operator.toml", &operator_key),
        signing("stranger.toml", &stranger_key),
    );
    let fleet = |config: &Path, state: &Path, args: &[&str]| {
        let (config, state) = (config.to_str().unwrap(), state.to_str().unwrap());
        let mut all = vec!["--config", config, "fleet"];
        all.extend(args);
        all.extend(["--state", state]);
        hookbus(&all)
    };
    // What `hookbus fleet` heard: all three up, and (elsewhere) nothing.
    let all_up = state_file(configs.path(), "all.json", &["web1", "web2", "db1"]);
    let nothing = configs.path().join("nothing.json");

    // Without a key nothing is sent; listen --check names the control topic.
    let unsigned = fleet(&config, &all_up, &["freeze", "--hosts", "*", "app"]);
    assert_eq!(unsigned.status.code(), Some(3), "{unsigned:?}");
    let said = String::from_utf8_lossy(&unsigned.stderr);
    assert!(said.contains("no [sign] key_file"), "{said}");
    let check = hookbus(&["--config", config.to_str().unwrap(), "listen", "--check"]);
    let check = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(
        check.contains(&format!(
            "fleet commands: on {control}, signed by a trusted key\n"
        )),
        "{check}"
    );

    let hosts: Vec<Host> = ["web1", "web2", "db1"]
        .into_iter()
        .map(|name| Host::start(&config, name, shared.path()))
        .collect();
    let [web1, web2, db1] = &hosts[..] else {
        unreachable!()
    };
    for host in &hosts {
        host.wait_at(&first);
        host.listener.wait_quiet(QUIET);
    }

    // Unsigned (the independent client) and untrusted (another key): every
    // listener refuses both, one log line and one report each; `hookbus
    // fleet` shows the three refusals of its own command (not of the other),
    // and exits 8.
    let mut reports = broker.drain(&report, 6, QUIET, FOLLOW_CAP);
    let freeze = Request::Freeze {
        mirror: "app".into(),
    };
    publish_unsigned(&broker, &control, "web*", freeze);
    let untrusted = fleet(&stranger, &all_up, &["freeze", "--hosts", "*", "app"]);
    assert_eq!(untrusted.status.code(), Some(8), "{untrusted:?}");
    for host in &hosts {
        host.listener.wait_log(" refused: ", 2);
    }
    let refused = commanded(&mut reports);
    let stranger_id = hookbus::sign::Signer::load(&stranger_key).unwrap();
    let stranger_id = stranger_id.public().id();
    let unknown = |host: &str| {
        let why = format!("unknown key {stranger_id}");
        (host.to_string(), "refused".to_string(), why)
    };
    assert_eq!(
        answers(&untrusted),
        [unknown("db1"), unknown("web1"), unknown("web2")],
        "{untrusted:?}"
    );
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(said.contains(": 0 ok, 3 refused, 0 failed\n"), "{said}");
    let mut expected: Vec<(String, String, String)> = ["db1", "web1", "web2"]
        .iter()
        .flat_map(|host| {
            [format!("unknown key {stranger_id}"), "unsigned".to_string()]
                .map(|why| (host.to_string(), "refused".to_string(), why))
        })
        .collect();
    expected.sort();
    assert_eq!(refused, expected);
    for host in &hosts {
        assert_eq!(host.state(), "OK", "{}", host.log());
        assert_eq!(
            host.log().matches(" refused: ").count(),
            2,
            "{}",
            host.log()
        );
    }

    // Signed by the trusted key, for web*: web1 and web2 freeze, db1 not.
    // `hookbus fleet` shows both answers and ends as soon as both hosts up
    // that web* takes have answered, long before --wait.
    let mut reports = broker.drain(&report, 4, QUIET, FOLLOW_CAP);
    let mut captured = broker.subscribe(&control, 1);
    let started = Instant::now();
    let sent = fleet(
        &operator,
        &all_up,
        &["freeze", "--hosts", "web*", "--wait", "60", "app"],
    );
    let took = started.elapsed();
    assert!(sent.status.success(), "{sent:?}");
    let stdout = String::from_utf8_lossy(&sent.stdout).to_string();
    let id = stdout.split_whitespace().nth(2).unwrap().to_string();
    assert!(
        stdout.starts_with(&format!(
            "fleet command {id} sent on {control}: freeze for hosts web*"
        )),
        "{stdout}"
    );
    let applied = format!("fleet command {id} (freeze app for hosts web*, key ");
    web1.listener.wait_log(&applied, 1);
    web2.listener.wait_log(&applied, 1);
    db1.listener.wait_log(
        &format!("fleet command {id} (freeze app) is for hosts web*, not db1"),
        1,
    );
    let ok = |host: &str| {
        let message = "frozen: its target stays where it is; it still fetches";
        (host.to_string(), "ok".to_string(), message.to_string())
    };
    assert_eq!(commanded(&mut reports), [ok("web1"), ok("web2")]);
    assert_eq!(answers(&sent), [ok("web1"), ok("web2")], "{sent:?}");
    assert!(took < Duration::from_secs(30), "{took:?}: {sent:?}");
    let states: Vec<String> = hosts.iter().map(Host::state).collect();
    assert_eq!(states, ["FROZEN", "FROZEN", "OK"]);

    // A push moves db1 only; the frozen hosts still fetch it.
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    db1.wait_at(&second);
    for host in [web1, web2] {
        let clone = host.local.path().join("site");
        let fetched = wait_until(FOLLOW_CAP, || {
            rev(&clone, "origin/master").as_deref() == Some(second.as_str())
        });
        assert!(fetched, "{}", host.log());
        assert_eq!(host.published().as_deref(), Some(first.as_str()));
    }

    // web1 alone is unfrozen and catches up (its answer as JSON); the
    // freeze replayed, byte for byte with its valid signature, is refused by
    // both web hosts.
    let unfrozen = fleet(
        &operator,
        &all_up,
        &["unfreeze", "--json", "--hosts", "web1", "app"],
    );
    assert!(unfrozen.status.success(), "{unfrozen:?}");
    let json: Value = serde_json::from_slice(&unfrozen.stdout).unwrap();
    let answer = &json["answers"][0];
    assert_eq!(
        (&answer["host"], &answer["result"], &answer["command"]["id"]),
        (&"web1".into(), &"ok".into(), &json["command"]["id"]),
        "{json:#}"
    );
    assert_eq!(json["answers"].as_array().unwrap().len(), 1, "{json:#}");
    assert_eq!(json["missing"], serde_json::json!([]), "{json:#}");
    web1.wait_at(&second);
    web1.listener
        .wait_log(" (unfreeze app for hosts web1, key ", 1);
    for host in &hosts {
        host.listener.wait_quiet(QUIET);
    }
    let mut reports = broker.drain(&report, 2, QUIET, FOLLOW_CAP);
    let signed = captured.received();
    let body = String::from_utf8(signed[0].body.clone()).unwrap();
    broker.publish_independently(&control, &[(as_received(&signed[0]), &body)]);
    let replayed = |host: &str| {
        let why = "replayed: this command was taken before";
        (host.to_string(), "refused".to_string(), why.to_string())
    };
    assert_eq!(
        commanded(&mut reports),
        [replayed("web1"), replayed("web2")]
    );
    let states: Vec<String> = hosts.iter().map(Host::state).collect();
    assert_eq!(states, ["OK", "FROZEN", "OK"]);
    assert_eq!(web1.published().as_deref(), Some(second.as_str()));
    assert_eq!(web2.published().as_deref(), Some(first.as_str()));

    // For hosts nobody is: no answer within --wait, exit 7, and the
    // refusals of an unsigned command published while it waits are no
    // answers of its own; a host up in the state file that the glob takes
    // (gone since) is named as silent.
    let mut waiting = Command::new(HOOKBUS)
        .args(["--config", operator.to_str().unwrap(), "fleet"])
        .args(["freeze", "--hosts", "app*", "--wait", "5", "app"])
        .arg("--state")
        .arg(&nothing)
        .env_remove("HOOKBUS_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(waiting.stderr.take().unwrap());
    let mut said = String::new();
    stderr.read_line(&mut said).unwrap();
    assert!(said.ends_with(": waiting 5 s for answers\n"), "{said}");
    let freeze = Request::Freeze {
        mirror: "app".into(),
    };
    publish_unsigned(&broker, &control, "*", freeze);
    for host in &hosts {
        host.listener.wait_log(" refused: unsigned", 2);
    }
    stderr.read_to_string(&mut said).unwrap();
    let none = waiting.wait_with_output().unwrap();
    assert_eq!(none.status.code(), Some(7), "{none:?} {said}");
    assert!(
        said.ends_with(": 0 ok, 0 refused, 0 failed; no listener answered\n"),
        "{said}"
    );
    let stdout = String::from_utf8_lossy(&none.stdout);
    assert!(
        stdout.ends_with(" for hosts app*\nno answer within 5 s\n"),
        "{stdout}"
    );
    let app = ["freeze", "--hosts", "app*", "--wait", "2", "app"];
    let dead = state_file(configs.path(), "dead.json", &["app9", "web1"]);
    let silent = fleet(&operator, &dead, &app);
    assert_eq!(silent.status.code(), Some(7), "{silent:?}");
    let stdout = String::from_utf8_lossy(&silent.stdout);
    assert!(
        stdout.ends_with("no answer within 2 s\nno answer from app9\n"),
        "{stdout}"
    );
    for host in &hosts {
        host.listener
            .wait_log("(freeze app) is for hosts app*, not ", 2);
    }
    for mut host in hosts {
        assert!(host.listener.terminate().success(), "{}", host.log());
    }
}

/// RabbitMQ delivers the control topic as ActiveMQ does, beside a durable
/// subscription: one listener takes a signed freeze and refuses an unsigned
/// unfreeze.
#[test]
fn on_rabbitmq_a_signed_freeze_holds_and_an_unsigned_unfreeze_is_refused() {
    let broker = brokers::rabbitmq();
    let server = Server::new(&broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen(d, "operator");
    let (control, report) = (
        unique("topic", "fleet.control"),
        unique("topic", "fleet.reports"),
    );
    // Beside a durable subscription (its own queue) on the same connection.
    let durable = unique("durable", "fleet").replace('/', "");
    let extra = format!(
        "host = \"web1\"\ndurable = \"{durable}\"\ncontrol_topic = \"{control}\"\nreport = \"{report}\"\ntrust = [\"{public}\"]\n"
    );
    let www = d.join("www");
    let config = format!(
        "{}{}{}",
        broker.config(),
        listenutil::listen_table(d, &server.topic, &extra),
        listenutil::mirror_table(
            "app",
            &d.join("site"),
            &server.url(),
            "checkout",
            Some(&www)
        ),
    );
    let listener = Listener::start(d, &config);
    listener.wait_log(&format!("taking fleet commands on {control}"), 1);
    assert!(wait_until(FOLLOW_CAP, || published(&www).as_deref()
        == Some(first.as_str())));
    listener.wait_quiet(QUIET);
    let operator = d.join("operator.toml");
    write_config(
        &operator,
        &format!("{config}[sign]\nkey_file = \"{}\"\n", key.display()),
    );
    let mut reports = broker.drain(&report, 3, QUIET, FOLLOW_CAP);
    let operator = operator.to_str().unwrap();
    let state = state_file(d, "fleet.json", &["web1"]);
    let sent = hookbus(&[
        "--config",
        operator,
        "fleet",
        "freeze",
        "--hosts",
        "web*",
        "app",
        "--state",
        state.to_str().unwrap(),
    ]);
    assert!(sent.status.success(), "{sent:?}");
    listener.wait_log(" (freeze app for hosts web*, key ", 1);
    let frozen = "frozen: its target stays where it is; it still fetches";
    assert_eq!(
        answers(&sent),
        [("web1".into(), "ok".into(), frozen.into())],
        "{sent:?}"
    );
    let unfreeze = Request::Unfreeze {
        mirror: "app".into(),
    };
    publish_unsigned(&broker, &control, "*", unfreeze);
    listener.wait_log(" refused: unsigned", 1);
    let results: Vec<(String, String)> = (commanded(&mut reports).into_iter())
        .map(|(_, result, message)| (result, message))
        .collect();
    assert_eq!(
        results,
        [
            (
                "ok".to_string(),
                "frozen: its target stays where it is; it still fetches".to_string()
            ),
            ("refused".to_string(), "unsigned".to_string())
        ]
    );
    let status = listener.ctl_ok(&["--json", "status"]);
    assert!(status.contains("\"state\":\"FROZEN\""), "{status}");
}
