//! The accounts child processes run as: a daemon running as root runs each
//! mirror's git and each action's command as the configured user.

use anyhow::{bail, Context, Result};
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// A system account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account's name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Its supplementary groups, as the group database lists them (with
    /// the primary one), read when it is looked up.
    pub groups: Vec<u32>,
    /// Its home directory (git and ssh read their settings there).
    pub home: PathBuf,
    /// Its login shell (SHELL, as login(1) sets it).
    pub shell: PathBuf,
}

impl Account {
    /// Looks `name` up in the system's user database.
    pub fn lookup(name: &str) -> Result<Account> {
        let c_name = CString::new(name).context("user name holds a NUL")?;
        let mut record: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buffer = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; getpwnam_r fills
        // `record` with pointers into `buffer`, which outlives their use.
        let status = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut record,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        if status != 0 || found.is_null() {
            bail!("no such user {name:?}");
        }
        // SAFETY: pw_dir and pw_shell point into `buffer`, NUL-terminated
        // by getpwnam_r.
        let (home, shell) = unsafe {
            (
                CStr::from_ptr(record.pw_dir),
                CStr::from_ptr(record.pw_shell),
            )
        };
        Ok(Account {
            name: name.to_string(),
            uid: record.pw_uid,
            gid: record.pw_gid,
            groups: group_list(&c_name, record.pw_gid)
                .with_context(|| format!("cannot list the groups of user {name:?}"))?,
            home: PathBuf::from(OsStr::from_bytes(home.to_bytes())),
            shell: PathBuf::from(OsStr::from_bytes(shell.to_bytes())),
        })
    }
}

/// The groups `name` belongs to (its primary group `gid` among them), read
/// here because the group database cannot be read between fork and exec.
fn group_list(name: &CStr, gid: libc::gid_t) -> Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut count = groups.len() as libc::c_int;
        // SAFETY: `groups` holds `count` entries; getgrouplist writes at most
        // that many and sets `count` to how many there are.
        let status =
            unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if status >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(groups);
        }
        if groups.len() >= 1 << 16 {
            bail!("more than {} groups", groups.len());
        }
        // Too small: `count` says how many are needed (some libcs do not).
        let needed = (count.max(0) as usize).max(groups.len() * 2);
        groups.resize(needed, 0);
    }
}

impl Account {
    /// Makes `command` run as this account, as login(1) would start it: its
    /// groups, its primary group, its uid, and HOME, USER, LOGNAME and SHELL.
    ///
    /// The switch is done here rather than with std's `uid`/`gid`: std
    /// drops the uid before any `pre_exec` hook runs, after which the
    /// supplementary groups can no longer be set (EPERM).
    pub fn run_as(&self, command: &mut Command) {
        command
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("SHELL", &self.shell);
        let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
        // SAFETY: setgroups, setgid and setuid are async-signal-safe, and
        // the closure allocates nothing: `groups` was built before the fork.
        unsafe {
            command.pre_exec(move || {
                // Groups first, then the gid, then the uid: each step
                // needs the privilege the next one gives up.
                let switched = libc::setgroups(groups.len(), groups.as_ptr()) == 0
                    && libc::setgid(gid) == 0
                    && libc::setuid(uid) == 0;
                if !switched {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// True when hookbus runs as root (and so must switch to the configured user).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Makes a child with a cleared environment run as `account` (its uid,
/// group and HOME) or, without one, keep the daemon's HOME, which git and
/// ssh read their settings from.
pub fn run_as_or_keep_home(command: &mut Command, account: Option<&Account>) {
    match account {
        Some(account) => account.run_as(command),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                command.env("HOME", home);
            }
        }
    }
}

/// The id of a group given by name or number.
pub fn group_id(name: &str) -> Result<u32> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    let c_name = CString::new(name).with_context(|| format!("bad group name {name:?}"))?;
    let mut size = 16 * 1024;
    loop {
        // SAFETY: every pointer is valid for the call; `buffer` outlives the
        // use of `group`, whose strings point into it, and only gr_gid is read.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        let mut buffer = vec![0 as libc::c_char; size];
        let code = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &mut group,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        match code {
            0 if found.is_null() => bail!("there is no group named {name:?} on this system"),
            0 => return Ok(group.gr_gid),
            libc::ERANGE if size < 1 << 20 => size *= 4,
            code => {
                return Err(std::io::Error::from_raw_os_error(code))
                    .with_context(|| format!("cannot look up group {name:?}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_found_by_id_or_name() {
        assert_eq!(group_id("4242").unwrap(), 4242);
        assert_eq!(group_id("root").unwrap(), 0);
        let error = group_id("no-such-group-here").unwrap_err().to_string();
        assert!(error.contains("no group named"), "{error}");
    }
}
