//! Publishing to real brokers (started by scripts/test), checked with an
//! independent subscriber: destinations, receipts, refusals, failover, TLS,
//! escaping, byte-exact bodies, the CLI and a real push end to end.

mod brokers;
mod gitutil;

use brokers::{
    activemq, activemq_tls, both, dead_address, rabbitmq, test_ca, unique, Broker, LOGIN, PASSCODE,
};
use hookbus::bus::{PublishError, Publisher};
use hookbus::config::Config;
use hookbus::deliver::Message;
use std::process::{Command, Output};

fn publisher(config: &str) -> Publisher {
    let config = Config::parse(config).unwrap_or_else(|e| panic!("{e:#}: {config}"));
    config.publisher(|_| {}).unwrap().expect("a [broker] table")
}

fn message(destination: &str, subject: &str, body: &[u8]) -> Message {
    Message::compose(destination, Some(subject), &[], body.to_vec()).unwrap()
}

fn publish_error(publisher: &Publisher, messages: &[Message]) -> PublishError {
    publisher
        .publish(messages)
        .expect_err("the publish should have failed")
}

/// A `[broker]` table for `broker` with another URL and extra lines.
fn config_with_url(broker: &Broker, url: &str, extra: &str) -> String {
    let base = broker.config();
    let base = base.replace(&format!("stomp://{}", broker.address), url);
    format!("{base}{extra}\n")
}

/// Runs the hookbus binary with a config file and stdin.
fn hookbus(config: &str, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookbus.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(gitutil::HOOKBUS);
    cmd.arg("--config")
        .arg(&path)
        .args(args)
        .env_remove("HOOKBUS_PASSCODE")
        .env("HOOKBUS_OUTBOX", dir.path().join("outbox"))
        .envs(env.iter().copied());
    gitutil::with_stdin(cmd, stdin)
}

/// Makes a config holding a passcode readable by its owner only, as it should be.
fn private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn topics_and_queues_are_receipted_and_arrive_on_both_brokers() {
    for broker in both() {
        let topic = unique("topic", "plain");
        let queue = unique("queue", "plain");
        let on_topic = broker.subscribe(&topic, 1);
        let on_queue = broker.subscribe(&queue, 2);
        let messages = [
            message(&topic, "to the topic", b"one"),
            message(&queue, "to the queue", b"two"),
            message(&queue, "to the queue again", b"three"),
        ];
        publisher(&broker.config())
            .publish(&messages)
            .unwrap_or_else(|e| panic!("{}: {e}", broker.name));
        let got = on_topic.messages();
        assert_eq!(got[0].body, b"one", "{}", broker.name);
        assert_eq!(got[0].header("subject"), "to the topic");
        assert_eq!(got[0].header("persistent"), "true");
        assert_eq!(
            got[0].header("hookbus-id"),
            messages[0].header("hookbus-id").unwrap()
        );
        let got = on_queue.messages();
        let bodies: Vec<&[u8]> = got.iter().map(|m| m.body.as_slice()).collect();
        assert_eq!(bodies, [&b"two"[..], b"three"], "{}", broker.name);
    }
}

#[test]
fn header_values_with_newline_colon_and_backslash_arrive_intact() {
    let subject = "first line\nsecond: line with C:\\path\\ and ü";
    for broker in both() {
        let topic = unique("topic", "escape");
        let subscription = broker.subscribe(&topic, 1);
        let mut sent = message(&topic, subject, b"x");
        sent.headers
            .push(("x-note".into(), "a:b\\c\nreceipt:injected".into()));
        publisher(&broker.config()).publish(&[sent]).unwrap();
        let got = subscription.messages();
        assert_eq!(got[0].header("subject"), subject, "{}", broker.name);
        assert_eq!(got[0].header("x-note"), "a:b\\c\nreceipt:injected");
    }
}

