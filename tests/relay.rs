//! `hookbus relay` (issue 26): the real binary holding a real outbox beside
//! real concurrent `git push`es with the hook `hookbus install` writes, the
//! real ActiveMQ scripts/test starts and the independent subscriber. Pushers
//! must be told exactly what happened to their messages, the relay must
//! deliver them (not the hooks), no push may wait out an outage, and a
//! relay that is gone must leave the hooks delivering their own.

mod accounts;
mod brokers;
mod fake_broker;
mod gitutil;
mod listenutil;
mod pushutil;
mod relayutil;

use accounts::TestAccount;
use brokers::{activemq, activemq_at, dead_address, Broker};
use gitutil::HOOKBUS;
use pushutil::{Layout, Pushed, Server, CAP, DEADLINE, IDLE, PUSHERS};
use relayutil::{delivered, flush, metrics_address, scrape, with_metrics, Forwarder, Relay};
use std::path::Path;
use std::process::Command;

/// Runs `command` as `account`, as git runs the hooks of the account's
/// repositories.
fn as_account(account: &TestAccount) -> impl Fn(Command) -> Command + '_ {
    as_account_with(account, &[])
}

/// Runs `command` as contrib/systemd/hookbus-relay@.service runs the relay,
/// as far as that applies without systemd: User= and NoNewPrivileges=.
fn as_relay_unit(account: &TestAccount) -> impl Fn(Command) -> Command + '_ {
    as_account_with(account, &["--no-new-privs"])
}

