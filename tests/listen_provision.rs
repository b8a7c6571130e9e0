//! What a deploy host does with its published tree (issue 24, items 4-6),
//! against the real `hookbus listen`, a real broker and real pushes:
//! on-change steps (once per change, never for a no-op, path filters, a
//! failure leaves the mirror BROKEN until a later change works, rollback and
//! unfreeze run them), sparse trees in checkout and in-place modes, and links
//! that follow the published tree and refuse to replace a real directory.

mod brokers;
mod gitutil;
mod listenutil;

use listenutil::{
    listen_table, mirror_table, names, read, wait_until, Listener, Server, FOLLOW_CAP,
};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// The commit the checkout target publishes.
fn published(www: &Path) -> Option<String> {
    let link = fs::read_link(www).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The mirror `name` in `ctl --json status`.
fn status(listener: &Listener, name: &str) -> Value {
    let out = listener.ctl_ok(&["--json", "status"]);
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mirrors = answer["mirrors"].as_array().unwrap();
    let found = mirrors.iter().find(|m| m["name"] == name);
    found
        .unwrap_or_else(|| panic!("no mirror {name} in {answer}"))
        .clone()
}

/// The on-change log's lines: `OLDREV NEWREV` per run.
fn runs(log: &Path) -> Vec<String> {
    read(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn on_change_runs_once_per_published_change_and_links_and_sparse_follow() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = server.push_files(
        "master",
        "first",
        &[
            ("grafana/etc/a.ini", b"v1\n"),
            ("grafana/README", b"r1\n"),
            ("other/x", b"x1\n"),
        ],
    );
    let (www, etc, log, paths) = (
        d.join("www"),
        d.join("etc-grafana"),
        d.join("changes.log"),
        d.join("paths.log"),
    );
    // The step sees the revs as a template ({newrev}) and in its environment;
    // it fails while the published a.ini says "bad". The log line is written
    // last: the test waits for it, then reads the paths.
    let script = format!(
        "echo \"$HOOKBUS_PATHS\" >> {paths}; echo \"$HOOKBUS_OLDREV $1\" >> {log}; ! grep -q bad {etc}/a.ini",
        log = log.display(),
        paths = paths.display(),
        etc = etc.display()
    );
    // A queue keeps the reports until the end of the test reads them.
    let report = brokers::unique("queue", "listen.provision");
    let blocked = d.join("blocked");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("keep.txt"), "mine\n").unwrap();
    let config = format!(
        "{}{}{}name = \"grafana\"\nsparse = [\"grafana/\"]\non_change_paths = [\"grafana/etc/**\"]\n\
         [[mirror.on_change]]\nkind = \"exec\"\nargv = [\"/bin/sh\", \"-c\", {script:?}, \"sh\", \"{{newrev}}\"]\ntimeout_s = 30\n\
         [[mirror.link]]\nlocal = \"{}\"\npath = \"grafana/etc\"\n\
         {}name = \"inplace\"\nsparse = [\"grafana/\"]\n[[mirror.link]]\nlocal = \"{}\"\npath = \"grafana\"\n",
        broker.config(),
        listen_table(
            d,
            &server.topic,
            &format!("report = \"{report}\"\nmetrics = \"127.0.0.1:0\""),
        ),
        mirror_table("app", &d.join("clone"), &server.url(), "checkout", Some(&www)),
        etc.display(),
        mirror_table("app", &d.join("work"), &server.url(), "in-place", None),
        blocked.display(),
    );
    let mut listener = Listener::start(d, &config);
    listener.wait_control();
    let zeros = "0".repeat(40);
    assert!(
        wait_until(FOLLOW_CAP, || runs(&log).len() == 1),
        "the first publish runs on_change once:\n{}",
        listener.log()
    );
    assert_eq!(published(&www).as_deref(), Some(first.as_str()));
    assert_eq!(runs(&log), [format!("{zeros} {first}")]);
    let seen = read(&paths).unwrap();
    assert!(
        seen.contains("grafana/etc/a.ini") && !seen.contains("other/x"),
        "{{paths}} are the published paths: {seen}"
    );

    // Sparse: only grafana/ is published, in both modes; the clone keeps all.
    assert_eq!(names(&www), ["grafana"]);
    // The in-place mirror works on its own worker: on a loaded machine it may
    // still be cloning when the checkout mirror's step has run.
    wait_until(FOLLOW_CAP, || names(&d.join("work")) == [".git", "grafana"]);
    assert_eq!(names(&d.join("work")), [".git", "grafana"]);
    let all = listenutil::git_ok(&d.join("work"), &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(all.contains("other/x"), "{all}");

    // The link points into the published tree.
    assert_eq!(read(&etc.join("a.ini")).as_deref(), Some("v1\n"));

    // A no-op (a sync that finds nothing new) runs nothing.
    listener.ctl_ok(&["sync", "grafana"]);
    assert_eq!(runs(&log).len(), 1);

    // Changes outside sparse, or outside on_change_paths, publish but skip.
    let second = server.push_files("master", "other", &[("other/x", b"x2\n")]);
    let third = server.push_files("master", "readme", &[("grafana/README", b"r2\n")]);
    assert!(wait_until(FOLLOW_CAP, || published(&www).as_deref()
        == Some(third.as_str())));
    listener.ctl_ok(&["sync", "grafana"]);
    assert_eq!(runs(&log).len(), 1, "{}", listener.log());
    assert!(
        listener.log().contains("on_change skipped"),
        "{}",
        listener.log()
    );
    let _ = second;

    // A change that matters runs it once, with the revs published before/now.
    let fourth = server.push_files("master", "v2", &[("grafana/etc/a.ini", b"v2\n")]);
    assert!(
        wait_until(FOLLOW_CAP, || runs(&log).len() == 2),
        "{}",
        listener.log()
    );
    assert_eq!(runs(&log)[1], format!("{third} {fourth}"));
    assert_eq!(read(&etc.join("a.ini")).as_deref(), Some("v2\n"));
    listener.ctl_ok(&["sync", "grafana"]);
    assert_eq!(runs(&log).len(), 2);

    // A failing chain: BROKEN with its reason, kept while nothing changes.
    let bad = server.push_files("master", "bad", &[("grafana/etc/a.ini", b"bad\n")]);
    assert!(
        wait_until(FOLLOW_CAP, || runs(&log).len() == 3),
        "{}",
        listener.log()
    );
    let broken = wait_until(FOLLOW_CAP, || {
        status(&listener, "grafana")["state"] == "BROKEN"
    });
    assert!(broken, "{}", listener.log());
    let grafana = status(&listener, "grafana");
    let error = grafana["last_error"].as_str().unwrap();
    assert!(
        error.contains("on_change failed") && error.contains("exited with 1"),
        "{grafana}"
    );
    assert_eq!(
        grafana["commit"],
        bad.as_str(),
        "the tree did move: {grafana}"
    );
    let series = "hookbus_mirror_state{mirror=\"grafana\",state=\"BROKEN\"}";
    assert_eq!(listener.metric(series), Some(1.0));
    let synced = listener.ctl(&["sync", "grafana"]);
    assert_ne!(synced.code, Some(0), "{synced:?}");
    assert_eq!(status(&listener, "grafana")["state"], "BROKEN");
    assert_eq!(runs(&log).len(), 3, "no change, no retry");

    // The next change retries, and clears it.
    let good = server.push_files("master", "v3", &[("grafana/etc/a.ini", b"v3\n")]);
    assert!(
        wait_until(FOLLOW_CAP, || runs(&log).len() == 4),
        "{}",
        listener.log()
    );
    assert_eq!(runs(&log)[3], format!("{bad} {good}"));
    let ok = wait_until(FOLLOW_CAP, || status(&listener, "grafana")["state"] == "OK");
    assert!(ok, "{}", listener.log());

    // Rollback runs it and the link follows; unfreeze catches up and runs it.
    let said = listener.ctl_ok(&["rollback", "grafana", &fourth]);
    assert!(said.contains("rolled back"), "{said}");
    assert_eq!(runs(&log).len(), 5);
    assert_eq!(runs(&log)[4], format!("{good} {fourth}"));
    assert_eq!(read(&etc.join("a.ini")).as_deref(), Some("v2\n"));
    listener.ctl_ok(&["unfreeze", "grafana"]);
    assert_eq!(runs(&log).len(), 6);
    assert_eq!(runs(&log)[5], format!("{fourth} {good}"));
    assert_eq!(read(&etc.join("a.ini")).as_deref(), Some("v3\n"));

    // A link never replaces a real directory: the in-place mirror is BROKEN
    // with the fix in its reason, and the directory is untouched.
    let inplace = status(&listener, "inplace");
    assert_eq!(inplace["state"], "BROKEN", "{inplace}");
    let error = inplace["last_error"].as_str().unwrap();
    assert!(error.contains("replace = true"), "{inplace}");
    assert!(fs::symlink_metadata(&blocked).unwrap().is_dir());
    assert_eq!(read(&blocked.join("keep.txt")).as_deref(), Some("mine\n"));

    // The report events say how each chain went.
    assert!(listener.terminate().success());
    let events: Vec<Value> = broker
        .drain(&report, 0, Duration::from_secs(3), FOLLOW_CAP)
        .received()
        .iter()
        .map(|message| serde_json::from_slice(&message.body).unwrap())
        .filter(|event: &Value| event["mirror"] == "grafana")
        .collect();
    let said = |prefix: &str| {
        (events.iter())
            .filter(|e| {
                e["on_change"]
                    .as_str()
                    .is_some_and(|o| o.starts_with(prefix))
            })
            .count()
    };
    assert_eq!(
        (said("ok"), said("failed"), said("skipped")),
        (5, 1, 2),
        "{events:#?}"
    );
    let failed = events
        .iter()
        .find(|e| {
            e["on_change"]
                .as_str()
                .is_some_and(|o| o.starts_with("failed"))
        })
        .unwrap();
    assert_eq!(
        (&failed["result"], &failed["state"]),
        (&"failed".into(), &"BROKEN".into()),
        "{failed}"
    );
}
