//! Benchmarks against the test brokers that scripts/test starts: messages per
//! second for 10,000 messages pipelined to ActiveMQ, and the hook time of a
//! one-commit push with the broker up (median of 20), with and without
//! `[sign]`. `cargo bench --bench publish` measures; under `cargo test` a
//! small round only checks that it runs.

#[path = "../tests/brokers/mod.rs"]
mod brokers;
#[path = "../tests/gitutil/mod.rs"]
mod gitutil;

use hookbus::config::Config;
use hookbus::deliver::Message;
use std::time::{Duration, Instant};

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (messages, hook_runs) = if measuring { (10_000, 20) } else { (100, 2) };
    let broker = brokers::activemq();
    throughput(&broker, messages);
    hook_time(&broker, hook_runs, false);
    hook_time(&broker, hook_runs, true);
}

fn throughput(broker: &brokers::Broker, count: usize) {
    let config = Config::parse(&broker.config()).unwrap();
    let publisher = config.publisher(|_| {}).unwrap().unwrap();
    let topic = brokers::unique("topic", "bench");
    let body = vec![b'x'; 200];
    let messages: Vec<Message> = (0..count)
        .map(|i| Message::compose(&topic, Some(&format!("message {i}")), &[], body.clone()))
        .collect::<Result<_, _>>()
        .unwrap();
    let start = Instant::now();
    publisher.publish(&messages).unwrap();
    let elapsed = start.elapsed();
    println!(
        "pipelined publish to ActiveMQ: {count} messages in {:.3} s = {:.0} messages/s (each receipted)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
}

fn hook_time(broker: &brokers::Broker, runs: usize, signed: bool) {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key");
    let sign = match signed {
        true => {
            hookbus::sign::keys::generate(&key, false).unwrap();
            format!("[sign]\nkey_file = \"{}\"\n", key.display())
        }
        false => String::new(),
    };
    let config = format!(
        "{}{sign}[[route]]\ndestination = \"{}\"\nformat = \"text\"\n",
        broker.config(),
        brokers::unique("topic", "bench-push")
    );
    let fixture = gitutil::Fixture::publishing(&config);
    // The config holds a passcode: keep it private, or every run warns.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fixture.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let commit = fixture.commit("One commit", &[("file", b"content\n")]);
    fixture.push(&["master"]);
    let line = format!("{} {commit} refs/heads/master\n", "0".repeat(40));
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let out = fixture.hookbus(&["post-receive"], &line);
            let elapsed = start.elapsed();
            assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
            elapsed
        })
        .collect();
    times.sort();
    println!(
        "one-commit post-receive hook publishing to ActiveMQ{}: median {:.1} ms of {runs} (min {:.1}, max {:.1})",
        if signed { ", signed" } else { "" },
        times[runs / 2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[runs - 1].as_secs_f64() * 1000.0
    );
}
