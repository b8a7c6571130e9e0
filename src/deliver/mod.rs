//! Delivery: where rendered messages go. A [`Transport`] takes finished
//! [`Message`]s; the dry-run printer, the local outbox and the STOMP publisher are
//! transports, so the emitting side never knows which one it feeds.

pub mod dry_run;
pub mod outbox;

use serde::{Deserialize, Serialize};

/// One message ready to be sent: a destination, ordered headers and a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Broker destination, e.g. `/topic/git.commits`.
    pub destination: String,
    /// Headers in the order they are sent. Values are plain UTF-8; escaping for
    /// the wire is the transport's job.
    pub headers: Vec<(String, String)>,
    /// The exact bytes to send.
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl Message {
    /// The value of the first header called `name`, if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// What a transport did with a batch of messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Messages the transport has taken responsibility for (printed, stored or
    /// receipted by a broker).
    pub accepted: usize,
    /// Human-readable lines for the person running the command (e.g. where the
    /// outbox put the messages).
    pub notes: Vec<String>,
}

/// A place messages can be handed to.
pub trait Transport {
    /// Takes every message or fails; on failure nothing is reported as accepted
    /// that was not.
    fn deliver(&mut self, messages: &[Message]) -> anyhow::Result<Outcome>;
}
