//! The link to the broker: connected and subscribed, or waiting to reconnect
//! with a capped, jittered back-off, forever. The back-off is forgotten only
//! once a link has proved healthy (a message handled, or [`HEALTHY_AFTER`]
//! up), so a broker that accepts and then drops every connection is tried
//! less and less often, not in a loop. One log line per change of state
//! (connected, lost, unreachable); the same line again is held back and
//! counted (see [`Repeats`]).

use crate::bus::{AckToken, BusError, Incoming, Publisher, Subscribe, SubscribeSpec, Trouble};
use std::time::{Duration, Instant};

/// First pause after a failed attempt; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Bound on connecting and subscribing to one host.
const CONNECT_BOUND: Duration = Duration::from_secs(5);
/// Bound on saying goodbye.
const DISCONNECT_BOUND: Duration = Duration::from_secs(2);
/// How long a link must stay up, if no message proves it sooner, before it
/// counts as healthy and the back-off is forgotten.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Pause between attempts while the broker refuses what the config asks
/// (the durable queue has the other type): only an operator changes that,
/// so there is no hurry and nothing to back off.
const OPERATOR_RETRY: Duration = Duration::from_secs(30);

/// The connection, if any, and when to try again.
pub struct Link {
    subscriber: Option<Box<dyn Subscribe>>,
    /// Counts connections made; acknowledgements belong to one of them.
    generation: u64,
    next_attempt: Instant,
    /// Failed attempts and links lost before they proved healthy, in a row.
    failures: u32,
    /// When the current connection was made, while it has not proved healthy.
    unproven_since: Option<Instant>,
    repeats: Repeats,
    /// Whether the broker's refusal of heart-beats was told (once a run).
    told_no_heart_beats: bool,
    /// Whether what the operator must do was told (once until subscribed).
    told_operator: bool,
}

