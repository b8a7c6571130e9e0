//! `hookbus config import-legacy` on stomp-jenkins configs: the real binary
//! converts the YAML, the result loads (`listen --check`), and a real daemon
//! running it against a real ActiveMQ makes exactly the seed's requests to a
//! stand-in Jenkins and publishes its report line.

mod brokers;
mod gitutil;
mod httputil;
mod listenutil;

use httputil::FakeHttp;
use listenutil::{Listener, Server};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// How long the daemon must stay quiet before "nothing more happens" holds.
const QUIET: Duration = Duration::from_millis(1500);

fn hookbus(args: &[&str], config: Option<&Path>) -> Output {
    let mut command = Command::new(gitutil::HOOKBUS);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `yaml` and returns what `config import-legacy` printed for it.
fn import(dir: &Path, yaml: &str) -> String {
    let file = dir.join("stomp-jenkins.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = hookbus(&["config", "import-legacy", file.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn an_imported_stomp_jenkins_config_loads_and_checks_a_sample_message() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy/stomp-jenkins.yaml"),
    )
    .unwrap();
    let toml = import(dir.path(), &seed);
    assert!(!toml.contains("jenkinspw"), "{toml}");
    let config = dir.path().join("hookbus.toml");
    write_private(&config, &toml);
    let sample = dir.path().join("sample.json");
    std::fs::write(
        &sample,
        r#"{"headers": {"destination": "/topic/acme.git.commits", "subject": "r7 by ann"},
            "body": "repo: legacy-svn\nProject: time-sink\n"}"#,
    )
    .unwrap();
    let out = hookbus(
        &["listen", "--check", "--sample", sample.to_str().unwrap()],
        Some(&config),
    );
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    let matching: Vec<&str> = report
        .lines()
        .filter(|line| line.ends_with(": matches the sample"))
        .collect();
    assert_eq!(
        matching,
        ["action jenkins-legacy-svn-time-sink: matches the sample"],
        "{report}"
    );
    assert!(
        report.contains(
            "http GET http://jenkins.example.net:8080/job/name%20containing%20spaces/build?token="
        ),
        "{report}"
    );
    assert!(
        report.contains("body: Requested Jenkins build: r7 by ann / name_containing_spaces"),
        "{report}"
    );
    assert!(
        !report.contains("WASTE"),
        "the ticket is not shown: {report}"
    );
}

#[test]
fn a_seed_file_that_is_not_a_mapping_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stomp-jenkins.yaml");
    std::fs::write(&file, "- just\n- a list\n").unwrap();
    let out = hookbus(&["config", "import-legacy", file.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stomp-jenkins.yaml is not a seed config"));
}

#[test]
fn the_imported_config_makes_exactly_the_seeds_jenkins_requests() {
    let broker = brokers::activemq();
    let jenkins = FakeHttp::start();
    let server = Server::new(&broker);
    let dir = tempfile::tempdir().unwrap();
    let listen_topic = server.topic.strip_prefix("/topic/").unwrap();
    let report = brokers::unique("topic", "events.jenkins");
    let yaml = format!(
        "listen-topic: {listen_topic}\nreport-topic: {}\njenkins-url: {}\njenkins-projects:\n  \
         app:\n    project: name%20containing%20spaces\n    ticket: T1ck3t\n    \
         ignore_refs: refs\\/tags\\/jenkins-(?:.*)\n  \
         other:\n    project: other-job\n    ticket: T2\n",
        report.strip_prefix("/topic/").unwrap(),
        jenkins.url("")
    );
    let imported = import(dir.path(), &yaml);
    // Where this test's daemon keeps its state, and the test broker.
    let config = format!(
        "{}[log]\nsyslog = \"\"\n{}",
        broker.config(),
        imported.replace(
            "[listen]\n",
            &format!(
                "[listen]\nheartbeat_ms = 1000\npoll_s = 0\nstate_dir = \"{}\"\n",
                dir.path().join("state").display()
            ),
        )
    );
    let reports = broker.subscribe(&report, 2);
    let commits = broker.subscribe(&server.topic, 3);
    let listener = Listener::start(dir.path(), &config);
    listener.wait_log("connected to", 1);

    server.push_files("master", "first", &[("a.txt", b"1\n")]);
    server.fixture.git(&["tag", "jenkins-1"]);
    server.fixture.git(&["push", "-q", "origin", "jenkins-1"]);
    server.fixture.git(&["tag", "v1"]);
    server.fixture.git(&["push", "-q", "origin", "v1"]);
    let got = jenkins.wait_for(2);
    listener.wait_quiet(QUIET);
    let got_all = jenkins.requests();
    assert_eq!(got_all.len(), 2, "{got_all:#?}\n{}", listener.log());
    for request in &got {
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.target,
            "/job/name%20containing%20spaces/build?token=T1ck3t"
        );
        assert!(request.body.is_empty());
    }
    let subjects: Vec<String> = commits
        .messages()
        .iter()
        .filter(|m| m.header("refname") != "refs/tags/jenkins-1")
        .map(|m| m.header("subject").to_string())
        .collect();
    // Actions run on a pool: the two reports may come in either order.
    let mut lines: Vec<(String, String)> = reports
        .messages()
        .iter()
        .map(|m| (m.header("subject").to_string(), text(&m.body)))
        .collect();
    let expected: Vec<(String, String)> = subjects
        .iter()
        .map(|subject| {
            (
                "Talking to eventbot".to_string(),
                format!("Requested Jenkins build: {subject} / name_containing_spaces"),
            )
        })
        .collect();
    lines.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(lines, expected);
}
