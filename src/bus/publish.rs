//! The publishing half of the seam: batches of messages in, a verdict per
//! message out, within a deadline or while the broker makes progress.

use crate::message::Message;
use std::fmt;
use std::time::{Duration, Instant};

/// Batches published one after the other, over one connection where the
/// transport has connections (at-least-once: an unanswered message goes out
/// again, and `hookbus-id` lets consumers drop duplicates).
pub trait Publish {
    /// Sends every message of a batch, each acknowledged by the broker;
    /// `Err` says what became of each when not all were.
    fn publish(&mut self, messages: &[Message]) -> Result<(), PublishError>;

    /// Ends the delivery politely. Every batch was answered, so a failing
    /// goodbye loses nothing.
    fn close(self: Box<Self>);
}

/// What became of one message of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not answered: it may or may not have arrived, and goes out again.
    Unanswered,
    /// The broker acknowledged it (a STOMP RECEIPT).
    Receipted,
    /// The broker refused it, for good, with these words.
    Refused(String),
}

/// How long a publish may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Done or given up by then, whatever the broker does (a hook, `send`).
    Until(Instant),
    /// Goes on while the broker answers messages; gives up once it has
    /// answered none for this long (a flush no pusher waits for).
    WhileProgress(Duration),
}

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

/// How a delivery's connecting goes, as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A new connection is being opened (the first, or after the last one
    /// broke): nothing is known of the broker yet.
    Connecting,
    /// A broker accepted the connection.
    Connected,
    /// Every host failed a round; the delivery retries them if its
    /// [`Retry`] and deadline allow.
    AllHostsFailed,
}

/// A publish that did not fully succeed.
#[derive(Debug)]
pub struct PublishError {
    /// What became of each message: receipted, refused, or unanswered (it may
    /// or may not have arrived).
    pub verdicts: Vec<Verdict>,
    /// True when retrying cannot help (refused login or message, TLS trust).
    pub permanent: bool,
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

    /// Messages the broker receipted.
    pub fn delivered(&self) -> usize {
        self.count(|verdict| *verdict == Verdict::Receipted)
    }

    /// Messages the broker refused for good.
    pub fn refused(&self) -> usize {
        self.count(|verdict| matches!(verdict, Verdict::Refused(_)))
    }

    fn count(&self, which: impl Fn(&Verdict) -> bool) -> usize {
        self.verdicts
            .iter()
            .filter(|verdict| which(verdict))
            .count()
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
            "{} of {} message(s) receipted, {} refused, before a {kind} failure: {}",
            self.delivered(),
            self.verdicts.len(),
            self.refused(),
            self.reasons()
        )
    }
}

impl std::error::Error for PublishError {}
