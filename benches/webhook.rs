//! `hookbus webhook` under load: requests per second and time to the 202 for
//! signed 10 KB GitHub push payloads on loopback, from the payload alone and
//! through a mirror (fetch and render from git per request), and the server's
//! peak RSS; the payload-only case again with 200,000 delivery ids
//! remembered (about an hour at 55 deliveries/s), which must cost the same
//! per request as 1,000. scripts/bench runs it (`cargo bench --bench webhook -- --bench
//! [--quick] [--broker HOST:PORT]`); under `cargo test` a small round only
//! checks that it runs. Goal: p99 ≤ 20 ms payload-only.

#[path = "../tests/brokers/mod.rs"]
mod brokers;
#[path = "../tests/gitutil/mod.rs"]
mod gitutil;
#[path = "../tests/webhookutil/mod.rs"]
mod webhookutil;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use webhookutil::{github_headers, pairs, Server};

/// Concurrent clients, each sending its requests one after the other.
const CLIENTS: usize = 4;
/// Delivery ids the server remembers before the first request (written into
/// its state file as a run of that many young deliveries would leave it).
const FEW_REMEMBERED: usize = 1_000;
const MANY_REMEMBERED: usize = 200_000;
/// The payload size the goal is stated for.
const PAYLOAD_BYTES: usize = 10 * 1024;
const P99_GOAL: Duration = Duration::from_millis(20);

struct Case {
    name: &'static str,
    requests: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
    peak_rss_kb: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|arg| arg == "--bench");
    let quick = args.iter().any(|arg| arg == "--quick");
    let broker = args
        .iter()
        .position(|arg| arg == "--broker")
        .and_then(|at| args.get(at + 1))
        .map(|address| brokers::activemq_at(address.clone()));
    let (payload_requests, mirror_requests) = match (measuring, quick) {
        (false, _) => (20, 5),
        (true, true) => (400, 100),
        (true, false) => (4000, 400),
    };
    let repo = gitutil::Fixture::new();
    let tip = repo.fast_commits("master", 40);
    let before = gitutil::run_ok(gitutil::git(&repo.bare, &["rev-parse", "master~10"]));
    let mirror = repo.root.join("mirror.git");
    gitutil::run_ok(gitutil::git(
        &repo.root,
        &[
            "clone",
            "-q",
            "--mirror",
            repo.bare.to_str().unwrap(),
            mirror.to_str().unwrap(),
        ],
    ));
    let payload = payload(before.trim(), &tip);
    let cases = [
        run(
            "payload only",
            payload_requests,
            &payload.replace("MIRRORED", "plain"),
            &mirror,
            broker.as_ref(),
            FEW_REMEMBERED,
        ),
        run(
            "200k remembered",
            payload_requests,
            &payload.replace("MIRRORED", "plain"),
            &mirror,
            broker.as_ref(),
            MANY_REMEMBERED,
        ),
        run(
            "with a mirror",
            mirror_requests,
            &payload,
            &mirror,
            broker.as_ref(),
            FEW_REMEMBERED,
        ),
    ];
    println!(
        "\nwebhook: signed {} KB GitHub push payloads, {CLIENTS} clients on loopback{}",
        PAYLOAD_BYTES / 1024,
        if broker.is_some() {
            ", publishing to ActiveMQ behind the replies"
        } else {
            ", no broker (outbox only)"
        }
    );
    println!(
        "{:<16} {:>9} {:>11} {:>9} {:>9} {:>9} {:>10}  goal",
        "case", "requests", "requests/s", "p50 ms", "p99 ms", "max ms", "peak RSS"
    );
    for case in &cases {
        let mut sorted = case.latencies.clone();
        sorted.sort();
        let at =
            |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let goal = match case.name {
            _ if !measuring => "- (cargo test: a check that it runs)",
            "payload only" | "200k remembered" if at(0.99) <= P99_GOAL => "p99 ≤ 20 ms met",
            "payload only" | "200k remembered" => "p99 ≤ 20 ms MISSED",
            _ => "-",
        };
        println!(
            "{:<16} {:>9} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>7} MB  {goal}",
            case.name,
            case.requests,
            case.requests as f64 / case.elapsed.as_secs_f64(),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(*sorted.last().unwrap()),
            case.peak_rss_kb / 1024,
        );
    }
}

