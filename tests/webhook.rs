//! `hookbus webhook` as forges use it: real HTTP requests to the running
//! binary, messages checked with an independent subscriber on a real broker
//! (or read back from the outbox), pushes made with real git.

mod brokers;
mod gitutil;
mod webhookutil;

use hookbus::deliver::outbox::Outbox;
use hookbus::message::Message;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use webhookutil::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhook");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

/// Endpoints for the three forges, all with the test secret.
const ENDPOINTS: &str = r#"
[webhook]
listen = "{listen}"
[[webhook.endpoint]]
path = "/github"
kind = "github"
secret_file = "{secret}"
[[webhook.endpoint]]
path = "/gitlab"
kind = "gitlab"
secret_file = "{secret}"
[[webhook.endpoint]]
path = "/gitea"
kind = "gitea"
secret_file = "{secret}"
[[webhook.repo]]
full_name = "mike/diaspora"
name = "diaspora"
"#;

fn config(routes: &str, extra: &str) -> String {
    format!("[outbox]\ndir = \"{{dir}}/outbox\"\n[log]\nsyslog = \"\"\n{routes}{ENDPOINTS}{extra}")
}

fn text_route(destination: &str) -> String {
    format!("[[route]]\ndestination = \"{destination}\"\nformat = \"text\"\n")
}

fn outbox_messages(dir: &Path) -> Vec<Message> {
    let outbox = Outbox::new(dir.join("outbox"));
    let mut messages = Vec::new();
    for entry in outbox.list().unwrap() {
        messages.extend(outbox.read(&entry).unwrap());
    }
    messages
}

/// Waits (bounded) until `condition` holds.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn githubs_signature_test_vector_is_accepted_and_a_flipped_bit_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config("", ""));
    let body = b"Hello, World!";
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let bad = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e16";
    let ping = |signature: &str| {
        server.post(
            "/github",
            &[
                ("X-GitHub-Event", "ping"),
                ("X-Hub-Signature-256", signature),
            ],
            body,
        )
    };
    assert_eq!(ping(good), (200, "pong".to_string()));
    let (status, reason) = ping(bad);
    assert_eq!(status, 401, "{reason}");
    assert!(
        reason.contains("X-Hub-Signature-256 does not match"),
        "{reason}"
    );
}

