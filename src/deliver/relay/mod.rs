//! `hookbus relay`: a delivery that never lets go of the outbox. It holds the
//! outbox lock and one broker connection, and delivers each file the moment
//! a hook renames it into place (inotify); hooks may hand it their whole
//! push instead ([`handoff`]), which the CLI serves beside this loop. A hook that finds the lock held
//! by a delivering holder leaves its files to it (see
//! [`super::broker`]): no connection per push, and the pusher hears
//! "delivered" once the relay has the broker's receipt. While the broker is
//! unreachable the relay says so in the lock file, so hooks store and return
//! at once, and it retries with a back-off (sooner when new files arrive).
//!
//! Killed, it takes nothing with it: the kernel drops the lock, files stay
//! in the outbox, and hooks deliver their own again.

pub mod board;
pub mod handoff;
pub mod metrics;

use super::flush::{self, FlushReport};
use super::lock::{Holder, OutboxLock};
use super::outbox::Outbox;
use super::watch::{DirWatch, Woke};
use crate::bus::{Delivery, Patience, Publisher, Retry};
use anyhow::Result;
use board::Board;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long an unused connection stays open: a busy server's pushes share
/// it; a quiet one does not keep a broker connection (nor a half-open one
/// that a firewall dropped) for nothing.
pub const IDLE_CLOSE: Duration = Duration::from_secs(30);
/// The longest pause between attempts while the broker is unreachable.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The pause before the next attempt when files arrived during an outage.
pub const RETRY_ON_ARRIVAL: Duration = Duration::from_secs(1);
/// How often the relay looks at a lock someone else holds.
const LOCK_LOOK: Duration = Duration::from_millis(100);

/// What the relay did: one line of its log each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Another process holds the outbox lock; the relay waits for it.
    WaitingForLock {
        /// The outbox directory.
        dir: PathBuf,
        /// Whether that process is another relay.
        relay: bool,
    },
    /// The relay holds the lock and delivers from `dir`.
    Holding {
        /// The outbox directory.
        dir: PathBuf,
    },
    /// One delivery round.
    Delivered {
        /// Messages the broker receipted.
        messages: usize,
        /// Files finished.
        files: usize,
        /// Messages the broker refused for good, now in `dead/`.
        dead_lettered: usize,
    },
    /// Files that could not be read, moved to `dead/`.
    SetAside(String),
    /// A round stopped: the broker did not answer.
    Unreachable {
        /// What the broker (or the clock) said.
        reason: String,
        /// Messages waiting in the outbox.
        waiting: usize,
        /// When the relay tries again (sooner if files arrive).
        retry_in: Duration,
    },
    /// A signal asked the relay to stop; it let go of the lock.
    Stopped,
}

impl fmt::Display for Event {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::WaitingForLock { dir, relay } => {
                let who = if *relay { "another hookbus relay" } else { "another hookbus" };
                write!(out, "waiting: {who} holds the lock of outbox {}", dir.display())
            }
            Event::Holding { dir } => write!(
                out,
                "holding outbox {}: delivering each file as it lands",
                dir.display()
            ),
            Event::Delivered {
                messages,
                files,
                dead_lettered,
            } => {
                write!(out, "delivered {messages} message(s) of {files} file(s)")?;
                if *dead_lettered > 0 {
                    write!(out, ", {dead_lettered} refused for good (kept in dead/)")?;
                }
                Ok(())
            }
            Event::SetAside(why) => write!(out, "set aside in dead/: {why}"),
            Event::Unreachable {
                reason,
                waiting,
                retry_in,
            } => write!(
                out,
                "broker unreachable ({reason}); {waiting} message(s) wait; next try in {} s, or 1 s after a push",
                retry_in.as_secs()
            ),
            Event::Stopped => write!(out, "stopped; the outbox lock is free"),
        }
    }
}

/// Relays `outbox` to `publisher` until `stop` becomes readable (the CLI
/// writes to it from its signal handlers), telling `board` how delivery
/// goes for the pushes run in this process. Errors are the outbox's (a
/// directory that cannot be read or written); the broker's never end it.
pub fn relay(
    outbox: &Outbox,
    publisher: &Publisher,
    board: &Board,
    stop: BorrowedFd<'_>,
    log: &mut dyn FnMut(Event),
) -> Result<()> {
    let lock_file = outbox.lock_file()?;
    let mut watch = DirWatch::arrivals(outbox.dir())?;
    let mut said_waiting = false;
    let lock = loop {
        if let Some(lock) = lock_file.try_take()? {
            break lock;
        }
        if !said_waiting {
            let relay = lock_file.held_by_relay();
            log(Event::WaitingForLock {
                dir: outbox.dir().to_path_buf(),
                relay,
            });
            said_waiting = true;
        }
        if watch.wait(Some(stop), Some(LOCK_LOOK))? == Woke::Stop {
            log(Event::Stopped);
            return Ok(());
        }
    };
    lock.mark_relay();
    log(Event::Holding {
        dir: outbox.dir().to_path_buf(),
    });
    outbox.remove_stale_temps();
    let result = Relaying {
        outbox,
        publisher,
        lock: &lock,
        board,
        delivery: None,
        outage: None,
    }
    .run(&mut watch, stop, log);
    drop(lock);
    log(Event::Stopped);
    result
}

/// The relay once it holds the lock.
struct Relaying<'a> {
    outbox: &'a Outbox,
    publisher: &'a Publisher,
    lock: &'a OutboxLock,
    board: &'a Board,
    /// The open delivery, and when it last delivered.
    delivery: Option<(Delivery<'a>, Instant)>,
    /// Set while the broker is unreachable.
    outage: Option<Outage>,
}

