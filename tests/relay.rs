//! `hookbus relay` (issue 26): the real binary holding a real outbox beside
//! real concurrent `git push`es with the hook `hookbus install` writes, the
//! real ActiveMQ scripts/test starts and the independent subscriber. Pushers
//! must be told exactly what happened to their messages, the relay must
//! deliver them (not the hooks), no push may wait out an outage, and a
//! relay that is gone must leave the hooks delivering their own.

mod accounts;
mod brokers;
mod gitutil;
mod pushutil;

use accounts::TestAccount;
use brokers::{activemq, activemq_at, dead_address};
use gitutil::HOOKBUS;
use pushutil::{Layout, Pushed, Server, CAP, DEADLINE, IDLE, PUSHERS};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the relay may take to hold the outbox, or to log a delivery.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running `hookbus relay`, its stderr gathered line by line; stopped by
/// pid when dropped.
struct Relay {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts the relay on `config` (its command passed through `wrap`) and
    /// waits until it holds the outbox.
    fn start(config: &Path, wrap: impl Fn(Command) -> Command) -> Relay {
        let mut command = Command::new(HOOKBUS);
        command.arg("--config").arg(config).arg("relay");
        let mut child = wrap(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                lines.lock().unwrap().push(line.unwrap());
            }
        });
        let relay = Relay {
            child,
            log,
            reader: Some(reader),
        };
        relay.wait_for("the relay holding the outbox", |lines| {
            lines
                .iter()
                .any(|line| line.contains("relay: holding outbox"))
        });
        relay
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most [`PATIENCE`]) until `done` holds for the log.
    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let until = Instant::now() + PATIENCE;
        while !done(&self.lines()) {
            assert!(
                Instant::now() < until,
                "no {what} in the relay's log: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Messages the relay logged as delivered.
    fn delivered(&self) -> usize {
        delivered(&self.lines())
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-s", signal, &pid]).status();
        assert!(sent.unwrap().success());
    }

    /// SIGTERM; the exit status and the whole log.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        (status, self.lines())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The messages in the relay's "delivered N message(s)" lines.
fn delivered(lines: &[String]) -> usize {
    (lines.iter())
        .filter_map(|line| line.split("relay: delivered ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum()
}

/// `hookbus flush` on `config` (through `wrap`), beside the relay.
fn flush(config: &Path, wrap: impl Fn(Command) -> Command) -> Output {
    let mut command = Command::new(HOOKBUS);
    command.arg("--config").arg(config).arg("flush");
    wrap(command).output().unwrap()
}

/// Runs `command` as `account`, as the packaged unit runs the relay
/// (User=) and as git runs the hooks of the account's repositories.
fn as_account(account: &TestAccount) -> impl Fn(Command) -> Command + '_ {
    move |command: Command| {
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args(["--reuid", &account.uid.to_string()])
            .args(["--regid", &account.gid.to_string(), "--init-groups", "--"])
            .arg(command.get_program())
            .args(command.get_args())
            .env("HOME", &account.home);
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    }
}

/// Makes everything under `root` the account's, as a git server's
/// repositories, config and outbox are its hook account's.
fn give_all(account: &TestAccount, root: &Path) {
    let done = Command::new("chown")
        .args(["-R", &format!("{}:{}", account.uid, account.gid)])
        .arg(root)
        .status()
        .unwrap();
    assert!(done.success());
}

fn told_nothing(pushed: &[Pushed]) {
    let told: Vec<Vec<&str>> = pushed.iter().map(Pushed::told).collect();
    assert!(
        told.iter().all(Vec::is_empty),
        "every message was delivered, yet pushers were told: {told:#?}"
    );
}

/// The uid a running process has, from /proc.
fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_relay_running_as_the_hook_account_delivers_concurrent_pushes() {
    let amq = activemq();
    let server = Server::new(Layout::BranchEach);
    server.configure(&amq);
    let account = TestAccount::new(&server.root);
    give_all(&account, &server.root);
    let run_as = as_account(&account);
    let relay = Relay::start(&server.config, &run_as);
    assert_eq!(uid_of(relay.child.id()), account.uid);

    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    let log = server.read_log(PUSHERS);
    let pushed = server.push_all_with(&run_as);
    Server::assert_each_received_once(subscription);
    told_nothing(&pushed);
    for line in log.join().unwrap() {
        assert!(
            line.ends_with(": 1 message(s), 1 delivered, 0 queued"),
            "log line {line:?}"
        );
    }
    relay.wait_for("delivery of every push", |lines| {
        delivered(lines) == PUSHERS
    });
    assert_eq!(server.pending(), 0, "messages left in the outbox");
    assert_eq!(
        account.not_owning(&server.outbox),
        Vec::<std::path::PathBuf>::new(),
        "the outbox is the hook account's"
    );

    let beside = flush(&server.config, &run_as);
    let said = String::from_utf8_lossy(&beside.stderr);
    assert!(beside.status.success(), "flush beside the relay: {said}");
    assert!(said.contains("hookbus relay holds"), "flush said: {said}");
    assert_eq!(
        lock_line(&server.config, &run_as),
        "outbox lock: held by hookbus relay (delivering)"
    );

    let (status, lines) = relay.stop();
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
    let last = lines.last().unwrap();
    assert!(last.ends_with("relay: stopped; the outbox lock is free"));
    assert_eq!(delivered(&lines), PUSHERS, "{lines:#?}");
    assert_eq!(
        lock_line(&server.config, &run_as),
        "outbox lock: free (no hookbus relay: each hook delivers its own)"
    );
}

/// What `hookbus check` says of the outbox's lock.
fn lock_line(config: &Path, wrap: impl Fn(Command) -> Command) -> String {
    let mut command = Command::new(HOOKBUS);
    command.arg("--config").arg(config).arg("check");
    let out = wrap(command).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check: {text}{errors}");
    let line = text.lines().find(|line| line.starts_with("outbox lock: "));
    line.unwrap_or_else(|| panic!("no outbox lock line: {text}"))
        .to_string()
}

/// Forwards connections from `listen` to `target` (the broker "coming
/// back" at the address the config names), or, made silent, accepts them
/// and answers nothing; stops accepting when dropped.
struct Forwarder {
    stop: Arc<AtomicBool>,
    silent: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accepting: Option<JoinHandle<()>>,
}

impl Forwarder {
    fn start(listen: &str, target: String) -> Forwarder {
        let listener = TcpListener::bind(listen).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let silent = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (stopping, quiet, streams) =
            (Arc::clone(&stop), Arc::clone(&silent), Arc::clone(&open));
        let accepting = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let mut streams = streams.lock().unwrap();
                        streams.push(client.try_clone().unwrap());
                        if quiet.load(Ordering::Relaxed) {
                            continue; // held open, never answered
                        }
                        let broker = TcpStream::connect(&target).unwrap();
                        streams.push(broker.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), broker.try_clone().unwrap());
                        pipe(broker, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Forwarder {
            stop,
            silent,
            open,
            accepting: Some(accepting),
        }
    }

    /// Cuts every open connection; new ones are held and never answered
    /// (`true`) or forwarded again (`false`).
    fn go_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Relaxed);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` on a thread until `from` ends.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.go_silent(true);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

#[test]
fn with_the_broker_down_no_push_waits_and_the_relay_delivers_once_it_is_back() {
    let amq = activemq();
    let address = dead_address();
    let server = Server::new(Layout::RepositoryEach);
    server.configure(&activemq_at(address.clone()));
    let relay = Relay::start(&server.config, |command| command);

    let log = server.read_log_split(PUSHERS, |line| !line.contains("relay: "));
    let pushed = server.push_all();
    for push in &pushed {
        assert_eq!(push.queued(), 1, "told: {:?}", push.told());
        let told = push.told().join("\n");
        assert!(
            told.contains("(the broker is unreachable; hookbus relay keeps trying); it delivers them once the broker answers"),
            "told: {told}"
        );
        assert!(
            push.took < DEADLINE,
            "a push waited out the outage: {:?}",
            push.took
        );
    }
    let logged = log.join().unwrap();
    let (hooks, relays) = logged.split_at(PUSHERS);
    for line in hooks {
        assert!(
            line.contains(": 1 message(s), 0 delivered, 1 queued (the broker is unreachable; hookbus relay keeps trying)"),
            "log line {line:?}"
        );
    }
    assert!(
        relays
            .iter()
            .any(|line| line.contains("relay: broker unreachable (")),
        "the relay's warning in the system log: {relays:#?}"
    );
    assert_eq!(server.pending(), PUSHERS);
    assert!(
        relay
            .lines()
            .iter()
            .any(|l| l.contains("relay: broker unreachable (")),
        "{:#?}",
        relay.lines()
    );
    let beside = flush(&server.config, |command| command);
    let said = String::from_utf8_lossy(&beside.stderr);
    assert_eq!(
        beside.status.code(),
        Some(6),
        "flush beside the relay: {said}"
    );
    assert!(
        said.contains(&format!("{PUSHERS} message(s) wait in"))
            && said.contains("hookbus relay holds it and keeps trying the unreachable broker"),
        "flush said: {said}"
    );

    // The broker comes back at the configured address; nobody pushes or
    // flushes: the relay's own retries deliver everything, once.
    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    let back = Forwarder::start(&address, amq.address.clone());
    Server::assert_each_received_once(subscription);
    relay.wait_for("delivery once the broker is back", |lines| {
        delivered(lines) == PUSHERS
    });
    assert_eq!(server.pending(), 0, "messages left in the outbox");
    let (status, lines) = relay.stop();
    drop(back);
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
}

#[test]
fn once_the_relay_is_killed_each_hook_delivers_its_own() {
    let amq = activemq();
    let server = Server::new(Layout::BranchEach);
    server.configure(&amq);
    let subscription = amq.drain(&server.queue, 2 * PUSHERS, IDLE, CAP);
    let relay = Relay::start(&server.config, |command| command);
    told_nothing(&server.push_all());
    relay.wait_for("delivery of every push", |lines| {
        delivered(lines) == PUSHERS
    });
    relay.signal("KILL");

    server.commit_again("after the relay");
    told_nothing(&server.push_all());
    let received = subscription.messages();
    let ids: std::collections::HashSet<&str> =
        received.iter().map(|m| m.header("hookbus-id")).collect();
    assert_eq!(ids.len(), 2 * PUSHERS, "every push's message, once");
    assert_eq!(received.len(), 2 * PUSHERS, "a message arrived twice");
    assert_eq!(server.pending(), 0);
    assert_eq!(relay.delivered(), PUSHERS, "the dead relay delivered more");
}

/// The relay's connection breaks and the broker, still accepting
/// connections, answers nothing: pushers wait half a second for the
/// relay's new connection, not their whole deadline, and are told the relay
/// keeps trying; once the broker answers again it delivers them, once.
#[test]
fn a_broker_that_stops_answering_holds_up_no_push() {
    let amq = activemq();
    let address = dead_address();
    let broker = Forwarder::start(&address, amq.address.clone());
    let server = Server::new(Layout::BranchEach);
    server.configure(&activemq_at(address));
    let subscription = amq.drain(&server.queue, 2 * PUSHERS, IDLE, CAP);
    let relay = Relay::start(&server.config, |command| command);
    told_nothing(&server.push_all());
    relay.wait_for("delivery of the first pushes", |lines| {
        delivered(lines) == PUSHERS
    });

    broker.go_silent(true);
    server.commit_again("to a silent broker");
    for push in server.push_all() {
        assert_eq!(push.queued(), 1, "told: {:?}", push.told());
        assert!(
            push.told()
                .join("\n")
                .contains("hookbus relay keeps trying"),
            "told: {:?}",
            push.told()
        );
        assert!(push.took < DEADLINE, "a push waited: {:?}", push.took);
    }
    relay.wait_for("the relay giving up on the silent broker", |lines| {
        lines
            .iter()
            .any(|line| line.contains("relay: broker unreachable ("))
    });

    broker.go_silent(false);
    relay.wait_for("delivery once the broker answers", |lines| {
        delivered(lines) == 2 * PUSHERS
    });
    let received = subscription.messages();
    let ids: std::collections::HashSet<&str> =
        received.iter().map(|m| m.header("hookbus-id")).collect();
    assert_eq!(ids.len(), 2 * PUSHERS, "every push's message, once");
    assert_eq!(server.pending(), 0);
    let (status, lines) = relay.stop();
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
}
