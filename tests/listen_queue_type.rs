//! `[listen] queue_type` on the real RabbitMQ of scripts/test: a durable
//! subscription is a quorum queue by default (it survives a cluster node's
//! loss), a classic one when configured, and a queue already there with the
//! other type is explained once, with the fix, and retried quietly until an
//! operator deletes it. Queues are looked at with `rabbitmqctl` against that
//! broker (`HOOKBUS_TEST_RABBITMQ_ENV`, written by scripts/brokers).

mod brokers;
mod gitutil;
mod listenutil;

use listenutil::{listen_table, mirror_table, rev, wait_until, Listener, Server, FOLLOW_CAP};
use std::process::Command;
use std::time::Duration;

/// The vhost the test account publishes and subscribes on (scripts/brokers).
const VHOST: &str = "hookbus";

/// Runs `rabbitmqctl -q ARGS` against the test broker, bounded; its stdout.
fn rabbitmqctl(args: &[&str]) -> String {
    let env = std::env::var("HOOKBUS_TEST_RABBITMQ_ENV").unwrap_or_else(|_| {
        panic!("HOOKBUS_TEST_RABBITMQ_ENV is not set: run scripts/test, or start RabbitMQ with scripts/brokers start-rabbitmq DIR PORT and export HOOKBUS_TEST_RABBITMQ_ENV=DIR/env")
    });
    let out = Command::new("sh")
        .args([
            "-c",
            ". \"$1\" && shift && exec timeout 60 /usr/lib/rabbitmq/bin/rabbitmqctl -q \"$@\"",
            "sh",
            &env,
        ])
        .args(args)
        .output()
        .expect("run rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The queue bound to `topic` (a durable subscription's), and its type.
fn queue_of(topic: &str) -> Option<(String, String)> {
    let key = topic.trim_start_matches("/topic/");
    let bindings = rabbitmqctl(&[
        "list_bindings",
        "-p",
        VHOST,
        "destination_name",
        "routing_key",
        "--no-table-headers",
    ]);
    let queue = bindings.lines().find_map(|line| {
        let (queue, routing_key) = line.split_once('\t')?;
        (routing_key == key).then(|| queue.to_string())
    })?;
    let queues = rabbitmqctl(&[
        "list_queues",
        "-p",
        VHOST,
        "name",
        "type",
        "--no-table-headers",
    ]);
    queues.lines().find_map(|line| {
        let (name, kind) = line.split_once('\t')?;
        (name == queue).then(|| (queue.clone(), kind.trim().to_string()))
    })
}

fn delete_queue(queue: &str) {
    rabbitmqctl(&["delete_queue", "-p", VHOST, queue]);
}

/// A listener on RabbitMQ with a durable subscription to `server`'s topic and
/// `extra` in its `[listen]` table, started in `dir`.
fn listener(server: &Server, dir: &std::path::Path, name: &str, extra: &str) -> Listener {
    let broker = brokers::rabbitmq();
    let extra = format!("durable = \"{name}-{}\"\n{extra}", std::process::id());
    let config = format!(
        "{}{}{}",
        broker.config(),
        listen_table(dir, &server.topic, &extra),
        mirror_table("app", &dir.join("clone"), &server.url(), "fetch", None),
    );
    Listener::start(dir, &config)
}

#[test]
fn a_durable_subscription_is_a_quorum_queue_by_default_and_delivers() {
    let server = Server::new(&brokers::rabbitmq());
    server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut listener = listener(&server, d, "quorum", "");
    listener.wait_log("connected to", 1);
    let (queue, kind) = queue_of(&server.topic).expect("the durable subscription's queue");
    assert_eq!(kind, "quorum", "queue {queue}");
    // Messages come through it.
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    let fetched = wait_until(FOLLOW_CAP, || {
        rev(&d.join("clone"), "origin/master").as_deref() == Some(second.as_str())
    });
    assert!(fetched, "the push was not handled:\n{}", listener.log());
    listener.terminate();
    delete_queue(&queue);
}

#[test]
fn queue_type_classic_makes_a_classic_queue() {
    let server = Server::new(&brokers::rabbitmq());
    let dir = tempfile::tempdir().unwrap();
    let mut listener = listener(&server, dir.path(), "classic", "queue_type = \"classic\"");
    listener.wait_log("connected to", 1);
    let (queue, kind) = queue_of(&server.topic).expect("the durable subscription's queue");
    assert_eq!(kind, "classic", "queue {queue}");
    listener.terminate();
    delete_queue(&queue);
}

#[test]
fn a_queue_of_the_other_type_is_explained_once_and_retried_until_deleted() {
    let server = Server::new(&brokers::rabbitmq());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An older listener made the queue classic.
    let mut old = listener(&server, d, "migrate", "queue_type = \"classic\"");
    old.wait_log("connected to", 1);
    old.terminate();
    let (queue, kind) = queue_of(&server.topic).expect("the classic queue");
    assert_eq!(kind, "classic");

    let log_dir = tempfile::tempdir().unwrap();
    let mut listener = listener(&server, log_dir.path(), "migrate", "");
    let explained = format!("queue {queue:?} (vhost \"{VHOST}\") is a classic queue");
    listener.wait_log(&explained, 1);
    let log = listener.log();
    assert!(
        log.contains(&format!("rabbitmqctl delete_queue -p {VHOST} {queue}"))
            && log.contains("set queue_type = \"classic\"")
            && log.contains("retrying every 30 s"),
        "{log}"
    );
    // The operator deletes it: the next quiet retry makes it again as quorum.
    delete_queue(&queue);
    let subscribed = wait_until(Duration::from_secs(60), || {
        listener.log().contains("connected to")
    });
    let log = listener.log();
    assert!(subscribed, "not subscribed after the queue went:\n{log}");
    assert_eq!(log.matches(&explained).count(), 1, "{log}");
    assert!(
        !log.contains("cannot subscribe"),
        "a reconnect storm:\n{log}"
    );
    let (queue, kind) = queue_of(&server.topic).expect("the new queue");
    assert_eq!(kind, "quorum", "queue {queue}");
    listener.terminate();
    delete_queue(&queue);
}