#[test]
fn forge_example_payloads_become_messages_like_a_hooks() {
    let broker = brokers::activemq();
    let text = brokers::unique("topic", "webhook-text");
    let events = brokers::unique("topic", "webhook-events");
    let forward =
        format!("[[webhook.forward]]\nevents = [\"pull_request\"]\ndestination = \"{events}\"\n");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config(&text_route(&text), &format!("{forward}{}", broker.config())),
    );
    let pushes = broker.subscribe(&text, 6);
    let forwarded = broker.subscribe(&events, 1);

    for (index, name) in [
        "github-push-branch-create.json",
        "github-push-tag-create.json",
        "github-push-tag-delete.json",
    ]
    .iter()
    .enumerate()
    {
        let body = fixture(name);
        let headers = github_headers("push", &format!("delivery-{index}"), &body);
        assert_eq!(
            server.post("/github", &pairs(&headers), &body).0,
            202,
            "{name}"
        );
    }
    // A forced push, as GitHub reports one.
    let mut forced: Value =
        serde_json::from_slice(&fixture("github-push-branch-create.json")).unwrap();
    forced["before"] = json!("1111111111111111111111111111111111111111");
    forced["created"] = json!(false);
    forced["forced"] = json!(true);
    let body = serde_json::to_vec(&forced).unwrap();
    let headers = github_headers("push", "delivery-forced", &body);
    assert_eq!(server.post("/github", &pairs(&headers), &body).0, 202);

    let body = fixture("gitlab-push.json");
    let headers = [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", SECRET)];
    assert_eq!(server.post("/gitlab", &headers, &body).0, 202);

    let body = fixture("gitea-push.json");
    let signature = hookbus::webhook::signature::sign(SECRET.as_bytes(), &body);
    let headers = [
        ("X-Gitea-Event", "push"),
        ("X-Gitea-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"),
        ("X-Gitea-Signature", &signature["sha256=".len()..]),
    ];
    assert_eq!(server.post("/gitea", &headers, &body).0, 202);

    let pull_request =
        br#"{"action":"opened","repository":{"full_name":"Codertocat/Hello-World"}}"#;
    let headers = github_headers("pull_request", "delivery-pr", pull_request);
    assert_eq!(
        server.post("/github", &pairs(&headers), pull_request).0,
        202
    );

    let messages = pushes.messages();
    let find = |source: &str, refname: &str, change: &str| {
        messages
            .iter()
            .find(|m| {
                m.header("source") == source
                    && m.header("refname") == refname
                    && m.header("change") == change
            })
            .unwrap_or_else(|| panic!("no {source} {change} of {refname} in {messages:#?}"))
    };
    let created = find("github", "refs/heads/master", "create");
    let body = String::from_utf8(created.body.clone()).unwrap();
    assert!(body.starts_with(&format!(
        "repo: Codertocat/Hello-World\noldrev: {}\nnewrev: 6113728f27ae82c7b1a177c8d03f9e96e0adf246\nrefname: refs/heads/master\nreftype: branch\nchange: create\npusher: Codertocat\ncommits: 1\n",
        gitutil::Z40
    )), "{body}");
    assert!(body.contains("\ncommit 6113728f27ae82c7b1a177c8d03f9e96e0adf246\nAuthor: Codertocat <21031067+Codertocat@users.noreply.github.com>\nDate:   Wed May 15 15:19:25 2019 +0000\nFiles: as listed by the forge, without line counts\n\n    Initial commit\n"), "{body}");
    assert!(body.contains(" README.md |"), "{body}");
    assert_eq!(
        created.header("subject"),
        "[Codertocat/Hello-World] refs/heads/master 6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    );
    assert_eq!(
        find("github", "refs/tags/simple-tag", "create").header("reftype"),
        "tag"
    );
    let deleted = find("github", "refs/tags/simple-tag", "delete");
    assert!(String::from_utf8_lossy(&deleted.body).contains("\ncommits: 0\n"));
    let forced = find("github", "refs/heads/master", "update");
    assert!(String::from_utf8_lossy(&forced.body).contains("\nupdate: non-fast-forward\n"));

    let gitlab = find("gitlab", "refs/heads/master", "update");
    assert_eq!(gitlab.header("repo"), "diaspora");
    assert_eq!(gitlab.header("pusher"), "jsmith");
    assert_eq!(gitlab.header("forge-commits"), "2 of 4 listed by the forge");
    let body = String::from_utf8_lossy(&gitlab.body);
    assert!(
        body.contains("\nforge-commits: 2 of 4 listed by the forge\n"),
        "{body}"
    );
    let newest = body
        .find("commit da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
        .unwrap();
    let oldest = body
        .find("commit b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327")
        .unwrap();
    assert!(newest < oldest, "newest first, like git log: {body}");

    let gitea = find("gitea", "refs/heads/develop", "update");
    assert_eq!(gitea.header("repo"), "gitea/webhooks");
    assert_eq!(gitea.header("pusher"), "gitea");
    assert!(String::from_utf8_lossy(&gitea.body).contains("    Webhooks Yay!\n"));

    let forwarded = forwarded.messages();
    assert_eq!(forwarded[0].header("event"), "pull_request");
    assert_eq!(forwarded[0].header("repo"), "Codertocat/Hello-World");
    assert_eq!(forwarded[0].body, pull_request);
    eventually("the outbox to empty", || {
        outbox_messages(dir.path()).is_empty()
    });
}

#[test]
fn a_github_hook_left_at_its_default_form_content_type_is_accepted() {
    let broker = brokers::activemq();
    let text = brokers::unique("topic", "webhook-form");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(&text_route(&text), &broker.config()));
    let pushes = broker.subscribe(&text, 1);

    // As GitHub sends it: `payload=` and the JSON, form-encoded (spaces as
    // `+`), signed over the body as sent.
    let json = fixture("github-push-branch-create.json");
    let mut body = b"payload=".to_vec();
    for &byte in &json {
        match byte {
            b' ' => body.push(b'+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => body.push(byte),
            _ => body.extend(format!("%{byte:02X}").bytes()),
        }
    }
    let mut headers = github_headers("push", "delivery-form", &body);
    headers.push((
        "Content-Type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    let (status, reason) = server.post("/github", &pairs(&headers), &body);
    assert_eq!(status, 202, "{reason}");

    let messages = pushes.messages();
    assert_eq!(messages[0].header("repo"), "Codertocat/Hello-World");
    assert_eq!(messages[0].header("refname"), "refs/heads/master");
    assert!(String::from_utf8_lossy(&messages[0].body).contains("    Initial commit\n"));

    // A form without the field says what to change.
    let body = b"other=1".to_vec();
    let mut headers = github_headers("push", "delivery-form-2", &body);
    headers.push((
        "Content-Type".into(),
        "application/x-www-form-urlencoded; charset=utf-8".into(),
    ));
    let (status, reason) = server.post("/github", &pairs(&headers), &body);
    assert_eq!(status, 400);
    assert!(
        reason.contains("content type to application/json"),
        "{reason}"
    );
}

/// A GitHub push payload for a push the fixture made, listing its commits
/// as GitHub would (oldest first).
fn github_push(
    fixture: &gitutil::Fixture,
    refname: &str,
    before: &str,
    after: &str,
    forced: bool,
) -> Vec<u8> {
    let commits: Vec<Value> = if gitutil::Z40 == after {
        Vec::new()
    } else {
        let range = if before == gitutil::Z40 {
            after.to_string()
        } else {
            format!("{before}..{after}")
        };
        fixture
            .git(&["rev-list", "--reverse", &range])
            .lines()
            .map(|id| {
                let message = fixture.git(&["log", "-1", "--format=%B", id]);
                let date = fixture.git(&["log", "-1", "--format=%aI", id]);
                let person = json!({"name": "Alice Example", "email": "alice@example.com"});
                json!({"id": id, "message": message.trim_end(), "timestamp": date.trim(),
                       "author": person, "committer": person, "added": [], "removed": [], "modified": []})
            })
            .collect()
    };
    serde_json::to_vec(&json!({
        "ref": refname, "before": before, "after": after,
        "created": before == gitutil::Z40, "deleted": after == gitutil::Z40, "forced": forced,
        "repository": {"full_name": "octo/app"}, "pusher": {"name": "alice"},
        "commits": commits,
    }))
    .unwrap()
}

#[test]
fn a_mirror_renders_byte_for_byte_what_the_hook_renders() {
    let fixture = gitutil::Fixture::new();
    let a = fixture.commit("first", &[("a.txt", b"a\n")]);
    fixture.push(&["master"]);
    let mirror = fixture.root.join("mirror.git");
    gitutil::run_ok(gitutil::git(
        &fixture.root,
        &[
            "clone",
            "-q",
            "--mirror",
            fixture.bare.to_str().unwrap(),
            mirror.to_str().unwrap(),
        ],
    ));
    let dir = tempfile::tempdir().unwrap();
    let repos = format!(
        "[[webhook.repo]]\nfull_name = \"octo/app\"\nname = \"app\"\nmirror = \"{}\"\n[[webhook.repo]]\nfull_name = \"octo/gone\"\nname = \"app\"\nmirror = \"/nonexistent/gone.git\"\n",
        mirror.display()
    );
    let server = Server::start(dir.path(), &config(gitutil::TWO_ROUTES, &repos));
    let mut delivery = 0;
    let mut check =
        |refname: &str, before: &str, after: &str, forced: bool, hook: Vec<gitutil::Msg>| {
            let body = github_push(&fixture, refname, before, after, forced);
            delivery += 1;
            let headers = github_headers("push", &format!("mirror-{delivery}"), &body);
            let (status, reason) = server.post("/github", &pairs(&headers), &body);
            assert_eq!(status, 202, "{reason}");
            let stored = outbox_messages(dir.path());
            std::fs::remove_dir_all(dir.path().join("outbox")).unwrap();
            assert_eq!(stored.len(), hook.len(), "{refname} {before}..{after}");
            for (hook, webhook) in hook.iter().zip(&stored) {
                assert_eq!(webhook.destination, hook.destination);
                assert_eq!(
                    String::from_utf8_lossy(&webhook.body),
                    hook.body,
                    "{refname}"
                );
                let mut headers: Vec<(String, String)> = webhook
                    .headers
                    .iter()
                    .filter(|(k, _)| k != "source")
                    .cloned()
                    .collect();
                let mut expected: Vec<(String, String)> = hook
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                headers.sort();
                expected.sort();
                assert_eq!(headers, expected);
                assert_eq!(webhook.header("source"), Some("github"));
            }
        };
    // Fast-forward of two commits.
    fixture.commit("second", &[("a.txt", b"a\nb\n")]);
    let c = fixture.commit("third", &[("b.txt", b"b\n")]);
    check(
        "refs/heads/master",
        &a,
        &c,
        false,
        fixture.push(&["master"]),
    );
    // A new branch.
    fixture.git(&["checkout", "-q", "-b", "feature"]);
    let d = fixture.commit("feature work", &[("c.txt", b"c\n")]);
    check(
        "refs/heads/feature",
        gitutil::Z40,
        &d,
        false,
        fixture.push(&["feature"]),
    );
    // A forced push rewriting master.
    fixture.git(&["checkout", "-q", "master"]);
    fixture.git(&["reset", "-q", "--hard", &a]);
    let e = fixture.commit("rewritten", &[("a.txt", b"A\n")]);
    check(
        "refs/heads/master",
        &c,
        &e,
        true,
        fixture.push(&["-f", "master"]),
    );
    // Deleting the branch.
    check(
        "refs/heads/feature",
        &d,
        gitutil::Z40,
        false,
        fixture.push(&[":feature"]),
    );

    // A mirror that cannot be fetched: the payload, and the message says so.
    let body = github_push(&fixture, "refs/heads/master", &c, &e, true).replace_octo("octo/gone");
    let headers = github_headers("push", "gone-1", &body);
    assert_eq!(server.post("/github", &pairs(&headers), &body).0, 202);
    let stored = outbox_messages(dir.path());
    let text = String::from_utf8_lossy(&stored[0].body);
    assert!(
        text.contains("\nmirror: mirror /nonexistent/gone.git: git fetch failed"),
        "{text}"
    );
    assert!(
        text.contains("; rendered from the forge's payload\n"),
        "{text}"
    );
}

trait ReplaceOcto {
    fn replace_octo(self, name: &str) -> Vec<u8>;
}

impl ReplaceOcto for Vec<u8> {
    fn replace_octo(self, name: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("octo/app", name)
            .into_bytes()
    }
}

#[test]
fn a_redelivery_is_emitted_once_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config(&text_route("/topic/t"), ""));
    let body = fixture("github-push-branch-create.json");
    let headers = github_headers("push", "9f1e6b00-0000-4000-8000-000000000001", &body);
    let (status, reason) = server.post("/github", &pairs(&headers), &body);
    assert_eq!(
        (status, reason.ends_with("1 message(s) queued")),
        (202, true),
        "{reason}"
    );
    let (status, reason) = server.post("/github", &pairs(&headers), &body);
    assert_eq!(status, 202);
    assert!(reason.contains("was emitted before"), "{reason}");
    server.restart();
    let (status, reason) = server.post("/github", &pairs(&headers), &body);
    assert_eq!(status, 202);
    assert!(reason.contains("was emitted before"), "{reason}");
    assert_eq!(outbox_messages(dir.path()).len(), 1);
    // Another delivery of the same push is a new delivery.
    let headers = github_headers("push", "9f1e6b00-0000-4000-8000-000000000002", &body);
    assert_eq!(server.post("/github", &pairs(&headers), &body).0, 202);
    assert_eq!(outbox_messages(dir.path()).len(), 2);
}

/// Issue 22 item 13: a captured signed push sent again under a new delivery
/// id is a new delivery to the webhook (it cannot tell a replay from a second
/// delivery of the same push), so it is emitted again; but the message is the
/// same to the byte, with the same `hookbus-id`, so every consumer drops it as
/// a duplicate. This pins that nothing per delivery (id, time of arrival)
/// ever enters a message.
#[test]
fn a_replay_under_a_new_delivery_id_carries_the_first_ones_hookbus_id() {
    let broker = brokers::activemq();
    let topic = brokers::unique("topic", "webhook-replay");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(&text_route(&topic), &broker.config()));
    let received = broker.drain(
        &topic,
        6,
        Duration::from_millis(1500),
        Duration::from_secs(60),
    );
    let github = fixture("github-push-branch-create.json");
    let gitlab = fixture("gitlab-push.json");
    let gitea = fixture("gitea-push.json");
    let gitea_signature = hookbus::webhook::signature::sign(SECRET.as_bytes(), &gitea);
    for (attempt, delivery) in [
        "a1b2c3d4-0000-4000-8000-000000000001",
        "a1b2c3d4-0000-4000-8000-000000000002",
    ]
    .iter()
    .enumerate()
    {
        let headers = github_headers("push", delivery, &github);
        let (status, reason) = server.post("/github", &pairs(&headers), &github);
        assert_eq!(status, 202, "{reason}");
        assert!(reason.ends_with("queued"), "attempt {attempt}: {reason}");
        let headers = [
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", SECRET),
            ("X-Gitlab-Event-UUID", delivery),
        ];
        let (status, reason) = server.post("/gitlab", &headers, &gitlab);
        assert!(status == 202 && reason.ends_with("queued"), "{reason}");
        let headers = [
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Delivery", delivery),
            ("X-Gitea-Signature", &gitea_signature["sha256=".len()..]),
        ];
        let (status, reason) = server.post("/gitea", &headers, &gitea);
        assert!(status == 202 && reason.ends_with("queued"), "{reason}");
        if attempt == 0 {
            // The replay comes later, as a captured request would.
            std::thread::sleep(Duration::from_millis(1100));
        }
    }
    let messages = received.messages();
    assert_eq!(messages.len(), 6, "{messages:#?}");
    for source in ["github", "gitlab", "gitea"] {
        let from: Vec<_> = messages
            .iter()
            .filter(|m| m.header("source") == source)
            .collect();
        assert_eq!(from.len(), 2, "{source}: {messages:#?}");
        assert_eq!(
            from[0].header("hookbus-id"),
            from[1].header("hookbus-id"),
            "{source}"
        );
        assert_eq!(from[0].body, from[1].body, "{source}");
    }
    let ids: std::collections::HashSet<&str> =
        messages.iter().map(|m| m.header("hookbus-id")).collect();
    assert_eq!(ids.len(), 3, "one id per push: {messages:#?}");
}

#[test]
fn bad_requests_get_their_status_and_one_log_line_each_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "max_body_bytes = 16384\n";
    let mut server = Server::start(
        dir.path(),
        &config(&text_route("/topic/t"), "").replace(
            "listen = \"{listen}\"\n",
            &format!("listen = \"{{listen}}\"\n{extra}"),
        ),
    );
    let big = vec![b' '; 20_000];
    let headers = github_headers("push", "big", &big);
    assert_eq!(server.post("/github", &pairs(&headers), &big).0, 413);
    let headers = github_headers("push", "bad-json", b"{\"ref\":");
    let (status, reason) = server.post("/github", &pairs(&headers), b"{\"ref\":");
    assert_eq!(status, 400);
    assert!(
        reason.starts_with("malformed push: not a push payload: EOF"),
        "{reason}"
    );
    assert!(!reason.contains('\n'));
    let body = fixture("github-push-branch-create.json");
    assert_eq!(
        server
            .post("/github", &[("X-GitHub-Event", "push")], &body)
            .0,
        401
    );
    assert_eq!(
        server
            .post(
                "/gitlab",
                &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "guess")],
                &body
            )
            .0,
        401
    );
    assert_eq!(server.post("/nowhere", &[], &body).0, 404);
    let headers = github_headers("issues", "issue-1", b"{}");
    let (status, reason) = server.post("/github", &pairs(&headers), b"{}");
    assert_eq!(status, 202);
    assert!(reason.contains("ignored"), "{reason}");
    assert!(
        outbox_messages(dir.path()).is_empty(),
        "nothing stored for bad requests"
    );
    // A sender that stalls in the middle of its body holds up nobody else.
    let mut stalled = std::net::TcpStream::connect(&server.address).unwrap();
    std::io::Write::write_all(
        &mut stalled,
        b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"ref\"",
    )
    .unwrap();
    let headers = github_headers("push", "good", &body);
    assert_eq!(server.post("/github", &pairs(&headers), &body).0, 202);
    let log = server.log();
    for status in [
        "413 POST /github",
        "400 POST /github",
        "401 POST /github",
        "401 POST /gitlab",
        "404 POST /nowhere",
        "202 POST /github",
    ] {
        assert!(
            log.contains(&format!("hookbus webhook: {status} ")),
            "no {status:?} line in {log}"
        );
    }
    assert_eq!(
        log.lines().filter(|line| line.contains(" POST /")).count(),
        7,
        "{log}"
    );
    // Once it gives up, its request is answered and logged like any other.
    drop(stalled);
    eventually("the stalled request's line", || {
        server
            .log()
            .lines()
            .filter(|line| line.contains(" POST /"))
            .count()
            == 8
    });
    let status = server.stop();
    assert!(status.success(), "{status}: {}", server.log());
    assert!(
        server
            .log()
            .trim_end()
            .ends_with("hookbus webhook: stopped"),
        "{}",
        server.log()
    );
}

