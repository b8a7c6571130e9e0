//! Remembering which deliveries were emitted, so that a forge's redelivery
//! (same delivery id) is answered without emitting its messages again, also
//! after a restart. Ids live in one append-only file of `SECONDS ID` lines,
//! compacted at start to those younger than the retention. Lines are written
//! per id but not fsynced: only a machine crash loses the last ones, and then
//! a redelivery is emitted again with the same `hookbus-id` (at least once,
//! as everywhere), while an fsync per request would double the time to 202.
//!
//! A request costs the same however many ids are remembered: in memory they
//! are a set and, oldest first, a queue, and expiry only ever looks at the
//! queue's front. At most [`MAX_IDS`] are kept; beyond that the oldest are
//! forgotten before their time (a redelivery of one is emitted again, with
//! the same `hookbus-id`, which consumers drop).

use crate::private_file::Access;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FILE_NAME: &str = "deliveries";
/// Ids kept at most, however young: bounds memory and the compacted file.
pub const MAX_IDS: usize = 200_000;

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
    capacity: usize,
    state: Mutex<State>,
}

/// An id as remembered in memory: the first 128 bits of its SHA-256, so each
/// id costs the same 16 bytes however long a forge (or a client) makes it,
/// and no two ids meet by chance.
type Key = [u8; 16];

fn key(id: &str) -> Key {
    let digest = Sha256::digest(id.as_bytes());
    let mut key = Key::default();
    let length = key.len();
    key.copy_from_slice(&digest[..length]);
    key
}

struct State {
    /// The emitted ids, each once.
    done: HashSet<Key>,
    /// The same ids with the second they were recorded, oldest first.
    order: VecDeque<(u64, Key)>,
    busy: HashSet<String>,
    file: File,
}

impl State {
    /// Adds an id recorded at `at` (not before the newest: the queue stays
    /// in age order even when the clock steps back).
    fn remember(&mut self, at: u64, key: Key) {
        let at = self.order.back().map_or(at, |&(newest, _)| at.max(newest));
        if self.done.insert(key) {
            self.order.push_back((at, key));
        }
    }

    /// Forgets the ids recorded before `oldest`, then the oldest beyond
    /// `capacity`: from the front of the queue only.
    fn expire(&mut self, oldest: u64, capacity: usize) {
        while let Some(&(at, key)) = self.order.front() {
            if at >= oldest && self.order.len() <= capacity {
                break;
            }
            self.order.pop_front();
            self.done.remove(&key);
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The `SECONDS ID` lines of `text` younger than `oldest`, oldest first.
fn young_lines(text: &str, oldest: u64) -> Vec<(u64, &str)> {
    let mut lines: Vec<(u64, &str)> = text
        .lines()
        .filter_map(|line| {
            let (seconds, id) = line.split_once(' ')?;
            let seconds: u64 = seconds.parse().ok()?;
            (seconds >= oldest).then_some((seconds, id))
        })
        .collect();
    lines.sort_by_key(|&(seconds, _)| seconds);
    lines
}

impl Deliveries {
    /// Loads the ids of `dir` younger than `retention` and rewrites the file
    /// with only those.
    pub fn open(dir: &Path, retention: Duration) -> Result<Deliveries> {
        Deliveries::open_bounded(dir, retention, MAX_IDS)
    }

    fn open_bounded(dir: &Path, retention: Duration, capacity: usize) -> Result<Deliveries> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create webhook state directory {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()))
            }
        };
        let lines = young_lines(&text, now().saturating_sub(retention.as_secs()));
        // Newest first, each id once (its last record), at most `capacity`.
        let mut done = HashSet::with_capacity(lines.len().min(capacity));
        let mut order = VecDeque::with_capacity(done.capacity());
        let mut kept = Vec::with_capacity(done.capacity());
        for &(seconds, id) in lines.iter().rev() {
            if order.len() == capacity {
                break;
            }
            let key = key(id);
            if done.insert(key) {
                order.push_front((seconds, key));
                kept.push((seconds, id));
            }
        }
        drop(lines);
        // A temporary file of this process: two servers sharing a state
        // directory by mistake never write into the same one.
        let temporary = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        Access::private()
            .write_atomic(dir, &temporary, &path, |out| {
                kept.iter()
                    .rev()
                    .try_for_each(|(seconds, id)| writeln!(out, "{seconds} {id}"))
            })
            .with_context(|| format!("cannot write {}", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let state = State {
            done,
            order,
            busy: HashSet::new(),
            file,
        };
        Ok(Deliveries {
            path,
            retention,
            capacity,
            state: Mutex::new(state),
        })
    }

    /// The file the ids are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state with the ids past the retention forgotten.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking request thread leaves the state consistent: nothing
        // between the steps of one change (queue, then set) can panic.
        let mut state = crate::sync::lock(&self.state);
        state.expire(
            now().saturating_sub(self.retention.as_secs()),
            self.capacity,
        );
        state
    }

