//! Hooks handing their pushes to `hookbus relay` over the socket in the
//! outbox: the real relay and hooks, real concurrent `git push`es, ActiveMQ
//! and the independent subscriber. The relay runs a hook's work only when
//! it would do exactly what the hook would; otherwise, and whatever a
//! client of its socket does, each hook does its own work and nothing is
//! lost or said wrongly.

mod accounts;
mod brokers;
mod gitutil;
mod listenutil;
mod pushutil;
mod relayutil;

use brokers::activemq;
use pushutil::{Layout, Pushed, Server, CAP, IDLE, PUSHERS};
use relayutil::{delivered, metered_relay, metrics_address, scrape, with_metrics, Relay};
use std::io::Write;
use std::os::unix::net::UnixStream;

fn told_nothing(pushed: &[Pushed]) {
    let told: Vec<Vec<&str>> = pushed.iter().map(Pushed::told).collect();
    assert!(
        told.iter().all(Vec::is_empty),
        "pushers were told: {told:#?}"
    );
}

fn taken(metrics: &str) -> f64 {
    scrape(metrics).0["hookbus_relay_pushes_taken_total{}"]
}

/// The relay read another config file than the hooks (same text, another
/// path): it declines their pushes, each hook does its own work, and the
/// relay still delivers what they store.
#[test]
fn a_hook_that_read_another_config_does_its_own_work() {
    let amq = activemq();
    let server = Server::new(Layout::RepositoryEach);
    server.configure(&amq);
    with_metrics(&server);
    let relays = server.root.join("relay.toml");
    std::fs::copy(&server.config, &relays).unwrap();
    let relay = Relay::start(&relays, |command| command);
    let metrics = metrics_address(&relay);

    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    let log = server.read_log_split(PUSHERS, |line| !line.contains("relay: "));
    told_nothing(&server.push_all());
    Server::assert_each_received_once(subscription);
    for line in &log.join().unwrap()[..PUSHERS] {
        assert!(
            line.ends_with(": 1 message(s), 1 delivered, 0 queued"),
            "{line}"
        );
    }
    assert_eq!(
        taken(&metrics),
        0.0,
        "the relay ran a push of another config"
    );
    relay.wait_for("delivery of every push", |lines| {
        delivered(lines) == PUSHERS
    });
    let (status, lines) = relay.stop();
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
}

/// A relay still running the binary an upgrade replaced (here: a copy of
/// it) declines the pushes of hooks running the new one, which do their own
/// work; everything still arrives once.
#[test]
fn a_relay_of_another_binary_leaves_the_hooks_their_work() {
    let amq = activemq();
    let server = Server::new(Layout::BranchEach);
    server.configure(&amq);
    with_metrics(&server);
    let old = server.root.join("hookbus-before-the-upgrade");
    std::fs::copy(gitutil::HOOKBUS, &old).unwrap();
    let relay = Relay::start(&server.config, |command| {
        let mut copy = std::process::Command::new(&old);
        copy.args(command.get_args());
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                copy.env(key, value);
            }
        }
        copy
    });
    let metrics = metrics_address(&relay);
    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    told_nothing(&server.push_all());
    Server::assert_each_received_once(subscription);
    assert_eq!(taken(&metrics), 0.0, "a relay of another binary ran a push");
    let (status, lines) = relay.stop();
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
}

