//! Signed messages (issue 27) end to end: keys made by the real `hookbus
//! keygen`, real pushes through the installed hook signing with them, real
//! brokers, the real listener running an exec step that records what ran,
//! and the independent client publishing forgeries and reading the reports.

mod accounts;
mod brokers;
mod gitutil;
mod listenutil;

use accounts::{not_owned_by, open_to_all, TestAccount};
use brokers::{unique, Broker};
use hookbus::sign::{PublicKey, Signer};
use listenutil::{
    hookbus, keygen, listen_table, mirror_table, published, rev, wait_until, Listener, Server,
    FOLLOW_CAP,
};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the daemon must stay quiet before "nothing more happens" holds.
const QUIET: Duration = Duration::from_millis(1500);

/// Makes the server's hook sign with `key` (replacing any earlier `[sign]`).
fn sign_with(server: &Server, key: &Path) {
    let config = fs::read_to_string(&server.fixture.config).unwrap();
    let unsigned = config.split("[sign]").next().unwrap();
    let signed = format!("{unsigned}[sign]\nkey_file = \"{}\"\n", key.display());
    server.fixture.write_config(&signed);
}

/// A listener on `server`'s topic trusting `keys`, requiring `require`,
/// with an `[[action]]` for repo `app` whose exec step appends "REFNAME
/// NEWREV" to a record: the listener, the record and the report topic.
fn recording_listener(
    broker: &Broker,
    dir: &Path,
    server: &Server,
    keys: &[&str],
    require: &str,
) -> (Listener, PathBuf, String) {
    let (record, report) = (dir.join("ran"), unique("topic", "sign.reports"));
    let script = dir.join("record.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$1\" \"$2\" >>'{}'\n",
            record.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let action = format!(
        "[[action]]\nname = \"deploy\"\n[action.match]\nrepo = [\"app\"]\n[[action.step]]\nkind = \"exec\"\nargv = [\"{}\", \"{{refname}}\", \"{{newrev}}\"]\n",
        script.display()
    );
    let extra = trusting(keys, require, &report);
    let listener = start_listener(broker, dir, &server.topic, &extra, &action);
    (listener, record, report)
}

/// The listener's `[listen]` extras trusting `keys`, requiring `require`.
fn trusting(keys: &[&str], require: &str, report: &str) -> String {
    let keys: Vec<String> = keys.iter().map(|key| format!("\"{key}\"")).collect();
    format!(
        "trust = [{}]\nrequire_signature = \"{require}\"\nreport = \"{report}\"",
        keys.join(", ")
    )
}

fn start_listener(broker: &Broker, dir: &Path, topic: &str, extra: &str, tables: &str) -> Listener {
    let config = format!(
        "{}{}{tables}",
        broker.config(),
        listen_table(dir, topic, extra)
    );
    let listener = Listener::start(dir, &config);
    listener.wait_log("connected to", 1);
    listener
}

fn lines(record: &Path) -> Vec<String> {
    fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The report events whose result is `refused`.
fn refusals(reports: &[brokers::Received]) -> Vec<Value> {
    (reports.iter())
        .map(|m| serde_json::from_slice::<Value>(&m.body).unwrap())
        .filter(|event| event["result"] == "refused")
        .collect()
}

/// A message as a push's would read, with its own hookbus-id, bound for
/// `topic` (the destination a subscriber sees, which the signature covers).
fn pushlike(topic: &str, id: &str) -> Vec<(String, String)> {
    let rev = "aa794ab6cc1a4a504fd908efc938c0f241557ad4";
    [
        ("destination", topic),
        ("repo", "app"),
        ("refname", "refs/heads/master"),
        ("oldrev", rev),
        ("newrev", rev),
        ("change", "update"),
        ("hookbus-id", id),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Sends forged messages with the independent client (the destination is
/// the one it publishes to).
fn publish_forged(broker: &Broker, topic: &str, forged: &[(Vec<(String, String)>, String)]) {
    let messages: Vec<(Vec<(&str, &str)>, &str)> = (forged.iter())
        .map(|(headers, body)| {
            let headers = (headers.iter())
                .filter(|(k, _)| k != "destination")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            (headers, body.as_str())
        })
        .collect();
    broker.publish_independently(topic, &messages);
}

/// What each test here starts with: ActiveMQ, a directory, the git
/// server's key pair made in it by `hookbus keygen` (the private key's path
/// and the public line) and a server repository (its hook not yet signing).
fn opening() -> (Broker, tempfile::TempDir, (PathBuf, String), Server) {
    let broker = brokers::activemq();
    let dir = tempfile::tempdir().unwrap();
    let pair = keygen(dir.path(), "git-server");
    let server = Server::new(&broker);
    (broker, dir, pair, server)
}

#[test]
fn forged_messages_run_nothing_and_are_reported_refused_while_the_signed_push_runs() {
    let (broker, dir, (key, public), server) = opening();
    let (stranger_key, _) = keygen(dir.path(), "stranger");
    sign_with(&server, &key);
    let (listener, record, report) =
        recording_listener(&broker, dir.path(), &server, &[&public], "actions");
    let reports = broker.drain(&report, 5, QUIET, FOLLOW_CAP);

    let (signer, stranger) = (
        Signer::load(&key).unwrap(),
        Signer::load(&stranger_key).unwrap(),
    );
    let now = hookbus::sign::unix_now();
    let topic = &server.topic;
    let signed = |signer: &Signer, id: &str, at: u64| {
        let mut headers = pushlike(topic, id);
        signer.sign(&mut headers, b"pushed", at);
        headers
    };
    let mut moved = signed(&signer, "moved", now);
    moved.iter_mut().find(|(k, _)| k == "refname").unwrap().1 = "refs/heads/prod".into();
    let forged = [
        (pushlike(topic, "unsigned"), "pushed".to_string()),
        (signed(&stranger, "stranger", now), "pushed".to_string()),
        (signed(&signer, "body", now), "pushed; rm -rf /".to_string()),
        (moved, "pushed".to_string()),
        (
            signed(&signer, "old", now - 2 * 86_400),
            "pushed".to_string(),
        ),
    ];
    publish_forged(&broker, topic, &forged);
    let commit = server.push_files("master", "signed", &[("a.txt", b"1\n")]);
    assert!(
        wait_until(FOLLOW_CAP, || !lines(&record).is_empty()),
        "the signed push ran nothing:\n{}\n{}",
        listener.log(),
        server.fixture.hook_stderr()
    );
    listener.wait_quiet(QUIET);
    assert_eq!(
        lines(&record),
        [format!("refs/heads/master {commit}")],
        "{}",
        listener.log()
    );
    let mut reports = reports;
    let refused = refusals(&reports.received());
    let reason = |id: &str| {
        let event = (refused.iter())
            .find(|event| event["hookbus_id"] == id)
            .unwrap_or_else(|| panic!("no refusal of {id}: {refused:#?}"));
        assert_eq!(event["withheld"], "actions");
        event["reason"].as_str().unwrap().to_string()
    };
    assert_eq!(reason("unsigned"), "unsigned");
    assert_eq!(
        reason("stranger"),
        format!("unknown key {}", stranger.public().id())
    );
    assert!(reason("body").starts_with("bad signature"), "{refused:#?}");
    assert!(reason("moved").starts_with("bad signature"), "{refused:#?}");
    assert!(reason("old").starts_with("too old"), "{refused:#?}");
    assert_eq!(refused.len(), 5, "{refused:#?}");
    let log = listener.log();
    assert_eq!(log.matches("refused a message").count(), 5, "{log}");
}

#[test]
fn a_rotation_keeps_both_keys_working_on_both_brokers() {
    for broker in brokers::both() {
        let dir = tempfile::tempdir().unwrap();
        let (old_key, old_public) = keygen(dir.path(), "old");
        let (new_key, new_public) = keygen(dir.path(), "new");
        let server = Server::new(&broker);
        let keys = [old_public.as_str(), new_public.as_str()];
        let (listener, record, _) = recording_listener(&broker, dir.path(), &server, &keys, "all");
        let mut commits = Vec::new();
        for (count, key) in [(1usize, &old_key), (2, &new_key)] {
            sign_with(&server, key);
            let content = count.to_string();
            commits.push(server.push_files("master", "rotated", &[("a.txt", content.as_bytes())]));
            assert!(
                wait_until(FOLLOW_CAP, || lines(&record).len() == count),
                "{}: push {count} ran nothing:\n{}",
                broker.name,
                listener.log()
            );
        }
        let expected: Vec<String> = (commits.iter())
            .map(|commit| format!("refs/heads/master {commit}"))
            .collect();
        assert_eq!(lines(&record), expected, "{}", broker.name);
        assert!(!listener.log().contains("refused"), "{}", listener.log());
    }
}

#[test]
fn with_all_an_unsigned_push_does_not_even_make_a_mirror_fetch() {
    let (broker, dir, (key, public), server) = opening();
    let (own_key, own_public) = keygen(dir.path(), "deploy-host");
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let clone = dir.path().join("clone");
    let report = unique("topic", "sign.reports");
    // The listener signs what it publishes (its reports) with a key of its own.
    let tables = format!(
        "{}[sign]\nkey_file = \"{}\"\n",
        mirror_table("app", &clone, &server.url(), "fetch", None),
        own_key.display()
    );
    let listener = start_listener(
        &broker,
        dir.path(),
        &server.topic,
        &trusting(&[&public], "all", &report),
        &tables,
    );
    let origin = "refs/remotes/origin/master";
    assert!(wait_until(FOLLOW_CAP, || rev(&clone, origin).as_deref()
        == Some(first.as_str())));
    listener.wait_quiet(QUIET);
    let reports = broker.drain(&report, 1, QUIET, FOLLOW_CAP);
    let unsigned = server.push_files("master", "unsigned", &[("a.txt", b"2\n")]);
    listener.wait_log("refused a message", 1);
    listener.wait_quiet(QUIET);
    assert_eq!(rev(&clone, origin).as_deref(), Some(first.as_str()));
    let mut reports = reports;
    let reports = reports.received();
    let refused = refusals(&reports);
    assert_eq!(refused.len(), 1, "{refused:#?}");
    let own = PublicKey::parse(&own_public).unwrap();
    let trust = hookbus::sign::Trust::new(vec![own.clone()], 600);
    let headers: Vec<(String, String)> = (reports[0].headers.iter())
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        trust.verify(&headers, &reports[0].body, hookbus::sign::unix_now()),
        hookbus::sign::Signature::Trusted(own.id().to_string()),
        "{headers:?}"
    );
    assert_eq!(
        (&refused[0]["reason"], &refused[0]["withheld"]),
        (&Value::from("unsigned"), &Value::from("all"))
    );
    sign_with(&server, &key);
    let signed = server.push_files("master", "signed", &[("a.txt", b"3\n")]);
    assert_ne!(signed, unsigned);
    assert!(
        wait_until(FOLLOW_CAP, || rev(&clone, origin).as_deref()
            == Some(signed.as_str())),
        "{}",
        listener.log()
    );
}

#[test]
fn keygen_check_and_listen_check_show_keys_and_their_risks() {
    use std::os::unix::fs::PermissionsExt;
    let broker = brokers::activemq();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "k");
    let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let id = public.split_whitespace().nth(2).unwrap().to_string();
    assert!(public.starts_with("ed25519 "), "{public}");
    let again = hookbus(&["keygen", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(
        fs::read_to_string(dir.path().join("k.pub")).unwrap().trim(),
        public
    );

    let config = dir.path().join("hookbus.toml");
    let listen = listen_table(
        dir.path(),
        "/topic/x",
        &trusting(&[&public], "actions", "/topic/r"),
    );
    let text = format!(
        "{}[sign]\nkey_file = \"{}\"\n{listen}",
        broker.config(),
        key.display()
    );
    fs::write(&config, &text).unwrap();
    // A config holding a passcode is kept private (else hookbus warns about it).
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let check = || hookbus(&["--config", config.to_str().unwrap(), "check"]);
    let out = check();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("signing with key {id}")),
        "{stdout}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("key_file"),
        "{out:?}"
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    let stderr = String::from_utf8_lossy(&check().stderr).to_string();
    assert!(
        stderr.contains("readable by group or others; chmod 600 it"),
        "{stderr}"
    );

    let listen_check = hookbus(&["--config", config.to_str().unwrap(), "listen", "--check"]);
    let stdout = String::from_utf8_lossy(&listen_check.stdout);
    assert!(
        stdout.contains(&format!(
            "signatures: require_signature = actions, max_age_s = 86400, trusted keys: {id}"
        )),
        "{listen_check:?}"
    );
    let wrong = public.replace(&id, "0123456789abcdef");
    fs::write(&config, text.replace(&public, &wrong)).unwrap();
    let refused = hookbus(&["--config", config.to_str().unwrap(), "listen", "--check"]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("copy the whole line"));
}

/// With `actions`, an unsigned push only makes a checkout mirror with an
/// on-change step fetch: the step does not run and the target stays; a
/// signed push publishes and runs it. With `as_account`, the mirror runs as
/// a real account (else as root, the test's user): git and the step run as
/// it, and what they write is its own.
fn with_actions_an_unsigned_push_only_fetches(as_account: bool) {
    let (broker, dir, (key, public), server) = opening();
    let d = dir.path();
    let account = as_account.then(|| {
        open_to_all(d);
        open_to_all(&server.fixture.root);
        let account = TestAccount::new(d);
        account.trust_repository(&server.url());
        account
    });
    let (owner, user) = match &account {
        Some(account) => (
            (account.uid, account.gid),
            format!("user = \"{}\"\n", account.name),
        ),
        None => ((0, 0), String::new()),
    };
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let (clone, www, ids) = (d.join("clone"), d.join("www"), d.join("ids"));
    fs::create_dir(&ids).unwrap();
    std::os::unix::fs::chown(&ids, Some(owner.0), Some(owner.1)).unwrap();
    let record = ids.join("changes");
    let report = unique("queue", "sign.on_change");
    // The step records the commit it ran for and who ran it.
    let step = format!("echo \"$1 $(id -u)\" >> {}", record.display());
    let tables = format!(
        "{}{user}[[mirror.on_change]]\nkind = \"exec\"\nargv = [\"/bin/sh\", \"-c\", {step:?}, \"sh\", \"{{newrev}}\"]\ntimeout_s = 30\n",
        mirror_table("app", &clone, &server.url(), "checkout", Some(&www)),
    );
    let listener = start_listener(
        &broker,
        d,
        &server.topic,
        &trusting(&[&public], "actions", &report),
        &tables,
    );
    let ran = |commit: &str| format!("{commit} {}", owner.0);
    // The first publish is the daemon's own (at start): its step runs.
    assert!(
        wait_until(FOLLOW_CAP, || lines(&record) == [ran(&first)]),
        "{:?}\n{}",
        lines(&record),
        listener.log()
    );
    listener.wait_quiet(QUIET);
    let mut reports = broker.drain(&report, 2, QUIET, FOLLOW_CAP);

    // Unsigned: fetched (as the account), no step, the target stays.
    let unsigned = server.push_files("master", "unsigned", &[("a.txt", b"2\n")]);
    let origin = "refs/remotes/origin/master";
    assert!(
        wait_until(FOLLOW_CAP, || rev(&clone, origin).as_deref()
            == Some(unsigned.as_str())),
        "the unsigned push did not make the mirror fetch:\n{}",
        listener.log()
    );
    listener.wait_quiet(QUIET);
    let object = (clone.join(".git/objects"))
        .join(&unsigned[..2])
        .join(&unsigned[2..]);
    assert!(object.exists(), "{}", listener.log());
    assert_eq!(not_owned_by(&clone, owner), Vec::<PathBuf>::new());
    assert_eq!(lines(&record), [ran(&first)], "{}", listener.log());
    assert_eq!(published(&www).as_deref(), Some(first.as_str()));
    assert_eq!(fs::read_to_string(www.join("a.txt")).unwrap(), "1\n");
    let events: Vec<Value> = (reports.received().iter())
        .map(|m| serde_json::from_slice::<Value>(&m.body).unwrap())
        .filter(|event| {
            event["on_change"]
                .as_str()
                .is_some_and(|s| s.contains("withheld"))
        })
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}\n{}", listener.log());
    assert_eq!(
        events[0]["on_change"], "withheld (unsigned): fetched only",
        "{events:#?}"
    );

    // Signed: published, and the step ran for what it published (as the
    // account).
    sign_with(&server, &key);
    let signed = server.push_files("master", "signed", &[("a.txt", b"3\n")]);
    assert!(
        wait_until(FOLLOW_CAP, || lines(&record) == [ran(&first), ran(&signed)]),
        "{:?}\n{}",
        lines(&record),
        listener.log()
    );
    assert_eq!(published(&www).as_deref(), Some(signed.as_str()));
    assert_eq!(fs::read_to_string(www.join("a.txt")).unwrap(), "3\n");
    let release = d.join(".www.hookbus").join(&signed);
    for path in [record, release, www] {
        assert_eq!(not_owned_by(&path, owner), Vec::<PathBuf>::new());
    }
}

#[test]
fn with_actions_an_unsigned_push_only_fetches_a_mirror_whose_changes_run_steps() {
    with_actions_an_unsigned_push_only_fetches(false);
}

#[test]
fn with_actions_an_unsigned_push_fetches_as_the_mirrors_account_and_the_signed_one_runs_its_step_as_it(
) {
    with_actions_an_unsigned_push_only_fetches(true);
}
