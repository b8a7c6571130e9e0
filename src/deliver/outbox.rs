//! The local outbox: a directory of message files written durably, oldest first.
//!
//! Every message passes through it: a run stores its messages here before it
//! publishes them and removes them once the broker receipted them, so a crash or
//! an outage at any point loses nothing. With no broker configured it is where
//! messages stay (the embedded default).
//!
//! Layout: `NAME.msg` files, one per batch (a hook run is one batch), names
//! sorting oldest first; `.tmp-*` files being written; `.lock`, held by whoever
//! delivers; `dead/` for messages the broker refused for good, each with its
//! reason. A file holds one or more messages, each a JSON line (destination,
//! headers, body length) followed by the body bytes verbatim. Files are written
//! under a temporary name, fsynced, renamed and the directory fsynced, so a crash
//! leaves either the whole file or nothing; a broker run's batches are renamed
//! first and fsynced while they are published ([`Outbox::store_then_sync`]).
//! Directories and files are private to the running user (or a shared group):
//! see [`crate::private_file`].

mod dead;

use super::lock::{Held, LockFile, OutboxLock};
use super::message_file;
pub use super::message_file::DeadLetter;
use super::{Message, Outcome, Transport};
use crate::private_file::{sync_dir, Access};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SUFFIX: &str = ".msg";
const TEMP_PREFIX: &str = ".tmp-";
const LOCK_FILE: &str = ".lock";
const DEAD_DIR: &str = "dead";
/// A temporary file this old was left by a writer that died; it never became a
/// message, so removing it loses nothing.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// How often a waiting run tries the lock again.
pub(crate) const LOCK_POLL: Duration = Duration::from_millis(10);

/// A directory holding messages that have not been delivered yet.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
    access: Access,
}

/// One stored file of messages, pending or dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File name (`dead/NAME` for a dead letter); pending names sort in the
    /// order the files were stored.
    pub name: String,
    /// Where the file is.
    pub path: PathBuf,
}

