//! `hookbus listen` end to end: the real daemon, real brokers (ActiveMQ and
//! RabbitMQ from scripts/test), a real server repository whose post-receive
//! hook publishes, real mirrors on disk.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::Broker;
use listenutil::{
    listen_table, mirror_table, names, read, rev, wait_until, Listener, Server, FOLLOW_CAP,
};
use std::fs;
use std::path::Path;
use std::time::Duration;

/// One listener with a mirror of every mode on the same repository.
struct Everything {
    server: Server,
    listener: Listener,
    dir: tempfile::TempDir,
}

impl Everything {
    fn start(broker: &Broker) -> Everything {
        let server = Server::new(broker);
        server.push_files("master", "first", &[("site.txt", b"v0\n")]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let url = server.url();
        let config = format!(
            "{}{}{}{}{}{}",
            broker.config(),
            listen_table(d, &server.topic, ""),
            mirror_table("app", &d.join("fetch"), &url, "fetch", None),
            mirror_table(
                "app",
                &d.join("checkout"),
                &url,
                "checkout",
                Some(&d.join("www"))
            ),
            mirror_table("a?p", &d.join("inplace"), &url, "in-place", None),
            mirror_table(
                "*",
                &d.join("branches"),
                &url,
                "branches",
                Some(&d.join("envs"))
            ),
        );
        let listener = Listener::start(d, &config);
        listener.wait_log("connected to", 1);
        Everything {
            server,
            listener,
            dir,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Every mode shows `commit` with `site.txt` holding `content` on master.
    fn assert_follows(&self, commit: &str, content: &str) {
        let followed = wait_until(FOLLOW_CAP, || {
            rev(&self.path("fetch"), "refs/remotes/origin/master").as_deref() == Some(commit)
                && read(&self.path("www/site.txt")).as_deref() == Some(content)
                && rev(&self.path("inplace"), "HEAD").as_deref() == Some(commit)
                && read(&self.path("inplace/site.txt")).as_deref() == Some(content)
                && read(&self.path("envs/master/site.txt")).as_deref() == Some(content)
        });
        assert!(
            followed,
            "mirrors did not reach {commit}:\n{}",
            self.listener.log()
        );
    }
}

fn every_mode_follows_pushes(broker: &Broker) {
    let mut all = Everything::start(broker);
    let first = all.server.fixture.rev("HEAD");
    all.assert_follows(&first, "v0\n");
    let second = all
        .server
        .push_files("master", "second", &[("site.txt", b"v1\n")]);
    all.assert_follows(&second, "v1\n");
    assert_eq!(
        fs::read_link(all.path("www")).unwrap(),
        Path::new(".www.hookbus").join(&second),
        "checkout publishes through a symlink"
    );
    // branches: one appears with its own tree, then goes with its branch.
    all.server
        .push_files("feature", "feature", &[("site.txt", b"feature\n")]);
    let appeared = wait_until(FOLLOW_CAP, || {
        read(&all.path("envs/feature/site.txt")).as_deref() == Some("feature\n")
    });
    assert!(
        appeared,
        "branch feature not published:\n{}",
        all.listener.log()
    );
    all.server
        .fixture
        .git(&["push", "-q", "origin", ":refs/heads/feature"]);
    // The symlink goes first, then its releases.
    let gone = wait_until(FOLLOW_CAP, || {
        !all.path("envs/feature").exists() && !all.path("envs/.hookbus/feature").exists()
    });
    assert!(gone, "branch feature not removed:\n{}", all.listener.log());
    assert_eq!(names(&all.path("envs")), [".hookbus", "master"]);
    assert_eq!(names(&all.path("envs/.hookbus")), ["master"]);
    let status = all.listener.terminate();
    assert!(status.success(), "{status:?}:\n{}", all.listener.log());
    assert!(all.listener.log().contains("listen: stopped"));
}

#[test]
fn every_mode_follows_pushes_through_activemq() {
    every_mode_follows_pushes(&brokers::activemq());
}

#[test]
fn every_mode_follows_pushes_through_rabbitmq() {
    every_mode_follows_pushes(&brokers::rabbitmq());
}

/// A server and a listener with one mirror of `mode` (target `www` when the
/// mode needs one).
fn single(
    broker: &Broker,
    mode: &str,
    listen_extra: &str,
) -> (Server, Listener, tempfile::TempDir) {
    let server = Server::new(broker);
    server.push_files("master", "first", &[("a.txt", b"0\n"), ("b.txt", b"0\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = match mode {
        "checkout" | "branches" => Some(d.join("www")),
        _ => None,
    };
    let config = format!(
        "{}{}{}",
        broker.config(),
        listen_table(d, &server.topic, listen_extra),
        mirror_table(
            "app",
            &d.join("clone"),
            &server.url(),
            mode,
            target.as_deref()
        ),
    );
    let listener = Listener::start(d, &config);
    listener.wait_log("connected to", 1);
    listener.wait_log(" ok (", 1);
    (server, listener, dir)
}

#[test]
fn a_reader_never_sees_a_mixed_or_missing_checkout_during_50_updates() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (server, listener, dir) = single(&brokers::activemq(), "checkout", "");
    let www = dir.path().join("www");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (www, stop) = (www.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut reads, mut mixed, mut missing, mut left_behind) = (0, 0, 0, 0);
            while !stop.load(Ordering::Relaxed) {
                let Ok(tree) = fs::canonicalize(&www) else {
                    missing += 1;
                    continue;
                };
                match (read(&tree.join("a.txt")), read(&tree.join("b.txt"))) {
                    (Some(a), Some(b)) if a == b => reads += 1,
                    (Some(_), Some(_)) => mixed += 1,
                    // The reader was two releases behind: its tree was removed.
                    _ if !tree.exists() => left_behind += 1,
                    _ => mixed += 1,
                }
            }
            (reads, mixed, missing, left_behind)
        })
    };
    for round in 1..=50 {
        let content = format!("{round}\n");
        server.push_files(
            "master",
            &format!("round {round}"),
            &[("a.txt", content.as_bytes()), ("b.txt", content.as_bytes())],
        );
    }
    let last = server.fixture.rev("HEAD");
    let done = wait_until(FOLLOW_CAP, || {
        read(&www.join("a.txt")).as_deref() == Some("50\n")
            && fs::read_link(&www).is_ok_and(|l| l.ends_with(&last))
    });
    stop.store(true, Ordering::Relaxed);
    let (reads, mixed, missing, left_behind) = reader.join().unwrap();
    eprintln!("reader: {reads} consistent reads, {mixed} mixed, {missing} missing, {left_behind} left behind");
    assert!(done, "checkout did not reach round 50:\n{}", listener.log());
    assert_eq!((mixed, missing), (0, 0));
    assert!(reads > 0);
    // The current release and at most the one before it are kept.
    let releases = names(&dir.path().join(".www.hookbus"));
    assert!(
        releases.contains(&last) && releases.len() <= 2,
        "{releases:?}"
    );
}

#[test]
fn branches_publish_safe_names_and_refuse_hostile_ones() {
    let (server, listener, dir) = single(&brokers::activemq(), "branches", "");
    let www = dir.path().join("www");
    for hostile in ["$(touch${IFS}pwned)", "feature/x", "-rf", "semi;colon", "é"] {
        server.fixture.git(&[
            "push",
            "-q",
            "origin",
            &format!("HEAD:refs/heads/{hostile}"),
        ]);
    }
    server.push_files("ok-branch", "fine", &[("a.txt", b"ok\n")]);
    assert!(wait_until(FOLLOW_CAP, || read(
        &www.join("ok-branch/a.txt")
    )
    .as_deref()
        == Some("ok\n")));
    listener.wait_log("$(touch${IFS}pwned)", 1);
    assert!(listener.log().contains("refused"), "{}", listener.log());
    assert_eq!(names(&www), [".hookbus", "master", "ok-branch"]);
    assert_eq!(names(&www.join(".hookbus")), ["master", "ok-branch"]);
    assert!(!dir.path().join("pwned").exists() && !Path::new("pwned").exists());
}

/// Everything below `dir` that a message could have changed: file names and
/// contents outside `.git`, symlinks, and every ref of every clone.
fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let shown = path.strip_prefix(dir).unwrap().display().to_string();
        if meta.file_type().is_symlink() {
            out.push(format!(
                "{shown} -> {}",
                fs::read_link(&path).unwrap().display()
            ));
        } else if meta.is_dir() {
            if path.join(".git").is_dir() {
                let refs = listenutil::git_ok(&path, &["for-each-ref"]);
                out.extend(refs.lines().map(|line| format!("{shown}: {line}")));
            }
            for entry in fs::read_dir(&path).unwrap() {
                let entry = entry.unwrap();
                if entry.file_name() != ".git"
                    && entry.file_name() != "state"
                    && entry.file_name() != "listen.log"
                {
                    stack.push(entry.path());
                }
            }
        } else {
            out.push(format!(
                "{shown} = {}",
                String::from_utf8_lossy(&fs::read(&path).unwrap())
            ));
        }
    }
    out.sort();
    out
}

