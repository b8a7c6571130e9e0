//! The broker transport: every batch is first stored in the outbox, then the
//! outbox is flushed (older messages first, so order holds), so a crash, an
//! outage or a slow broker at any point loses nothing.
//!
//! Flushing runs on a thread of its own, so that the broker receipts batch N
//! while batch N+1 renders. The thread hears of a batch as soon as its file
//! is in the outbox, whole, and publishes it while the file is synced; a run
//! reports nothing before every batch is on disk, so each message is on disk
//! or receipted (usually both) before the pusher is told anything.

pub use super::delivering::LOCK_WAIT;
use super::delivering::{deliver, Delivered, Plan};
use super::outbox::{Entry, Outbox};
use super::relay::board::Board;
use super::{Message, Outcome, Transport};
use crate::bus::{Publisher, Retry, Verdict};
use anyhow::{bail, Result};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a run may wait for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A hook (or `send`): waiting for the lock and publishing take at most
    /// this long in all, counted from the first batch (rendering does not eat
    /// into it); whatever is not delivered by then stays queued.
    Bounded(Duration),
    /// A run by hand (a replay): delivery goes on while the broker answers,
    /// as `hookbus flush` does (see [`super::flush::patience`]).
    PerPublish,
    /// Store only; something else (a background `hookbus flush`) delivers.
    Never,
}

/// Stores, then publishes what the outbox holds.
pub struct Broker {
    publisher: Arc<Publisher>,
    outbox: Outbox,
    waiting: Waiting,
    /// Set by the first batch: the bound and patience of this run.
    plan: Option<Plan>,
    /// The delivering thread, once a batch is stored.
    worker: Option<Worker>,
    /// This run's files and how many messages each holds.
    stored: Vec<(String, usize)>,
    /// Messages published directly because the outbox could not take them.
    unsaved: Outcome,
    /// The relay of this process, holding the outbox: it delivers what the
    /// run stores, and the run waits on its board.
    relay: Option<Arc<Board>>,
}

struct Worker {
    /// Names each batch stored.
    wake: Sender<String>,
    handle: JoinHandle<Delivered>,
}

impl Broker {
    /// A transport storing in `outbox` and publishing with `publisher`.
    pub fn new(publisher: Publisher, outbox: Outbox, waiting: Waiting) -> Broker {
        Broker {
            publisher: Arc::new(publisher),
            outbox,
            waiting,
            plan: None,
            worker: None,
            stored: Vec::new(),
            unsaved: Outcome::default(),
            relay: None,
        }
    }

    /// With `board`, the same run inside `hookbus relay`, which holds the
    /// outbox and delivers what the run stores, telling `board` how that
    /// goes.
    pub fn beside_relay(mut self, board: Option<Arc<Board>>) -> Broker {
        self.relay = board;
        self
    }

    /// The bound of this run, fixed by its first batch.
    fn plan(&mut self) -> Plan {
        *self.plan.get_or_insert_with(|| match self.waiting {
            Waiting::Bounded(bound) => Plan {
                until: Some(Instant::now() + bound),
            },
            Waiting::PerPublish | Waiting::Never => Plan { until: None },
        })
    }

    /// Tells the delivering thread a batch is on disk, starting it if needed.
    fn wake(&mut self, plan: Plan, stored: &str) {
        if self.waiting == Waiting::Never || self.relay.is_some() {
            return;
        }
        let worker = self.worker.get_or_insert_with(|| {
            let (wake, asleep) = mpsc::channel();
            let outbox = self.outbox.clone();
            let publisher = Arc::clone(&self.publisher);
            let first = stored.to_string();
            let handle =
                std::thread::spawn(move || deliver(&outbox, &publisher, plan, first, asleep));
            Worker { wake, handle }
        });
        // A thread that already stopped (broker down) leaves the batch queued.
        let _ = worker.wake.send(stored.to_string());
    }

