//! Issue 26: many pushes at once through one outbox, with the hook installed
//! by `hookbus install`, real `git push`es into real bare repositories (one
//! repository per pusher, or all into one on branches of their own), the real
//! ActiveMQ that scripts/test starts and the independent subscriber.
//!
//! What each pusher is told (the `remote: hookbus:` lines of its `git push`)
//! and the syslog line of its hook must be what happened to that push's
//! message; at the start of an outage at most one push per outbox waits its
//! deadline, and `hookbus flush` delivers everything later.

mod brokers;
mod gitutil;

use brokers::{activemq, dead_address, unique, Broker};
use gitutil::{git, run_ok, HOOKBUS};
use std::collections::HashSet;
use std::fs;
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Pushers at once: enough that, on main's code, many hooks found the lock
/// taken.
const PUSHERS: usize = 12;
/// The hook's whole-wait bound (the default).
const DEADLINE: Duration = Duration::from_millis(2000);
/// How long the subscriber goes on after the expected messages, to see a
/// duplicate.
const IDLE: Duration = Duration::from_millis(1500);
/// The most any subscriber here waits in all.
const CAP: Duration = Duration::from_secs(60);

/// How the pushers share repositories.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// One bare repository per pusher, each pushing master.
    RepositoryEach,
    /// One bare repository; each pusher pushes a branch of its own.
    BranchEach,
}

/// One pusher's side: a working clone with one commit to push, and the
/// branch it pushes.
struct Pusher {
    work: PathBuf,
    branch: String,
}

/// What one `git push` printed and how long it took.
struct Pushed {
    stderr: String,
    took: Duration,
}

impl Pushed {
    /// The hook's lines, as git relays them (`remote: hookbus: …`).
    fn told(&self) -> Vec<&str> {
        (self.stderr.lines())
            .filter_map(|line| line.strip_prefix("remote: hookbus: "))
            .collect()
    }

    /// How many messages the hook said were queued; 0 when it said nothing
    /// (everything was delivered).
    fn queued(&self) -> usize {
        self.told()
            .iter()
            .filter(|line| line.contains("queued in"))
            .map(|line| line.split(' ').next().unwrap().parse::<usize>().unwrap())
            .sum()
    }
}

/// Repositories with the installed hook, one outbox, a syslog socket.
struct Server {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    outbox: PathBuf,
    queue: String,
    log: UnixDatagram,
    log_path: PathBuf,
    pushers: Vec<Pusher>,
}

