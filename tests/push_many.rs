//! The push rule over pushes of many refs, checked against an oracle that
//! applies git-multimail's rule ref by ref with `git rev-list`; refs whose
//! names are not UTF-8; reftable repositories.

mod gitutil;

use gitutil::*;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

/// `git rev-list --stdin` in the bare repository: commits of `lines` (tips and
/// `^exclusions`), as a set.
fn rev_list(f: &Fixture, lines: &[String]) -> HashSet<String> {
    let mut child = git(&f.bare, &["rev-list", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git rev-list --stdin failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn sorted_set(set: &HashSet<String>) -> Vec<String> {
    sorted(set.iter().cloned().collect())
}

/// git-multimail's order of ownership, from a JSON message.
fn owner_rank(json: &serde_json::Value) -> u8 {
    let kinds = ["branch", "annotated-tag", "tag"];
    let kind = kinds.iter().position(|k| json["reftype"] == *k);
    match (kind, json["change"].as_str().unwrap()) {
        (Some(kind), "update") => kind as u8 * 2,
        (Some(kind), "create") => kind as u8 * 2 + 1,
        (Some(kind), _) => 6 + kind as u8,
        (None, "update") => 9,
        (None, "create") => 10,
        (None, _) => 11,
    }
}

/// What git-multimail announces for each ref of the push in `msgs`, computed
/// ref by ref with `git rev-list`, compared with what hookbus said.
fn assert_oracle_agrees(f: &Fixture, msgs: &[Msg]) {
    let updates: Vec<serde_json::Value> =
        to(msgs, "/topic/json").iter().map(|m| m.json()).collect();
    let pushed: HashSet<&str> = updates
        .iter()
        .map(|u| u["refname"].as_str().unwrap())
        .collect();
    let others: Vec<String> = run_ok(git(&f.bare, &["for-each-ref", "--format=%(refname)"]))
        .lines()
        .filter(|name| !pushed.contains(name) && !name.starts_with("refs/notes/"))
        .map(|name| format!("^{name}"))
        .collect();
    let id = |u: &serde_json::Value, side: &str| {
        Some(u[side].as_str().unwrap().to_string()).filter(|id| id != Z40)
    };
    let olds: Vec<String> = updates
        .iter()
        .filter_map(|u| id(u, "oldrev"))
        .map(|id| format!("^{id}"))
        .collect();
    let mut order: Vec<&serde_json::Value> = updates.iter().collect();
    order.sort_by_key(|u| (owner_rank(u), u["refname"].as_str().unwrap().to_string()));
    let mut hidden: Vec<String> = others.iter().chain(&olds).cloned().collect();
    let mut all_new = HashSet::new();
    let mut expected_new = std::collections::HashMap::new();
    for u in order {
        let new = id(u, "newrev");
        let mut lines = hidden.clone();
        lines.extend(new.clone());
        let set = if new.is_some() {
            rev_list(f, &lines)
        } else {
            HashSet::new()
        };
        all_new.extend(set.iter().cloned());
        expected_new.insert(u["refname"].as_str().unwrap().to_string(), set);
        hidden.extend(new.map(|id| format!("^{id}")));
    }
    let news: Vec<String> = updates
        .iter()
        .filter_map(|u| id(u, "newrev"))
        .map(|id| format!("^{id}"))
        .collect();
    for (u, msg) in updates.iter().zip(to(msgs, "/topic/json")) {
        let refname = u["refname"].as_str().unwrap();
        let (old, new) = (id(u, "oldrev"), id(u, "newrev"));
        assert_eq!(
            msg.commit_ids(),
            sorted_set(&expected_new[refname]),
            "new commits of {refname}"
        );
        let known: HashSet<String> = match (&old, &new) {
            (Some(old), Some(new)) => rev_list(f, &[new.clone(), format!("^{old}")]),
            (None, Some(new)) => rev_list(f, &[others.clone(), vec![new.clone()]].concat()),
            _ => HashSet::new(),
        };
        let known = known.difference(&all_new).cloned().collect();
        assert_eq!(
            msg.id_list("known_commits"),
            sorted_set(&known),
            "known commits of {refname}"
        );
        let loses = new.is_none()
            || ["rewind", "non-fast-forward"].contains(&u["update"].as_str().unwrap_or(""));
        let (discarded, omitted) = match (&old, loses) {
            (Some(old), true) => {
                let discarded = rev_list(
                    f,
                    &[others.clone(), news.clone(), vec![old.clone()]].concat(),
                );
                let omitted = match &new {
                    Some(new) => rev_list(f, &[old.clone(), format!("^{new}")])
                        .difference(&discarded)
                        .cloned()
                        .collect(),
                    None => HashSet::new(),
                };
                (discarded, omitted)
            }
            _ => (HashSet::new(), HashSet::new()),
        };
        assert_eq!(
            msg.id_list("discarded_commits"),
            sorted_set(&discarded),
            "discarded of {refname}"
        );
        assert_eq!(
            msg.id_list("omitted_commits"),
            sorted_set(&omitted),
            "omitted of {refname}"
        );
    }
}

#[test]
fn a_push_of_many_refs_agrees_with_git_multimails_rule() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    for name in ["doomed", "rewritten", "rewound", "kept"] {
        f.git(&["checkout", "-q", "-b", name, "master"]);
        f.commit(&format!("{name} 1"), &[(&format!("{name}.txt"), b"1\n")]);
        f.commit(&format!("{name} 2"), &[(&format!("{name}.txt"), b"2\n")]);
    }
    f.git(&["checkout", "-q", "master"]);
    f.push(&["master", "doomed", "rewritten", "rewound", "kept"]);

    // master moves on; a new branch and an annotated tag share its new commits.
    f.commit("m1", &[("a.txt", b"m1\n")]);
    f.commit("m2", &[("a.txt", b"m2\n")]);
    f.git(&["tag", "-a", "-m", "release", "v1"]);
    f.git(&["checkout", "-q", "-b", "feature"]);
    f.commit("f1", &[("f.txt", b"f1\n")]);
    f.git(&["tag", "light"]);
    // A chain of new commits under branches named out of order, so ownership
    // by refname is tested: chain/NN points at the (41-NN)th commit.
    f.git(&["checkout", "-q", "-b", "chain-work", "kept"]);
    let chain: Vec<String> = (1..=40)
        .map(|i| f.commit(&format!("c{i}"), &[("c.txt", format!("{i}\n").as_bytes())]))
        .collect();
    let mut refspecs: Vec<String> = (1..=40)
        .map(|n| format!("{}:refs/heads/chain/{n:02}", chain[40 - n]))
        .collect();
    // Others: a force-pushed branch, a rewind, a ref outside heads and tags.
    f.git(&["checkout", "-q", "-B", "rewritten", "master"]);
    f.commit("rewritten anew", &[("r.txt", b"new\n")]);
    refspecs.extend(
        [
            "master",
            "feature",
            "v1",
            "light",
            ":doomed",
            "+rewritten",
            "+rewound~1:rewound",
            "feature:refs/other/x",
            "kept:refs/heads/alias",
        ]
        .map(str::to_string),
    );
    let args: Vec<&str> = refspecs.iter().map(String::as_str).collect();
    let msgs = f.push(&args);
    assert_eq!(to(&msgs, "/topic/json").len(), refspecs.len());
    assert_oracle_agrees(&f, &msgs);
    // Spot checks that the oracle is not vacuous.
    assert_eq!(
        json_for(&msgs, "refs/heads/chain/01").commit_ids().len(),
        40
    );
    assert_eq!(json_for(&msgs, "refs/heads/master").commit_ids().len(), 2);
    assert_eq!(
        json_for(&msgs, "refs/heads/doomed")
            .id_list("discarded_commits")
            .len(),
        2
    );
}

/// `git` with one argument given as raw bytes (a refspec that is not UTF-8).
fn push_bytes(f: &Fixture, refspec: &[u8]) -> Vec<Msg> {
    let before = std::fs::read_to_string(&f.out).unwrap_or_default().len();
    let mut cmd = f.git_cmd(&["push", "-q", "origin"]);
    cmd.arg(OsStr::from_bytes(refspec));
    run_ok(cmd);
    let out = std::fs::read_to_string(&f.out).unwrap();
    parse_lines(&out[before..])
}

#[test]
fn a_ref_whose_name_is_not_utf8_counts_among_the_other_refs() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    let commits: Vec<String> = (1..=3)
        .map(|i| f.commit(&format!("w{i}"), &[("a.txt", format!("{i}\n").as_bytes())]))
        .collect();
    let msgs = push_bytes(&f, b"HEAD:refs/heads/caf\xe9");
    let json = json_for(&msgs, "refs/heads/caf\u{fffd}");
    assert_eq!(json.commit_ids(), sorted(commits));
    // master now gets commits another ref already has: nothing new.
    let msgs = f.push(&["master"]);
    let json = json_for(&msgs, "refs/heads/master");
    assert_eq!(json.commit_ids(), Vec::<String>::new());
    assert!(text_for(&msgs, "refs/heads/master")
        .body
        .contains("\ncommits: 0\n"));
}

/// git's version as (major, minor), failing loudly when git is too old for
/// reftable (the test needs it, it does not skip).
fn require_reftable_git() {
    let version = run_ok(git(std::path::Path::new("/"), &["version"]));
    let numbers: Vec<u32> = version
        .trim()
        .trim_start_matches("git version ")
        .split('.')
        .take(2)
        .map(|part| part.parse().unwrap_or(0))
        .collect();
    assert!(
        numbers.as_slice() >= [2, 45].as_slice(),
        "{version:?}: reftable repositories need git 2.45 or newer first in PATH \
         (Debian 12: install git from bookworm-backports, see scripts/install-test-deps)"
    );
}

#[test]
fn reftable_repositories_work_for_pushes_replays_and_install() {
    require_reftable_git();
    let f = Fixture::with_bare_options(&["--ref-format=reftable"], TWO_ROUTES);
    assert!(
        f.bare.join("reftable").is_dir(),
        "the bare repository uses reftable"
    );
    let a = f.commit("first", &[("a.txt", b"a\n")]);
    f.git(&["checkout", "-q", "-b", "topic"]);
    let b = f.commit("second", &[("a.txt", b"b\n")]);
    let msgs = f.push(&["master", "topic"]);
    for (refname, id) in [("refs/heads/master", &a), ("refs/heads/topic", &b)] {
        assert_eq!(json_for(&msgs, refname).commit_ids(), vec![id.clone()]);
    }
    // The other refs are read from the reftable: b is already on topic.
    let msgs = f.push(&["topic:master"]);
    let master = json_for(&msgs, "refs/heads/master");
    assert!(master.commit_ids().is_empty(), "{:?}", master.commit_ids());
    assert_eq!(master.json()["update"], "fast-forward");

    // replay resolves ref names through git.
    let out = f.hookbus(
        &["replay", "--dry-run", "refs/heads/topic", &a, "topic"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = parse_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(json_for(&msgs, "refs/heads/topic").commit_ids(), vec![b]);
    // Both ends go to one git; the error still names the one it lacks.
    let out = f.hookbus(
        &[
            "replay",
            "--dry-run",
            "refs/heads/topic",
            "topic",
            "no-such-rev",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("unknown revision \"no-such-rev\"")
            && stderr.contains("git cat-file says missing"),
        "{stderr}"
    );

    let out = std::process::Command::new(HOOKBUS)
        .args(["install", "--repo"])
        .arg(&f.bare)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
