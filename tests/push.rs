//! Real pushes through a real post-receive hook: which refs get messages, which
//! commits each message announces, and how the text format starts.

mod gitutil;

use gitutil::*;

fn first_lines(body: &str, n: usize) -> Vec<&str> {
    body.lines().take(n).collect()
}

#[test]
fn first_push_announces_every_commit_with_the_seed_header_lines() {
    let f = Fixture::new();
    let a = f.commit("first", &[("a.txt", b"a\n")]);
    let b = f.commit("second", &[("a.txt", b"a\nb\n")]);
    let msgs = f.push(&["master"]);
    assert_eq!(msgs.len(), 2, "one text and one JSON message");
    let text = text_for(&msgs, "refs/heads/master");
    assert_eq!(
        first_lines(&text.body, 4),
        [
            "repo: app".to_string(),
            format!("oldrev: {Z40}"),
            format!("newrev: {b}"),
            "refname: refs/heads/master".to_string()
        ]
    );
    assert_eq!(
        text.header("subject"),
        format!("[app] refs/heads/master {b}")
    );
    assert!(text.body.contains("\nchange: create\n"));
    assert!(text.body.contains("\npusher: alice\n"));
    // newest first, like git log
    let pos_b = text.body.find(&format!("commit {b}")).unwrap();
    let pos_a = text.body.find(&format!("commit {a}")).unwrap();
    assert!(pos_b < pos_a);
    let json = json_for(&msgs, "refs/heads/master");
    assert_eq!(json.commit_ids(), sorted(vec![a.clone(), b.clone()]));
    let value = json.json();
    assert_eq!(
        value["commits"][0]["id"],
        a.as_str(),
        "JSON is oldest first"
    );
    assert_eq!(value["reftype"], "branch");
    assert_eq!(value["change"], "create");
    assert_eq!(value["commits"][1]["modified"][0], "a.txt");
    assert_eq!(value["commits"][0]["added"][0], "a.txt");
    assert!(value["commits"][1]["diff"]
        .as_str()
        .unwrap()
        .contains("+b\n"));
}

#[test]
fn text_commits_match_git_log_p_stat() {
    let f = Fixture::new();
    let a = f.commit(
        "first\n\nbody line",
        &[("a.txt", b"a\n"), ("dir/b.txt", b"x\ny\n")],
    );
    f.push(&["master"]);
    f.commit(
        "second\n\nwhy, in a paragraph\n\nand another",
        &[("a.txt", b"a\nmore\n"), ("dir/b.txt", b"y\n")],
    );
    let c = f.commit("third", &[("c.txt", b"c\n")]);
    let msgs = f.push(&["master"]);
    let text = text_for(&msgs, "refs/heads/master");
    let log = f.git(&["log", "-p", "--stat", &format!("{a}..{c}")]);
    let (_, commits) = text.body.split_once("\n\n").unwrap();
    assert_eq!(commits, log);
}

#[test]
fn fast_forward_announces_only_the_new_commits() {
    let f = Fixture::new();
    let a = f.commit("first", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    let b = f.commit("second", &[("a.txt", b"b\n")]);
    let c = f.commit("third", &[("a.txt", b"c\n")]);
    let msgs = f.push(&["master"]);
    let json = json_for(&msgs, "refs/heads/master");
    assert_eq!(json.commit_ids(), sorted(vec![b, c.clone()]));
    assert_eq!(json.json()["update"], "fast-forward");
    let text = text_for(&msgs, "refs/heads/master");
    assert_eq!(first_lines(&text.body, 3)[1], format!("oldrev: {a}"));
    assert!(text.body.contains("\nupdate: fast-forward\n"));
}

#[test]
fn shared_new_commits_on_two_refs_are_announced_once_under_the_branch_update() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    let x = f.commit("x", &[("x.txt", b"x\n")]);
    f.git(&["branch", "topic"]);
    let msgs = f.push(&["master", "topic"]);
    assert_eq!(json_for(&msgs, "refs/heads/master").commit_ids(), vec![x]);
    assert!(json_for(&msgs, "refs/heads/topic").commit_ids().is_empty());
}

