//! `[relay] metrics`: what `hookbus relay` did, counted from the events it
//! logs ([`Event`]), and the files waiting in its outbox, read at each
//! scrape. `GET /healthz` answers 200 while the relay holds the outbox and
//! its broker answers, else 503. Served by the shared metrics listener
//! ([`crate::http_server::exporter`]), bounded against hostile clients.

use super::Event;
use crate::deliver::outbox::Outbox;
use crate::http_server::exporter::{self, Exporter};
use crate::http_server::{Handler, Request, Response};
use anyhow::Result;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Every metric of the relay; clones share them.
#[derive(Clone)]
pub struct RelayMetrics {
    registry: Arc<Registry>,
    delivered: Counter,
    dead_lettered: Counter,
    set_aside: Counter,
    unreachable: Counter,
    pushes: Counter,
    holding: Gauge,
    broker_up: Gauge,
}

impl RelayMetrics {
    /// The metrics of a relay of `outbox`.
    pub fn new(outbox: Outbox) -> RelayMetrics {
        let mut registry = Registry::with_prefix("hookbus_relay");
        let metrics = RelayMetrics {
            registry: Arc::default(),
            delivered: Counter::default(),
            dead_lettered: Counter::default(),
            set_aside: Counter::default(),
            unreachable: Counter::default(),
            pushes: Counter::default(),
            holding: Gauge::default(),
            broker_up: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "messages_delivered",
            "Messages the broker receipted",
            metrics.delivered.clone(),
        );
        r.register(
            "messages_dead_lettered",
            "Messages the broker refused for good, moved to dead/",
            metrics.dead_lettered.clone(),
        );
        r.register(
            "files_set_aside",
            "Files that could not be read, moved to dead/",
            metrics.set_aside.clone(),
        );
        r.register(
            "broker_unreachable",
            "Delivery rounds that found the broker unreachable",
            metrics.unreachable.clone(),
        );
        r.register(
            "pushes_taken",
            "Pushes hooks handed to the relay, which did their work",
            metrics.pushes.clone(),
        );
        r.register(
            "holding",
            "1 while the relay holds the outbox lock, else 0",
            metrics.holding.clone(),
        );
        r.register(
            "broker_up",
            "0 from a round that found the broker unreachable to the next delivery, else 1",
            metrics.broker_up.clone(),
        );
        r.register_collector(Box::new(Waiting { outbox }));
        RelayMetrics {
            registry: Arc::new(registry),
            ..metrics
        }
    }

    /// Counts what `event` says happened.
    pub fn record(&self, event: &Event) {
        match event {
            Event::WaitingForLock { .. } | Event::Stopped => {
                self.holding.set(0);
            }
            Event::Holding { .. } => {
                self.holding.set(1);
                self.broker_up.set(1);
            }
            Event::Delivered {
                messages,
                dead_lettered,
                ..
            } => {
                self.delivered.inc_by(*messages as u64);
                self.dead_lettered.inc_by(*dead_lettered as u64);
                self.broker_up.set(1);
            }
            Event::SetAside(_) => {
                self.set_aside.inc();
            }
            Event::Unreachable { .. } => {
                self.unreachable.inc();
                self.broker_up.set(0);
            }
        }
    }

    /// Counts a push a hook handed over.
    pub fn took_push(&self) {
        self.pushes.inc();
    }

    /// The exposition, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// `Ok` while the relay holds the outbox and its broker answers.
    pub fn health(&self) -> Result<(), &'static str> {
        if self.holding.get() == 0 {
            Err("the relay does not hold the outbox lock")
        } else if self.broker_up.get() == 0 {
            Err("the broker is unreachable")
        } else {
            Ok(())
        }
    }
}

/// Binds `address` (`IP:PORT`) and serves `metrics` on a thread of its own.
pub fn start(address: &str, metrics: RelayMetrics) -> Result<Exporter> {
    Exporter::start(
        address,
        "[relay] metrics",
        "hookbus: relay: metrics",
        Arc::new(metrics),
    )
}

impl Handler for RelayMetrics {
    fn handle(&self, request: Request) -> Response {
        exporter::answer(
            &request.method,
            &request.path,
            || self.encode(),
            || self.health(),
        )
    }
}

/// The files waiting in the outbox, counted when scraped.
#[derive(Debug)]
struct Waiting {
    outbox: Outbox,
}

impl Collector for Waiting {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(files) = self.outbox.list() else {
            return Ok(()); // an unreadable outbox: no sample rather than a false one
        };
        let value = ConstGauge::new(files.len() as i64);
        let metric = encoder.encode_descriptor(
            "files_waiting",
            "Files in the outbox not delivered yet (each holds a push's messages)",
            None,
            value.metric_type(),
        )?;
        value.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn events_are_counted_and_health_follows_the_lock_and_the_broker() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("outbox"));
        let metrics = RelayMetrics::new(outbox);
        assert_eq!(
            metrics.health(),
            Err("the relay does not hold the outbox lock")
        );
        metrics.record(&Event::Holding {
            dir: dir.path().into(),
        });
        assert_eq!(metrics.health(), Ok(()));
        metrics.record(&Event::Delivered {
            messages: 3,
            files: 2,
            dead_lettered: 1,
        });
        metrics.record(&Event::Unreachable {
            reason: "refused".into(),
            waiting: 4,
            retry_in: Duration::from_secs(1),
        });
        assert_eq!(metrics.health(), Err("the broker is unreachable"));
        let text = metrics.encode();
        let get = |name| sample(&text, name);
        assert_eq!(get("hookbus_relay_messages_delivered_total"), Some(3.0));
        assert_eq!(get("hookbus_relay_messages_dead_lettered_total"), Some(1.0));
        assert_eq!(get("hookbus_relay_broker_unreachable_total"), Some(1.0));
        assert_eq!(get("hookbus_relay_broker_up"), Some(0.0));
        assert_eq!(get("hookbus_relay_holding"), Some(1.0));
        assert_eq!(get("hookbus_relay_files_waiting"), Some(0.0));
        metrics.record(&Event::Stopped);
        assert!(metrics.health().is_err());
    }
}
