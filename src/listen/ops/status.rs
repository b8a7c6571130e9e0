//! The status board: one [`MirrorStatus`] per configured mirror — its state
//! (OK, FROZEN, ROLLED-BACK, BROKEN), the commit at its target, when that last
//! changed, the last error. The worker records every update here, `hookbus
//! ctl` freezes and rolls back through it, `/metrics` and presence read it.
//!
//! FROZEN and ROLLED-BACK are holds an operator set: a held mirror still
//! fetches but its target never moves, and only `unfreeze` lifts a hold.
//! Otherwise the last update decides: OK, or BROKEN when it failed.
//!
//! The board survives restarts: every change is written to `mirrors.json` in
//! the daemon's state directory atomically (a temporary file, fsync, rename,
//! fsync of the directory), so a crash leaves the old board or the new one. A
//! change an operator asked for is refused when it cannot be written.

use crate::config::mirror::{MirrorConfig, Mode};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

mod store;

/// The board's file in the state directory.
pub const STATE_FILE: &str = "mirrors.json";

/// A mirror's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MirrorState {
    /// Following its branch; the last update worked.
    #[serde(rename = "OK")]
    Ok,
    /// Held by an operator: fetches, but the target does not move.
    #[serde(rename = "FROZEN")]
    Frozen,
    /// Held at a commit an operator published; fetches, the target stays.
    #[serde(rename = "ROLLED-BACK")]
    RolledBack,
    /// The last update failed (see `last_error`).
    #[serde(rename = "BROKEN")]
    Broken,
}

impl MirrorState {
    /// The name shown and stored: `OK`, `FROZEN`, `ROLLED-BACK`, `BROKEN`.
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorState::Ok => "OK",
            MirrorState::Frozen => "FROZEN",
            MirrorState::RolledBack => "ROLLED-BACK",
            MirrorState::Broken => "BROKEN",
        }
    }

    /// True for the states an operator set (the target must not move).
    pub fn is_held(self) -> bool {
        matches!(self, MirrorState::Frozen | MirrorState::RolledBack)
    }
}

/// One mirror on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorStatus {
    /// The mirror's name (its clone path).
    pub name: String,
    /// The repository name (or glob) it follows.
    pub repo: String,
    /// Its mode (`fetch`, `checkout`, `in-place`, `branches`).
    pub mode: String,
    /// The branch it follows, for modes that follow one.
    pub branch: Option<String>,
    /// Its state.
    pub state: MirrorState,
    /// The commit published or checked out at its target; for `fetch` and
    /// `branches`, the fetched head of its branch. `None` until known.
    pub commit: Option<String>,
    /// When the state or the commit last changed.
    #[serde(with = "store::unix_seconds")]
    pub changed_at: SystemTime,
    /// What the last update failed with; `None` once one worked.
    pub last_error: Option<String>,
}

/// A state change, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The state before.
    pub from: MirrorState,
    /// The state now.
    pub to: MirrorState,
}

/// What one update of a mirror came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It worked; the commit now at the target (`None`: unchanged or unknown).
    Done(Option<String>),
    /// It failed with this error.
    Failed(String),
}

#[derive(Debug)]
struct Entry {
    status: MirrorStatus,
    /// Updated at least once since the daemon started.
    updated: bool,
}

#[derive(Debug)]
struct Inner {
    /// Where the board is kept; `None`: in memory only.
    file: Option<PathBuf>,
    /// In config order.
    entries: Vec<Entry>,
}

/// The board, shared by the worker pool, the control socket and metrics.
#[derive(Debug, Clone)]
pub struct Board {
    inner: Arc<Mutex<Inner>>,
}

impl Board {
    /// A board kept in memory only (tests, tools).
    pub fn new(mirrors: &[MirrorConfig]) -> Board {
        Board::with(None, Vec::new(), mirrors)
    }

    /// The board kept in `state_dir`, as the last run left it, for `mirrors`
    /// (mirrors no longer configured are forgotten). A file that cannot be
    /// read is an error: starting afresh would silently lift holds.
    pub fn open(state_dir: &Path, mirrors: &[MirrorConfig]) -> Result<Board> {
        let file = state_dir.join(STATE_FILE);
        let stored = store::read(&file)?;
        Ok(Board::with(Some(file), stored, mirrors))
    }

