//! The accounts child processes run as: a daemon running as root runs each
//! mirror's git and each action's command as the configured user.

use anyhow::{bail, Context, Result};
use std::ffi::{CStr, CString};
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
    /// Its home directory (git and ssh read their settings there).
    pub home: PathBuf,
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
        // SAFETY: pw_dir points into `buffer`, NUL-terminated by getpwnam_r.
        let home = unsafe { CStr::from_ptr(record.pw_dir) };
        Ok(Account {
            name: name.to_string(),
            uid: record.pw_uid,
            gid: record.pw_gid,
            home: PathBuf::from(home.to_string_lossy().into_owned()),
        })
    }
}

impl Account {
    /// Makes `command` run as this account: its uid, its primary group only,
    /// its HOME.
    pub fn run_as(&self, command: &mut Command) {
        let gid = self.gid;
        command.env("HOME", &self.home).uid(self.uid).gid(gid);
        // SAFETY: setgroups is async-signal-safe; it drops root's
        // supplementary groups before std switches gid and uid.
        unsafe {
            command.pre_exec(move || {
                if libc::setgroups(1, &gid) != 0 {
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
