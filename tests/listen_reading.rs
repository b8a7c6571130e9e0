//! One message, one meaning: the real daemon on a real ActiveMQ, with a
//! mirror of `app` and two actions, is sent messages (by the independent
//! publisher) that its two old readers understood differently. For each one
//! the mirror's report, the actions' reports and what an exec step's
//! templates were filled with must tell the same story; `listen --check
//! --sample` shows the same reading; the exit line counts what was unusable.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::unique;
use listenutil::{listen_table, mirror_table, Listener, Server, FOLLOW_CAP};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// How long the daemon must stay quiet before a message counts as answered.
const QUIET: Duration = Duration::from_millis(1500);

/// What one side made of a message: (repo, refname, newrev).
type Seen = (String, String, String);

/// A message and what every side must make of it: `None` when nothing may
/// be done for it; whether the refs/heads/main build starts.
struct Case {
    headers: Vec<(&'static str, String)>,
    body: String,
    acted_on: Option<Seen>,
    build: bool,
}

fn seen(repo: &str, refname: &str, newrev: &str) -> Option<Seen> {
    Some((repo.into(), refname.into(), newrev.into()))
}

fn cases(rev: &str) -> Vec<Case> {
    let case = |headers: &[(&'static str, &str)], body: &str, acted_on, build| Case {
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.to_string(),
        acted_on,
        build,
    };
    let main = "refs/heads/main";
    vec![
        // The issue's table: a repo header, the refname only in the body.
        case(&[("repo", "app")], "refname: refs/heads/main\n", seen("app", "", ""), false),
        // No headers; the body's lines in another case and spacing.
        case(&[], "Repo: app\nrefname:refs/heads/main\n", seen("app", main, ""), true),
        // A repo header holding a line break, and a body naming app.
        case(&[("repo", "app\nevil")], "repo: app\n", None, false),
        // hookbus's own headers.
        case(
            &[("repo", "app"), ("refname", main), ("newrev", rev)],
            "",
            seen("app", main, rev),
            true,
        ),
        // A JSON body.
        case(
            &[],
            &format!("{{\"repo\": \"app\", \"refname\": \"{main}\", \"newrev\": \"{rev}\"}}"),
            seen("app", main, rev),
            true,
        ),
        // The seed's text format.
        case(
            &[],
            &format!("[app] {main} {rev}\nrepo: app\noldrev: {rev}\nnewrev: {rev}\nrefname: {main}\n commit {rev}\nAuthor: A <a@example.com>\n\n    repo: evil\n"),
            seen("app", main, rev),
            true,
        ),
        // A revision that is no object id.
        case(
            &[("repo", "app"), ("refname", main), ("newrev", "$(touch /tmp/x)")],
            "",
            None,
            false,
        ),
        // A header holding a control character the body cannot replace.
        case(&[("repo", "app"), ("x-note", "a\tb")], "", None, false),
        // Nothing to read, a package update, another repository.
        case(&[], "hello", None, false),
        case(&[], "package: app-tools\n", None, false),
        case(&[("repo", "other"), ("refname", main)], "", None, false),
    ]
}

/// A report event's `field`, with null as empty.
fn text(event: &Value, field: &str) -> String {
    event[field].as_str().unwrap_or_default().to_string()
}

#[test]
fn mirrors_actions_and_templates_read_every_message_the_same_way() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let rev = server.push_files("main", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let (topic, report) = (
        unique("topic", "reading"),
        unique("topic", "reading.reports"),
    );
    let clone = dir.path().join("clone");
    let recorded = dir.path().join("recorded");
    let recorder = dir.path().join("record.sh");
    fs::write(
        &recorder,
        format!(
            "#!/bin/sh\necho \"$1|$2|$3|$4\" >> '{}'\n",
            recorded.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&recorder, fs::Permissions::from_mode(0o755)).unwrap();
    let tables = format!(
        r#"{}
[[action]]
name = "record"
[action.match]
repo = ["app"]
[[action.step]]
kind = "exec"
argv = ["{}", "{{hookbus_id}}", "{{repo}}", "{{refname}}", "{{newrev}}"]

[[action]]
name = "build"
[action.match]
repo = ["app"]
refname = ["refs/heads/main"]
[[action.step]]
kind = "exec"
argv = ["/bin/true"]
"#,
        mirror_table("app", &clone, &server.url(), "fetch", None),
        recorder.display()
    );
    let config = format!(
        "{}{}{tables}",
        broker.config(),
        listen_table(dir.path(), &topic, &format!("report = \"{report}\""))
    );
    let mut listener = Listener::start(dir.path(), &config);
    listener.wait_log("connected to", 1);
    listener.wait_quiet(QUIET); // the first fetch, reported before we listen
    let cases = cases(&rev);
    let expected_events: usize = (cases.iter())
        .map(|case| 2 * case.acted_on.is_some() as usize + case.build as usize)
        .sum();
    let mut reports = broker.drain(&report, expected_events, QUIET, FOLLOW_CAP * 3);
    for (index, case) in cases.iter().enumerate() {
        let id = format!("m{index}");
        let mut headers: Vec<(&str, &str)> = vec![("hookbus-id", &id)];
        headers.extend(case.headers.iter().map(|(k, v)| (*k, v.as_str())));
        broker.publish_independently(&topic, &[(headers, case.body.as_str())]);
        // One at a time: a burst would be answered by one fetch, one report.
        listener.wait_quiet(QUIET);
    }
    let events: Vec<Value> = (reports.received().iter())
        .map(|message| serde_json::from_slice(&message.body).unwrap())
        .collect();
    let mut by_side: BTreeMap<(String, &str), Seen> = BTreeMap::new();
    for event in &events {
        let side = match (event["mirror"].is_string(), event["action"].as_str()) {
            (true, _) => "mirror",
            (false, Some("record")) => "record",
            (false, Some("build")) => "build",
            _ => panic!("unexpected report {event}"),
        };
        let reading = (
            text(event, "repo"),
            text(event, "refname"),
            text(event, "newrev"),
        );
        let earlier = by_side.insert((text(event, "hookbus_id"), side), reading);
        assert!(earlier.is_none(), "two {side} reports: {event}");
    }
    let filled: BTreeMap<String, Seen> = fs::read_to_string(&recorded)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            let seen = (fields[1].into(), fields[2].into(), fields[3].into());
            (fields[0].to_string(), seen)
        })
        .collect();
    // Every disagreement is listed, so a failure shows the whole table.
    let mut wrong = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let id = format!("m{index}");
        let side = |name: &'static str| by_side.get(&(id.clone(), name)).cloned();
        let build = case.build.then(|| case.acted_on.clone()).flatten();
        let sides = [
            ("mirror", side("mirror"), &case.acted_on),
            ("action", side("record"), &case.acted_on),
            ("templates", filled.get(&id).cloned(), &case.acted_on),
            ("build", side("build"), &build),
        ];
        for (name, got, expected) in sides {
            if got != *expected {
                wrong.push(format!(
                    "{id} {:?} {:?}: {name} read {got:?}, expected {expected:?}",
                    case.headers, case.body
                ));
            }
        }
    }
    assert!(listener.terminate().success());
    // The line break, the bad revision, the tab and "hello"; a package
    // update and another repository are for no mirror or action.
    let stopped = format!(
        "stopped ({} received, 2 for no mirror or action, 4 unusable, 0 duplicates)",
        cases.len()
    );
    if !listener.log().contains(&stopped) {
        wrong.push(format!("the exit line is not {stopped:?}"));
    }
    assert!(
        wrong.is_empty(),
        "{}\nreports: {events:#?}\nlog:\n{}",
        wrong.join("\n"),
        listener.log()
    );
}

