//! A publishing fixture for the outbox tests: a real bare repository whose
//! hook publishes JSON to a queue of its own through an outbox in the
//! fixture's directory; hookbus runs bounded in time.

#![allow(dead_code)] // each test binary uses a different part of the helper

use crate::brokers::{unique, Broker};
use crate::gitutil::{files_in, hookbus, Fixture};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// The hook's whole-wait bound in these tests.
pub const DEADLINE_MS: u64 = 1000;
/// "Did not hang": the deadline plus a generous margin for git and a busy
/// machine. Not a benchmark.
pub const HANG_BOUND: Duration = Duration::from_secs(8);
/// How long a command that must finish may run before the test kills it.
pub const RUN_BOUND: Duration = Duration::from_secs(30);

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A publishing fixture whose one route sends JSON to a queue of its own,
/// with its outbox in the fixture's directory.
pub struct Setup {
    pub fixture: Fixture,
    pub outbox: PathBuf,
    pub queue: String,
}

impl Setup {
    pub fn new(broker: &Broker) -> Setup {
        let fixture = Fixture::publishing("");
        let setup = Setup {
            outbox: fixture.root.join("outbox"),
            queue: unique("queue", "outbox"),
            fixture,
        };
        setup.configure(&broker.config(), "");
        setup
    }

    /// Writes the config: a `[broker]` table and extra `[outbox]` lines.
    pub fn configure(&self, broker: &str, outbox_extra: &str) {
        self.fixture.write_config(&format!(
            "{broker}deadline_ms = {DEADLINE_MS}\n\n[outbox]\ndir = {:?}\n{outbox_extra}\n[log]\nsyslog = \"\"\n\n[[route]]\ndestination = \"{}\"\nformat = \"json\"\n",
            self.outbox, self.queue
        ));
    }

    /// Runs hookbus in the bare repository, killing it after `RUN_BOUND`.
    pub fn run(&self, args: &[&str]) -> Output {
        bounded(hookbus(&self.fixture.config, &self.fixture.bare).args(args))
    }

    /// Commits and pushes master; returns the new commit and the push's time.
    pub fn commit_and_push(&self, message: &str) -> (String, Duration) {
        self.fixture.commit_and_push(message)
    }

    /// `hookbus outbox list`: its lines (it must succeed) and its summary.
    pub fn list(&self) -> (Vec<String>, String) {
        let out = self.run(&["outbox", "list"]);
        assert!(out.status.success(), "outbox list: {}", text(&out.stderr));
        let lines = text(&out.stdout).lines().map(str::to_string).collect();
        (lines, text(&out.stderr))
    }
}

/// Runs a command with no stdin, killing it (and failing) after `RUN_BOUND`.
pub fn bounded(command: &mut std::process::Command) -> Output {
    bounded_with(command, Stdio::null())
}

/// Like [`bounded`], with `stdin` as the command's standard input.
pub fn bounded_with(command: &mut std::process::Command, stdin: Stdio) -> Output {
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hookbus");
    let end = Instant::now() + RUN_BOUND;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{command:?} still ran after {RUN_BOUND:?}; killed. stderr: {}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Pending message files of an outbox (not dead, not temporary).
pub fn pending(outbox: &Path) -> Vec<String> {
    files_in(outbox)
        .into_iter()
        .filter(|f| f.ends_with(".msg") && !f.contains("/dead/") && !f.contains("/.tmp-"))
        .collect()
}
