//! Issue 4's delivery contract against the real ActiveMQ that scripts/test
//! starts: what a hook does when the broker is down (a black hole or a closed
//! port), `hookbus flush`, order across outages, dead letters, kill -9 in the
//! middle of delivery, concurrent pushes and flushes, an outbox that cannot be
//! written, the syslog line and background delivery. What arrived is checked
//! with the independent subscriber, on a queue of each test's own.

mod brokers;
mod gitutil;

use brokers::{activemq, activemq_at, dead_address, unique, Broker, Received};
use gitutil::{files_in, git, hookbus, parse_lines, run_ok, Fixture, Z40};
use std::collections::HashSet;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The hook's whole-wait bound in these tests.
const DEADLINE_MS: u64 = 1000;
/// "Did not hang": the deadline plus a generous margin for git and a busy
/// machine. Not a benchmark.
const HANG_BOUND: Duration = Duration::from_secs(6);
/// How long the subscriber goes on after the expected messages, to see a
/// duplicate.
const IDLE: Duration = Duration::from_millis(1500);
/// The most any subscriber here waits in all.
const CAP: Duration = Duration::from_secs(60);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One line of `hookbus outbox list`.
#[derive(Debug)]
struct Listed {
    /// `FILE#I`, or `dead/FILE#I` for a dead letter.
    name: String,
    destination: String,
    /// Why the broker refused it (dead letters only).
    reason: Option<String>,
}

/// A publishing fixture whose one route sends JSON to a queue of its own, with
/// its outbox in the fixture's directory.
struct Setup {
    fixture: Fixture,
    outbox: PathBuf,
    queue: String,
    deadline_ms: u64,
}

impl Setup {
    fn new(broker: &Broker) -> Setup {
        Setup::with_deadline(broker, DEADLINE_MS)
    }

    fn with_deadline(broker: &Broker, deadline_ms: u64) -> Setup {
        let fixture = Fixture::publishing("");
        let setup = Setup {
            outbox: fixture.root.join("outbox"),
            queue: unique("queue", "delivery"),
            deadline_ms,
            fixture,
        };
        setup.point_at(broker);
        setup
    }

    /// The config for `broker` (up or down) with the test's outbox.
    fn point_at(&self, broker: &Broker) {
        self.write(&broker.config(), "", &self.outbox, "");
    }

    /// The config: a `[broker]` table and extra lines for it, the outbox
    /// directory and the syslog socket ("" for none).
    fn write(&self, broker: &str, broker_extra: &str, outbox: &Path, syslog: &str) {
        self.fixture.write_config(&format!(
            "{broker}deadline_ms = {}\n{broker_extra}\n[outbox]\ndir = {outbox:?}\n\n[log]\nsyslog = {syslog:?}\n\n[[route]]\ndestination = \"{}\"\nformat = \"json\"\n",
            self.deadline_ms, self.queue
        ));
    }

    /// Commits and pushes master; returns the new commit and how long the
    /// push took.
    fn commit_and_push(&self, message: &str) -> (String, Duration) {
        self.fixture.commit_and_push(message)
    }

    fn flush(&self) -> Output {
        self.fixture.hookbus(&["flush"], "")
    }

    /// `hookbus outbox list`, parsed; it must succeed.
    fn list(&self) -> Vec<Listed> {
        let out = self.fixture.hookbus(&["outbox", "list"], "");
        assert!(out.status.success(), "outbox list: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                assert!(fields.len() >= 3, "outbox list line {line:?}");
                Listed {
                    name: fields[0].to_string(),
                    destination: fields[1].to_string(),
                    reason: fields.get(3).map(|r| r.to_string()),
                }
            })
            .collect()
    }

    /// The hookbus-id of a listed message, as `outbox show` prints it.
    fn shown_id(&self, name: &str) -> String {
        let out = self.fixture.hookbus(&["outbox", "show", name], "");
        assert!(out.status.success(), "outbox show: {}", text(&out.stderr));
        let shown = parse_lines(&text(&out.stdout));
        assert_eq!(shown.len(), 1, "{shown:#?}");
        shown[0].header("hookbus-id").to_string()
    }

    /// Fails unless the outbox holds no message: none listed, no pending or
    /// dead file, no temporary file left over.
    fn assert_empty(&self) {
        let listed = self.list();
        assert!(listed.is_empty(), "outbox not empty: {listed:#?}");
        let files = files_in(&self.outbox);
        assert!(files.is_empty(), "files left in the outbox: {files:?}");
    }
}

