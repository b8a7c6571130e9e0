//! Many pushes at once through one outbox (issue 26): real bare
//! repositories with the hook `hookbus install` writes, a working clone per
//! pusher with one commit to push, one config and outbox, a syslog socket
//! for the hooks' lines. Shared by tests/concurrent_pushes.rs and
//! tests/relay.rs.

#![allow(dead_code)] // each test binary uses a different part of the fixture

use crate::brokers::{self, unique, Broker};
use crate::gitutil::{git, run_ok, HOOKBUS};
use std::collections::HashSet;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Pushers at once: enough that, on main's code, many hooks found the lock
/// taken.
pub const PUSHERS: usize = 12;
/// The hook's whole-wait bound (the default).
pub const DEADLINE: Duration = Duration::from_millis(2000);
/// How long the subscriber goes on after the expected messages, to see a
/// duplicate.
pub const IDLE: Duration = Duration::from_millis(1500);
/// The most any subscriber here waits in all.
pub const CAP: Duration = Duration::from_secs(60);

/// How the pushers share repositories.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// One bare repository per pusher, each pushing master.
    RepositoryEach,
    /// One bare repository; each pusher pushes a branch of its own.
    BranchEach,
}

/// One pusher's side: a working clone with one commit to push, and the
/// branch it pushes.
pub struct Pusher {
    pub work: PathBuf,
    pub branch: String,
}

/// What one `git push` printed and how long it took.
pub struct Pushed {
    pub stderr: String,
    pub took: Duration,
}

impl Pushed {
    /// The hook's lines, as git relays them (`remote: hookbus: …`).
    pub fn told(&self) -> Vec<&str> {
        (self.stderr.lines())
            .filter_map(|line| line.strip_prefix("remote: hookbus: "))
            .collect()
    }

    /// How many messages the hook said were queued; 0 when it said nothing
    /// (everything was delivered).
    pub fn queued(&self) -> usize {
        self.told()
            .iter()
            .filter(|line| line.contains("queued in"))
            .map(|line| line.split(' ').next().unwrap().parse::<usize>().unwrap())
            .sum()
    }
}

/// Repositories with the installed hook, one outbox, a syslog socket.
pub struct Server {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub config: PathBuf,
    pub outbox: PathBuf,
    pub queue: String,
    pub log: UnixDatagram,
    pub log_path: PathBuf,
    pub pushers: Vec<Pusher>,
}

