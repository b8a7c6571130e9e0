//! Delivery: where rendered messages go. A [`Transport`] takes finished
//! [`Message`]s; the dry-run printer, the local outbox and the broker (outbox
//! first, then published) are transports, so the emitting side never knows which
//! one it feeds. [`flush`] delivers what waits in the outbox.

pub mod broker;
pub mod dry_run;
pub mod flush;
pub mod outbox;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

impl Message {
    /// A message made by hand (`hookbus send`): the given headers, then
    /// `subject`, a `content-type` (UTF-8 text or octet-stream),
    /// `persistent:true` and a `hookbus-id` derived from the content, unless
    /// given. Header names the publisher sets itself are refused.
    pub fn compose(
        destination: &str,
        subject: Option<&str>,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Message> {
        if destination.trim().is_empty() || destination.contains(['\n', '\r', '\0']) {
            bail!("destination {destination:?} must be non-empty and on one line");
        }
        let mut message = Message {
            destination: destination.to_string(),
            headers: Vec::new(),
            body,
        };
        for (key, value) in headers {
            if key.is_empty() || crate::stomp::batch::RESERVED_HEADERS.contains(&key.as_str()) {
                bail!("header name {key:?} cannot be set by hand; use another name");
            }
            message.headers.push((key.clone(), value.clone()));
        }
        if let Some(subject) = subject {
            message.headers.retain(|(key, _)| key != "subject");
            message
                .headers
                .push(("subject".into(), subject.to_string()));
        }
        if message.header("content-type").is_none() {
            let content_type = match std::str::from_utf8(&message.body) {
                Ok(_) => "text/plain; charset=utf-8",
                Err(_) => "application/octet-stream",
            };
            message
                .headers
                .push(("content-type".into(), content_type.into()));
        }
        if message.header("persistent").is_none() {
            message.headers.push(("persistent".into(), "true".into()));
        }
        if message.header("hookbus-id").is_none() {
            let mut parts: Vec<&[u8]> = vec![message.destination.as_bytes(), &message.body];
            for (key, value) in &message.headers {
                parts.extend([key.as_bytes(), value.as_bytes()]);
            }
            let id = stable_id(&parts);
            message.headers.push(("hookbus-id".into(), id));
        }
        Ok(message)
    }
}

/// A 32-hex-digit id that is the same whenever the same parts are given.
pub fn stable_id(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    hasher.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_messages_get_a_stable_id_and_a_content_type() {
        let compose = |body: &[u8]| {
            let headers = [("build".to_string(), "42".to_string())];
            Message::compose("/topic/ci", Some("ok"), &headers, body.to_vec()).unwrap()
        };
        assert_eq!(compose(b"a"), compose(b"a"));
        assert_ne!(
            compose(b"a").header("hookbus-id"),
            compose(b"b").header("hookbus-id")
        );
        assert_eq!(
            compose(b"a").header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            compose(b"\xff").header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(compose(b"a").header("persistent"), Some("true"));
    }

    #[test]
    fn composing_refuses_bad_destinations_and_reserved_headers() {
        assert!(Message::compose("/topic/a\nb", None, &[], Vec::new()).is_err());
        let receipt = [("receipt".to_string(), "1".to_string())];
        assert!(Message::compose("/topic/a", None, &receipt, Vec::new()).is_err());
    }
}
