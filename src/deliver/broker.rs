//! The broker transport: every batch is first stored in the outbox, then the
//! outbox is flushed (older messages first, so order holds), so a crash, an
//! outage or a slow broker at any point loses nothing.
//!
//! Flushing runs on a thread of its own, so that the broker receipts batch N
//! while batch N+1 renders; the batch is on disk before the thread hears of it.

use super::flush::{self, Stopped};
use super::lock::{Holder, OutboxLock};
use super::outbox::{Entry, Outbox, LOCK_POLL};
use super::{Message, Outcome, Transport};
use crate::stomp::{Progress, Publisher, Retry, Verdict};
use anyhow::{bail, Result};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
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
    /// Names each batch stored.
    wake: Sender<String>,
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

/// The delivering thread: takes the outbox lock (see [`take_lock`]), then
/// flushes each time a batch is stored (`first` is the run's first) until the
/// run has stored its last batch, and then again until the outbox is empty,
/// so that what other runs stored while it held the lock is not left behind.
/// Stops when a flush stops.
fn deliver(
    outbox: &Outbox,
    publisher: &Publisher,
    plan: Plan,
    first: String,
    asleep: Receiver<String>,
) -> Delivered {
    let mut run = RunFiles {
        stored: Vec::new(),
        storing: true,
    };
    let lock = match take_lock(outbox, plan, &mut run, &asleep) {
        Ok(lock) => lock,
        Err(stopped) => {
            return Delivered {
                stopped,
                ..Delivered::default()
            }
        }
    };
    let mut delivered = Delivered::default();
    // One connection for the whole run, opened by the first flush.
    let mut delivery = None;
    loop {
        run.hear(&asleep);
        let entries = match outbox.list() {
            Ok(entries) => entries,
            Err(error) => {
                delivered.stopped = Some(Stopped {
                    reason: format!("{error:#}"),
                });
                break;
            }
        };
        if entries.is_empty() && !run.storing {
            break;
        }
        if !entries.is_empty() {
            let delivery = delivery.get_or_insert_with(|| {
                let patience = flush::patience(publisher, plan.until);
                (publisher.delivery(patience, retry(plan, &entries, &first)))
                    .on_progress(|progress| lock.announce(holder(progress)))
            });
            match flush::flush_listed(outbox, delivery, plan.until, &entries) {
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
        if !run.storing {
            continue; // others may have stored meanwhile: list again
        }
        // Past the hook's bound the lock is of no use: let it go.
        let woke = match plan.until {
            Some(until) => asleep.recv_timeout(until.saturating_duration_since(Instant::now())),
            None => asleep.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match woke {
            Ok(name) => run.stored.push(name),
            Err(RecvTimeoutError::Disconnected) => run.storing = false,
            Err(RecvTimeoutError::Timeout) => {
                delivered.stopped = Some(Stopped {
                    reason: flush::OUT_OF_TIME.into(),
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

fn stopped(reason: String) -> Option<Stopped> {
    Some(Stopped { reason })
}

/// What the lock holder says when its delivery makes `progress`.
fn holder(progress: Progress) -> Holder {
    match progress {
        Progress::Connected => Holder::Delivering,
        Progress::AllHostsFailed => Holder::Unreachable,
    }
}

/// The files a run stored so far, as its delivering thread heard of them.
struct RunFiles {
    stored: Vec<String>,
    /// False once the run stored its last batch.
    storing: bool,
}

impl RunFiles {
    /// Takes in the batches stored since the last call.
    fn hear(&mut self, asleep: &Receiver<String>) {
        loop {
            match asleep.try_recv() {
                Ok(name) => self.stored.push(name),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.storing = false;
                    return;
                }
            }
        }
    }
}

/// Why a run that found the lock held left its files queued at once.
const HOLDER_UNREACHABLE: &str =
    "the broker is unreachable; another hookbus delivering from the outbox keeps trying";
/// Why a run that found the lock held gave up waiting for it.
const HOLDER_BUSY: &str = "another hookbus is delivering from the outbox";

/// How long a hook waits for a holder whose broker has not answered CONNECT
/// yet before it leaves its files to it: a holder whose broker accepts
/// connections but never answers may take its whole bound to find out.
/// Loopback brokers answer in milliseconds, busy ones in tens.
const STARTING_GRACE: Duration = Duration::from_millis(500);

/// Takes the outbox lock for a run whose files are stored. A run that finds
/// it held does not queue up behind the holder, which delivers what is
/// stored while it works: it waits only while that can still help it, until
///
/// - it gets the lock (the holder let go, maybe before it saw these files);
/// - the holder delivered every file of the run (`Err(None)`:
///   [`Broker::finish`] finds them gone);
/// - a hook's holder found the broker unreachable, or has not connected
///   for [`STARTING_GRACE`]: the files stay queued for the holder or
///   a later flush, and only one push per outage waits its bound;
/// - the run's bound passed.
fn take_lock(
    outbox: &Outbox,
    plan: Plan,
    run: &mut RunFiles,
    asleep: &Receiver<String>,
) -> Result<OutboxLock, Option<Stopped>> {
    let file = outbox
        .lock_file()
        .map_err(|error| stopped(format!("{error:#}")))?;
    let started = Instant::now();
    let until = plan.until.unwrap_or(started + LOCK_WAIT);
    loop {
        match file.try_take() {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) => {}
            Err(error) => return Err(stopped(format!("{error:#}"))),
        }
        run.hear(asleep);
        if !run.storing && run.stored.iter().all(|name| !outbox.holds(name)) {
            return Err(None);
        }
        if plan.until.is_some() {
            match file.holder() {
                Holder::Unreachable => return Err(stopped(HOLDER_UNREACHABLE.into())),
                Holder::Starting if started.elapsed() >= STARTING_GRACE => {
                    return Err(stopped(HOLDER_BUSY.into()))
                }
                _ => {}
            }
        }
        if Instant::now() >= until {
            return Err(stopped(HOLDER_BUSY.into()));
        }
        std::thread::sleep(LOCK_POLL);
    }
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
        if outcome.queued > 0 {
            outcome.queued_because = delivered.stopped.map(|stopped| stopped.reason);
        }
        Ok(outcome)
    }
}
