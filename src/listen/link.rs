//! The link to the broker: connected and subscribed, or waiting to reconnect
//! with a capped, jittered back-off, forever. One log line per change of
//! state (connected, lost, unreachable), never one per attempt.

use crate::stomp::subscriber::{AckToken, Delivery, SubscribeSpec, Subscriber};
use crate::stomp::Publisher;
use std::time::{Duration, Instant};

/// First pause after a failed attempt; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Bound on connecting and subscribing to one host.
const CONNECT_BOUND: Duration = Duration::from_secs(5);
/// Bound on saying goodbye.
const DISCONNECT_BOUND: Duration = Duration::from_secs(2);

/// The connection, if any, and when to try again.
pub struct Link {
    subscriber: Option<Subscriber>,
    /// Counts connections made; acknowledgements belong to one of them.
    generation: u64,
    next_attempt: Instant,
    failures: u32,
}

impl Link {
    /// Not connected; the first call to [`Link::next`] connects.
    pub fn new() -> Link {
        Link {
            subscriber: None,
            generation: 0,
            next_attempt: Instant::now(),
            failures: 0,
        }
    }

    /// True while connected and subscribed.
    pub fn is_connected(&self) -> bool {
        self.subscriber.is_some()
    }

    /// Which connection is current.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The next message within `wait`, connecting first if need be.
    pub fn next(
        &mut self,
        publisher: &Publisher,
        spec: &SubscribeSpec,
        wait: Duration,
    ) -> Option<Delivery> {
        let Some(subscriber) = &mut self.subscriber else {
            self.connect(publisher, spec, wait);
            return None;
        };
        match subscriber.next(wait) {
            Ok(delivery) => delivery,
            Err(error) => {
                self.drop_connection(&error.to_string());
                None
            }
        }
    }

    fn connect(&mut self, publisher: &Publisher, spec: &SubscribeSpec, wait: Duration) {
        let now = Instant::now();
        if now < self.next_attempt {
            std::thread::sleep(wait.min(self.next_attempt - now));
            return;
        }
        match Subscriber::connect(publisher, spec, CONNECT_BOUND) {
            Ok(subscriber) => {
                eprintln!(
                    "hookbus: listen: connected to {}, subscribed to {}{}",
                    subscriber.host(),
                    spec.destinations.join(", "),
                    spec.durable
                        .as_ref()
                        .map_or(String::new(), |name| format!(" (durable {name})"))
                );
                self.subscriber = Some(subscriber);
                self.generation += 1;
                self.failures = 0;
            }
            Err(failures) => {
                if self.failures == 0 {
                    let reasons: Vec<String> = failures
                        .iter()
                        .map(|(host, error)| format!("{host}: {error}"))
                        .collect();
                    eprintln!(
                        "hookbus: listen: cannot subscribe ({}); retrying until it works",
                        reasons.join("; ")
                    );
                }
                self.failures += 1;
                self.next_attempt = Instant::now() + backoff(self.failures);
            }
        }
    }

    /// Acknowledges a message on the current connection.
    pub fn ack(&mut self, token: &AckToken) {
        if let Some(subscriber) = &mut self.subscriber {
            if let Err(error) = subscriber.ack(token) {
                self.drop_connection(&error.to_string());
            }
        }
    }

    /// Gives up the connection (it failed, or the config changed); the next
    /// turn reconnects.
    pub fn drop_connection(&mut self, why: &str) {
        if let Some(subscriber) = self.subscriber.take() {
            eprintln!(
                "hookbus: listen: lost {}: {why}; reconnecting",
                subscriber.host()
            );
            self.next_attempt = Instant::now();
        }
    }

    /// Disconnects politely, within a bound.
    pub fn close(&mut self) {
        if let Some(subscriber) = self.subscriber.take() {
            let _ = subscriber.disconnect(DISCONNECT_BOUND);
        }
    }
}

/// The pause after `failures` failed attempts in a row: doubling from
/// [`FIRST_BACKOFF`], capped at [`MAX_BACKOFF`], less a random part of up to
/// half so that many hosts do not reconnect in step after an outage.
fn backoff(failures: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let full = FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = (random % 1000) as f64 / 2000.0;
    full.mul_f64(1.0 - fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        for failures in 1..40 {
            let pause = backoff(failures);
            let full = FIRST_BACKOFF
                .saturating_mul(1 << (failures - 1).min(16))
                .min(MAX_BACKOFF);
            assert!(pause <= full && pause >= full / 2, "{failures}: {pause:?}");
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }
}
