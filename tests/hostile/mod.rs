//! What the hostile-broker tests share: a config pointing at a fake broker,
//! the hookbus binary run against it (timed), and a hook run of seven refs.

#![allow(dead_code)] // each test binary uses a different part of the helper

use crate::fake_broker::FakeBroker;
use crate::gitutil::{self, Fixture, Z40};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `deadline_ms` of these tests.
pub const DEADLINE_MS: u64 = 2000;
/// A hook with a 2 s deadline must be back well before this, whatever the
/// broker does. It bounds a hang; it is not a performance figure.
pub const HANG_BOUND: Duration = Duration::from_secs(10);
/// The same for `hookbus flush`, which gives an answering broker at least 5 s.
pub const FLUSH_HANG_BOUND: Duration = Duration::from_secs(15);
/// Broker words longer than this must not reach a terminal or a listing.
pub const SHOWN_BYTES: usize = 4096;

/// A config file and an outbox in a directory of their own.
pub struct Setup {
    _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub outbox: PathBuf,
}

/// One run of the hookbus binary.
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Setup {
    /// `[broker]` at `url` with `extra` lines, and a `[[route]]` table.
    pub fn new(url: &str, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hookbus.toml");
        let outbox = dir.path().join("outbox");
        let setup = Setup {
            _dir: dir,
            config,
            outbox,
        };
        setup.write(url, extra, "");
        setup
    }

    /// Rewrites the config; `routes` are `[[route]]` tables.
    pub fn write(&self, url: &str, extra: &str, routes: &str) {
        let table = format!(
            "[broker]\nurl = \"{url}\"\nlogin = \"hookbus\"\npasscode = \"secret\"\n{extra}\n"
        );
        self.write_table(&table, routes);
    }

    /// Rewrites the config with this `[broker]` table (given without
    /// `deadline_ms`) and `[[route]]` tables.
    pub fn write_table(&self, broker: &str, routes: &str) {
        let text = format!(
            "{broker}deadline_ms = {DEADLINE_MS}\n[outbox]\ndir = {:?}\n{routes}",
            self.outbox
        );
        std::fs::write(&self.config, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Runs hookbus in `dir` with this config and `stdin`.
    pub fn hookbus_in(&self, dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
        let start = Instant::now();
        let mut child = Command::new(gitutil::HOOKBUS)
            .current_dir(dir)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("HOOKBUS_PASSCODE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        // hookbus reads all of stdin before it sends anything.
        let _ = input.write_all(stdin);
        drop(input);
        let out = child.wait_with_output().unwrap();
        Run {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: start.elapsed(),
        }
    }

    pub fn hookbus(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.hookbus_in(self.outbox.parent().unwrap(), args, stdin)
    }

    /// `hookbus send` of `body` to a queue.
    pub fn send(&self, body: &[u8]) -> Run {
        self.hookbus(&["send", "--destination", "/queue/hostile"], body)
    }

    /// (pending, dead) lines of `hookbus outbox list`, and its whole output.
    pub fn listing(&self) -> (usize, usize, String) {
        let run = self.hookbus(&["outbox", "list"], b"");
        let dead = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("dead/"))
            .count();
        let pending = run.stdout.lines().count() - dead;
        (pending, dead, run.stdout)
    }
}

/// Asserts a run came back within `bound`, showing what it said and what the
/// broker logged.
pub fn assert_bounded(what: &str, run: &Run, bound: Duration, log: &[String]) {
    assert!(
        run.took < bound,
        "{what} took {:?} (bound {bound:?}); stderr: {}\nbroker log: {log:#?}",
        run.took,
        clipped(&run.stderr)
    );
}

/// `hookbus send` of one message, which must come back in time, saying
/// the message was queued.
pub fn send_queued_in_time(setup: &Setup, broker: &FakeBroker) -> Run {
    let sent = setup.send(b"hello");
    assert_bounded("send", &sent, HANG_BOUND, &broker.log());
    assert!(
        sent.stderr.contains("1 message(s) queued"),
        "{}",
        clipped(&sent.stderr)
    );
    sent
}

/// At most a few KB of `text`, for assertion messages.
pub fn clipped(text: &str) -> String {
    text.chars().take(SHOWN_BYTES).collect()
}

/// A repository whose hook run announces seven new branches `b0`..`b6` (one
/// message each on `/queue/…` with its `refname` header), in one batch.
pub struct SevenRefs {
    pub fixture: Fixture,
    pub stdin: String,
}

pub const REFS: usize = 7;

impl SevenRefs {
    pub fn new() -> SevenRefs {
        let fixture = Fixture::with_config("");
        let commit = fixture.commit("base", &[("a", b"a\n")]);
        fixture.push(&["master"]);
        let mut stdin = String::new();
        for index in 0..REFS {
            let branch = format!("b{index}");
            gitutil::run_ok(gitutil::git(&fixture.bare, &["branch", &branch, &commit]));
            stdin.push_str(&format!("{Z40} {commit} refs/heads/{branch}\n"));
        }
        SevenRefs { fixture, stdin }
    }

    /// Runs the post-receive hook with `setup`'s config.
    pub fn hook(&self, setup: &Setup) -> Run {
        setup.hookbus_in(&self.fixture.bare, &["post-receive"], self.stdin.as_bytes())
    }
}

/// One JSON route for every branch.
pub fn route(destination: &str) -> String {
    format!("[[route]]\ndestination = {destination:?}\nformat = \"json\"\n")
}