    /// Claims `id` for handling unless it was emitted (within the retention)
    /// or is being handled.
    pub fn claim(&self, id: &str) -> Claim {
        let mut state = self.lock();
        if state.done.contains(&key(id)) {
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
        state.remember(at, key(id));
        state.expire(0, self.capacity);
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

    /// Lines of `(seconds, id)` as the state file has them.
    fn state_file(dir: &Path, lines: impl Iterator<Item = (u64, String)>) {
        let text: String = lines.map(|(at, id)| format!("{at} {id}\n")).collect();
        fs::write(dir.join(FILE_NAME), text).unwrap();
    }

    /// The file is compacted to the young ids, oldest first (whatever order
    /// the file had them in: the clock may have stepped back), each once.
    #[test]
    fn the_file_is_compacted_in_age_order_each_id_once() {
        let dir = tempfile::tempdir().unwrap();
        let t = now();
        let lines = [
            (t - 7200, "/gh too-old"),
            (t - 30, "/gh c"),
            (t - 50, "/gh a"),
            (t - 40, "/gh b"),
            (t - 60, "/gh c"),
        ];
        state_file(
            dir.path(),
            lines.iter().map(|&(at, id)| (at, id.to_string())),
        );
        let deliveries = Deliveries::open(dir.path(), Duration::from_secs(3600)).unwrap();
        assert_eq!(
            fs::read_to_string(deliveries.path()).unwrap(),
            format!("{} /gh a\n{} /gh b\n{} /gh c\n", t - 50, t - 40, t - 30),
        );
        assert_eq!(deliveries.claim("/gh too-old"), Claim::New);
        assert_eq!(deliveries.claim("/gh c"), Claim::Done);
    }

    /// Issue 22 item 14: with every remembered id young, each new one made
    /// the server rescan all of them and forget none, so the map grew past
    /// its bound. Now the oldest are forgotten first, one per new id, and the
    /// size stays at the bound.
    #[test]
    fn ids_are_forgotten_oldest_first_and_the_size_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let t = now();
        let young = (0..MAX_IDS).map(|index| {
            (
                t - 600 + (index * 600 / MAX_IDS) as u64,
                format!("/gh old-{index}"),
            )
        });
        state_file(dir.path(), young);
        let deliveries = Deliveries::open(dir.path(), Duration::from_secs(3600)).unwrap();
        for index in 0..10 {
            let id = format!("/gh new-{index}");
            assert_eq!(deliveries.claim(&id), Claim::New);
            deliveries.done(&id).unwrap();
            assert_eq!(deliveries.lock().done.len(), MAX_IDS);
        }
        for index in 0..10 {
            assert_eq!(
                deliveries.claim(&format!("/gh old-{index}")),
                Claim::New,
                "{index}"
            );
            assert_eq!(
                deliveries.claim(&format!("/gh new-{index}")),
                Claim::Done,
                "{index}"
            );
        }
        assert_eq!(deliveries.claim("/gh old-10"), Claim::Done);
    }
}