fn hostile_messages_change_nothing(broker: &Broker) {
    let (server, listener, dir) = single(broker, "branches", "");
    let before = snapshot(dir.path());
    let rev = "0123456789012345678901234567890123456789";
    let messages: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("repo", "../../../etc")], ""),
        (
            vec![
                ("repo", "app"),
                ("refname", "refs/heads/../../../x"),
                ("newrev", "$(touch pwned)"),
            ],
            "",
        ),
        (
            vec![
                ("repo", "app"),
                ("refname", "refs/heads/$(touch pwned)"),
                ("newrev", rev),
                ("hookbus-id", "h1"),
            ],
            "",
        ),
        (vec![], "repo: ../../x\nrefname: refs/heads/;rm -rf /\n"),
        (vec![], "{\"repo\": [1,2], \"refname\": {}}"),
        (vec![], "{not json"),
        (vec![], "\n"),
        (vec![("repo", "")], "repo: \n"),
    ];
    broker.publish_independently(&server.topic, &messages);
    // Then a real push: the daemon is alive and still follows.
    server.push_files("next", "after the junk", &[("a.txt", b"next\n")]);
    let www = dir.path().join("www");
    assert!(
        wait_until(FOLLOW_CAP, || read(&www.join("next/a.txt")).as_deref()
            == Some("next\n")),
        "{}",
        listener.log()
    );
    let after: Vec<String> = snapshot(dir.path())
        .into_iter()
        .filter(|line| !line.contains("next"))
        .collect();
    assert_eq!(before, after);
    assert!(!dir.path().join("pwned").exists() && !Path::new("pwned").exists());
    assert!(
        listener.log().contains("ignored a message"),
        "{}",
        listener.log()
    );
}

