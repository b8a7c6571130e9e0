//! Which actions already started for which message, across restarts: one
//! empty file per (`hookbus-id`, action) under the state directory, made with
//! O_EXCL and synced (file and directory) before the action's first step, so
//! a message redelivered after a crash never starts the same build twice.
//! Records older than `remember_hours` are removed.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The records.
#[derive(Debug, Clone)]
pub struct Remembered {
    dir: PathBuf,
    keep: Duration,
}

impl Remembered {
    /// Records in `dir`, kept for `keep`; makes the directory.
    pub fn open(dir: PathBuf, keep: Duration) -> Result<Remembered> {
        fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
        Ok(Remembered { dir, keep })
    }

    fn path(&self, id: &str, action: &str) -> PathBuf {
        let digest = Sha256::digest(format!("{id}\0{action}").as_bytes());
        let name: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        self.dir.join(name)
    }

    /// Claims (`id`, `action`): true when it was not started before (within
    /// the remembered time) and is now recorded on disk.
    pub fn claim(&self, id: &str, action: &str) -> Result<bool> {
        let path = self.path(id, action);
        let made = OpenOptions::new().write(true).create_new(true).open(&path);
        let file = match made {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                if !self.stale(&path) {
                    return Ok(false);
                }
                // Older than remembered: as if it were not there.
                File::create(&path).with_context(|| format!("cannot write {}", path.display()))?
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot write {}", path.display()))
            }
        };
        file.sync_all()
            .and_then(|()| File::open(&self.dir)?.sync_all())
            .with_context(|| format!("cannot sync {}", path.display()))?;
        Ok(true)
    }

    fn stale(&self, path: &std::path::Path) -> bool {
        let modified = fs::metadata(path).and_then(|meta| meta.modified());
        modified.is_ok_and(|time| {
            SystemTime::now().duration_since(time).unwrap_or_default() > self.keep
        })
    }

    /// Removes records older than the remembered time; returns how many.
    pub fn expire(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| self.stale(&entry.path()) && fs::remove_file(entry.path()).is_ok())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_holds_across_reopening_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let records = Remembered::open(dir.path().join("r"), Duration::from_secs(3600)).unwrap();
        assert!(records.claim("id-1", "build").unwrap());
        assert!(!records.claim("id-1", "build").unwrap());
        assert!(records.claim("id-1", "deploy").unwrap());
        let again = Remembered::open(dir.path().join("r"), Duration::from_secs(3600)).unwrap();
        assert!(!again.claim("id-1", "build").unwrap());
        assert_eq!(again.expire(), 0);
        let short = Remembered::open(dir.path().join("r"), Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            short.claim("id-1", "build").unwrap(),
            "expired records do not count"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(short.expire(), 2);
    }
}