impl Server {
    pub fn new(layout: Layout) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let log_path = root.join("log");
        let log = UnixDatagram::bind(&log_path).unwrap();
        let mut server = Server {
            config: root.join("hookbus.toml"),
            outbox: root.join("outbox"),
            queue: unique("queue", "concurrent"),
            log,
            log_path,
            pushers: Vec::new(),
            root,
            _dir: dir,
        };
        let shared = server.bare("app.git");
        for index in 0..PUSHERS {
            let (bare, branch) = match layout {
                Layout::RepositoryEach => {
                    (server.bare(&format!("app{index}.git")), "master".into())
                }
                Layout::BranchEach => (shared.clone(), format!("topic{index}")),
            };
            let work = server.root.join(format!("work{index}"));
            run_ok(git(
                &server.root,
                &["clone", "-q", path(&bare), path(&work)],
            ));
            fs::write(work.join("file"), format!("pusher {index}\n")).unwrap();
            run_ok(git(&work, &["add", "file"]));
            run_ok(git(
                &work,
                &["commit", "-q", "-m", &format!("commit {index}")],
            ));
            server.pushers.push(Pusher { work, branch });
        }
        server
    }

    /// One more commit for every pusher to push, labelled `label`.
    pub fn commit_again(&self, label: &str) {
        for (index, pusher) in self.pushers.iter().enumerate() {
            fs::write(pusher.work.join("file"), format!("{label} {index}\n")).unwrap();
            run_ok(git(&pusher.work, &["commit", "-q", "-a", "-m", label]));
        }
    }

    /// A bare repository with the hook `hookbus install` writes.
    pub fn bare(&self, name: &str) -> PathBuf {
        let bare = self.root.join(name);
        run_ok(git(
            &self.root,
            &["init", "-q", "--bare", "-b", "master", path(&bare)],
        ));
        let out = Command::new(HOOKBUS)
            .args(["install", "--repo"])
            .arg(&bare)
            .output()
            .unwrap();
        assert!(out.status.success(), "hookbus install failed");
        bare
    }

    /// The config: `broker` (up or down), one JSON route to the test's queue.
    pub fn configure(&self, broker: &Broker) {
        self.configure_with(broker, "");
    }

    /// Like [`Server::configure`], with `more` (`key = value` lines) in the
    /// `[broker]` table.
    pub fn configure_with(&self, broker: &Broker, more: &str) {
        let config = format!(
            "{}{more}deadline_ms = {}\n\n[outbox]\ndir = {:?}\n\n[log]\nsyslog = {:?}\n\n[[route]]\ndestination = \"{}\"\nformat = \"json\"\n",
            broker.config(),
            DEADLINE.as_millis(),
            self.outbox,
            self.log_path,
            self.queue
        );
        fs::write(&self.config, config).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Every pusher pushes its commit at the same moment.
    pub fn push_all(&self) -> Vec<Pushed> {
        self.push_all_with(|push| push)
    }

    /// Like [`Server::push_all`], each `git push` command passed through
    /// `wrap` (to run it as another user, say).
    pub fn push_all_with(&self, wrap: impl Fn(Command) -> Command) -> Vec<Pushed> {
        let start = Arc::new(Barrier::new(self.pushers.len()));
        std::thread::scope(|scope| {
            let running: Vec<_> = (self.pushers.iter())
                .map(|pusher| {
                    let start = Arc::clone(&start);
                    let refspec = format!("HEAD:refs/heads/{}", pusher.branch);
                    let mut push = git(&pusher.work, &["push", "origin", &refspec]);
                    push.env("HOOKBUS_CONFIG", &self.config)
                        .env("XDG_STATE_HOME", self.root.join("state"));
                    let mut push = wrap(push);
                    scope.spawn(move || {
                        start.wait();
                        let began = Instant::now();
                        let out = push.output().unwrap();
                        let took = began.elapsed();
                        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                        assert!(out.status.success(), "git push failed: {stderr}");
                        Pushed { stderr, took }
                    })
                })
                .collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    /// Reads the hooks' syslog lines as they come (the socket queues only
    /// a few datagrams), until `count` came and then none for a while.
    pub fn read_log(&self, count: usize) -> std::thread::JoinHandle<Vec<String>> {
        self.read_log_split(count, |_| true)
    }

    /// Like [`Server::read_log`] where others log too (`hookbus relay`):
    /// `count` lines `is_hook` takes, then the others, in order.
    pub fn read_log_split(
        &self,
        count: usize,
        is_hook: fn(&str) -> bool,
    ) -> std::thread::JoinHandle<Vec<String>> {
        let log = self.log.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            let (mut lines, mut others) = (Vec::new(), Vec::new());
            loop {
                let patience = if lines.len() < count { 20_000 } else { 500 };
                log.set_read_timeout(Some(Duration::from_millis(patience)))
                    .unwrap();
                match log.recv(&mut buffer) {
                    Ok(size) => {
                        let line = String::from_utf8_lossy(&buffer[..size]).into_owned();
                        match is_hook(&line) {
                            true => lines.push(line),
                            false => others.push(line),
                        }
                    }
                    Err(_) => break,
                }
            }
            assert_eq!(lines.len(), count, "one syslog line per push: {lines:#?}");
            lines.extend(others);
            lines
        })
    }

    pub fn pending(&self) -> usize {
        fs::read_dir(&self.outbox).map_or(0, |dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".msg"))
                .count()
        })
    }

    /// Every pusher's message arrived exactly once.
    pub fn assert_each_received_once(subscription: brokers::Subscription) {
        let received = subscription.messages();
        let ids: HashSet<&str> = received.iter().map(|m| m.header("hookbus-id")).collect();
        assert_eq!(ids.len(), PUSHERS, "a message arrived twice");
    }

    /// What `waves` rounds of pushes sent arrived, each message once.
    pub fn assert_waves_received_once(subscription: brokers::Subscription, waves: usize) {
        let received = subscription.messages();
        let ids: HashSet<&str> = received.iter().map(|m| m.header("hookbus-id")).collect();
        assert_eq!(ids.len(), waves * PUSHERS, "every push's message, once");
        assert_eq!(received.len(), waves * PUSHERS, "a message arrived twice");
    }
}

pub fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}
