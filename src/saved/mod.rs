//! Pushes kept by a hook whose config could not be used: what git or svn gave
//! the hook, stored durably where the config plays no part (`pushes/` in the
//! default outbox directory, [`crate::config::default_outbox_dir`]), so that
//! `hookbus flush` can run the hook again, as it would have run, once the
//! config is fixed.
//!
//! `pushes/NAME.push` holds one JSON line (which hook, on what, the naming
//! environment, when, why it was kept, the sizes of what follows), the hook's
//! stdin, and for git the repository's refs at that moment (`packed-refs`
//! lines). A replay runs the git hook on a view of the repository with those
//! refs (the objects are shared), so the push rule sees what the hook saw, not
//! refs moved since. Files are private, atomic and fsynced like outbox files.

mod replay;

use crate::git;
use crate::private_file::Access;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DIR: &str = "pushes";
const SUFFIX: &str = ".push";
/// Where a kept push that cannot be read is moved, so it is reported once.
const DAMAGED_SUFFIX: &str = ".damaged";
const VIEW_SUFFIX: &str = ".view";
/// The environment that names the repository and the pusher.
const NAMING_ENV: [&str; 5] = ["GL_USER", "GL_REPO", "USER", "LOGNAME", "HOOKBUS_REPO_NAME"];
/// Set for a hook run again by [`KeptPushes::replay_all`] to its kept file:
/// failing again, it does not keep the push a second time.
const REPLAY_ENV: &str = "HOOKBUS_KEPT_PUSH";
/// How long one replayed hook may run before it is killed (and the push kept).
pub const REPLAY_BOUND: Duration = Duration::from_secs(600);

/// Which hook ran, and on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "hook", rename_all = "kebab-case")]
pub enum HookCall {
    /// The git post-receive hook of the repository at `repo`.
    PostReceive {
        /// The repository (its git directory), absolute.
        repo: PathBuf,
    },
    /// The Subversion post-commit hook of revision `rev` of `repos`, with the
    /// name it was given (`--name`, `$HOOKBUS_REPO_NAME`).
    SvnPostCommit {
        /// The repository directory, absolute.
        repos: PathBuf,
        /// The revision committed.
        rev: u64,
        /// The repository's name, when one was given.
        name: Option<String>,
    },
}

impl HookCall {
    /// The post-receive hook of `dir`, else `$GIT_DIR`, else the current
    /// directory (where git runs hooks).
    pub fn post_receive(dir: Option<&Path>) -> HookCall {
        let dir = dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("GIT_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."));
        HookCall::PostReceive {
            repo: absolute(&dir),
        }
    }

    /// The post-commit hook of revision `rev` of `repos`.
    pub fn svn_post_commit(repos: &Path, rev: u64, name: Option<String>) -> HookCall {
        HookCall::SvnPostCommit {
            repos: absolute(repos),
            rev,
            name,
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    call: HookCall,
    /// Seconds since the epoch when the hook ran.
    time: u64,
    env: Vec<(String, String)>,
    /// Why the hook could not handle the push itself.
    why: String,
    /// Bytes of stdin after the line.
    stdin: usize,
    /// Bytes of the ref snapshot after stdin, when one was taken.
    refs: Option<usize>,
}

/// The place kept pushes wait in.
#[derive(Debug, Clone)]
pub struct KeptPushes {
    dir: PathBuf,
    access: Access,
}

/// One kept push, read back.
#[derive(Debug)]
pub struct SavedPush {
    path: PathBuf,
    header: Header,
    stdin: Vec<u8>,
    refs: Option<Vec<u8>>,
}

/// What running the kept pushes again did.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Pushes the hook handled; their files are gone.
    pub emitted: usize,
    /// Why each of the others is still kept (or was set aside as damaged).
    pub kept: Vec<String>,
}

impl KeptPushes {
    /// `pushes/` in the default outbox directory, private to this user.
    pub fn in_default_place() -> KeptPushes {
        KeptPushes::in_outbox(&crate::config::default_outbox_dir())
    }

