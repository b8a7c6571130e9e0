//! Where each mirror stands, as the daemon's finished work tells it: its
//! state, commit and when that last changed, and whether every mirror has
//! been worked on once since the start (the first pass). Metrics and presence
//! read it; the loop feeds it every finished piece of work.

use super::config::{MirrorConfig, Mode};
use super::report::Event;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// One mirror, as metrics and presence show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorStatus {
    /// The mirror's name (its clone path).
    pub name: String,
    /// The repository (or glob) it mirrors.
    pub repo: String,
    /// Its mode.
    pub mode: String,
    /// The branch it follows (checkout, in-place), if any.
    pub branch: Option<String>,
    /// `PENDING` before its first update, then `OK` or `BROKEN`.
    pub state: String,
    /// The commit it published or checked out, for modes that do.
    pub commit: Option<String>,
    /// When its state or commit last changed (the start, before any).
    pub changed_at: SystemTime,
    /// What went wrong last time, if it did.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    mirrors: BTreeMap<String, MirrorStatus>,
    first_pass_done: bool,
}

/// The shared board; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    inner: Arc<Mutex<Inner>>,
}

impl Standing {
    /// Every mirror of `mirrors`, not yet worked on.
    pub fn new(mirrors: &[MirrorConfig]) -> Standing {
        let standing = Standing::default();
        standing.set_mirrors(mirrors);
        standing
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The mirrors of a reloaded config: new ones start pending, removed ones
    /// go, the others keep what they had.
    pub fn set_mirrors(&self, mirrors: &[MirrorConfig]) {
        let mut inner = self.lock();
        let mut kept = BTreeMap::new();
        for mirror in mirrors {
            let name = mirror.name();
            let status = inner.mirrors.remove(&name).unwrap_or_else(|| MirrorStatus {
                name: name.clone(),
                repo: mirror.repo.clone(),
                mode: mirror.mode.as_str().to_string(),
                branch: matches!(mirror.mode, Mode::Checkout | Mode::InPlace)
                    .then(|| mirror.branch.clone()),
                state: "PENDING".into(),
                commit: None,
                changed_at: SystemTime::now(),
                last_error: None,
            });
            kept.insert(name, status);
        }
        inner.mirrors = kept;
    }

    /// A finished piece of work: `failed` makes the mirror BROKEN, anything
    /// else OK at the event's head (if it has one).
    pub fn record(&self, event: &Event) {
        let mut inner = self.lock();
        let Some(status) = inner.mirrors.get_mut(&event.mirror) else {
            return;
        };
        let state = if event.result == "failed" {
            "BROKEN"
        } else {
            "OK"
        };
        let commit = event.head.clone().or_else(|| status.commit.clone());
        if status.state != state || status.commit != commit {
            status.changed_at = SystemTime::now();
        }
        status.state = state.into();
        status.commit = commit;
        status.last_error = event.error.clone();
        if !inner.first_pass_done {
            inner.first_pass_done = inner.mirrors.values().all(|m| m.state != "PENDING");
        }
    }

    /// Every mirror, by name.
    pub fn snapshot(&self) -> Vec<MirrorStatus> {
        self.lock().mirrors.values().cloned().collect()
    }

    /// True once every mirror has been worked on (ok or not) since the start.
    pub fn first_pass_done(&self) -> bool {
        let inner = self.lock();
        inner.first_pass_done || inner.mirrors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(path: &str, mode: &str) -> MirrorConfig {
        let text = format!("repo = 'app'\npath = '{path}'\nmode = '{mode}'\ntarget = '/t{path}'");
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn the_first_pass_ends_when_every_mirror_was_worked_on() {
        let standing = Standing::new(&[mirror("/a", "checkout"), mirror("/b", "branches")]);
        assert!(!standing.first_pass_done());
        let event = |mirror: &str, result: &str, head: Option<&str>| Event {
            mirror: mirror.into(),
            result: result.into(),
            head: head.map(str::to_string),
            ..Event::default()
        };
        standing.record(&event("/a", "ok", Some("c1")));
        assert!(!standing.first_pass_done());
        standing.record(&event("/b", "failed", None));
        assert!(standing.first_pass_done());
        let snapshot = standing.snapshot();
        assert_eq!(snapshot[0].state, "OK");
        assert_eq!(snapshot[0].commit.as_deref(), Some("c1"));
        assert_eq!(snapshot[0].branch.as_deref(), Some("master"));
        assert_eq!(snapshot[1].state, "BROKEN");
        assert_eq!(snapshot[1].branch, None);
        standing.record(&event("/a", "ok", None));
        assert_eq!(standing.snapshot()[0].commit.as_deref(), Some("c1"), "kept");
        standing.set_mirrors(&[mirror("/c", "fetch")]);
        assert_eq!(standing.snapshot().len(), 1);
        assert!(standing.first_pass_done(), "sticky across reloads");
    }
}
