//! The `exec` step: a command run without a shell, in a clean environment,
//! as its account when hookbus runs as root, bounded by [`Bounded`]: in a
//! process group of its own that is killed at the deadline, also when
//! something it started still holds its output. stdout and stderr share one
//! pipe; the tail of what they carried, in the order written, is the output.

use super::step::ExecPlan;
use crate::account::{run_as_or_keep_home, running_as_root, Account};
use crate::child::{Bounded, ChildError, Keep};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// How much of the end of the output is kept.
pub const TAIL: usize = 4096;

/// A command, filled in for a message.
pub type Run = ExecPlan<String>;

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
    let mut command = Command::new(&run.argv[0]);
    command
        .args(&run.argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .envs(run.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &run.cwd {
        command.current_dir(cwd);
    }
    let account = match (&run.user, running_as_root()) {
        (Some(user), true) => match Account::lookup(user) {
            Ok(account) => Some(account),
            Err(error) => {
                return Outcome {
                    error: Some(format!("{error:#}")),
                    ..Outcome::default()
                }
            }
        },
        _ => None,
    };
    run_as_or_keep_home(&mut command, account.as_ref());
    let ran = Bounded::new(&run.argv[0], run.timeout)
        .output(Keep::Tail(TAIL))
        .run(&mut command);
    match ran {
        Ok(ran) => Outcome {
            exit_code: ran.status.code(),
            output: String::from_utf8_lossy(&ran.stdout).into_owned(),
            error: match (ran.status.signal(), ran.status.code()) {
                (Some(signal), _) => Some(format!("killed by signal {signal}")),
                (None, Some(0)) => None,
                (None, code) => Some(format!("exited with {}", code.unwrap_or(-1))),
            },
        },
        Err(error) => Outcome {
            output: match &error {
                ChildError::TimedOut { stdout, .. } => String::from_utf8_lossy(stdout).into_owned(),
                _ => String::new(),
            },
            error: Some(error.to_string()),
            exit_code: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

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
        assert_eq!(
            (slow.error.as_deref(), slow.exit_code, slow.output.as_str()),
            (
                Some("/bin/sh timed out after 300 ms and was killed"),
                None,
                "started\n"
            )
        );
        let long = run(&command(
            &["/bin/sh", "-c", "yes x | head -c 100000; echo end >&2"],
            Duration::from_secs(10),
        ));
        assert_eq!(long.output.len(), TAIL);
        assert!(long.output.ends_with("x\nx\nend\n"), "{:?}", long.output);
    }

    #[test]
    fn a_grandchild_holding_the_output_ends_with_the_timeout() {
        let started = Instant::now();
        let left = run(&command(
            &["/bin/sh", "-c", "sleep 30 & echo hi; echo there >&2"],
            Duration::from_millis(500),
        ));
        // Not waited out: the sleep holding stdout would take 30 s.
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(left.output, "hi\nthere\n");
        assert_eq!(
            left.error.as_deref(),
            Some("/bin/sh timed out after 500 ms and was killed")
        );
    }
}
