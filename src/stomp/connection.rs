//! One logged-in STOMP connection over a stream `dial` reached: CONNECT
//! and CONNECTED, frames queued and written, frames read, DISCONNECT; every
//! step bounded by the caller's deadline.

use super::decode::Decoder;
use super::dial::{dial, Stream};
use super::error::io_error;
pub use super::error::StompError;
use super::frame::{Escaping, Frame};
use super::url::HostSpec;
use crate::secret::Secret;
use crate::text::clip;
use std::io::{self, Read, Write};
use std::time::Instant;

/// What CONNECT needs besides the host.
#[derive(Debug, Clone)]
pub struct ConnectParams<'a> {
    /// The `login` header, if any.
    pub login: Option<&'a str>,
    /// The `passcode` header, if any.
    pub passcode: Option<&'a Secret>,
    /// The `host` header: the vhost (`/` when not configured).
    pub vhost: &'a str,
    /// Escape CONNECT headers (RabbitMQ unescapes them; ActiveMQ takes both).
    pub escape_connect_headers: bool,
    /// TLS settings, required for `stomp+ssl://` hosts.
    pub tls: Option<&'a super::tls::Trust>,
}

/// What the broker said in CONNECTED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Negotiated protocol version.
    pub version: String,
    /// The broker's `server` header, if any.
    pub server: Option<String>,
    /// The broker's `heart-beat` header (`sx,sy` in ms), if any.
    pub heart_beat: Option<String>,
}

/// An open, logged-in STOMP connection.
pub struct Connection {
    stream: Stream,
    decoder: Decoder,
    escaping: Escaping,
    pending: Vec<u8>,
    /// Bytes read from the broker so far (heart-beats included).
    received: u64,
    /// What the broker said when it accepted the login.
    pub session: Session,
}

impl Connection {
    /// Connects, logs in and waits for CONNECTED, all before `deadline`.
    pub fn open(
        host: &HostSpec,
        params: &ConnectParams<'_>,
        deadline: Instant,
    ) -> Result<Connection, StompError> {
        Connection::open_with(host, params, &[], deadline)
    }

    /// Like [`Connection::open`], with extra CONNECT headers (a subscriber's
    /// `heart-beat`, which otherwise is `0,0`, or its `client-id`).
    pub fn open_with(
        host: &HostSpec,
        params: &ConnectParams<'_>,
        extra_headers: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Connection, StompError> {
        let stream = dial(host, params.tls, deadline)?;
        let mut connection = Connection {
            stream,
            decoder: Decoder::new(Escaping::None),
            escaping: Escaping::None,
            pending: Vec::new(),
            received: 0,
            session: Session {
                version: String::new(),
                server: None,
                heart_beat: None,
            },
        };
        let mut connect = Frame::new("CONNECT")
            .header("accept-version", "1.0,1.1,1.2")
            .header("host", params.vhost);
        if !extra_headers.iter().any(|(key, _)| *key == "heart-beat") {
            connect = connect.header("heart-beat", "0,0");
        }
        for (key, value) in extra_headers {
            connect = connect.header(key, value);
        }
        if let Some(login) = params.login {
            connect = connect.header("login", login);
        }
        if let Some(passcode) = params.passcode {
            connect = connect.header("passcode", passcode.expose());
        }
        let connect_escaping = if params.escape_connect_headers {
            Escaping::V12
        } else {
            Escaping::None
        };
        connect.encode(connect_escaping, &mut connection.pending);
        connection.flush()?;
        let reply = connection.read_frame("waiting for CONNECTED")?;
        match reply.command.as_str() {
            "CONNECTED" => {
                let version = reply.get("version").unwrap_or("1.0").to_string();
                connection.escaping = Escaping::for_version(&version);
                connection.decoder.set_escaping(connection.escaping);
                connection.session = Session {
                    version,
                    server: reply.get("server").map(str::to_string),
                    heart_beat: reply.get("heart-beat").map(str::to_string),
                };
                Ok(connection)
            }
            "ERROR" => Err(StompError::LoginRefused(reply.error_text())),
            other => Err(StompError::NotConnected(clip(other))),
        }
    }

    /// Queues a frame; nothing is written until [`Connection::flush`].
    pub fn queue(&mut self, frame: &Frame) {
        frame.encode(self.escaping, &mut self.pending);
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Moves the deadline every later step is bounded by (a flush gives a
    /// broker that makes progress more time).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.stream.socket().deadline = deadline;
    }

    /// Writes every queued frame.
    pub fn flush(&mut self) -> Result<(), StompError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self
            .stream
            .write_all(&self.pending)
            .and_then(|()| self.stream.flush());
        self.pending.clear();
        result.map_err(|err| io_error(err, "sending"))
    }

    /// A frame already received and decoded, without waiting for more bytes.
    pub fn buffered_frame(&mut self) -> Result<Option<Frame>, StompError> {
        Ok(self.decoder.next_frame()?)
    }

    /// The next frame from the broker; EOF or the deadline is an error naming
    /// what was awaited.
    pub fn read_frame(&mut self, waiting_for: &'static str) -> Result<Frame, StompError> {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(frame);
            }
            match self.stream.read(&mut buffer) {
                Ok(0) => return Err(StompError::Closed(waiting_for)),
                Ok(read) => {
                    self.received += read as u64;
                    self.decoder.push(&buffer[..read]);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(io_error(err, waiting_for)),
            }
        }
    }

    /// Sends DISCONNECT with a receipt and waits for it; any ERROR fails.
    pub fn disconnect(mut self) -> Result<(), StompError> {
        self.queue(&Frame::new("DISCONNECT").header("receipt", "disconnect"));
        self.flush()?;
        loop {
            let frame = self.read_frame("waiting for the DISCONNECT receipt")?;
            match frame.command.as_str() {
                "RECEIPT" if frame.get("receipt-id") == Some("disconnect") => return Ok(()),
                "ERROR" => return Err(StompError::Broker(frame.error_text())),
                _ => {}
            }
        }
    }

    /// Sends DISCONNECT without a receipt and closes: for a session whose
    /// every frame was answered, the receipt would tell nothing and cost the
    /// caller a round trip.
    pub fn leave(mut self) {
        self.queue(&Frame::new("DISCONNECT"));
        let _ = self.flush();
    }

    /// Bytes read from the broker so far, heart-beats included: a count that
    /// moved means the link is alive.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Queues a heart-beat (a bare end of line).
    pub fn queue_heartbeat(&mut self) {
        self.pending.push(b'\n');
    }
}
