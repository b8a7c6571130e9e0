//! `[listen] metrics` end to end: the real daemon, a real ActiveMQ, a real
//! server repository; `/metrics` read by the prometheus_client package's own
//! parser after a known sequence of messages, `/healthz` failing until the
//! first pass over the mirrors has finished (one mirror's clone hangs on a git
//! server the test holds open, then lets go).

mod brokers;
mod gitutil;
mod listenutil;

use listenutil::{
    http_get, listen_table, mirror_table, parse_metrics, wait_until, Listener, Server, FOLLOW_CAP,
};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// A git:// server that accepts one connection and holds it, saying nothing,
/// until told to let go (then the clone fails at once).
fn stuck_git_server() -> (String, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("git://{}/stuck.git", listener.local_addr().unwrap());
    let (accepted, on_accept) = mpsc::channel();
    let (release, on_release) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (connection, _) = listener.accept().unwrap();
        let _ = accepted.send(());
        let _ = on_release.recv_timeout(Duration::from_secs(60));
        drop(connection);
    });
    (url, on_accept, release)
}

fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {samples:#?}"))
}

fn checkout_at(d: &Path, commit: &str) -> bool {
    std::fs::read_link(d.join("www")).is_ok_and(|link| link.ends_with(commit))
}

#[test]
fn metrics_count_a_known_sequence_and_healthz_waits_for_the_first_pass() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let (stuck_url, on_accept, release) = stuck_git_server();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let checkout = d.join("checkout");
    let stuck = d.join("stuck");
    let config = format!(
        "{}{}{}{}",
        broker.config(),
        listen_table(d, &server.topic, "metrics = \"127.0.0.1:0\""),
        mirror_table(
            "app",
            &checkout,
            &server.url(),
            "checkout",
            Some(&d.join("www"))
        ),
        mirror_table("other", &stuck, &stuck_url, "fetch", None),
    );
    let mut listener = Listener::start(d, &config);
    let address = listener.metrics_address();
    on_accept
        .recv_timeout(FOLLOW_CAP)
        .expect("the stuck mirror's clone never connected");
    assert!(wait_until(FOLLOW_CAP, || checkout_at(d, &first)));

    let (status, body) = http_get(&address, "/healthz");
    assert_eq!(status, 503, "before the first pass: {body}");
    let before = parse_metrics(&http_get(&address, "/metrics").1);
    // Each mirror is named after its repo, the only one following it.
    let stuck_name = "other".to_string();
    let state = |mirror: &str, state: &str| {
        format!("hookbus_mirror_state{{mirror=\"{mirror}\",state=\"{state}\"}}")
    };
    assert_eq!(sample(&before, "hookbus_first_pass_done{}"), 0.0);

    release.send(()).unwrap();
    let healthy = wait_until(FOLLOW_CAP, || http_get(&address, "/healthz").0 == 200);
    assert!(healthy, "/healthz never passed:\n{}", listener.log());
    listener.wait_log("connected to", 1);

    // Two pushes, each followed before the next; one message twice (the
    // second a duplicate); one for a repository no mirror wants.
    let mut newest = first.clone();
    for round in 2..=3 {
        let last = server.push_files(
            "master",
            "more",
            &[("a.txt", format!("{round}\n").as_bytes())],
        );
        assert!(
            wait_until(FOLLOW_CAP, || checkout_at(d, &last)),
            "{}",
            listener.log()
        );
        newest = last;
    }
    let twice = vec![("repo", "app"), ("hookbus-id", "metrics-test-twice")];
    broker.publish_independently(&server.topic, &[(twice.clone(), "x")]);
    // Its work done (and its id remembered): one line each for the start's
    // two polls, the two pushes, and this message.
    listener.wait_log("message(s)", 5);
    broker.publish_independently(&server.topic, &[(twice, "x")]);
    broker.publish_independently(&server.topic, &[(vec![("repo", "nobody")], "x")]);
    let counted = wait_until(FOLLOW_CAP, || {
        let samples = parse_metrics(&http_get(&address, "/metrics").1);
        samples.get("hookbus_messages_acknowledged_total{}") == Some(&5.0)
    });
    assert!(counted, "{}", listener.log());

    let samples = parse_metrics(&http_get(&address, "/metrics").1);
    let name = "app".to_string();
    let by_mirror = |metric: &str, mirror: &str| format!("{metric}{{mirror=\"{mirror}\"}}");
    for (key, value) in [
        ("hookbus_messages_received_total{}".to_string(), 5.0),
        ("hookbus_messages_acknowledged_total{}".to_string(), 5.0),
        ("hookbus_messages_duplicate_total{}".to_string(), 1.0),
        ("hookbus_messages_ignored_total{}".to_string(), 1.0),
        ("hookbus_broker_connected{}".to_string(), 1.0),
        ("hookbus_broker_reconnects_total{}".to_string(), 0.0),
        // The start's poll, two pushes, the message sent twice.
        (by_mirror("hookbus_git_runs_total", &name), 4.0),
        (by_mirror("hookbus_git_failures_total", &name), 0.0),
        (by_mirror("hookbus_git_runs_total", &stuck_name), 1.0),
        (by_mirror("hookbus_git_failures_total", &stuck_name), 1.0),
        // The three messages the checkout answered.
        (
            by_mirror("hookbus_push_to_mirror_seconds_count", &name),
            3.0,
        ),
        (state(&name, "OK"), 1.0),
        (state(&name, "BROKEN"), 0.0),
        ("hookbus_first_pass_done{}".to_string(), 1.0),
        (state(&stuck_name, "BROKEN"), 1.0),
    ] {
        assert_eq!(sample(&samples, &key), value, "{key}");
    }
    // One info series per mirror, carrying its commit: the series of the
    // commits it published before are gone.
    let infos = |samples: &std::collections::BTreeMap<String, f64>| -> Vec<String> {
        let mine = format!("mirror=\"{name}\"");
        (samples.keys())
            .filter(|key| key.starts_with("hookbus_mirror_info{") && key.contains(&mine))
            .cloned()
            .collect()
    };
    let info =
        |commit: &str| format!("hookbus_mirror_info{{commit=\"{commit}\",mirror=\"{name}\"}}");
    assert_eq!(infos(&samples), [info(&newest)], "{samples:?}");
    assert_eq!(sample(&samples, &info(&newest)), 1.0);
    let changed = by_mirror("hookbus_mirror_state_changed_timestamp_seconds", &name);
    assert!(sample(&samples, &changed) > 1.7e9, "a Unix time");
    assert_eq!(http_get(&address, "/nothing").0, 404);
    // A client that connects and says nothing, and one that sends junk, hold
    // up no one.
    let idle = std::net::TcpStream::connect(&address).unwrap();
    let mut junk = std::net::TcpStream::connect(&address).unwrap();
    std::io::Write::write_all(&mut junk, b"NONSENSE\r\n\0\0\r\n\r\n").unwrap();
    assert_eq!(http_get(&address, "/healthz").0, 200);
    drop((idle, junk));
    assert!(listener.terminate().success());
}