#[test]
fn hostile_and_malformed_messages_change_nothing_on_activemq() {
    hostile_messages_change_nothing(&brokers::activemq());
}

#[test]
fn hostile_and_malformed_messages_change_nothing_on_rabbitmq() {
    hostile_messages_change_nothing(&brokers::rabbitmq());
}

#[test]
fn a_message_in_the_seeds_text_format_from_another_client_triggers_a_fetch() {
    let broker = brokers::rabbitmq();
    let server = Server::new(&broker);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The server's hook publishes elsewhere: only the seed-format message
    // can tell the listener.
    let seed_topic = brokers::unique("topic", "listen.seed");
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let config = format!(
        "{}{}{}",
        broker.config(),
        listen_table(d, &seed_topic, ""),
        mirror_table("spog", &d.join("clone"), &server.url(), "fetch", None),
    );
    let listener = Listener::start(d, &config);
    listener.wait_log(" ok (", 1);
    assert_eq!(
        rev(&d.join("clone"), "origin/master").as_deref(),
        Some(first.as_str())
    );
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    let body = format!(
        "[spog] refs/heads/master {second}\nrepo: spog\noldrev: {first}\nnewrev: {second}\nrefname: refs/heads/master\n commit {second}\n"
    );
    broker.publish_independently(&seed_topic, &[(vec![], body.as_str())]);
    let fetched = wait_until(FOLLOW_CAP, || {
        rev(&d.join("clone"), "origin/master").as_deref() == Some(second.as_str())
    });
    assert!(fetched, "{}", listener.log());
}

#[test]
fn each_piece_of_work_is_reported_as_json() {
    let broker = brokers::activemq();
    let report = brokers::unique("topic", "listen.report");
    // Two events: the fetch at start, then the push's.
    let subscription = broker.subscribe(&report, 2);
    let (server, mut listener, _dir) = single(&broker, "fetch", &format!("report = \"{report}\""));
    let commit = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    let events = subscription.messages();
    let event: serde_json::Value = serde_json::from_slice(&events[1].body).unwrap();
    assert_eq!(event["result"], "ok", "{event}");
    assert_eq!(event["mode"], "fetch");
    assert_eq!(event["repo"], "app");
    assert_eq!(event["messages"], 1);
    assert_eq!(event["newrev"], commit.as_str());
    assert_eq!(event["refname"], "refs/heads/master");
    assert!(event["hookbus_id"].is_string() && event["duration_ms"].is_u64());
    assert!(listener.terminate().success());
}

/// Issue 15: messages that arrive while a mirror's fetch runs are answered
/// together by one more fetch, not one fetch each.
#[test]
fn a_burst_for_one_mirror_is_answered_by_far_fewer_fetches() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The server's hook publishes elsewhere: only the burst tells the listener.
    let burst_topic = brokers::unique("topic", "listen.burst");
    let report = brokers::unique("topic", "listen.report");
    let config = format!(
        "{}{}{}",
        broker.config(),
        listen_table(d, &burst_topic, &format!("report = \"{report}\"")),
        mirror_table("app", &d.join("clone"), &server.url(), "fetch", None),
    );
    let listener = Listener::start(d, &config);
    listener.wait_log(" ok (", 1);
    // Every report until none has come for 5 s (a fetch here takes far less).
    let mut reports = broker.drain(&report, 1, Duration::from_secs(5), FOLLOW_CAP);
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    let headers = vec![
        ("repo", "app"),
        ("refname", "refs/heads/master"),
        ("newrev", second.as_str()),
    ];
    // One connection: the 40 arrive back to back, mostly while a fetch runs.
    let burst = vec![(headers, ""); 40];
    broker.publish_independently(&burst_topic, &burst);
    let events: Vec<serde_json::Value> = reports
        .received()
        .iter()
        .map(|report| serde_json::from_slice(&report.body).unwrap())
        .filter(|event: &serde_json::Value| event["messages"] != 0)
        .collect();
    let log = listener.log();
    assert!(events.iter().all(|event| event["result"] == "ok"), "{log}");
    let answered: u64 = events.iter().map(|e| e["messages"].as_u64().unwrap()).sum();
    eprintln!("{} fetch(es) answered {answered} messages", events.len());
    assert_eq!(answered, 40, "{events:#?}\n{log}");
    assert!(events.len() < 20, "not coalesced: {events:#?}\n{log}");
    assert_eq!(
        rev(&d.join("clone"), "origin/master").as_deref(),
        Some(second.as_str())
    );
}