/// Pending message files (not temporary, not dead).
fn pending_in(outbox: &Path) -> Vec<String> {
    files_in(outbox)
        .into_iter()
        .filter(|f| f.ends_with(".msg") && !f.contains("/dead/"))
        .collect()
}

/// The flush's summary line must say these counts.
fn assert_flushed(out: &Output, status: i32, summary: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "flush: {stderr}");
    assert!(
        stderr.starts_with("hookbus: flush: ") && stderr.contains(summary),
        "flush should say {summary:?}: {stderr}"
    );
}

/// The one line a hook prints when it left messages queued.
fn assert_one_queued_note(stderr: &str, outbox: &Path) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line: {stderr}");
    let line = lines[0];
    assert!(line.starts_with("hookbus: "), "{line}");
    assert!(line.contains("queued"), "{line}");
    assert!(line.contains(&outbox.display().to_string()), "{line}");
    assert!(line.contains("hookbus flush"), "{line}");
}

fn ids(messages: &[Received]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m.header("hookbus-id").to_string())
        .collect()
}

/// Expected ids, every one received at least once; returns how many extra
/// copies arrived (at-least-once allows them).
fn assert_all_received(expected: &[String], received: &[String]) -> usize {
    let got: HashSet<&String> = received.iter().collect();
    let missing: Vec<&String> = expected.iter().filter(|id| !got.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} message(s) lost: {missing:?}",
        missing.len(),
        expected.len()
    );
    let wanted: HashSet<&String> = expected.iter().collect();
    let strangers: Vec<&String> = received.iter().filter(|id| !wanted.contains(id)).collect();
    assert!(strangers.is_empty(), "unexpected messages: {strangers:?}");
    received.len() - got.len()
}

/// A loopback port that accepts connections and never says a word: a broker
/// that hangs. Its thread stops when dropped, or after a minute at most.
struct BlackHole {
    address: String,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl BlackHole {
    fn new() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            let mut held = Vec::new();
            while !stopped.load(Ordering::Relaxed) && Instant::now() < end {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("black hole accept: {e}"),
                }
            }
        });
        BlackHole {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A child process killed (SIGKILL) and reaped when dropped, if still running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, options: &str) -> Tmpfs {
        fs::create_dir_all(&dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs ({options}) at {}: the full and read-only outbox cases need root with CAP_SYS_ADMIN",
            dir.display()
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn queued_while_down_then_flushed_once(down: &str) {
    let amq = activemq();
    let setup = Setup::new(&activemq_at(down.to_string()));
    let (_, took) = setup.commit_and_push("while down");
    eprintln!("one-commit push, broker down at {down}: {took:?}");
    assert!(took < HANG_BOUND, "the push took {took:?}");
    assert_one_queued_note(&setup.fixture.hook_stderr(), &setup.outbox);
    let listed = setup.list();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0].destination, setup.queue);
    let id = setup.shown_id(&listed[0].name);

    setup.point_at(&amq);
    let subscription = amq.drain(&setup.queue, 1, IDLE, CAP);
    assert_flushed(&setup.flush(), 0, "1 delivered, 0 dead-lettered, 0 left");
    assert_flushed(&setup.flush(), 0, "0 delivered, 0 dead-lettered, 0 left");
    let got = subscription.messages();
    assert_eq!(ids(&got), [id]);
    setup.assert_empty();
}

#[test]
fn a_push_to_a_silent_broker_is_queued_in_time_and_flushed_once() {
    let hole = BlackHole::new();
    queued_while_down_then_flushed_once(&hole.address);
}

#[test]
fn a_push_to_a_closed_port_is_queued_and_flushed_once() {
    queued_while_down_then_flushed_once(&dead_address());
}

