//! The messages being worked on. Each mirror update and action chain a
//! message started counts its [`Pending`] down; the last one hands it back
//! for acknowledging.

use crate::bus::AckToken;
use std::collections::HashMap;
use std::time::SystemTime;

/// Identifies a received message until it is acknowledged: what the mirrors'
/// pool and the action runner hand back when a piece of its work is done.
pub type Ticket = u64;

/// A message being worked on.
pub(super) struct Pending {
    pub(super) ack: AckToken,
    /// The connection it came on: an ACK on a later one would mean nothing.
    pub(super) generation: u64,
    /// Pieces of work not done yet.
    pub(super) remaining: usize,
    pub(super) id: Option<String>,
    /// It came on the group's subscription.
    pub(super) shared: bool,
    /// When it was published (for the push-to-mirror latency).
    pub(super) sent_at: SystemTime,
}

/// The messages being worked on, by ticket.
#[derive(Default)]
pub(super) struct Pendings {
    by_ticket: HashMap<Ticket, Pending>,
    next_ticket: Ticket,
}

impl Pendings {
    /// Starts counting down `pending`; the ticket its work carries.
    pub(super) fn open(&mut self, pending: Pending) -> Ticket {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.by_ticket.insert(ticket, pending);
        ticket
    }

    /// When the message of `ticket` was published, while it is pending.
    pub(super) fn sent_at(&self, ticket: Ticket) -> Option<SystemTime> {
        self.by_ticket.get(&ticket).map(|pending| pending.sent_at)
    }

    /// One piece of `ticket`'s work is done: the message, when that was the last.
    pub(super) fn answered(&mut self, ticket: Ticket) -> Option<Pending> {
        let pending = self.by_ticket.get_mut(&ticket)?;
        pending.remaining -= 1;
        if pending.remaining > 0 {
            return None;
        }
        self.by_ticket.remove(&ticket)
    }
}