/// A push of the 10 commits before `after`, padded with commit message text
/// to 10 KB, for repository `MIRRORED` (replaced per case).
fn payload(before: &str, after: &str) -> String {
    let commit = |index: usize| {
        json!({"id": if index == 9 { after.to_string() } else { format!("{index:040x}") },
               "message": "x".repeat(700), "timestamp": "2024-01-02T03:04:05+00:00",
               "author": {"name": "Alice", "email": "alice@example.com"},
               "committer": {"name": "Alice", "email": "alice@example.com"},
               "added": [], "removed": [], "modified": ["count.txt"]})
    };
    let mut value: Value = json!({
        "ref": "refs/heads/master", "before": before, "after": after, "forced": false,
        "repository": {"full_name": "bench/MIRRORED"}, "pusher": {"name": "alice"},
        "commits": (0..10).map(commit).collect::<Vec<_>>(),
    });
    let size = serde_json::to_string(&value).unwrap().len();
    value["padding"] = json!(" ".repeat(PAYLOAD_BYTES.saturating_sub(size + 14)));
    serde_json::to_string(&value).unwrap()
}

fn run(
    name: &'static str,
    requests: usize,
    payload: &str,
    mirror: &std::path::Path,
    broker: Option<&brokers::Broker>,
    remembered: usize,
) -> Case {
    eprintln!("bench: webhook, {name}, {requests} requests ...");
    let dir = tempfile::tempdir().unwrap();
    remember(&dir.path().join("webhook"), remembered);
    let config = format!(
        "[outbox]\ndir = \"{{dir}}/outbox\"\n[log]\nsyslog = \"\"\n[[route]]\ndestination = \"/topic/bench.webhook\"\nformat = \"text\"\n\
         [webhook]\nlisten = \"{{listen}}\"\n[[webhook.endpoint]]\npath = \"/github\"\nkind = \"github\"\nsecret_file = \"{{secret}}\"\n\
         [[webhook.repo]]\nfull_name = \"bench/MIRRORED\"\nmirror = \"{}\"\n{}",
        mirror.display(),
        broker.map(|b| b.config()).unwrap_or_default()
    );
    let server = Server::start(dir.path(), &config);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= requests {
                            return mine;
                        }
                        let headers =
                            github_headers("push", &format!("bench-{index}"), payload.as_bytes());
                        let sent = Instant::now();
                        let (status, reason) =
                            server.post("/github", &pairs(&headers), payload.as_bytes());
                        mine.push(sent.elapsed());
                        assert_eq!(status, 202, "{reason}");
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let peak_rss_kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    if broker.is_some() {
        let outbox = dir.path().join("outbox");
        let until = Instant::now() + Duration::from_secs(120);
        while gitutil::files_in(&outbox)
            .iter()
            .any(|file| file.ends_with(".msg"))
        {
            assert!(
                Instant::now() < until,
                "the broker did not get every message: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Case {
        name,
        requests,
        latencies,
        elapsed,
        peak_rss_kb,
    }
}

/// Writes `count` deliveries of the last minutes into the state file of
/// `state_dir` (`SECONDS ID` lines, the ids as the server keys them), so the
/// server starts remembering them all.
fn remember(state_dir: &std::path::Path, count: usize) {
    std::fs::create_dir_all(state_dir).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let lines: String = (0..count)
        .map(|index| {
            let at = now - 600 + (index * 600 / count.max(1)) as u64;
            format!("{at} /github 5a3c7e9e-{index:08x}-11ef-9b4c-0242ac120002\n")
        })
        .collect();
    std::fs::write(state_dir.join("deliveries"), lines).unwrap();
}
