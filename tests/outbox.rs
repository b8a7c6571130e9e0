//! Issue 12's outbox cases against the real binary, real pushes and the real
//! ActiveMQ scripts/test starts: files that cannot be messages, damaged files
//! in `outbox list`, kill -9 while a message is stored, a 10,000-file backlog.

mod brokers;
mod gitutil;
mod outboxutil;

use brokers::{activemq, dead_address};
use outboxutil::{pending, text, Setup, HANG_BOUND, RUN_BOUND};
use std::fs;
use std::time::Duration;

#[test]
fn an_empty_message_file_is_set_aside_once_and_delivery_goes_on() {
    let amq = activemq();
    let setup = Setup::new(&amq);
    // A push while the broker is down leaves one real message queued.
    setup.configure(&brokers::activemq_at(dead_address()).config(), "");
    let (queued, _) = setup.commit_and_push("queued while down");
    assert_eq!(pending(&setup.outbox).len(), 1);
    // An empty file sorting before it: it can never be a message.
    let empty = setup
        .outbox
        .join("000000000000.000000000-0000001-00000.msg");
    fs::write(&empty, b"").unwrap();

    setup.configure(&amq.config(), "");
    let subscription = amq.drain(&setup.queue, 2, Duration::from_millis(1500), RUN_BOUND);
    let out = setup.run(&["flush"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "flush: {stderr}");
    assert!(
        stderr.contains("set aside") && stderr.contains("empty"),
        "flush should say it set the empty file aside: {stderr}"
    );
    let dead = setup.outbox.join("dead").join(empty.file_name().unwrap());
    assert!(dead.exists(), "the empty file is not in dead/: {stderr}");
    // The next push is delivered at once, within its bound.
    let (pushed, took) = setup.commit_and_push("after the empty file");
    assert!(took < HANG_BOUND, "the push took {took:?}");
    let got: Vec<String> = subscription
        .messages()
        .iter()
        .map(|m| m.header("newrev").to_string())
        .collect();
    assert_eq!(got, [queued, pushed]);
    assert_eq!(pending(&setup.outbox), Vec::<String>::new());

    // Listed with its reason; a second flush does not set it aside again.
    let (lines, _) = setup.list();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("dead/") && lines[0].contains("empty"));
    let out = setup.run(&["flush"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Retrying it refuses to put an empty file back among the pending ones.
    let out = setup.run(&["outbox", "retry", "--all"]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "retry --all: {stderr}");
    assert!(stderr.contains("empty"), "retry should say why: {stderr}");
    assert_eq!(pending(&setup.outbox), Vec::<String>::new());
    assert!(dead.exists());
}

#[test]
fn outbox_list_shows_damaged_pending_files_and_goes_on() {
    let setup = Setup::new(&brokers::activemq_at(dead_address()));
    setup.commit_and_push("first");
    setup.commit_and_push("second");
    // Planted after the pushes, whose own flush would set them aside.
    let damaged = setup
        .outbox
        .join("000000000000.000000000-0000001-00000.msg");
    fs::write(
        &damaged,
        b"{\"destination\":\"/queue/x\",\"headers\":[],\"length\":99}\nshort",
    )
    .unwrap();
    let empty = setup
        .outbox
        .join("000000000000.000000000-0000002-00000.msg");
    fs::write(&empty, b"").unwrap();

    let (lines, summary) = setup.list();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[0].starts_with("000000000000.000000000-0000001-00000.msg\t")
            && lines[0].contains("damaged"),
        "{lines:#?}"
    );
    assert!(lines[1].contains("empty"), "{lines:#?}");
    for line in &lines[2..] {
        assert!(line.contains(&setup.queue), "{lines:#?}");
    }
    assert!(
        summary.contains("2 message(s) waiting") && summary.contains("2 damaged"),
        "{summary}"
    );
}
