//! The outbox's delivery lock (`.lock`), and what its holder is doing.
//!
//! Whoever delivers from an outbox holds the lock, so no two processes send
//! the same file. A hook that finds it held must not queue up behind the
//! holder: the holder delivers what is stored while it works. The holder
//! writes one byte at the start of the lock file saying how it is getting on
//! ([`Holder`]), so that a waiting hook knows whether waiting can still help
//! it: while the holder delivers it can (its file goes out with the rest);
//! once the holder found the broker unreachable it cannot, and the hook
//! leaves its file queued at once rather than wait its deadline too. A
//! second byte says whether the holder is `hookbus relay`, which holds the
//! lock for good: a flush need not wait for it to let go.

use crate::bus::Progress;
use crate::private_file::Access;
use anyhow::{Context, Result};
use std::fs::{File, TryLockError};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What the holder of an outbox lock says it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Took the lock and is not connected yet (or does not say: `hookbus
    /// flush` and the daemons do not).
    Starting,
    /// Connected: the broker answers, so files stored meanwhile go out soon.
    Delivering,
    /// Every broker host failed a whole round; it keeps retrying within its
    /// own bound, and what is stored meanwhile waits for a later delivery.
    Unreachable,
}

impl Holder {
    fn byte(self) -> u8 {
        match self {
            Holder::Starting => b's',
            Holder::Delivering => b'd',
            Holder::Unreachable => b'u',
        }
    }

    fn from_byte(byte: u8) -> Holder {
        match byte {
            b'd' => Holder::Delivering,
            b'u' => Holder::Unreachable,
            _ => Holder::Starting,
        }
    }
}

/// Said by a holder letting go; read as [`Holder::Starting`] (a new holder
/// that has not said anything yet).
const RELEASED: u8 = b'-';
/// The second byte of a lock held by `hookbus relay`.
const RELAY: u8 = b'r';
/// The second byte of a lock held by anything else (or nobody).
const PASSING: u8 = b'-';

/// The open lock file of an outbox, to take the lock or see who holds it.
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
}

/// The exclusive right to deliver from an outbox; released on drop.
#[derive(Debug)]
pub struct OutboxLock {
    file: File,
}

/// Who holds an outbox's lock, as `hookbus check` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Nobody: the next hook delivers.
    Free,
    /// `hookbus relay`, saying how it gets on.
    ByRelay(Holder),
    /// A hook or a flush, saying how it gets on.
    ByRun(Holder),
}

impl LockFile {
    /// Who holds the lock at `path`, without creating anything. Taking the
    /// lock for a moment is how to know it is free; a hook that finds it
    /// taken meanwhile looks again a millisecond later.
    pub fn peek(path: &Path) -> Result<Held> {
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Held::Free),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot open {}", path.display()))
            }
        };
        let lock = LockFile {
            file,
            path: path.to_path_buf(),
        };
        match lock.file.try_lock_shared() {
            Ok(()) => {
                let _ = lock.file.unlock();
                Ok(Held::Free)
            }
            Err(TryLockError::WouldBlock) if lock.held_by_relay() => {
                Ok(Held::ByRelay(lock.holder()))
            }
            Err(TryLockError::WouldBlock) => Ok(Held::ByRun(lock.holder())),
            Err(TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("cannot look at {}", path.display()))
            }
        }
    }

    /// Opens (creating) the lock file at `path` with `access`.
    pub fn open(access: Access, path: &Path) -> Result<LockFile> {
        Ok(LockFile {
            file: access.open_lock(path)?,
            path: path.to_path_buf(),
        })
    }

    /// Takes the lock unless another process holds it.
    pub fn try_take(&self) -> Result<Option<OutboxLock>> {
        match self.file.try_lock() {
            Ok(()) => {
                let file = self
                    .file
                    .try_clone()
                    .with_context(|| format!("cannot lock {}", self.path.display()))?;
                let lock = OutboxLock { file };
                // Both bytes: a relay that was killed left its mark.
                let _ = lock.file.write_at(&[Holder::Starting.byte(), PASSING], 0);
                Ok(Some(lock))
            }
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(err)) => {
                Err(err).with_context(|| format!("cannot lock {}", self.path.display()))
            }
        }
    }

    /// What the current holder last said (meaningful while the lock is held).
    pub fn holder(&self) -> Holder {
        said_in(&self.file)
    }

    /// Whether the holder is `hookbus relay` (meaningful while the lock is
    /// held).
    pub fn held_by_relay(&self) -> bool {
        let mut byte = [PASSING];
        let _ = self.file.read_at(&mut byte, 1);
        byte[0] == RELAY
    }
}

