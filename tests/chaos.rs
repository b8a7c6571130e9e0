//! Chaos: hundreds of pushes to three repositories while an ActiveMQ of the
//! test's own is stopped and started at pseudo-random moments and a flusher
//! runs every half second. Afterwards one flush, then an independent
//! subscriber drains the queue: every message must be there (duplicates are
//! allowed, at-least-once), and each repository's messages must first arrive
//! in push order. scripts/test runs it on its own and shows its counts line.
//! Set HOOKBUS_CHAOS_SEED to replay a run's timings.

mod brokers;
mod gitutil;

use brokers::{unique, OwnActiveMq};
use gitutil::{files_in, hookbus, run_ok, Fixture, Z40};
use std::collections::{HashMap, HashSet};

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const REPOS: usize = 3;
/// Pushes per repository at least (3 × 70 ≥ 200); pushing goes on while the
/// broker is still being toggled, up to the cap.
const MIN_PUSHES: usize = 70;
const MAX_PUSHES: usize = 250;
const RESTARTS: usize = 5;
const DEADLINE_MS: u64 = 1000;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// xorshift64: timings that a printed seed reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Milliseconds in `low..high`.
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low))
    }
}

fn seed() -> u64 {
    match std::env::var("HOOKBUS_CHAOS_SEED") {
        Ok(seed) => seed.parse().expect("HOOKBUS_CHAOS_SEED is a number"),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            nanos | 1 // xorshift must not start at 0
        }
    }
}

/// One repository's pushes: its messages' ids, each with its push's number,
/// in push order.
fn push_loop(
    repo: usize,
    config: &str,
    toggling: &AtomicBool,
    rng: &mut XorShift,
) -> Vec<(String, usize)> {
    let fixture = Fixture::publishing("");
    fixture.write_config(config);
    let name = format!("chaos-{repo}");
    run_ok(gitutil::git(
        &fixture.bare,
        &["config", "hookbus.name", &name],
    ));
    let mut updates = Vec::new();
    let mut old = Z40.to_string();
    let mut push = 0;
    while push < MAX_PUSHES && (push < MIN_PUSHES || toggling.load(Ordering::Relaxed)) {
        let commit = fixture.commit(
            &format!("{name} push {push}"),
            &[("counter", push.to_string().as_bytes())],
        );
        fixture.push(&["master"]);
        updates.push(format!("{old} {commit} refs/heads/master"));
        old = commit;
        push += 1;
        thread::sleep(rng.millis(0, 60));
    }
    // Ids derive from the update and route, so a dry run of the same updates
    // names every message the pushes should have delivered.
    let dry = fixture.hookbus(
        &["post-receive", "--dry-run"],
        &format!("{}\n", updates.join("\n")),
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let messages = gitutil::parse_lines(&text(&dry.stdout));
    let per_push = messages.len() / updates.len();
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.header("hookbus-id").to_string(), i / per_push))
        .collect()
}

