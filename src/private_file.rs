//! Private files for the whole crate (outbox messages, kept pushes, daemon state): directories
//! only the running user (and an optional shared group) can enter, files only
//! they can read, written atomically and durably.
//!
//! Modes: directories 0700 and files 0600; with a shared group (`[outbox]
//! group`) directories 2770 and files 0640 (the lock 0660), all in that group.
//! A directory is refused when it is a symbolic link, belongs to another user
//! (unless it is the shared group's), or is writable by users outside the
//! group; so is a directory hookbus would create a missing one in that anybody
//! may write to without the sticky bit, or that belongs to a user other than
//! this one or root. A file is only read back (to be sent) when this user owns
//! it, or it is in the shared group, and it is not a symbolic link.

use anyhow::{bail, Context, Result};
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{BufWriter, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Who may use the stored files besides the running user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The shared group's id, if one is allowed.
    group: Option<u32>,
    /// The directory's part, for errors that name the fix.
    place: Place,
}

/// What a checked directory is for, in the words its errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The setting that names the directory (`[outbox] dir`).
    pub setting: &'static str,
    /// The setting that allows a shared group, if there is one.
    pub group_setting: Option<&'static str>,
    /// What to do when the directory belongs to another user.
    pub foreign_owner_fix: &'static str,
}

/// The outbox's place (the default).
const OUTBOX: Place = Place {
    setting: "[outbox] dir",
    group_setting: Some("[outbox] group"),
    foreign_owner_fix: "run hookbus as the outbox's owner (the account the hooks run as), give this user an outbox of its own ([outbox] dir), or share one with [outbox] group",
};

/// The user id files and directories are checked against.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

impl Access {
    /// The running user only.
    pub fn private() -> Access {
        Access {
            group: None,
            place: OUTBOX,
        }
    }

    /// The running user and the members of group `gid`.
    pub fn shared(gid: u32) -> Access {
        Access {
            group: Some(gid),
            place: OUTBOX,
        }
    }

    /// The same access for a directory that `place` describes in errors.
    pub fn at(self, place: Place) -> Access {
        Access { place, ..self }
    }

    fn dir_mode(self) -> u32 {
        if self.group.is_some() {
            0o2770
        } else {
            0o700
        }
    }

    fn file_mode(self) -> u32 {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }

    /// Makes `dir` (and any missing parent) exist as a directory of ours with
    /// our mode, or says why it cannot be used.
    pub fn ensure_dir(self, dir: &Path) -> Result<()> {
        self.ensure_dir_with(dir, 0o700, &|dir, meta| self.adopt(dir, meta))
    }

    /// Makes `dir` (and any missing parent) exist as a directory of ours
    /// that others may enter but not write (0755 when made; an existing one
    /// keeps its mode), or says why it cannot be used.
    pub fn ensure_searchable_dir(self, dir: &Path) -> Result<()> {
        self.ensure_dir_with(dir, 0o755, &|dir, meta| self.trust_dir(dir, meta).map(drop))
    }