    fn with(file: Option<PathBuf>, stored: Vec<MirrorStatus>, mirrors: &[MirrorConfig]) -> Board {
        let board = Board {
            inner: Arc::new(Mutex::new(Inner {
                file,
                entries: Vec::new(),
            })),
        };
        board.lock().entries = stored
            .into_iter()
            .map(|status| Entry {
                status,
                updated: false,
            })
            .collect();
        board.set_mirrors(mirrors);
        board
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::sync::lock(&self.inner)
    }

    /// Follows a (re)loaded config: new mirrors start OK, removed ones are
    /// forgotten, kept ones keep their state.
    pub fn set_mirrors(&self, mirrors: &[MirrorConfig]) {
        let mut inner = self.lock();
        let mut old = std::mem::take(&mut inner.entries);
        for config in mirrors {
            let name = config.name();
            // A mirror known by its clone path before it had a name (an
            // upgrade, a `name` added) keeps its holds.
            let path = config.path.display().to_string();
            let stored = (old.iter().position(|entry| entry.status.name == name))
                .or_else(|| old.iter().position(|entry| entry.status.name == path));
            let mut entry = match stored {
                Some(index) => old.swap_remove(index),
                None => Entry {
                    status: MirrorStatus {
                        name: name.clone(),
                        repo: String::new(),
                        mode: String::new(),
                        branch: None,
                        state: MirrorState::Ok,
                        commit: None,
                        changed_at: SystemTime::now(),
                        last_error: None,
                    },
                    updated: false,
                },
            };
            entry.status.name = name;
            entry.status.repo = config.repo.clone();
            entry.status.mode = config.mode.as_str().to_string();
            entry.status.branch = (config.mode != Mode::Branches).then(|| config.branch.clone());
            inner.entries.push(entry);
        }
    }

    /// Every mirror, in config order.
    pub fn snapshot(&self) -> Vec<MirrorStatus> {
        let inner = self.lock();
        inner.entries.iter().map(|e| e.status.clone()).collect()
    }

    /// One mirror, by name.
    pub fn get(&self, name: &str) -> Option<MirrorStatus> {
        let inner = self.lock();
        let entry = inner.entries.iter().find(|e| e.status.name == name)?;
        Some(entry.status.clone())
    }

    /// True once every mirror has been updated (or tried) since the start.
    pub fn first_pass_done(&self) -> bool {
        self.lock().entries.iter().all(|entry| entry.updated)
    }

    /// Records an update of `name`: the commit it left, or its failure.
    /// Held mirrors keep their state and their commit (but for `fetch`
    /// mirrors, whose commit is what was fetched). An error here is only the
    /// file's.
    pub fn updated(&self, name: &str, outcome: &Outcome) -> Result<Option<Change>> {
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.iter_mut().find(|e| e.status.name == name) {
            entry.updated = true;
        }
        drop(inner);
        self.change(name, |status| {
            match outcome {
                Outcome::Done(commit) => {
                    // A held target did not move, whatever was fetched.
                    let moves = !status.state.is_held() || status.mode == Mode::Fetch.as_str();
                    if commit.is_some() && moves {
                        status.commit.clone_from(commit);
                    }
                    status.last_error = None;
                }
                Outcome::Failed(error) => status.last_error = Some(error.clone()),
            }
            if !status.state.is_held() {
                status.state = match outcome {
                    Outcome::Done(_) => MirrorState::Ok,
                    Outcome::Failed(_) => MirrorState::Broken,
                };
            }
            Ok(())
        })
    }

    /// Holds `name` where it is.
    pub fn freeze(&self, name: &str) -> Result<Option<Change>> {
        self.change(name, |status| {
            if !status.state.is_held() {
                status.state = MirrorState::Frozen;
            }
            Ok(())
        })
    }

    /// Holds `name` at `commit`, just published at its target.
    pub fn rolled_back(&self, name: &str, commit: &str) -> Result<Option<Change>> {
        self.change(name, |status| {
            status.state = MirrorState::RolledBack;
            status.commit = Some(commit.to_string());
            Ok(())
        })
    }

    /// Lifts the hold on `name`: OK, or BROKEN while its last update failed,
    /// until the next update (which the caller runs at once) says more.
    pub fn unfreeze(&self, name: &str) -> Result<Option<Change>> {
        self.change(name, |status| {
            status.state = match status.last_error {
                Some(_) => MirrorState::Broken,
                None => MirrorState::Ok,
            };
            Ok(())
        })
    }