/// A forge push names its repository in the payload: a name holding a control
/// character (which in a text body could pass for header lines of its own) is
/// refused with 400 and a reason, as a hook refuses it; nothing is stored.
#[test]
fn a_forge_push_with_a_spoofing_repository_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config(&text_route("/topic/t"), ""));
    let mut payload: Value =
        serde_json::from_slice(&fixture("github-push-branch-create.json")).unwrap();
    payload["repository"]["full_name"] = json!("evil\nrefname: refs/heads/main");
    let body = serde_json::to_vec(&payload).unwrap();
    let headers = github_headers("push", "spoof", &body);
    let (status, reason) = server.post("/github", &pairs(&headers), &body);
    assert_eq!(status, 400, "{reason}");
    assert!(
        reason.contains("control character '\\n'") && reason.contains("[[webhook.repo]]"),
        "{reason}"
    );
    assert!(!reason.contains('\n'), "{reason}");
    assert!(outbox_messages(dir.path()).is_empty());
    // The same push under a plain name goes through.
    payload["repository"]["full_name"] = json!("plain/app");
    let body = serde_json::to_vec(&payload).unwrap();
    let headers = github_headers("push", "plain", &body);
    assert_eq!(server.post("/github", &pairs(&headers), &body).0, 202);
    assert_eq!(outbox_messages(dir.path()).len(), 1);
    assert!(server.stop().success(), "{}", server.log());
}