    /// Creates `dir` (with `mode`) and missing parents, each refused when
    /// another user could tamper with it; `take` checks each one found or made.
    fn ensure_dir_with(
        self,
        dir: &Path,
        mode: u32,
        take: &dyn Fn(&Path, &Metadata) -> Result<()>,
    ) -> Result<()> {
        match fs::symlink_metadata(dir) {
            Ok(meta) => return take(dir, &meta),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("cannot use {}", dir.display())),
        }
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        let parent = parent.unwrap_or(Path::new("."));
        match fs::metadata(parent) {
            Ok(meta) => self.may_create_in(parent, &meta)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.ensure_dir_with(parent, mode, take)?
            }
            Err(err) => {
                return Err(err).with_context(|| format!("cannot use {}", parent.display()))
            }
        }
        match DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {}
            // Made by a concurrent run since we looked: checked below all the same.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot create {}", dir.display()))
            }
        }
        let meta = fs::symlink_metadata(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        take(dir, &meta)
    }

    /// Checks an existing directory without changing it: `false` when it is
    /// missing.
    pub fn check_dir(self, dir: &Path) -> Result<bool> {
        match fs::symlink_metadata(dir) {
            Ok(meta) => self.trust_dir(dir, &meta).map(|_| true),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", dir.display())),
        }
    }

    /// Whether `dir` may be used; `true` when it is ours to change.
    fn trust_dir(self, dir: &Path, meta: &Metadata) -> Result<bool> {
        let shown = dir.display();
        let Place {
            setting,
            group_setting,
            foreign_owner_fix,
        } = self.place;
        if meta.file_type().is_symlink() {
            bail!("{shown} is a symbolic link; hookbus only uses a real directory (set {setting} to the directory itself)");
        }
        if !meta.is_dir() {
            bail!("{shown} is not a directory");
        }
        let mode = meta.mode();
        if mode & 0o002 != 0 {
            bail!("{shown} may be written by every user (mode {:o}); hookbus refuses it: chmod o-w it, or set {setting} elsewhere", mode & 0o7777);
        }
        let in_group = self.group == Some(meta.gid());
        if mode & 0o020 != 0 && !in_group {
            let group_fix = group_setting.map_or(String::new(), |name| format!(", or set {name}"));
            bail!("{shown} may be written by group {} (mode {:o}), which hookbus does not allow here: chmod g-w it{group_fix}", meta.gid(), mode & 0o7777);
        }
        let me = effective_uid();
        if meta.uid() == me {
            return Ok(true);
        }
        if in_group && mode & 0o070 == 0o070 {
            return Ok(false);
        }
        bail!(
            "{shown} belongs to user id {}, not to the user running hookbus (id {me}): {foreign_owner_fix}",
            meta.uid()
        );
    }

    /// Trusts an existing directory and gives it our mode and group.
    fn adopt(self, dir: &Path, meta: &Metadata) -> Result<()> {
        if !self.trust_dir(dir, meta)? {
            return Ok(());
        }
        if let Some(gid) = self.group.filter(|&gid| gid != meta.gid()) {
            std::os::unix::fs::chown(dir, None, Some(gid))
                .with_context(|| format!("cannot give {} to group {gid}", dir.display()))?;
        }
        if meta.mode() & 0o7777 != self.dir_mode() {
            fs::set_permissions(dir, fs::Permissions::from_mode(self.dir_mode()))
                .with_context(|| format!("cannot chmod {}", dir.display()))?;
        }
        Ok(())
    }

    /// Gives a file we just created our mode and group, whatever the umask.
    fn own_file(self, file: &File) -> std::io::Result<()> {
        self.set_file_mode(file, self.file_mode())
    }

    fn set_file_mode(self, file: &File, mode: u32) -> std::io::Result<()> {
        let meta = file.metadata()?;
        if let Some(gid) = self.group.filter(|&gid| gid != meta.gid()) {
            std::os::unix::fs::fchown(file, None, Some(gid))?;
        }
        if meta.mode() & 0o7777 != mode && meta.uid() == effective_uid() {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    }

    /// Writes `path` atomically and durably: a temporary file `temp` in the
    /// same directory `dir`, filled by `fill`, fsynced, renamed over `path`,
    /// then `dir` fsynced. A crash leaves the whole file or nothing.
    pub fn write_atomic(
        self,
        dir: &Path,
        temp: &Path,
        path: &Path,
        fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    ) -> Result<()> {
        let file = self.write_temp(temp, fill)?;
        let placed = file.sync_all().and_then(|()| fs::rename(temp, path));
        if let Err(err) = placed {
            let _ = fs::remove_file(temp);
            return Err(err.into());
        }
        sync_dir(dir)
    }

    /// Like [`Access::write_atomic`], but `path` is in place, whole, before
    /// it is durable: `placed` runs right after the rename (so that a reader
    /// may already use the file), then the file and `dir` are fsynced. A
    /// process killed at any point leaves the whole file or none; an
    /// operating-system crash before the fsyncs may leave it empty.
    pub fn write_placed_then_synced(
        self,
        dir: &Path,
        temp: &Path,
        path: &Path,
        fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
        placed: impl FnOnce(),
    ) -> Result<()> {
        let file = self.write_temp(temp, fill)?;
        if let Err(err) = fs::rename(temp, path) {
            let _ = fs::remove_file(temp);
            return Err(err.into());
        }
        placed();
        file.sync_all()
            .with_context(|| format!("cannot sync {}", path.display()))?;
        sync_dir(dir)
    }

    /// Creates `temp` (ours, never through a symbolic link) filled by `fill`;
    /// removed again when filling fails.
    fn write_temp(
        self,
        temp: &Path,
        fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    ) -> Result<File> {
        let write = || -> std::io::Result<File> {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(self.file_mode())
                .custom_flags(libc::O_NOFOLLOW)
                .open(temp)?;
            self.own_file(&file)?;
            let mut file = BufWriter::new(file);
            fill(&mut file)?;
            file.into_inner().map_err(|err| err.into_error())
        };
        write().map_err(|err| {
            let _ = fs::remove_file(temp);
            err.into()
        })
    }

    /// Opens (creating, never through a symbolic link) a lock file the group
    /// may lock too, for reading and writing.
    pub fn open_lock(self, path: &Path) -> Result<File> {
        let mode = self.file_mode() | (self.file_mode() & 0o040) >> 1;
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW);
        // An existing file opens without O_CREAT, which takes the directory's
        // write lock that every file stored or delivered in the outbox holds
        // in turn: a wave of hooks queued on it (issue 26).
        let file = match options.open(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                options.create(true).truncate(false).mode(mode).open(path)
            }
            opened => opened,
        }
        .and_then(|file| self.set_file_mode(&file, mode).map(|()| file))
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
        Ok(file)
    }

    /// Reads a stored file back, unless it is not ours to send: a symbolic
    /// link, not a plain file, or owned by another user outside the group.
    pub fn read_trusted(self, path: &Path) -> Result<Vec<u8>> {
        let shown = path.display();
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|err| match err.raw_os_error() {
                Some(libc::ELOOP) => anyhow::anyhow!(
                    "{shown} is a symbolic link, not a hookbus message file; it is not sent"
                ),
                _ => anyhow::Error::new(err).context(format!("cannot read {shown}")),
            })?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {shown}"))?;
        if !meta.is_file() {
            bail!("{shown} is not a plain file; it is not sent");
        }
        if meta.uid() != effective_uid() && self.group != Some(meta.gid()) {
            bail!(
                "{shown} belongs to user id {}, not to the user running hookbus (id {}); hookbus never sends a file it does not own",
                meta.uid(),
                effective_uid()
            );
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {shown}"))?;
        Ok(bytes)
    }
}

