//! Real Subversion commits through the shipped post-commit hook: every case the
//! SVN adapter issue lists, plus replay and bad input.

mod gitutil;
mod svnutil;

use gitutil::{parse_lines, Msg};
use serde_json::Value;
use std::process::Command;
use svnutil::*;

/// The (refname, project, change) of each JSON message, in order.
fn summary(messages: &[Msg]) -> Vec<(String, String, String)> {
    on(messages, "/topic/json")
        .iter()
        .map(|m| {
            (
                m.header("refname").to_string(),
                m.header("project").to_string(),
                m.header("change").to_string(),
            )
        })
        .collect()
}

fn triple(refname: &str, project: &str, change: &str) -> (String, String, String) {
    (refname.into(), project.into(), change.into())
}

/// The one commit of a JSON message.
fn commit(message: &Msg) -> Value {
    let json = message.json();
    assert_eq!(json["commits"].as_array().unwrap().len(), 1, "{json}");
    json["commits"][0].clone()
}

/// (path, status) of each file of a JSON message's commit.
fn files(message: &Msg) -> Vec<(String, String)> {
    commit(message)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts that `text` contains `needle`, showing the text when it does not.
fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "no {needle:?} in:\n{text}");
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_trunk_commit_gives_one_message_per_route_with_the_seed_lines() {
    let f = SvnFixture::new("");
    f.write(&[("projA/trunk/README", b"one\ntwo\n")]);
    let msgs = f.commit("Add a README");
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert_eq!(
        summary(&msgs),
        vec![triple("refs/heads/trunk", "projA", "update")]
    );
    let text = on(&msgs, "/topic/text")[0];
    assert!(
        text.body
            .starts_with("repo: depot\noldrev: r1\nnewrev: r2\nrefname: refs/heads/trunk\n"),
        "{}",
        text.body
    );
    for line in [
        "\nrevname: 2\n",
        "\nproject: projA\n",
        "\ncommit r2\nAuthor: alice\n",
        "\nProject: projA\nDirs: projA/trunk/\n",
        "\n    Add a README\n",
        "\nAdded: projA/trunk/README\n",
        "\n+two\n",
    ] {
        assert_has(&text.body, line);
    }
    assert_eq!(text.header("subject"), "[depot] refs/heads/trunk r2");
    assert_eq!(text.header("pusher"), "alice");
    let json = on(&msgs, "/topic/json")[0];
    assert_eq!(json.json()["update"], "fast-forward");
    assert_eq!(
        files(json),
        vec![("projA/trunk/README".into(), "added".into())]
    );
    let commit = commit(json);
    assert_eq!(commit["id"], "r2");
    assert_eq!(commit["parents"], serde_json::json!(["r1"]));
    assert_eq!(commit["files"][0]["insertions"], 2);
    assert!(commit["author"]["date"]
        .as_str()
        .unwrap()
        .ends_with("+00:00"));
}

#[test]
fn a_commit_to_two_projects_gives_a_message_for_each_with_its_own_diff() {
    let f = SvnFixture::new("");
    f.write(&[("projA/trunk/a.txt", b"a\n"), ("projB/trunk/b.txt", b"b\n")]);
    let msgs = f.commit("Touch two projects");
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert_eq!(
        summary(&msgs),
        vec![
            triple("refs/heads/trunk", "projA", "update"),
            triple("refs/heads/trunk", "projB", "update"),
        ]
    );
    let json = on(&msgs, "/topic/json");
    assert_eq!(
        files(json[0]),
        vec![("projA/trunk/a.txt".into(), "added".into())]
    );
    assert_eq!(
        files(json[1]),
        vec![("projB/trunk/b.txt".into(), "added".into())]
    );
    let diff_b = commit(json[1])["diff"].as_str().unwrap().to_string();
    assert!(diff_b.starts_with("Added: projB/trunk/b.txt\n"), "{diff_b}");
    assert!(!diff_b.contains("a.txt"), "{diff_b}");
    assert_ne!(json[0].header("hookbus-id"), json[1].header("hookbus-id"));
}