    /// Applies `edit` to `name`'s status; when anything changed, stamps the
    /// time (state or commit) and writes the board. When the write fails, the
    /// change is undone and the error returned.
    fn change(
        &self,
        name: &str,
        edit: impl FnOnce(&mut MirrorStatus) -> Result<()>,
    ) -> Result<Option<Change>> {
        let mut inner = self.lock();
        let Some(index) = inner.entries.iter().position(|e| e.status.name == name) else {
            bail!("there is no mirror named {name:?}");
        };
        let entry = &mut inner.entries[index];
        let before = entry.status.clone();
        edit(&mut entry.status)?;
        let status = &mut entry.status;
        if *status == before {
            return Ok(None);
        }
        if status.state != before.state || status.commit != before.commit {
            status.changed_at = SystemTime::now();
        }
        let change = (status.state != before.state).then_some(Change {
            from: before.state,
            to: status.state,
        });
        if let Err(error) = inner.write() {
            inner.entries[index].status = before;
            return Err(error);
        }
        Ok(change)
    }
}

impl Inner {
    fn write(&self) -> Result<()> {
        match &self.file {
            Some(file) => store::write(
                file,
                self.entries.iter().map(|e| e.status.clone()).collect(),
            ),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(path: &str, mode: &str) -> MirrorConfig {
        toml::from_str(&format!(
            "repo = 'r'\npath = '{path}'\nmode = '{mode}'\ntarget = '{path}.www'"
        ))
        .unwrap()
    }

    #[test]
    fn updates_decide_unless_held() {
        let board = Board::new(&[mirror("/m/a", "checkout")]);
        assert!(!board.first_pass_done());
        let failed = Outcome::Failed("no network".into());
        let change = board.updated("/m/a", &failed).unwrap();
        assert_eq!(change.map(|c| c.to), Some(MirrorState::Broken));
        assert!(board.first_pass_done());
        let done = Outcome::Done(Some("c1".into()));
        assert_eq!(
            board.updated("/m/a", &done).unwrap().unwrap().to,
            MirrorState::Ok
        );
        assert_eq!(
            board.updated("/m/a", &done).unwrap(),
            None,
            "nothing changed"
        );
        board.freeze("/m/a").unwrap();
        board.updated("/m/a", &failed).unwrap();
        let status = board.get("/m/a").unwrap();
        assert_eq!(
            status.state,
            MirrorState::Frozen,
            "a hold outlives failures"
        );
        assert_eq!(status.last_error.as_deref(), Some("no network"));
        assert_eq!(
            board.unfreeze("/m/a").unwrap().unwrap().to,
            MirrorState::Broken
        );
        assert!(board.freeze("/m/nothing").is_err());
    }

    #[test]
    fn the_board_survives_a_restart_and_follows_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let mirrors = [mirror("/m/a", "checkout"), mirror("/m/b", "fetch")];
        let board = Board::open(dir.path(), &mirrors).unwrap();
        board.rolled_back("/m/a", "c0").unwrap();
        board
            .updated("/m/a", &Outcome::Done(Some("c9".into())))
            .unwrap();
        let again = Board::open(dir.path(), &mirrors).unwrap();
        let a = again.get("/m/a").unwrap();
        assert_eq!(
            (a.state, a.commit.as_deref()),
            (MirrorState::RolledBack, Some("c0"))
        );
        assert_eq!(a.branch.as_deref(), Some("master"));
        assert!(
            !again.first_pass_done(),
            "a new run has updated nothing yet"
        );
        let only_b = Board::open(dir.path(), &mirrors[1..]).unwrap();
        assert_eq!(only_b.snapshot().len(), 1);
        std::fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        let error = format!("{:#}", Board::open(dir.path(), &mirrors).unwrap_err());
        assert!(error.contains("move it away"), "{error}");
    }

    #[test]
    fn a_change_that_cannot_be_kept_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let board = Board::open(&state, &[mirror("/m/a", "checkout")]).unwrap();
        std::fs::remove_dir(&state).unwrap();
        assert!(board.freeze("/m/a").is_err());
        assert_eq!(board.get("/m/a").unwrap().state, MirrorState::Ok);
    }
}
