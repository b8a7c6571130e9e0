//! Reaching a broker: name lookup, TCP (no delay, keepalive) and TLS, every
//! step bounded by the caller's deadline. The socket itself checks the time
//! left before every system call, so no loop above it (`write_all`, rustls's
//! handshake and record reads) can outlast the deadline, however slowly the
//! peer reads or trickles bytes.

use super::error::{io_error, StompError, CONNECTING};
use super::timed::TimedSocket;
use super::tls::Trust;
use super::url::HostSpec;
use rustls::pki_types::ServerName;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The byte stream to one broker, plain or TLS, under a deadline.
pub(super) enum Stream {
    Plain(TimedSocket),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TimedSocket>>),
}

impl Stream {
    pub(super) fn socket(&mut self) -> &mut TimedSocket {
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

/// Connects to `host` before `deadline`, with TLS when its URL says so
/// (`tls` is then required).
pub(super) fn dial(
    host: &HostSpec,
    tls: Option<&Trust>,
    deadline: Instant,
) -> Result<Stream, StompError> {
    let tcp = connect_tcp(host, deadline)?;
    tcp.set_nodelay(true).map_err(StompError::Io)?;
    keep_alive(&tcp).map_err(StompError::Io)?;
    let socket = TimedSocket::new(tcp, deadline);
    if !host.tls {
        return Ok(Stream::Plain(socket));
    }
    // Trust is loaded (the first time) only once a broker answered: a hook
    // run during an outage does not read the system's roots for nothing.
    let trust =
        tls.ok_or_else(|| StompError::Tls("no TLS settings for a stomp+ssl host".to_string()))?;
    let config = trust.config().map_err(StompError::Tls)?;
    Ok(Stream::Tls(Box::new(handshake(socket, host, config)?)))
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
