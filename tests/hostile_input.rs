//! Issue 12's hostile input, with real pushes and the real brokers scripts/test
//! starts: branch and repository names that try to reach other destinations,
//! passcodes that try to leak into error text, names that try to spoof the
//! text body's first lines, and fields too large for the byte cap.

mod brokers;
mod gitutil;
mod svnutil;

use brokers::{both, unique, Broker};
use gitutil::{git, run_ok, Fixture};
use std::time::Duration;

/// How long a subscriber that must get nothing listens after the push.
const IDLE: Duration = Duration::from_millis(1500);
const CAP: Duration = Duration::from_secs(20);

/// A destination as hookbus writes a value into it, computed independently for
/// the test's own names (letters, digits, '-', '.', '/', ',' and '>').
fn encoded(value: &str) -> String {
    value
        .replace('.', "~2E")
        .replace('/', "~2F")
        .replace(',', "~2C")
        .replace('>', "~3E")
}

/// A fixture publishing to `broker` with one summary route to `template`.
fn publishing(broker: &Broker, template: &str) -> Fixture {
    let fixture = Fixture::publishing("");
    fixture.write_config(&format!(
        "{}deadline_ms = 5000\n[outbox]\ndir = {:?}\n[[route]]\ndestination = \"{template}\"\nformat = \"summary\"\n",
        broker.config(),
        fixture.root.join("outbox")
    ));
    fixture
}

#[test]
fn hostile_branch_names_reach_exactly_their_encoded_destination() {
    for broker in both() {
        let prefix = unique("topic", "inject");
        let victim = unique("queue", "deploy");
        let fixture = publishing(&broker, &format!("{prefix}.{{branch}}"));
        fixture.commit("one", &[("a", b"a\n")]);
        fixture.push(&["master"]);
        let composite = format!("z,{victim}");
        let on_composite = broker.subscribe(&format!("{prefix}.{}", encoded(&composite)), 1);
        let on_wildcard = broker.subscribe(&format!("{prefix}.~3E"), 1);
        // Listens its whole timeout: a topic message only reaches a live subscriber.
        let mut on_master = broker.subscribe(&format!("{prefix}.master"), 1);
        fixture.push(&[
            &format!("master:refs/heads/{composite}"),
            "master:refs/heads/>",
        ]);
        // A queue keeps what reached it: drained after the push.
        let mut on_victim = broker.drain(&victim, 0, IDLE, CAP);
        assert!(on_victim.received().is_empty(), "{} injected", broker.name);
        assert!(on_master.received().is_empty(), "{} wildcard", broker.name);
        assert_eq!(fixture.hook_stderr(), "", "{}", broker.name);
        let got = on_composite.messages();
        assert_eq!(got[0].header("refname"), format!("refs/heads/{composite}"));
        let got = on_wildcard.messages();
        assert_eq!(got[0].header("refname"), "refs/heads/>");
    }
}

#[test]
fn a_repository_name_with_a_slash_is_one_valid_topic_name_on_both_brokers() {
    for broker in both() {
        let prefix = unique("topic", "repo");
        let fixture = publishing(&broker, &format!("{prefix}.{{repo}}"));
        run_ok(git(&fixture.bare, &["config", "hookbus.name", "team/app"]));
        let on_encoded = broker.subscribe(&format!("{prefix}.team~2Fapp"), 1);
        fixture.commit("one", &[("a", b"a\n")]);
        fixture.push(&["master"]);
        assert_eq!(fixture.hook_stderr(), "", "{}", broker.name);
        assert_eq!(on_encoded.messages()[0].header("repo"), "team/app");
    }
}

#[test]
fn check_names_the_destinations_a_broker_would_refuse() {
    for (broker, refused) in both().into_iter().zip(["/topic/", "/topic/git/{repo}"]) {
        let fixture = publishing(&broker, "/topic/fine.{repo}");
        let config = std::fs::read_to_string(&fixture.config).unwrap();
        fixture.write_config(&format!("{config}[[route]]\ndestination = \"{refused}\"\n"));
        let out = fixture.hookbus(&["check"], "");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{}: {stdout}", broker.name);
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("would refuse"))
            .collect();
        assert_eq!(lines.len(), 1, "{}: {stdout}", broker.name);
        assert!(
            lines[0].contains(&format!("[[route]] number 2 ({refused:?})")),
            "{stdout}"
        );
    }
}

#[test]
fn no_config_error_shows_a_passcode_whatever_it_holds() {
    let fixture = Fixture::publishing("");
    let mut configs = vec!["[broker]\nurl = \"stomp://h\"\npasscode = 987654321\n".to_string()];
    for passcode in ["pa?SECRET", "p/a?,)@:#SECRET", "SECRET)?x=1@:#"] {
        configs.push(format!(
            "[broker]\nurl = \"stomp://hookbus:{passcode}@h:99999\"\n"
        ));
        configs.push(format!(
            "[broker]\nurl = \"failover:(stomp://hookbus:{passcode}@h1,stomp://h2:0)\"\n"
        ));
        configs.push(format!(
            "[broker]\nurl = \"stomp://hookbus:{passcode}@h/vhost\"\n"
        ));
    }
    for (round, config) in configs.iter().enumerate() {
        fixture.write_config(config);
        let name = format!("f{round}");
        fixture.commit(&name, &[(name.as_str(), b"x\n")]);
        fixture.push(&["master"]);
        let check = fixture.hookbus(&["check"], "");
        assert_eq!(check.status.code(), Some(3));
        let shown = [
            fixture.hook_stderr(),
            String::from_utf8_lossy(&check.stdout).into_owned(),
            String::from_utf8_lossy(&check.stderr).into_owned(),
        ]
        .concat();
        assert!(shown.contains("bad config"), "{shown}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("987654321"),
            "{config}\n{shown}"
        );
    }
}

