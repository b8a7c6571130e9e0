//! Full fidelity from a local mirror: fetch it (bounded in time), then build
//! the notification from git exactly as the post-receive hook does, log,
//! stat, diff and the whole-push rule included.

use super::forge::Push;
use crate::child::{Bounded, Keep};
use crate::git::input::RawUpdate;
use crate::git::PushContext;
use crate::route::{Routed, Router};
use anyhow::{bail, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Bytes of git's error output kept for the message.
const STDERR_KEPT: usize = 4096;

/// Runs `git fetch --prune` in the mirror; past `timeout` it is killed with
/// what it started (remote helpers, ssh).
pub fn fetch(mirror: &Path, timeout: Duration) -> Result<()> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(mirror)
        .args(["fetch", "--prune", "--quiet"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdout(Stdio::null());
    let ran = Bounded::new("git fetch", timeout)
        .stderr(Keep::Head(STDERR_KEPT))
        .run(&mut command)?;
    if !ran.status.success() {
        let said = String::from_utf8_lossy(&ran.stderr);
        bail!(
            "git fetch failed ({}): {}",
            ran.status,
            said.trim().replace('\n', "; ")
        );
    }
    Ok(())
}

/// The notification the hook would build for `push` in the (fetched)
/// mirror, routed by `router`.
pub fn notification(
    repo: &git2::Repository,
    push: &Push,
    context: &PushContext,
    router: &Router,
) -> Result<Routed> {
    let line = RawUpdate {
        line: 1,
        oldrev: push.before.clone(),
        newrev: push.after.clone(),
        refname: push.refname.clone(),
        refname_bytes: push.refname.as_bytes().to_vec(),
    };
    match crate::git::analyze(repo, vec![line], context, router).pop() {
        Some(result) => Ok(result?),
        None => bail!("{} is not announced (notes are off)", push.refname),
    }
}
