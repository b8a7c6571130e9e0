//! Why a STOMP step failed, and what that means for the caller: retry,
//! fail over, or give up.

use super::decode::FrameError;
use crate::bus::{BusError, Trouble};
use crate::text::clip;
use std::io;

/// Why a STOMP step failed.
#[derive(Debug, thiserror::Error)]
pub enum StompError {
    #[error("cannot resolve {0}")]
    /// The host name does not resolve.
    Resolve(String),
    #[error("cannot connect: {0}")]
    /// No TCP connection.
    Connect(io::Error),
    #[error("timed out {0}")]
    /// A step ran out of time; says which.
    Timeout(&'static str),
    #[error("connection closed by the broker {0}")]
    /// The broker closed the connection; says during which step.
    Closed(&'static str),
    #[error("{0}")]
    /// Reading or writing failed.
    Io(io::Error),
    #[error("TLS: {0}")]
    /// The TLS handshake failed (trust, names, protocol).
    Tls(String),
    #[error("broker refused the connection: {0} (check login, passcode and vhost)")]
    /// An ERROR frame in reply to CONNECT.
    LoginRefused(String),
    #[error("broker error: {0}")]
    /// An ERROR that answers no SEND (right after CONNECTED, say): trouble on
    /// the broker's side, not a verdict on any message.
    Broker(String),
    #[error("not a STOMP broker? {0}")]
    /// Bytes that are not a STOMP frame.
    Protocol(#[from] FrameError),
    #[error("not a STOMP broker? expected CONNECTED, got {0:?}")]
    /// A frame other than CONNECTED in reply to CONNECT.
    NotConnected(String),
    #[error("{0}")]
    /// What was asked for cannot be done on this broker: a config matter;
    /// says what to change.
    Unsupported(String),
}

impl StompError {
    /// True when trying again later cannot help (the broker said no); false for
    /// network trouble that may pass.
    pub fn is_permanent(&self) -> bool {
        matches!(self, StompError::LoginRefused(_) | StompError::Tls(_))
    }

    /// True when another host of a failover list may do better. A refused login
    /// would be refused there too.
    pub fn fails_over(&self) -> bool {
        !matches!(self, StompError::LoginRefused(_))
    }

    /// True when the TCP connection itself could not be made.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StompError::Resolve(_) | StompError::Connect(_))
            || matches!(self, StompError::Timeout(step) if *step == CONNECTING)
    }
}

/// The step of reaching the broker, in [`StompError::Timeout`].
pub(super) const CONNECTING: &str = "connecting";

/// What an I/O error during `step` means; rustls reports TLS failures (a bad
/// certificate, an alert) as I/O errors carrying its own.
pub(super) fn io_error(err: io::Error, step: &'static str) -> StompError {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(tls) = tls {
        return StompError::Tls(clip(&tls.to_string()));
    }
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => StompError::Timeout(step),
        io::ErrorKind::UnexpectedEof => StompError::Closed(step),
        _ => StompError::Io(err),
    }
}

impl From<StompError> for BusError {
    fn from(error: StompError) -> BusError {
        let trouble = match error.is_unreachable() {
            true => Trouble::Unreachable,
            false => Trouble::Other,
        };
        BusError::new(trouble, error.to_string())
    }
}
