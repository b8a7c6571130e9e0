//! `hookbus listen` actions end to end: the real daemon, a real ActiveMQ, real
//! pushes through the installed hook (and real SVN commits' messages), a
//! stand-in Jenkins that logs every request, real commands, and the
//! independent subscriber for what the daemon publishes and reports.

mod brokers;
mod gitutil;
mod httputil;
mod listenutil;
mod svnutil;

use brokers::{unique, Broker};
use httputil::{FakeHttp, Reply};
use listenutil::{listen_table, mirror_table, wait_until, Listener, Server, FOLLOW_CAP};
use std::fs;
use std::path::Path;
use std::time::Duration;

/// How long the daemon must stay quiet before "nothing more happens" holds.
const QUIET: Duration = Duration::from_millis(1500);

/// A daemon subscribed to `topic` with `tables` ([[mirror]]s, [[action]]s).
fn listener(
    broker: &Broker,
    dir: &Path,
    topic: &str,
    listen_extra: &str,
    tables: &str,
) -> Listener {
    let config = format!(
        "{}{}{tables}",
        broker.config(),
        listen_table(dir, topic, listen_extra)
    );
    let listener = Listener::start(dir, &config);
    listener.wait_log("connected to", 1);
    listener
}

/// A shell script in `dir`, run as an exec step's program.
fn script(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{text}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn a_push_starts_exactly_the_configured_build_and_ignored_tags_do_not() {
    let broker = brokers::activemq();
    let jenkins = FakeHttp::start();
    let server = Server::new(&broker);
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        r#"
[[action]]
name = "build-app"
[action.match]
repo = ["ap*"]
refname = ["refs/heads/*", "refs/tags/*"]
ignore_refs = 'refs/tags/jenkins-.*'
[[action.step]]
kind = "http"
method = "POST"
url = "{}"
form = {{ REF = "{{refname}}", REV = "{{newrev}}", BRANCH = "{{branch}}" }}
token = "t0k"
headers = {{ "X-Origin" = "hookbus {{action}}" }}
"#,
        jenkins.url("/job/{repo}/buildWithParameters?token={token}&cause=push%20{branch}")
    );
    let listener = listener(&broker, dir.path(), &server.topic, "", &tables);
    let commit = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let got = jenkins.wait_for(1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(
        got[0].target,
        "/job/app/buildWithParameters?token=t0k&cause=push%20master"
    );
    assert_eq!(got[0].header("X-Origin"), Some("hookbus build-app"));
    assert_eq!(
        got[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        got[0].body_text(),
        format!("BRANCH=master&REF=refs%2Fheads%2Fmaster&REV={commit}")
    );
    server.fixture.git(&["tag", "jenkins-1"]);
    server.fixture.git(&["push", "-q", "origin", "jenkins-1"]);
    server.fixture.git(&["tag", "v1"]);
    server.fixture.git(&["push", "-q", "origin", "v1"]);
    let got = jenkins.wait_for(2);
    assert!(
        got[1].body_text().contains("REF=refs%2Ftags%2Fv1"),
        "{got:#?}"
    );
    listener.wait_quiet(QUIET);
    assert_eq!(
        jenkins.requests().len(),
        2,
        "{:#?}\n{}",
        jenkins.requests(),
        listener.log()
    );
}

#[test]
fn a_two_project_svn_revision_starts_both_projects_jobs() {
    let broker = brokers::activemq();
    let jenkins = FakeHttp::start();
    let svn = svnutil::SvnFixture::new("");
    svn.write(&[("projA/trunk/a.txt", b"a\n"), ("projB/trunk/b.txt", b"b\n")]);
    let messages = svn.commit("Touch two projects");
    let json: Vec<&gitutil::Msg> = svnutil::on(&messages, "/topic/json");
    assert_eq!(json.len(), 2, "{messages:#?}");
    let topic = unique("topic", "svn.commits");
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        r#"
[[action]]
name = "projects"
[action.match]
project = ["proj*"]
[[action.step]]
kind = "http"
url = "{}"
"#,
        jenkins.url("/job/{project}/build?rev={newrev}")
    );
    let listener = listener(&broker, dir.path(), &topic, "", &tables);
    let republished: Vec<Vec<(String, String)>> = json
        .iter()
        .map(|m| {
            m.headers
                .iter()
                .filter(|(k, _)| *k != "destination")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .collect();
    let list: Vec<(Vec<(&str, &str)>, &str)> = republished
        .iter()
        .zip(&json)
        .map(|(headers, m)| {
            let headers = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            (headers, m.body.as_str())
        })
        .collect();
    broker.publish_independently(&topic, &list);
    jenkins.wait_for(2);
    listener.wait_quiet(QUIET);
    let mut paths: Vec<String> = jenkins
        .requests()
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/job/projA/build", "/job/projB/build"]);
}

#[test]
fn a_failed_command_runs_its_failure_handler_with_the_output_tail() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let dir = tempfile::tempdir().unwrap();
    let results = unique("topic", "ci.results");
    let test = script(
        dir.path(),
        "test.sh",
        "echo \"testing $1 at $HOOKBUS_NEWREV\"; echo 'assertion failed: 1 == 2' >&2; exit 3",
    );
    let tables = format!(
        r#"
[[action]]
name = "test"
[action.match]
repo = ["app"]
[[action.step]]
kind = "exec"
argv = ["{test}", "{{repo}}; touch pwned"]
cwd = "{}"
[action.step.on_failure]
kind = "publish"
destination = "{results}"
headers = {{ subject = "test of {{repo}} failed ({{parent.exit_code}})" }}
body = "{{parent.status}} {{parent.exit_code}}: {{parent.output}}"
"#,
        dir.path().display()
    );
    let listener = listener(&broker, dir.path(), &server.topic, "", &tables);
    let subscription = broker.subscribe(&results, 1);
    let commit = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let got = subscription.messages();
    assert_eq!(got[0].header("subject"), "test of app failed (3)");
    assert_eq!(
        String::from_utf8_lossy(&got[0].body),
        format!("failed 3: testing app; touch pwned at {commit}\nassertion failed: 1 == 2\n")
    );
    assert!(!dir.path().join("pwned").exists(), "no shell ever");
    listener.wait_log("action test step 1 on_failure (publish) ok", 1);
    assert!(
        listener.log().contains("action test step 1 (exec) failed"),
        "{}",
        listener.log()
    );
}

#[test]
fn a_chain_fetches_then_tests_then_publishes_and_reports_each_step() {
    // The mirror's name defaults to its repo; the step names it by its path.
    chain_with_a_mirror_step(None, |clone| clone.display().to_string());
}

#[test]
fn a_chain_names_its_mirror_by_the_mirrors_own_name() {
    chain_with_a_mirror_step(Some("website"), |_| "website".to_string());
}

/// The documented fetch → test → publish chain; the mirror is called `name`
/// (default: its repo), the step's `mirror` is `step_names(clone)`.
fn chain_with_a_mirror_step(name: Option<&str>, step_names: impl Fn(&Path) -> String) {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let (report, done) = (unique("topic", "deploys"), unique("topic", "deploy.done"));
    let clone = dir.path().join("clone");
    let test = script(
        dir.path(),
        "test.sh",
        "git -C \"$1\" rev-parse refs/remotes/origin/master",
    );
    let tables = format!(
        r#"{}
[[action]]
name = "deploy"
[action.match]
repo = ["app"]
[[action.step]]
kind = "mirror"
mirror = "{step_mirror}"
[[action.step]]
kind = "exec"
argv = ["{test}", "{clone}"]
[[action.step]]
kind = "publish"
destination = "{done}"
headers = {{ subject = "{{repo}} tested" }}
body = "tested {{newrev}}: {{parent.output}}"
"#,
        mirror_table("app", &clone, &server.url(), "fetch", None)
            + &name.map_or(String::new(), |name| format!("name = \"{name}\"\n")),
        clone = clone.display(),
        step_mirror = step_names(&clone),
    );
    let report_key = format!("report = \"{report}\"");
    let listener = listener(&broker, dir.path(), &server.topic, &report_key, &tables);
    listener.wait_log("listen: ", 1); // the first poll's fetch
    listener.wait_quiet(QUIET);
    // The message's own fetch, the chain's mirror step, and three step results.
    let reports = broker.drain(&report, 4, QUIET * 2, FOLLOW_CAP);
    let published = broker.subscribe(&done, 1);
    let commit = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    let got = published.messages();
    assert_eq!(got[0].header("subject"), "app tested");
    assert_eq!(
        String::from_utf8_lossy(&got[0].body),
        format!("tested {commit}: {commit}\n")
    );
    let mut reports = reports;
    let events: Vec<serde_json::Value> = reports
        .received()
        .iter()
        .map(|m| serde_json::from_slice(&m.body).unwrap())
        .collect();
    let steps: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["action"] == "deploy")
        .map(|e| {
            (
                e["step"].as_str().unwrap().into(),
                e["result"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = ["step 1", "step 2", "step 3"]
        .iter()
        .map(|s| (s.to_string(), "ok".to_string()))
        .collect();
    assert_eq!(steps, expected, "{events:#?}");
    let exec = events.iter().find(|e| e["step"] == "step 2").unwrap();
    assert_eq!(
        (exec["kind"].as_str(), exec["exit_code"].as_i64()),
        (Some("exec"), Some(0))
    );
    assert_eq!(exec["newrev"], commit.as_str());
    assert!(
        events
            .iter()
            .any(|e| e["mirror"] == name.unwrap_or("app") && e["result"] == "ok"),
        "{events:#?}"
    );
}

#[test]
fn a_redelivered_message_does_not_start_a_second_build_even_after_a_restart() {
    let broker = brokers::activemq();
    let jenkins = FakeHttp::start();
    let topic = unique("topic", "redelivery");
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[[action]]\nname = \"build\"\n[action.match]\nrepo = [\"app\"]\n[[action.step]]\nkind = \"http\"\nurl = \"{}\"\n",
        jenkins.url("/job/{repo}/build?id={hookbus_id}")
    );
    let mut listener = listener(&broker, dir.path(), &topic, "", &tables);
    let message = |id: &'static str| {
        (
            vec![
                ("repo", "app"),
                ("refname", "refs/heads/master"),
                ("hookbus-id", id),
            ],
            "",
        )
    };
    broker.publish_independently(&topic, &[message("push-1"), message("push-1")]);
    jenkins.wait_for(1);
    listener.wait_quiet(QUIET);
    assert_eq!(listener.terminate().code(), Some(0));
    listener.restart();
    listener.wait_log("connected to", 2);
    broker.publish_independently(&topic, &[message("push-1"), message("push-2")]);
    listener.wait_log("action build already started for message push-1", 1);
    let got = jenkins.wait_for(2);
    listener.wait_quiet(QUIET);
    let targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        ["/job/app/build?id=push-1", "/job/app/build?id=push-2"]
    );
    assert_eq!(jenkins.requests().len(), 2, "{}", listener.log());
}

/// Issue 22 item 12: a repo named `..` made `/job/{repo}/build` request
/// `/job/../build`, which servers resolve to `/build`. A value that would be a
/// dot segment now fails the step, and nothing is requested; dots among other
/// characters, or in the query, are sent as they are.
#[test]
fn a_value_of_dots_never_changes_the_requested_path() {
    let broker = brokers::activemq();
    let jenkins = FakeHttp::start();
    let topic = unique("topic", "dots");
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[[action]]\nname = \"build\"\n[[action.step]]\nkind = \"http\"\nurl = \"{}\"\nretries = 0\n",
        jenkins.url("/job/{repo}/build?r={repo}")
    );
    let listener = listener(&broker, dir.path(), &topic, "", &tables);
    let message = |repo: &'static str| (vec![("repo", repo)], "");
    broker.publish_independently(
        &topic,
        &[message(".."), message("."), message("a..b"), message("...")],
    );
    let got = jenkins.wait_for(1);
    listener.wait_log("action build step 1 (http) failed", 3);
    listener.wait_quiet(QUIET);
    let targets: Vec<String> = jenkins.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/job/a..b/build?r=a..b"], "{}", listener.log());
    assert_eq!(got[0].path(), "/job/a..b/build");
    let log = listener.log();
    assert!(
        log.contains("would request a path segment \"..\"")
            && log.contains("would request a path segment \".\""),
        "{log}"
    );
}

#[test]
fn http_500_is_retried_and_404_goes_to_the_failure_handler() {
    let broker = brokers::activemq();
    let jenkins = FakeHttp::start();
    let topic = unique("topic", "retries");
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        r#"
[[action]]
name = "build"
[[action.step]]
kind = "http"
url = "{}"
retries = 1
[action.step.on_failure]
kind = "http"
url = "{}"
"#,
        jenkins.url("/job/{repo}/build"),
        jenkins.url("/failed?status={parent.http_status}&body={parent.output}")
    );
    let listener = listener(&broker, dir.path(), &topic, "", &tables);
    jenkins.push(Reply::status(500));
    broker.publish_independently(&topic, &[(vec![("repo", "a")], "")]);
    let got = jenkins.wait_for(2);
    assert_eq!(
        (got[0].path(), got[1].path()),
        ("/job/a/build", "/job/a/build")
    );
    listener.wait_log("action build step 1 (http) ok", 1);
    jenkins.on_path("/job/b/build", Reply::status(404).body("no such job"));
    broker.publish_independently(&topic, &[(vec![("repo", "b")], "")]);
    let got = jenkins.wait_for(4);
    assert_eq!(got[2].path(), "/job/b/build");
    assert_eq!(got[3].target, "/failed?status=404&body=no%20such%20job");
    listener.wait_quiet(QUIET);
    assert_eq!(jenkins.requests().len(), 4, "a 404 is not retried");
    assert!(listener.log().contains("HTTP 404"), "{}", listener.log());
}

