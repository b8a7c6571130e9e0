//! Issue 12's hostile input, with real pushes and the real brokers scripts/test
//! starts: branch and repository names that try to reach other destinations,
//! passcodes that try to leak into error text, names that try to spoof the
//! text body's first lines, and fields too large for the byte cap.

mod brokers;
mod gitutil;

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
