//! The seam between hookbus and the message broker: what the outbox, the
//! flush, the webhook and the listener need from a transport, and nothing of
//! how one does it. A transport (today `stomp`) implements [`Bus`]; the
//! config makes the one it names, and everything above holds it as a
//! [`Publisher`]: [`Publish`] takes batches and gives a verdict per message,
//! [`Subscribe`] hands out messages with an [`AckToken`] each.

mod publish;
mod subscribe;

pub use publish::{Patience, Progress, Publish, PublishError, Retry, Verdict};
pub use subscribe::{
    AckToken, GroupSpec, Incoming, QueueType, Subscribe, SubscribeSpec, MAX_MESSAGE_BYTES,
};

use crate::message::Message;
use crate::sign::Signer;
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A transport, configured: it publishes and subscribes.
pub trait Bus: fmt::Debug + Send + Sync + Any {
    /// A delivery of several batches within `patience`; `progress`, if
    /// given, hears how connecting goes.
    fn delivery<'p>(
        &'p self,
        patience: Patience,
        retry: Retry,
        progress: Option<Box<dyn FnMut(Progress) + 'p>>,
    ) -> Box<dyn Publish + 'p>;

    /// Subscribes as `spec` says, trying each host once, each within
    /// `bound`; every host's failure when none worked.
    fn subscribe(
        &self,
        spec: &SubscribeSpec,
        bound: Duration,
    ) -> Result<Box<dyn Subscribe>, Vec<(String, BusError)>>;

    /// Connects to every host in turn and reports what each one said,
    /// and which of `destinations` it would refuse.
    fn check(&self, destinations: &[String]) -> Vec<HostReport>;

    /// The configured bound on one publish.
    fn deadline(&self) -> Duration;

    /// The key messages are signed with as they are sent, if any.
    fn signer(&self) -> Option<&Signer>;

    /// True when `other` is the same transport with the same settings.
    fn same_as(&self, other: &dyn Any) -> bool;
}

/// The configured transport, shared: a clone is cheap and talks to the same
/// brokers with the same settings.
#[derive(Debug, Clone)]
pub struct Publisher(Arc<dyn Bus>);

/// Batches published one after the other (see [`Bus::delivery`]).
pub type Delivery<'p> = Box<dyn Publish + 'p>;

impl Publisher {
    /// Shares `bus`.
    pub fn new(bus: impl Bus) -> Publisher {
        Publisher(Arc::new(bus))
    }

    /// Sends every message, each acknowledged, within the configured deadline.
    pub fn publish(&self, messages: &[Message]) -> Result<(), PublishError> {
        let deadline = Instant::now() + self.deadline();
        self.publish_until(messages, deadline, Retry::UntilDeadline)
    }

    /// Sends every message, each acknowledged, before `deadline`.
    pub fn publish_until(
        &self,
        messages: &[Message],
        deadline: Instant,
        retry: Retry,
    ) -> Result<(), PublishError> {
        let mut delivery = self.delivery(Patience::Until(deadline), retry);
        let result = delivery.publish(messages);
        delivery.close();
        result
    }

    /// A delivery of several batches within `patience`.
    pub fn delivery(&self, patience: Patience, retry: Retry) -> Delivery<'_> {
        self.0.delivery(patience, retry, None)
    }

    /// A delivery that calls `progress` as connecting goes, so that whoever
    /// waits on it learns whether the broker answers long before the deadline.
    pub fn delivery_telling<'p>(
        &'p self,
        patience: Patience,
        retry: Retry,
        progress: impl FnMut(Progress) + 'p,
    ) -> Delivery<'p> {
        self.0.delivery(patience, retry, Some(Box::new(progress)))
    }

    /// See [`Bus::subscribe`].
    pub fn subscribe(
        &self,
        spec: &SubscribeSpec,
        bound: Duration,
    ) -> Result<Box<dyn Subscribe>, Vec<(String, BusError)>> {
        self.0.subscribe(spec, bound)
    }

    /// See [`Bus::check`].
    pub fn check(&self, destinations: &[String]) -> Vec<HostReport> {
        self.0.check(destinations)
    }

    /// The configured bound on one publish.
    pub fn deadline(&self) -> Duration {
        self.0.deadline()
    }

    /// The key messages are signed with (`[sign]`), if any.
    pub fn signer(&self) -> Option<&Signer> {
        self.0.signer()
    }
}

impl PartialEq for Publisher {
    /// Same transport, same settings (passcodes included, never shown).
    fn eq(&self, other: &Publisher) -> bool {
        let other: &dyn Any = &*other.0;
        self.0.same_as(other)
    }
}

/// How one broker host answered [`Bus::check`].
#[derive(Debug)]
pub struct HostReport {
    /// The host, without credentials.
    pub host: String,
    /// What it said, or why it could not be used.
    pub result: Result<Reached, BusError>,
}

/// A broker host that accepted the login.
#[derive(Debug)]
pub struct Reached {
    /// The protocol and the broker, as they said themselves
    /// (`STOMP 1.2 (ActiveMQ/5.17.2)`).
    pub protocol: String,
    /// The round trip of one acknowledged request.
    pub round_trip: Duration,
    /// The destinations checked that it would refuse: their index, and why.
    pub refusals: Vec<(usize, String)>,
}

/// Why a step on the bus failed, in words fit to show (never a passcode).
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct BusError {
    trouble: Trouble,
    text: String,
}

/// What kind of failure a [`BusError`] is, for the caller's next move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// No connection could be made (name lookup, TCP).
    Unreachable,
    /// The broker refuses what the config asks for until an operator acts:
    /// retrying soon cannot help, and the words say what to do.
    NeedsOperator,
    /// Anything else.
    Other,
}

impl BusError {
    /// A failure of kind `trouble`, explained by `text`.
    pub fn new(trouble: Trouble, text: String) -> BusError {
        BusError { trouble, text }
    }

    /// What kind of failure it is.
    pub fn trouble(&self) -> Trouble {
        self.trouble
    }
}