/// Clients of the relay's socket that send garbage, a line too long, an
/// input they never send, a byte at a time, or nothing at all, and more
/// connections than the relay works on at once: the pushes meanwhile are
/// delivered once and their pushers told nothing (the relay's or their own
/// hook's work), the trickler is cut after the 5 s a request may take, and
/// once those clients are gone the relay takes every push again.
#[test]
fn hostile_clients_of_the_relay_socket_stop_nothing() {
    let amq = activemq();
    let (server, relay, metrics) = metered_relay(&amq, Layout::BranchEach);
    let socket = server.outbox.join(".relay.sock");
    let connect = || UnixStream::connect(&socket).unwrap();
    let mut garbage = connect();
    garbage.write_all(b"{not a request\n").unwrap();
    let mut endless = connect();
    endless.write_all(&vec![b'x'; 200_000]).unwrap();
    let mut promising = connect();
    let claim = "{\"config\":\"/x\",\"config_id\":{\"dev\":0,\"ino\":0,\"size\":0,\"mtime_ns\":0},\"binary\":{\"dev\":0,\"ino\":0,\"size\":0,\"mtime_ns\":0},\
                 \"default_outbox\":\"/x\",\"repo\":\"/x\",\"env\":{\"gl_repo\":null,\"gl_user\":null,\
                 \"user\":null},\"input_len\":60000000}\n";
    promising.write_all(claim.as_bytes()).unwrap();
    // A byte every 100 ms: the relay gives a request 5 s in all.
    let mut trickler = connect();
    let trickling = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        for byte in b"{\"config\":\"/x\"".iter().cycle().take(200) {
            if trickler.write_all(std::slice::from_ref(byte)).is_err() {
                return started.elapsed();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        started.elapsed()
    });

    let idle: Vec<UnixStream> = (0..100).map(|_| connect()).collect();
    let subscription = amq.drain(&server.queue, 2 * PUSHERS, IDLE, CAP);
    told_nothing(&server.push_all());
    drop((garbage, endless, promising, idle));
    let cut_after = trickling.join().unwrap();
    let (three, eight) = (
        std::time::Duration::from_secs(3),
        std::time::Duration::from_secs(8),
    );
    assert!(
        three < cut_after && cut_after < eight,
        "a trickling client held the relay for {cut_after:?}"
    );
    let before = taken(&metrics);
    server.commit_again("after the hostile clients");
    told_nothing(&server.push_all());
    Server::assert_waves_received_once(subscription, 2);
    assert_eq!(
        taken(&metrics),
        before + PUSHERS as f64,
        "the relay took the second wave"
    );
    let (status, lines) = relay.stop();
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
    assert!(!socket.exists(), "the relay left its socket behind");
}

/// Only the relay's own account may hand it a push: a request from another
/// user who can reach the socket gets no answer at all, where the same
/// request from the relay's user is answered (declined here: it names
/// another config).
#[test]
fn another_user_gets_no_answer_from_the_relay() {
    use std::os::unix::fs::PermissionsExt;
    let amq = activemq();
    let server = Server::new(Layout::RepositoryEach);
    server.configure(&amq);
    let relay = Relay::start(&server.config, |command| command);
    let socket = server.outbox.join(".relay.sock");
    let open = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(&server.root, 0o711);
    open(&server.outbox, 0o711);
    open(&socket, 0o777);
    let account = accounts::TestAccount::new(&server.root);
    let request = "{\"config\":\"/elsewhere.toml\",\"config_id\":{\"dev\":0,\"ino\":0,\"size\":0,\
                   \"mtime_ns\":0},\"binary\":{\"dev\":0,\"ino\":0,\"size\":0,\"mtime_ns\":0},\"default_outbox\":\"/x\",\"repo\":\"/x\",\"env\":{\"gl_repo\":null,\
                   \"gl_user\":null,\"user\":null},\"input_len\":0}\n";
    let client = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(10)\ns.connect({:?})\n\
         try:\n    s.sendall({request:?}.encode())\n    line=s.makefile('rb').readline()\n\
         except (BrokenPipeError, ConnectionResetError):\n    line=b''\n\
         sys.stdout.write(line.decode())\n",
        socket.to_str().unwrap()
    );
    let ask = |as_account: bool| {
        let mut command = std::process::Command::new("setpriv");
        if as_account {
            command.args(["--reuid", &account.uid.to_string()]).args([
                "--regid",
                &account.gid.to_string(),
                "--clear-groups",
            ]);
        }
        let out = command
            .args(["--", "/usr/bin/python3", "-c", &client])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let answer = ask(false);
    assert!(answer.contains("\"answer\":\"declined\""), "{answer}");
    assert_eq!(ask(true), "", "another user was answered");
    let (status, lines) = relay.stop();
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
}