/// Writes a commit whose author name is `name` (too long for an environment
/// variable) on top of master, with `git hash-object`; returns its id.
fn commit_by(fixture: &Fixture, name: &str) -> String {
    let tree = fixture.rev("master^{tree}");
    let parent = fixture.rev("master");
    let object = format!(
        "tree {tree}\nparent {parent}\nauthor {name} <a@example.com> 1700000000 +0000\ncommitter C <c@example.com> 1700000000 +0000\n\nbig author\n"
    );
    let file = fixture.root.join("commit-object");
    std::fs::write(&file, object).unwrap();
    let file = file.to_str().unwrap();
    let id = run_ok(git(
        &fixture.work,
        &["hash-object", "-t", "commit", "-w", file],
    ));
    id.trim().to_string()
}

#[test]
fn the_byte_cap_holds_for_huge_names_and_never_cuts_the_first_four_lines() {
    let fixture = Fixture::with_config(&format!(
        "[limits]\nmax_bytes = 2048\n{}\n[[route]]\ndestination = \"/topic/chat\"\nformat = \"summary\"\n",
        gitutil::TWO_ROUTES
    ));
    let repo = "r".repeat(5000);
    run_ok(git(&fixture.bare, &["config", "hookbus.name", &repo]));
    fixture.commit("one", &[("a", b"a\n")]);
    fixture.push(&["master"]);
    let big = commit_by(&fixture, &"A".repeat(2_000_000));
    let messages = fixture.push(&[&format!("{big}:refs/heads/big")]);
    assert_eq!(messages.len(), 3, "{}", fixture.hook_stderr());
    let mut problems = Vec::new();
    for message in &messages {
        let place = &message.destination;
        if message.body.len() > 2048 {
            problems.push(format!("{place}: {} bytes", message.body.len()));
        }
        for (key, value) in &message.headers {
            let length = value.as_str().unwrap().len();
            if length > 600 {
                problems.push(format!("{place}: header {key} has {length} bytes"));
            }
        }
    }
    let json = gitutil::json_for(&messages, "refs/heads/big").json();
    let text = gitutil::text_for(&messages, "refs/heads/big");
    let lines: Vec<&str> = text.body.lines().take(4).collect();
    let expected = [
        format!("oldrev: {}", gitutil::Z40),
        format!("newrev: {big}"),
        "refname: refs/heads/big".to_string(),
    ];
    if lines.len() < 4 || !lines[0].starts_with("repo: rrrr") || lines[1..] != expected {
        problems.push(format!(
            "text starts {:?}",
            &text.body[..300.min(text.body.len())]
        ));
    }
    if !text.body.contains("\n    big author\n") {
        problems.push("the author name hides the commit message".to_string());
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(json["repo"].as_str().unwrap().starts_with("rrrr"));
}

#[test]
fn passcode_file_gives_its_first_line_to_the_broker() {
    for broker in both() {
        let fixture = publishing(&broker, "/topic/unused");
        let passcode_file = fixture.root.join("passcode");
        std::fs::write(
            &passcode_file,
            format!("{}\nrotated on 2026-11-30\n", brokers::PASSCODE),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(&passcode_file, private).unwrap();
        let config = std::fs::read_to_string(&fixture.config).unwrap();
        let config = config.replace(
            &format!("passcode = '{}'", brokers::PASSCODE),
            &format!("passcode_file = {passcode_file:?}"),
        );
        assert!(config.contains("passcode_file"), "{config}");
        fixture.write_config(&config);
        let queue = unique("queue", "passcode-file");
        let on_queue = broker.subscribe(&queue, 1);
        let out = fixture.hookbus(&["send", "--destination", &queue], "hello");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            broker.name
        );
        assert_eq!(on_queue.messages()[0].body, b"hello");
    }
}

/// A name whose newline would add a line that passes for the real `oldrev:`.
const SPOOFING_NAME: &str = "app\noldrev: 0000000000000000000000000000000000000000";

#[test]
fn a_git_repository_name_with_a_control_character_is_refused() {
    let fixture = Fixture::new();
    run_ok(git(
        &fixture.bare,
        &["config", "hookbus.name", SPOOFING_NAME],
    ));
    fixture.commit("one", &[("a", b"a\n")]);
    let messages = fixture.push(&["master"]);
    let stderr = fixture.hook_stderr();
    assert!(messages.is_empty(), "{messages:#?}");
    assert!(
        stderr.contains("control character '\\n'") && stderr.contains("hookbus.name"),
        "{stderr}"
    );
    let out = fixture.hookbus(
        &["replay", "--dry-run", "refs/heads/master", "", "master"],
        "",
    );
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn an_svn_repository_name_with_a_control_character_is_refused() {
    let fixture = svnutil::SvnFixture::new("");
    for name in [SPOOFING_NAME, "app\u{1b}[2J"] {
        let out = std::process::Command::new(gitutil::HOOKBUS)
            .arg("--config")
            .arg(&fixture.config)
            .args(["svn-replay", "--dry-run"])
            .arg(&fixture.repo)
            .arg("1")
            .env("HOOKBUS_REPO_NAME", name)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(stderr.contains("control character"), "{stderr}");
    }
}