impl Access {
    /// A missing directory may only be created in one no other user can
    /// tamper with: ours or root's, and writable by all only with the sticky
    /// bit (/tmp).
    fn may_create_in(self, parent: &Path, meta: &Metadata) -> Result<()> {
        let (owner, setting) = (meta.uid(), self.place.setting);
        if owner != 0 && owner != effective_uid() {
            bail!(
                "{} belongs to user id {owner}, so hookbus does not create its {setting} in it: create that directory yourself, or set {setting} elsewhere",
                parent.display()
            );
        }
        if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
            bail!(
                "{} may be written by every user, so hookbus does not create its {setting} in it: set {setting} elsewhere",
                parent.display()
            );
        }
        Ok(())
    }
}

/// Makes a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directories_are_made_private_and_links_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("state/hookbus/outbox");
        Access::private().ensure_dir(&outbox).unwrap();
        for made in [dir.path().join("state"), outbox.clone()] {
            let mode = fs::metadata(&made).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o700, "{}", made.display());
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outbox, &link).unwrap();
        let error = Access::private().ensure_dir(&link).unwrap_err();
        assert!(format!("{error:#}").contains("symbolic link"), "{error:#}");
        assert!(Access::private().check_dir(&link).is_err());
        assert!(!Access::private()
            .check_dir(&dir.path().join("none"))
            .unwrap());
    }
}