#[test]
fn new_branch_at_an_existing_commit_announces_nothing_new() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    f.git(&["branch", "release"]);
    let msgs = f.push(&["release"]);
    let json = json_for(&msgs, "refs/heads/release");
    assert!(json.commit_ids().is_empty());
    assert!(json.id_list("known_commits").is_empty());
    assert_eq!(json.json()["change"], "create");
}

#[test]
fn rename_in_one_push_announces_nothing_new() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    f.git(&["checkout", "-q", "-b", "old-name"]);
    let t = f.commit("topic work", &[("t.txt", b"t\n")]);
    f.push(&["old-name"]);
    let msgs = f.push(&["old-name:new-name", ":old-name"]);
    let create = json_for(&msgs, "refs/heads/new-name");
    let delete = json_for(&msgs, "refs/heads/old-name");
    assert!(create.commit_ids().is_empty());
    assert_eq!(create.id_list("known_commits"), vec![t.clone()]);
    assert!(
        delete.id_list("discarded_commits").is_empty(),
        "still on new-name"
    );
    assert_eq!(delete.json()["change"], "delete");
}

#[test]
fn delete_with_unique_commits_lists_them_as_discarded() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    f.git(&["checkout", "-q", "-b", "doomed"]);
    let d1 = f.commit("d1", &[("d.txt", b"1\n")]);
    let d2 = f.commit("d2", &[("d.txt", b"2\n")]);
    f.push(&["doomed"]);
    let msgs = f.push(&[":doomed"]);
    let json = json_for(&msgs, "refs/heads/doomed");
    assert_eq!(
        json.id_list("discarded_commits"),
        sorted(vec![d1, d2.clone()])
    );
    let text = text_for(&msgs, "refs/heads/doomed");
    assert_eq!(first_lines(&text.body, 4)[1], format!("oldrev: {d2}"));
    assert_eq!(first_lines(&text.body, 4)[2], format!("newrev: {Z40}"));
    assert!(text.body.contains("\ndiscarded-commits: 2\n"));
}

#[test]
fn forced_non_fast_forward_separates_discarded_from_omitted() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    let keep = f.commit("kept elsewhere", &[("k.txt", b"k\n")]);
    f.git(&["branch", "keeper"]);
    let lost = f.commit("lost", &[("l.txt", b"l\n")]);
    f.push(&["master", "keeper"]);
    f.git(&["reset", "-q", "--hard", "HEAD~2"]);
    let new = f.commit("rewritten", &[("n.txt", b"n\n")]);
    let msgs = f.push(&["+master"]);
    let json = json_for(&msgs, "refs/heads/master");
    assert_eq!(json.json()["update"], "non-fast-forward");
    assert_eq!(json.commit_ids(), vec![new]);
    assert_eq!(json.id_list("discarded_commits"), vec![lost]);
    assert_eq!(json.id_list("omitted_commits"), vec![keep]);
}

#[test]
fn pure_rewind_announces_no_commits_and_discards() {
    let f = Fixture::new();
    let base = f.commit("base", &[("a.txt", b"a\n")]);
    let gone = f.commit("gone", &[("a.txt", b"b\n")]);
    f.push(&["master"]);
    let msgs = f.push(&[&format!("+{base}:master")]);
    let json = json_for(&msgs, "refs/heads/master");
    assert_eq!(json.json()["update"], "rewind");
    assert!(json.commit_ids().is_empty());
    assert_eq!(json.id_list("discarded_commits"), vec![gone]);
}

#[test]
fn no_ff_merge_of_a_pushed_topic_announces_only_the_merge() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    f.git(&["checkout", "-q", "-b", "topic"]);
    let t = f.commit("topic", &[("t.txt", b"t\n")]);
    f.push(&["topic"]);
    f.git(&["checkout", "-q", "master"]);
    f.git(&["merge", "-q", "--no-ff", "-m", "Merge topic", "topic"]);
    let merge = f.rev("HEAD");
    let msgs = f.push(&["master"]);
    let json = json_for(&msgs, "refs/heads/master");
    assert_eq!(json.commit_ids(), vec![merge.clone()]);
    assert_eq!(json.id_list("known_commits"), vec![t]);
    let text = text_for(&msgs, "refs/heads/master");
    assert!(text.body.contains(&format!("commit {merge}\nMerge: ")));
}

