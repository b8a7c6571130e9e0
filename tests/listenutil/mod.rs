//! Test fixture for `hookbus listen`: a real server repository whose installed
//! post-receive hook publishes to a real broker, and the real hookbus binary
//! running as the deploy-host daemon, talked to as users do (a config file,
//! signals by pid, its log on stderr).

#![allow(dead_code)] // each test binary uses a different part of the fixture

use crate::brokers::{unique, Broker};
use crate::gitutil::{git, run_ok, Fixture, HOOKBUS};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a mirror may take to follow a push before a test fails.
pub const FOLLOW_CAP: Duration = Duration::from_secs(30);

/// Polls `check` every 20 ms until it holds or `cap` passes.
pub fn wait_until(cap: Duration, mut check: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + cap;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server repository publishing every push to `topic` (JSON) on `broker`.
pub struct Server {
    pub fixture: Fixture,
    pub topic: String,
}

impl Server {
    pub fn new(broker: &Broker) -> Server {
        Server::on_topic(broker, unique("topic", "listen.commits"))
    }

    /// A server repository publishing to `topic`.
    pub fn on_topic(broker: &Broker, topic: String) -> Server {
        let fixture = Fixture::publishing("");
        fixture.write_config(&format!(
            "{}[outbox]\ndir = \"{}\"\n[log]\nsyslog = \"\"\n[[route]]\ndestination = \"{topic}\"\nformat = \"json\"\n",
            broker.config(),
            fixture.root.join("hook-outbox").display()
        ));
        Server { fixture, topic }
    }

    /// Commits `files` on the working clone's current branch and pushes it to
    /// `branch`; returns the commit.
    pub fn push_files(&self, branch: &str, message: &str, files: &[(&str, &[u8])]) -> String {
        let commit = self.fixture.commit(message, files);
        self.fixture
            .git(&["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")]);
        commit
    }

    /// The bare repository's path, as a mirror's `url`.
    pub fn url(&self) -> String {
        self.fixture.bare.display().to_string()
    }
}

/// The running daemon.
pub struct Listener {
    child: Option<Child>,
    pub config: PathBuf,
    pub log: PathBuf,
    /// Variables the daemon is started with, besides the test's own.
    env: Vec<(String, String)>,
    /// A command the daemon is started through (its program and arguments
    /// come after); empty: started directly.
    wrapper: Vec<String>,
}

impl Listener {
    /// Writes `config` (a whole hookbus.toml) and starts `hookbus listen`.
    pub fn start(dir: &Path, config: &str) -> Listener {
        Listener::start_with_env(dir, config, &[])
    }

    /// [`Listener::start`], with `env` set for the daemon.
    pub fn start_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Listener {
        let path = dir.join("listen.toml");
        write_config(&path, config);
        let mut listener = Listener {
            child: None,
            config: path,
            log: dir.join("listen.log"),
            env: (env.iter())
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            wrapper: Vec::new(),
        };
        listener.restart();
        listener
    }