impl Link {
    /// Not connected; the first call to [`Link::next`] connects.
    pub fn new() -> Link {
        Link {
            subscriber: None,
            generation: 0,
            next_attempt: Instant::now(),
            failures: 0,
            unproven_since: None,
            repeats: Repeats::default(),
            told_no_heart_beats: false,
            told_operator: false,
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
    ) -> Option<Incoming> {
        let Some(subscriber) = &mut self.subscriber else {
            self.connect(publisher, spec, wait);
            return None;
        };
        let next = subscriber.next(wait);
        if self
            .unproven_since
            .is_some_and(|since| since.elapsed() >= HEALTHY_AFTER)
        {
            self.proved_healthy();
        }
        match next {
            Ok(delivery) => delivery,
            Err(error) => {
                self.lost(&error.to_string());
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
        match publisher.subscribe(spec, CONNECT_BOUND) {
            Ok(subscriber) => {
                let line = format!(
                    "connected to {}, subscribed to {}{}{}{}",
                    subscriber.host(),
                    spec.destinations.join(", "),
                    spec.durable
                        .as_ref()
                        .map_or(String::new(), |name| format!(" (durable {name})")),
                    spec.group.as_ref().map_or(String::new(), |group| format!(
                        ", sharing it with group {} for actions",
                        group.name
                    )),
                    spec.control.as_ref().map_or(String::new(), |topic| format!(
                        ", taking fleet commands on {topic}"
                    ))
                );
                log(self.repeats.say(line, Instant::now()));
                self.tell_unwatched(&*subscriber);
                self.told_operator = false;
                self.subscriber = Some(subscriber);
                self.generation += 1;
                self.unproven_since = Some(Instant::now());
            }
            Err(failures) => {
                let standoff =
                    (failures.iter()).find(|(_, error)| error.trouble() == Trouble::NeedsOperator);
                if let Some((host, error)) = standoff {
                    self.operator_must_act(host, error);
                    return;
                }
                let reasons: Vec<String> = failures
                    .iter()
                    .map(|(host, error)| format!("{host}: {error}"))
                    .collect();
                let line = format!(
                    "cannot subscribe ({}); retrying until it works",
                    reasons.join("; ")
                );
                log(self.repeats.say(line, Instant::now()));
                self.back_off();
            }
        }
    }

    /// The broker refuses what the config asks for (the durable queue has
    /// the other type): says once what was found and what to do, then tries
    /// again every [`OPERATOR_RETRY`] without a word (retrying sooner
    /// cannot help; an operator must act).
    fn operator_must_act(&mut self, host: &str, error: &BusError) {
        if !self.told_operator {
            eprintln!(
                "hookbus: listen: {host}: {error}; retrying every {} s",
                OPERATOR_RETRY.as_secs()
            );
            self.told_operator = true;
        }
        self.next_attempt = Instant::now() + OPERATOR_RETRY;
    }

    /// Says once a run that a link that dies silently would be noticed late
    /// (the broker will not send the heart-beats we asked for).
    fn tell_unwatched(&mut self, subscriber: &dyn Subscribe) {
        if self.told_no_heart_beats {
            return;
        }
        if let Some(why) = subscriber.unwatched() {
            eprintln!("hookbus: listen: {why}");
            self.told_no_heart_beats = true;
        }
    }

    /// Acknowledges a message on the current connection; a message handled
    /// proves the link healthy.
    pub fn ack(&mut self, token: &AckToken) {
        if let Some(subscriber) = &mut self.subscriber {
            match subscriber.ack(token) {
                Ok(()) => self.proved_healthy(),
                Err(error) => self.lost(&error.to_string()),
            }
        }
    }

    /// Gives up the connection because the config changed: reconnects at
    /// once, with a fresh back-off.
    pub fn drop_connection(&mut self, why: &str) {
        self.proved_healthy();
        self.lost(why);
        self.next_attempt = Instant::now();
    }

    /// The connection failed: the next turn reconnects, at once if it had
    /// proved healthy, else after a longer pause than the last.
    fn lost(&mut self, why: &str) {
        let Some(subscriber) = self.subscriber.take() else {
            return;
        };
        let line = format!("lost {}: {why}; reconnecting", subscriber.host());
        log(self.repeats.say(line, Instant::now()));
        match self.unproven_since.take() {
            Some(_) => self.back_off(),
            None => self.next_attempt = Instant::now(),
        }
    }

    fn back_off(&mut self) {
        self.failures += 1;
        self.next_attempt = Instant::now() + backoff(self.failures);
    }

    fn proved_healthy(&mut self) {
        if self.unproven_since.take().is_some() || self.failures > 0 {
            self.failures = 0;
            log(self.repeats.forget());
        }
    }

    /// Disconnects politely, within a bound.
    pub fn close(&mut self) {
        if let Some(subscriber) = self.subscriber.take() {
            subscriber.close(DISCONNECT_BOUND);
        }
    }
}

/// Most distinct lines remembered as shown; an older one is let go.
const REMEMBERED_LINES: usize = 16;
/// A line held back as a repeat is shown again, with its count, after this.
const REPEAT_SHOWN_EVERY: Duration = Duration::from_secs(300);

/// The link's log lines while it is unhealthy: a line already shown is held
/// back and counted, and shown again as "LINE (repeated N times)" once
/// [`REPEAT_SHOWN_EVERY`] has passed or the link proves healthy.
#[derive(Default)]
struct Repeats {
    /// Lines shown, oldest first: when, and how many were held back since.
    shown: Vec<(String, Instant, u64)>,
}

impl Repeats {
    /// What to log, at `now`, for `line`: the line itself, nothing (a repeat
    /// held back) or the line with its count; before it, the count of a line
    /// let go to make room.
    fn say(&mut self, line: String, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        match self.shown.iter().position(|(shown, ..)| *shown == line) {
            Some(index) => {
                let (_, at, held) = &mut self.shown[index];
                *held += 1;
                if now.duration_since(*at) >= REPEAT_SHOWN_EVERY {
                    out.extend(repeated(&line, *held));
                    (*at, *held) = (now, 0);
                }
            }
            None => {
                if self.shown.len() >= REMEMBERED_LINES {
                    let (oldest, _, held) = self.shown.remove(0);
                    out.extend(repeated(&oldest, held));
                }
                out.push(line.clone());
                self.shown.push((line, now, 0));
            }
        }
        out
    }

    /// The counts of what was held back; every line may be shown again.
    fn forget(&mut self) -> Vec<String> {
        (self.shown.drain(..))
            .filter_map(|(line, _, held)| repeated(&line, held))
            .collect()
    }
}

fn repeated(line: &str, times: u64) -> Option<String> {
    let plural = if times == 1 { "" } else { "s" };
    (times > 0).then(|| format!("{line} (repeated {times} time{plural})"))
}

fn log(lines: Vec<String>) {
    for line in lines {
        eprintln!("hookbus: listen: {line}");
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

    #[test]
    fn repeated_lines_are_held_back_counted_and_told() {
        let mut log = Repeats::default();
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        assert_eq!(log.say("a".into(), at(0)), ["a"]);
        assert_eq!(log.say("b".into(), at(1)), ["b"]);
        for second in 2..5 {
            assert!(log.say("a".into(), at(second)).is_empty());
        }
        assert!(log.say("b".into(), at(250)).is_empty());
        assert_eq!(log.say("a".into(), at(300)), ["a (repeated 4 times)"]);
        assert!(log.say("a".into(), at(301)).is_empty());
        // Healthy: the counts are told, and each line is new again.
        assert_eq!(log.forget(), ["a (repeated 1 time)", "b (repeated 1 time)"]);
        assert_eq!(log.say("a".into(), at(303)), ["a"]);
        // Bounded: the oldest line is let go, its count told.
        log.say("a".into(), at(304));
        for index in 1..REMEMBERED_LINES {
            log.say(format!("line {index}"), at(305));
        }
        assert_eq!(
            log.say("one too many".into(), at(306)),
            ["a (repeated 1 time)", "one too many"]
        );
        assert_eq!(log.shown.len(), REMEMBERED_LINES);
    }
}