impl Outbox {
    /// An outbox in `dir`, private to the running user; the directory is
    /// created on the first store.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Outbox::with_access(dir, Access::private())
    }

    /// An outbox in `dir` that `access` allows to share.
    pub fn with_access(dir: impl Into<PathBuf>, access: Access) -> Self {
        Outbox {
            dir: dir.into(),
            access,
        }
    }

    /// The directory this outbox uses.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn create_dir(&self, dir: &Path) -> Result<()> {
        self.access.ensure_dir(dir).with_context(|| {
            format!(
                "cannot use outbox directory {} (set [outbox] dir in the config to a directory of the hooks' user)",
                dir.display()
            )
        })
    }

    /// Stores the messages durably, in order, as one file.
    pub fn store(&self, messages: &[Message]) -> Result<Entry> {
        self.store_with(messages, None::<fn(&Entry)>)
    }

    /// Stores like [`Outbox::store`], but tells `placed` of the file as soon
    /// as it is in the outbox, whole, and only then makes it durable: a
    /// delivery woken by `placed` publishes it while it is synced. Killed at
    /// any point, a run leaves the whole file or none (see
    /// [`Access::write_placed_then_synced`]).
    pub fn store_then_sync(
        &self,
        messages: &[Message],
        placed: impl FnOnce(&Entry),
    ) -> Result<Entry> {
        self.store_with(messages, Some(placed))
    }

    fn store_with(
        &self,
        messages: &[Message],
        placed: Option<impl FnOnce(&Entry)>,
    ) -> Result<Entry> {
        let name = next_name();
        let path = self.dir.join(&name);
        let entry = Entry { name, path };
        let records: Vec<(&Message, Option<&str>)> = messages.iter().map(|m| (m, None)).collect();
        let fill = |file: &mut _| message_file::write(file, &records);
        let temp = self.temp_for(&self.dir, &entry.path);
        self.create_dir(&self.dir)
            .and_then(|()| match placed {
                None => (self.access).write_atomic(&self.dir, &temp, &entry.path, fill),
                Some(placed) => (self.access).write_placed_then_synced(
                    &self.dir,
                    &temp,
                    &entry.path,
                    fill,
                    || placed(&entry),
                ),
            })
            .with_context(|| {
                format!(
                    "cannot save {} message(s) in outbox {}",
                    messages.len(),
                    self.dir.display()
                )
            })?;
        Ok(entry)
    }

    /// Pending files, oldest first. A missing directory is an empty outbox.
    pub fn list(&self) -> Result<Vec<Entry>> {
        self.list_dir(&self.dir, "")
    }

    fn list_dir(&self, dir: &Path, prefix: &str) -> Result<Vec<Entry>> {
        if !self.access.check_dir(dir)? {
            return Ok(Vec::new());
        }
        list_dir(dir, prefix)
    }

    /// Reads a stored file back: its messages in order.
    pub fn read(&self, entry: &Entry) -> Result<Vec<Message>> {
        Ok(self
            .read_letters(entry)?
            .into_iter()
            .map(|letter| letter.message)
            .collect())
    }

    /// Like [`Outbox::read`], but `None` when the file is gone: a flush
    /// delivered it since it was listed.
    pub fn read_if_present(&self, entry: &Entry) -> Result<Option<Vec<Message>>> {
        match self.read(entry) {
            Ok(messages) => Ok(Some(messages)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Reads any file back with the reasons (empty unless it is a dead letter).
    pub fn read_letters(&self, entry: &Entry) -> Result<Vec<DeadLetter>> {
        let bytes = self.access.read_trusted(&entry.path)?;
        message_file::parse(&entry.path, &bytes)
    }

    /// Finds a file by its name as `outbox list` shows it (or a unique prefix
    /// of it; a `#N` message index is ignored); `dead/NAME` finds a dead letter.
    pub fn find(&self, name: &str) -> Result<Entry> {
        let name = name.split('#').next().unwrap_or(name);
        let pool = if name.starts_with("dead/") {
            self.list_dead()?
        } else {
            self.list()?
        };
        let matches: Vec<Entry> = pool
            .into_iter()
            .filter(|entry| entry.name.starts_with(name))
            .collect();
        match matches.len() {
            1 => Ok(matches.into_iter().next().expect("one match")),
            0 => bail!(
                "no file named {name} in outbox {} (see `hookbus outbox list`)",
                self.dir.display()
            ),
            n => bail!("{n} files start with {name}; give more of the name"),
        }
    }

    /// How many messages wait (not counting dead letters); a file that cannot
    /// be read counts as one.
    pub fn count_waiting(&self) -> Result<usize> {
        let mut waiting = 0;
        for entry in self.list()? {
            waiting += self
                .read_if_present(&entry)
                .map_or(1, |messages| messages.map_or(0, |messages| messages.len()));
        }
        Ok(waiting)
    }

    /// Removes a delivered file.
    pub fn remove(&self, entry: &Entry) -> Result<()> {
        fs::remove_file(&entry.path)
            .with_context(|| format!("cannot remove {}", entry.path.display()))?;
        sync_dir(parent(&entry.path))
    }

    /// Removes delivered files. The removals are not synced: a crash that
    /// undoes one only sends that message again (at least once, with the
    /// same `hookbus-id`), and a pusher does not wait for a directory sync.
    pub fn remove_all(&self, entries: &[&Entry]) -> Result<()> {
        for entry in entries {
            fs::remove_file(&entry.path)
                .with_context(|| format!("cannot remove {}", entry.path.display()))?;
        }
        Ok(())
    }

    /// Replaces a pending file's messages by `rest` (the ones not delivered yet),
    /// keeping its name and so its place in the order; removes it when `rest`
    /// is empty.
    pub fn keep_only(&self, entry: &Entry, rest: &[Message]) -> Result<()> {
        if rest.is_empty() {
            return self.remove(entry);
        }
        let records: Vec<(&Message, Option<&str>)> = rest.iter().map(|m| (m, None)).collect();
        self.write_file(&self.dir, &entry.path, &records)
            .with_context(|| format!("cannot rewrite {}", entry.path.display()))
    }

    /// Takes the delivery lock, waiting at most `wait` for another holder to
    /// finish; `None` when it stayed busy, or at once when `hookbus relay`
    /// holds it (it never lets go, and delivers whatever lands).
    pub fn lock(&self, wait: Duration) -> Result<Option<OutboxLock>> {
        let file = self.lock_file()?;
        let until = Instant::now() + wait;
        loop {
            match file.try_take()? {
                Some(lock) => return Ok(Some(lock)),
                None if file.held_by_relay() => return Ok(None),
                None if Instant::now() < until => std::thread::sleep(LOCK_POLL),
                None => return Ok(None),
            }
        }
    }

    /// The lock file, to take the lock or see what its holder is doing.
    pub fn lock_file(&self) -> Result<LockFile> {
        self.create_dir(&self.dir)?;
        LockFile::open(self.access, &self.dir.join(LOCK_FILE))
    }

    /// Who holds the delivery lock now (creating nothing).
    pub fn held(&self) -> Result<Held> {
        LockFile::peek(&self.dir.join(LOCK_FILE))
    }

    /// Whether the pending file `name` is still there (not delivered yet).
    pub fn holds(&self, name: &str) -> bool {
        self.dir.join(name).symlink_metadata().is_ok()
    }

    /// Removes temporary files left by writers that died long ago.
    pub fn remove_stale_temps(&self) {
        let Ok(read) = fs::read_dir(&self.dir) else {
            return;
        };
        for item in read.flatten() {
            let is_temp = item.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
            let age = item
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok());
            if is_temp && age.is_some_and(|age| age > STALE_TEMP) {
                let _ = fs::remove_file(item.path());
            }
        }
    }
}

fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .root_cause()
        .downcast_ref::<std::io::Error>()
        .is_some_and(|error| error.kind() == std::io::ErrorKind::NotFound)
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

fn list_dir(dir: &Path, prefix: &str) -> Result<Vec<Entry>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read outbox {}", dir.display()))
        }
    };
    let mut entries = Vec::new();
    for item in read {
        let item = item.with_context(|| format!("cannot read outbox {}", dir.display()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.ends_with(SUFFIX) && !name.starts_with(TEMP_PREFIX) {
            entries.push(Entry {
                path: item.path(),
                name: format!("{prefix}{name}"),
            });
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

impl Outbox {
    /// Writes `records` to `path` atomically (see [`Access::write_atomic`]).
    fn write_file(
        &self,
        dir: &Path,
        path: &Path,
        records: &[(&Message, Option<&str>)],
    ) -> Result<()> {
        let temp = self.temp_for(dir, path);
        self.access
            .write_atomic(dir, &temp, path, |file| message_file::write(file, records))
    }

    /// The temporary name `path` is written under, in `dir`.
    fn temp_for(&self, dir: &Path, path: &Path) -> PathBuf {
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        dir.join(format!("{TEMP_PREFIX}{}-{file_name}", std::process::id()))
    }
}

/// A file name that sorts after every earlier one from this or another process.
fn next_name() -> String {
    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:012}.{:09}-{:07}-{:05}{SUFFIX}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

impl Transport for Outbox {
    fn deliver(&mut self, messages: &[Message]) -> Result<Outcome> {
        if messages.is_empty() {
            return Ok(Outcome::default());
        }
        self.store(messages)?;
        Ok(Outcome {
            accepted: messages.len(),
            queued: messages.len(),
            ..Outcome::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(count: u8) -> Vec<Message> {
        (0..count)
            .map(|i| Message {
                destination: format!("/topic/t{i}"),
                headers: vec![("subject".into(), format!("line\nbreak {i}"))],
                body: vec![0, 0xff, b'\n', i],
            })
            .collect()
    }

    #[test]
    fn stores_and_reads_back_byte_exact_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("box"));
        let sent = messages(3);
        outbox.store(&sent[..2]).unwrap();
        outbox.store(&sent[2..]).unwrap();
        let entries = outbox.list().unwrap();
        assert_eq!(entries.len(), 2);
        let back: Vec<Message> = entries
            .iter()
            .flat_map(|e| outbox.read(e).unwrap())
            .collect();
        assert_eq!(back, sent);
        outbox.keep_only(&entries[0], &sent[1..2]).unwrap();
        assert_eq!(outbox.read(&entries[0]).unwrap(), &sent[1..2]);
        outbox.keep_only(&entries[0], &[]).unwrap();
        assert_eq!(outbox.list().unwrap().len(), 1);
        assert_eq!(outbox.read_if_present(&entries[0]).unwrap(), None);
    }

    #[test]
    fn dead_letters_keep_their_reason_and_can_be_retried() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        let sent = messages(2);
        let entry = outbox.store(&sent).unwrap();
        outbox.bury(&entry, 0, &sent[0], "not authorized").unwrap();
        outbox.keep_only(&entry, &sent[1..]).unwrap();
        let dead = outbox.list_dead().unwrap();
        assert_eq!(dead.len(), 1);
        assert!(dead[0].name.starts_with("dead/"));
        let letters = outbox.read_letters(&dead[0]).unwrap();
        assert_eq!(letters[0].reason, "not authorized");
        assert_eq!(letters[0].message, sent[0]);
        outbox.retry(&dead[0]).unwrap();
        assert!(outbox.list_dead().unwrap().is_empty());
        let pending = outbox.list().unwrap();
        assert_eq!(pending.len(), 2);
        // The retried message sorts before the rest of the file it came from.
        assert_eq!(outbox.read(&pending[0]).unwrap(), &sent[..1]);
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        let held = outbox.lock(Duration::ZERO).unwrap();
        assert!(held.is_some());
        assert!(outbox.lock(Duration::from_millis(30)).unwrap().is_none());
        drop(held);
        assert!(outbox.lock(Duration::ZERO).unwrap().is_some());
    }

    #[test]
    fn missing_directory_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Outbox::new(dir.path().join("none"))
            .list()
            .unwrap()
            .is_empty());
    }
}