#[test]
fn bodies_with_nul_and_invalid_utf8_arrive_byte_exact() {
    let body: Vec<u8> = [&b"start\0middle"[..], &[0xff, 0xfe, 0xc3], b"\0\n\0end"].concat();
    for broker in both() {
        let queue = unique("queue", "binary");
        let subscription = broker.subscribe(&queue, 1);
        publisher(&broker.config())
            .publish(&[message(&queue, "binary", &body)])
            .unwrap();
        let got = &subscription.messages()[0];
        assert_eq!(got.body, body, "{}", broker.name);
        assert_eq!(got.header("content-type"), "application/octet-stream");
    }
}

#[test]
fn activemq_refuses_a_send_the_user_may_not_make() {
    let broker = activemq();
    let config = broker.reader_config();
    let queue = unique("queue", "forbidden");
    let error = publish_error(&publisher(&config), &[message(&queue, "no", b"x")]);
    assert_eq!(error.delivered(), 0);
    assert!(error.permanent, "{error}");
    assert!(error.to_string().contains("not authorized"), "{error}");
}

#[test]
fn rabbitmq_error_and_close_fails_the_publish() {
    let broker = rabbitmq();
    let messages = [message(
        "/exchange/hookbus-no-such-exchange/key",
        "refused",
        b"x",
    )];
    let error = publish_error(&publisher(&broker.config()), &messages);
    assert_eq!(error.delivered(), 0, "{error}");
    assert!(error.permanent, "{error}");
    let shown = error.to_string();
    assert!(
        shown.contains("refused a message") && shown.contains("no exchange"),
        "{shown}"
    );
}

#[test]
fn a_wrong_password_fails_without_failing_over() {
    for broker in both() {
        let url = format!(
            "failover:(stomp://hookbus:wrong@{0},stomp://{0})",
            broker.address
        );
        let config = config_with_url(&broker, &url, "");
        let error = publish_error(&publisher(&config), &[message("/queue/x", "no", b"x")]);
        assert!(error.permanent, "{}: {error}", broker.name);
        assert_eq!(error.attempts.len(), 1, "{}: {error}", broker.name);
        assert!(
            error.to_string().contains("refused the connection"),
            "{error}"
        );
        assert!(!error.to_string().contains("wrong"), "{error}");
    }
}

#[test]
fn the_second_broker_takes_over_when_the_first_is_down() {
    for broker in both() {
        let url = format!(
            "failover://(stomp://{},stomp://{})?initialReconnectDelay=5",
            dead_address(),
            broker.address
        );
        let topic = unique("topic", "failover");
        let subscription = broker.subscribe(&topic, 1);
        publisher(&config_with_url(&broker, &url, ""))
            .publish(&[message(&topic, "via the second", b"ok")])
            .unwrap_or_else(|e| panic!("{}: {e}", broker.name));
        assert_eq!(subscription.messages()[0].body, b"ok");
    }
}

#[test]
fn both_brokers_down_is_a_clear_transient_error_within_the_deadline() {
    let (first, second) = (dead_address(), dead_address());
    let url = format!("failover://(stomp://{first},stomp://{second})?MaxReconnectAttempts=0");
    let config = config_with_url(&activemq(), &url, "deadline_ms = 300");
    let error = publish_error(&publisher(&config), &[message("/queue/x", "x", b"x")]);
    assert!(!error.permanent);
    assert_eq!(error.delivered(), 0);
    let shown = error.to_string();
    for host in [first, second] {
        assert!(shown.contains(&format!("stomp://{host}")), "{shown}");
    }
    assert!(shown.contains("transient"), "{shown}");
}

