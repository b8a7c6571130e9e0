//! `hookbus ctl` against the real `hookbus listen`: freeze, rollback (kept
//! across SIGKILL and restart), unfreeze, refusals, JSON status, report
//! events, and several listeners on one machine. Real broker, real pushes,
//! the daemon's own control socket; loops bounded, processes by pid.

mod brokers;
mod gitutil;
mod listenutil;

use gitutil::HOOKBUS;
use listenutil::{
    app_checkout, listen_table, mirror_table, rev, wait_until, Listener, Server, FOLLOW_CAP,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The commit the checkout target `www` publishes.
fn published(www: &Path) -> Option<String> {
    let link = std::fs::read_link(www).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// `ctl --json status`, as a list of mirrors.
fn status_json(listener: &Listener) -> Vec<Value> {
    let out = listener.ctl_ok(&["--json", "status"]);
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(answer["verdict"], "ok", "{answer}");
    answer["mirrors"].as_array().unwrap().clone()
}

fn mirror_named<'a>(mirrors: &'a [Value], name: &str) -> &'a Value {
    let found = mirrors.iter().find(|m| m["name"] == name);
    found.unwrap_or_else(|| panic!("no mirror {name} in {mirrors:#?}"))
}

#[test]
fn freeze_rollback_and_unfreeze_survive_a_kill_and_are_reported() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A queue keeps the reports until the end of the test reads them.
    let report = brokers::unique("queue", "listen.control");
    let old = server.push_files("master", "old", &[("a.txt", b"old\n")]);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let www = d.join("www");
    let config = format!(
        "{}{}{}name = \"web\"\n{}",
        broker.config(),
        listen_table(d, &server.topic, &format!("report = \"{report}\"")),
        mirror_table(
            "app",
            &d.join("clone"),
            &server.url(),
            "checkout",
            Some(&www)
        ),
        mirror_table("app", &d.join("fetched"), &server.url(), "fetch", None),
    );
    let mut listener = Listener::start(d, &config);
    listener.wait_control();
    assert!(wait_until(FOLLOW_CAP, || published(&www).as_deref()
        == Some(first.as_str())));
    let socket = d.join("state/control.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660, "socket mode {mode:o}");

    // Frozen: pushes are fetched, the target stays.
    let said = listener.ctl_ok(&["freeze", "web"]);
    assert!(said.contains("FROZEN"), "{said}");
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    let clone = d.join("clone");
    let fetched = wait_until(FOLLOW_CAP, || {
        rev(&clone, "origin/master").as_deref() == Some(second.as_str())
    });
    assert!(
        fetched,
        "a frozen mirror still fetches:\n{}",
        listener.log()
    );
    listener.ctl_ok(&["sync", "web"]);
    assert_eq!(published(&www).as_deref(), Some(first.as_str()));
    let web = mirror_named(&status_json(&listener), "web").clone();
    assert_eq!(web["state"], "FROZEN", "{web}");
    assert_eq!(web["commit"], first.as_str());

    // Rolled back by clone path (the name works too), kept across SIGKILL.
    let path = clone.to_str().unwrap();
    listener.ctl_ok(&["rollback", path, &old[..10]]);
    assert_eq!(published(&www).as_deref(), Some(old.as_str()));
    assert_eq!(std::fs::read_to_string(www.join("a.txt")).unwrap(), "old\n");
    listener.kill();
    let down = listener.ctl(&["status"]);
    assert_eq!(down.code, Some(7), "{down:?}");
    assert!(down.stderr.contains("no listener is running"), "{down:?}");
    assert!(down.stderr.contains("start it"), "{down:?}");
    listener.restart();
    listener.wait_control();
    let third = server.push_files("master", "third", &[("a.txt", b"3\n")]);
    listener.ctl_ok(&["sync", "web"]);
    assert_eq!(
        rev(&clone, "origin/master").as_deref(),
        Some(third.as_str())
    );
    assert_eq!(published(&www).as_deref(), Some(old.as_str()));
    let table = listener.ctl_ok(&["status"]);
    let row = table.lines().find(|line| line.starts_with("web ")).unwrap();
    assert!(
        row.contains("ROLLED-BACK") && row.contains(&old[..12]),
        "{table}"
    );

    // Refusals change nothing and say why.
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let refused = listener.ctl(&["rollback", "web", unknown]);
    assert_eq!(refused.code, Some(8), "{refused:?}");
    assert!(refused.stderr.contains("has no commit"), "{refused:?}");
    let fetch_only = d.join("fetched");
    let refused = listener.ctl(&["rollback", fetch_only.to_str().unwrap(), &old]);
    assert_eq!(refused.code, Some(8), "{refused:?}");
    assert!(refused.stderr.contains("only fetches"), "{refused:?}");
    let refused = listener.ctl(&["freeze", "nonesuch"]);
    assert_eq!(refused.code, Some(8), "{refused:?}");
    assert!(
        refused.stderr.contains("no mirror \"nonesuch\""),
        "{refused:?}"
    );
    assert_eq!(published(&www).as_deref(), Some(old.as_str()));

    // Unfrozen: caught up when ctl returns.
    listener.ctl_ok(&["unfreeze", "web"]);
    assert_eq!(published(&www).as_deref(), Some(third.as_str()));
    let web = mirror_named(&status_json(&listener), "web").clone();
    assert_eq!(
        (&web["state"], &web["commit"]),
        (&"OK".into(), &third.as_str().into())
    );
    assert!(listener.terminate().success());

    // Every state change went to the report destination (at least once: a
    // report sent just before the kill is sent again, with the same id).
    let mut ids = std::collections::HashSet::new();
    let events: Vec<Value> = broker
        .drain(&report, 0, Duration::from_secs(3), FOLLOW_CAP)
        .received()
        .iter()
        .filter(|message| ids.insert(message.header("hookbus-id").to_string()))
        .map(|message| serde_json::from_slice(&message.body).unwrap())
        .collect();
    let changes: Vec<(String, String)> = events
        .iter()
        .filter(|event| event["previous_state"].is_string())
        .map(|e| {
            let state = |key: &str| e[key].as_str().unwrap().to_string();
            (state("previous_state"), state("state"))
        })
        .collect();
    let expected = [
        ("OK", "FROZEN"),
        ("FROZEN", "ROLLED-BACK"),
        ("ROLLED-BACK", "OK"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(changes, expected, "{events:#?}");
    let rollback = events.iter().find(|e| e["command"] == "rollback").unwrap();
    assert_eq!(rollback["head"], old.as_str(), "{rollback}");
}

#[test]
fn rollback_resolves_against_what_the_mirror_follows_and_refuses_ambiguity() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = server.push_files("master", "old", &[("a.txt", b"old\n")]);
    server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let www = d.join("www");
    let config = format!(
        "{}{}{}name = \"web\"\n",
        broker.config(),
        listen_table(d, &server.topic, ""),
        mirror_table(
            "app",
            &d.join("clone"),
            &server.url(),
            "checkout",
            Some(&www)
        ),
    );
    let listener = Listener::start(d, &config);
    listener.wait_control();
    // The clone's own master stays where the clone left it; origin's moves on.
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    let third = server.push_files("master", "third", &[("a.txt", b"3\n")]);
    assert!(
        wait_until(FOLLOW_CAP, || published(&www).as_deref()
            == Some(third.as_str())),
        "{}",
        listener.log()
    );

    let said = listener.ctl_ok(&["rollback", "web", "master~1"]);
    assert_eq!(published(&www).as_deref(), Some(second.as_str()), "{said}");
    assert!(
        said.contains(&second) && said.contains("refs/remotes/origin/master~1"),
        "says what it resolved to: {said}"
    );

    // A tag named like the branch: which one is meant is not guessed.
    server.fixture.git(&["tag", "master", &old]);
    server
        .fixture
        .git(&["push", "-q", "origin", "refs/tags/master"]);
    listener.ctl_ok(&["sync", "web"]);
    let refused = listener.ctl(&["rollback", "web", "master"]);
    assert_eq!(refused.code, Some(8), "{refused:?}");
    assert!(refused.stderr.contains("ambiguous"), "{refused:?}");
    assert_eq!(published(&www).as_deref(), Some(second.as_str()));
    listener.ctl_ok(&["rollback", "web", "refs/tags/master"]);
    assert_eq!(published(&www).as_deref(), Some(old.as_str()));
}

#[test]
fn listeners_with_their_own_state_directories_do_not_collide() {
    let broker = brokers::rabbitmq();
    let server = Server::new(&broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let configs: Vec<String> = dirs
        .iter()
        .map(|dir| {
            let d = dir.path();
            format!(
                "{}{}{}",
                broker.config(),
                listen_table(d, &server.topic, ""),
                app_checkout(d, &server.url()),
            )
        })
        .collect();
    let listeners: Vec<Listener> = dirs
        .iter()
        .zip(&configs)
        .map(|(dir, config)| Listener::start(dir.path(), config))
        .collect();
    for listener in &listeners {
        listener.wait_control();
    }
    let name = |i: usize| dirs[i].path().join("clone").display().to_string();
    listeners[0].ctl_ok(&["freeze", &name(0)]);
    // Each ctl finds its own listener through its config; names are per listener.
    let other = listeners[1].ctl(&["freeze", &name(0)]);
    assert_eq!(other.code, Some(8), "{other:?}");
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    listeners[1].ctl_ok(&["sync", &name(1)]);
    listeners[0].ctl_ok(&["sync", &name(0)]);
    assert_eq!(
        published(&dirs[1].path().join("www")).as_deref(),
        Some(second.as_str())
    );
    assert_eq!(
        published(&dirs[0].path().join("www")).as_deref(),
        Some(first.as_str())
    );

    // A second daemon on a state directory in use fails, and says why.
    let started = Command::new(HOOKBUS)
        .args(["--config", listeners[0].config.to_str().unwrap(), "listen"])
        .env_remove("HOOKBUS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = started.id() as i32;
    let out = wait_output(started, pid);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("another hookbus listen"), "{stderr}");
    listeners[0].wait_control();

    // A client that sends garbage, or nothing, stops nobody.
    let socket = dirs[0].path().join("state/control.sock");
    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage.write_all(b"{\"command\":\"reboot\"}\n").unwrap();
    let mut answer = String::new();
    BufReader::new(&garbage).read_line(&mut answer).unwrap();
    assert!(answer.contains("\"refused\""), "{answer}");
    let _silent = UnixStream::connect(&socket).unwrap();
    let status = listeners[0].ctl_ok(&["status"]);
    assert!(status.contains("FROZEN"), "{status}");
}

/// Waits (bounded) for a child that should exit by itself; kills it if not.
fn wait_output(mut child: std::process::Child, pid: i32) -> std::process::Output {
    let exited = wait_until(FOLLOW_CAP, || child.try_wait().unwrap().is_some());
    if !exited {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    child.wait_with_output().unwrap()
}
