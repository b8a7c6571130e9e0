//! Full fidelity from a local mirror: fetch it (bounded in time), then build
//! the notification from git exactly as the post-receive hook does, log,
//! stat, diff and the whole-push rule included.

use super::forge::Push;
use crate::git::input::RawUpdate;
use crate::git::PushContext;
use crate::model::Notification;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Bytes of git's error output kept for the message.
const STDERR_KEPT: usize = 4096;

/// Runs `git fetch --prune` in the mirror, killing it after `timeout`.
pub fn fetch(mirror: &Path, timeout: Duration) -> Result<()> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(mirror)
        .args(["fetch", "--prune", "--quiet"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run git fetch")?;
    // Read stderr on the side, so a chatty git never blocks on a full pipe.
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = (&mut stderr)
            .take(STDERR_KEPT as u64)
            .read_to_end(&mut text);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        String::from_utf8_lossy(&text).trim().replace('\n', "; ")
    });
    let status =
        crate::child::wait_bounded(&mut child, timeout).context("cannot wait for git fetch")?;
    let said = reader.join().unwrap_or_default();
    match status {
        None => bail!("git fetch took longer than {} ms", timeout.as_millis()),
        Some(status) if !status.success() => bail!("git fetch failed ({status}): {said}"),
        Some(_) => Ok(()),
    }
}

/// The notification the hook would build for `push` in the (fetched) mirror.
pub fn notification(
    repo: &git2::Repository,
    push: &Push,
    context: &PushContext,
) -> Result<Notification> {
    let line = RawUpdate {
        line: 1,
        oldrev: push.before.clone(),
        newrev: push.after.clone(),
        refname: push.refname.clone(),
        refname_bytes: push.refname.as_bytes().to_vec(),
    };
    // Every list is wanted: routes are matched after this.
    match crate::git::analyze(repo, vec![line], context, &|_| true).pop() {
        Some(result) => Ok(result?),
        None => bail!("{} is not announced (notes are off)", push.refname),
    }
}
