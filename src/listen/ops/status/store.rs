//! The board's file: JSON, written atomically and durably (a temporary
//! file, fsync, rename, fsync of the directory), so a crash leaves the old
//! board or the new one.

use super::MirrorStatus;
use crate::private_file::Access;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    mirrors: Vec<MirrorStatus>,
}

/// The mirrors kept in `file`; none when there is no file yet. A file that
/// cannot be read is an error: starting afresh would silently lift holds.
pub fn read(file: &Path) -> Result<Vec<MirrorStatus>> {
    // Not a link, and ours: the state directory is never read through one.
    match Access::private().read_trusted(file) {
        Ok(bytes) => {
            let stored: Stored = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a hookbus mirror board; move it away to start with every mirror OK (holds are lost)",
                    file.display()
                )
            })?;
            if stored.version != 1 {
                bail!(
                    "{} has version {}, this hookbus reads version 1",
                    file.display(),
                    stored.version
                );
            }
            Ok(stored.mirrors)
        }
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|error| error.kind() == std::io::ErrorKind::NotFound) =>
        {
            Ok(Vec::new())
        }
        Err(error) => Err(error),
    }
}

/// Replaces `file` with `mirrors`.
pub fn write(file: &Path, mirrors: Vec<MirrorStatus>) -> Result<()> {
    let dir = file.parent().context("the board's file has no directory")?;
    let name = file.file_name().context("the board's file has no name")?;
    let stored = Stored {
        version: 1,
        mirrors,
    };
    let temp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    Access::private()
        .write_atomic(dir, &temp, file, |out| {
            serde_json::to_writer_pretty(&mut *out, &stored)?;
            std::io::Write::write_all(out, b"\n")
        })
        .with_context(|| format!("cannot write {}", file.display()))
}

/// `SystemTime` as whole seconds since the epoch.
pub mod unix_seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// Writes whole seconds.
    pub fn serialize<S: Serializer>(time: &SystemTime, out: S) -> Result<S::Ok, S::Error> {
        let seconds = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        out.serialize_u64(seconds.as_secs())
    }

    /// Reads whole seconds.
    pub fn deserialize<'a, D: Deserializer<'a>>(input: D) -> Result<SystemTime, D::Error> {
        Ok(UNIX_EPOCH + Duration::from_secs(u64::deserialize(input)?))
    }
}
