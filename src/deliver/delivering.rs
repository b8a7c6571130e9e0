//! The delivering thread of a broker run ([`super::broker::Broker`]): it
//! takes the outbox lock, or leaves the run's files to the process holding
//! it while that can deliver them (see [`take_lock`]), and flushes as the run
//! stores batches, then until the outbox is empty.

use super::flush::{self, Stopped};
use super::lock::{Holder, LockFile, OutboxLock};
use super::outbox::{Entry, Outbox, LOCK_POLL};
use super::watch::{DirWatch, Woke};
use crate::bus::{Publisher, Retry};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// How long a run without a time bound (a replay by hand) waits for another
/// delivering process to let go of the outbox.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The bound of a run, fixed by its first batch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    /// A hook's bound; `None` for a run nobody waits on.
    pub(super) until: Option<Instant>,
}

/// What the delivering thread did over the whole run.
#[derive(Debug, Default)]
pub(super) struct Delivered {
    /// Files delivered (or dead-lettered) completely.
    pub(super) done: HashSet<String>,
    /// Files kept with only some of their messages left.
    pub(super) partly: HashMap<String, usize>,
    /// Messages moved to the dead letters.
    pub(super) dead_lettered: usize,
    /// Why delivery stopped early, if it did.
    pub(super) stopped: Option<Stopped>,
}

impl Delivered {
    /// Nothing delivered, for `reason`.
    pub(super) fn stalled(reason: String) -> Delivered {
        Delivered {
            stopped: Some(Stopped::because(reason)),
            ..Delivered::default()
        }
    }
}