impl Server {
    fn new(layout: Layout) -> Server {
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

    /// A bare repository with the hook `hookbus install` writes.
    fn bare(&self, name: &str) -> PathBuf {
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
    fn configure(&self, broker: &Broker) {
        let config = format!(
            "{}deadline_ms = {}\n\n[outbox]\ndir = {:?}\n\n[log]\nsyslog = {:?}\n\n[[route]]\ndestination = \"{}\"\nformat = \"json\"\n",
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
    fn push_all(&self) -> Vec<Pushed> {
        let start = Arc::new(Barrier::new(self.pushers.len()));
        std::thread::scope(|scope| {
            let running: Vec<_> = (self.pushers.iter())
                .map(|pusher| {
                    let start = Arc::clone(&start);
                    let refspec = format!("HEAD:refs/heads/{}", pusher.branch);
                    let mut push = git(&pusher.work, &["push", "origin", &refspec]);
                    push.env("HOOKBUS_CONFIG", &self.config)
                        .env("XDG_STATE_HOME", self.root.join("state"));
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
    fn read_log(&self, count: usize) -> std::thread::JoinHandle<Vec<String>> {
        let log = self.log.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            let mut lines = Vec::new();
            loop {
                let patience = if lines.len() < count { 20_000 } else { 500 };
                log.set_read_timeout(Some(Duration::from_millis(patience)))
                    .unwrap();
                match log.recv(&mut buffer) {
                    Ok(size) => lines.push(String::from_utf8_lossy(&buffer[..size]).into_owned()),
                    Err(_) => break,
                }
            }
            assert_eq!(lines.len(), count, "one syslog line per push: {lines:#?}");
            lines
        })
    }

    fn pending(&self) -> usize {
        fs::read_dir(&self.outbox).map_or(0, |dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".msg"))
                .count()
        })
    }

    /// Every pusher's message arrived exactly once.
    fn assert_each_received_once(subscription: brokers::Subscription) {
        let received = subscription.messages();
        let ids: HashSet<&str> = received.iter().map(|m| m.header("hookbus-id")).collect();
        assert_eq!(ids.len(), PUSHERS, "a message arrived twice");
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The broker up: every pusher is told nothing (all delivered), every log
/// line says "1 delivered, 0 queued", every message arrives once.
fn all_told_delivered(layout: Layout) {
    let amq = activemq();
    let server = Server::new(layout);
    server.configure(&amq);
    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    let log = server.read_log(PUSHERS);
    let pushed = server.push_all();
    Server::assert_each_received_once(subscription);
    let told: Vec<Vec<&str>> = pushed.iter().map(Pushed::told).collect();
    let queued = pushed.iter().filter(|p| p.queued() > 0).count();
    assert_eq!(
        queued, 0,
        "{queued} of {PUSHERS} pushers were told their message was queued, but every one was delivered: {told:#?}"
    );
    assert!(
        told.iter().all(Vec::is_empty),
        "pushers were told: {told:#?}"
    );
    for line in log.join().unwrap() {
        assert!(
            line.ends_with(": 1 message(s), 1 delivered, 0 queued"),
            "log line {line:?}"
        );
    }
    assert_eq!(server.pending(), 0, "messages left in the outbox");
}

#[test]
fn concurrent_pushes_into_repositories_of_their_own_are_told_delivered() {
    all_told_delivered(Layout::RepositoryEach);
}

#[test]
fn concurrent_pushes_onto_branches_of_one_repository_are_told_delivered() {
    all_told_delivered(Layout::BranchEach);
}

/// A broker at `address` that is down: every pusher is told its one message
/// is queued and the log says so; at most one push waited its deadline; a
/// flush with the broker back delivers every message once.
fn one_push_waits_per_outage(layout: Layout, down: &Broker) {
    let server = Server::new(layout);
    server.configure(down);
    let log = server.read_log(PUSHERS);
    let pushed = server.push_all();
    for push in &pushed {
        assert_eq!(push.queued(), 1, "told: {:?}", push.told());
    }
    for line in log.join().unwrap() {
        assert!(
            line.contains(": 1 message(s), 0 delivered, 1 queued ("),
            "log line {line:?}"
        );
    }
    let waited: Vec<Duration> = (pushed.iter())
        .map(|p| p.took)
        .filter(|took| *took >= DEADLINE)
        .collect();
    assert!(
        waited.len() <= 1,
        "{} pushes waited the deadline at the start of the outage: {waited:?}",
        waited.len()
    );
    assert_eq!(server.pending(), PUSHERS);

    let amq = activemq();
    server.configure(&amq);
    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    let flush = Command::new(HOOKBUS)
        .args(["--config", path(&server.config), "flush"])
        .output()
        .unwrap();
    assert!(
        flush.status.success(),
        "{}",
        String::from_utf8_lossy(&flush.stderr)
    );
    Server::assert_each_received_once(subscription);
    assert_eq!(server.pending(), 0);
}

/// A broker host whose port is closed.
fn refused() -> Broker {
    brokers::activemq_at(dead_address())
}

#[test]
fn at_the_start_of_an_outage_one_push_waits_repositories_of_their_own() {
    one_push_waits_per_outage(Layout::RepositoryEach, &refused());
}

#[test]
fn at_the_start_of_an_outage_one_push_waits_branches_of_one_repository() {
    one_push_waits_per_outage(Layout::BranchEach, &refused());
}

#[test]
fn a_broker_that_never_answers_connect_holds_up_one_push() {
    // Accepts connections and reads nothing, answers nothing.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let done = Arc::new(AtomicBool::new(false));
    let holding = Arc::clone(&done);
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        silent.set_nonblocking(true).unwrap();
        while !holding.load(Ordering::Relaxed) {
            match silent.accept() {
                Ok((stream, _)) => open.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        open.len()
    });
    one_push_waits_per_outage(Layout::BranchEach, &brokers::activemq_at(address));
    done.store(true, Ordering::Relaxed);
    assert!(
        held.join().unwrap() >= 1,
        "no hook connected to the silent broker"
    );
}
