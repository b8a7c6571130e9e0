//! One STOMP connection over TCP or TLS: every step (name lookup, connect, TLS
//! handshake, each read and write) is bounded by the caller's deadline. The
//! socket itself checks the time left before every system call, so no loop
//! above it (`write_all`, rustls's handshake and record reads) can outlast the
//! deadline, however slowly the peer reads or trickles bytes.

use super::frame::{clip, Decoder, Escaping, Frame, FrameError};
use super::secret::Secret;
use super::timed::TimedSocket;
use super::url::HostSpec;
use rustls::pki_types::ServerName;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

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

const CONNECTING: &str = "connecting";

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
    pub tls: Option<&'a Arc<rustls::ClientConfig>>,
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

enum Stream {
    Plain(TimedSocket),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TimedSocket>>),
}

impl Stream {
    fn socket(&mut self) -> &mut TimedSocket {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(tls) => tls.get_mut(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(socket) => socket.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
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
        let tcp = connect_tcp(host, deadline)?;
        tcp.set_nodelay(true).map_err(StompError::Io)?;
        keep_alive(&tcp).map_err(StompError::Io)?;
        let socket = TimedSocket::new(tcp, deadline);
        let stream = if host.tls {
            let config = params.tls.ok_or_else(|| {
                StompError::Tls("no TLS settings for a stomp+ssl host".to_string())
            })?;
            Stream::Tls(Box::new(handshake(socket, host, config)?))
        } else {
            Stream::Plain(socket)
        };
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

/// TCP keepalive, so that a broker gone without a word (its host down, a
/// firewall that forgot the connection) is noticed even when heart-beats are
/// off: after this long idle, probes this far apart, this many unanswered.
const KEEPALIVE_IDLE_S: libc::c_int = 60;
const KEEPALIVE_INTERVAL_S: libc::c_int = 10;
const KEEPALIVE_PROBES: libc::c_int = 6;
/// How long a dead link may go unnoticed when only keepalive watches it.
pub const KEEPALIVE_NOTICES_AFTER: Duration =
    Duration::from_secs((KEEPALIVE_IDLE_S + KEEPALIVE_INTERVAL_S * KEEPALIVE_PROBES) as u64);

/// Turns TCP keepalive on with the timings above (std has no setter for it).
fn keep_alive(tcp: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    for (level, option, value) in [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, KEEPALIVE_IDLE_S),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, KEEPALIVE_PROBES),
    ] {
        // SAFETY: an open socket, and a pointer to a c_int with its size.
        let result = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                level,
                option,
                std::ptr::from_ref(&value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn remaining(deadline: Instant, step: &'static str) -> Result<Duration, StompError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
        .ok_or(StompError::Timeout(step))
}

/// What an I/O error during `step` means; rustls reports TLS failures (a bad
/// certificate, an alert) as I/O errors carrying its own.
fn io_error(err: io::Error, step: &'static str) -> StompError {
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

/// Resolves (in a helper thread, since the system resolver has no timeout) and
/// connects to the first address that answers.
fn connect_tcp(host: &HostSpec, deadline: Instant) -> Result<TcpStream, StompError> {
    let addresses: Vec<SocketAddr> = match host.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, host.port)],
        Err(_) => {
            let (sender, receiver) = mpsc::channel();
            let name = (host.host.clone(), host.port);
            std::thread::spawn(move || {
                let _ = sender.send(name.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
            });
            match receiver.recv_timeout(remaining(deadline, CONNECTING)?) {
                Ok(Ok(addresses)) => addresses,
                Ok(Err(err)) => return Err(StompError::Resolve(format!("{}: {err}", host.host))),
                Err(_) => return Err(StompError::Timeout(CONNECTING)),
            }
        }
    };
    let mut last = StompError::Resolve(format!("{}: no addresses", host.host));
    for address in addresses {
        match TcpStream::connect_timeout(&address, remaining(deadline, CONNECTING)?) {
            Ok(tcp) => return Ok(tcp),
            Err(err) => {
                last = match io_error(err, CONNECTING) {
                    StompError::Io(err) => StompError::Connect(err),
                    other => other,
                }
            }
        }
    }
    Err(last)
}

/// The TLS handshake, every socket step under the socket's deadline.
fn handshake(
    socket: TimedSocket,
    host: &HostSpec,
    config: &Arc<rustls::ClientConfig>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TimedSocket>, StompError> {
    let name = ServerName::try_from(host.host.clone())
        .map_err(|_| StompError::Tls(format!("{:?} is not a valid server name", host.host)))?;
    let session = rustls::ClientConnection::new(Arc::clone(config), name)
        .map_err(|err| StompError::Tls(err.to_string()))?;
    let mut tls = rustls::StreamOwned::new(session, socket);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|err| io_error(err, "in the TLS handshake"))?;
    }
    Ok(tls)
}
