//! The message: what every part below the CLI hands along (rendering makes
//! them, delivery stores and publishes them). It sits at the bottom so that
//! `stomp`, `deliver` and `route` can all use it without depending on each
//! other.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Headers the publisher sets itself; a message's own copies are dropped, and
/// [`Message::compose`] refuses them.
pub const RESERVED_HEADERS: [&str; 4] = ["destination", "receipt", "content-length", "transaction"];

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
        first_header(&self.headers, name)
    }
}

/// The value of the first header called `name` in `headers`: the first
/// occurrence wins (as STOMP says), for whoever reads a message's headers.
pub fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    (headers.iter())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
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
            if key.is_empty() || RESERVED_HEADERS.contains(&key.as_str()) {
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
