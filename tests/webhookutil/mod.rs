//! A running `hookbus webhook` (the real binary) and a small HTTP/1.1 client
//! that talks to it over loopback as a forge does.

#![allow(dead_code)] // the tests and the benchmark use different parts

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const HOOKBUS: &str = env!("CARGO_BIN_EXE_hookbus");
/// GitHub's published test secret.
pub const SECRET: &str = "It's a Secret to Everybody";
/// How long the server may take to start or stop, and a request to answer.
const BOUND: Duration = Duration::from_secs(20);

/// A `hookbus webhook` process; stopped with SIGTERM when dropped.
pub struct Server {
    child: Option<Child>,
    pub address: String,
    pub dir: PathBuf,
    pub stderr: PathBuf,
    config: PathBuf,
    /// The open-files limit it runs with, when not the test's own.
    files: Option<FileLimit>,
}

/// An open-files limit for the server, and files it starts with already
/// open (as other work of a busy process would hold).
#[derive(Debug, Clone, Copy)]
pub struct FileLimit {
    /// RLIMIT_NOFILE, as a unit's `LimitNOFILE` sets it.
    pub nofile: u64,
    /// Descriptors of /dev/null it inherits.
    pub busy: u32,
}

/// A free loopback port (bound, then released).
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

impl Server {
    /// Writes `config` (with `listen` prepended under `[webhook]` by the
    /// caller's `{listen}` placeholder, and `{secret}` the secret file) into
    /// `dir` and starts the server, waiting until it listens.
    pub fn start(dir: &Path, config: &str) -> Server {
        Server::start_limited(dir, config, None)
    }

    /// [`Server::start`] under `files` (none: the test's own limit).
    pub fn start_limited(dir: &Path, config: &str, files: Option<FileLimit>) -> Server {
        let secret = dir.join("secret");
        fs::write(&secret, format!("{SECRET}\n")).unwrap();
        let address = free_address();
        let config_path = dir.join("hookbus.toml");
        let text = config
            .replace("{listen}", &address)
            .replace("{secret}", secret.to_str().unwrap())
            .replace("{dir}", dir.to_str().unwrap());
        fs::write(&config_path, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&config_path, fs::Permissions::from_mode(0o600)).unwrap();
        let mut server = Server {
            child: None,
            address,
            dir: dir.to_path_buf(),
            stderr: dir.join("webhook.log"),
            config: config_path,
            files,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let before = self.log().matches("listening on").count();
        let mut command = Command::new(HOOKBUS);
        if let Some(FileLimit { nofile, busy }) = self.files {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            // SAFETY: setrlimit and open are async-signal-safe; they read
            // only `limit` and a static path. The files opened without
            // O_CLOEXEC stay open across exec.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    for _ in 0..busy {
                        if libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let child = command
            .arg("--config")
            .arg(&self.config)
            .arg("webhook")
            .env("HOME", &self.dir)
            .env_remove("HOOKBUS_OUTBOX")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hookbus webhook");
        self.child = Some(child);
        let until = Instant::now() + BOUND;
        while self.log().matches("listening on").count() == before {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("hookbus webhook exited ({status}): {}", self.log());
            }
            assert!(Instant::now() < until, "not listening: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Stops it with SIGTERM, as systemd does; returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let until = Instant::now() + BOUND;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hookbus webhook did not stop on SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops and starts it again with the same config and state.
    pub fn restart(&mut self) {
        assert!(self.stop().success(), "{}", self.log());
        self.spawn();
    }

    /// POSTs `body` to `path` with `headers`; returns the status and reply body.
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        post(&self.address, path, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// One HTTP/1.1 request on a fresh connection (JSON unless `headers` name
/// another Content-Type).
pub fn post(address: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    try_post(address, path, headers, body)
        .unwrap_or_else(|error| panic!("POST {path} to {address}: {error}"))
}

/// [`post`], or why no answer came (refused, closed unanswered).
pub fn try_post(
    address: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(address).map_err(|error| error.to_string())?;
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.set_write_timeout(Some(BOUND)).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Content-Type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|error| error.to_string())?;
    // A server refusing early (413) may close before the body is all sent.
    let _ = stream.write_all(body);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {reply:?}"))?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.trim().to_string()))
}

/// GitHub's headers for a signed `event` with delivery id `delivery`.
pub fn github_headers(event: &str, delivery: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("X-GitHub-Event".into(), event.into()),
        ("X-GitHub-Delivery".into(), delivery.into()),
        (
            "X-Hub-Signature-256".into(),
            hookbus::webhook::signature::sign(SECRET.as_bytes(), body),
        ),
    ]
}

/// Borrows owned header pairs for [`post`].
pub fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}
