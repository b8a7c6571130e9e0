//! Delivering what waits in the outbox: oldest first, stopping at the first
//! failure so that each repository's messages keep their order. A message the
//! broker refuses for good becomes a dead letter instead of blocking the rest.
//! Callers hold the outbox lock ([`Outbox::lock`]), so no two flushes send the
//! same file.

use super::outbox::{Entry, Outbox};
use super::Message;
use crate::stomp::publisher::PublishError;
use crate::stomp::{Publisher, Retry};
use anyhow::Result;
use std::time::Instant;

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

/// Delivers every pending file, oldest first, including files stored while it
/// runs. `until` bounds the whole flush (a hook's wait); without it each
/// publish has the broker's own deadline. `retry` says whether a publish
/// whose hosts all failed tries them again within its deadline.
pub fn flush(
    outbox: &Outbox,
    publisher: &Publisher,
    until: Option<Instant>,
    retry: Retry,
) -> Result<FlushReport> {
    let mut flush = Flush {
        outbox,
        publisher,
        until,
        retry,
        report: FlushReport::default(),
    };
    loop {
        let entries = outbox.list()?;
        if entries.is_empty() {
            break;
        }
        for entry in &entries {
            if flush.out_of_time() {
                flush.report.stopped = Some(Stopped::before_any_file(
                    "the hook's time bound ([broker] deadline_ms) ran out".into(),
                ));
            } else {
                flush.file(entry)?;
            }
            if flush.report.stopped.is_some() {
                return Ok(flush.report);
            }
        }
    }
    Ok(flush.report)
}

struct Flush<'a> {
    outbox: &'a Outbox,
    publisher: &'a Publisher,
    until: Option<Instant>,
    retry: Retry,
    report: FlushReport,
}

impl Flush<'_> {
    fn deadline(&self) -> Instant {
        self.until
            .unwrap_or_else(|| Instant::now() + self.publisher.deadline())
    }

    fn out_of_time(&self) -> bool {
        self.until.is_some_and(|until| Instant::now() >= until)
    }

    /// Delivers one file; on failure keeps what is left of it in place.
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
        let mut next = 0;
        // Messages the file on disk still holds: it is rewritten only when
        // some of them went out.
        let mut on_disk = messages.len();
        while next < messages.len() {
            let rest = &messages[next..];
            let error = match self
                .publisher
                .publish_until(rest, self.deadline(), self.retry)
            {
                Ok(()) => {
                    self.report.delivered += rest.len();
                    next = messages.len();
                    continue;
                }
                Err(error) => error,
            };
            self.report.delivered += error.delivered;
            next += error.delivered;
            if !error.refused {
                // With no pusher waiting, a publish that got somewhere before
                // its deadline (a busy broker) is worth another: only one
                // that makes no progress stops the flush.
                if self.until.is_none() && error.delivered > 0 && !error.permanent {
                    continue;
                }
                return self.stop(entry, &messages[next..], on_disk, &error);
            }
            // An ERROR may name any message still unreceipted: try the first
            // alone to learn whether it is the one refused.
            match self
                .publisher
                .publish_until(&messages[next..=next], self.deadline(), self.retry)
            {
                Ok(()) => self.report.delivered += 1,
                Err(single) if single.refused => {
                    let message = &messages[next];
                    self.outbox.bury(entry, next, message, &single.reasons())?;
                    self.outbox.keep_only(entry, &messages[next + 1..])?;
                    on_disk = messages.len() - next - 1;
                    self.report.dead_lettered += 1;
                }
                Err(single) => return self.stop(entry, &messages[next..], on_disk, &single),
            }
            next += 1;
        }
        if on_disk > 0 {
            self.outbox.remove(entry)?;
        }
        self.report.done.push(entry.name.clone());
        Ok(())
    }

    fn stop(
        &mut self,
        entry: &Entry,
        rest: &[Message],
        on_disk: usize,
        error: &PublishError,
    ) -> Result<()> {
        if rest.len() < on_disk {
            self.outbox.keep_only(entry, rest)?;
        }
        self.report.stopped = Some(Stopped {
            entry: Some(entry.name.clone()),
            left: rest.len(),
            reason: error.reasons(),
        });
        Ok(())
    }
}
