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
mod pushutil;

use brokers::{activemq, dead_address, Broker};
use gitutil::HOOKBUS;
use pushutil::{path, Layout, Pushed, Server, CAP, DEADLINE, IDLE, PUSHERS};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