#[test]
fn branch_and_tag_creation_by_copy_and_branch_deletion() {
    let f = SvnFixture::new("");
    f.write(&[("projA/trunk/README", b"x\n")]);
    f.commit("Add a README");
    let msgs = f.commit_urls(
        "copy",
        &["projA/trunk", "projA/branches/feature-x"],
        "Branch feature-x",
    );
    assert_eq!(
        summary(&msgs),
        vec![triple("refs/heads/feature-x", "projA", "create")]
    );
    let json = on(&msgs, "/topic/json")[0];
    assert_eq!(json.header("reftype"), "branch");
    assert_eq!(json.header("copied-from"), "projA/trunk@2");
    assert_eq!(json.json()["update"], Value::Null);
    let file = &commit(json)["files"][0];
    assert_eq!(file["path"], "projA/branches/feature-x/");
    assert_eq!(file["status"], "copied");
    assert_eq!(file["old_path"], "projA/trunk@2");
    assert_eq!(commit(json)["diff"], "", "a copy has no diff");
    assert_has(
        &on(&msgs, "/topic/text")[0].body,
        "\ncopied-from: projA/trunk@2\n",
    );

    let msgs = f.commit_urls("copy", &["projA/trunk", "projA/tags/v1.0"], "Tag v1.0");
    assert_eq!(
        summary(&msgs),
        vec![triple("refs/tags/v1.0", "projA", "create")]
    );
    assert_eq!(msgs[0].header("reftype"), "tag");

    let msgs = f.commit_urls("delete", &["projA/branches/feature-x"], "Drop feature-x");
    assert_eq!(
        summary(&msgs),
        vec![triple("refs/heads/feature-x", "projA", "delete")]
    );
    let json = on(&msgs, "/topic/json")[0];
    assert_eq!(
        files(json),
        vec![("projA/branches/feature-x/".into(), "removed".into())]
    );
    assert_eq!(commit(json)["message"], "Drop feature-x");
}

#[test]
fn property_changes_renames_and_binary_files_show_their_action() {
    let f = SvnFixture::new("");
    let logo: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    f.write(&[
        ("projA/trunk/README", b"x\n"),
        ("projA/trunk/logo.png", &logo),
    ]);
    f.propset("svn:mime-type", "image/png", "projA/trunk/logo.png");
    let msgs = f.commit("Add a logo");
    let json = on(&msgs, "/topic/json")[0];
    let logo_file = &commit(json)["files"][1];
    assert_eq!(logo_file["path"], "projA/trunk/logo.png");
    assert_eq!(logo_file["binary"], true);
    assert_eq!(logo_file["binary_sizes"], serde_json::json!([0, 2048]));
    assert_has(
        commit(json)["diff"].as_str().unwrap(),
        "(Binary files differ)",
    );
    let text = on(&msgs, "/topic/text")[0];
    assert_has(&text.body, "projA/trunk/logo.png | Bin 0 -> 2048 bytes");

    f.propset("custom:reviewed", "yes", "projA/trunk/README");
    let msgs = f.commit("Mark reviewed");
    let json = on(&msgs, "/topic/json")[0];
    assert_eq!(
        files(json),
        vec![("projA/trunk/README".into(), "properties-changed".into())]
    );
    let diff = commit(json)["diff"].as_str().unwrap().to_string();
    assert_has(&diff, "Property changes on: projA/trunk/README\n");
    assert_has(&diff, "Added: custom:reviewed\n");

    f.svn(&["move", "-q", "projA/trunk/README", "projA/trunk/README.txt"]);
    let msgs = f.commit("Rename README");
    let json = on(&msgs, "/topic/json")[0];
    assert_eq!(
        files(json),
        vec![
            ("projA/trunk/README".into(), "removed".into()),
            ("projA/trunk/README.txt".into(), "copied".into()),
        ]
    );
    assert_eq!(commit(json)["files"][1]["old_path"], "projA/trunk/README@3");
}

#[test]
fn non_ascii_paths_and_logs_survive_the_empty_hook_environment() {
    let f = SvnFixture::new("");
    f.write(&[("projA/trunk/café.txt", b"na\xc3\xafve\n")]);
    let msgs = f.commit("Ünïcödé log ✓");
    let text = on(&msgs, "/topic/text")[0];
    assert_has(&text.body, "\n    Ünïcödé log ✓\n");
    assert_has(&text.body, "\nAdded: projA/trunk/café.txt\n");
    assert_has(&text.body, "\n+naïve\n");
    let json = on(&msgs, "/topic/json")[0];
    assert_eq!(
        files(json),
        vec![("projA/trunk/café.txt".into(), "added".into())]
    );
}