impl OutboxLock {
    /// Tells runs waiting for the lock how delivery goes. Best effort: a
    /// waiting run that cannot read it waits as for a holder starting.
    pub fn announce(&self, holder: Holder) {
        let _ = self.file.write_at(&[holder.byte()], 0);
    }

    /// Tells waiting runs what its delivery's `progress` means for them,
    /// and returns what it announced. A new connection after every host
    /// failed still says "unreachable" until a broker answers: waiting runs
    /// should not start waiting again.
    pub fn tell(&self, progress: Progress) -> Option<Holder> {
        let holder = match progress {
            Progress::Connecting if said_in(&self.file) == Holder::Unreachable => return None,
            Progress::Connecting => Holder::Starting,
            Progress::Connected => Holder::Delivering,
            Progress::AllHostsFailed => Holder::Unreachable,
        };
        self.announce(holder);
        Some(holder)
    }

    /// Says that this holder is `hookbus relay`, which keeps the lock.
    pub fn mark_relay(&self) {
        let _ = self.file.write_at(&[RELAY], 1);
    }
}

/// What the holder last said in the lock `file`.
fn said_in(file: &File) -> Holder {
    let mut byte = [RELEASED];
    let _ = file.read_at(&mut byte, 0);
    Holder::from_byte(byte[0])
}

impl Drop for OutboxLock {
    fn drop(&mut self) {
        let _ = self.file.write_at(&[RELEASED, PASSING], 0);
        // The lock file stays open in its `LockFile`, so closing this
        // duplicate would not release the lock.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_says_how_delivery_goes_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let mine = LockFile::open(Access::private(), &path).unwrap();
        let theirs = LockFile::open(Access::private(), &path).unwrap();
        let lock = mine.try_take().unwrap().expect("free");
        assert!(theirs.try_take().unwrap().is_none());
        assert_eq!(theirs.holder(), Holder::Starting);
        lock.announce(Holder::Unreachable);
        assert_eq!(theirs.holder(), Holder::Unreachable);
        lock.announce(Holder::Delivering);
        assert_eq!(theirs.holder(), Holder::Delivering);
        assert!(!theirs.held_by_relay());
        lock.mark_relay();
        assert!(theirs.held_by_relay());
        lock.tell(Progress::AllHostsFailed);
        lock.tell(Progress::Connecting);
        assert_eq!(
            theirs.holder(),
            Holder::Unreachable,
            "until a broker answers"
        );
        lock.tell(Progress::Connected);
        lock.tell(Progress::Connecting);
        assert_eq!(theirs.holder(), Holder::Starting, "a new connection");
        drop(lock);
        assert_eq!(theirs.holder(), Holder::Starting);
        let again = theirs.try_take().unwrap().expect("free");
        assert!(!mine.held_by_relay(), "a new holder is not the relay");
        assert_eq!(
            LockFile::peek(&path).unwrap(),
            Held::ByRun(Holder::Starting)
        );
        again.mark_relay();
        again.announce(Holder::Delivering);
        assert_eq!(
            LockFile::peek(&path).unwrap(),
            Held::ByRelay(Holder::Delivering)
        );
        drop(again);
        assert_eq!(LockFile::peek(&path).unwrap(), Held::Free);
        assert_eq!(
            LockFile::peek(&dir.path().join("none")).unwrap(),
            Held::Free
        );
    }
}
