//! The command line: bad input, exit statuses, the outbox, replay, routes and
//! repository naming, run against real repositories.

mod gitutil;

use gitutil::*;
use std::process::Command;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fixture with two pushed commits on master; returns (fixture, first, second).
fn pushed() -> (Fixture, String, String) {
    let f = Fixture::new();
    let a = f.commit("first", &[("a.txt", b"a\n")]);
    let b = f.commit("second", &[("a.txt", b"b\n")]);
    f.push(&["master"]);
    (f, a, b)
}

#[test]
fn bad_stdin_lines_are_reported_and_the_good_ones_still_handled() {
    let (f, a, b) = pushed();
    let z = "0".repeat(40);
    let unknown = "1".repeat(40);
    let stdin = format!("\n{a} {b} refs/heads/master\ngarbage\n{z} {unknown} refs/heads/ghost\n");
    let out = f.hookbus(&["post-receive", "--dry-run"], &stdin);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("stdin line 1 is blank"), "{err}");
    assert!(
        err.contains("stdin line 3 is not 'OLD NEW REFNAME'"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "stdin line 4: unknown revision {unknown} for refs/heads/ghost"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 3, "one line per problem: {err}");
    let msgs = parse_lines(&stdout(&out));
    assert_eq!(json_for(&msgs, "refs/heads/master").commit_ids(), vec![b]);
}

#[test]
fn a_missing_repository_and_a_broken_config_have_their_own_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(HOOKBUS)
        .args(["replay", "--repo"])
        .arg(dir.path().join("nope.git"))
        .args(["refs/heads/master", "HEAD~1", "HEAD"])
        .env_remove("HOOKBUS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("is not a git repository (check --repo)"));

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[[route]]\ndestination = \"/topic/{nope}\"\n").unwrap();
    let out = Command::new(HOOKBUS)
        .arg("--config")
        .arg(&config)
        .args(["outbox", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("unknown placeholder {nope}"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = Command::new(HOOKBUS)
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .args(["outbox", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("pass --config FILE or set HOOKBUS_CONFIG"));
}

#[test]
fn without_dry_run_messages_go_to_the_outbox_and_can_be_listed_and_shown() {
    let (f, a, b) = pushed();
    let outbox = f.root.join("outbox");
    let config = f.root.join("outbox.toml");
    std::fs::write(&config, format!("[outbox]\ndir = '{}'\n", outbox.display())).unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut cmd = Command::new(HOOKBUS);
        cmd.current_dir(&f.bare)
            .arg("--config")
            .arg(&config)
            .args(args);
        with_stdin(cmd, stdin.as_bytes())
    };
    let out = run(&["post-receive"], &format!("{a} {b} refs/heads/master\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "a hook is quiet on stdout");
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "hookbus: 1 message(s) saved in outbox {} (no [broker] configured)",
            outbox.display()
        )
    );
    let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().collect();
    assert_eq!(files.len(), 1);

    let out = run(&["outbox", "list"], "");
    let listing = stdout(&out);
    let name = listing.split('\t').next().unwrap().to_string();
    assert!(
        listing.contains(&format!(
            "\t/topic/git.commits\t[app] refs/heads/master {b}"
        )),
        "{listing}"
    );
    let out = run(&["outbox", "show", &name[..20]], "");
    let msgs = parse_lines(&stdout(&out));
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0]
        .body
        .starts_with(&format!("repo: app\noldrev: {a}\nnewrev: {b}\n")));
    assert_eq!(msgs[0].header("persistent"), "true");
    assert_eq!(msgs[0].header("hookbus-id").len(), 32);
}

