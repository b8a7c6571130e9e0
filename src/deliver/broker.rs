//! The broker transport: every batch is first stored in the outbox, then the
//! outbox is flushed (older messages first, so order holds), so a crash, an
//! outage or a slow broker at any point loses nothing.
//!
//! Flushing runs on a thread of its own, so that the broker receipts batch N
//! while batch N+1 renders; the batch is on disk before the thread hears of it.

use super::flush::{self, Stopped};
use super::outbox::{Entry, Outbox};
use super::{Message, Outcome, Transport};
use crate::stomp::{Publisher, Retry, Verdict};
use anyhow::{bail, Result};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a run without a time bound (a replay by hand) waits for another
/// delivering process to let go of the outbox.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// How long a run may wait for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A hook (or `send`): waiting for the lock and publishing take at most
    /// this long in all, counted from the first batch (rendering does not eat
    /// into it); whatever is not delivered by then stays queued.
    Bounded(Duration),
    /// A run by hand (a replay): delivery goes on while the broker answers,
    /// as `hookbus flush` does (see [`flush::patience`]).
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
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    /// A hook's bound; `None` for a run nobody waits on.
    until: Option<Instant>,
}

struct Worker {
    wake: Sender<()>,
    handle: JoinHandle<Delivered>,
}

/// What the delivering thread did over the whole run.
#[derive(Debug, Default)]
struct Delivered {
    done: HashSet<String>,
    /// Files kept with only some of their messages left.
    partly: HashMap<String, usize>,
    dead_lettered: usize,
    stopped: Option<Stopped>,
}

impl Delivered {
    fn stalled(reason: String) -> Delivered {
        Delivered {
            stopped: Some(Stopped { reason }),
            ..Delivered::default()
        }
    }
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
        }
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
        if self.waiting == Waiting::Never {
            return;
        }
        let worker = self.worker.get_or_insert_with(|| {
            let (wake, asleep) = mpsc::channel();
            let outbox = self.outbox.clone();
            let publisher = Arc::clone(&self.publisher);
            let first = stored.to_string();
            let handle =
                std::thread::spawn(move || deliver(&outbox, &publisher, plan, &first, asleep));
            Worker { wake, handle }
        });
        // A thread that already stopped (broker down) leaves the batch queued.
        let _ = worker.wake.send(());
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

/// The delivering thread: takes the outbox lock, then flushes each time a
/// batch is stored (`first` is the run's first), until the run has stored
/// its last batch or a flush stops.
fn deliver(
    outbox: &Outbox,
    publisher: &Publisher,
    plan: Plan,
    first: &str,
    asleep: Receiver<()>,
) -> Delivered {
    let wait = plan.until.map_or(LOCK_WAIT, |until| {
        until.saturating_duration_since(Instant::now())
    });
    let _lock = match outbox.lock(wait) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return Delivered::stalled("another hookbus is delivering from the outbox".into())
        }
        Err(error) => return Delivered::stalled(format!("{error:#}")),
    };
    let mut delivered = Delivered::default();
    // One connection for the whole run, opened by the first flush.
    let mut delivery = None;
    loop {
        // Past the hook's bound the lock is of no use: let it go.
        let woke = match plan.until {
            Some(until) => asleep.recv_timeout(until.saturating_duration_since(Instant::now())),
            None => asleep.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match woke {
            Ok(()) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                delivered.stopped = Some(Stopped {
                    reason: flush::OUT_OF_TIME.into(),
                });
                break;
            }
        }
        // One flush covers every batch stored so far.
        while asleep.try_recv().is_ok() {}
        let flushed = outbox.list().and_then(|entries| {
            let delivery = delivery.get_or_insert_with(|| {
                let patience = flush::patience(publisher, plan.until);
                publisher.delivery(patience, retry(plan, &entries, first))
            });
            flush::flush_listed(outbox, delivery, plan.until, &entries)
        });
        match flushed {
            Ok(report) => {
                delivered.done.extend(report.done);
                delivered.partly.extend(report.partly);
                delivered.dead_lettered += report.dead_lettered;
                if report.stopped.is_some() {
                    delivered.stopped = report.stopped;
                    break;
                }
            }
            Err(error) => {
                delivered.stopped = Some(Stopped {
                    reason: format!("{error:#}"),
                });
                break;
            }
        }
    }
    if let Some(delivery) = delivery {
        delivery.close();
    }
    delivered
}

/// How hard a run tries the broker. A hook that finds messages of earlier
/// runs still waiting (older than `first`, its first stored batch) knows the
/// broker was down, so it tries each host once rather than spend its whole
/// bound retrying (during an outage every push would otherwise take
/// deadline_ms); the flush timer does the retrying.
fn retry(plan: Plan, entries: &[Entry], first: &str) -> Retry {
    let backlog = entries
        .first()
        .is_some_and(|entry| entry.name.as_str() < first);
    if plan.until.is_some() && backlog {
        Retry::OneRound
    } else {
        Retry::UntilDeadline
    }
}

impl Transport for Broker {
    fn deliver(&mut self, messages: &[Message]) -> Result<Outcome> {
        if messages.is_empty() {
            return Ok(Outcome::default());
        }
        let plan = self.plan();
        match self.outbox.store(messages) {
            Ok(entry) => {
                self.wake(plan, &entry.name);
                self.stored.push((entry.name, messages.len()));
                Ok(Outcome {
                    accepted: messages.len(),
                    ..Outcome::default()
                })
            }
            Err(why) => self.deliver_unsaved(messages, why, plan),
        }
    }

    /// Waits for the delivering thread and counts what is left queued.
    fn finish(&mut self) -> Result<Outcome> {
        let mut outcome = std::mem::take(&mut self.unsaved);
        let delivered = match self.worker.take() {
            Some(Worker { wake, handle }) => {
                drop(wake);
                handle
                    .join()
                    .unwrap_or_else(|_| Delivered::stalled("the delivering thread failed".into()))
            }
            None => Delivered::default(),
        };
        for (name, count) in self.stored.drain(..) {
            if delivered.done.contains(&name) {
                continue;
            }
            outcome.queued += delivered.partly.get(&name).copied().unwrap_or(count);
        }
        outcome.dead_lettered = delivered.dead_lettered;
        if outcome.queued > 0 {
            outcome.queued_because = delivered.stopped.map(|stopped| stopped.reason);
        }
        Ok(outcome)
    }
}
