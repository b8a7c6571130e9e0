//! A TCP socket whose every read and write is bounded by a deadline, for
//! the STOMP connection (TLS runs on top of it).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The TCP socket under a deadline: a read or write fails with `TimedOut`
/// once none is left, and never blocks more than [`SLACK`] past it.
///
/// Setting the socket timeout costs a system call, so it is set again only
/// when the one in force could overshoot the deadline by more than SLACK; a
/// deadline moved later (progress) can make the one in force fire early, and
/// such a read or write is simply tried again.
pub(super) struct TimedSocket {
    pub(super) tcp: TcpStream,
    pub(super) deadline: Instant,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// How far past the deadline a blocked read or write may go.
const SLACK: Duration = Duration::from_millis(20);

impl TimedSocket {
    pub(super) fn new(tcp: TcpStream, deadline: Instant) -> TimedSocket {
        TimedSocket {
            tcp,
            deadline,
            read_timeout: None,
            write_timeout: None,
        }
    }

    /// The timeout a blocking step may use now: the one in force if it ends
    /// no later than SLACK past the deadline, else the time left.
    fn timeout(&self, in_force: Option<Duration>) -> io::Result<Option<Duration>> {
        let now = Instant::now();
        let left = self
            .deadline
            .checked_duration_since(now)
            .filter(|left| !left.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))?;
        match in_force {
            Some(timeout) if now + timeout <= self.deadline + SLACK => Ok(None),
            _ => Ok(Some(left)),
        }
    }

    /// Runs one blocking step; a timeout that fired before the deadline
    /// (it was set before the deadline moved) is not an answer.
    fn step<T>(&mut self, mut run: impl FnMut(&mut TimedSocket) -> io::Result<T>) -> io::Result<T> {
        loop {
            match run(self) {
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && Instant::now() < self.deadline => {}
                other => return other,
            }
        }
    }
}

impl Read for TimedSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.step(|socket| {
            if let Some(timeout) = socket.timeout(socket.read_timeout)? {
                socket.tcp.set_read_timeout(Some(timeout))?;
                socket.read_timeout = Some(timeout);
            }
            socket.tcp.read(buf)
        })
    }
}

impl Write for TimedSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.step(|socket| {
            if let Some(timeout) = socket.timeout(socket.write_timeout)? {
                socket.tcp.set_write_timeout(Some(timeout))?;
                socket.write_timeout = Some(timeout);
            }
            socket.tcp.write(buf)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
