//! The control socket: how `hookbus ctl` talks to a running listener. A Unix
//! socket `control.sock` in the daemon's state directory (mode 0660, in
//! `[listen] control_group` when set); one JSON [`Request`] line in, one JSON
//! [`Response`] line out, then the connection closes.
//!
//! `status` is answered from the [`Board`](super::status::Board) at once;
//! the commands that change a mirror (freeze, unfreeze, rollback, sync) become
//! a [`Job`] for the daemon's loop, which hands it to the worker pool: they
//! are serialised with that mirror's updates. [`server`] serves the socket,
//! [`call`] is the client side.

use super::status::MirrorStatus;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

pub mod server;

/// The socket's name in the state directory.
pub const SOCKET: &str = "control.sock";

/// How long the daemon waits for a command's work (a sync waits for its
/// fetch) before it answers that the work goes on.
pub const WORK_WAIT: Duration = Duration::from_secs(600);

/// Longest request or response line read.
pub const MAX_LINE: u64 = 4 << 20;

/// The socket of a listener whose state directory is `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every mirror's status.
    Status,
    /// Hold a mirror's target where it is (it still fetches).
    Freeze {
        /// The mirror's name, its repo when unique on the host, or its clone path.
        mirror: String,
    },
    /// Lift a hold; the mirror catches up at once.
    Unfreeze {
        /// The mirror's name, its repo when unique on the host, or its clone path.
        mirror: String,
    },
    /// Publish `rev` at the mirror's target, then hold it there.
    Rollback {
        /// The mirror's name, its repo when unique on the host, or its clone path.
        mirror: String,
        /// A commit (or any revision) the mirror's clone has.
        rev: String,
        /// For mode `branches`: the published branch to roll back.
        #[serde(default)]
        branch: Option<String>,
    },
    /// Update the mirror now (only fetch while it is held).
    Sync {
        /// The mirror's name, its repo when unique on the host, or its clone path.
        mirror: String,
    },
}

impl Request {
    /// The mirror a command names (none for `status`).
    pub fn mirror(&self) -> Option<&str> {
        match self {
            Request::Status => None,
            Request::Freeze { mirror }
            | Request::Unfreeze { mirror }
            | Request::Rollback { mirror, .. }
            | Request::Sync { mirror } => Some(mirror),
        }
    }

    /// The command's name, as in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Freeze { .. } => "freeze",
            Request::Unfreeze { .. } => "unfreeze",
            Request::Rollback { .. } => "rollback",
            Request::Sync { .. } => "sync",
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Done.
    Ok,
    /// Not done, and it would not be done again as asked: an unknown mirror
    /// or commit, a command the mirror's mode has no use for, a bad request.
    Refused,
    /// Tried and failed (git, the file system), or still running.
    Failed,
}

impl Verdict {
    /// Its name, as in reports: `ok`, `refused`, `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Refused => "refused",
            Verdict::Failed => "failed",
        }
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// How it ended.
    pub verdict: Verdict,
    /// One line for a person.
    pub message: String,
    /// Every mirror (status), or the one the command changed, as it is now.
    pub mirrors: Vec<MirrorStatus>,
}

impl Response {
    /// A refusal saying why.
    pub fn refused(message: impl Into<String>) -> Response {
        Response {
            verdict: Verdict::Refused,
            message: message.into(),
            mirrors: Vec::new(),
        }
    }
}

/// A command for one mirror, on its way to the worker pool.
#[derive(Debug, Clone)]
pub struct Job {
    /// What was asked (never `status`).
    pub request: Request,
    /// Where the answer goes.
    pub reply: Sender<Response>,
}

/// An answer for a client, sent once the work's report event is stored.
#[derive(Debug)]
pub struct Reply {
    /// The client's channel.
    pub to: Sender<Response>,
    /// The answer.
    pub response: Response,
}

impl Reply {
    /// Sends it (a client that gave up is not an error).
    pub fn send(self) {
        let _ = self.to.send(self.response);
    }
}

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing listens on the socket: no daemon runs with that state directory.
    #[error("no listener is running at {socket}: {reason}")]
    NotRunning {
        /// The socket tried.
        socket: PathBuf,
        /// What connecting said.
        reason: String,
    },
    /// The daemon runs, but this conversation failed.
    #[error("{0:#}")]
    Other(anyhow::Error),
}

/// Sends `request` to the listener at `socket` and waits (at most `wait`) for
/// its answer.
pub fn call(socket: &Path, request: &Request, wait: Duration) -> Result<Response, CallError> {
    let other = |error: std::io::Error, what: &str| {
        CallError::Other(anyhow::Error::new(error).context(format!("{what} {}", socket.display())))
    };
    let mut stream = UnixStream::connect(socket).map_err(|error| {
        use std::io::ErrorKind::{ConnectionRefused, NotFound, PermissionDenied};
        match error.kind() {
            NotFound | ConnectionRefused => CallError::NotRunning {
                socket: socket.to_path_buf(),
                reason: error.to_string(),
            },
            PermissionDenied => other(
                error,
                "only root and the listener's [listen] control_group may use",
            ),
            _ => other(error, "cannot connect to"),
        }
    })?;
    stream
        .set_read_timeout(Some(wait))
        .and_then(|()| stream.set_write_timeout(Some(wait)))
        .map_err(|error| other(error, "cannot use"))?;
    let mut line = serde_json::to_vec(request).map_err(|e| CallError::Other(e.into()))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|error| other(error, "cannot write to"))?;
    let mut answer = Vec::new();
    BufReader::new(std::io::Read::take(stream, MAX_LINE))
        .read_until(b'\n', &mut answer)
        .map_err(|error| other(error, "no answer from"))?;
    serde_json::from_slice(&answer).map_err(|error| {
        CallError::Other(anyhow::Error::new(error).context(format!(
            "the listener at {} gave an answer this hookbus does not understand (is it another version?)",
            socket.display()
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_object_each() {
        let rollback = Request::Rollback {
            mirror: "web".into(),
            rev: "abc".into(),
            branch: None,
        };
        let text = serde_json::to_string(&rollback).unwrap();
        assert_eq!(
            text,
            r#"{"command":"rollback","mirror":"web","rev":"abc","branch":null}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), rollback);
        let status: Request = serde_json::from_str(r#"{"command":"status"}"#).unwrap();
        assert_eq!(status, Request::Status);
        for bad in [
            r#"{"command":"reboot"}"#,
            r#"{"command":"freeze"}"#,
            r#"{"command":"freeze","mirror":"a","force":true}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
