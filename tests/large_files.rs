//! Files too large for an in-memory diff (over 8 MiB) are streamed: the
//! message shows what `git log -p --stat` shows, up to the limits, without
//! the file being held whole; loose (as a push leaves them) or packed.

mod gitutil;

use gitutil::*;

/// The lines of `git log -p --stat -1 REV` in the bare repository.
fn git_log(f: &Fixture, rev: &str) -> Vec<String> {
    run_ok(git(&f.bare, &["log", "-p", "--stat", "-1", rev]))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The message's text from `commit ID` on, line by line.
fn commit_lines(msgs: &[Msg], refname: &str) -> Vec<String> {
    let body = &text_for(msgs, refname).body;
    let start = body.find("\ncommit ").expect("a commit in the message") + 1;
    body[start..].lines().map(str::to_string).collect()
}

/// Checks the message against git: the same header, stat and diff lines up
/// to `shown` lines (a line over 500 characters is clipped with its count).
fn assert_like_git(ours: &[String], git: &[String], shown: usize) {
    let diff_at = git
        .iter()
        .position(|l| l.starts_with("diff --git"))
        .unwrap();
    // The stat's +/- bar is scaled to a width; compare the counts only.
    let counts = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|line| line.trim_end_matches(['+', '-']).to_string())
            .collect()
    };
    assert_eq!(
        counts(&ours[..diff_at]),
        counts(&git[..diff_at]),
        "header and stat"
    );
    for (index, (ours, git)) in ours[diff_at..]
        .iter()
        .zip(&git[diff_at..])
        .take(shown)
        .enumerate()
    {
        if git.chars().count() > 500 {
            let kept: String = git.chars().take(500).collect();
            let rest = git.chars().count() - 500;
            assert_eq!(
                *ours,
                format!("{kept}[hookbus: +{rest} chars]"),
                "diff line {index}"
            );
        } else {
            assert_eq!(ours, git, "diff line {index}");
        }
    }
}

#[test]
fn files_over_8_mib_are_streamed_like_git_shows_them() {
    let f = Fixture::with_config(&format!("[limits]\nmax_diff_lines = 40\n{TWO_ROUTES}"));
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    let mut big = String::new();
    big.push_str("first line\n");
    big.push_str(&"x".repeat(100_000));
    big.push('\n');
    let mut i = 0;
    while big.len() < 9 * 1024 * 1024 {
        big.push_str(&format!("line {i} of a file too large to diff in memory\n"));
        i += 1;
    }
    big.push_str("no newline at the end");
    let added = f.commit("add a huge file", &[("huge.txt", big.as_bytes())]);
    let msgs = f.push(&["master"]);
    let ours = commit_lines(&msgs, "refs/heads/master");
    assert_like_git(&ours, &git_log(&f, &added), 40);
    let lines = big.lines().count();
    let json = json_for(&msgs, "refs/heads/master").json();
    assert_eq!(
        json["commits"][0]["diff_lines_total"],
        lines + 7,
        "every line counted"
    );
    assert_eq!(json["commits"][0]["diff_truncated"], true);

    // Changed, it is described, not diffed.
    big.push_str("\nand one more line\n");
    f.commit("grow it", &[("huge.txt", big.as_bytes())]);
    let msgs = f.push(&["master"]);
    assert!(text_for(&msgs, "refs/heads/master")
        .body
        .contains("[hookbus: not diffed: "));

    // Deleted, once packed: git streams it to us.
    f.git(&["rm", "-q", "huge.txt"]);
    let deleted = f.commit("drop it", &[]);
    let msgs = f.push(&["master"]);
    run_ok(git(&f.bare, &["gc", "-q"]));
    let out = f.hookbus(
        &[
            "replay",
            "--dry-run",
            "refs/heads/master",
            &format!("{deleted}~1"),
            &deleted,
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = parse_lines(&String::from_utf8_lossy(&out.stdout));
    let expected = git_log(&f, &deleted);
    assert_like_git(&commit_lines(&msgs, "refs/heads/master"), &expected, 40);
    assert_like_git(&commit_lines(&replayed, "refs/heads/master"), &expected, 40);
}
