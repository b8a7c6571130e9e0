//! Issue 12's outbox cases against the real binary, real pushes and the real
//! ActiveMQ scripts/test starts: files that cannot be messages, damaged files
//! in `outbox list`, kill -9 while a message is stored, a 10,000-file backlog.

mod brokers;
mod gitutil;
mod outboxutil;

use brokers::{activemq, dead_address};
use outboxutil::{pending, text, Setup, HANG_BOUND, RUN_BOUND};
use std::fs;
use std::time::{Duration, Instant};

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

/// Writes `count` one-message files into `outbox`, in the stored format,
/// sorting before anything stored now.
fn plant_backlog(outbox: &std::path::Path, destination: &str, count: usize) {
    fs::create_dir_all(outbox).unwrap();
    for i in 0..count {
        let body = format!("backlog message {i}\n");
        let envelope = serde_json::json!({
            "destination": destination,
            "headers": [["subject", format!("backlog {i}")], ["persistent", "true"]],
            "length": body.len(),
        });
        fs::write(
            outbox.join(format!("000000000001.{i:09}-0000001-00000.msg")),
            format!("{envelope}\n{body}"),
        )
        .unwrap();
    }
}

#[test]
fn a_push_behind_a_ten_thousand_file_backlog_stays_within_its_bound() {
    const BACKLOG: usize = 10_000;
    let amq = activemq();
    let setup = Setup::new(&amq);
    plant_backlog(&setup.outbox, &setup.queue, BACKLOG);

    // Broker down: the push waits at most its deadline, and its message
    // joins the backlog.
    setup.configure(&brokers::activemq_at(dead_address()).config(), "");
    let (_, took) = setup.commit_and_push("behind a backlog, broker down");
    eprintln!("push behind {BACKLOG} files, broker down: {took:?}");
    assert!(took < HANG_BOUND, "the push took {took:?}");
    assert_eq!(pending(&setup.outbox).len(), BACKLOG + 1);
    assert!(setup.fixture.hook_stderr().contains("queued"));

    // Broker up: the hook delivers the oldest first for as long as its
    // deadline allows, then leaves the rest queued.
    setup.configure(&amq.config(), "");
    let (_, took) = setup.commit_and_push("behind a backlog, broker up");
    eprintln!("push behind {BACKLOG} files, broker up: {took:?}");
    assert!(took < HANG_BOUND, "the push took {took:?}");
    let left = pending(&setup.outbox).len();
    assert!(left > 0 && left < BACKLOG + 2, "{left} files pending");
}

#[test]
fn a_hook_killed_while_it_publishes_leaves_its_message_whole_for_the_next_flush() {
    use hookbus::deliver::outbox::{Entry, Outbox};
    // A hook publishes its message as soon as the file is in the outbox,
    // while the file is synced. Killed then (the broker took the connection
    // and never answers), the message must stay in the outbox, whole, and
    // the next flush must deliver it.
    let amq = activemq();
    let setup = Setup::new(&amq);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // never accepts
    let silent_address = silent.local_addr().unwrap().to_string();
    setup.configure(&brokers::activemq_at(silent_address).config(), "");
    let commit = setup
        .fixture
        .commit("killed while publishing", &[("file", b"kill")]);
    let push = setup
        .fixture
        .git_cmd(&["push", "-q", "origin", "master"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The file's name carries the hook's pid: kill it once the file is there.
    let end = Instant::now() + RUN_BOUND;
    let name = loop {
        if let Some(name) = pending(&setup.outbox).into_iter().next() {
            break name;
        }
        assert!(Instant::now() < end, "the hook never stored its message");
        std::thread::sleep(Duration::from_micros(200));
    };
    let file = name.rsplit('/').next().unwrap().to_string();
    let pid: i32 = file.split('-').nth(1).unwrap().parse().unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
    let pushed = push.wait_with_output().unwrap();
    let stderr = text(&pushed.stderr);
    assert!(
        !stderr.contains("hookbus:"),
        "the hook finished before it was killed: {stderr}"
    );
    let outbox = Outbox::new(&setup.outbox);
    let entry = Entry {
        path: setup.outbox.join(&file),
        name: file,
    };
    let stored = outbox
        .read(&entry)
        .expect("the killed hook's file is whole");
    assert_eq!(stored.len(), 1);
    assert!(
        String::from_utf8_lossy(&stored[0].body).contains(&commit),
        "the stored message is not this push's"
    );

    setup.configure(&amq.config(), "");
    let subscription = amq.drain(&setup.queue, 1, Duration::from_millis(1500), RUN_BOUND);
    let out = setup.run(&["flush"]);
    assert!(out.status.success(), "flush: {}", text(&out.stderr));
    let got: Vec<String> = subscription
        .messages()
        .iter()
        .map(|m| m.header("newrev").to_string())
        .collect();
    assert_eq!(got, [commit]);
    assert_eq!(pending(&setup.outbox), Vec::<String>::new());
}

#[test]
fn kill_9_while_storing_never_leaves_a_half_written_message() {
    use hookbus::deliver::outbox::Outbox;
    use std::io::Write;
    use std::process::{Command, Stdio};
    const SIZE: usize = 4 << 20;
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let config = dir.path().join("hookbus.toml");
    fs::write(&config, format!("[outbox]\ndir = {outbox:?}\n")).unwrap();
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let send = || {
        let mut child = Command::new(gitutil::HOOKBUS)
            .arg("--config")
            .arg(&config)
            .args(["send", "--destination", "/queue/kill9"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&body).unwrap();
        child
    };
    let temp_of = |pid: u32| {
        fs::read_dir(&outbox).ok().and_then(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|name| name.starts_with(&format!(".tmp-{pid}-")))
        })
    };
    // Each run is killed once its temporary file appears (or it is done),
    // 0 to 57 ms later: in the middle of writing, or just
    // after the rename.
    assert!(send().wait().unwrap().success(), "an unkilled run stores");
    let (mut killed_mid_store, mut stored) = (0, 1);
    for run in 0..20u64 {
        let mut child = send();
        let end = Instant::now() + RUN_BOUND;
        while temp_of(child.id()).is_none() && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "hookbus send never stored");
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(run * 3));
        let _ = child.kill();
        child.wait().unwrap();
        if temp_of(child.id()).is_some() {
            killed_mid_store += 1;
        } else {
            stored += 1;
        }
    }
    let outbox = Outbox::new(&outbox);
    let entries = outbox.list().unwrap();
    eprintln!(
        "kill -9 while storing: {killed_mid_store} run(s) killed mid-store, {stored} after, {} stored file(s)",
        entries.len()
    );
    assert!(
        killed_mid_store > 0,
        "no kill landed while a file was written: the test proved nothing"
    );
    assert!(!entries.is_empty(), "no run got to store its message");
    for entry in &entries {
        let messages = outbox.read(entry).unwrap();
        assert_eq!(messages.len(), 1, "{}", entry.name);
        assert!(
            messages[0].body == body,
            "{}: the body is not whole",
            entry.name
        );
    }
}
