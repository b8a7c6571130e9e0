//! The receiving half of the seam: what to subscribe to, and a subscription
//! that hands out messages, each with what acknowledges it.

use super::BusError;
use std::time::Duration;

/// Largest message body a subscriber holds. A larger one is read through and
/// dropped ([`Incoming::dropped_body`]): it is reported, not handled.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// What to subscribe to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeSpec {
    /// Destinations, e.g. `/topic/git.commits`.
    pub destinations: Vec<String>,
    /// A durable subscription's name: the broker keeps messages for it while
    /// the subscriber is away.
    pub durable: Option<String>,
    /// Heart-beat interval offered both ways; zero: none.
    pub heartbeat: Duration,
    /// The type of a durable subscription's queue, where the broker has types.
    pub queue_type: QueueType,
    /// The group whose shared subscription to the same destinations this
    /// subscriber also (or only) takes its share of.
    pub group: Option<GroupSpec>,
    /// A topic of commands for every listener (`[listen] control_topic`):
    /// subscribed plainly, never durable nor shared with a group, so each
    /// listener up hears each command once.
    pub control: Option<String>,
}

/// The group a subscriber belongs to, for a shared subscription: each
/// message goes to one of the group's members (competing consumers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// The group's name: the same on every member.
    pub name: String,
    /// Messages a member holds unacknowledged at most, so that one member
    /// does not take everything while the others idle.
    pub prefetch: usize,
    /// True when the group's is the member's only subscription (it needs
    /// none of its own, e.g. for mirrors).
    pub only: bool,
}

/// The type of queue a durable subscription is kept in (RabbitMQ's
/// `x-queue-type`; brokers without queue types ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated over the cluster's nodes: it survives the loss of one.
    #[default]
    Quorum,
    /// Lives on one node: while that node is down its messages are lost.
    Classic,
}

impl QueueType {
    /// Its name, as the config and the broker write it.
    pub fn name(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}

/// A live subscription. Reconnecting is the caller's business: every error
/// means "this subscription is over".
pub trait Subscribe: Send {
    /// The host it is connected to, as it may be shown.
    fn host(&self) -> &str;

    /// The next message, or `None` when none came within `wait`; fails when
    /// the link died or the broker said no.
    fn next(&mut self, wait: Duration) -> Result<Option<Incoming>, BusError>;

    /// Acknowledges one message received on this subscription.
    fn ack(&mut self, token: &AckToken) -> Result<(), BusError>;

    /// Why a link that dies silently would be noticed late (the broker
    /// refused the heart-beats asked for), to be told once; `None` when it
    /// is watched as asked.
    fn unwatched(&self) -> Option<String>;

    /// Says goodbye, within `bound`.
    fn close(self: Box<Self>, bound: Duration);
}

/// One message received.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Its headers in order, as the broker gave them (`destination` included).
    pub headers: Vec<(String, String)>,
    /// Its body, byte-exact; empty when it was dropped.
    pub body: Vec<u8>,
    /// The size of a body over [`MAX_MESSAGE_BYTES`], read through and
    /// dropped rather than held.
    pub dropped_body: Option<u64>,
    /// What acknowledges it.
    pub ack: AckToken,
    /// True when it came on the group's shared subscription.
    pub shared: bool,
    /// True when it came on the control topic's subscription.
    pub control: bool,
}

/// What acknowledges one message: the transport's own words for it, opaque
/// to everyone else, and good only on the subscription it came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckToken(Vec<(&'static str, String)>);

impl AckToken {
    /// A token made of the fields the transport needs to acknowledge.
    pub fn new(fields: Vec<(&'static str, String)>) -> AckToken {
        AckToken(fields)
    }

    /// The fields it was made of.
    pub fn fields(&self) -> &[(&'static str, String)] {
        &self.0
    }
}
