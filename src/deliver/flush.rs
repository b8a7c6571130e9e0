//! Delivering what waits in the outbox: oldest first, over one connection,
//! stopping at the first failure so that each repository's messages keep
//! their order. A message the broker refuses for good becomes a dead letter
//! instead of blocking the rest, and costs the others nothing: what the broker
//! receipted is never sent again.
//! Callers hold the outbox lock ([`Outbox::lock`]), so no two flushes send the
//! same file.

use super::outbox::{Entry, Outbox};
use crate::stomp::{Delivery, Patience, Publisher, Retry, Verdict};
use anyhow::Result;
use std::time::{Duration, Instant};

/// What one flush did.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// Messages the broker receipted.
    pub delivered: usize,
    /// Messages moved to the dead letters.
    pub dead_lettered: usize,
    /// Files delivered (or dead-lettered) completely.
    pub done: Vec<String>,
    /// Files that could not be read, moved to the dead letters, and why.
    pub set_aside: Vec<String>,
    /// Why the flush stopped early, if it did.
    pub stopped: Option<Stopped>,
}

/// Where and why a flush stopped.
#[derive(Debug)]
pub struct Stopped {
    /// The file it stopped in (`None` when it stopped before a file: out of time).
    pub entry: Option<String>,
    /// Messages of that file still waiting.
    pub left: usize,
    /// Why it stopped, as the broker or the clock said it.
    pub reason: String,
}

impl Stopped {
    /// A stop outside any file: out of time, or no delivery possible at all.
    pub fn before_any_file(reason: String) -> Stopped {
        Stopped {
            entry: None,
            left: 0,
            reason,
        }
    }
}

/// Why a hook's delivery stopped when its time bound passed.
pub const OUT_OF_TIME: &str = "the hook's time bound ([broker] deadline_ms) ran out";

/// Shortest time a flush with no pusher waiting gives a broker to answer
/// (see [`flush`]): long enough that a loaded machine or a garbage-collecting
/// broker does not stop a flush that is getting somewhere.
pub const MIN_STALL: Duration = Duration::from_secs(5);

/// How long a flush may take: until `until` (a hook's wait); without it no
/// pusher waits, so it goes on while the broker answers messages and gives
/// up once it answered none for the broker's deadline (at least
/// [`MIN_STALL`]).
pub fn patience(publisher: &Publisher, until: Option<Instant>) -> Patience {
    match until {
        Some(until) => Patience::Until(until),
        None => Patience::WhileProgress(publisher.deadline().max(MIN_STALL)),
    }
}

/// Delivers every pending file, oldest first, including files stored while it
/// runs, over one connection, with [`patience`]. `retry` says whether a
/// publish whose hosts all failed tries them again within its deadline.
pub fn flush(
    outbox: &Outbox,
    publisher: &Publisher,
    until: Option<Instant>,
    retry: Retry,
) -> Result<FlushReport> {
    let mut delivery = publisher.delivery(patience(publisher, until), retry);
    let report = flush_on(outbox, &mut delivery, until);
    delivery.close();
    report
}

/// Like [`flush`], on a delivery that may already be open (a run that
/// flushes after each batch it stores keeps one connection).
pub fn flush_on(
    outbox: &Outbox,
    delivery: &mut Delivery<'_>,
    until: Option<Instant>,
) -> Result<FlushReport> {
    let mut flush = Flush {
        outbox,
        delivery,
        until,
        report: FlushReport::default(),
    };
    flush.all()?;
    Ok(flush.report)
}

struct Flush<'a, 'p> {
    outbox: &'a Outbox,
    delivery: &'a mut Delivery<'p>,
    until: Option<Instant>,
    report: FlushReport,
}

impl Flush<'_, '_> {
    fn all(&mut self) -> Result<()> {
        loop {
            let entries = self.outbox.list()?;
            if entries.is_empty() {
                return Ok(());
            }
            for entry in &entries {
                if self.until.is_some_and(|until| Instant::now() >= until) {
                    self.report.stopped = Some(Stopped::before_any_file(OUT_OF_TIME.into()));
                } else {
                    self.file(entry)?;
                }
                if self.report.stopped.is_some() {
                    return Ok(());
                }
            }
        }
    }

    /// Delivers one file: what the broker receipted goes, what it refused
    /// becomes a dead letter, what it did not answer stays, in order.
    fn file(&mut self, entry: &Entry) -> Result<()> {
        let messages = match self.outbox.read_if_present(entry) {
            Ok(Some(messages)) => messages,
            Ok(None) => return Ok(()),
            Err(damaged) => {
                // Unreadable: nothing to send, but it must not block the rest.
                self.outbox.set_aside(entry)?;
                self.report.set_aside.push(format!("{damaged:#}"));
                return Ok(());
            }
        };
        let error = match self.delivery.publish(&messages) {
            Ok(()) => {
                self.report.delivered += messages.len();
                self.outbox.remove(entry)?;
                self.report.done.push(entry.name.clone());
                return Ok(());
            }
            Err(error) => error,
        };
        let mut rest = Vec::new();
        for (index, (message, verdict)) in messages.iter().zip(&error.verdicts).enumerate() {
            match verdict {
                Verdict::Receipted => self.report.delivered += 1,
                Verdict::Refused(reason) => {
                    self.outbox.bury(entry, index, message, reason)?;
                    self.report.dead_lettered += 1;
                }
                Verdict::Unanswered => rest.push(message.clone()),
            }
        }
        if rest.len() < messages.len() {
            self.outbox.keep_only(entry, &rest)?;
        }
        if rest.is_empty() {
            self.report.done.push(entry.name.clone());
        } else {
            self.report.stopped = Some(Stopped {
                entry: Some(entry.name.clone()),
                left: rest.len(),
                reason: error.reasons(),
            });
        }
        Ok(())
    }
}
