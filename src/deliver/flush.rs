//! Delivering what waits in the outbox: oldest first, over one connection,
//! stopping at the first failure so that each repository's messages keep
//! their order. A message the broker refuses for good becomes a dead letter
//! instead of blocking the rest, and costs the others nothing: what the broker
//! receipted is never sent again.
//! Callers hold the outbox lock ([`Outbox::lock`]), so no two flushes send the
//! same file.

use super::outbox::{Entry, Outbox};
use super::Message;
use crate::bus::{Delivery, Patience, Publisher, Retry, Verdict};
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
    /// Files kept with only some of their messages, and how many are left.
    pub partly: Vec<(String, usize)>,
    /// Files that could not be read, moved to the dead letters, and why.
    pub set_aside: Vec<String>,
    /// Why the flush stopped early, if it did.
    pub stopped: Option<Stopped>,
}

/// Why a flush stopped.
#[derive(Debug)]
pub struct Stopped {
    /// As the broker or the clock said it.
    pub reason: String,
    /// What it left is `hookbus relay`'s to deliver: the relay holds the
    /// outbox and keeps trying the unreachable broker.
    pub relay_keeps_trying: bool,
}

impl Stopped {
    /// Stopped for `reason`; what is left waits for the next flush.
    pub fn because(reason: String) -> Stopped {
        Stopped {
            reason,
            relay_keeps_trying: false,
        }
    }
}

/// Messages of consecutive files published as one group.
const GROUP_MESSAGES: usize = 4096;
/// Body bytes of one group: a bound on what a flush holds in memory.
const GROUP_BYTES: usize = 8 * 1024 * 1024;

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
    let report = (outbox.list())
        .and_then(|entries| Flush::new(outbox, &mut delivery, until).until_empty(entries));
    delivery.close();
    report
}

/// For a daemon's background delivery: when anything waits in `outbox` and
/// no other process is delivering from it (the lock is waited for at most
/// `wait`), delivers it trying each host once. `None` when there was
/// nothing to do or another process holds the lock. Reads the directory
/// once when it is empty, as it mostly is.
pub fn flush_waiting(
    outbox: &Outbox,
    publisher: &Publisher,
    wait: Duration,
) -> Result<Option<FlushReport>> {
    let entries = outbox.list()?;
    if entries.is_empty() {
        return Ok(None);
    }
    let Some(_lock) = outbox.lock(wait)? else {
        return Ok(None);
    };
    let mut delivery = publisher.delivery(patience(publisher, None), Retry::OneRound);
    let report = Flush::new(outbox, &mut delivery, None).until_empty(entries);
    delivery.close();
    report.map(Some)
}

/// Delivers `entries`, the outbox as the caller just listed it, on a
/// delivery that may already be open (a hook's delivering thread keeps one
/// connection, hears of every batch its run stores, and so reads the
/// directory once per batch). `departed` is called each time files leave
/// the outbox.
pub fn flush_listed(
    outbox: &Outbox,
    delivery: &mut Delivery<'_>,
    until: Option<Instant>,
    entries: &[Entry],
    departed: &dyn Fn(),
) -> Result<FlushReport> {
    let mut flush = Flush::new(outbox, delivery, until);
    flush.departed = departed;
    flush.these(entries)?;
    Ok(flush.report)
}

struct Flush<'a, 'p> {
    outbox: &'a Outbox,
    delivery: &'a mut Delivery<'p>,
    until: Option<Instant>,
    report: FlushReport,
    departed: &'a dyn Fn(),
}

impl<'a, 'p> Flush<'a, 'p> {
    fn new(outbox: &'a Outbox, delivery: &'a mut Delivery<'p>, until: Option<Instant>) -> Self {
        Flush {
            outbox,
            delivery,
            until,
            report: FlushReport::default(),
            departed: &|| {},
        }
    }

    /// Delivers what the outbox holds, listing it again for files stored
    /// meanwhile, until it is empty or the flush stops.
    fn until_empty(mut self, listed: Vec<Entry>) -> Result<FlushReport> {
        let mut entries = listed;
        while !entries.is_empty() && self.these(&entries)? {
            entries = self.outbox.list()?;
        }
        Ok(self.report)
    }

