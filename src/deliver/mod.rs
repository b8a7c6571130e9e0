//! Delivery: where rendered messages go. A [`Transport`] takes finished
//! [`Message`]s; the dry-run printer, the local outbox and the broker (outbox
//! first, then published) are transports, so the emitting side never knows which
//! one it feeds. [`flush`] delivers what waits in the outbox; [`relay`] does so
//! for good, as files land.

pub mod broker;
mod delivering;
pub mod dry_run;
pub mod flush;
pub mod lock;
mod message_file;
pub mod outbox;
pub mod relay;
mod watch;

pub use crate::message::Message;

/// What a transport did with a batch of messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Messages the transport has taken responsibility for (printed, stored or
    /// receipted by a broker).
    pub accepted: usize,
    /// Of those, the ones left in the outbox for a later delivery.
    pub queued: usize,
    /// Why they were left there, when a delivery was tried and failed.
    pub queued_because: Option<String>,
    /// They were left to `hookbus relay`, which keeps trying the broker.
    pub relay_keeps_trying: bool,
    /// Messages (of this run or older) the broker refused for good, now dead
    /// letters in the outbox.
    pub dead_lettered: usize,
    /// Messages that could not be saved in the outbox but went out directly.
    pub unsaved: usize,
    /// Why they could not be saved.
    pub unsaved_because: Option<String>,
}

impl Outcome {
    /// Adds up two outcomes (batches of one run); the first reason wins.
    pub fn add(&mut self, other: Outcome) {
        self.accepted += other.accepted;
        self.queued += other.queued;
        self.dead_lettered += other.dead_lettered;
        self.unsaved += other.unsaved;
        self.queued_because = self.queued_because.take().or(other.queued_because);
        self.relay_keeps_trying |= other.relay_keeps_trying;
        self.unsaved_because = self.unsaved_because.take().or(other.unsaved_because);
    }
}

/// A place messages can be handed to.
pub trait Transport {
    /// Takes every message or fails; on failure nothing is reported as accepted
    /// that was not.
    fn deliver(&mut self, messages: &[Message]) -> anyhow::Result<Outcome>;

    /// Called after the last batch: finishes what runs in the background and
    /// reports it (what is left queued and why).
    fn finish(&mut self) -> anyhow::Result<Outcome> {
        Ok(Outcome::default())
    }
}
