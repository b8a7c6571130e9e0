//! Running git for a mirror: a clean environment (nothing of the daemon's own
//! leaks in), the mirror's account when the daemon runs as root, and a time
//! bound after which the whole process group is killed.

use crate::account::{run_as_or_keep_home, Account};
use crate::child::{Bounded, Keep, Ran};
use crate::text::tail_line;
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Longest piece of git's stderr carried into an error.
const STDERR_TAIL: usize = 600;

/// Bytes of the end of git's stderr read into memory (the tail shown is
/// cut from these, after trimming).
const STDERR_KEPT: usize = 4096;

/// Most of git's stdout read into memory: far above what the listener asks
/// for (ids, one line per branch), so that a runaway git cannot fill it.
const STDOUT_LIMIT: usize = 64 << 20;

/// How git is run for one mirror.
#[derive(Debug, Clone)]
pub struct Git {
    /// Bound on one git command.
    pub timeout: Duration,
    /// Run as this account (only set when the daemon is root).
    pub account: Option<Account>,
}

impl Git {
    /// Runs `git ARGS` in `dir` with `env` added to the clean environment;
    /// returns stdout, or an error with git's stderr when it failed, was
    /// killed, or ran out of time.
    pub fn run(&self, dir: &Path, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Result<String> {
        let output = self.output(dir, args, env)?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        bail!(
            "git {} failed ({}): {}",
            shown(args),
            output.status,
            tail_line(&String::from_utf8_lossy(&output.stderr), STDERR_TAIL)
        )
    }

    fn output(&self, dir: &Path, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Result<Ran> {
        let mut command = Command::new("git");
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
            .envs(env.iter().copied());
        run_as_or_keep_home(&mut command, self.account.as_ref());
        let ran = Bounded::new(format!("git {}", shown(args)), self.timeout)
            .stdout(Keep::Head(STDOUT_LIMIT))
            .stderr(Keep::Tail(STDERR_KEPT))
            .run(&mut command)?;
        if ran.stdout_dropped > 0 {
            bail!(
                "git {} printed more than {} MiB; hookbus reads no more of it",
                shown(args),
                STDOUT_LIMIT >> 20
            );
        }
        Ok(ran)
    }

    /// Changes the owner of something the daemon made (as root) to the
    /// mirror's account, so its git can work there.
    pub fn hand_over(&self, path: &Path) -> Result<()> {
        if let Some(account) = &self.account {
            std::os::unix::fs::lchown(path, Some(account.uid), Some(account.gid))
                .with_context(|| format!("cannot hand {} to {}", path.display(), account.name))?;
        }
        Ok(())
    }
}

fn shown(args: &[&OsStr]) -> String {
    args.first()
        .map(|arg| arg.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_runs_clean_and_bounded() {
        let git = Git {
            timeout: Duration::from_secs(20),
            account: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let out = git
            .run(
                dir.path(),
                &["var".as_ref(), "GIT_COMMITTER_IDENT".as_ref()],
                &[
                    ("GIT_COMMITTER_NAME", "x".as_ref()),
                    ("GIT_COMMITTER_EMAIL", "y@z".as_ref()),
                ],
            )
            .unwrap();
        assert!(out.starts_with("x <y@z>"), "{out}");
        let failed = git.run(dir.path(), &["rev-parse".as_ref(), "HEAD".as_ref()], &[]);
        assert!(failed
            .unwrap_err()
            .to_string()
            .contains("not a git repository"));
        let slow = Git {
            timeout: Duration::from_millis(300),
            account: None,
        };
        // An alias that sleeps: a hung git (a stalled fetch) stands for it.
        let hung = slow.run(
            dir.path(),
            &[
                "-c".as_ref(),
                "alias.hang=!sleep 30".as_ref(),
                "hang".as_ref(),
            ],
            &[],
        );
        assert!(hung.unwrap_err().to_string().contains("timed out"));
    }
}
