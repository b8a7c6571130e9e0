//! Publishing a batch: SENDs pipelined each with its own receipt, any ERROR
//! fails, DISCONNECT with a receipt ends it; failover across the URL's hosts,
//! all within one deadline.

use super::connection::{ConnectParams, Connection, Session, StompError};
use super::frame::Frame;
use super::settings::BrokerSettings;
use super::tls;
use super::url::HostSpec;
use crate::message::{Message, RESERVED_HEADERS};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// SENDs written ahead of their receipts. Receipts are small, so the broker never
/// blocks writing them while we are still writing.
const WINDOW: usize = 512;
/// Bytes queued before they are written out.
const WRITE_CHUNK: usize = 64 * 1024;

/// Whether a publish goes round the hosts again, with the URL's back-off,
/// after every host failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Until the deadline (or the URL's maxReconnectAttempts).
    UntilDeadline,
    /// Once round: the broker is known to have been down, and what fails now
    /// waits in the outbox anyway.
    OneRound,
}

/// A publish that did not fully succeed.
#[derive(Debug)]
pub struct PublishError {
    /// Leading messages the broker receipted; the rest may or may not have arrived.
    pub delivered: usize,
    /// True when retrying cannot help (refused login or message, TLS trust).
    pub permanent: bool,
    /// True when the broker refused a message (an ERROR after a SEND), as
    /// opposed to the connection or the login: other messages may still pass.
    pub refused: bool,
    /// The last failure on each host tried, as `host: reason`.
    pub attempts: Vec<(String, String)>,
}

impl PublishError {
    /// What went wrong on each host tried, as `host: reason; …`.
    pub fn reasons(&self) -> String {
        let reasons: Vec<String> = self
            .attempts
            .iter()
            .map(|(host, reason)| format!("{host}: {reason}"))
            .collect();
        reasons.join("; ")
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.permanent {
            "permanent"
        } else {
            "transient"
        };
        write!(
            f,
            "{} leading message(s) receipted before a {kind} failure: {}",
            self.delivered,
            self.reasons()
        )
    }
}

impl std::error::Error for PublishError {}

/// How one broker host answered `hookbus check`.
#[derive(Debug)]
pub struct HostReport {
    /// The host without credentials.
    pub host: String,
    /// The session and the round trip of a receipted frame, or why it failed.
    pub result: Result<(Session, Duration), StompError>,
}

/// Publishes messages to the configured brokers.
#[derive(Debug)]
pub struct Publisher {
    settings: BrokerSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Publisher {
    /// A publisher; loads TLS trust now, so a bad CA file fails before any message.
    pub fn new(settings: BrokerSettings) -> anyhow::Result<Publisher> {
        let tls = if settings.uses_tls() {
            Some(tls::client_config(
                settings.ca_file.as_deref(),
                settings.tls_verify_hostname,
            )?)
        } else {
            None
        };
        Ok(Publisher { settings, tls })
    }

    /// Sends every message, receipted, within the configured deadline; see
    /// [`Publisher::publish_until`].
    pub fn publish(&self, messages: &[Message]) -> Result<(), PublishError> {
        let deadline = Instant::now() + self.settings.deadline;
        self.publish_until(messages, deadline, Retry::UntilDeadline)
    }

    /// The configured bound on one publish.
    pub fn deadline(&self) -> Duration {
        self.settings.deadline
    }

    /// Sends every message, receipted, before `deadline`; fails over between
    /// hosts on connection trouble, resending from the first unreceipted message
    /// (at-least-once: `hookbus-id` lets consumers drop duplicates).
    pub fn publish_until(
        &self,
        messages: &[Message],
        deadline: Instant,
        retry: Retry,
    ) -> Result<(), PublishError> {
        let failover = &self.settings.url.failover;
        let hosts = self.host_order();
        let mut failure = PublishError {
            delivered: 0,
            permanent: false,
            refused: false,
            attempts: Vec::new(),
        };
        let mut round = 0;
        loop {
            let mut worth_retrying = false;
            for host in &hosts {
                let remaining = &messages[failure.delivered..];
                let (delivered, result) = self.publish_on(host, remaining, deadline);
                failure.delivered += delivered;
                let Err(error) = result else {
                    return Ok(());
                };
                failure.permanent = error.is_permanent();
                failure.refused = matches!(error, StompError::Refused(_));
                worth_retrying |= !error.is_permanent();
                record(&mut failure.attempts, host.display(), &error);
                if !error.fails_over() || Instant::now() >= deadline {
                    return Err(failure);
                }
            }
            let out_of_attempts = failover
                .max_reconnect_attempts
                .is_some_and(|attempts| round >= attempts);
            let left = deadline.saturating_duration_since(Instant::now());
            if retry == Retry::OneRound || !worth_retrying || out_of_attempts || left.is_zero() {
                return Err(failure);
            }
            std::thread::sleep(failover.delay(round).min(left));
            round += 1;
        }
    }

    /// Connects to every host in turn and reports what each one said.
    pub fn check(&self) -> Vec<HostReport> {
        self.settings
            .url
            .hosts
            .iter()
            .map(|host| {
                let deadline = Instant::now() + self.settings.deadline;
                let result =
                    Connection::open(host, &self.params(host), deadline).and_then(|connection| {
                        let session = connection.session.clone();
                        let start = Instant::now();
                        connection.disconnect()?;
                        Ok((session, start.elapsed()))
                    });
                HostReport {
                    host: host.display(),
                    result,
                }
            })
            .collect()
    }

    /// What CONNECT needs for `host`: credentials, vhost, TLS.
    pub(crate) fn params<'a>(&'a self, host: &'a HostSpec) -> ConnectParams<'a> {
        let (login, passcode) = self.settings.credentials(host);
        ConnectParams {
            login,
            passcode,
            vhost: self.settings.vhost.as_deref().unwrap_or("/"),
            escape_connect_headers: self.settings.escape_connect_headers,
            tls: self.tls.as_ref(),
        }
    }

    /// Hosts in URL order, or rotated to a random start with `randomize=true`.
    pub(crate) fn host_order(&self) -> Vec<HostSpec> {
        let mut hosts = self.settings.url.hosts.clone();
        if self.settings.url.failover.randomize && !hosts.is_empty() {
            use std::hash::{BuildHasher, Hasher};
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            let start = (random % hosts.len() as u64) as usize;
            hosts.rotate_left(start);
        }
        hosts
    }

    /// Publishes on one host; returns how many leading messages were receipted.
    fn publish_on(
        &self,
        host: &HostSpec,
        messages: &[Message],
        deadline: Instant,
    ) -> (usize, Result<(), StompError>) {
        let mut connection = match Connection::open(host, &self.params(host), deadline) {
            Ok(connection) => connection,
            Err(error) => return (0, Err(error)),
        };
        let mut receipts = Receipts::new(messages.len());
        let mut sent = 0;
        while receipts.leading < messages.len() {
            while sent < messages.len() && sent - receipts.leading < WINDOW {
                connection.queue(&send_frame(&messages[sent], sent));
                sent += 1;
                if connection.queued_bytes() >= WRITE_CHUNK {
                    break;
                }
            }
            if let Err(error) = connection.flush() {
                return (receipts.leading, Err(error));
            }
            if sent < messages.len() && sent - receipts.leading < WINDOW {
                continue;
            }
            // Wait for one frame, then take every frame that came with it.
            let mut next = connection.read_frame("waiting for a RECEIPT").map(Some);
            while let Some(frame) = next.transpose() {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(error) => return (receipts.leading, Err(error)),
                };
                match frame.command.as_str() {
                    "RECEIPT" => receipts.mark(frame.get("receipt-id")),
                    "ERROR" => {
                        let error = StompError::Refused(frame.error_text());
                        return (receipts.leading, Err(error));
                    }
                    _ => {}
                }
                next = connection.buffered_frame();
            }
        }
        // Every message is receipted: a failing DISCONNECT loses nothing.
        let _ = connection.disconnect();
        (messages.len(), Ok(()))
    }
}