#[test]
fn a_passcode_with_backslash_and_colon_works_from_a_file_and_the_environment() {
    for broker in both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passcode");
        std::fs::write(&file, format!("{}\n", brokers::PASSCODE)).unwrap();
        let without_literal = broker
            .config()
            .replace(&format!("passcode = '{}'", brokers::PASSCODE), "");
        let from_file = format!("{without_literal}passcode_file = {file:?}\n");
        let queue = unique("queue", "passcode");
        let subscription = broker.subscribe(&queue, 2);
        let send = ["send", "--destination", queue.as_str()];
        let out = hookbus(&from_file, &send, b"file", &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let env = [("HOOKBUS_PASSCODE", brokers::PASSCODE)];
        let out = hookbus(&without_literal, &send, b"env", &env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let bodies: Vec<Vec<u8>> = subscription
            .messages()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(
            bodies,
            [b"file".to_vec(), b"env".to_vec()],
            "{}",
            broker.name
        );
    }
}

#[test]
fn rabbitmq_drops_an_unescaped_backslash_passcode() {
    // Why escape_connect_headers defaults to true: RabbitMQ unescapes CONNECT.
    let broker = rabbitmq();
    let config = format!("{}escape_connect_headers = false\n", broker.config());
    let error = publish_error(&publisher(&config), &[message("/queue/x", "x", b"x")]);
    assert!(
        error
            .to_string()
            .contains("closed by the broker waiting for CONNECTED"),
        "{error}"
    );
}

#[test]
fn tls_trusts_the_configured_ca_and_verifies_the_host_name() {
    let broker = activemq();
    let tls = activemq_tls();
    let port = tls.rsplit_once(':').unwrap().1;
    let ca = format!("ca_file = {:?}", test_ca());
    let topic = unique("topic", "tls");
    let subscription = broker.subscribe(&topic, 2);
    publisher(&config_with_url(
        &broker,
        &format!("stomp+ssl://{tls}"),
        &ca,
    ))
    .publish(&[message(&topic, "over TLS", b"secret")])
    .unwrap();

    let by_ip = format!("stomp+ssl://127.0.0.1:{port}");
    let error = publish_error(
        &publisher(&config_with_url(&broker, &by_ip, &ca)),
        &[message(&topic, "wrong name", b"x")],
    );
    assert!(error.to_string().contains("not valid for name"), "{error}");
    let error = publish_error(
        &publisher(&config_with_url(&broker, &format!("stomp+ssl://{tls}"), "")),
        &[message(&topic, "system roots", b"x")],
    );
    assert!(error.to_string().contains("TLS"), "{error}");

    let unchecked = config_with_url(
        &broker,
        &by_ip,
        &format!("{ca}\ntls_verify_hostname = false"),
    );
    let out = hookbus(
        &unchecked,
        &["send", "--destination", &topic],
        b"unchecked",
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("WARNING"),
        "{}",
        text(&out.stderr)
    );
    let bodies: Vec<Vec<u8>> = subscription
        .messages()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, [b"secret".to_vec(), b"unchecked".to_vec()]);
}

#[test]
fn send_publishes_stdin_with_its_headers_and_dry_run_shows_no_passcode() {
    for broker in both() {
        let topic = unique("topic", "send");
        let subscription = broker.subscribe(&topic, 1);
        let args = [
            "send",
            "--destination",
            &topic,
            "--header",
            "build=42",
            "--header",
            "result=a=b",
            "--subject",
            "Build 42: ok",
        ];
        let out = hookbus(&broker.config(), &args, b"log\0bytes", &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let got = subscription.messages();
        assert_eq!(got[0].body, b"log\0bytes");
        assert_eq!(got[0].header("build"), "42");
        assert_eq!(got[0].header("result"), "a=b");
        assert_eq!(got[0].header("subject"), "Build 42: ok");
        assert_eq!(got[0].header("content-type"), "text/plain; charset=utf-8");

        let mut dry = args.to_vec();
        dry.push("--dry-run");
        let out = hookbus(&broker.config(), &dry, b"x", &[]);
        assert!(out.status.success());
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            all.contains("Build 42") && !all.contains("hb\\pass"),
            "{all}"
        );
    }
}

#[test]
fn send_refuses_headers_the_publisher_owns() {
    let out = hookbus(
        "",
        &["send", "--destination", "/queue/x", "--header", "receipt=1"],
        b"x",
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("\"receipt\" cannot be set"));
}

