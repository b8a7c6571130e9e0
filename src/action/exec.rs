//! The `exec` step: a command run without a shell, in a clean environment,
//! as its account when hookbus runs as root, in a process group of its own
//! that is killed at the deadline. stdout and stderr go to one unlinked
//! temporary file, so a chatty build costs no memory; its tail is the output.

use crate::listen::git::{running_as_root, Account};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How much of the end of the output is kept.
pub const TAIL: usize = 4096;

/// A command, filled in.
#[derive(Debug, Clone)]
pub struct Run {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// The account, used when hookbus runs as root.
    pub user: Option<String>,
    /// The environment (besides PATH, LC_ALL and HOME).
    pub env: Vec<(String, String)>,
    /// Killed after this.
    pub timeout: Duration,
}

/// What came of it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The exit status, if it exited.
    pub exit_code: Option<i32>,
    /// The tail of stdout and stderr, as written.
    pub output: String,
    /// Why it did not succeed, if it did not.
    pub error: Option<String>,
}

/// Runs the command and waits for it (bounded).
pub fn run(run: &Run) -> Outcome {
    let fail = |error: String| Outcome {
        error: Some(error),
        ..Outcome::default()
    };
    let mut log = match scratch_file() {
        Ok(file) => file,
        Err(error) => return fail(format!("cannot make a file for the output: {error}")),
    };
    let mut command = Command::new(&run.argv[0]);
    command
        .args(&run.argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .envs(run.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .process_group(0);
    match (log.try_clone(), log.try_clone()) {
        (Ok(out), Ok(err)) => {
            command.stdout(out).stderr(err);
        }
        (Err(error), _) | (_, Err(error)) => {
            return fail(format!("cannot share the output file: {error}"))
        }
    }
    if let Some(cwd) = &run.cwd {
        command.current_dir(cwd);
    }
    match (&run.user, running_as_root()) {
        (Some(user), true) => match Account::lookup(user) {
            Ok(account) => account.run_as(&mut command),
            Err(error) => return fail(format!("{error:#}")),
        },
        _ => {
            if let Some(home) = std::env::var_os("HOME") {
                command.env("HOME", home);
            }
        }
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return fail(format!("cannot run {}: {error}", run.argv[0])),
    };
    drop(command);
    let pid = child.id() as libc::pid_t;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait());
    });
    let (status, timed_out) = match receiver.recv_timeout(run.timeout) {
        Ok(status) => (status, false),
        Err(_) => {
            // SAFETY: the child leads its own process group; killing the
            // group stops what it started too.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            (
                receiver
                    .recv()
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::Other.into())),
                true,
            )
        }
    };
    let output = tail(&mut log);
    let mut outcome = Outcome {
        output,
        ..Outcome::default()
    };
    match status {
        Ok(_) if timed_out => {
            outcome.error = Some(format!(
                "timed out after {} s and was killed",
                run.timeout.as_secs()
            ))
        }
        Ok(status) => {
            outcome.exit_code = status.code();
            if let Some(signal) = status.signal() {
                outcome.error = Some(format!("killed by signal {signal}"));
            } else if !status.success() {
                outcome.error = Some(format!("exited with {}", status.code().unwrap_or(-1)));
            }
        }
        Err(error) => outcome.error = Some(format!("cannot wait for it: {error}")),
    }
    outcome
}

/// A fresh file nobody else can open: made private, then unlinked at once.
fn scratch_file() -> std::io::Result<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "hookbus-exec-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = std::env::temp_dir().join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// The last [`TAIL`] bytes of the file, as text.
fn tail(file: &mut File) -> String {
    let length = file.seek(SeekFrom::End(0)).unwrap_or(0);
    let start = length.saturating_sub(TAIL as u64);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_ok() {
        let _ = file.take(TAIL as u64).read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(argv: &[&str], timeout: Duration) -> Run {
        Run {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: None,
            user: None,
            env: vec![("WHO".into(), "$(id)".into())],
            timeout,
        }
    }

    #[test]
    fn output_exit_code_and_no_shell() {
        let done = run(&command(
            &[
                "/bin/sh",
                "-c",
                "echo out; echo err >&2; echo \"$WHO\"; exit 3",
            ],
            Duration::from_secs(10),
        ));
        assert_eq!(done.exit_code, Some(3));
        assert_eq!(done.output, "out\nerr\n$(id)\n");
        assert!(done.error.unwrap().contains("exited with 3"));
        let ok = run(&command(
            &["/bin/echo", "a;b", "$HOME"],
            Duration::from_secs(10),
        ));
        assert_eq!(
            (ok.exit_code, ok.output.as_str(), ok.error),
            (Some(0), "a;b $HOME\n", None)
        );
        let missing = run(&command(&["/no/such/program"], Duration::from_secs(10)));
        assert!(missing.error.unwrap().contains("cannot run"));
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_its_children() {
        let slow = run(&command(
            &["/bin/sh", "-c", "sleep 30 & echo started; wait"],
            Duration::from_millis(300),
        ));
        assert!(
            slow.error.unwrap().contains("timed out"),
            "{:?}",
            slow.output
        );
        assert_eq!(slow.output, "started\n");
        let long = run(&command(
            &["/bin/sh", "-c", "yes x | head -c 100000"],
            Duration::from_secs(10),
        ));
        assert_eq!(long.output.len(), TAIL);
    }
}
