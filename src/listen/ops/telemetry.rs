//! What the daemon tells about itself besides reports: [`metrics`](super::metrics)
//! (served by the [`exporter`] with `[listen] metrics`) and
//! [`presence`](super::presence) (with `[listen] presence`), both reading the
//! mirrors' [status board](super::status). The loop hands this one value
//! what happens; these settings are read at start only (a reload keeps them).

use super::exporter;
use super::metrics::Metrics;
use super::presence::{Presence, Target};
use super::status::Board;
use crate::bus::Publisher;
use crate::config::listen::ListenConfig;
use crate::http_server::exporter::Exporter;
use crate::listen::report::Event;
use anyhow::Result;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The metrics, and the threads that show them and the board.
pub struct Telemetry {
    /// Every count; the action engine reports through it too.
    pub metrics: Metrics,
    exporter: Option<Exporter>,
    presence: Option<Presence>,
    connected: bool,
    generation: u64,
}

impl Telemetry {
    /// Starts the metrics listener and the presence thread the config asks for.
    pub fn start(
        listen: &ListenConfig,
        publisher: &Publisher,
        host: &str,
        board: Board,
    ) -> Result<Telemetry> {
        let metrics = Metrics::new(board.clone());
        let exporter = match &listen.metrics {
            Some(address) => {
                let exporter = exporter::start(address, metrics.clone(), board.clone())?;
                eprintln!(
                    "hookbus: listen: metrics on http://{}/metrics",
                    exporter.address()
                );
                Some(exporter)
            }
            None => None,
        };
        let presence = listen.presence.as_ref().map(|destination| {
            let target = Target {
                destination: destination.clone(),
                publisher: publisher.clone(),
                host: host.to_string(),
                interval: Duration::from_secs(listen.presence_s),
            };
            Presence::start(target, board)
        });
        metrics.broker_connected(false);
        Ok(Telemetry {
            metrics,
            exporter,
            presence,
            connected: false,
            generation: 0,
        })
    }

    /// The link's state after a turn: connected or not, and its generation
    /// (a new one after the first is a reconnect).
    pub fn link(&mut self, connected: bool, generation: u64) {
        if connected != self.connected {
            self.metrics.broker_connected(connected);
            self.connected = connected;
        }
        if generation > self.generation {
            if self.generation > 0 {
                self.metrics.reconnect();
            }
            self.generation = generation;
        }
    }

    /// A piece of work finished.
    pub fn finished(&self, event: &Event) {
        self.metrics
            .git_run(&event.mirror, event.result != "failed");
    }

    /// A message sent at `sent_at` (see [`sent_at`]) was answered by `event`:
    /// its latency counts when the work succeeded.
    pub fn answered(&self, event: &Event, sent_at: SystemTime) {
        if event.result != "failed" {
            let latency = sent_at.elapsed().unwrap_or(Duration::ZERO);
            self.metrics.mirror_latency(&event.mirror, latency);
        }
    }

    /// Says goodbye (presence) and stops listening (metrics).
    pub fn finish(self) {
        if let Some(presence) = self.presence {
            presence.finish();
        }
        if let Some(exporter) = self.exporter {
            exporter.stop();
        }
    }
}

/// When a message was published: the broker's `timestamp` header (ActiveMQ
/// sets it, milliseconds since the epoch, when it accepts the message), else
/// now (its receipt; RabbitMQ sets none).
pub fn sent_at(headers: &[(String, String)]) -> SystemTime {
    headers
        .iter()
        .find(|(key, _)| key == "timestamp")
        .and_then(|(_, value)| value.trim().parse::<u64>().ok())
        .filter(|&millis| millis > 0)
        .map_or_else(SystemTime::now, |millis| {
            UNIX_EPOCH + Duration::from_millis(millis)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_timestamp_is_the_send_time_when_there_is_one() {
        let stamped = [("timestamp".to_string(), "1700000000123".to_string())];
        assert_eq!(
            sent_at(&stamped),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        let before = SystemTime::now();
        for headers in [vec![], vec![("timestamp".to_string(), "junk".to_string())]] {
            assert!(sent_at(&headers) >= before);
        }
    }
}
