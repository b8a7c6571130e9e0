//! Watching a bounded child: its output read on the side, its exit waited
//! for without reaping it, and its group killed once the bound is past.

use super::{ChildError, Keep, Ran};
use std::io::Read;
use std::process::Child;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long the readers may take to see the end of their pipes once the
/// group is killed; something that left the group may still hold a pipe,
/// and its reader is then left behind with what it read.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What the helper threads tell the waiting one.
enum Event {
    /// The leader exited (it is not reaped yet).
    Exited(std::io::Result<()>),
    /// A stream was read to its end: (is stdout, kept bytes, dropped bytes).
    Read(bool, Vec<u8>, u64),
}

/// A started child being watched: its events, its group, its deadline.
pub(super) struct Watch {
    what: String,
    bound: Duration,
    until: Instant,
    pid: libc::pid_t,
    events: mpsc::Receiver<Event>,
    /// Kept until watching starts, for [`Watch::read_by_caller`].
    sender: Option<mpsc::Sender<Event>>,
    open: usize,
}

/// Tells the watch that the caller is done with the stdout it reads.
pub(super) struct CallerDone(mpsc::Sender<Event>);

impl CallerDone {
    pub(super) fn done(self) {
        let _ = self.0.send(Event::Read(true, Vec::new(), 0));
    }
}

/// What came of watching: the output kept, and whether the group was killed.
pub(super) struct Watched {
    what: String,
    bound: Duration,
    kept: Outputs,
    exited: Option<std::io::Result<()>>,
    timed_out: bool,
}

impl Watch {
    /// Starts the readers of `outputs` (stdout, stderr; kept as `keep`
    /// says) and the waiter of `child`, which leads its own group.
    pub(super) fn start(
        child: &Child,
        what: String,
        bound: Duration,
        outputs: [Option<Box<dyn Read + Send>>; 2],
        keep: [Keep; 2],
    ) -> Watch {
        let until = Instant::now() + bound;
        let pid = child.id() as libc::pid_t;
        let (sender, events) = mpsc::channel();
        let mut open = 0;
        for ((output, keep), is_stdout) in outputs.into_iter().zip(keep).zip([true, false]) {
            if let Some(output) = output {
                open += 1;
                read_on_side(output, keep, is_stdout, sender.clone());
            }
        }
        let waiter = sender.clone();
        std::thread::spawn(move || {
            let _ = waiter.send(Event::Exited(wait_unreaped(pid)));
        });
        Watch {
            what,
            bound,
            until,
            pid,
            events,
            sender: Some(sender),
            open,
        }
    }

    /// Counts the stdout the caller reads among the outputs waited for: past
    /// the bound, the group holding it open is killed, so the read ends.
    pub(super) fn read_by_caller(&mut self) -> CallerDone {
        self.open += 1;
        CallerDone(self.sender.clone().expect("not watched yet"))
    }

    /// Waits until the child exited and its output was read, or the bound
    /// is past; then kills the group and waits for the leader to die.
    pub(super) fn watch(mut self) -> Watched {
        self.sender = None;
        let mut kept = Outputs::default();
        let mut exited = None;
        let mut timed_out = false;
        while exited.is_none() || self.open > 0 {
            let left = self.until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => kept.take(event, &mut exited, &mut self.open),
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
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            while exited.is_none() {
                match self.events.recv() {
                    Ok(event) => kept.take(event, &mut exited, &mut self.open),
                    Err(_) => break,
                }
            }
            let grace = Instant::now() + DRAIN_GRACE;
            while self.open > 0 {
                let left = grace.saturating_duration_since(Instant::now());
                match self.events.recv_timeout(left) {
                    Ok(event) => kept.take(event, &mut exited, &mut self.open),
                    Err(_) => break,
                }
            }
        }
        Watched {
            what: self.what,
            bound: self.bound,
            kept,
            exited,
            timed_out,
        }
    }
}

impl Watched {
    /// Reaps `child` (its exit was seen) and says how it ended.
    pub(super) fn end(self, mut child: Child) -> Result<Ran, ChildError> {
        let status = child.wait();
        let (what, kept) = (self.what, self.kept);
        if self.timed_out {
            return Err(ChildError::TimedOut {
                what,
                bound: self.bound,
                stdout: kept.stdout,
                stderr: kept.stderr,
            });
        }
        match self.exited.unwrap_or(Ok(())).and(status) {
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