#[test]
fn check_shows_the_reading_the_daemon_acts_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookbus.toml");
    fs::write(
        &config,
        format!(
            "{}{}name = \"app\"\n[[action]]\nname = \"build\"\n[action.match]\nrepo = [\"app\"]\nrefname = [\"refs/heads/main\"]\n[[action.step]]\nkind = \"exec\"\nargv = [\"/bin/echo\", \"{{refname}}\"]\n",
            listen_table(dir.path(), "/topic/c", ""),
            mirror_table("app", &dir.path().join("app"), "/nowhere", "fetch", None)
        ),
    )
    .unwrap();
    let check = |sample: &str| {
        let file = dir.path().join("sample.json");
        fs::write(&file, sample).unwrap();
        run_check(&config, &file)
    };
    let out = check(r#"{"headers": {"repo": "app"}, "body": "refname: refs/heads/main\n"}"#);
    assert!(
        out.starts_with("the sample reads as:\n  repo: app\n  body keys: refname\n"),
        "{out}"
    );
    assert!(
        out.contains("\nmirror app: updated for the sample\n"),
        "{out}"
    );
    assert!(
        out.contains("action build: does not match the sample: refname \"\""),
        "{out}"
    );
    let out = check(r#"{"body": "Repo: app\nrefname:refs/heads/main\n"}"#);
    assert!(
        out.starts_with("the sample reads as:\n  repo: app\n  refname: refs/heads/main\n"),
        "{out}"
    );
    assert!(
        out.contains(r#"exec ["/bin/echo", "refs/heads/main"]"#),
        "{out}"
    );
    let out = check(r#"{"headers": {"repo": "app\nevil"}, "body": "repo: app\n"}"#);
    assert!(
        out.starts_with("the sample is unusable (header \"repo\" holds a control character"),
        "{out}"
    );
    assert!(
        !out.contains("action build") && !out.contains("mirror app"),
        "{out}"
    );
}

/// `hookbus listen --check --sample FILE`'s output; it must succeed.
fn run_check(config: &Path, sample: &Path) -> String {
    let mut check = std::process::Command::new(gitutil::HOOKBUS);
    check.arg("--config").arg(config);
    check.args(["listen", "--check", "--sample"]).arg(sample);
    gitutil::run_ok(check)
}