#[test]
fn lightweight_and_annotated_tags_create_move_and_delete() {
    let f = Fixture::new();
    let a = f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    // lightweight create at an existing commit
    f.git(&["tag", "light"]);
    let msgs = f.push(&["refs/tags/light"]);
    let json = json_for(&msgs, "refs/tags/light");
    assert_eq!(json.json()["reftype"], "tag");
    assert!(json.commit_ids().is_empty());
    // annotated tag on a new commit: the commit is announced under the tag
    let b = f.commit("release commit", &[("a.txt", b"b\n")]);
    f.git(&["tag", "-a", "v1.0", "-m", "Release 1.0\n\nNotes here."]);
    let tag_id = f.rev("refs/tags/v1.0");
    let msgs = f.push(&["refs/tags/v1.0"]);
    let json = json_for(&msgs, "refs/tags/v1.0");
    let value = json.json();
    assert_eq!(value["reftype"], "annotated-tag");
    assert_eq!(value["newrev"], tag_id.as_str());
    assert_eq!(value["tag"]["target"], b.as_str());
    assert_eq!(value["tag"]["name"], "v1.0");
    assert!(value["tag"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Release 1.0"));
    assert_eq!(json.commit_ids(), vec![b.clone()]);
    let text = text_for(&msgs, "refs/tags/v1.0");
    assert!(text
        .body
        .contains("\n\ntag v1.0\nTagger: Alice Example <alice@example.com>\n"));
    // move the lightweight tag (forced)
    f.git(&["tag", "-f", "light", &b]);
    let msgs = f.push(&["+refs/tags/light"]);
    let json = json_for(&msgs, "refs/tags/light");
    assert_eq!(json.json()["change"], "update");
    assert_eq!(json.json()["oldrev"], a.as_str());
    // delete both
    let msgs = f.push(&[":refs/tags/light", ":refs/tags/v1.0"]);
    assert_eq!(
        json_for(&msgs, "refs/tags/light").json()["change"],
        "delete"
    );
    let deleted = json_for(&msgs, "refs/tags/v1.0").json();
    assert_eq!(deleted["reftype"], "annotated-tag");
    assert_eq!(deleted["oldrev"], tag_id.as_str());
}

#[test]
fn annotated_tag_and_branch_with_the_same_new_commit_announce_it_under_the_branch() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    let n = f.commit("new", &[("a.txt", b"n\n")]);
    f.git(&["tag", "-a", "v2", "-m", "v2"]);
    let msgs = f.push(&["master", "refs/tags/v2"]);
    assert_eq!(json_for(&msgs, "refs/heads/master").commit_ids(), vec![n]);
    assert!(json_for(&msgs, "refs/tags/v2").commit_ids().is_empty());
}

#[test]
fn a_ref_to_a_blob_is_an_other_ref_and_does_not_crash() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    let blob = f.git(&["rev-parse", "HEAD:a.txt"]).trim().to_string();
    let msgs = f.push(&[&format!("{blob}:refs/blobs/one")]);
    let json = json_for(&msgs, "refs/blobs/one");
    assert_eq!(json.json()["reftype"], "other");
    assert!(json.commit_ids().is_empty());
    let tree = f.git(&["rev-parse", "HEAD^{tree}"]).trim().to_string();
    let msgs = f.push(&[&format!("{tree}:refs/trees/one")]);
    assert_eq!(json_for(&msgs, "refs/trees/one").json()["reftype"], "other");
}

#[test]
fn notes_pushes_are_not_announced() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    f.git(&["notes", "add", "-m", "a note"]);
    let msgs = f.push(&["refs/notes/commits"]);
    assert!(msgs.is_empty(), "{msgs:#?}");
    assert_eq!(f.hook_stderr(), "");
}

#[test]
fn notes_are_announced_when_configured() {
    let f = Fixture::with_config(&format!("[git]\nannounce_notes = true\n{TWO_ROUTES}"));
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    f.git(&["notes", "add", "-m", "a note"]);
    let msgs = f.push(&["refs/notes/commits"]);
    assert_eq!(
        json_for(&msgs, "refs/notes/commits").json()["reftype"],
        "notes"
    );
}

