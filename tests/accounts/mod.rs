//! Real accounts for tests of what the daemons, running as root, do as the
//! users their config names: made with groupadd and useradd for one test,
//! removed when it ends.

#![allow(dead_code)] // each test binary uses a different part of the fixture

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// useradd and userdel lock /etc/passwd: one at a time in this binary.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A system account made for one test, with a supplementary group of its
/// own and a home directory; both are removed when it is dropped.
pub struct TestAccount {
    pub name: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    pub extra_gid: u32,
    pub home: PathBuf,
}

/// Runs a system tool and asserts that it succeeded; its stdout.
pub fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl TestAccount {
    /// Makes the account, its home in `dir`.
    pub fn new(dir: &Path) -> TestAccount {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let (name, group) = (format!("hbu{tag}"), format!("hbg{tag}"));
        let home = dir.join(&name);
        let _serial = ACCOUNTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tool("groupadd", &["--system", &group]);
        tool(
            "useradd",
            &[
                "--system",
                "--user-group",
                "--groups",
                &group,
                "--home-dir",
                home.to_str().unwrap(),
                "--shell",
                "/bin/sh",
                &name,
            ],
        );
        let id = |flag: &str| tool("id", &[flag, &name]).parse::<u32>().unwrap();
        let extra_gid = tool("getent", &["group", &group]);
        let account = TestAccount {
            uid: id("-u"),
            gid: id("-g"),
            extra_gid: extra_gid.split(':').nth(2).unwrap().parse().unwrap(),
            name,
            group,
            home,
        };
        fs::create_dir(&account.home).unwrap();
        account.give(&account.home);
        account
    }

    /// Writes the account's `~/.gitconfig` trusting `repository` (a server
    /// repository that belongs to root: git refuses to read another user's
    /// repository otherwise).
    pub fn trust_repository(&self, repository: &str) {
        let gitconfig = self.home.join(".gitconfig");
        fs::write(&gitconfig, format!("[safe]\n\tdirectory = {repository}\n")).unwrap();
        self.give(&gitconfig);
    }

    /// What under `root` is not the account's: none when it all is.
    pub fn not_owning(&self, root: &Path) -> Vec<PathBuf> {
        not_owned_by(root, (self.uid, self.gid))
    }

    /// Makes `path` the account's.
    pub fn give(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
    }
}

impl Drop for TestAccount {
    fn drop(&mut self) {
        let _serial = ACCOUNTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

/// Lets other users into `dir` (test directories are made 0700).
pub fn open_to_all(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
}

/// What under `root` (itself included; links not followed) is not `owner`'s
/// (uid, gid): none when it all is.
pub fn not_owned_by(root: &Path, owner: (u32, u32)) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut others = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if (meta.uid(), meta.gid()) != owner {
            others.push(path.clone());
        }
        if meta.is_dir() {
            todo.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    others
}
