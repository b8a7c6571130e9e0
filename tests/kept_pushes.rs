//! Issue 12 item 4: a hook whose config cannot be used keeps what it was
//! given (real pushes, real svn commits), and `hookbus flush` emits it once
//! the config is fixed, exactly as the hook would have.

mod brokers;
mod gitutil;
mod outboxutil;
mod svnutil;

use brokers::activemq;
use gitutil::{hookbus, parse_lines, run_ok, Fixture, HOOKBUS};
use outboxutil::{bounded, text, Setup, RUN_BOUND};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A config no hook can use: the TOML does not parse.
const BROKEN: &str = "[broker\nurl = \"stomp://127.0.0.1:1\"\n";

/// The pushes both repositories get: a commit on master, then a branch from it
/// with a commit of its own. Returns the stderr of each push's hook.
fn two_pushes(fixture: &Fixture, kept: &Path) -> Vec<String> {
    let mut said = Vec::new();
    let push = |refspec: &str| {
        let before = fixture.hook_stderr().len();
        let mut command = fixture.git_cmd(&["push", "-q", "origin", refspec]);
        command
            .env("HOOKBUS_OUTBOX", kept)
            .env_remove("XDG_STATE_HOME");
        run_ok(command);
        fixture.hook_stderr()[before..].to_string()
    };
    fixture.commit("on master", &[("a", b"a\n")]);
    said.push(push("master"));
    fixture.git(&["checkout", "-q", "-b", "feature"]);
    fixture.commit("on feature", &[("b", b"b\n")]);
    said.push(push("feature"));
    said
}

