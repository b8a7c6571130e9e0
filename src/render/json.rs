//! The `json` format: one object per ref update. The schema is documented in
//! `docs/json-schema.md`; field names are stable.
//!
//! The byte cap never produces invalid JSON: when the object is too large, diffs
//! are dropped (oldest commit first), then whole commits, and each cut is recorded
//! in `truncated`.

use super::{Limits, Prepared, MAX_LISTED_IDS};
use crate::model::{Commit, FileStatus, IdList};
use serde_json::{json, Map, Value};

/// Version of the JSON schema; bumped only for incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Renders the JSON body.
pub fn render(prepared: &Prepared, limits: &Limits) -> String {
    // Oldest first, as consumers apply them.
    let mut commits: Vec<Value> = prepared.shown.iter().rev().map(commit_value).collect();
    let mut not_shown: Vec<String> = prepared.not_shown.iter().map(|c| c.id.clone()).collect();
    let mut dropped_diffs = 0;
    loop {
        let object = envelope(prepared, &commits, &not_shown, dropped_diffs);
        let text = serde_json::to_string(&object).expect("JSON values serialize");
        if text.len() <= limits.max_bytes {
            return text;
        }
        if let Some(commit) = commits
            .iter_mut()
            .find(|commit| commit["diff"].as_str().is_some_and(|diff| !diff.is_empty()))
        {
            commit["diff"] = Value::String(String::new());
            commit["diff_truncated"] = Value::Bool(true);
            dropped_diffs += 1;
        } else if !commits.is_empty() {
            let commit = commits.remove(0);
            if not_shown.len() < MAX_LISTED_IDS {
                not_shown.push(commit["id"].as_str().unwrap_or_default().to_string());
            }
        } else {
            // Only huge id lists or a huge tag message are left: keep the counts.
            let mut object = envelope(prepared, &[], &[], dropped_diffs);
            for key in ["known_commits", "discarded_commits", "omitted_commits"] {
                object[key] = json!([]);
            }
            object["truncated"]["lists_dropped"] = Value::Bool(true);
            if let Some(tag) = object.get_mut("tag").filter(|tag| tag.is_object()) {
                tag["message"] = Value::String(String::new());
            }
            return serde_json::to_string(&object).expect("JSON values serialize");
        }
    }
}

fn envelope(
    prepared: &Prepared,
    commits: &[Value],
    not_shown: &[String],
    dropped_diffs: usize,
) -> Value {
    let notification = prepared.notification;
    let update = &notification.update;
    let mut object = Map::new();
    object.insert("schema".into(), json!(SCHEMA_VERSION));
    object.insert("repo".into(), json!(notification.repo));
    object.insert("refname".into(), json!(update.refname));
    object.insert("reftype".into(), json!(update.kind.as_str()));
    object.insert("change".into(), json!(update.change.as_str()));
    object.insert(
        "update".into(),
        json!(update.shape.map(|shape| shape.as_str())),
    );
    object.insert("oldrev".into(), json!(update.oldrev));
    object.insert("newrev".into(), json!(update.newrev));
    object.insert("pusher".into(), json!(notification.pusher));
    object.insert("commits".into(), Value::Array(commits.to_vec()));
    object.insert(
        "commits_total".into(),
        json!(notification.new_commits.total),
    );
    object.insert("commits_not_shown".into(), json!(not_shown));
    insert_list(&mut object, "known_commits", &notification.known_commits);
    insert_list(
        &mut object,
        "discarded_commits",
        &notification.discarded_commits,
    );
    insert_list(
        &mut object,
        "omitted_commits",
        &notification.omitted_commits,
    );
    object.insert("tag".into(), json!(notification.tag));
    for (key, value) in &notification.extra {
        object.insert(key.clone(), json!(value));
    }
    let cut_diffs = prepared
        .shown
        .iter()
        .filter(|commit| commit.patch.is_truncated())
        .count();
    object.insert(
        "truncated".into(),
        json!({
            "commits_not_shown": prepared.notification.new_commits.total - commits.len(),
            "diffs_cut": cut_diffs,
            "diffs_dropped": dropped_diffs,
        }),
    );
    Value::Object(object)
}

fn insert_list(object: &mut Map<String, Value>, key: &str, list: &IdList) {
    object.insert(key.to_string(), json!(list.ids));
    object.insert(format!("{key}_total"), json!(list.total));
}

fn commit_value(commit: &Commit) -> Value {
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut modified = Vec::new();
    for file in &commit.files {
        match file.status {
            FileStatus::Added | FileStatus::Copied => added.push(&file.path),
            FileStatus::Removed => removed.push(&file.path),
            FileStatus::Modified
            | FileStatus::TypeChanged
            | FileStatus::Replaced
            | FileStatus::PropertiesChanged => modified.push(&file.path),
            FileStatus::Renamed => {
                removed.extend(file.old_path.as_ref());
                added.push(&file.path);
            }
        }
    }
    json!({
        "id": commit.id,
        "parents": commit.parents,
        "author": commit.author,
        "committer": commit.committer,
        "message": commit.message,
        "added": added,
        "removed": removed,
        "modified": modified,
        "files": commit.files,
        "diff": commit.patch.text,
        "diff_truncated": commit.patch.is_truncated(),
        "diff_lines_total": commit.patch.total_lines,
        "diff_lines_shown": commit.patch.shown_lines,
    })
}
