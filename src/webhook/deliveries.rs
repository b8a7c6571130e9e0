//! Remembering which deliveries were emitted, so that a forge's redelivery
//! (same delivery id) is answered without emitting its messages again, also
//! after a restart. Ids live in one append-only file of `SECONDS ID` lines,
//! compacted at start to those younger than the retention. Lines are written
//! per id but not fsynced: only a machine crash loses the last ones, and then
//! a redelivery is emitted again with the same `hookbus-id` (at least once,
//! as everywhere), while an fsync per request would double the time to 202.

use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FILE_NAME: &str = "deliveries";
/// Ids kept at most, however young: bounds memory and the file.
const MAX_IDS: usize = 200_000;

/// What [`Deliveries::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// New: the caller handles it, then calls `done` or `release`.
    New,
    /// Emitted before.
    Done,
    /// Another request is handling the same id right now.
    Busy,
}

/// The remembered delivery ids.
pub struct Deliveries {
    path: PathBuf,
    retention: Duration,
    state: Mutex<State>,
}

struct State {
    done: HashMap<String, u64>,
    busy: HashSet<String>,
    file: File,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Deliveries {
    /// Loads the ids of `dir` younger than `retention` and rewrites the file
    /// with only those.
    pub fn open(dir: &Path, retention: Duration) -> Result<Deliveries> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create webhook state directory {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let oldest = now().saturating_sub(retention.as_secs());
        let mut done: Vec<(String, u64)> = match fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter_map(|line| {
                    let (seconds, id) = line.split_once(' ')?;
                    let seconds: u64 = seconds.parse().ok()?;
                    (seconds >= oldest).then(|| (id.to_string(), seconds))
                })
                .collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()))
            }
        };
        let excess = done.len().saturating_sub(MAX_IDS);
        done.drain(..excess);
        let compacted: String = done
            .iter()
            .map(|(id, seconds)| format!("{seconds} {id}\n"))
            .collect();
        let temporary = dir.join(format!(".{FILE_NAME}.tmp"));
        fs::write(&temporary, compacted)
            .and_then(|()| File::open(&temporary)?.sync_all())
            .and_then(|()| fs::rename(&temporary, &path))
            .with_context(|| format!("cannot write {}", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Deliveries {
            path,
            retention,
            state: Mutex::new(State {
                done: done.into_iter().collect(),
                busy: HashSet::new(),
                file,
            }),
        })
    }

    /// The file the ids are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking request thread leaves the maps consistent: every
        // change is one insert or remove.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims `id` for handling unless it was emitted (within the retention)
    /// or is being handled.
    pub fn claim(&self, id: &str) -> Claim {
        let mut state = self.lock();
        let oldest = now().saturating_sub(self.retention.as_secs());
        if state.done.get(id).is_some_and(|&at| at >= oldest) {
            return Claim::Done;
        }
        if !state.busy.insert(id.to_string()) {
            return Claim::Busy;
        }
        Claim::New
    }

    /// Records a claimed id as emitted (written, not fsynced).
    pub fn done(&self, id: &str) -> Result<()> {
        let mut state = self.lock();
        state.busy.remove(id);
        let at = now();
        if state.done.len() >= MAX_IDS {
            state
                .done
                .retain(|_, &mut seen| seen > at.saturating_sub(3600));
        }
        state.done.insert(id.to_string(), at);
        let line = format!("{at} {id}\n");
        state
            .file
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot record delivery {id} in {}", self.path.display()))
    }

    /// Gives a claimed id up (its handling failed): a redelivery is handled anew.
    pub fn release(&self, id: &str) {
        self.lock().busy.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_claimed_once_and_remembered_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let week = Duration::from_secs(7 * 86400);
        let deliveries = Deliveries::open(dir.path(), week).unwrap();
        assert_eq!(deliveries.claim("/gh a"), Claim::New);
        assert_eq!(deliveries.claim("/gh a"), Claim::Busy);
        deliveries.done("/gh a").unwrap();
        assert_eq!(deliveries.claim("/gh a"), Claim::Done);
        assert_eq!(deliveries.claim("/gh b"), Claim::New);
        deliveries.release("/gh b");
        assert_eq!(deliveries.claim("/gh b"), Claim::New);
        drop(deliveries);
        let reopened = Deliveries::open(dir.path(), week).unwrap();
        assert_eq!(reopened.claim("/gh a"), Claim::Done);
        assert_eq!(reopened.claim("/gh b"), Claim::New);
        let forgetful = Deliveries::open(dir.path(), Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(forgetful.claim("/gh a"), Claim::New);
    }
}