#[test]
fn latin1_subject_without_encoding_header_is_decoded() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    // Write a raw Latin-1 message; git stores it as is with no encoding header.
    let msg_file = f.root.join("msg");
    std::fs::write(&msg_file, b"Caf\xe9 cr\xe8me\n").unwrap();
    std::fs::write(f.work.join("a.txt"), "b\n").unwrap();
    f.git(&[
        "-c",
        "i18n.commitEncoding=UTF-8",
        "commit",
        "-q",
        "-a",
        "-F",
        msg_file.to_str().unwrap(),
    ]);
    let raw = f.git(&["cat-file", "commit", "HEAD"]);
    assert!(!raw.contains("encoding"), "no encoding header: {raw}");
    let msgs = f.push(&["master"]);
    let json = json_for(&msgs, "refs/heads/master").json();
    assert_eq!(json["commits"][1]["message"], "Café crème\n");
    assert!(text_for(&msgs, "refs/heads/master")
        .body
        .contains("    Café crème\n"));
}

#[test]
fn declared_encoding_is_honoured() {
    let f = Fixture::new();
    let msg_file = f.root.join("msg");
    std::fs::write(&msg_file, b"Gr\xfc\xdfe\n").unwrap();
    std::fs::write(f.work.join("a.txt"), "a\n").unwrap();
    f.git(&["add", "-A"]);
    f.git(&[
        "-c",
        "i18n.commitEncoding=ISO-8859-1",
        "commit",
        "-q",
        "-F",
        msg_file.to_str().unwrap(),
    ]);
    assert!(f
        .git(&["cat-file", "commit", "HEAD"])
        .contains("encoding ISO-8859-1"));
    let msgs = f.push(&["master"]);
    assert_eq!(
        json_for(&msgs, "refs/heads/master").json()["commits"][0]["message"],
        "Grüße\n"
    );
}

