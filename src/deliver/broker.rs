//! The broker transport: every batch is first stored in the outbox, then the
//! outbox is flushed (older messages first, so order holds), so a crash, an
//! outage or a slow broker at any point loses nothing.

use super::flush::{self, FlushReport};
use super::outbox::{Outbox, OutboxLock};
use super::{Message, Outcome, Transport};
use crate::stomp::{Publisher, Retry};
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

/// How long a run without a time bound (a replay by hand) waits for another
/// delivering process to let go of the outbox.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// How long a run may wait for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A hook: waiting for the lock and publishing take at most this long in
    /// all, counted from the first batch (rendering does not eat into it);
    /// whatever is not delivered by then stays queued.
    Bounded(Duration),
    /// A run by hand: each publish has the broker's deadline.
    PerPublish,
    /// Store only; something else (a background `hookbus flush`) delivers.
    Never,
}

/// Stores, then publishes what the outbox holds.
pub struct Broker {
    publisher: Publisher,
    outbox: Outbox,
    waiting: Waiting,
    /// When a bounded wait ends; set by the first batch.
    until: Option<Instant>,
    /// Whether publishing retries failed hosts; set by the first batch.
    retry: Option<Retry>,
    lock: Option<OutboxLock>,
    /// Why delivery stopped earlier in this run: later batches are only stored.
    stalled: Option<String>,
}

impl Broker {
    /// A transport storing in `outbox` and publishing with `publisher`.
    pub fn new(publisher: Publisher, outbox: Outbox, waiting: Waiting) -> Broker {
        Broker {
            publisher,
            outbox,
            waiting,
            until: None,
            retry: None,
            lock: None,
            stalled: None,
        }
    }

    fn until(&mut self) -> Option<Instant> {
        match self.waiting {
            Waiting::Bounded(bound) => {
                Some(*self.until.get_or_insert_with(|| Instant::now() + bound))
            }
            Waiting::PerPublish | Waiting::Never => None,
        }
    }

    /// How patient this run's publishing is: a hook that finds messages of
    /// earlier runs still waiting knows the broker was down, so it tries each
    /// host once rather than spend its whole bound retrying (during an outage
    /// every push would otherwise take deadline_ms); the flush timer retries.
    fn first_retry(&self) -> Retry {
        let backlog = self.outbox.list().is_ok_and(|entries| !entries.is_empty());
        match self.waiting {
            Waiting::Bounded(_) if backlog => Retry::OneRound,
            _ => Retry::UntilDeadline,
        }
    }

    /// Flushes the outbox under its lock; returns the report, or why it could
    /// not flush at all.
    fn flush(&mut self) -> Result<FlushReport, String> {
        if self.lock.is_none() {
            let wait = match self.until() {
                Some(until) => until.saturating_duration_since(Instant::now()),
                None => LOCK_WAIT,
            };
            match self.outbox.lock(wait) {
                Ok(Some(lock)) => self.lock = Some(lock),
                Ok(None) => return Err("another hookbus is delivering from the outbox".into()),
                Err(error) => return Err(format!("{error:#}")),
            }
        }
        let until = self.until();
        let retry = self.retry.unwrap_or(Retry::UntilDeadline);
        flush::flush(&self.outbox, &self.publisher, until, retry).map_err(|e| format!("{e:#}"))
    }

    /// The outbox cannot take the messages: publish them directly, or fail
    /// saying exactly which messages are gone.
    fn deliver_unsaved(&mut self, messages: &[Message], why: anyhow::Error) -> Result<Outcome> {
        let deadline = self
            .until()
            .unwrap_or_else(|| Instant::now() + self.publisher.deadline());
        let retry = self.retry.unwrap_or(Retry::UntilDeadline);
        let error = match self.publisher.publish_until(messages, deadline, retry) {
            Ok(()) => {
                return Ok(Outcome {
                    accepted: messages.len(),
                    unsaved: messages.len(),
                    unsaved_because: Some(format!("{why:#}")),
                    ..Outcome::default()
                })
            }
            Err(error) => error,
        };
        let lost: Vec<String> = messages[error.delivered..]
            .iter()
            .map(|message| {
                format!(
                    "{} {} ({})",
                    message.destination,
                    message.header("hookbus-id").unwrap_or("-"),
                    message.header("subject").unwrap_or("")
                )
            })
            .collect();
        bail!(
            "{why:#}; publishing them directly failed too ({}); not delivered: {}",
            error.reasons(),
            lost.join(", ")
        )
    }
}

impl Transport for Broker {
    fn deliver(&mut self, messages: &[Message]) -> Result<Outcome> {
        if messages.is_empty() {
            return Ok(Outcome::default());
        }
        if self.retry.is_none() {
            self.retry = Some(self.first_retry());
        }
        let entry = match self.outbox.store(messages) {
            Ok(entry) => entry,
            Err(why) => return self.deliver_unsaved(messages, why),
        };
        let mut outcome = Outcome {
            accepted: messages.len(),
            queued: messages.len(),
            ..Outcome::default()
        };
        if self.waiting == Waiting::Never {
            return Ok(outcome);
        }
        if self.stalled.is_none() {
            match self.flush() {
                Ok(report) => {
                    outcome.dead_lettered = report.dead_lettered;
                    match report.stopped {
                        Some(stopped) => {
                            if report.done.contains(&entry.name) {
                                outcome.queued = 0;
                            } else if stopped.entry.as_deref() == Some(entry.name.as_str()) {
                                outcome.queued = stopped.left;
                            }
                            self.stalled = Some(stopped.reason);
                        }
                        None => outcome.queued = 0,
                    }
                }
                Err(why) => self.stalled = Some(why),
            }
        }
        if outcome.queued > 0 {
            outcome.queued_because = self.stalled.clone();
        }
        Ok(outcome)
    }
}