    /// Delivers `entries` in groups; false when it stopped early.
    fn these(&mut self, entries: &[Entry]) -> Result<bool> {
        let mut rest = entries;
        while !rest.is_empty() {
            if self.until.is_some_and(|until| Instant::now() >= until) {
                self.stop(OUT_OF_TIME.into());
                return Ok(false);
            }
            let group = self.read_group(&mut rest)?;
            if !group.files.is_empty() {
                self.deliver(group)?;
            }
            if self.report.stopped.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn stop(&mut self, reason: String) {
        self.report.stopped = Some(Stopped::because(reason));
    }

    /// Reads the next files of `rest` (at least one, then up to the group
    /// bounds) and moves `rest` past them.
    fn read_group<'e>(&mut self, rest: &mut &'e [Entry]) -> Result<Group<'e>> {
        let mut group = Group::default();
        while let Some((entry, after)) = rest.split_first() {
            if !group.files.is_empty()
                && (group.messages.len() >= GROUP_MESSAGES || group.bytes >= GROUP_BYTES)
            {
                break;
            }
            *rest = after;
            match self.outbox.read_if_present(entry) {
                Ok(Some(messages)) => {
                    group.bytes += messages.iter().map(|m| m.body.len()).sum::<usize>();
                    group.files.push((entry, messages.len()));
                    group.messages.extend(messages);
                }
                Ok(None) => {}
                Err(damaged) => {
                    // Unreadable: nothing to send, but it must not block the rest.
                    self.outbox.set_aside(entry)?;
                    self.report.set_aside.push(format!("{damaged:#}"));
                }
            }
        }
        Ok(group)
    }

    /// Delivers a group of files in one pipelined publish: what the broker
    /// receipted goes, what it refused becomes a dead letter, what it did not
    /// answer stays, in order.
    fn deliver(&mut self, group: Group<'_>) -> Result<()> {
        let error = match self.delivery.publish(&group.messages) {
            Ok(()) => {
                self.report.delivered += group.messages.len();
                let entries: Vec<&Entry> = group.files.iter().map(|(entry, _)| *entry).collect();
                return self.done(&entries);
            }
            Err(error) => error,
        };
        let mut start = 0;
        let mut finished = Vec::new();
        for &(entry, count) in &group.files {
            let range = start..start + count;
            start += count;
            let mut rest = Vec::new();
            for (index, message) in group.messages[range.clone()].iter().enumerate() {
                match &error.verdicts[range.start + index] {
                    Verdict::Receipted => self.report.delivered += 1,
                    Verdict::Refused(reason) => {
                        self.outbox.bury(entry, index, message, reason)?;
                        self.report.dead_lettered += 1;
                    }
                    Verdict::Unanswered => rest.push(message.clone()),
                }
            }
            if rest.is_empty() {
                finished.push(entry);
                continue;
            }
            if rest.len() < count {
                self.outbox.keep_only(entry, &rest)?;
            }
            self.report.partly.push((entry.name.clone(), rest.len()));
        }
        if !self.report.partly.is_empty() {
            self.stop(error.reasons());
        }
        self.done(&finished)
    }

    /// Files with nothing left to send: removed (see [`Outbox::remove_all`]).
    fn done(&mut self, entries: &[&Entry]) -> Result<()> {
        self.outbox.remove_all(entries)?;
        if !entries.is_empty() {
            (self.departed)();
        }
        (self.report.done).extend(entries.iter().map(|entry| entry.name.clone()));
        Ok(())
    }
}

/// Consecutive outbox files sent as one pipelined publish, so the receipt
/// pipeline drains once per group rather than once per file.
#[derive(Default)]
struct Group<'e> {
    /// The files, each with how many of `messages` it holds, in order.
    files: Vec<(&'e Entry, usize)>,
    messages: Vec<Message>,
    bytes: usize,
}
