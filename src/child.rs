//! Child processes with a bound: whoever starts one waits no longer than it
//! allows, so a hung git or hook can never hold a push, a daemon or a flush.
//!
//! [`Bounded::run`] starts the command in a process group of its own, reads
//! what it prints with bounded memory, and past the bound kills the whole
//! group (git starts remote helpers, ssh, index-pack; a hook starts git),
//! then reaps it. The group's leader is not reaped before the group is
//! killed, so its id cannot have been reused by then.

mod watch;

use std::io::{PipeReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;
use watch::{CallerDone, Watch, Watched};

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
    /// stdout and stderr share one pipe (see [`Bounded::output`]).
    merged: bool,
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
            merged: false,
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

    /// Reads stdout and stderr as one stream, both on one pipe so that they
    /// stay in the order written, keeping what `keep` says; what is kept
    /// comes back as stdout. For [`Bounded::run`] (not [`Bounded::spawn`]).
    pub fn output(mut self, keep: Keep) -> Self {
        (self.stdout, self.stderr, self.merged) = (keep, Keep::Unread, true);
        self
    }

    /// Runs `command` in a process group of its own and waits for it and its
    /// output at most the bound; past it the group is killed and reaped.
    pub fn run(self, command: &mut Command) -> Result<Ran, ChildError> {
        let (child, watch) = self.start(command, false)?;
        let watched = watch.watch();
        watched.end(child)
    }

    /// Starts `command` in a process group of its own with its stdout for
    /// the caller to read as it comes (a large blob); past the bound the
    /// group is killed, which ends that read. [`Streaming::finish`] reaps it.
    pub fn spawn(self, command: &mut Command) -> Result<(Streaming, ChildStdout), ChildError> {
        assert!(!self.merged, "Bounded::output is for run, not spawn");
        command.stdout(Stdio::piped());
        let (mut child, mut watch) = self.start(command, true)?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let read = watch.read_by_caller();
        let watchdog = std::thread::spawn(move || watch.watch());
        let streaming = Streaming {
            running: Some((child, read, watchdog)),
        };
        Ok((streaming, stdout))
    }

    /// Spawns `command` as [`Keep`] and the stdin say, the readers and the
    /// waiter on their threads; `stream` leaves stdout to the caller.
    fn start(self, command: &mut Command, stream: bool) -> Result<(Child, Watch), ChildError> {
        command.process_group(0).stdin(match self.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        });
        die_with_parent(command);
        let (mut child, merged) = match self.spawn_piped(command) {
            Ok(spawned) => spawned,
            Err(source) => {
                let what = self.what;
                return Err(ChildError::Start { what, source });
            }
        };
        if let (Some(bytes), Some(mut input)) = (self.stdin, child.stdin.take()) {
            // A child may stop reading early; a broken pipe is its business.
            std::thread::spawn(move || {
                let _ = input.write_all(&bytes);
            });
        }
        let stdout = match merged {
            Some(reader) => Some(Box::new(reader) as Box<dyn Read + Send>),
            None if stream => None,
            None => child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn Read + Send>),
        };
        let outputs = [
            stdout,
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn Read + Send>),
        ];
        let watch = Watch::start(
            &child,
            self.what,
            self.bound,
            outputs,
            [self.stdout, self.stderr],
        );
        Ok((child, watch))
    }

    /// Spawns `command` with its outputs piped as [`Keep`] says; merged
    /// ones on one pipe, whose reading end comes back.
    fn spawn_piped(&self, command: &mut Command) -> std::io::Result<(Child, Option<PipeReader>)> {
        if self.merged {
            let (reader, writer) = std::io::pipe()?;
            command.stdout(writer.try_clone()?).stderr(writer);
            let spawned = command.spawn();
            // The command holds the pipe's writing end: closed here, or the
            // reader would never see the end of the output.
            command.stdout(Stdio::null()).stderr(Stdio::null());
            return Ok((spawned?, Some(reader)));
        }
        if self.stdout != Keep::Unread {
            command.stdout(Stdio::piped());
        }
        if self.stderr != Keep::Unread {
            command.stderr(Stdio::piped());
        }
        Ok((command.spawn()?, None))
    }
}

/// Makes the child get SIGKILL when whoever started it dies: in a process
/// group of its own it would otherwise outlive a killed daemon and go on
/// writing (a checkout into the tree the restarted daemon cleans up). Set
/// last, after any switch of account, which clears it.
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe and allocate nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the line above: nobody waits for us.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// A bounded child whose stdout the caller reads (see [`Bounded::spawn`]).
/// Dropped unfinished, it is killed with its group and reaped.
pub struct Streaming {
    running: Option<(Child, CallerDone, JoinHandle<Watched>)>,
}

impl Streaming {
    /// Waits for the child to end (at most what is left of the bound) and
    /// reaps it; call it once its stdout was read or dropped.
    pub fn finish(mut self) -> Result<Ran, ChildError> {
        let (child, read, watchdog) = self.running.take().expect("finished once");
        read.done();
        let watched = watchdog
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        watched.end(child)
    }
}

impl Drop for Streaming {
    /// Abandoned: the group is killed, then reaped.
    fn drop(&mut self) {
        if let Some((child, ..)) = &self.running {
            // SAFETY: kill has no memory effects; the leader is not reaped
            // before finish, so -pid is still its group.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let running = self.running.take();
            let _ = Streaming { running }.finish();
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
