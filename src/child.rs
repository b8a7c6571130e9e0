//! Child processes with a bound: whoever starts one waits no longer than it
//! allows, so a hung git or hook can never hold a push, a daemon or a flush.
//!
//! [`Bounded::run`] starts the command in a process group of its own, reads
//! what it prints with bounded memory, and past the bound kills the whole
//! group (git starts remote helpers, ssh, index-pack; a hook starts git),
//! then reaps it. The group's leader is not reaped before the group is
//! killed, so its id cannot have been reused by then.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long the readers may take to see the end of their pipes once the
/// group is killed; something that left the group may still hold a pipe,
/// and its reader is then left behind with what it read.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What is kept of a child's stdout or stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Not read here: the stream goes wherever the command sends it
    /// (inherited, a file, null).
    Unread,
    /// Read to the end; the first `n` bytes are kept, the rest counted.
    Head(usize),
    /// Read to the end; the last `n` bytes are kept, the rest counted.
    Tail(usize),
}

/// How a command is run: its name in errors, its bound, its stdin and what
/// is kept of its output.
#[derive(Debug, Clone)]
pub struct Bounded {
    what: String,
    bound: Duration,
    stdin: Option<Vec<u8>>,
    stdout: Keep,
    stderr: Keep,
}

/// A command that ended within its bound.
#[derive(Debug)]
pub struct Ran {
    /// How it ended.
    pub status: ExitStatus,
    /// What [`Keep`] kept of stdout (empty when unread).
    pub stdout: Vec<u8>,
    /// What [`Keep`] kept of stderr (empty when unread).
    pub stderr: Vec<u8>,
    /// Bytes of stdout read but not kept.
    pub stdout_dropped: u64,
}