#[test]
fn package_update_messages_run_the_configured_command() {
    let broker = brokers::activemq();
    let topic = unique("topic", "packages");
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("installed");
    let install = script(
        dir.path(),
        "install.sh",
        &format!("echo \"$@ $HOOKBUS_ACTION\" >> {}", installed.display()),
    );
    let tables = format!(
        r#"
[[action]]
name = "apt"
[action.match]
destinations = ["{topic}"]
body = {{ package = "foo*" }}
[[action.step]]
kind = "exec"
argv = ["{install}", "{{body.package}}", "{{body.version}}"]
"#
    );
    let listener = listener(&broker, dir.path(), &topic, "", &tables);
    broker.publish_independently(
        &topic,
        &[
            (vec![], "package: bar\nversion: 9\n"),
            (vec![], "package: foo-tools\nversion: 1.2-3\n"),
        ],
    );
    assert!(
        wait_until(FOLLOW_CAP, || installed.exists()),
        "{}",
        listener.log()
    );
    listener.wait_quiet(QUIET);
    assert_eq!(
        fs::read_to_string(&installed).unwrap(),
        "foo-tools 1.2-3 apt\n"
    );
}

#[test]
fn check_shows_what_each_action_would_do_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let config = dir.path().join("hookbus.toml");
    let write = |tables: &str| {
        fs::write(
            &config,
            format!(
                "[log]\nsyslog = \"\"\n[listen]\nsubscribe = [\"/topic/c\"]\nstate_dir = \"{}\"\n{tables}",
                dir.path().join("state").display()
            ),
        )
        .unwrap()
    };
    let check = |extra: &[&str]| {
        let out = std::process::Command::new(gitutil::HOOKBUS)
            .arg("--config")
            .arg(&config)
            .args(["listen", "--check"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    write(&format!(
        "[[action]]\nname = \"touch\"\n[action.match]\nbody = {{ package = \"foo*\" }}\n[[action.step]]\nkind = \"exec\"\nargv = [\"/usr/bin/touch\", \"{}\", \"{{body.package}}\"]\n[[action]]\nname = \"build\"\n[[action.step]]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/job/{{repo}}?t={{token}}\"\ntoken = \"hunter2\"\n",
        marker.display()
    ));
    let (code, out, _) = check(&[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("action build: matches the sample"), "{out}");
    assert!(
        out.contains("http GET http://127.0.0.1:9/job/example?t="),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
    assert!(
        out.contains("would fail: the message has no body line \"package\""),
        "{out}"
    );
    let sample = dir.path().join("sample.json");
    fs::write(&sample, r#"{"body": "package: foo-tools\n"}"#).unwrap();
    let (code, out, _) = check(&["--sample", sample.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert!(out.contains("action touch: matches the sample"), "{out}");
    assert!(out.contains("foo-tools"), "{out}");
    assert!(!marker.exists(), "--check runs nothing");
    write("[[action]]\nname = \"bad\"\n[[action.step]]\nkind = \"exec\"\nargv = [\"/bin/echo\", \"{reop}\"]\n");
    let (code, _, err) = check(&[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("unknown name {reop}"), "{err}");
}

#[test]
fn a_slow_action_never_delays_a_mirror() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("clone");
    let (started, finished) = (dir.path().join("started"), dir.path().join("finished"));
    let slow = script(
        dir.path(),
        "slow.sh",
        &format!(
            "touch {}; sleep 10; touch {}",
            started.display(),
            finished.display()
        ),
    );
    let tables = format!(
        "{}[[action]]\nname = \"slow\"\n[action.match]\nrefname = [\"refs/heads/master\"]\n[[action.step]]\nkind = \"exec\"\nargv = [\"{slow}\"]\n",
        mirror_table("app", &clone, &server.url(), "fetch", None)
    );
    let mut listener = listener(
        &broker,
        dir.path(),
        &server.topic,
        "workers = 1\naction_workers = 1",
        &tables,
    );
    server.push_files("master", "second", &[("a.txt", b"2\n")]);
    assert!(
        wait_until(FOLLOW_CAP, || started.exists()),
        "{}",
        listener.log()
    );
    let third = server.push_files("master", "third", &[("a.txt", b"3\n")]);
    let followed = wait_until(FOLLOW_CAP, || {
        listenutil::rev(&clone, "refs/remotes/origin/master").as_deref() == Some(third.as_str())
    });
    assert!(followed, "{}", listener.log());
    assert!(
        !finished.exists(),
        "the mirror waited for the slow action:\n{}",
        listener.log()
    );
    assert!(wait_until(FOLLOW_CAP, || finished.exists()));
    assert_eq!(listener.terminate().code(), Some(0));
}
