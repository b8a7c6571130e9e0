//! Rollback and holds on real git clones, without a daemon: the modes the
//! end-to-end tests (tests/listen_control.rs, checkout and fetch) do not cover.

use super::*;
use crate::listen::mirror::git::Git;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=master",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Commits `content` as a.txt on the origin's current branch.
fn commit(origin: &Path, content: &str) -> String {
    std::fs::write(origin.join("a.txt"), content).unwrap();
    git(origin, &["add", "-A"]);
    git(origin, &["commit", "-qm", content]);
    git(origin, &["rev-parse", "HEAD"])
}

fn mirror(dir: &Path, mode: &str) -> Mirror {
    let target = match mode {
        "branches" | "checkout" => format!("target = '{}'\n", dir.join("www").display()),
        _ => String::new(),
    };
    let config = format!(
        "name = 'm'\nrepo = 'r'\npath = '{}'\nurl = '{}'\nmode = '{mode}'\n{target}",
        dir.join("clone").display(),
        dir.join("origin").display()
    );
    Mirror {
        config: toml::from_str(&config).unwrap(),
        git: Git {
            timeout: Duration::from_secs(30),
            account: None,
        },
        on_change: None,
    }
}

/// Runs one command the way the worker does (its update included).
fn run(mirror: &Mirror, board: &Board, request: Control) -> Response {
    let (reply, answer) = mpsc::channel();
    let job = Job { request, reply };
    let batch = Batch {
        jobs: vec![&job],
        asked: false,
    };
    let update = || {
        let (result, _) = update(mirror, board, "h", None);
        let mut event = base_event(mirror, "here");
        event.result = if result.is_ok() { "ok" } else { "failed" }.into();
        event
    };
    for (_, replies) in super::batch(mirror, &batch, "here", board, update) {
        replies.into_iter().for_each(Reply::send);
    }
    answer.recv_timeout(Duration::from_secs(60)).unwrap()
}

fn setup(mode: &str) -> (tempfile::TempDir, Mirror, Board, [String; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("origin");
    std::fs::create_dir(&origin).unwrap();
    git(&origin, &["init", "-q"]);
    let commits = [commit(&origin, "1"), commit(&origin, "2")];
    let mirror = mirror(dir.path(), mode);
    let board = Board::new(std::slice::from_ref(&mirror.config));
    update(&mirror, &board, "h", None).0.unwrap();
    (dir, mirror, board, commits)
}

fn rollback(rev: &str, branch: Option<&str>) -> Control {
    Control::Rollback {
        mirror: "m".into(),
        rev: rev.into(),
        branch: branch.map(str::to_string),
    }
}

#[test]
fn a_branches_mirror_rolls_back_one_branch_and_holds_them_all() {
    let (dir, mirror, board, [first, second]) = setup("branches");
    let www = dir.path().join("www");
    let refused = run(&mirror, &board, rollback(&first, None));
    assert_eq!(refused.verdict, Verdict::Refused);
    assert!(refused.message.contains("--branch"), "{}", refused.message);
    let refused = run(&mirror, &board, rollback(&first, Some("nonesuch")));
    assert_eq!(refused.verdict, Verdict::Refused, "{}", refused.message);
    assert!(
        refused.message.contains("publishes no branch"),
        "{}",
        refused.message
    );
    let done = run(&mirror, &board, rollback(&first[..8], Some("master")));
    assert_eq!(done.verdict, Verdict::Ok, "{}", done.message);
    assert_eq!(
        std::fs::read_to_string(www.join("master/a.txt")).unwrap(),
        "1"
    );
    let third = commit(&dir.path().join("origin"), "3");
    let synced = run(&mirror, &board, Control::Sync { mirror: "m".into() });
    assert_eq!(synced.verdict, Verdict::Ok, "{}", synced.message);
    assert_eq!(
        std::fs::read_to_string(www.join("master/a.txt")).unwrap(),
        "1"
    );
    let status = board.get("m").unwrap();
    assert_eq!(
        (status.state, status.commit),
        (MirrorState::RolledBack, Some(first))
    );
    let caught_up = run(&mirror, &board, Control::Unfreeze { mirror: "m".into() });
    assert_eq!(caught_up.verdict, Verdict::Ok, "{}", caught_up.message);
    assert_eq!(
        std::fs::read_to_string(www.join("master/a.txt")).unwrap(),
        "3"
    );
    assert_ne!(second, third);
}

#[test]
fn an_in_place_mirror_rolls_back_its_work_tree() {
    let (dir, mirror, board, [first, _]) = setup("in-place");
    let clone = dir.path().join("clone");
    let refused = run(&mirror, &board, rollback("--all", None));
    assert_eq!(refused.verdict, Verdict::Refused);
    let refused = run(&mirror, &board, rollback(&first, Some("other")));
    assert_eq!(refused.verdict, Verdict::Refused, "{}", refused.message);
    let done = run(&mirror, &board, rollback(&first, None));
    assert_eq!(done.verdict, Verdict::Ok, "{}", done.message);
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), first);
    commit(&dir.path().join("origin"), "3");
    run(&mirror, &board, Control::Sync { mirror: "m".into() });
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), first, "held");
    assert_eq!(std::fs::read_to_string(clone.join("a.txt")).unwrap(), "1");
}