#[test]
fn during_an_outage_only_the_first_push_retries_until_the_deadline() {
    // The first push finds no backlog and retries the broker until deadline_ms;
    // a later one finds messages waiting, knows the broker was down, and tries
    // it once, so pushes during an outage do not each take the whole bound.
    let setup = Setup::new(&activemq_at(dead_address()));
    setup.commit_and_push("first");
    let first = setup.fixture.hook_stderr();
    assert!(first.contains("(retried until the deadline)"), "{first}");
    setup.commit_and_push("second");
    let second = &setup.fixture.hook_stderr()[first.len()..];
    assert!(second.contains("queued in"), "{second}");
    assert!(!second.contains("retried"), "{second}");
    assert_eq!(setup.list().len(), 2);
}

#[test]
fn the_next_push_delivers_older_queued_messages_first() {
    let amq = activemq();
    let setup = Setup::new(&activemq_at(dead_address()));
    let (a, _) = setup.commit_and_push("A");
    assert_eq!(setup.list().len(), 1);
    setup.point_at(&amq);
    let subscription = amq.drain(&setup.queue, 2, IDLE, CAP);
    let before = setup.fixture.hook_stderr().len();
    let (b, took) = setup.commit_and_push("B");
    eprintln!("one-commit push, broker up, one older message queued: {took:?}");
    assert_eq!(&setup.fixture.hook_stderr()[before..], "");
    let newrevs: Vec<String> = subscription
        .messages()
        .iter()
        .map(|m| m.header("newrev").to_string())
        .collect();
    assert_eq!(newrevs, [a, b], "A then B, each once");
    setup.assert_empty();
}

#[test]
fn a_refused_message_is_dead_lettered_with_its_reason_and_can_be_retried() {
    let amq = activemq();
    let setup = Setup::new(&activemq_at(dead_address()));
    setup.commit_and_push("refused later");
    let listed = setup.list();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let id = setup.shown_id(&listed[0].name);

    // The reader account may log in but not write: ActiveMQ refuses the SEND.
    setup.write(&amq.reader_config(), "", &setup.outbox, "");
    assert_flushed(&setup.flush(), 6, "0 delivered, 1 dead-lettered, 0 left");
    let listed = setup.list();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(listed[0].name.starts_with("dead/"), "{listed:#?}");
    assert_eq!(listed[0].destination, setup.queue);
    let reason = listed[0].reason.as_deref().unwrap_or("");
    assert!(reason.contains("not authorized"), "reason: {reason:?}");
    assert_eq!(setup.shown_id(&listed[0].name), id);
    assert!(pending_in(&setup.outbox).is_empty());
    assert_eq!(files_in(&setup.outbox.join("dead")).len(), 1);

    let out = setup.fixture.hookbus(&["outbox", "retry", "--all"], "");
    assert!(out.status.success(), "retry: {}", text(&out.stderr));
    let listed = setup.list();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(!listed[0].name.starts_with("dead/"), "{listed:#?}");

    setup.point_at(&amq);
    let subscription = amq.drain(&setup.queue, 1, IDLE, CAP);
    assert_flushed(&setup.flush(), 0, "1 delivered, 0 dead-lettered, 0 left");
    assert_eq!(ids(&subscription.messages()), [id]);
    setup.assert_empty();
}

/// The hookbus-ids `args` (an emitting command) would send, from its
/// `--dry-run` (ids are derived from the update, so they are the same).
fn dry_run_ids(setup: &Setup, args: &[&str], stdin: &str) -> Vec<String> {
    let dry = setup
        .fixture
        .hookbus(&[args, &["--dry-run"]].concat(), stdin);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    parse_lines(&text(&dry.stdout))
        .iter()
        .map(|m| m.header("hookbus-id").to_string())
        .collect()
}

/// Flushes until nothing is left, as a timer would, each run having to
/// deliver something; returns how many runs it took.
fn flush_until_empty(setup: &Setup) -> usize {
    for run in 1..=30 {
        let out = setup.flush();
        if out.status.success() {
            assert_flushed(&out, 0, "0 dead-lettered, 0 left");
            return run;
        }
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{stderr}");
        assert!(
            !stderr.contains("flush: 0 delivered"),
            "a flush made no progress: {stderr}"
        );
    }
    panic!("30 flushes did not empty the outbox");
}

