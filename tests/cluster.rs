//! Node loss on real broker clusters (issue 25): a 3-node RabbitMQ cluster and
//! an ActiveMQ shared-store master/slave pair, started by scripts/test. Real
//! git pushes go through the installed hook and a durable `hookbus listen`
//! with default settings receives them, both with a failover URL over every
//! node. Mid-stream the node the listener is subscribed through (on RabbitMQ
//! it also leads the subscription's quorum queue; on ActiveMQ it is the
//! master) is SIGKILLed, and later restarted. Whatever the hook kept in its
//! outbox is flushed, as cron would; then every push must have reached the
//! listener. Prints pushes, delivered, duplicates, lost, the longest push
//! after the kill and the time until the listener was subscribed again.
//! scripts/test runs these last (`cluster_` prefix), output shown.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::{unique, LOGIN, PASSCODE};
use gitutil::{files_in, hookbus, Fixture};
use listenutil::{wait_until, Listener};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/brokers");
const PUSHES: usize = 40;
/// The node goes before this push, and is started again after that many
/// pushes (or once another member serves, if later).
const KILL_AT: usize = 10;
const RESTART_AT: usize = 25;
/// Bound on anything the test waits for (a node's restart, the listener).
const CAP: Duration = Duration::from_secs(180);

/// One run at a time: the two clusters share the machine's cores, and the
/// figures printed should not measure each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A cluster scripts/test started.
struct Cluster {
    name: &'static str,
    /// `host:port` of each member's STOMP listener, member N at N-1.
    addresses: Vec<String>,
    /// Where scripts/brokers keeps member N in `dir/N` (its pid file).
    dir: PathBuf,
    vhost: &'static str,
    /// The scripts/brokers command that (re)starts one member.
    restart: &'static str,
}

fn cluster(
    name: &'static str,
    variable: &str,
    vhost: &'static str,
    restart: &'static str,
) -> Cluster {
    let var = |variable: &str| {
        std::env::var(variable).unwrap_or_else(|_| {
            panic!("{variable} is not set: run scripts/test, or start the clusters with scripts/brokers start-rabbitmq-cluster DIR BASEPORT / start-activemq-pair DIR PORT1 PORT2 and export HOOKBUS_TEST_RABBITMQ_CLUSTER=127.0.0.1:BASEPORT+1,…+4,…+7 and HOOKBUS_TEST_RABBITMQ_CLUSTER_DIR=DIR, HOOKBUS_TEST_ACTIVEMQ_PAIR=127.0.0.1:PORT1,127.0.0.1:PORT2 and HOOKBUS_TEST_ACTIVEMQ_PAIR_DIR=DIR")
        })
    };
    Cluster {
        name,
        addresses: var(variable).split(',').map(str::to_string).collect(),
        dir: PathBuf::from(var(&format!("{variable}_DIR"))),
        vhost,
        restart,
    }
}

impl Cluster {
    /// A `[broker]` table with a failover URL over every member.
    fn broker_table(&self) -> String {
        let hosts: Vec<String> = (self.addresses.iter())
            .map(|address| format!("stomp://{address}"))
            .collect();
        format!(
            "[broker]\nurl = \"failover://({})\"\nlogin = \"{LOGIN}\"\npasscode = '{PASSCODE}'\nvhost = \"{}\"\n",
            hosts.join(","),
            self.vhost
        )
    }

