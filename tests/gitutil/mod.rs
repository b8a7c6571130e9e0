//! Test fixture: a real bare repository with the real post-receive hook running
//! the built hookbus, a working clone, and helpers to commit and push with the
//! real `git` binary. Each push's messages are read back from the hook's output.

#![allow(dead_code)] // each test binary uses a different part of the fixture

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const HOOKBUS: &str = env!("CARGO_BIN_EXE_hookbus");

/// The all-zeros SHA-1 revision git uses for "no ref".
pub const Z40: &str = "0000000000000000000000000000000000000000";

/// One message as `--dry-run` prints it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub destination: String,
    pub headers: serde_json::Map<String, Value>,
    pub body: String,
}

impl Msg {
    pub fn header(&self, name: &str) -> &str {
        self.headers[name].as_str().unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("body is JSON")
    }

    /// Ids of the commits a JSON message announces, shown or not, sorted.
    pub fn commit_ids(&self) -> Vec<String> {
        let json = self.json();
        let mut ids: Vec<String> = json["commits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .chain(
                json["commits_not_shown"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| id.as_str().unwrap().to_string()),
            )
            .collect();
        ids.sort();
        ids
    }

    /// Ids in a JSON list field such as `discarded_commits`, sorted.
    pub fn id_list(&self, field: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.json()[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

/// Parses `--dry-run` output.
pub fn parse_lines(stdout: &str) -> Vec<Msg> {
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            Msg {
                destination: value["destination"].as_str().unwrap().to_string(),
                headers: value["headers"].as_object().unwrap().clone(),
                body: value["body"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// The default test config: every update as text and as JSON, no limits in the way.
pub const TWO_ROUTES: &str = r#"
[[route]]
destination = "/topic/text"
format = "text"

[[route]]
destination = "/topic/json"
format = "json"
"#;

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub bare: PathBuf,
    pub work: PathBuf,
    pub config: PathBuf,
    /// Where the fixture's dry-run hook appends the messages it prints.
    pub out: PathBuf,
    err: PathBuf,
    clock: std::cell::Cell<u64>,
}

/// A git command with a clean, deterministic environment.
pub fn git(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Alice Example")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice Example")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .env_remove("GL_REPO")
        .env_remove("GL_USER")
        .env_remove("HOOKBUS_CONFIG")
        .env("USER", "alice");
    cmd
}

pub fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Fixture {
    /// A bare repo `app.git` (SHA-1) with the hook, and a clone.
    pub fn new() -> Fixture {
        Fixture::with_format("sha1", TWO_ROUTES)
    }

    pub fn with_config(config: &str) -> Fixture {
        Fixture::with_format("sha1", config)
    }

    pub fn with_format(object_format: &str, config: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let bare = root.join("app.git");
        let work = root.join("work");
        let format = format!("--object-format={object_format}");
        run_ok(git(
            &root,
            &[
                "init",
                "-q",
                "--bare",
                &format,
                "-b",
                "master",
                bare.to_str().unwrap(),
            ],
        ));
        run_ok(git(
            &root,
            &[
                "init",
                "-q",
                &format,
                "-b",
                "master",
                work.to_str().unwrap(),
            ],
        ));
        run_ok(git(
            &work,
            &["remote", "add", "origin", bare.to_str().unwrap()],
        ));
        let config_path = root.join("hookbus.toml");
        fs::write(&config_path, config).unwrap();
        let fixture = Fixture {
            _dir: dir,
            out: root.join("hook.out"),
            err: root.join("hook.err"),
            config: config_path,
            root,
            bare,
            work,
            clock: std::cell::Cell::new(1_700_000_000),
        };
        fixture.install_hook("--dry-run");
        fixture
    }

    /// Like [`Fixture::with_config`], but the hook publishes for real (to the
    /// config's `[broker]`, else the outbox) instead of printing.
    pub fn publishing(config: &str) -> Fixture {
        let fixture = Fixture::with_config(config);
        fixture.install_hook("");
        fixture
    }

    fn install_hook(&self, options: &str) {
        let hook = self.bare.join("hooks/post-receive");
        fs::write(
            &hook,
            format!(
                "#!/bin/sh\nexec '{HOOKBUS}' --config '{}' post-receive {options} >>'{}' 2>>'{}'\n",
                self.config.display(),
                self.out.display(),
                self.err.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Replaces the config file, readable by its owner only (as a config
    /// holding a passcode should be, so hookbus does not warn about it).
    pub fn write_config(&self, config: &str) {
        use std::os::unix::fs::PermissionsExt;
        fs::write(&self.config, config).unwrap();
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Another working clone of the bare repository, in `name` beside it.
    pub fn clone_work(&self, name: &str) -> PathBuf {
        let path = self.root.join(name);
        run_ok(git(
            &self.root,
            &[
                "clone",
                "-q",
                self.bare.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
        ));
        path
    }

    /// Writes `count` commits (each changing one file) on a new branch of the
    /// bare repository with `git fast-import`: thousands in a second, and no
    /// hook runs. Returns the branch's tip.
    pub fn fast_commits(&self, branch: &str, count: usize) -> String {
        use std::io::Write;
        let mut stream = Vec::new();
        for i in 0..count {
            let message = format!("bulk commit {i}\n");
            let content = format!("{i}\n");
            write!(
                stream,
                "commit refs/heads/{branch}\ncommitter Alice Example <alice@example.com> {} +0000\ndata {}\n{message}M 644 inline count.txt\ndata {}\n{content}\n",
                1_700_000_000 + i,
                message.len(),
                content.len()
            )
            .unwrap();
        }
        let imported = with_stdin(git(&self.bare, &["fast-import", "--quiet"]), &stream);
        assert!(imported.status.success(), "git fast-import failed");
        run_ok(git(&self.bare, &["rev-parse", branch]))
            .trim()
            .to_string()
    }

    /// Runs git in the working clone.
    pub fn git(&self, args: &[&str]) -> String {
        run_ok(self.git_cmd(args))
    }

    pub fn git_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = git(&self.work, args);
        let now = self.clock.get() + 60;
        self.clock.set(now);
        let date = format!("{now} +0000");
        cmd.env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date);
        own_state(&mut cmd, &self.root);
        cmd
    }

    /// Writes files (path, bytes) and commits them all; returns the new commit id.
    pub fn commit(&self, message: &str, files: &[(&str, &[u8])]) -> String {
        for (path, content) in files {
            let path = self.work.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.rev("HEAD")
    }

    /// Commits a change to `file` and pushes master; returns the new commit
    /// and how long the push took.
    pub fn commit_and_push(&self, message: &str) -> (String, std::time::Duration) {
        let commit = self.commit(message, &[("file", message.as_bytes())]);
        let start = std::time::Instant::now();
        self.push(&["master"]);
        (commit, start.elapsed())
    }

    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev]).trim().to_string()
    }

    /// Pushes and returns the messages the hook emitted for this push.
    pub fn push(&self, args: &[&str]) -> Vec<Msg> {
        let before = fs::read_to_string(&self.out).unwrap_or_default().len();
        let mut full = vec!["push", "-q", "origin"];
        full.extend_from_slice(args);
        self.git(&full);
        let out = fs::read_to_string(&self.out).unwrap_or_default();
        parse_lines(&out[before..])
    }

    /// What the hook printed on stderr so far.
    pub fn hook_stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Runs hookbus directly inside the bare repository.
    pub fn hookbus(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = hookbus(&self.config, &self.bare);
        cmd.args(args);
        with_stdin(cmd, stdin.as_bytes())
    }
}

/// Runs `cmd` with `stdin` piped in, and collects its output.
pub fn with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// hookbus with `config`, run in `dir` as the hook would be (no gitolite
/// variables), for tests that need it on another thread than the fixture's.
pub fn hookbus(config: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(HOOKBUS);
    cmd.current_dir(dir)
        .arg("--config")
        .arg(config)
        .env_remove("GL_REPO")
        .env_remove("GL_USER")
        .env("USER", "alice");
    own_state(&mut cmd, config.parent().unwrap_or(dir));
    cmd
}

/// Gives hooks run by `cmd` a state directory below `root` (where a hook keeps
/// a push it cannot handle), not the user's home.
fn own_state(cmd: &mut Command, root: &Path) {
    cmd.env("XDG_STATE_HOME", root.join("state"))
        .env_remove("HOOKBUS_OUTBOX");
}

/// Message and temporary files in an outbox directory and its dead/ folder
/// (the lock file does not count), sorted.
pub fn files_in(outbox: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [outbox.to_path_buf(), outbox.join("dead")] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".msg") || name.starts_with(".tmp-") {
                found.push(dir.join(name).display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Messages sent to one destination.
pub fn to<'a>(messages: &'a [Msg], destination: &str) -> Vec<&'a Msg> {
    messages
        .iter()
        .filter(|m| m.destination == destination)
        .collect()
}

/// The JSON message for `refname`.
pub fn json_for<'a>(messages: &'a [Msg], refname: &str) -> &'a Msg {
    messages
        .iter()
        .find(|m| m.destination == "/topic/json" && m.header("refname") == refname)
        .unwrap_or_else(|| panic!("no JSON message for {refname} in {messages:#?}"))
}

/// The text message for `refname`.
pub fn text_for<'a>(messages: &'a [Msg], refname: &str) -> &'a Msg {
    messages
        .iter()
        .find(|m| m.destination == "/topic/text" && m.header("refname") == refname)
        .unwrap_or_else(|| panic!("no text message for {refname} in {messages:#?}"))
}

pub fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}
