use super::*;
use std::io::BufRead;
use std::time::Instant;

fn sh(script: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(script);
    command
}

#[test]
fn status_output_and_stdin() {
    let ran = Bounded::new("sh", Duration::from_secs(20))
        .stdout(Keep::Head(100))
        .stderr(Keep::Tail(100))
        .run(&mut sh("echo out; echo err >&2; exit 3"))
        .unwrap();
    assert_eq!(ran.status.code(), Some(3));
    assert_eq!(
        (ran.stdout.as_slice(), ran.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    let cat = Bounded::new("cat", Duration::from_secs(20))
        .stdin(b"a\nb\n".to_vec())
        .stdout(Keep::Head(100))
        .run(&mut Command::new("cat"))
        .unwrap();
    assert_eq!(cat.stdout, b"a\nb\n");
    let unread = Bounded::new("true", Duration::from_secs(20))
        .run(&mut Command::new("true"))
        .unwrap();
    assert!(unread.status.success() && unread.stdout.is_empty());
    let missing = Bounded::new("no-such-program", Duration::from_secs(20))
        .run(&mut Command::new("/no/such/program"))
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("cannot run no-such-program: "),
        "{missing}"
    );
}

#[test]
fn output_is_kept_within_its_limits() {
    let ran = Bounded::new("sh", Duration::from_secs(20))
        .stdout(Keep::Head(10))
        .stderr(Keep::Tail(10))
        .run(&mut sh(
            "yes x | head -c 100000; (yes y | head -c 99990; printf 0123456789) >&2",
        ))
        .unwrap();
    assert_eq!(ran.stdout, b"x\nx\nx\nx\nx\n");
    assert_eq!(ran.stdout_dropped, 99_990);
    assert_eq!(ran.stderr, b"0123456789");
}

#[test]
fn merged_output_keeps_the_order_written_and_its_tail() {
    let ran = Bounded::new("sh", Duration::from_secs(20))
        .output(Keep::Tail(100))
        .run(&mut sh("echo a; echo b >&2; echo c; exit 4"))
        .unwrap();
    assert_eq!(
        (ran.status.code(), ran.stdout.as_slice()),
        (Some(4), &b"a\nb\nc\n"[..])
    );
    assert!(ran.stderr.is_empty());
    let long = Bounded::new("sh", Duration::from_secs(20))
        .output(Keep::Tail(8))
        .run(&mut sh("yes x | head -c 10000; echo end >&2"))
        .unwrap();
    assert_eq!(long.stdout, b"x\nx\nend\n");
    assert_eq!(long.stdout_dropped, 9_996);
}

/// True once `pid` is gone or a zombie (killed, not yet reaped by init).
fn dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            state.starts_with('Z') || state.starts_with('X')
        }
    }
}

/// Runs `script` (which starts `sleep 30` and writes its pid to `$PIDFILE`)
/// past a short bound with `run`, which gives what was read of stdout and
/// the error: it and the sleep must be killed.
fn assert_killed_with_its_group(
    script: &str,
    run: impl FnOnce(Bounded, &mut Command) -> (Vec<u8>, ChildError),
) {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let started = Instant::now();
    let bounded = Bounded::new("sh", Duration::from_millis(300));
    let (stdout, error) = run(bounded, sh(script).env("PIDFILE", &pidfile));
    // Not waited out: sleep 30 would take 30 s.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        error.to_string(),
        "sh timed out after 300 ms and was killed"
    );
    let grandchild = std::fs::read_to_string(&pidfile).unwrap();
    let grandchild = grandchild.trim();
    let mut tries = 0;
    while !dead(grandchild) {
        tries += 1;
        assert!(tries < 250, "sleep {grandchild} outlived its killed group");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        stdout, b"started\n",
        "what it printed before the bound is kept"
    );
}

/// Runs with [`Bounded::run`], keeping stdout.
fn run_kept(bounded: Bounded, command: &mut Command) -> (Vec<u8>, ChildError) {
    timed_out(bounded.stdout(Keep::Head(100)).run(command))
}

/// Runs with [`Bounded::run`], keeping stdout and stderr as one.
fn run_merged(bounded: Bounded, command: &mut Command) -> (Vec<u8>, ChildError) {
    timed_out(bounded.output(Keep::Tail(100)).run(command))
}

/// The stdout kept by a run that timed out, and its error.
fn timed_out(result: Result<Ran, ChildError>) -> (Vec<u8>, ChildError) {
    match result.unwrap_err() {
        ChildError::TimedOut {
            stdout,
            what,
            bound,
            stderr,
        } => (
            stdout.clone(),
            ChildError::TimedOut {
                what,
                bound,
                stdout,
                stderr,
            },
        ),
        error => panic!("{error:?}"),
    }
}

/// Runs with [`Bounded::spawn`], reading stdout as it comes.
fn run_streamed(bounded: Bounded, command: &mut Command) -> (Vec<u8>, ChildError) {
    let (streaming, mut stdout) = bounded.spawn(command).unwrap();
    let mut read = Vec::new();
    stdout.read_to_end(&mut read).unwrap();
    (read, streaming.finish().unwrap_err())
}

const HANGS: &str = "sleep 30 & echo $! > \"$PIDFILE\"; echo started; wait";
/// sh exits at once; its sleep keeps stdout open.
const LEAVES_A_CHILD: &str = "sleep 30 & echo $! > \"$PIDFILE\"; echo started";

#[test]
fn a_hung_child_is_killed_with_its_whole_group() {
    assert_killed_with_its_group(HANGS, run_kept);
    assert_killed_with_its_group(HANGS, run_streamed);
}

#[test]
fn a_grandchild_holding_the_output_is_killed_too() {
    assert_killed_with_its_group(LEAVES_A_CHILD, run_kept);
    assert_killed_with_its_group(LEAVES_A_CHILD, run_streamed);
    assert_killed_with_its_group(LEAVES_A_CHILD, run_merged);
}

#[test]
fn a_streamed_child_is_reaped_with_its_status_and_stderr() {
    let (streaming, mut stdout) = Bounded::new("sh", Duration::from_secs(20))
        .stderr(Keep::Tail(100))
        .spawn(&mut sh("echo out; echo err >&2; exit 2"))
        .unwrap();
    let mut read = String::new();
    stdout.read_to_string(&mut read).unwrap();
    let ran = streaming.finish().unwrap();
    assert_eq!(
        (read.as_str(), ran.stderr.as_slice()),
        ("out\n", &b"err\n"[..])
    );
    assert_eq!(ran.status.code(), Some(2));
}

#[test]
fn a_streamed_child_dropped_unfinished_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let (streaming, stdout) = Bounded::new("sh", Duration::from_secs(60))
        .spawn(sh("echo $$ > \"$PIDFILE\"; echo started; exec sleep 30").env("PIDFILE", &pidfile))
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "started\n");
    let started = Instant::now();
    drop(streaming);
    // Not waited out: sleep 30 (or the 60 s bound) would take longer.
    assert!(started.elapsed() < Duration::from_secs(20));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(dead(pid.trim()), "reaped: gone");
}