    /// `pushes/` in `outbox`.
    pub fn in_outbox(outbox: &Path) -> KeptPushes {
        KeptPushes {
            dir: outbox.join(DIR),
            access: Access::private(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps what a hook was given, durably; returns where.
    pub fn keep(&self, call: HookCall, stdin: &[u8], why: &anyhow::Error) -> Result<PathBuf> {
        if let Some(already) = std::env::var_os(REPLAY_ENV) {
            return Ok(PathBuf::from(already));
        }
        let refs = match &call {
            HookCall::PostReceive { repo } => ref_snapshot(repo),
            HookCall::SvnPostCommit { .. } => None,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let header = Header {
            call,
            time: now.as_secs(),
            env: NAMING_ENV
                .iter()
                .filter_map(|&name| Some((name.to_string(), std::env::var(name).ok()?)))
                .collect(),
            why: format!("{why:#}"),
            stdin: stdin.len(),
            refs: refs.as_ref().map(Vec::len),
        };
        let name = format!(
            "{:012}.{:09}-{:07}{SUFFIX}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id()
        );
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!(".tmp-{name}"));
        self.access
            .ensure_dir(&self.dir)
            .and_then(|()| {
                self.access.write_atomic(&self.dir, &temp, &path, |file| {
                    serde_json::to_writer(&mut *file, &header)?;
                    file.write_all(b"\n")?;
                    file.write_all(stdin)?;
                    file.write_all(refs.as_deref().unwrap_or_default())
                })
            })
            .with_context(|| format!("cannot keep the push in {}", self.dir.display()))?;
        Ok(path)
    }

    /// Kept pushes, oldest first.
    pub fn list(&self) -> Result<Vec<PathBuf>> {
        if !self.access.check_dir(&self.dir)? {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for item in fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read {}", self.dir.display()))?
        {
            let item = item.with_context(|| format!("cannot read {}", self.dir.display()))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(SUFFIX) && !name.starts_with('.') {
                found.push(item.path());
            }
        }
        found.sort();
        Ok(found)
    }

    /// Reads one kept push back.
    pub fn load(&self, path: &Path) -> Result<SavedPush> {
        let bytes = self.access.read_trusted(path)?;
        let damaged = || format!("{} is damaged (not a kept push)", path.display());
        let split = bytes
            .iter()
            .position(|&b| b == b'\n')
            .with_context(damaged)?;
        let header: Header = serde_json::from_slice(&bytes[..split]).with_context(damaged)?;
        let stdin_end = split + 1 + header.stdin;
        let stdin = bytes.get(split + 1..stdin_end).with_context(damaged)?;
        let refs = match header.refs {
            Some(length) => Some(
                bytes
                    .get(stdin_end..stdin_end + length)
                    .with_context(damaged)?
                    .to_vec(),
            ),
            None => None,
        };
        Ok(SavedPush {
            path: path.to_path_buf(),
            stdin: stdin.to_vec(),
            refs,
            header,
        })
    }
}

/// The refs of a git repository as `packed-refs` lines; `None` when it cannot
/// be read (the replay then uses the refs it has by then).
fn ref_snapshot(repo: &Path) -> Option<Vec<u8>> {
    let repo = git::open(Some(repo)).ok()?;
    let mut lines = Vec::new();
    for reference in repo.references().ok()?.flatten() {
        let Some(target) = reference.resolve().ok().and_then(|r| r.target()) else {
            continue;
        };
        lines.extend_from_slice(format!("{target} ").as_bytes());
        lines.extend_from_slice(reference.name_bytes());
        lines.push(b'\n');
    }
    Some(lines)
}

impl SavedPush {
    /// Which hook ran, and on what.
    pub fn call(&self) -> &HookCall {
        &self.header.call
    }

    /// One line saying what this push is.
    pub fn describe(&self) -> String {
        let when = chrono::DateTime::from_timestamp(self.header.time as i64, 0)
            .map_or_else(String::new, |time| {
                time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            });
        let what = match &self.header.call {
            HookCall::PostReceive { repo } => format!("post-receive of {}", repo.display()),
            HookCall::SvnPostCommit { repos, rev, .. } => {
                format!("svn-post-commit of r{rev} of {}", repos.display())
            }
        };
        format!("{} ({what}, kept {when})", self.path.display())
    }

    /// Why the hook kept it.
    pub fn why(&self) -> &str {
        &self.header.why
    }
}