/// Bulk commits on a branch, and the `replay --each` of all of them.
fn bulk_replay(setup: &Setup, count: usize) -> (Vec<&'static str>, String) {
    let tip = setup.fixture.fast_commits("bulk", count);
    (vec!["replay", "--each", "refs/heads/bulk", Z40], tip)
}

#[test]
fn a_replay_killed_in_the_middle_of_delivery_loses_nothing_after_flushing() {
    const COMMITS: usize = 1500;
    let amq = activemq();
    let setup = Setup::new(&amq);
    let (mut replay, tip) = bulk_replay(&setup, COMMITS);
    replay.push(&tip);
    let expected = dry_run_ids(&setup, &replay, "");
    assert_eq!(expected.len(), COMMITS);

    let mut subscription = amq.drain(&setup.queue, COMMITS, IDLE, CAP);
    let child = hookbus(&setup.fixture.config, &setup.fixture.bare)
        .args(&replay)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    subscription.wait_first();
    let finished = child.0.try_wait().unwrap();
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(
        finished.is_none(),
        "the replay ended ({finished:?}) before the first message was seen: nothing was killed mid-delivery"
    );
    let left = pending_in(&setup.outbox);
    assert!(!left.is_empty(), "killed, yet nothing left to deliver");

    let runs = flush_until_empty(&setup);
    let received = ids(&subscription.received());
    let duplicates = assert_all_received(&expected, &received);
    eprintln!(
        "kill -9: {} expected, {} received, {duplicates} duplicate(s), {runs} flush run(s)",
        expected.len(),
        received.len()
    );
    setup.assert_empty();
}