#[test]
fn a_20000_line_file_hits_the_byte_cap_with_a_visible_marker() {
    let f = SvnFixture::new("[limits]\nmax_diff_lines = 100000\nmax_bytes = 65536\n");
    let big: String = (1..=20_000).map(|n| format!("{n}\n")).collect();
    f.write(&[("projA/trunk/big.txt", big.as_bytes())]);
    let msgs = f.commit("Huge file");
    let text = on(&msgs, "/topic/text")[0];
    assert!(text.body.len() <= 65536, "{}", text.body.len());
    assert!(
        text.body.contains("[hookbus: message cut at"),
        "{}",
        &text.body[text.body.len() - 300..]
    );
    let json = on(&msgs, "/topic/json")[0];
    assert!(json.body.len() <= 65536);
    let value = json.json();
    assert_eq!(value["truncated"]["diffs_dropped"], 1);
    assert_eq!(value["commits"][0]["files"][0]["insertions"], 20_000);
    assert!(value["commits"][0]["diff_lines_total"].as_u64().unwrap() > 20_000);
}

#[test]
fn a_legacy_latin1_log_is_decoded_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("legacy");
    run_ok(svnadmin(&["create", repo.to_str().unwrap()]));
    let dump = legacy_dump(b"latin1 log: caf\xe9");
    let mut load = svnadmin(&[
        "load",
        "-q",
        "--bypass-prop-validation",
        repo.to_str().unwrap(),
    ]);
    load.stdin(std::fs::File::open(write_temp(&dir, &dump)).unwrap());
    run_ok(load);
    let out = Command::new(gitutil::HOOKBUS)
        .args(["svn-post-commit", "--dry-run"])
        .arg(&repo)
        .arg("1")
        .env_remove("HOOKBUS_CONFIG")
        .env_remove("HOOKBUS_REPO_NAME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = parse_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert_has(&msgs[0].body, "\n    latin1 log: café\n");
    assert_eq!(msgs[0].header("refname"), "refs/svn/unmatched");
    assert_eq!(msgs[0].header("pusher"), "alice");
}