/// Why a bounded command gave no [`Ran`].
#[derive(Debug, Error)]
pub enum ChildError {
    /// It could not be started.
    #[error("cannot run {what}: {source}")]
    Start {
        /// The command's name.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// It (or something of its group holding its output) ran past the bound
    /// and its process group was killed.
    #[error("{what} timed out after {} and was killed", shown(*bound))]
    TimedOut {
        /// The command's name.
        what: String,
        /// The bound it ran past.
        bound: Duration,
        /// What was kept of stdout until then.
        stdout: Vec<u8>,
        /// What was kept of stderr until then.
        stderr: Vec<u8>,
    },
    /// Waiting for it failed.
    #[error("cannot wait for {what}: {source}")]
    Wait {
        /// The command's name.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What the helper threads tell the waiting one.
enum Event {
    /// The leader exited (it is not reaped yet).
    Exited(std::io::Result<()>),
    /// A stream was read to its end: (is stdout, kept bytes, dropped bytes).
    Read(bool, Vec<u8>, u64),
}

impl Bounded {
    /// `what` names the command in errors (`git fetch`); it may run for
    /// `bound`. By default its stdin is empty and its output is unread.
    pub fn new(what: impl Into<String>, bound: Duration) -> Self {
        Bounded {
            what: what.into(),
            bound,
            stdin: None,
            stdout: Keep::Unread,
            stderr: Keep::Unread,
        }
    }

    /// Gives the command `bytes` on its stdin.
    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// Reads stdout, keeping what `keep` says.
    pub fn stdout(mut self, keep: Keep) -> Self {
        self.stdout = keep;
        self
    }

    /// Reads stderr, keeping what `keep` says.
    pub fn stderr(mut self, keep: Keep) -> Self {
        self.stderr = keep;
        self
    }

    /// Runs `command` in a process group of its own and waits for it and its
    /// output at most the bound; past it the group is killed and reaped.
    pub fn run(self, command: &mut Command) -> Result<Ran, ChildError> {
        command.process_group(0).stdin(match self.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        });
        if self.stdout != Keep::Unread {
            command.stdout(Stdio::piped());
        }
        if self.stderr != Keep::Unread {
            command.stderr(Stdio::piped());
        }
        let what = self.what;
        let mut child = command.spawn().map_err(|source| ChildError::Start {
            what: what.clone(),
            source,
        })?;
        let until = Instant::now() + self.bound;
        let pid = child.id() as libc::pid_t;
        if let (Some(bytes), Some(mut input)) = (self.stdin, child.stdin.take()) {
            // A child may stop reading early; a broken pipe is its business.
            std::thread::spawn(move || {
                let _ = input.write_all(&bytes);
            });
        }
        let (sender, events) = mpsc::channel();
        let mut open = 0;
        if let Some(out) = child.stdout.take() {
            open += 1;
            read_on_side(out, self.stdout, true, sender.clone());
        }
        if let Some(err) = child.stderr.take() {
            open += 1;
            read_on_side(err, self.stderr, false, sender.clone());
        }
        std::thread::spawn(move || {
            let _ = sender.send(Event::Exited(wait_unreaped(pid)));
        });
        let mut kept = Outputs::default();
        let mut exited = None;
        let mut timed_out = false;
        while exited.is_none() || open > 0 {
            let left = until.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(event) => kept.take(event, &mut exited, &mut open),
                Err(RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if timed_out {
            // SAFETY: kill has no memory effects. The leader is not reaped
            // yet (waited for with WNOWAIT), so -pid is still its group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            while exited.is_none() {
                match events.recv() {
                    Ok(event) => kept.take(event, &mut exited, &mut open),
                    Err(_) => break,
                }
            }
            let grace = Instant::now() + DRAIN_GRACE;
            while open > 0 {
                let left = grace.saturating_duration_since(Instant::now());
                match events.recv_timeout(left) {
                    Ok(event) => kept.take(event, &mut exited, &mut open),
                    Err(_) => break,
                }
            }
        }
        let status = child.wait();
        let waited = exited.unwrap_or(Ok(())).and(status);
        if timed_out {
            return Err(ChildError::TimedOut {
                what,
                bound: self.bound,
                stdout: kept.stdout,
                stderr: kept.stderr,
            });
        }
        match waited {
            Ok(status) => Ok(Ran {
                status,
                stdout: kept.stdout,
                stderr: kept.stderr,
                stdout_dropped: kept.stdout_dropped,
            }),
            Err(source) => Err(ChildError::Wait { what, source }),
        }
    }
}

/// What the readers brought back.
#[derive(Default)]
struct Outputs {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_dropped: u64,
}

impl Outputs {
    fn take(&mut self, event: Event, exited: &mut Option<std::io::Result<()>>, open: &mut usize) {
        match event {
            Event::Exited(result) => *exited = Some(result),
            Event::Read(true, bytes, dropped) => {
                *open -= 1;
                (self.stdout, self.stdout_dropped) = (bytes, dropped);
            }
            Event::Read(false, bytes, _) => {
                *open -= 1;
                self.stderr = bytes;
            }
        }
    }
}

/// Reads `from` to its end on a thread of its own, so that a chatty child
/// never blocks on a full pipe, and sends what `keep` keeps.
fn read_on_side(
    mut from: impl Read + Send + 'static,
    keep: Keep,
    is_stdout: bool,
    to: mpsc::Sender<Event>,
) {
    std::thread::spawn(move || {
        let (mut kept, mut dropped) = (Vec::new(), 0u64);
        let mut buffer = [0u8; 8192];
        loop {
            let n = match from.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            dropped += keep_bytes(keep, &mut kept, &buffer[..n]);
        }
        if let Keep::Tail(limit) = keep {
            let over = kept.len().saturating_sub(limit);
            kept.drain(..over);
            dropped += over as u64;
        }
        let _ = to.send(Event::Read(is_stdout, kept, dropped));
    });
}

/// Adds `bytes` to what is kept; returns how many were dropped. A tail is
/// trimmed only when it holds twice the limit, so that trimming stays cheap.
fn keep_bytes(keep: Keep, kept: &mut Vec<u8>, bytes: &[u8]) -> u64 {
    match keep {
        Keep::Unread => bytes.len() as u64,
        Keep::Head(limit) => {
            let room = limit.saturating_sub(kept.len()).min(bytes.len());
            kept.extend_from_slice(&bytes[..room]);
            (bytes.len() - room) as u64
        }
        Keep::Tail(limit) => {
            kept.extend_from_slice(bytes);
            if kept.len() <= limit.saturating_mul(2) {
                return 0;
            }
            let over = kept.len() - limit;
            kept.drain(..over);
            over as u64
        }
    }
}

/// Waits until `pid` has exited without reaping it, so that its process
/// group cannot be reused while the group may still be killed.
fn wait_unreaped(pid: libc::pid_t) -> std::io::Result<()> {
    loop {
        // SAFETY: waitid writes only into `info`, which lives through the call.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT;
        if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// A bound as people write it: whole seconds in seconds, else milliseconds.
fn shown(bound: Duration) -> String {
    if bound.subsec_nanos() == 0 {
        format!("{} s", bound.as_secs())
    } else {
        format!("{} ms", bound.as_millis())
    }
}

#[cfg(test)]
mod tests;