#[test]
fn one_flush_delivers_a_backlog_larger_than_one_deadline_can_carry() {
    // deadline_ms bounds a hook's wait. A flush has no pusher waiting on it:
    // a healthy broker that receipts steadily but needs longer than
    // deadline_ms for the whole backlog must not make it give up. It gives
    // up only after max(deadline_ms, 5 s) without an answer, so a loaded
    // machine or broker pausing for more than 100 ms does not stop it.
    const COMMITS: usize = 1500;
    let amq = activemq();
    let setup = Setup::with_deadline(&activemq_at(dead_address()), 100);
    let (mut replay, tip) = bulk_replay(&setup, COMMITS);
    replay.push(&tip);
    let out = setup.fixture.hookbus(&replay, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(pending_in(&setup.outbox).len(), 1, "one file per run");

    setup.point_at(&amq);
    let mut subscription = amq.drain(&setup.queue, COMMITS, IDLE, CAP);
    let start = Instant::now();
    let out = setup.flush();
    eprintln!("flush of {COMMITS} messages: {:?}", start.elapsed());
    assert_flushed(
        &out,
        0,
        &format!("{COMMITS} delivered, 0 dead-lettered, 0 left"),
    );
    let received = ids(&subscription.received());
    assert_all_received(&dry_run_ids(&setup, &replay, ""), &received);
    setup.assert_empty();
}

#[test]
fn concurrent_pushes_and_flushes_lose_nothing_and_leave_a_clean_outbox() {
    const CLONES: usize = 4;
    const PUSHES: usize = 6;
    let amq = activemq();
    let setup = Setup::new(&amq);
    let base = setup.fixture.commit("base", &[("base", b"base\n")]);
    let mut subscription = amq.drain(&setup.queue, 1 + CLONES * PUSHES, IDLE, CAP);
    setup.fixture.push(&["master"]);
    let clones: Vec<PathBuf> = (0..CLONES)
        .map(|i| setup.fixture.clone_work(&format!("clone{i}")))
        .collect();
    let config = setup.fixture.config.clone();
    let bare = setup.fixture.bare.clone();
    let done = AtomicBool::new(false);
    let mut updates = vec![format!("{Z40} {base} refs/heads/master")];
    let mut flush_statuses: Vec<Option<i32>> = Vec::new();
    let mut list_errors: Vec<String> = Vec::new();

    thread::scope(|scope| {
        let flushers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let (mut statuses, mut list_errors) = (Vec::new(), Vec::new());
                    for _ in 0..2000 {
                        if done.load(Ordering::Relaxed) {
                            break;
                        }
                        let out = hookbus(&config, &bare)
                            .args(["flush", "--wait", "5"])
                            .output()
                            .unwrap();
                        statuses.push(out.status.code());
                        // An admin looking while hooks deliver.
                        let list = hookbus(&config, &bare)
                            .args(["outbox", "list"])
                            .output()
                            .unwrap();
                        if !list.status.success() {
                            list_errors.push(text(&list.stderr));
                        }
                        thread::sleep(Duration::from_millis(20));
                    }
                    (statuses, list_errors)
                })
            })
            .collect();
        let pushers: Vec<_> = clones
            .iter()
            .enumerate()
            .map(|(i, clone)| {
                scope.spawn(move || {
                    let branch = format!("refs/heads/b{i}");
                    let mut old = Z40.to_string();
                    let mut lines = Vec::new();
                    for k in 0..PUSHES {
                        let message = format!("clone {i} push {k}");
                        run_ok(git(
                            clone,
                            &["commit", "-q", "--allow-empty", "-m", &message],
                        ));
                        let new = run_ok(git(clone, &["rev-parse", "HEAD"]))
                            .trim()
                            .to_string();
                        let target = format!("HEAD:{branch}");
                        run_ok(git(clone, &["push", "-q", "origin", &target]));
                        lines.push(format!("{old} {new} {branch}"));
                        old = new;
                    }
                    lines
                })
            })
            .collect();
        for pusher in pushers {
            updates.extend(pusher.join().unwrap());
        }
        done.store(true, Ordering::Relaxed);
        for flusher in flushers {
            let (statuses, errors) = flusher.join().unwrap();
            flush_statuses.extend(statuses);
            list_errors.extend(errors);
        }
    });
    let odd: Vec<&Option<i32>> = flush_statuses
        .iter()
        .filter(|s| !matches!(s, Some(0) | Some(6)))
        .collect();
    assert!(odd.is_empty(), "flush exit statuses: {flush_statuses:?}");

    assert_flushed(&setup.flush(), 0, "0 dead-lettered, 0 left");
    let out = setup.fixture.hookbus(&["outbox", "list"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("0 message(s) waiting, 0 dead letter(s)"),
        "{}",
        text(&out.stderr)
    );
    setup.assert_empty();

    let expected = dry_run_ids(
        &setup,
        &["post-receive"],
        &format!("{}\n", updates.join("\n")),
    );
    assert_eq!(expected.len(), 1 + CLONES * PUSHES);
    let received = ids(&subscription.received());
    let duplicates = assert_all_received(&expected, &received);
    eprintln!(
        "concurrent: {} pushes, {} flushes, {duplicates} duplicate(s)",
        expected.len(),
        flush_statuses.len()
    );
    assert!(
        list_errors.is_empty(),
        "outbox list failed {} time(s) while hooks and flushes ran: {list_errors:?}",
        list_errors.len()
    );
}

/// Runs the hook directly (no push) with an outbox that cannot be written;
/// checks what it says and delivers with the broker up, then down.
fn unsaved(setup: &Setup, outbox: &Path, update: &str) {
    let amq = activemq();
    let dir = outbox.display().to_string();
    setup.write(&amq.config(), "", outbox, "");
    let subscription = amq.drain(&setup.queue, 1, IDLE, CAP);
    let out = setup.fixture.hookbus(&["post-receive"], update);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{dir}: {stderr}");
    assert!(
        stderr.contains("cannot save") && stderr.contains(&dir),
        "{dir}: {stderr}"
    );
    assert_eq!(subscription.messages().len(), 1, "{dir}");

    setup.write(&activemq_at(dead_address()).config(), "", outbox, "");
    let out = setup.fixture.hookbus(&["post-receive"], update);
    let stderr = text(&out.stderr);
    eprintln!("unsaved, broker down: {stderr}");
    assert_eq!(out.status.code(), Some(6), "{dir}: {stderr}");
    assert!(
        stderr.contains("cannot save") && stderr.contains(&dir),
        "{dir}: {stderr}"
    );
    assert!(
        stderr.contains("refs/heads/direct") || stderr.contains(&setup.queue),
        "{dir}: stderr should name the message not saved: {stderr}"
    );
}