fn write_temp(dir: &tempfile::TempDir, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join("legacy.dump");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A one-revision dump adding `a.txt` with `log` stored as is.
fn legacy_dump(log: &[u8]) -> Vec<u8> {
    let props = |pairs: &[(&[u8], &[u8])]| {
        let mut out = Vec::new();
        for (key, value) in pairs {
            out.extend(format!("K {}\n", key.len()).bytes());
            out.extend(*key);
            out.extend(format!("\nV {}\n", value.len()).bytes());
            out.extend(*value);
            out.push(b'\n');
        }
        out.extend(b"PROPS-END\n");
        out
    };
    let revprops = props(&[
        (b"svn:log", log),
        (b"svn:author", b"alice"),
        (b"svn:date", b"2020-01-01T00:00:00.000000Z"),
    ]);
    let node_props = props(&[]);
    let text = b"x\n";
    let mut dump = b"SVN-fs-dump-format-version: 2\n\n".to_vec();
    dump.extend(
        format!(
            "Revision-number: 1\nProp-content-length: {0}\nContent-length: {0}\n\n",
            revprops.len()
        )
        .bytes(),
    );
    dump.extend(&revprops);
    dump.extend(
        format!(
            "\nNode-path: a.txt\nNode-kind: file\nNode-action: add\nProp-content-length: {}\nText-content-length: {}\nContent-length: {}\n\n",
            node_props.len(),
            text.len(),
            node_props.len() + text.len()
        )
        .bytes(),
    );
    dump.extend(&node_props);
    dump.extend(text);
    dump.push(b'\n');
    dump
}

#[test]
fn replay_emits_each_revision_of_a_range_in_order() {
    let f = SvnFixture::new("");
    f.write(&[("projA/trunk/a.txt", b"a\n")]);
    f.commit("r2");
    f.write(&[("projB/trunk/b.txt", b"b\n")]);
    f.commit("r3");
    assert_eq!(f.youngest(), 3);
    let out = f.hookbus(&[
        "svn-replay",
        "--dry-run",
        f.repo.to_str().unwrap(),
        "1:HEAD",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = parse_lines(&String::from_utf8_lossy(&out.stdout));
    let revs: Vec<(&str, &str, &str)> = on(&msgs, "/topic/json")
        .iter()
        .map(|m| (m.header("newrev"), m.header("project"), m.header("refname")))
        .collect();
    assert_eq!(
        revs,
        vec![
            ("r1", "depot", "refs/svn/unmatched"),
            ("r1", "projA", "refs/heads/trunk"),
            ("r1", "projB", "refs/heads/trunk"),
            ("r2", "projA", "refs/heads/trunk"),
            ("r3", "projB", "refs/heads/trunk"),
        ]
    );
    assert_eq!(msgs.len(), 10);
    assert!(f.take_messages().is_empty(), "--dry-run stores nothing");

    let out = f.hookbus(&[
        "svn-replay",
        "--dry-run",
        "--name",
        "renamed",
        f.repo.to_str().unwrap(),
        "2:3",
    ]);
    let msgs = parse_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(msgs.len(), 4);
    assert!(msgs.iter().all(|m| m.header("repo") == "renamed"));
}

#[test]
fn configured_layouts_replace_the_defaults() {
    let f = SvnFixture::new(
        r#"
[[svn.layout]]
pattern = "(?P<project>[^/]+)/trunk/"
refname = "refs/heads/main"
[[svn.layout]]
pattern = ""
refname = "refs/heads/elsewhere"
"#,
    );
    f.write(&[("projA/trunk/a.txt", b"a\n"), ("notes.txt", b"n\n")]);
    let msgs = f.commit("Custom layout");
    assert_eq!(
        summary(&msgs),
        vec![
            triple("refs/heads/elsewhere", "depot", "update"),
            triple("refs/heads/main", "projA", "update"),
        ]
    );
}

#[test]
fn bad_input_gets_one_clear_line_and_its_own_status() {
    let f = SvnFixture::new("");
    let repo = f.repo.to_str().unwrap();
    for (args, status, expected) in [
        (
            vec!["svn-replay", repo, "2:x"],
            4,
            "use FROM, FROM:TO or FROM:HEAD",
        ),
        (
            vec!["svn-replay", repo, "5:9"],
            4,
            "has revisions 1 to 1; give a range inside them",
        ),
        (
            vec!["svn-post-commit", "/nonexistent", "1"],
            5,
            "is not a Subversion repository",
        ),
    ] {
        let out = f.hookbus(&args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{args:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert_has(&err, expected);
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let config = f.root.join("no-svnlook.toml");
    std::fs::write(&config, "[svn]\nsvnlook = '/nonexistent/svnlook'\n").unwrap();
    let out = Command::new(gitutil::HOOKBUS)
        .arg("--config")
        .arg(&config)
        .args(["svn-post-commit", "--dry-run", repo, "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert_has(&err, "set [svn] svnlook in the config");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn hooks_stay_silent_for_a_repository_named_in_repos_skip_as_git_hooks_do() {
    let skip = "[repos]\nskip = [\"depot\", \"app\"]\n";
    let f = SvnFixture::new(skip);
    f.write(&[("projA/trunk/a.txt", b"a\n")]);
    assert!(f.commit("Add a").is_empty(), "the hook sent nothing");
    let repo = f.repo.to_str().unwrap();
    let out = f.hookbus(&["-v", "svn-post-commit", repo, "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(f.take_messages().is_empty(), "nothing was sent");
    let svn_says = stderr(&out);

    let git = gitutil::Fixture::with_config(&format!("{skip}{}", gitutil::TWO_ROUTES));
    let old = git.commit("one", &[("a", b"1")]);
    git.git(&["push", "-q", "origin", "master"]);
    let new = git.commit("two", &[("a", b"2")]);
    let stdin = format!("{old} {new} refs/heads/master\n");
    let out = git.hookbus(&["-v", "post-receive"], &stdin);
    assert_eq!(out.status.code(), Some(0));
    let git_says = String::from_utf8_lossy(&out.stderr).replace("app:", "depot:");
    assert_eq!(
        svn_says, "hookbus: depot: nothing sent: its name matches [repos] skip\n",
        "{svn_says}"
    );
    assert_eq!(svn_says, git_says);
}
