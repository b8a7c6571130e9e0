//! Test fixture: a real Subversion repository made with `svnadmin create`, the
//! shipped hooks/post-commit installed and pointed at the built hookbus through
//! conf/hooks-env, a working copy, and helpers to commit with the real `svn`
//! client over file://. svn runs the hook itself, with its empty environment;
//! the hook stores messages in an outbox that is read back after each commit.

#![allow(dead_code)] // each test binary uses a different part of the fixture

use crate::gitutil::{parse_lines, Msg, HOOKBUS};
use hookbus::deliver::dry_run::to_json_line;
use hookbus::deliver::outbox::Outbox;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct SvnFixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub repo: PathBuf,
    pub wc: PathBuf,
    pub config: PathBuf,
    outbox: Outbox,
}

/// Runs a command and returns its stdout, failing the test with its output.
pub fn run_ok(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (install subversion: run scripts/install-test-deps as root)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `svnadmin ARGS` in a clean environment.
pub fn svnadmin(args: &[&str]) -> Command {
    let mut cmd = Command::new("svnadmin");
    cmd.args(args).env_clear().env("LC_ALL", "C.UTF-8");
    cmd
}

impl SvnFixture {
    /// A repository with the `projA` and `projB` layouts (r1) and a working copy;
    /// `extra_config` is prepended to the hook's config (limits, layouts).
    pub fn new(extra_config: &str) -> SvnFixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let repo = root.join("depot");
        run_ok(svnadmin(&["create", repo.to_str().unwrap()]));
        let outbox = root.join("outbox");
        let config = root.join("hookbus.toml");
        fs::write(
            &config,
            format!(
                "{extra_config}\n[outbox]\ndir = '{}'\n{}",
                outbox.display(),
                crate::gitutil::TWO_ROUTES
            ),
        )
        .unwrap();
        let hook = repo.join("hooks/post-commit");
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/post-commit"),
            &hook,
        )
        .unwrap();
        fs::write(
            repo.join("conf/hooks-env"),
            format!(
                "[default]\nHOOKBUS = {HOOKBUS}\nHOOKBUS_CONFIG = {}\n",
                config.display()
            ),
        )
        .unwrap();
        let fixture = SvnFixture {
            _dir: dir,
            wc: root.join("wc"),
            outbox: Outbox::new(outbox),
            config,
            repo,
            root,
        };
        let url = fixture.url("");
        let layout: Vec<String> = ["projA", "projB"]
            .iter()
            .flat_map(|p| ["trunk", "branches", "tags"].map(|d| format!("{url}/{p}/{d}")))
            .collect();
        let mut args = vec!["mkdir", "--parents", "-m", "Create layout"];
        args.extend(layout.iter().map(String::as_str));
        fixture.svn(&args);
        fixture.svn(&["checkout", "-q", &url, fixture.wc.to_str().unwrap()]);
        fixture.take_messages();
        fixture
    }

    /// The repository URL of `path`.
    pub fn url(&self, path: &str) -> String {
        let base = format!("file://{}", self.repo.display());
        if path.is_empty() {
            base
        } else {
            format!("{base}/{path}")
        }
    }

    /// Runs the svn client in the working copy (or the root before checkout),
    /// as `alice`, and checks that the post-commit hook did not fail.
    pub fn svn(&self, args: &[&str]) -> String {
        let dir = if self.wc.exists() {
            &self.wc
        } else {
            &self.root
        };
        let mut cmd = Command::new("svn");
        cmd.current_dir(dir)
            .args(args)
            .args(["--non-interactive", "--username", "alice", "--config-dir"])
            .arg(self.root.join("svn-config"))
            .env_clear()
            .env("LC_ALL", "C.UTF-8");
        let out = run_ok(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("hook failed"),
            "svn {args:?}: the hook failed: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes files (path below the working copy, bytes), `svn add`s new ones.
    pub fn write(&self, files: &[(&str, &[u8])]) {
        for (path, content) in files {
            let full = self.wc.join(path);
            let new = !full.exists();
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(&full, content).unwrap();
            if new {
                self.svn(&["add", "-q", "--parents", path]);
            }
        }
    }

    /// Sets a property on a working-copy path (committed with the next commit).
    pub fn propset(&self, name: &str, value: &str, path: &str) {
        self.svn(&["propset", "-q", name, value, path]);
    }

    /// Commits the working copy and returns the messages the hook stored.
    pub fn commit(&self, message: &str) -> Vec<Msg> {
        self.svn(&["commit", "-q", "-m", message]);
        self.svn(&["update", "-q"]);
        self.take_messages()
    }

    /// Commits `svn OPERATION URLs…` straight to the repository (`copy`,
    /// `delete`) and returns the messages the hook stored.
    pub fn commit_urls(&self, operation: &str, paths: &[&str], message: &str) -> Vec<Msg> {
        let urls: Vec<String> = paths.iter().map(|path| self.url(path)).collect();
        let mut args = vec![operation, "-q", "-m", message];
        args.extend(urls.iter().map(String::as_str));
        self.svn(&args);
        self.take_messages()
    }

    /// The newest revision number.
    pub fn youngest(&self) -> u64 {
        let mut cmd = Command::new("svnlook");
        cmd.arg("youngest").arg(&self.repo);
        let out = run_ok(cmd);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// The messages waiting in the hook's outbox, oldest first; they are removed.
    pub fn take_messages(&self) -> Vec<Msg> {
        if !self.outbox.dir().exists() {
            return Vec::new();
        }
        let entries = self.outbox.list().unwrap();
        let mut lines = String::new();
        for entry in &entries {
            for message in self.outbox.read(entry).unwrap() {
                lines.push_str(&to_json_line(&message));
                lines.push('\n');
            }
            self.outbox.remove(entry).unwrap();
        }
        parse_lines(&lines)
    }

    /// Runs hookbus with this fixture's config.
    pub fn hookbus(&self, args: &[&str]) -> Output {
        Command::new(HOOKBUS)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("HOOKBUS_REPO_NAME")
            .output()
            .unwrap()
    }
}

/// Messages for one destination, in order.
pub fn on<'a>(messages: &'a [Msg], destination: &str) -> Vec<&'a Msg> {
    messages
        .iter()
        .filter(|m| m.destination == destination)
        .collect()
}