/// The JSON bodies of messages, by refname.
fn by_ref(bodies: impl IntoIterator<Item = (String, Value)>) -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = bodies.into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn pushes_kept_under_a_broken_config_are_emitted_by_flush_as_the_hook_would_have() {
    let amq = activemq();
    let setup = Setup::new(&amq);
    let kept = setup.fixture.root.join("default-outbox");
    let good_config = fs::read_to_string(&setup.fixture.config).unwrap();
    setup.fixture.write_config(BROKEN);
    let said = two_pushes(&setup.fixture, &kept);
    for stderr in &said {
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains("push kept in")
                && first.contains(&kept.join("pushes").display().to_string())
                && first.contains("hookbus flush"),
            "the hook should say the push was kept, and how to send it: {stderr}"
        );
    }
    let files: Vec<_> = fs::read_dir(kept.join("pushes")).unwrap().collect();
    assert_eq!(files.len(), 2, "{files:?}");

    // The same pushes to a twin repository whose config works, printed.
    let twin = Fixture::with_config(&format!(
        "[[route]]\ndestination = \"{}\"\nformat = \"json\"\n",
        setup.queue
    ));
    two_pushes(&twin, &kept);
    let wanted = by_ref(
        parse_lines(&fs::read_to_string(&twin.out).unwrap())
            .into_iter()
            .map(|m| (m.header("refname").to_string(), m.json())),
    );
    assert_eq!(wanted.len(), 2);
    // master's message owns its commit although feature reaches it by now.
    for (refname, body) in &wanted {
        assert_eq!(body["commits_total"], 1, "{refname}: {body:#}");
    }

    // Fixed: flush runs both again (as another user name, which must not
    // matter) and delivers their messages.
    setup.fixture.write_config(&good_config);
    let subscription = amq.drain(&setup.queue, 2, Duration::from_millis(1500), RUN_BOUND);
    let out = bounded(
        hookbus(&setup.fixture.config, &setup.fixture.root)
            .arg("flush")
            .env("HOOKBUS_OUTBOX", &kept)
            .env("USER", "bob"),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "flush: {stderr}");
    assert!(stderr.contains("2 kept push(es)"), "{stderr}");
    let got = by_ref(subscription.messages().into_iter().map(|m| {
        let body: Value = serde_json::from_slice(&m.body).unwrap();
        (m.header("refname").to_string(), body)
    }));
    assert_eq!(got, wanted);
    assert_eq!(
        fs::read_dir(kept.join("pushes")).unwrap().count(),
        1,
        "only the lock is left"
    );

    // Nothing left to run: a second flush emits nothing again.
    let out = bounded(
        hookbus(&setup.fixture.config, &setup.fixture.root)
            .arg("flush")
            .env("HOOKBUS_OUTBOX", &kept),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("kept push"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_hook_with_an_unreadable_config_keeps_the_push_and_exits_3() {
    let fixture = Fixture::publishing("");
    let kept = fixture.root.join("default-outbox");
    let tip = fixture.fast_commits("direct", 1);
    let input = fixture.root.join("stdin");
    fs::write(
        &input,
        format!("{} {tip} refs/heads/direct\n", gitutil::Z40),
    )
    .unwrap();
    let missing = fixture.root.join("no-such.toml");
    let out = Command::new(HOOKBUS)
        .current_dir(&fixture.bare)
        .arg("--config")
        .arg(&missing)
        .arg("post-receive")
        .env("HOOKBUS_OUTBOX", &kept)
        .stdin(fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("push kept in") && stderr.contains("cannot read config"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // Once the config exists, flush emits the push's message into the outbox.
    fs::write(&missing, "[outbox]\ndir = \"outbox\"\n").unwrap();
    let out = bounded(
        Command::new(HOOKBUS)
            .current_dir(&fixture.root)
            .arg("--config")
            .arg(&missing)
            .arg("flush")
            .env("HOOKBUS_OUTBOX", &kept),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = bounded(
        Command::new(HOOKBUS)
            .current_dir(&fixture.root)
            .arg("--config")
            .arg(&missing)
            .args(["outbox", "list"]),
    );
    let listed = text(&out.stdout);
    assert!(
        listed.contains(&format!("refs/heads/direct {tip}")),
        "{listed}"
    );
}

#[test]
fn an_svn_commit_under_a_broken_config_is_kept_and_emitted_by_flush() {
    let svn = svnutil::SvnFixture::new("");
    let good_config = fs::read_to_string(&svn.config).unwrap();
    let kept = svn.root.join("default-outbox");
    // svn runs hooks with an empty environment: hooks-env says where to keep.
    let env_file = svn.repo.join("conf/hooks-env");
    let env = fs::read_to_string(&env_file).unwrap();
    fs::write(
        &env_file,
        format!("{env}HOOKBUS_OUTBOX = {}\n", kept.display()),
    )
    .unwrap();
    fs::write(&svn.config, BROKEN).unwrap();
    svn.write(&[("projA/trunk/file", b"kept\n")]);
    let mut commit = Command::new("svn");
    commit
        .current_dir(&svn.wc)
        .args([
            "commit",
            "-q",
            "-m",
            "while broken",
            "--non-interactive",
            "--username",
            "alice",
            "--config-dir",
        ])
        .arg(svn.root.join("svn-config"))
        .env_clear()
        .env("LC_ALL", "C.UTF-8");
    let out = commit.output().unwrap();
    // svn reports a failed post-commit hook only without -q; the push is kept.
    assert!(out.status.success(), "svn commit: {}", text(&out.stderr));
    let kept_files: Vec<_> = fs::read_dir(kept.join("pushes")).unwrap().collect();
    assert_eq!(kept_files.len(), 1, "{kept_files:?}");
    assert!(svn.take_messages().is_empty());

    fs::write(&svn.config, good_config).unwrap();
    let out = bounded(
        Command::new(HOOKBUS)
            .arg("--config")
            .arg(&svn.config)
            .arg("flush")
            .env("HOOKBUS_OUTBOX", &kept)
            .env_remove("HOOKBUS_REPO_NAME"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let messages = svn.take_messages();
    assert!(!messages.is_empty(), "flush emitted nothing");
    let revision = svn.youngest().to_string();
    for message in &messages {
        assert_eq!(message.header("revname"), revision);
        assert_eq!(message.header("refname"), "refs/heads/trunk");
        assert_eq!(message.header("pusher"), "alice");
    }
}