#[test]
fn check_reports_each_broker_and_fails_when_none_is_usable() {
    let (amq, rabbit) = (activemq(), rabbitmq());
    let dead = dead_address();
    let url = format!(
        "failover:(stomp://{dead},stomp://{},stomp://{})",
        amq.address, rabbit.address
    );
    let out = hookbus(&config_with_url(&rabbit, &url, ""), &["check"], b"", &[]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    let lines: Vec<&str> = report.lines().collect();
    assert!(
        lines[0].contains(&dead) && lines[0].contains("unreachable"),
        "{report}"
    );
    assert!(
        lines[1].contains("authenticated, STOMP 1.2 (ActiveMQ"),
        "{report}"
    );
    assert!(
        lines[2].contains("authenticated, STOMP 1.2 (RabbitMQ"),
        "{report}"
    );
    assert!(lines[1].contains("round trip"), "{report}");

    let down = config_with_url(&rabbit, &format!("stomp://{dead}"), "");
    let out = hookbus(&down, &["check"], b"", &[]);
    assert_eq!(out.status.code(), Some(6));
    assert!(
        text(&out.stderr).contains("no broker"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_push_reaches_both_brokers_as_the_routes_say() {
    for broker in both() {
        let text_topic = unique("topic", "push-text");
        let json_queue = unique("queue", "push-json");
        let config = format!(
            "{}\n[[route]]\ndestination = \"{text_topic}\"\nformat = \"text\"\n\n[[route]]\ndestination = \"{json_queue}\"\nformat = \"json\"\nrefs = [\"refs/heads/*\"]\n",
            broker.config()
        );
        let fixture = gitutil::Fixture::publishing(&config);
        private(&fixture.config);
        // A newline in a name is refused (it could spoof the text body's first
        // lines); header escaping of one is tested above.
        let repo_name = "team:app\\x";
        gitutil::run_ok(gitutil::git(
            &fixture.bare,
            &["config", "hookbus.name", repo_name],
        ));
        let on_text = broker.subscribe(&text_topic, 2);
        let on_json = broker.subscribe(&json_queue, 1);
        let commit = fixture.commit("Add readme", &[("README", b"hello\n")]);
        fixture.git(&["tag", "v1"]);
        fixture.push(&["master", "v1"]);
        assert_eq!(fixture.hook_stderr(), "", "{}", broker.name);

        let texts = on_text.messages();
        let mut refnames: Vec<&str> = texts.iter().map(|m| m.header("refname")).collect();
        refnames.sort();
        assert_eq!(refnames, ["refs/heads/master", "refs/tags/v1"]);
        for got in &texts {
            assert_eq!(got.header("repo"), repo_name, "{}", broker.name);
            assert!(got.header("subject").contains(repo_name), "{}", broker.name);
            assert!(text(&got.body).starts_with("repo: "));
        }
        let json = &on_json.messages()[0];
        assert_eq!(json.header("refname"), "refs/heads/master");
        assert_eq!(json.header("newrev"), commit);
        let body: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
        assert_eq!(body["commits"][0]["id"], commit.as_str());
    }
}

#[test]
fn an_unreachable_broker_keeps_the_messages_in_the_outbox() {
    let url = format!("stomp://{}", dead_address());
    let outbox = tempfile::tempdir().unwrap();
    let config = format!(
        "{}deadline_ms = 300\n[outbox]\ndir = {:?}\n{}",
        config_with_url(&activemq(), &url, ""),
        outbox.path(),
        gitutil::TWO_ROUTES
    );
    let fixture = gitutil::Fixture::publishing(&config);
    fixture.commit("one", &[("a", b"a\n")]);
    fixture.push(&["master"]);
    let stderr = fixture.hook_stderr();
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("world-readable"))
        .collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(
        notes[0].starts_with(&format!(
            "hookbus: 2 message(s) queued in {} (",
            outbox.path().display()
        )) && notes[0].ends_with("the next push or `hookbus flush` delivers them"),
        "{stderr}"
    );
    assert!(!stderr.contains(brokers::PASSCODE), "{stderr}");
    let listed = fixture.hookbus(&["outbox", "list"], "");
    assert_eq!(text(&listed.stdout).lines().count(), 2);

    let unsaved = config.replace(&format!("{:?}", outbox.path()), "\"/dev/null/outbox\"");
    std::fs::write(&fixture.config, unsaved).unwrap();
    let line = format!(
        "{} {} refs/heads/master\n",
        "0".repeat(40),
        fixture.rev("HEAD")
    );
    let out = fixture.hookbus(&["post-receive"], &line);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot save 2 message(s) in outbox /dev/null/outbox")
            && stderr.contains("publishing them directly failed too")
            && stderr.contains("not delivered: /topic/"),
        "{stderr}"
    );
}

#[test]
fn a_message_the_broker_refuses_becomes_a_dead_letter_and_the_next_still_arrives() {
    // RabbitMQ answers a SEND to a missing exchange with ERROR and closes: the
    // push's first message is refused, its second must not be held back.
    let broker = rabbitmq();
    let good = unique("queue", "after-refused");
    let refused = unique("exchange", "missing") + "/key";
    let outbox = tempfile::tempdir().unwrap();
    let config = format!(
        "{}[outbox]\ndir = {:?}\n[[route]]\ndestination = {refused:?}\nformat = \"summary\"\n[[route]]\ndestination = {good:?}\nformat = \"summary\"\n",
        broker.config(),
        outbox.path(),
    );
    let fixture = gitutil::Fixture::publishing(&config);
    private(&fixture.config);
    let subscription = broker.subscribe(&good, 1);
    let commit = fixture.commit("one", &[("a", b"a\n")]);
    fixture.push(&["master"]);
    let got = subscription.messages();
    assert!(got[0].header("subject").contains(&commit));
    let stderr = fixture.hook_stderr();
    assert!(
        stderr.contains("1 message(s) refused by the broker for good, kept in"),
        "{stderr}"
    );
    let listed = fixture.hookbus(&["outbox", "list"], "");
    let listing = text(&listed.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "{listing}");
    assert!(lines[0].starts_with("dead/"), "{listing}");
    assert!(lines[0].contains(&refused), "{listing}");
    assert!(
        lines[0].contains("not_found"),
        "the broker's reason: {listing}"
    );
    // Nothing is left pending, so a flush has nothing to do and succeeds.
    let flushed = fixture.hookbus(&["flush"], "");
    assert_eq!(flushed.status.code(), Some(0), "{}", text(&flushed.stderr));
}

#[test]
fn an_imported_legacy_config_passes_check_against_a_real_broker() {
    // The seed's example file, pointed at a dead port and the test ActiveMQ.
    let amq = activemq();
    let dead = dead_address();
    let seed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/legacy/stomp-postrec.yaml"),
    )
    .unwrap()
    .replace("gituser:gitpass", &format!("{LOGIN}:seedpass"))
    .replace("amq1.example.com:61613", &dead)
    .replace("amq2.example.com:61613", &amq.address);
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("stomp-postrec.yaml");
    std::fs::write(&yaml, seed).unwrap();
    let out = Command::new(gitutil::HOOKBUS)
        .args(["config", "import-legacy"])
        .arg(&yaml)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let imported = text(&out.stdout);
    assert!(!imported.contains("seedpass"), "{imported}");

    // What the comment tells the admin to do: put the passcode in the file.
    let passcode = dir.path().join("passcode");
    std::fs::write(&passcode, PASSCODE).unwrap();
    private(&passcode);
    let config = imported.replace(
        "passcode_file = \"/etc/hookbus/passcode\"",
        &format!("passcode_file = {:?}", passcode.display().to_string()),
    );
    assert_ne!(config, imported, "the import names a passcode file");
    let out = hookbus(&config, &["check"], b"", &[]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    assert!(
        report.lines().next().unwrap().contains("unreachable"),
        "{report}"
    );
    assert!(
        report.contains("authenticated, STOMP 1.2 (ActiveMQ"),
        "{report}"
    );
}

#[test]
fn base64_decodes_what_python_encodes() {
    assert_eq!(brokers::base64_decode("YQBi/w=="), b"a\0b\xff");
    assert_eq!(brokers::base64_decode("YWJj"), b"abc");
    assert_eq!(brokers::base64_decode(""), b"");
}