    /// What became of a file of this run its own delivery did not finish:
    /// still in the outbox, its messages (those another process has not
    /// delivered yet) are queued; gone, another process delivered it while
    /// this run waited for the lock, burying what the broker refused.
    fn fate_elsewhere(&self, name: &str, count: usize, outcome: &mut Outcome) {
        let entry = Entry {
            name: name.to_string(),
            path: self.outbox.dir().join(name),
        };
        match self.outbox.read_if_present(&entry) {
            Ok(Some(messages)) => outcome.queued += messages.len(),
            Ok(None) => outcome.dead_lettered += self.outbox.buried_from(name),
            Err(_) => outcome.queued += count,
        }
    }

    /// The outbox cannot take the messages: publish them directly, or fail
    /// saying exactly which messages are gone.
    fn deliver_unsaved(
        &mut self,
        messages: &[Message],
        why: anyhow::Error,
        plan: Plan,
    ) -> Result<Outcome> {
        let deadline = plan
            .until
            .unwrap_or_else(|| Instant::now() + self.publisher.deadline());
        let error = match self
            .publisher
            .publish_until(messages, deadline, Retry::UntilDeadline)
        {
            Ok(()) => {
                let outcome = Outcome {
                    unsaved: messages.len(),
                    unsaved_because: Some(format!("{why:#}")),
                    ..Outcome::default()
                };
                self.unsaved.add(outcome);
                return Ok(Outcome {
                    accepted: messages.len(),
                    ..Outcome::default()
                });
            }
            Err(error) => error,
        };
        let lost: Vec<String> = messages
            .iter()
            .zip(&error.verdicts)
            .filter(|(_, verdict)| **verdict != Verdict::Receipted)
            .map(|(message, _)| {
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
        let plan = self.plan();
        // The delivering thread publishes the batch while it is synced: a
        // hook waits for the slower of the two, not for both in turn.
        let outbox = self.outbox.clone();
        let mut placed = None;
        let stored = outbox.store_then_sync(messages, |entry| {
            self.wake(plan, &entry.name);
            placed = Some(entry.name.clone());
        });
        match (stored, placed) {
            (Ok(entry), _) => {
                self.stored.push((entry.name, messages.len()));
                Ok(Outcome {
                    accepted: messages.len(),
                    ..Outcome::default()
                })
            }
            // In the outbox but maybe not on disk: neither delivered nor
            // safely queued as far as this run can tell.
            (Err(why), Some(name)) => Err(why.context(format!(
                "{name} is in the outbox and may be delivered, but may not survive a crash"
            ))),
            (Err(why), None) => self.deliver_unsaved(messages, why, plan),
        }
    }

    /// Waits for the delivering thread and counts what is left queued.
    fn finish(&mut self) -> Result<Outcome> {
        let mut outcome = std::mem::take(&mut self.unsaved);
        let delivered = match (self.worker.take(), &self.relay, self.plan) {
            (Some(Worker { wake, handle }), _, _) => {
                drop(wake);
                handle
                    .join()
                    .unwrap_or_else(|_| Delivered::stalled("the delivering thread failed".into()))
            }
            (None, Some(board), Some(plan)) if self.waiting != Waiting::Never => {
                let names: Vec<String> = self.stored.iter().map(|(name, _)| name.clone()).collect();
                let until = (plan.until).unwrap_or_else(|| Instant::now() + LOCK_WAIT);
                Delivered {
                    stopped: board.wait_for(&self.outbox, &names, until),
                    ..Delivered::default()
                }
            }
            _ => Delivered::default(),
        };
        outcome.dead_lettered = delivered.dead_lettered;
        for (name, count) in std::mem::take(&mut self.stored) {
            if delivered.done.contains(&name) {
                continue;
            }
            match delivered.partly.get(&name) {
                Some(left) => outcome.queued += left,
                None => self.fate_elsewhere(&name, count, &mut outcome),
            }
        }
        if let Some(stopped) = delivered.stopped.filter(|_| outcome.queued > 0) {
            outcome.queued_because = Some(stopped.reason);
            outcome.relay_keeps_trying = stopped.relay_keeps_trying;
        }
        Ok(outcome)
    }
}