    /// [`Listener::start`] under the process settings of the packaged unit
    /// (contrib/systemd/hookbus-listen.service) that apply without systemd:
    /// NoNewPrivileges and LimitNOFILE=65536, or the machine's hard limit if
    /// lower (setpriv and prlimit exec the daemon: its pid is the child's).
    pub fn start_as_packaged(dir: &Path, config: &str) -> Listener {
        let path = dir.join("listen.toml");
        write_config(&path, config);
        // As many as the unit asks for, or as this machine's hard limit allows
        // (a container may cap it below the unit's 65536).
        let mut hard = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit(2) fills the struct it is given.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) },
            0
        );
        let files = hard.rlim_max.min(65536);
        let nofile = format!("--nofile={files}:{files}");
        let wrapper = ["setpriv", "--no-new-privs", "prlimit", &nofile];
        let mut listener = Listener {
            child: None,
            config: path,
            log: dir.join("listen.log"),
            env: Vec::new(),
            wrapper: wrapper.iter().map(|part| part.to_string()).collect(),
        };
        listener.restart();
        let status = format!("/proc/{}/status", listener.pid());
        let packaged = wait_until(FOLLOW_CAP, || {
            fs::read_to_string(&status).is_ok_and(|text| text.contains("NoNewPrivs:\t1"))
        });
        assert!(packaged, "the daemon does not run with NoNewPrivileges");
        listener
    }

    /// Starts `hookbus listen` with the existing file `config`, as the machine
    /// `host` whose own `local` directory is seen at `shared` (a UTS and mount
    /// namespace of its own: one config file for several hosts, each with its
    /// host name and its files at the same paths). Its log is `local/listen.log`.
    pub fn start_as_host(config: &Path, host: &str, local: &Path, shared: &Path) -> Listener {
        let script = "hostname \"$1\" && mount --bind \"$2\" \"$3\" && shift 3 && exec \"$@\"";
        let mut listener = Listener {
            child: None,
            config: config.to_path_buf(),
            log: local.join("listen.log"),
            env: Vec::new(),
            wrapper: [
                "unshare", "--uts", "--mount", "sh", "-c", script, "sh", host,
            ]
            .iter()
            .map(|part| part.to_string())
            .chain([local, shared].map(|path| path.display().to_string()))
            .collect(),
        };
        listener.restart();
        listener
    }

    /// Starts the daemon again with the same config (after a kill).
    pub fn restart(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(HOOKBUS);
                command
            }
            None => Command::new(HOOKBUS),
        };
        let child = command
            .args(["--config", self.config.to_str().unwrap(), "listen"])
            .env_remove("HOOKBUS_CONFIG")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hookbus listen");
        self.child = Some(child);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `needle` appears in the log `count` times.
    pub fn wait_log(&self, needle: &str, count: usize) {
        let found = wait_until(FOLLOW_CAP, || self.log().matches(needle).count() >= count);
        assert!(
            found,
            "no {count}× {needle:?} in the listener's log:\n{}",
            self.log()
        );
    }

    /// Waits until the log has not grown for `quiet` (bounded by [`FOLLOW_CAP`]):
    /// every message that came has been answered and acknowledged.
    pub fn wait_quiet(&self, quiet: Duration) {
        let mut last = (self.log().len(), Instant::now());
        let settled = wait_until(FOLLOW_CAP, || {
            let length = self.log().len();
            if length != last.0 {
                last = (length, Instant::now());
            }
            last.1.elapsed() >= quiet
        });
        assert!(settled, "the listener never settled:\n{}", self.log());
    }

    /// The address of its `[listen] metrics` listener, from its log line
    /// "metrics on http://ADDRESS/metrics".
    pub fn metrics_address(&self) -> String {
        self.wait_log("metrics on http://", 1);
        let log = self.log();
        let rest = log.split("metrics on http://").nth(1).unwrap();
        rest.split('/').next().unwrap().to_string()
    }

    /// One sample of its `/metrics`, as the reference parser reads it (see
    /// [`parse_metrics`]); `None` when there is no such series.
    pub fn metric(&self, key: &str) -> Option<f64> {
        let (status, body) = http_get(&self.metrics_address(), "/metrics");
        assert_eq!(status, 200, "{body}");
        parse_metrics(&body).get(key).copied()
    }

    /// Sends `signal` to the daemon (by pid).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().unwrap();
        let exited = wait_until(Duration::from_secs(40), || {
            child.try_wait().unwrap().is_some()
        });
        if !exited {
            let _ = child.kill();
            panic!("listener did not stop on SIGTERM:\n{}", self.log());
        }
        child.wait().unwrap()
    }

    /// Waits (bounded) for a daemon that is expected to stop by itself (a
    /// refused start).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let exited = wait_until(FOLLOW_CAP, || child.try_wait().unwrap().is_some());
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            panic!("listener kept running:\n{}", self.log());
        }
        child.wait().unwrap()
    }

    /// SIGKILL: no goodbye, nothing acknowledged that was not yet.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Runs `hookbus --config CONFIG ctl ARGS` as an operator would.
    pub fn ctl(&self, args: &[&str]) -> Ctl {
        let out = Command::new(HOOKBUS)
            .args(["--config", self.config.to_str().unwrap(), "ctl"])
            .args(args)
            .env_remove("HOOKBUS_CONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("run hookbus ctl");
        Ctl {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `ctl ARGS`, asserted to succeed; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let ctl = self.ctl(args);
        assert_eq!(ctl.code, Some(0), "ctl {args:?}: {ctl:?}\n{}", self.log());
        ctl.stdout
    }

    /// Waits until the control socket answers (after a start or restart).
    pub fn wait_control(&self) {
        let up = wait_until(FOLLOW_CAP, || self.ctl(&["status"]).code == Some(0));
        assert!(up, "the control socket never answered:\n{}", self.log());
    }
}

/// What a `hookbus ctl` run said.
#[derive(Debug)]
pub struct Ctl {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `[listen]` table for a test: fast heart-beats, no polling, state in `dir`.
pub fn listen_table(dir: &Path, subscribe: &str, extra: &str) -> String {
    format!(
        "[log]\nsyslog = \"\"\n[listen]\nsubscribe = [\"{subscribe}\"]\nheartbeat_ms = 1000\npoll_s = 0\nstate_dir = \"{}\"\n{extra}\n",
        dir.join("state").display()
    )
}

/// Writes a config file, private (it holds a passcode; hookbus warns of
/// one others may read).
pub fn write_config(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// A `[[mirror]]` table.
pub fn mirror_table(
    repo: &str,
    path: &Path,
    url: &str,
    mode: &str,
    target: Option<&Path>,
) -> String {
    let mut table = format!(
        "[[mirror]]\nrepo = \"{repo}\"\npath = \"{}\"\nurl = \"{url}\"\nmode = \"{mode}\"\n",
        path.display()
    );
    if let Some(target) = target {
        table.push_str(&format!("target = \"{}\"\n", target.display()));
    }
    table
}

/// The usual test mirror: repository "app" cloned to DIR/clone, its
/// checkout published at DIR/www.
pub fn app_checkout(dir: &Path, url: &str) -> String {
    mirror_table(
        "app",
        &dir.join("clone"),
        url,
        "checkout",
        Some(&dir.join("www")),
    )
}

/// The fleet's checkout mirror of repo `app` from `url`, its clone at
/// `shared/site` publishing at `shared/www` (paths each host of
/// [`Host::start`] sees as its own), with `more` lines.
pub fn site_mirror(shared: &Path, url: &str, more: &str) -> String {
    let (site, www) = (shared.join("site"), shared.join("www"));
    mirror_table("app", &site, url, "checkout", Some(&www)) + more
}

/// The commit a checkout target publishes (the name its link points at).
pub fn published(www: &Path) -> Option<String> {
    let link = fs::read_link(www).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// What `hookbus ctl --json status` says of the mirror called `name`
/// (through `socket` when given, else the config's).
pub fn mirror_status(listener: &Listener, socket: Option<&Path>, name: &str) -> serde_json::Value {
    let mut args = vec!["--json", "status"];
    if let Some(socket) = socket {
        args.splice(0..0, ["--socket", socket.to_str().unwrap()]);
    }
    let out = listener.ctl_ok(&args);
    let status: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mirrors = status["mirrors"].as_array().unwrap();
    let found = mirrors.iter().find(|m| m["name"] == name);
    found
        .unwrap_or_else(|| panic!("no mirror {name} in {status:#}"))
        .clone()
}

/// The state `hookbus ctl --json status` gives the mirror called `name`.
pub fn state_of(listener: &Listener, name: &str) -> String {
    let mirror = mirror_status(listener, None, name);
    mirror["state"].as_str().unwrap().to_string()
}

/// One deploy host of a fleet sharing one config: its own directory, seen
/// by its daemon at the config's `shared` path
/// ([`Listener::start_as_host`]).
pub struct Host {
    pub name: String,
    pub local: tempfile::TempDir,
    pub listener: Listener,
}

impl Host {
    /// Starts host `name`'s daemon and waits for its link.
    pub fn start(config: &Path, name: &str, shared: &Path) -> Host {
        let local = tempfile::tempdir().unwrap();
        let listener = Listener::start_as_host(config, name, local.path(), shared);
        listener.wait_log("connected to", 1);
        Host {
            name: name.to_string(),
            local,
            listener,
        }
    }

    /// The commit its `www` publishes.
    pub fn published(&self) -> Option<String> {
        published(&self.local.path().join("www"))
    }

    /// Waits until its `www` publishes `commit`.
    pub fn wait_at(&self, commit: &str) {
        let reached = wait_until(FOLLOW_CAP, || self.published().as_deref() == Some(commit));
        assert!(reached, "{} not at {commit}:\n{}", self.name, self.log());
    }

    pub fn log(&self) -> String {
        self.listener.log()
    }

    /// The state of its mirror `app`, as `hookbus ctl status` on the host
    /// says (through its own socket: the config's path is the namespace's).
    pub fn state(&self) -> String {
        let socket = self.local.path().join("state/control.sock");
        let mirror = mirror_status(&self.listener, Some(&socket), "app");
        mirror["state"].as_str().unwrap().to_string()
    }
}

/// A ref's commit in a clone, if it exists (also in a clone a mirror's
/// account owns, which git would not read for root otherwise).
pub fn rev(clone: &Path, reference: &str) -> Option<String> {
    if !clone.exists() {
        return None;
    }
    let args = ["-c", "safe.directory=*", "rev-parse", "--verify", "--quiet"];
    let out = git(clone, &[&args[..], &[reference]].concat())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A file's content, if it can be read.
pub fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// Lists a directory's names, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs git in `dir` and asserts success.
pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    run_ok(git(dir, args))
}

/// `GET path` from `address` (`HOST:PORT`) over plain HTTP/1.0, bounded:
/// the status and the body.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(address).expect("connect to the metrics listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {response:?}"));
    (status, body.to_string())
}

/// The samples of an exposition as the prometheus_client package's parser
/// reads them (tests/support/metrics.py): `name{labels}` → value.
pub fn parse_metrics(exposition: &str) -> std::collections::BTreeMap<String, f64> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/metrics.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/support/metrics.py (needs python3-prometheus-client: scripts/install-test-deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the exposition does not parse: {}\n{exposition}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs the real binary with `args`, no config from the environment.
pub fn hookbus(args: &[&str]) -> Output {
    Command::new(HOOKBUS)
        .args(args)
        .env_remove("HOOKBUS_CONFIG")
        .output()
        .unwrap()
}

/// A key pair made by `hookbus keygen` in `dir`: the private key's path and
/// the public line.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = hookbus(&["keygen", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let line = fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    (path, line.trim().to_string())
}

/// A fleet state file at `path` as `hookbus fleet` leaves it, with `hosts`
/// up: heard just now, each publishing its presence every minute (so none
/// turns quiet while a test waits), each vouched for by the key id given
/// with it (`None`: heard without `[fleet] trust`).
pub fn fleet_state(path: &Path, hosts: &[(&str, Option<&str>)]) {
    use hookbus::fleet::{now_ms, Heard, Known};
    use hookbus::listen::ops::presence::Document;
    let mut known = Known::default();
    for (host, key) in hosts {
        let document = Document {
            host: host.to_string(),
            version: "0".into(),
            status: "up".into(),
            uptime_s: 1,
            sent: now_ms() / 1000,
            interval_s: 60,
            mirrors: Vec::new(),
        };
        let heard = Heard {
            document,
            heard_ms: now_ms(),
            key: key.map(str::to_string),
        };
        known.hosts.insert(host.to_string(), heard);
    }
    known.save(path).unwrap();
}