#[test]
fn chaos_pushes_while_the_broker_restarts_lose_nothing_and_keep_order() {
    let started = Instant::now();
    let seed = seed();
    println!("chaos: seed={seed} (HOOKBUS_CHAOS_SEED={seed} replays the timings)");
    let scratch = tempfile::tempdir().unwrap();
    let own = OwnActiveMq::start(scratch.path());
    let broker = own.broker();
    let queue = unique("queue", "chaos");
    let outbox = scratch.path().join("outbox");
    let config = format!(
        "{}deadline_ms = {DEADLINE_MS}\n\n[outbox]\ndir = {outbox:?}\n\n[log]\nsyslog = \"\"\n\n[[route]]\ndestination = \"{queue}\"\nformat = \"json\"\n\n[[route]]\ndestination = \"{queue}\"\nformat = \"summary\"\n",
        broker.config()
    );
    let flush_config = scratch.path().join("hookbus.toml");
    std::fs::write(&flush_config, &config).unwrap();

    let toggling = AtomicBool::new(true);
    let pushing = AtomicBool::new(true);
    let mut expected: Vec<Vec<(String, usize)>> = Vec::new();
    let mut restarts = 0;
    let mut flush_statuses: Vec<Option<i32>> = Vec::new();
    thread::scope(|scope| {
        let toggler = scope.spawn(|| {
            let mut rng = XorShift(seed);
            let mut restarts = 0;
            for _ in 0..RESTARTS {
                thread::sleep(rng.millis(500, 3000));
                own.down();
                restarts += 1;
                thread::sleep(rng.millis(200, 2500));
                own.up();
            }
            toggling.store(false, Ordering::Relaxed);
            restarts
        });
        let flusher = scope.spawn(|| {
            let mut statuses = Vec::new();
            for _ in 0..1000 {
                if !pushing.load(Ordering::Relaxed) {
                    break;
                }
                let out = hookbus(&flush_config, scratch.path())
                    .args(["flush", "--wait", "5"])
                    .output()
                    .unwrap();
                statuses.push(out.status.code());
                thread::sleep(Duration::from_millis(500));
            }
            statuses
        });
        let pushers: Vec<_> = (0..REPOS)
            .map(|repo| {
                let (config, toggling) = (&config, &toggling);
                let mut rng = XorShift(seed.wrapping_add(repo as u64 + 1) | 1);
                scope.spawn(move || push_loop(repo, config, toggling, &mut rng))
            })
            .collect();
        for pusher in pushers {
            expected.push(pusher.join().unwrap());
        }
        pushing.store(false, Ordering::Relaxed);
        restarts = toggler.join().unwrap();
        flush_statuses = flusher.join().unwrap();
    });
    let odd: Vec<&Option<i32>> = flush_statuses
        .iter()
        .filter(|s| !matches!(s, Some(0) | Some(6)))
        .collect();
    assert!(odd.is_empty(), "flush exit statuses: {flush_statuses:?}");

    // The broker is up again: one flush delivers whatever is left.
    let out = hookbus(&flush_config, scratch.path())
        .arg("flush")
        .output()
        .unwrap();
    assert!(out.status.success(), "final flush: {}", text(&out.stderr));
    let list = hookbus(&flush_config, scratch.path())
        .args(["outbox", "list"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert_eq!(text(&list.stdout), "", "outbox not empty");
    assert_eq!(files_in(&outbox), Vec::<String>::new());

    let received: Vec<String> = broker
        .drain(&queue, 0, Duration::from_secs(5), Duration::from_secs(90))
        .received()
        .iter()
        .map(|m| m.header("hookbus-id").to_string())
        .collect();

    // Which repository and push each expected id belongs to.
    let mut owner: HashMap<&str, (usize, usize)> = HashMap::new();
    for (repo, ids) in expected.iter().enumerate() {
        for (id, push) in ids {
            owner.insert(id, (repo, *push));
        }
    }
    let messages = owner.len();
    let pushes: usize = expected
        .iter()
        .map(|ids| ids.last().map_or(0, |l| l.1 + 1))
        .sum();
    let distinct: HashSet<&str> = received.iter().map(String::as_str).collect();
    let strangers: Vec<&&str> = distinct
        .iter()
        .filter(|id| !owner.contains_key(**id))
        .collect();
    assert!(strangers.is_empty(), "unexpected messages: {strangers:?}");
    let lost: Vec<(usize, usize)> = owner
        .iter()
        .filter(|(id, _)| !distinct.contains(**id))
        .map(|(_, at)| *at)
        .collect();
    let duplicates = received.len() - distinct.len();
    println!(
        "chaos: seed={seed} pushes={pushes} messages={messages} received={} duplicates={duplicates} lost={} restarts={restarts} ({:.0} s)",
        received.len(),
        lost.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(pushes >= 200, "only {pushes} pushes");
    assert_eq!(restarts, RESTARTS);
    assert!(lost.is_empty(), "lost (repo, push): {lost:?}");

    // First arrivals per repository come in push order.
    let mut seen = HashSet::new();
    let mut last_push = [0usize; REPOS];
    for id in &received {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let (repo, push) = owner[id.as_str()];
        assert!(
            push >= last_push[repo],
            "repository {repo}: push {push} arrived after push {}",
            last_push[repo]
        );
        last_push[repo] = push;
    }
}
