//! Who may read and write the outbox (message bodies carry private diffs):
//! its modes, with and without `[outbox] group`, the directories hookbus
//! refuses, files it does not own, and a second user, run with setpriv (the
//! tests run as root, as in CI).

mod brokers;
mod gitutil;
mod outboxutil;

use brokers::{activemq, activemq_at, dead_address};
use gitutil::HOOKBUS;
use outboxutil::{bounded_with, pending, text, Setup};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Ids no account on the test machine uses: another user, a shared group.
const OTHER_UID: u32 = 4_243_001;
const SHARED_GID: u32 = 4_243_002;

/// Permission bits (with setgid) and group of a path, not following links.
fn mode_and_group(path: &Path) -> (u32, u32) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.mode() & 0o7777, meta.gid())
}

/// Pushes once with the broker down, so that the message stays queued.
fn queue_one(setup: &Setup) {
    setup.configure(&activemq_at(dead_address()).config(), "");
    setup.commit_and_push("queued");
    assert_eq!(pending(&setup.outbox).len(), 1);
}

#[test]
fn the_outbox_is_private_to_its_user() {
    let setup = Setup::new(&activemq());
    queue_one(&setup);
    let file = &pending(&setup.outbox)[0];
    assert_eq!(mode_and_group(&setup.outbox).0, 0o700, "outbox directory");
    assert_eq!(mode_and_group(Path::new(file)).0, 0o600, "{file}");
    assert_eq!(mode_and_group(&setup.outbox.join(".lock")).0, 0o600, "lock");

    // A refused message: dead/ and its file are private too.
    setup.configure(&activemq().reader_config(), "");
    let out = setup.run(&["flush"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let dead = setup.outbox.join("dead");
    assert_eq!(mode_and_group(&dead).0, 0o700, "dead/");
    for entry in fs::read_dir(&dead).unwrap() {
        assert_eq!(mode_and_group(&entry.unwrap().path()).0, 0o600);
    }
}

#[test]
fn an_outbox_group_shares_it_with_the_group_only() {
    let setup = Setup::new(&activemq());
    let group = format!("group = \"{SHARED_GID}\"\n");
    // An outbox made by an older hookbus: 0755, files 0644.
    fs::create_dir(&setup.outbox).unwrap();
    fs::set_permissions(&setup.outbox, fs::Permissions::from_mode(0o755)).unwrap();
    setup.configure(&activemq_at(dead_address()).config(), &group);
    setup.commit_and_push("shared");
    let file = &pending(&setup.outbox)[0];
    assert_eq!(mode_and_group(&setup.outbox), (0o2770, SHARED_GID));
    assert_eq!(mode_and_group(Path::new(file)), (0o640, SHARED_GID));
    assert_eq!(
        mode_and_group(&setup.outbox.join(".lock")),
        (0o660, SHARED_GID)
    );

    // A group name that does not exist is a config error, said as such.
    setup.configure(&activemq().config(), "group = \"no-such-group-here\"\n");
    let out = setup.run(&["flush"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("[outbox] group") && stderr.contains("no-such-group-here"),
        "{stderr}"
    );
}

/// A push whose outbox hookbus must refuse: the hook says why, and the
/// message still reaches the broker (published directly) without the
/// directory being used.
fn refused(setup: &Setup, why: &str) {
    let amq = activemq();
    setup.configure(&amq.config(), "");
    let subscription = amq.drain(
        &setup.queue,
        1,
        Duration::from_millis(1500),
        Duration::from_secs(30),
    );
    let (commit, _) = setup.commit_and_push(why);
    let stderr = setup.fixture.hook_stderr();
    let messages = subscription.messages();
    assert_eq!(messages.len(), 1, "{why}: {stderr}");
    assert_eq!(messages[0].header("newrev"), commit);
    assert!(
        stderr.contains("could not be saved") && stderr.contains(why),
        "the hook should say {why:?}: {stderr}"
    );
    let listing = setup.run(&["outbox", "list"]);
    assert_ne!(
        listing.status.code(),
        Some(0),
        "outbox list of a refused outbox"
    );
    assert!(
        text(&listing.stderr).contains(why),
        "{}",
        text(&listing.stderr)
    );
}

#[test]
fn outboxes_that_others_could_tamper_with_are_refused() {
    let setup = Setup::new(&activemq());
    let real = setup.fixture.root.join("real-outbox");
    fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, &setup.outbox).unwrap();
    refused(&setup, "is a symbolic link");
    assert_eq!(
        fs::read_dir(&real).unwrap().count(),
        0,
        "written through the link"
    );
    fs::remove_file(&setup.outbox).unwrap();

    fs::create_dir(&setup.outbox).unwrap();
    fs::set_permissions(&setup.outbox, fs::Permissions::from_mode(0o777)).unwrap();
    refused(&setup, "may be written by every user");

    fs::set_permissions(&setup.outbox, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&setup.outbox, Some(OTHER_UID), None).unwrap();
    refused(&setup, "belongs to user id 4243001");
}

#[test]
fn a_file_the_user_does_not_own_is_never_sent() {
    let amq = activemq();
    let setup = Setup::new(&amq);
    queue_one(&setup);
    let file = pending(&setup.outbox).remove(0);
    std::os::unix::fs::chown(&file, Some(OTHER_UID), None).unwrap();
    setup.configure(&amq.config(), "");
    let subscription = amq.drain(
        &setup.queue,
        0,
        Duration::from_millis(1500),
        Duration::from_secs(30),
    );
    let out = setup.run(&["flush"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("set aside") && stderr.contains("belongs to user id 4243001"),
        "{stderr}"
    );
    assert_eq!(subscription.messages().len(), 0, "a planted file was sent");
    assert_eq!(pending(&setup.outbox), Vec::<String>::new());
}

#[test]
fn a_second_user_gets_a_clear_error_and_loses_nothing() {
    let setup = Setup::new(&activemq());
    queue_one(&setup);
    // The second user's config, readable by it, naming the first user's outbox.
    let shared = tempfile::tempdir().unwrap();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let config = shared.path().join("hookbus.toml");
    fs::write(
        &config,
        format!(
            "{}deadline_ms = 500\n[outbox]\ndir = {:?}\n[log]\nsyslog = \"\"\n",
            activemq_at(dead_address())
                .config()
                .replace("passcode =", "# passcode ="),
            setup.outbox
        ),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    // The binary where the second user may run it (and run it again: a
    // flush replays kept pushes with its own executable), wherever the
    // checkout is (under /root on a fresh machine).
    let hookbus = shared.path().join("hookbus");
    fs::copy(HOOKBUS, &hookbus).unwrap();
    fs::set_permissions(&hookbus, fs::Permissions::from_mode(0o755)).unwrap();
    let home = shared.path().join("home");
    fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    let as_other_with = |args: &[&str], stdin: Stdio| {
        let mut command = Command::new("setpriv");
        command
            .args([
                format!("--reuid={OTHER_UID}"),
                format!("--regid={OTHER_UID}"),
                "--clear-groups".into(),
            ])
            .arg(&hookbus)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("HOME", &home)
            .env_remove("HOOKBUS_OUTBOX")
            .env_remove("XDG_STATE_HOME")
            .current_dir(&setup.fixture.bare);
        bounded_with(&mut command, stdin)
    };
    let as_other = |args: &[&str]| as_other_with(args, Stdio::null());
    let out = as_other(&["flush"]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("belongs to user id 0"),
        "flush as another user: {stderr}"
    );
    let out = as_other(&["outbox", "list"]);
    assert!(
        text(&out.stderr).contains("belongs to user id 0"),
        "{}",
        text(&out.stderr)
    );
    // Nothing of the first user's was touched.
    assert_eq!(pending(&setup.outbox).len(), 1);
    assert_eq!(mode_and_group(&setup.outbox), (0o700, 0));

    // The second user's hook, broker down: the outbox refuses, publishing
    // fails, so the push is kept in the user's own place.
    let tip = setup.fixture.fast_commits("other", 1);
    for dir in [&setup.fixture.root, &setup.fixture.bare] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let chown = Command::new("chown")
        .arg("-R")
        .arg(OTHER_UID.to_string())
        .arg(&setup.fixture.bare)
        .status()
        .unwrap();
    assert!(chown.success());
    let input = shared.path().join("stdin");
    fs::write(&input, format!("{} {tip} refs/heads/other\n", gitutil::Z40)).unwrap();
    let out = as_other_with(&["post-receive"], fs::File::open(&input).unwrap().into());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    let kept = home.join(".local/state/hookbus/outbox/pushes");
    assert!(
        stderr.contains("belongs to user id 0")
            && stderr.contains(&format!("push kept in {}", kept.display())),
        "{stderr}"
    );
    // Given an outbox of its own, its flush emits the push there.
    let own = home.join("outbox");
    fs::write(&config, format!("[outbox]\ndir = {own:?}\n")).unwrap();
    let out = as_other(&["flush"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = as_other(&["outbox", "list"]);
    assert!(
        text(&out.stdout).contains(&format!("refs/heads/other {tip}")),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(pending(&setup.outbox).len(), 1);
}