/// The webhook reads its own `[webhook]` section: a typo in it is a config
/// error of `hookbus webhook` and of `hookbus check`, naming the section,
/// and hooks, which never read it, still run.
#[test]
fn a_typo_in_the_webhook_section_is_named_by_check_and_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookbus.toml");
    std::fs::write(
        &file,
        "[webhook]\nlisen = \"127.0.0.1:1\"\n[[webhook.endpoint]]\npath = \"/g\"\nkind = \"github\"\ninsecure_no_signature = true\n",
    )
    .unwrap();
    for command in ["check", "webhook"] {
        let ran = std::process::Command::new(env!("CARGO_BIN_EXE_hookbus"))
            .arg("--config")
            .arg(&file)
            .arg(command)
            .env("HOOKBUS_OUTBOX", dir.path().join("outbox"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&ran.stderr);
        assert_eq!(ran.status.code(), Some(3), "{command}: {stderr}");
        assert!(
            stderr.contains("[webhook]") && stderr.contains("unknown field `lisen`"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn with_the_broker_down_a_push_gets_202_and_waits_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let broker = format!(
        "[broker]\nurl = \"stomp://{}\"\ndeadline_ms = 300\n",
        brokers::dead_address()
    );
    let server = Server::start(dir.path(), &config(&text_route("/topic/t"), &broker));
    let body = fixture("github-push-branch-create.json");
    let headers = github_headers("push", "down-1", &body);
    let (status, reason) = server.post("/github", &pairs(&headers), &body);
    assert_eq!(status, 202, "{reason}");
    eventually("a failed delivery", || {
        server.log().contains("the rest stays queued")
    });
    let waiting = outbox_messages(dir.path());
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].header("refname"), Some("refs/heads/master"));
    assert_eq!(waiting[0].header("source"), Some("github"));
}