#[test]
fn replay_treats_the_whole_range_as_new_and_each_gives_one_message_per_commit() {
    let (f, a, b) = pushed();
    let c = f.commit("third", &[("a.txt", b"c\n")]);
    f.push(&["master"]);
    let out = f.hookbus(
        &["replay", "--dry-run", "refs/heads/master", &a, "master"],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = parse_lines(&stdout(&out));
    let json = json_for(&msgs, "refs/heads/master");
    assert_eq!(json.commit_ids(), sorted(vec![b.clone(), c.clone()]));
    assert_eq!(json.json()["oldrev"], a.as_str());
    assert_eq!(json.json()["newrev"], c.as_str());

    let out = f.hookbus(
        &[
            "replay",
            "--dry-run",
            "--each",
            "refs/heads/master",
            &"0".repeat(40),
            "master",
        ],
        "",
    );
    let msgs = parse_lines(&stdout(&out));
    let json: Vec<&Msg> = to(&msgs, "/topic/json");
    let order: Vec<String> = json
        .iter()
        .map(|m| m.header("newrev").to_string())
        .collect();
    assert_eq!(order, vec![a.clone(), b.clone(), c.clone()], "oldest first");
    assert_eq!(json[0].json()["change"], "create");
    assert_eq!(json[1].header("oldrev"), a);
    assert_eq!(json[2].commit_ids(), vec![c]);
    // the same update replayed again keeps its id, so consumers can de-duplicate
    let again = parse_lines(&stdout(&f.hookbus(
        &[
            "replay",
            "--dry-run",
            "--each",
            "refs/heads/master",
            &"0".repeat(40),
            "master",
        ],
        "",
    )));
    assert_eq!(msgs[0].header("hookbus-id"), again[0].header("hookbus-id"));

    let out = f.hookbus(
        &[
            "replay",
            "--dry-run",
            "refs/heads/master",
            "no-such-rev",
            "master",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("unknown revision \"no-such-rev\""));
}

#[test]
fn routes_filter_by_ref_change_and_repo_and_fill_destination_templates() {
    let f = Fixture::with_config(
        r#"
[[route]]
destination = "/topic/git.{repo}.{branch}"
format = "summary"
refs = ["refs/heads/*"]
changes = ["create", "fast-forward"]

[[route]]
destination = "/queue/tags.{name}"
format = "json"
reftypes = ["tag", "annotated-tag"]

[[route]]
destination = "/topic/never"
repos = ["other-*"]
"#,
    );
    let a = f.commit("Add the thing", &[("a.txt", b"a\n")]);
    f.git(&["tag", "v1"]);
    let msgs = f.push(&["master", "refs/tags/v1"]);
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    let summary = to(&msgs, "/topic/git.app.master");
    assert_eq!(
        summary[0].body,
        "[app] alice created branch master with 1 new commit: Add the thing\n"
    );
    let tag = to(&msgs, "/queue/tags.v1");
    assert_eq!(tag[0].json()["newrev"], a.as_str());
    // a rewind matches neither branch filter
    f.commit("more", &[("a.txt", b"b\n")]);
    f.push(&["master"]);
    let msgs = f.push(&[&format!("+{a}:master")]);
    assert!(msgs.is_empty(), "{msgs:#?}");
}

#[test]
fn summary_lines_for_common_changes() {
    let f =
        Fixture::with_config("[[route]]\ndestination = \"/topic/chat\"\nformat = \"summary\"\n");
    f.commit("one", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    f.commit("two", &[("a.txt", b"b\n")]);
    f.commit("three", &[("a.txt", b"c\n")]);
    let msgs = f.push(&["master"]);
    assert_eq!(
        msgs[0].body,
        "[app] alice pushed 2 commits to master: three\n"
    );
    f.git(&["branch", "gone"]);
    f.push(&["gone"]);
    let msgs = f.push(&[":gone"]);
    assert_eq!(msgs[0].body, "[app] alice deleted branch gone\n");
}

#[test]
fn repo_names_come_from_git_config_gl_repo_or_the_configured_base() {
    let (f, a, b) = pushed();
    let stdin = format!("{a} {b} refs/heads/master\n");
    let name_of = |extra_env: &[(&str, &str)], config: &std::path::Path| {
        let mut cmd = gitutil::hookbus(config, &f.bare);
        cmd.args(["post-receive", "--dry-run"])
            .envs(extra_env.iter().copied());
        let out = with_stdin(cmd, stdin.as_bytes());
        let msgs = parse_lines(&stdout(&out));
        (
            msgs[0].header("repo").to_string(),
            msgs[0].header("pusher").to_string(),
        )
    };
    assert_eq!(name_of(&[], &f.config).0, "app");
    let based = f.root.join("based.toml");
    std::fs::write(
        &based,
        format!(
            "[repos]\nbase = '{}'\n{TWO_ROUTES}",
            f.root.parent().unwrap().display()
        ),
    )
    .unwrap();
    let expected = format!("{}/app", f.root.file_name().unwrap().to_string_lossy());
    assert_eq!(name_of(&[], &based).0, expected);
    assert_eq!(
        name_of(&[("GL_REPO", "team/app"), ("GL_USER", "bob")], &f.config),
        ("team/app".to_string(), "bob".to_string())
    );
    run_ok(git(&f.bare, &["config", "hookbus.name", "renamed"]));
    assert_eq!(name_of(&[("GL_REPO", "team/app")], &f.config).0, "renamed");
}

#[test]
fn per_repository_git_config_can_disable_hookbus_or_select_routes() {
    let f = Fixture::with_config(
        "[[route]]\nname = \"chat\"\ndestination = \"/topic/chat\"\nformat = \"summary\"\n\n[[route]]\nname = \"ci\"\ndestination = \"/topic/ci\"\nformat = \"json\"\n",
    );
    f.commit("one", &[("a.txt", b"a\n")]);
    assert_eq!(f.push(&["master"]).len(), 2);
    run_ok(git(&f.bare, &["config", "hookbus.routes", "ci"]));
    f.commit("two", &[("a.txt", b"b\n")]);
    let msgs = f.push(&["master"]);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].destination, "/topic/ci");
    run_ok(git(&f.bare, &["config", "hookbus.enabled", "false"]));
    f.commit("three", &[("a.txt", b"c\n")]);
    assert!(f.push(&["master"]).is_empty());
}

#[test]
fn install_chains_an_existing_post_receive_and_both_get_the_whole_push() {
    // The fixture's own hook (a --dry-run printer) plays the repository's
    // existing post-receive.
    let f = Fixture::new();
    let outbox = f.root.join("outbox");
    let config = f.root.join("installed.toml");
    std::fs::write(&config, format!("[outbox]\ndir = '{}'\n", outbox.display())).unwrap();
    let install = || {
        let out = Command::new(HOOKBUS)
            .args(["install", "--repo"])
            .arg(&f.bare)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert!(install().contains(": chained: the existing post-receive now runs from"));
    assert!(install().contains(": already installed"));

    let a = f.commit("first", &[("a.txt", b"a\n")]);
    f.git(&["branch", "topic"]);
    let mut push = f.git_cmd(&["push", "-q", "origin", "master", "topic"]);
    push.env("HOOKBUS_CONFIG", &config);
    run_ok(push);

    let previous = parse_lines(&std::fs::read_to_string(&f.out).unwrap());
    let refs: Vec<&str> = previous.iter().map(|m| m.header("refname")).collect();
    assert_eq!(refs.len(), 4, "two refs, two routes: {refs:?}");
    assert!(refs.contains(&"refs/heads/master") && refs.contains(&"refs/heads/topic"));

    let outbox = hookbus::deliver::outbox::Outbox::new(&outbox);
    let stored: Vec<String> = outbox
        .list()
        .unwrap()
        .iter()
        .flat_map(|entry| outbox.read(entry).unwrap())
        .map(|message| message.header("subject").unwrap().to_string())
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.contains(&format!("[app] refs/heads/master {a}")));
    assert!(stored.contains(&format!("[app] refs/heads/topic {a}")));
}

#[test]
fn install_writes_the_config_it_was_given_into_the_hook() {
    // A push over ssh runs the hook with the server account's environment:
    // no HOOKBUS_CONFIG (git() removes it), no --config. The message must
    // still follow the config `install` was given, relative path included.
    let f = Fixture::new();
    std::fs::remove_file(f.bare.join("hooks/post-receive")).unwrap();
    let outbox = f.root.join("installed-outbox");
    std::fs::write(
        f.root.join("installed.toml"),
        format!("[outbox]\ndir = '{}'\n", outbox.display()),
    )
    .unwrap();
    let install = |config: &str| {
        let out = Command::new(HOOKBUS)
            .current_dir(&f.root)
            .env_remove("HOOKBUS_CONFIG")
            .args(["--config", config, "install", "--repo"])
            .arg(&f.bare)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert!(install("installed.toml").contains(": installed"));
    assert!(install("installed.toml").contains(": already installed"));

    let a = f.commit("first", &[("a.txt", b"a\n")]);
    run_ok(f.git_cmd(&["push", "-q", "origin", "master"]));
    let outbox_of = |dir: &std::path::Path| {
        let outbox = hookbus::deliver::outbox::Outbox::new(dir);
        outbox
            .list()
            .unwrap_or_default()
            .iter()
            .flat_map(|entry| outbox.read(entry).unwrap())
            .map(|message| message.header("subject").unwrap().to_string())
            .collect::<Vec<String>>()
    };
    assert_eq!(
        outbox_of(&outbox),
        [format!("[app] refs/heads/master {a}")],
        "the push used the config given at install"
    );

    // Installing again with another config rewrites the hook.
    let other = f.root.join("other-outbox");
    std::fs::write(
        f.root.join("other.toml"),
        format!("[outbox]\ndir = '{}'\n", other.display()),
    )
    .unwrap();
    assert!(install("other.toml").contains(": updated: the hook now runs"));
    let b = f.commit("second", &[("a.txt", b"b\n")]);
    run_ok(f.git_cmd(&["push", "-q", "origin", "master"]));
    assert_eq!(outbox_of(&other), [format!("[app] refs/heads/master {b}")]);
}

#[test]
fn install_without_a_config_links_the_binary_which_runs_as_the_hook_or_runs_hookbus() {
    // No config to write in: hooks/post-receive is a link to the binary, so a
    // push starts no shell; run under that name, hookbus is the hook.
    let f = Fixture::new();
    std::fs::remove_file(f.bare.join("hooks/post-receive")).unwrap();
    let out = Command::new(HOOKBUS)
        .env_remove("HOOKBUS_CONFIG")
        .args(["install", "--repo"])
        .arg(&f.bare)
        .output()
        .unwrap();
    assert!(stdout(&out).contains(": installed"), "{}", stderr(&out));
    let hook = f.bare.join("hooks/post-receive");
    assert_eq!(
        std::fs::read_link(&hook).unwrap(),
        std::path::Path::new(HOOKBUS)
    );

    let outbox = f.root.join("linked-outbox");
    let config = f.root.join("linked.toml");
    std::fs::write(&config, format!("[outbox]\ndir = '{}'\n", outbox.display())).unwrap();
    let a = f.commit("first", &[("a.txt", b"a\n")]);
    let mut push = f.git_cmd(&["push", "-q", "origin", "master"]);
    push.env("HOOKBUS_CONFIG", &config);
    run_ok(push);
    let outbox = hookbus::deliver::outbox::Outbox::new(&outbox);
    let stored: Vec<String> = (outbox.list().unwrap().iter())
        .flat_map(|entry| outbox.read(entry).unwrap())
        .map(|message| message.header("subject").unwrap().to_string())
        .collect();
    assert_eq!(stored, [format!("[app] refs/heads/master {a}")]);

    // $HOOKBUS names the binary to run instead, as in the shell hook: it gets
    // `post-receive` and the push on stdin.
    let other = f.root.join("other-hookbus");
    let seen = f.root.join("other-saw");
    std::fs::write(
        &other,
        format!(
            "#!/bin/sh\n{{ echo \"$@\"; cat; }} > '{}'\n",
            seen.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = f.commit("second", &[("a.txt", b"b\n")]);
    let mut push = f.git_cmd(&["push", "-q", "origin", "master"]);
    push.env("HOOKBUS_CONFIG", &config).env("HOOKBUS", &other);
    run_ok(push);
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("post-receive\n{a} {b} refs/heads/master\n")
    );
    assert_eq!(
        outbox.list().unwrap().len(),
        1,
        "hookbus itself did not run"
    );
}