fn as_account_with<'a>(
    account: &'a TestAccount,
    settings: &'static [&'static str],
) -> impl Fn(Command) -> Command + 'a {
    move |command: Command| {
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args(["--reuid", &account.uid.to_string()])
            .args(["--regid", &account.gid.to_string(), "--init-groups"])
            .args(settings)
            .arg("--")
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

/// The push was told its one message is queued and the relay keeps trying.
fn left_to_the_relay(push: &Pushed) {
    assert_eq!(push.queued(), 1, "told: {:?}", push.told());
    let told = push.told().join("\n");
    assert!(told.contains("hookbus relay keeps trying"), "told: {told}");
}

/// A field of a running process's /proc status (`Uid`: the real one).
fn status_of(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn a_relay_running_as_the_hook_account_delivers_concurrent_pushes() {
    let amq = activemq();
    let server = Server::new(Layout::BranchEach);
    server.configure(&amq);
    let account = TestAccount::new(&server.root);
    give_all(&account, &server.root);
    let run_as = as_account(&account);
    // Something that is no message file, as a disk error or a hand edit
    // leaves one: set aside, not a stop.
    std::fs::create_dir_all(&server.outbox).unwrap();
    let damaged = server
        .outbox
        .join("000000000000.000000000-0000001-00000.msg");
    std::fs::write(&damaged, b"{not a message\n\x00\xff").unwrap();
    give_all(&account, &server.outbox);
    let relay = Relay::start(&server.config, as_relay_unit(&account));
    let pid = relay.child.id();
    assert_eq!(status_of(pid, "Uid:"), account.uid.to_string());
    assert_eq!(status_of(pid, "NoNewPrivs:"), "1");
    relay.wait_for("the damaged file set aside", |lines| {
        lines
            .iter()
            .any(|line| line.contains("relay: set aside in dead/"))
    });

    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    let log = server.read_log_split(PUSHERS, |line| !line.contains("relay: "));
    let pushed = server.push_all_with(&run_as);
    Server::assert_each_received_once(subscription);
    told_nothing(&pushed);
    let logged = log.join().unwrap();
    let (hooks, relays) = logged.split_at(PUSHERS);
    for line in hooks {
        assert!(
            line.ends_with(": 1 message(s), 1 delivered, 0 queued"),
            "log line {line:?}"
        );
    }
    assert!(
        relays
            .iter()
            .any(|line| line.contains("relay: set aside in dead/")),
        "the relay's warning in the system log: {relays:#?}"
    );
    assert!(server
        .outbox
        .join("dead")
        .join(damaged.file_name().unwrap())
        .exists());
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

/// The broker comes back at `address` (a forwarder to `amq`); nobody pushes
/// or flushes: the relay's own retries deliver every push's message, once.
fn back_and_delivered(amq: &Broker, server: &Server, relay: &Relay, address: &str) -> Forwarder {
    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    let back = Forwarder::start(address, amq.address.clone());
    Server::assert_each_received_once(subscription);
    relay.wait_for("delivery once the broker is back", |lines| {
        delivered(lines) == PUSHERS
    });
    assert_eq!(server.pending(), 0, "messages left in the outbox");
    back
}

#[test]
fn with_the_broker_down_no_push_waits_and_the_relay_delivers_once_it_is_back() {
    let amq = activemq();
    let address = dead_address();
    let server = Server::new(Layout::RepositoryEach);
    server.configure(&activemq_at(address.clone()));
    with_metrics(&server);
    let relay = Relay::start(&server.config, |command| command);
    let metrics = metrics_address(&relay);

    let log = server.read_log_split(PUSHERS, |line| !line.contains("relay: "));
    let pushed = server.push_all();
    for push in &pushed {
        assert_eq!(push.queued(), 1, "told: {:?}", push.told());
        let told = push.told().join("\n");
        assert!(
            told.contains(
                "(the broker is unreachable; hookbus relay keeps trying); it delivers them"
            ),
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
    let (samples, health) = scrape(&metrics);
    assert_eq!(
        health, 503,
        "the relay is not healthy while the broker is down"
    );
    assert_eq!(samples["hookbus_relay_broker_up{}"], 0.0);
    assert_eq!(samples["hookbus_relay_holding{}"], 1.0);
    assert_eq!(samples["hookbus_relay_files_waiting{}"], PUSHERS as f64);
    assert!(samples["hookbus_relay_broker_unreachable_total{}"] >= 1.0);
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

    let back = back_and_delivered(&amq, &server, &relay, &address);
    let (samples, health) = scrape(&metrics);
    assert_eq!(health, 200);
    assert_eq!(samples["hookbus_relay_broker_up{}"], 1.0);
    assert_eq!(samples["hookbus_relay_files_waiting{}"], 0.0);
    assert_eq!(
        samples["hookbus_relay_messages_delivered_total{}"],
        PUSHERS as f64
    );
    assert_eq!(
        samples["hookbus_relay_pushes_taken_total{}"], PUSHERS as f64,
        "every hook handed its push to the relay"
    );
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
    Server::assert_waves_received_once(subscription, 2);
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
    let (broker, address) = Forwarder::listening(amq.address.clone());
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
        left_to_the_relay(&push);
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

/// `background = true` beside a relay: each hook stores, returns saying
/// nothing and leaves its message to the relay; it starts no `hookbus flush`
/// (which would find the relay's lock and exit), and its log line says who
/// delivers. With the broker unreachable every message is still queued when
/// its hook is done; once the broker answers, the relay delivers them all.
#[test]
fn background_hooks_leave_their_messages_to_the_relay() {
    let amq = activemq();
    let address = dead_address();
    let server = Server::new(Layout::RepositoryEach);
    server.configure_with(&activemq_at(address.clone()), "background = true\n");
    let relay = Relay::start(&server.config, |command| command);

    let log = server.read_log_split(PUSHERS, |line| !line.contains("relay: "));
    let pushed = server.push_all();
    told_nothing(&pushed);
    let logged = log.join().unwrap();
    for line in &logged[..PUSHERS] {
        assert!(
            line.ends_with(": 1 message(s), 0 delivered, 1 queued (hookbus relay delivers them)"),
            "log line {line:?}"
        );
    }
    assert_eq!(server.pending(), PUSHERS);

    let back = back_and_delivered(&amq, &server, &relay, &address);
    let (status, lines) = relay.stop();
    drop(back);
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
}

/// The broker takes the relay's connection and its SENDs but receipts
/// nothing (a broker blocking producers: store full, flow control): the
/// relay's files do not move, so pushers stop waiting for it after half a
/// second, are told their messages are queued and that the relay keeps
/// trying, and nothing is lost.
#[test]
fn a_broker_that_takes_sends_without_receipts_holds_up_no_push() {
    let silent = fake_broker::FakeBroker::start(|peer| {
        peer.connected()?;
        while peer.alive() && !peer.eof {
            peer.frame_within(std::time::Duration::from_millis(200))?;
        }
        Ok(())
    });
    let server = Server::new(Layout::RepositoryEach);
    server.configure(&activemq_at(silent.address.clone()));
    let relay = Relay::start(&server.config, |command| command);

    let pushed = server.push_all();
    let waited: Vec<_> = pushed.iter().map(|push| push.took).collect();
    eprintln!("pushes beside a relay on a broker that receipts nothing: {waited:?}");
    for push in &pushed {
        left_to_the_relay(push);
    }
    assert!(
        waited.iter().all(|took| *took < DEADLINE),
        "pushes waited out the deadline: {waited:?}"
    );
    assert!(silent.count("got SEND") >= 1, "{:#?}", silent.log());
    assert_eq!(server.pending(), PUSHERS, "every message kept");
    let (status, lines) = relay.stop();
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
    assert_eq!(server.pending(), PUSHERS, "every message kept");
}