#[test]
fn an_outbox_that_cannot_be_written_still_delivers_and_says_what_was_not_saved() {
    let setup = Setup::new(&activemq());
    let tip = setup.fixture.fast_commits("direct", 1);
    let update = format!("{Z40} {tip} refs/heads/direct\n");

    let plain_file = setup.fixture.root.join("plain-file");
    fs::write(&plain_file, "not a directory").unwrap();
    unsaved(&setup, &plain_file.join("outbox"), &update);

    // Root writes through chmod, not through a read-only mount.
    let read_only = Tmpfs::mount(setup.fixture.root.join("read-only"), "ro,size=64k");
    unsaved(&setup, &read_only.0, &update);

    let full = Tmpfs::mount(setup.fixture.root.join("full"), "size=64k");
    let outbox = full.0.join("outbox");
    fs::create_dir(&outbox).unwrap();
    let filler = vec![0u8; 4096];
    let mut file = fs::File::create(full.0.join("filler")).unwrap();
    let filled = (0..64).find_map(|_| std::io::Write::write_all(&mut file, &filler).err());
    assert!(filled.is_some(), "the 64 KiB tmpfs did not fill up");
    drop(file);
    unsaved(&setup, &outbox, &update);
}

#[test]
fn one_syslog_line_per_push_names_repo_refs_count_and_outcome() {
    let amq = activemq();
    let setup = Setup::new(&amq);
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("log");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    setup.write(
        &amq.config(),
        "",
        &setup.outbox,
        socket_path.to_str().unwrap(),
    );
    let subscription = amq.drain(&setup.queue, 2, IDLE, CAP);
    setup.fixture.commit("logged", &[("a", b"a\n")]);
    setup.fixture.git(&["tag", "v1"]);
    setup.fixture.push(&["master", "v1"]);
    let repo = subscription.messages()[0].header("repo").to_string();

    let mut buffer = vec![0u8; 65536];
    let size = socket
        .recv(&mut buffer)
        .expect("a syslog datagram within 5 s");
    let line = text(&buffer[..size]);
    for part in [
        "hookbus",
        repo.as_str(),
        "refs/heads/master",
        "refs/tags/v1",
        "2 message",
        "delivered",
    ] {
        assert!(line.contains(part), "syslog line lacks {part:?}: {line:?}");
    }
    assert!(line.starts_with('<'), "no syslog priority: {line:?}");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let second = socket.recv(&mut buffer).map(|n| text(&buffer[..n]));
    assert!(second.is_err(), "a second syslog line: {second:?}");
    assert_eq!(setup.fixture.hook_stderr(), "");
}

#[test]
fn a_background_hook_returns_silently_and_its_flush_delivers() {
    let amq = activemq();
    let setup = Setup::new(&amq);
    setup.write(&amq.config(), "background = true\n", &setup.outbox, "");
    let subscription = amq.drain(&setup.queue, 1, IDLE, CAP);
    let (commit, took) = setup.commit_and_push("in the background");
    eprintln!("one-commit push, background = true: {took:?}");
    assert!(took < HANG_BOUND, "the push took {took:?}");
    assert_eq!(setup.fixture.hook_stderr(), "");

    let end = Instant::now() + Duration::from_secs(20);
    while !pending_in(&setup.outbox).is_empty() && Instant::now() < end {
        thread::sleep(Duration::from_millis(100));
    }
    let got = subscription.messages();
    assert_eq!(got[0].header("newrev"), commit);
    setup.assert_empty();
}

#[test]
fn a_push_with_the_broker_up_is_delivered_at_once() {
    // The baseline the other cases are measured against.
    let amq = activemq();
    let setup = Setup::new(&amq);
    let subscription = amq.drain(&setup.queue, 1, IDLE, CAP);
    let (commit, took) = setup.commit_and_push("broker up");
    eprintln!("one-commit push, broker up: {took:?}");
    assert_eq!(setup.fixture.hook_stderr(), "");
    assert_eq!(subscription.messages()[0].header("newrev"), commit);
    setup.assert_empty();
}