/// Keeps one reason per host, so long retry rounds stay readable: the latest,
/// except that running out of time on a retry does not hide the first reason.
fn record(attempts: &mut Vec<(String, String)>, host: String, error: &StompError) {
    let reason = error.to_string();
    match attempts.iter_mut().find(|(known, _)| *known == host) {
        Some(entry) if matches!(error, StompError::Timeout(_)) => {
            if !entry.1.ends_with(RETRIED) {
                entry.1.push_str(RETRIED);
            }
        }
        Some(entry) => entry.1 = reason,
        None => attempts.push((host, reason)),
    }
}

const RETRIED: &str = " (retried until the deadline)";

/// The SEND frame for message number `index` of a batch.
fn send_frame(message: &Message, index: usize) -> Frame {
    let mut frame = Frame::new("SEND")
        .header("destination", &message.destination)
        .header("receipt", &receipt_id(index));
    for (key, value) in &message.headers {
        if !RESERVED_HEADERS.contains(&key.as_str()) {
            frame.headers.push((key.clone(), value.clone()));
        }
    }
    if message.header("persistent").is_none() {
        frame = frame.header("persistent", "true");
    }
    frame.body = message.body.clone();
    frame
}

fn receipt_id(index: usize) -> String {
    format!("hookbus-{index}")
}

/// Which messages of a batch are receipted, and how many leading ones.
struct Receipts {
    seen: Vec<bool>,
    leading: usize,
}

impl Receipts {
    fn new(count: usize) -> Receipts {
        Receipts {
            seen: vec![false; count],
            leading: 0,
        }
    }

    fn mark(&mut self, receipt_id: Option<&str>) {
        let index = receipt_id
            .and_then(|id| id.strip_prefix("hookbus-"))
            .and_then(|number| number.parse::<usize>().ok());
        if let Some(seen) = index.and_then(|index| self.seen.get_mut(index)) {
            *seen = true;
        }
        while self.seen.get(self.leading) == Some(&true) {
            self.leading += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_count_leading_messages_only() {
        let mut receipts = Receipts::new(3);
        receipts.mark(Some("hookbus-1"));
        assert_eq!(receipts.leading, 0);
        receipts.mark(Some("hookbus-0"));
        assert_eq!(receipts.leading, 2);
        receipts.mark(Some("other"));
        receipts.mark(Some("hookbus-9"));
        receipts.mark(Some("hookbus-2"));
        assert_eq!(receipts.leading, 3);
    }

    #[test]
    fn message_headers_cannot_replace_the_publishers_own() {
        let message = Message {
            destination: "/queue/a".into(),
            headers: vec![
                ("destination".into(), "/queue/b".into()),
                ("receipt".into(), "x".into()),
                ("subject".into(), "s".into()),
            ],
            body: b"x".to_vec(),
        };
        let frame = send_frame(&message, 7);
        assert_eq!(frame.get("destination"), Some("/queue/a"));
        assert_eq!(frame.get("receipt"), Some("hookbus-7"));
        assert_eq!(frame.get("persistent"), Some("true"));
        assert_eq!(frame.headers.len(), 4);
    }
}