/// Attempts that failed in a row, and when the last one ended.
struct Outage {
    failures: u32,
    since: Instant,
    /// Files arrived since the last attempt.
    arrivals: bool,
}

impl Outage {
    /// The pause after the last attempt: doubling from 1 s to
    /// [`MAX_BACKOFF`], or [`RETRY_ON_ARRIVAL`] once files arrived.
    fn pause(&self) -> Duration {
        let doubling = Duration::from_secs(1 << (self.failures.clamp(1, 6) - 1));
        let pause = doubling.min(MAX_BACKOFF);
        if self.arrivals {
            pause.min(RETRY_ON_ARRIVAL)
        } else {
            pause
        }
    }

    fn left(&self) -> Duration {
        self.pause().saturating_sub(self.since.elapsed())
    }
}

impl<'a> Relaying<'a> {
    fn run(
        mut self,
        watch: &mut DirWatch,
        stop: BorrowedFd<'_>,
        log: &mut dyn FnMut(Event),
    ) -> Result<()> {
        loop {
            if self
                .outage
                .as_ref()
                .is_none_or(|outage| outage.left().is_zero())
            {
                self.deliver_all(log)?;
            }
            match watch.wait(Some(stop), self.sleep())? {
                Woke::Stop => break,
                Woke::Files => {
                    if let Some(outage) = &mut self.outage {
                        outage.arrivals = true;
                    }
                }
                Woke::Timeout => self.close_if_idle(),
            }
        }
        if let Some((delivery, _)) = self.delivery.take() {
            delivery.close();
        }
        Ok(())
    }

    /// How long to sleep: until the next attempt in an outage, until the
    /// connection is idle for long enough, or until files arrive.
    fn sleep(&self) -> Option<Duration> {
        if let Some(outage) = &self.outage {
            return Some(outage.left());
        }
        (self.delivery.as_ref()).map(|(_, used)| IDLE_CLOSE.saturating_sub(used.elapsed()))
    }

    /// Closes a connection unused for [`IDLE_CLOSE`]. Hooks then see a
    /// holder not connected: they give its next connection the half second
    /// they give any starting holder, not their whole deadline.
    fn close_if_idle(&mut self) {
        if (self.delivery.as_ref()).is_some_and(|(_, used)| used.elapsed() >= IDLE_CLOSE) {
            if let Some((delivery, _)) = self.delivery.take() {
                delivery.close();
            }
            self.announce(Holder::Starting);
        }
    }

    /// Delivers until the outbox is empty (files keep landing meanwhile) or
    /// a round stops.
    fn deliver_all(&mut self, log: &mut dyn FnMut(Event)) -> Result<()> {
        loop {
            let entries = self.outbox.list()?;
            if entries.is_empty() {
                if self.outage.take().is_some() {
                    // Nothing left to try with: the next file tries afresh,
                    // its hook waiting as for a relay just started.
                    self.announce(Holder::Starting);
                }
                return Ok(());
            }
            let (publisher, lock, board) = (self.publisher, self.lock, self.board);
            let (delivery, used) = self.delivery.get_or_insert_with(|| {
                // Pushers wait on the relay: it gives up as soon as a hook
                // would (then says so, and they stop waiting), not after a
                // flush's five seconds.
                let patience = Patience::WhileProgress(publisher.deadline());
                let delivery = publisher.delivery_telling(patience, Retry::OneRound, |p| {
                    if let Some(holder) = lock.tell(p) {
                        board.said(holder);
                    }
                });
                (delivery, Instant::now())
            });
            let report =
                flush::flush_listed(self.outbox, delivery, None, &entries, &|| board.departed())?;
            *used = Instant::now();
            self.tell(&report, log);
            if let Some(stopped) = report.stopped {
                return self.failed(stopped.reason, log);
            }
            self.outage = None;
        }
    }

    /// Says `holder` to hooks (in the lock file) and to the pushes run here.
    fn announce(&self, holder: Holder) {
        self.lock.announce(holder);
        self.board.said(holder);
    }

    fn tell(&self, report: &FlushReport, log: &mut dyn FnMut(Event)) {
        if report.delivered > 0 || report.dead_lettered > 0 {
            log(Event::Delivered {
                messages: report.delivered,
                files: report.done.len(),
                dead_lettered: report.dead_lettered,
            });
        }
        for why in &report.set_aside {
            log(Event::SetAside(why.clone()));
        }
    }

    /// A round stopped: hooks must not wait for this relay until it
    /// connects again.
    fn failed(&mut self, reason: String, log: &mut dyn FnMut(Event)) -> Result<()> {
        self.announce(Holder::Unreachable);
        if let Some((delivery, _)) = self.delivery.take() {
            delivery.close();
        }
        let failures = self.outage.as_ref().map_or(0, |outage| outage.failures) + 1;
        let outage = Outage {
            failures,
            since: Instant::now(),
            arrivals: false,
        };
        log(Event::Unreachable {
            reason,
            waiting: self.outbox.count_waiting()?,
            retry_in: outage.pause(),
        });
        self.outage = Some(outage);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_backs_off_doubling_and_a_push_brings_the_next_try_closer() {
        let pauses: Vec<u64> = (1..=8)
            .map(|failures| {
                let outage = Outage {
                    failures,
                    since: Instant::now(),
                    arrivals: false,
                };
                outage.pause().as_secs()
            })
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30, 30]);
        let pushed = Outage {
            failures: 6,
            since: Instant::now(),
            arrivals: true,
        };
        assert_eq!(pushed.pause(), RETRY_ON_ARRIVAL);
    }
}