/// The delivering thread: takes the outbox lock (see [`take_lock`]), then
/// flushes each time a batch is stored (`first` is the run's first) until the
/// run has stored its last batch, and then again until the outbox is empty,
/// so that what other runs stored while it held the lock is not left behind.
/// Stops when a flush stops.
pub(super) fn deliver(
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
                delivered.stopped = Some(Stopped::because(format!("{error:#}")));
                break;
            }
        };
        if entries.is_empty() && !run.storing {
            break;
        }
        if !entries.is_empty() {
            let delivery = delivery.get_or_insert_with(|| {
                let patience = flush::patience(publisher, plan.until);
                let retry = retry(plan, &entries, &first);
                publisher.delivery_telling(patience, retry, |progress| {
                    lock.tell(progress);
                })
            });
            match flush::flush_listed(outbox, delivery, plan.until, &entries, &|| {}) {
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
                    delivered.stopped = Some(Stopped::because(format!("{error:#}")));
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
                delivered.stopped = Some(Stopped::because(flush::OUT_OF_TIME.into()));
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
    Some(Stopped::because(reason))
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
/// Why a run that found `hookbus relay` holding the lock left its files
/// queued (the broker unreachable, or no answer to CONNECT within
/// half a second): the relay delivers them once the broker answers.
pub(super) const RELAY_KEEPS_TRYING: &str = "the broker is unreachable; hookbus relay keeps trying";
/// Why a run that found the lock held gave up waiting for it.
const HOLDER_BUSY: &str = "another hookbus is delivering from the outbox";
/// Why a run gave up on `hookbus relay` when no file left the outbox for
/// [`STARTING_GRACE`]: the broker is stalled, or slow with a backlog.
pub(super) const RELAY_STALLED: &str =
    "the broker has receipted nothing for half a second; hookbus relay keeps trying";

/// Why a run that waited its whole bound for `hookbus relay` left its files
/// to it: the relay was still delivering older files (a backlog after an
/// outage, a slow broker).
pub(super) const RELAY_BUSY: &str = "hookbus relay is still delivering what was stored before them";

/// Why a run leaves its files to the holder of `file`'s lock: `why`, or
/// `relay_why` when the holder is `hookbus relay`, which delivers them.
fn left_to_holder(file: &LockFile, why: &str, relay_why: &str) -> Stopped {
    if file.held_by_relay() {
        relay_stopped(relay_why)
    } else {
        Stopped::because(why.into())
    }
}

/// Whether a run waiting on a holder leaves its files to it, and why (for
/// a hook holding the lock, for `hookbus relay`): the holder found the
/// broker unreachable, has not connected in the [`STARTING_GRACE`] the run
/// has `waited`, or is connected but no file left the outbox for as long
/// (`quiet`). The one rule for hooks in their own processes and for pushes
/// the relay runs ([`super::relay::board`]).
pub(super) fn gives_up(
    holder: Holder,
    waited: Duration,
    quiet: Duration,
) -> Option<(&'static str, &'static str)> {
    match holder {
        Holder::Unreachable => Some((HOLDER_UNREACHABLE, RELAY_KEEPS_TRYING)),
        Holder::Starting if waited >= STARTING_GRACE => Some((HOLDER_BUSY, RELAY_KEEPS_TRYING)),
        Holder::Delivering if quiet >= STARTING_GRACE => Some((HOLDER_BUSY, RELAY_STALLED)),
        _ => None,
    }
}

/// Files left to `hookbus relay`, for `why`: the relay delivers them.
pub(super) fn relay_stopped(why: &str) -> Stopped {
    Stopped {
        reason: why.into(),
        relay_keeps_trying: true,
    }
}

/// How long a hook waits for a holder whose broker has not answered CONNECT
/// yet, or for `hookbus relay` when its broker has receipted nothing (no
/// file left the outbox) for that long, before it leaves its files to it: a
/// holder whose broker accepts connections or SENDs but never answers may
/// take its whole bound to find out. Loopback brokers answer in
/// milliseconds, busy ones in tens. (A hook holding the lock may be
/// rendering its next batch meanwhile, so no stall is read into its quiet.)
pub(super) const STARTING_GRACE: Duration = Duration::from_millis(500);

/// The first wait before looking at the lock and the run's files again,
/// doubling up to [`LOCK_POLL`]; a file removed from the outbox ends a wait
/// at once. A holder with an open connection (`hookbus relay` above all)
/// delivers a file within a millisecond or two, and a pusher should not wait
/// ten for the news; what else it waits for (its own run done storing, the
/// lock let go) sends no event.
const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// Takes the outbox lock for a run whose files are stored. A run that finds
/// it held does not queue up behind the holder, which delivers what is
/// stored while it works: it waits only while that can still help it, until
///
/// - it gets the lock (the holder let go, maybe before it saw these files);
/// - the holder delivered every file of the run (`Err(None)`:
///   [`Broker::finish`] finds them gone);
/// - a hook's holder found the broker unreachable or has not connected for
///   [`STARTING_GRACE`], or the relay took no file off the outbox for as
///   long (watched with inotify): the files stay queued for the holder or a
///   later flush, and only one push per outage waits its bound;
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
    let mut pause = FIRST_PAUSE;
    // Made before the first sleep: the holder removing a file wakes it.
    let mut departures: Option<DirWatch> = None;
    // When a file last left the outbox (or the wait began).
    let mut moved = started;
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
            // Without a watch a departure goes unseen: no stall is assumed.
            let quiet = if departures.is_some() && file.held_by_relay() {
                moved.elapsed()
            } else {
                Duration::ZERO
            };
            if let Some((why, relay_why)) = gives_up(file.holder(), started.elapsed(), quiet) {
                return Err(Some(left_to_holder(&file, why, relay_why)));
            }
        }
        if Instant::now() >= until {
            return Err(Some(left_to_holder(&file, HOLDER_BUSY, RELAY_BUSY)));
        }
        match &mut departures {
            None => {
                departures = DirWatch::departures(outbox.dir()).ok();
                if departures.is_some() {
                    continue; // a file that went before the watch began
                }
                std::thread::sleep(pause);
            }
            Some(watch) => match watch.wait(None, Some(pause)) {
                Ok(Woke::Files) => moved = Instant::now(),
                Ok(_) => {}
                Err(_) => {
                    departures = None;
                    std::thread::sleep(pause);
                }
            },
        }
        pause = (pause * 2).min(LOCK_POLL);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_left_to_a_relay_say_the_relay_delivers_them() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("outbox"));
        std::fs::create_dir_all(outbox.dir()).unwrap();
        let holder = outbox.lock_file().unwrap().try_take().unwrap().unwrap();
        let waiter = outbox.lock_file().unwrap();
        let by_hook = left_to_holder(&waiter, HOLDER_BUSY, RELAY_BUSY);
        assert_eq!(by_hook.reason, HOLDER_BUSY);
        assert!(!by_hook.relay_keeps_trying);
        holder.mark_relay();
        let by_relay = left_to_holder(&waiter, HOLDER_BUSY, RELAY_BUSY);
        assert_eq!(by_relay.reason, RELAY_BUSY);
        assert!(by_relay.relay_keeps_trying);
    }
}