    fn kill(&self, member: usize) {
        let pid_file = self.dir.join(member.to_string()).join("pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: kill(2) on the pid scripts/brokers recorded for this member.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
    }

    /// The last lines of every member's logs, for a failure message: why a
    /// member did not take over is written there.
    fn logs(&self) -> String {
        let mut text = String::new();
        for member in 1..=self.addresses.len() {
            let dir = self.dir.join(member.to_string());
            let mut files = vec![dir.join("data/activemq.log"), dir.join("data/console.log")];
            files.extend(
                std::fs::read_dir(dir.join("log"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
            for file in files {
                let Ok(content) = std::fs::read_to_string(&file) else {
                    continue;
                };
                let lines: Vec<&str> = content.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                text += &format!("--- {}\n{tail}\n", file.display());
            }
        }
        text
    }

    fn start(&self, member: usize) {
        let out = Command::new(SCRIPT)
            .args([
                self.restart,
                self.dir.to_str().unwrap(),
                &member.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {}: {}",
            self.restart,
            member,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn seconds(after: Option<Duration>) -> String {
    after.map_or("never".into(), |after| {
        format!("{:.2} s", after.as_secs_f64())
    })
}

/// Lines of the listener's log saying it subscribed, so far.
fn subscriptions(listener: &Listener) -> usize {
    listener.log().matches("connected to").count()
}

fn node_loss_stream(cluster: &Cluster) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let name = cluster.name;
    let topic = unique("topic", &format!("cluster.{name}"));
    let scratch = tempfile::tempdir().unwrap();
    let d = scratch.path();

    let fixture = Fixture::publishing("");
    fixture.write_config(&format!(
        "{}\n[outbox]\ndir = {:?}\n[log]\nsyslog = \"\"\n[[route]]\ndestination = \"{topic}\"\nformat = \"json\"\n",
        cluster.broker_table(),
        fixture.root.join("hook-outbox")
    ));
    // Default listener settings but for what the test observes through:
    // metrics, and an action writing down each new revision it runs for.
    let record = d.join("delivered");
    let config = format!(
        "{}\n[log]\nsyslog = \"\"\n[listen]\nsubscribe = [\"{topic}\"]\ndurable = \"cluster-{name}-{}\"\nstate_dir = {:?}\nmetrics = \"127.0.0.1:0\"\n\n[[action]]\nname = \"record\"\n[[action.step]]\nkind = \"exec\"\nargv = [\"/bin/sh\", \"-c\", 'echo \"$HOOKBUS_NEWREV\" >> {}']\n",
        cluster.broker_table(),
        std::process::id(),
        d.join("state"),
        record.display()
    );
    let listener = Listener::start(d, &config);
    listener.wait_log("connected to", 1);
    let log = listener.log();
    let member = 1
        + (cluster.addresses.iter())
            .position(|address| log.contains(&format!("connected to stomp://{address},")))
            .unwrap_or_else(|| panic!("which member is the listener on?\n{log}"));

    let others: Vec<&String> = (cluster.addresses.iter())
        .enumerate()
        .filter(|(index, _)| index + 1 != member)
        .map(|(_, address)| address)
        .collect();
    let mut pushed = Vec::new();
    let mut durations = Vec::new();
    let (mut served, mut resubscribed) = (None, None);
    let done = AtomicUsize::new(0);
    thread::scope(|scope| {
        let mut watcher = None;
        for push in 0..PUSHES {
            if push == KILL_AT {
                let before = subscriptions(&listener);
                cluster.kill(member);
                let killed = Instant::now();
                let (listener, others, done) = (&listener, &others, &done);
                watcher = Some(scope.spawn(move || {
                    // When another member serves, then when the listener is
                    // subscribed again; only then is the killed member
                    // started again (an ActiveMQ slave polls the lock every
                    // 10 s: a master back sooner takes it again).
                    let serving = || others.iter().any(|a| TcpStream::connect(a).is_ok());
                    let served = wait_until(CAP, serving).then(|| killed.elapsed());
                    let back = wait_until(CAP, || subscriptions(listener) > before);
                    let back = back.then(|| killed.elapsed());
                    wait_until(CAP, || done.load(Ordering::Relaxed) >= RESTART_AT);
                    cluster.start(member);
                    (served, back)
                }));
            }
            let (commit, took) = fixture.commit_and_push(&format!("{name} push {push}"));
            pushed.push(commit);
            durations.push(took);
            done.store(push + 1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(200));
        }
        (served, resubscribed) = watcher.unwrap().join().unwrap();
    });
    // What a hook could not hand over waits in its outbox for the flush.
    let kept = files_in(&fixture.root.join("hook-outbox")).len();
    let flush = hookbus(&fixture.config, &fixture.root)
        .arg("flush")
        .output()
        .unwrap();
    assert!(
        flush.status.success(),
        "flush: {}",
        String::from_utf8_lossy(&flush.stderr)
    );

    let delivered = || -> Vec<String> {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    };
    wait_until(CAP, || pushed.iter().all(|c| delivered().contains(c)));
    let mut delivered = delivered();
    delivered.sort();
    delivered.dedup();
    let lost: Vec<&String> = pushed.iter().filter(|c| !delivered.contains(c)).collect();
    let received = listener
        .metric("hookbus_messages_received_total{}")
        .unwrap_or(0.0) as usize;
    let longest = durations[KILL_AT..].iter().max().unwrap();
    let longest_before = durations[..KILL_AT].iter().max().unwrap();
    println!(
        "cluster: {name}: pushes={PUSHES} delivered={} received={received} duplicates={} lost={} longest push after the kill={:.2} s (before it {:.2} s) kept in the outbox={kept} another member served {} and the listener resubscribed {} after the kill",
        delivered.len(),
        received.saturating_sub(delivered.len()),
        lost.len(),
        longest.as_secs_f64(),
        longest_before.as_secs_f64(),
        seconds(served),
        seconds(resubscribed),
    );
    assert!(
        lost.is_empty(),
        "{name}: lost {lost:?}\nlistener:\n{}\nhooks:\n{}",
        listener.log(),
        fixture.hook_stderr()
    );
    assert!(
        served.is_some() && resubscribed.is_some(),
        "listener:\n{}\nmembers:\n{}",
        listener.log(),
        cluster.logs()
    );
    let mut listener = listener;
    listener.terminate();
}

#[test]
fn cluster_rabbitmq_node_loss_loses_nothing() {
    node_loss_stream(&cluster(
        "rabbitmq",
        "HOOKBUS_TEST_RABBITMQ_CLUSTER",
        "hookbus",
        "start-rabbitmq-node",
    ));
}

#[test]
fn cluster_activemq_master_loss_loses_nothing() {
    node_loss_stream(&cluster(
        "activemq",
        "HOOKBUS_TEST_ACTIVEMQ_PAIR",
        "/",
        "start-activemq-member",
    ));
}
