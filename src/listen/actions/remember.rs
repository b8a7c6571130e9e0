//! Which actions already started for which message, across restarts: one
//! empty file per (`hookbus-id`, action) under the state directory (named by
//! a hash, in 256 subdirectories), made with O_EXCL and synced (file and
//! directory) before the action's first step, so a message redelivered after
//! a crash never starts the same build twice. Records older than
//! `remember_hours` no longer count and are removed at start and hourly.

use crate::private_file::{sync_dir, Access};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often old records are swept while the daemon runs.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The records.
#[derive(Debug, Clone)]
pub struct Remembered {
    dir: PathBuf,
    keep: Duration,
    /// Who may use the records (the state directory's access).
    access: Access,
    last_sweep: Arc<Mutex<Instant>>,
}

impl Remembered {
    /// Records in `dir`, kept for `keep`, checked and made with `access`
    /// (the state directory's); makes the directory.
    pub fn open(dir: PathBuf, keep: Duration, access: Access) -> Result<Remembered> {
        access.ensure_dir(&dir)?;
        Ok(Remembered {
            dir,
            keep,
            access,
            last_sweep: Arc::new(Mutex::new(Instant::now())),
        })
    }

    fn path(&self, id: &str, action: &str) -> PathBuf {
        let digest = Sha256::digest(format!("{id}\0{action}").as_bytes());
        let name: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        self.dir.join(&name[..2]).join(&name[2..])
    }

    /// Claims (`id`, `action`): true when it was not started before (within
    /// the remembered time) and is now recorded on disk.
    pub fn claim(&self, id: &str, action: &str) -> Result<bool> {
        self.sweep_when_due();
        let path = self.path(id, action);
        let parent = path.parent().expect("a record is below its subdirectory");
        self.access.ensure_dir(parent)?;
        // O_EXCL and O_NOFOLLOW: a record is never a link planted elsewhere.
        let open = |options: &mut OpenOptions| {
            options
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
        };
        let made = open(OpenOptions::new().create_new(true));
        let file = match made {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                if !self.stale(&path) {
                    return Ok(false);
                }
                // Older than remembered: as if it were not there.
                open(OpenOptions::new().truncate(true))
                    .with_context(|| format!("cannot write {}", path.display()))?
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot write {}", path.display()))
            }
        };
        file.sync_all()
            .with_context(|| format!("cannot sync {}", path.display()))?;
        sync_dir(parent)?;
        Ok(true)
    }

    fn stale(&self, path: &Path) -> bool {
        let modified = fs::metadata(path).and_then(|meta| meta.modified());
        modified.is_ok_and(|time| {
            SystemTime::now().duration_since(time).unwrap_or_default() > self.keep
        })
    }

    /// One thread sweeps, hourly; the others go on.
    fn sweep_when_due(&self) {
        let Ok(mut last) = self.last_sweep.try_lock() else {
            return;
        };
        if last.elapsed() >= SWEEP_EVERY {
            *last = Instant::now();
            self.expire();
        }
    }

    /// Removes records older than the remembered time; returns how many.
    pub fn expire(&self) -> usize {
        let Ok(subdirectories) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for subdirectory in subdirectories.filter_map(|entry| entry.ok()) {
            let Ok(entries) = fs::read_dir(subdirectory.path()) else {
                continue;
            };
            removed += entries
                .filter_map(|entry| entry.ok())
                .filter(|entry| self.stale(&entry.path()) && fs::remove_file(entry.path()).is_ok())
                .count();
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir, keep: Duration) -> Remembered {
        Remembered::open(dir.path().join("r"), keep, Access::private()).unwrap()
    }

    #[test]
    fn a_claim_holds_across_reopening_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let records = open(&dir, Duration::from_secs(3600));
        assert!(records.claim("id-1", "build").unwrap());
        assert!(!records.claim("id-1", "build").unwrap());
        assert!(records.claim("id-1", "deploy").unwrap());
        let again = open(&dir, Duration::from_secs(3600));
        assert!(!again.claim("id-1", "build").unwrap());
        assert_eq!(again.expire(), 0);
        let short = open(&dir, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            short.claim("id-1", "build").unwrap(),
            "expired records do not count"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(short.expire(), 2);
    }
}
