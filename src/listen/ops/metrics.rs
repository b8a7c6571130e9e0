//! What the daemon counts, in one place, exposed in the Prometheus/OpenMetrics
//! text format by [`super::exporter`]. The loop, the link and the workers call
//! the methods; the encoding is the `prometheus-client` crate's. Label values
//! are only names from the config (mirrors, actions) and fixed words (states),
//! never anything from a message, so the number of series stays bounded.

use super::status::{Board, MirrorState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The states a mirror can be in, each a series of its own (1 for the
/// current one), so that dashboards can count mirrors per state.
pub const STATES: [MirrorState; 4] = [
    MirrorState::Ok,
    MirrorState::Frozen,
    MirrorState::RolledBack,
    MirrorState::Broken,
];

/// Buckets of push-to-mirror latency, in seconds: 50 ms to about 7 minutes.
const LATENCY_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 240.0, 420.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MirrorLabel {
    mirror: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

type LatencyFamily = Family<MirrorLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric; clones share them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    received: Counter,
    acknowledged: Counter,
    duplicate: Counter,
    ignored: Counter,
    git_runs: Family<MirrorLabel, Counter>,
    git_failures: Family<MirrorLabel, Counter>,
    actions_run: Family<ActionLabel, Counter>,
    actions_failed: Family<ActionLabel, Counter>,
    connected: Gauge,
    reconnects: Counter,
    latency: LatencyFamily,
}

impl Metrics {
    /// The metrics of a daemon whose mirrors stand as `board` says.
    pub fn new(board: Board) -> Metrics {
        let mut registry = Registry::with_prefix("hookbus");
        let metrics = Metrics {
            registry: Arc::default(),
            received: Counter::default(),
            acknowledged: Counter::default(),
            duplicate: Counter::default(),
            ignored: Counter::default(),
            git_runs: Family::default(),
            git_failures: Family::default(),
            actions_run: Family::default(),
            actions_failed: Family::default(),
            connected: Gauge::default(),
            reconnects: Counter::default(),
            latency: Family::new_with_constructor(latency_histogram),
        };
        let r = &mut registry;
        r.register(
            "messages_received",
            "Messages received from the broker",
            metrics.received.clone(),
        );
        r.register(
            "messages_acknowledged",
            "Messages acknowledged after their work finished",
            metrics.acknowledged.clone(),
        );
        r.register(
            "messages_duplicate",
            "Messages skipped: their hookbus-id was already answered",
            metrics.duplicate.clone(),
        );
        r.register(
            "messages_ignored",
            "Messages skipped: for no mirror or action, unusable, or keep-alives",
            metrics.ignored.clone(),
        );
        r.register(
            "git_runs",
            "Mirror updates run (clone or fetch and what the mode does after it)",
            metrics.git_runs.clone(),
        );
        r.register(
            "git_failures",
            "Mirror updates that failed",
            metrics.git_failures.clone(),
        );
        r.register(
            "actions_run",
            "Action chains run",
            metrics.actions_run.clone(),
        );
        r.register(
            "actions_failed",
            "Action chains that failed",
            metrics.actions_failed.clone(),
        );
        r.register(
            "broker_connected",
            "1 while subscribed to the broker, else 0",
            metrics.connected.clone(),
        );
        r.register(
            "broker_reconnects",
            "Connections made after the first one",
            metrics.reconnects.clone(),
        );
        r.register(
            "push_to_mirror_seconds",
            "From the broker's timestamp of a message (else its receipt) to its mirror's update finished",
            metrics.latency.clone(),
        );
        r.register_collector(Box::new(MirrorStates { board }));
        Metrics {
            registry: Arc::new(registry),
            ..metrics
        }
    }

    /// A message came.
    pub fn message_received(&self) {
        self.received.inc();
    }

    /// A message was acknowledged.
    pub fn acked(&self) {
        self.acknowledged.inc();
    }

    /// A message was skipped as a duplicate.
    pub fn duplicate(&self) {
        self.duplicate.inc();
    }

    /// A message was skipped for another reason.
    pub fn ignored(&self) {
        self.ignored.inc();
    }

    /// A mirror update finished.
    pub fn git_run(&self, mirror: &str, ok: bool) {
        let label = MirrorLabel {
            mirror: mirror.to_string(),
        };
        count_run(&self.git_runs, &self.git_failures, &label, ok);
    }

    /// An action chain finished.
    pub fn action_run(&self, action: &str, ok: bool) {
        let label = ActionLabel {
            action: action.to_string(),
        };
        count_run(&self.actions_run, &self.actions_failed, &label, ok);
    }

    /// The link is up (or down).
    pub fn broker_connected(&self, connected: bool) {
        self.connected.set(i64::from(connected));
    }

    /// The link came back after it was lost.
    pub fn reconnect(&self) {
        self.reconnects.inc();
    }

    /// A pushed message reached `mirror` after `latency`.
    pub fn mirror_latency(&self, mirror: &str, latency: Duration) {
        let label = MirrorLabel {
            mirror: mirror.to_string(),
        };
        self.latency
            .get_or_create(&label)
            .observe(latency.as_secs_f64());
    }

    /// The exposition, in the OpenMetrics text format (which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Counts a run and, when it failed, a failure; the failure series is made
/// at 0 too, so that failures/runs ratios always have both.
fn count_run<L>(runs: &Family<L, Counter>, failures: &Family<L, Counter>, label: &L, ok: bool)
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    runs.get_or_create(label).inc();
    let failures = failures.get_or_create(label);
    if !ok {
        failures.inc();
    }
}

/// Each mirror's state and when it last changed, and whether the first pass
/// is done, read from the board at every scrape.
#[derive(Debug)]
struct MirrorStates {
    board: Board,
}

impl Collector for MirrorStates {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mirrors = self.board.snapshot();
        let metric = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "mirror_state",
            "1 for the state each mirror is in, 0 for the others",
            None,
            metric.metric_type(),
        )?;
        for mirror in &mirrors {
            for state in STATES {
                let labels = [("mirror", mirror.name.as_str()), ("state", state.as_str())];
                let value = ConstGauge::new(i64::from(mirror.state == state));
                value.encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "mirror_state_changed_timestamp_seconds",
            "When each mirror's state or commit last changed (Unix time)",
            None,
            metric.metric_type(),
        )?;
        for mirror in &mirrors {
            let seconds = mirror
                .changed_at
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64());
            let labels = [("mirror", mirror.name.as_str())];
            ConstGauge::new(seconds).encode(family.encode_family(&labels)?)?;
        }
        // One series per mirror, its commit a label (as gitopper's
        // service_info hash): a new commit replaces the series, so the
        // number of series stays the number of mirrors.
        let mut family = encoder.encode_descriptor(
            "mirror_info",
            "1 per mirror, labelled with the commit at its target (for fetch, its branch's fetched head; empty before the first update)",
            None,
            metric.metric_type(),
        )?;
        for mirror in &mirrors {
            let commit = mirror.commit.as_deref().unwrap_or_default();
            let labels = [("mirror", mirror.name.as_str()), ("commit", commit)];
            ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
        }
        let done = ConstGauge::new(i64::from(self.board.first_pass_done()));
        let gauge = encoder.encode_descriptor(
            "first_pass_done",
            "1 once every mirror has been updated (or tried) since the start; /healthz passes then",
            None,
            done.metric_type(),
        )?;
        done.encode(gauge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_metric_and_the_mirror_states() {
        let mirror: crate::config::mirror::MirrorConfig =
            toml::from_str("repo = 'a'\npath = '/m/a'").unwrap();
        let metrics = Metrics::new(Board::new(&[mirror]));
        metrics.message_received();
        metrics.git_run("/m/a", false);
        metrics.action_run("build", true);
        metrics.broker_connected(true);
        metrics.mirror_latency("/m/a", Duration::from_millis(300));
        let text = metrics.encode();
        for line in [
            "hookbus_messages_received_total 1",
            "hookbus_git_runs_total{mirror=\"/m/a\"} 1",
            "hookbus_git_failures_total{mirror=\"/m/a\"} 1",
            "hookbus_actions_run_total{action=\"build\"} 1",
            "hookbus_broker_connected 1",
            "hookbus_push_to_mirror_seconds_bucket{le=\"0.5\",mirror=\"/m/a\"} 1",
            "hookbus_mirror_state{mirror=\"/m/a\",state=\"OK\"} 1",
            "hookbus_mirror_state{mirror=\"/m/a\",state=\"BROKEN\"} 0",
            "hookbus_mirror_info{mirror=\"/m/a\",commit=\"\"} 1",
            "hookbus_first_pass_done 0",
            "# EOF",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }
}
