//! What `hookbus relay` tells the pushes it runs in its own process (those
//! hooks handed over, see [`super::handoff`]): how its delivery goes and when
//! files leave the outbox. Such a push waits here for its files to go, by
//! the rules a hook in a process of its own follows for a relay (see
//! [`crate::deliver::broker`]), without the thread, lock file and inotify
//! watch a hook needs to learn the same.

use super::super::delivering::{gives_up, relay_stopped, RELAY_BUSY, STARTING_GRACE};
use super::super::flush::Stopped;
use super::super::lock::Holder;
use super::super::outbox::Outbox;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// The relay's delivery as the pushes it runs see it.
pub struct Board {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// What the relay last announced in its lock file.
    holder: Holder,
    /// When a file last left the outbox.
    departed: Instant,
    /// Counts every change, so a waiter that looked at the outbox misses none.
    changes: u64,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            state: Mutex::new(State {
                holder: Holder::Starting,
                departed: Instant::now(),
                changes: 0,
            }),
            changed: Condvar::new(),
        }
    }
}

impl Board {
    /// A board for a relay not connected yet.
    pub fn new() -> Board {
        Board::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.state();
        change(&mut state);
        state.changes += 1;
        self.changed.notify_all();
    }

    /// The relay announced `holder` in its lock file.
    pub(in crate::deliver) fn said(&self, holder: Holder) {
        self.change(|state| state.holder = holder);
    }

    /// Files left the outbox (delivered or set aside).
    pub(in crate::deliver) fn departed(&self) {
        self.change(|state| state.departed = Instant::now());
    }

    /// Waits until none of `files` is in `outbox`: `None`. Gives up, saying
    /// why the relay keeps them, once the relay finds the broker
    /// unreachable, has not connected for [`STARTING_GRACE`], has moved no
    /// file for as long, or `until` passed.
    pub(in crate::deliver) fn wait_for(
        &self,
        outbox: &Outbox,
        files: &[String],
        until: Instant,
    ) -> Option<Stopped> {
        let started = Instant::now();
        let mut state = self.state();
        loop {
            let seen = state.changes;
            // Looked at unlocked: the relay removes files meanwhile, and
            // `changes` tells whether it did before the wait below.
            drop(state);
            if files.iter().all(|name| !outbox.holds(name)) {
                return None;
            }
            state = self.state();
            let now = Instant::now();
            let quiet_since = state.departed.max(started);
            let gave_up = gives_up(state.holder, now - started, now - quiet_since)
                .map(|(_, relay_why)| relay_why)
                .or((now >= until).then_some(RELAY_BUSY));
            if let Some(why) = gave_up {
                return Some(relay_stopped(why));
            }
            if state.changes != seen {
                continue;
            }
            let next_look = match state.holder {
                Holder::Starting => started + STARTING_GRACE,
                _ => quiet_since + STARTING_GRACE,
            };
            let wait = next_look.min(until).saturating_duration_since(now);
            state = (self.changed.wait_timeout(state, wait))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::delivering::{RELAY_KEEPS_TRYING, RELAY_STALLED};
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn outbox_with(names: &[&str]) -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let outbox = Outbox::new(dir.path().to_path_buf());
        (dir, outbox)
    }

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    /// A push waiting at most `bound` for its file `mine.msg` on the board of
    /// a relay that said it is delivering, while `relay` runs on a thread of
    /// its own: what the wait ended with, and how long it took.
    fn wait_beside(
        outbox: &Outbox,
        bound: Duration,
        relay: impl FnOnce(&Board) + Send + 'static,
    ) -> (Option<Stopped>, Duration) {
        let board = Arc::new(Board::new());
        board.said(Holder::Delivering);
        let relaying = Arc::clone(&board);
        let relaying = std::thread::spawn(move || relay(&relaying));
        let started = Instant::now();
        let stopped = board.wait_for(outbox, &files(&["mine.msg"]), started + bound);
        let waited = started.elapsed();
        relaying.join().unwrap();
        (stopped, waited)
    }

    #[test]
    fn a_push_whose_files_are_gone_waits_for_nothing() {
        let (_dir, outbox) = outbox_with(&["other.msg"]);
        let board = Board::new();
        let until = Instant::now() + Duration::from_secs(5);
        assert!(board
            .wait_for(&outbox, &files(&["mine.msg"]), until)
            .is_none());
    }

    #[test]
    fn a_departure_ends_the_wait_at_once() {
        let (dir, outbox) = outbox_with(&["mine.msg"]);
        let path = dir.path().join("mine.msg");
        let (stopped, waited) = wait_beside(&outbox, Duration::from_secs(5), move |relay| {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::remove_file(path).unwrap();
            relay.departed();
        });
        assert!(stopped.is_none());
        assert!(waited < STARTING_GRACE);
    }

    #[test]
    fn an_unreachable_broker_leaves_the_files_to_the_relay() {
        let (_dir, outbox) = outbox_with(&["mine.msg"]);
        let (stopped, waited) = wait_beside(&outbox, Duration::from_secs(5), |relay| {
            std::thread::sleep(Duration::from_millis(50));
            relay.said(Holder::Unreachable);
        });
        let stopped = stopped.unwrap();
        assert_eq!(stopped.reason, RELAY_KEEPS_TRYING);
        assert!(stopped.relay_keeps_trying);
        assert!(waited < STARTING_GRACE);
    }

    #[test]
    fn a_relay_that_moves_no_file_or_never_connects_is_given_half_a_second() {
        let (_dir, outbox) = outbox_with(&["mine.msg"]);
        let until = Instant::now() + Duration::from_secs(5);
        for (holder, why) in [
            (Holder::Delivering, RELAY_STALLED),
            (Holder::Starting, RELAY_KEEPS_TRYING),
        ] {
            let board = Board::new();
            board.said(holder);
            let started = Instant::now();
            let stopped = board
                .wait_for(&outbox, &files(&["mine.msg"]), until)
                .unwrap();
            assert_eq!(stopped.reason, why);
            let waited = started.elapsed();
            // Not the whole bound (5 s).
            assert!(
                waited >= STARTING_GRACE && waited < Duration::from_secs(4),
                "{waited:?}"
            );
        }
    }

    #[test]
    fn a_relay_still_delivering_older_files_keeps_them_past_the_bound() {
        let (_dir, outbox) = outbox_with(&["mine.msg"]);
        let (stopped, waited) = wait_beside(&outbox, Duration::from_millis(200), |relay| {
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(50));
                relay.departed(); // older files leave, not this push's
            }
        });
        assert_eq!(stopped.unwrap().reason, RELAY_BUSY);
        assert!(waited < STARTING_GRACE);
    }
}