#[test]
fn odd_file_names_are_readable_and_unambiguous() {
    let f = Fixture::new();
    f.commit(
        "odd names",
        &[
            ("dir with space/fïchier.txt", b"x\n"),
            ("new\nline.txt", b"y\n"),
            ("tab\there.txt", b"z\n"),
        ],
    );
    let msgs = f.push(&["master"]);
    let text = &text_for(&msgs, "refs/heads/master").body;
    assert!(text.contains("diff --git a/dir with space/fïchier.txt b/dir with space/fïchier.txt\n"));
    assert!(text.contains("diff --git \"a/new\\nline.txt\" \"b/new\\nline.txt\"\n"));
    assert!(text.contains("+++ \"b/tab\\there.txt\"\n"));
    let json = json_for(&msgs, "refs/heads/master").json();
    let added: Vec<&str> = json["commits"][0]["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(added.contains(&"new\nline.txt"));
    assert!(added.contains(&"dir with space/fïchier.txt"));
}

#[test]
fn binary_files_are_shown_as_binary() {
    let f = Fixture::new();
    f.commit(
        "binary",
        &[("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")],
    );
    let msgs = f.push(&["master"]);
    let text = &text_for(&msgs, "refs/heads/master").body;
    assert!(
        text.contains("Binary files /dev/null and b/logo.png differ\n"),
        "{text}"
    );
    assert!(text.contains(" logo.png | Bin 0 -> 17 bytes\n"));
    let json = json_for(&msgs, "refs/heads/master").json();
    assert_eq!(json["commits"][0]["files"][0]["binary"], true);
}

#[test]
fn a_50000_line_file_is_cut_with_visible_markers_and_counts() {
    let f = Fixture::with_config(&format!(
        "[limits]\nmax_diff_lines = 500\nmax_bytes = 65536\n{TWO_ROUTES}"
    ));
    let big: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
    let small = f.commit("small", &[("s.txt", b"s\n")]);
    let huge = f.commit("huge", &[("big.txt", big.as_bytes())]);
    let msgs = f.push(&["master"]);
    let text = &text_for(&msgs, "refs/heads/master").body;
    assert!(text.len() <= 65536);
    assert!(
        text.contains("[hookbus: diff cut at 500 of 50006 lines ([limits] max_diff_lines = 500)]")
    );
    assert!(
        text.contains(" big.txt | 50000 +++"),
        "stat counts every line"
    );
    let json_msg = json_for(&msgs, "refs/heads/master");
    assert!(json_msg.body.len() <= 65536);
    let json = json_msg.json();
    assert_eq!(json_msg.commit_ids(), sorted(vec![small, huge.clone()]));
    assert_eq!(json["commits"][1]["id"], huge.as_str());
    assert_eq!(json["commits"][1]["diff_truncated"], true);
    assert_eq!(json["commits"][1]["diff_lines_total"], 50006);
    assert_eq!(json["commits"][1]["diff_lines_shown"], 500);
}

#[test]
fn the_byte_cap_holds_and_no_ref_loses_its_message() {
    let f = Fixture::with_config(&format!(
        "[limits]\nmax_bytes = 4096\nmax_diff_lines = 100000\n{TWO_ROUTES}"
    ));
    let big: String = (0..5_000).map(|i| format!("line {i}\n")).collect();
    f.commit("huge", &[("big.txt", big.as_bytes())]);
    f.git(&["branch", "other"]);
    let other = f.commit("on master only", &[("m.txt", b"m\n")]);
    let msgs = f.push(&["master", "other"]);
    assert_eq!(msgs.len(), 4, "both refs, both formats");
    for msg in &msgs {
        assert!(msg.body.len() <= 4096, "{} bytes", msg.body.len());
    }
    let text = &text_for(&msgs, "refs/heads/master").body;
    assert!(text.starts_with("repo: app\n"));
    assert!(text.contains("[hookbus: message cut at"), "{text}");
    let json = json_for(&msgs, "refs/heads/master");
    let value = json.json(); // still valid JSON
    assert!(json.commit_ids().contains(&other));
    assert!(value["truncated"]["diffs_dropped"].as_u64().unwrap() >= 1);
}

#[test]
fn too_many_commits_are_listed_not_rendered() {
    let f = Fixture::with_config(&format!("[limits]\nmax_commits = 3\n{TWO_ROUTES}"));
    let ids: Vec<String> = (0..8)
        .map(|i| f.commit(&format!("c{i}"), &[("a.txt", format!("{i}\n").as_bytes())]))
        .collect();
    let msgs = f.push(&["master"]);
    let text = &text_for(&msgs, "refs/heads/master").body;
    assert!(text.contains("\ncommits: 8\ncommits-shown: 3\n"));
    assert!(text.contains("[hookbus: 5 more new commit(s) not shown in full"));
    assert!(text.contains(&format!("commit {} c0\n", ids[0])));
    let json = json_for(&msgs, "refs/heads/master");
    assert_eq!(json.commit_ids(), sorted(ids));
    assert_eq!(json.json()["commits"].as_array().unwrap().len(), 3);
}

#[test]
fn orphan_branch_announces_its_own_history() {
    let f = Fixture::new();
    f.commit("base", &[("a.txt", b"a\n")]);
    f.push(&["master"]);
    f.git(&["checkout", "-q", "--orphan", "gh-pages"]);
    f.git(&["rm", "-q", "-rf", "."]);
    let p = f.commit("pages", &[("index.html", b"<p>hi</p>\n")]);
    let msgs = f.push(&["gh-pages"]);
    let json = json_for(&msgs, "refs/heads/gh-pages");
    assert_eq!(json.commit_ids(), vec![p]);
    assert_eq!(
        json.json()["commits"][0]["parents"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn sha256_repositories_work() {
    let f = Fixture::with_format("sha256", TWO_ROUTES);
    let a = f.commit("first", &[("a.txt", b"a\n")]);
    assert_eq!(a.len(), 64);
    let msgs = f.push(&["master"]);
    let text = text_for(&msgs, "refs/heads/master");
    assert_eq!(
        first_lines(&text.body, 2)[1],
        format!("oldrev: {}", "0".repeat(64))
    );
    assert_eq!(
        json_for(&msgs, "refs/heads/master").commit_ids(),
        vec![a.clone()]
    );
    f.git(&["checkout", "-q", "-b", "topic"]);
    let b = f.commit("second", &[("a.txt", b"b\n")]);
    let msgs = f.push(&["topic"]);
    assert_eq!(
        json_for(&msgs, "refs/heads/topic").commit_ids(),
        vec![b.clone()]
    );
    let msgs = f.push(&[":topic"]);
    let deleted = json_for(&msgs, "refs/heads/topic");
    assert_eq!(deleted.json()["change"], "delete");
    assert_eq!(deleted.id_list("discarded_commits"), vec![b]);
}
