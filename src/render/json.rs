//! The `json` format: one object per ref update. The schema is documented in
//! `docs/json-schema.md`; field names are stable.
//!
//! The byte cap never produces invalid JSON: when the object is too large, diffs
//! are dropped (oldest commit first), then whole commits, and each cut is recorded
//! in `truncated`.

use super::{clip_field, Limits, Prepared, MAX_LISTED_IDS};
use crate::model::{Commit, FileStatus, IdList, Signature};
use serde_json::{json, Map, Value};

/// Version of the JSON schema; bumped only for incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The shortest a field is cut to when only the fields are left to shorten.
const MIN_FIELD_BYTES: usize = 16;

/// Renders the JSON body.
pub fn render(prepared: &Prepared, limits: &Limits) -> String {
    // Fields are cut shorter until the object fits: JSON escapes may make a
    // field six times longer than its text.
    let mut field = limits.field_bytes();
    loop {
        let text = render_with(prepared, limits, field);
        if text.len() <= limits.max_bytes || field <= MIN_FIELD_BYTES {
            return text;
        }
        field /= 2;
    }
}

/// Renders the JSON body with every field cut to `field` bytes.
fn render_with(prepared: &Prepared, limits: &Limits, field: usize) -> String {
    // Oldest first, as consumers apply them.
    let mut commits: Vec<Value> = prepared
        .shown
        .iter()
        .rev()
        .map(|commit| commit_value(commit, field))
        .collect();
    let mut not_shown: Vec<String> = prepared.not_shown.iter().map(|c| c.id.clone()).collect();
    let mut dropped_diffs = 0;
    loop {
        let object = envelope(prepared, &commits, &not_shown, dropped_diffs, field);
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
            let mut object = envelope(prepared, &[], &[], dropped_diffs, field);
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
    field: usize,
) -> Value {
    let notification = prepared.notification;
    let update = &notification.update;
    let clip = |value: &str| json!(clip_field(value, field));
    let mut object = Map::new();
    object.insert("schema".into(), json!(SCHEMA_VERSION));
    object.insert("repo".into(), clip(&notification.repo));
    object.insert("refname".into(), clip(&update.refname));
    object.insert("reftype".into(), json!(update.kind.as_str()));
    object.insert("change".into(), json!(update.change.as_str()));
    object.insert(
        "update".into(),
        json!(update.shape.map(|shape| shape.as_str())),
    );
    object.insert("oldrev".into(), json!(update.oldrev));
    object.insert("newrev".into(), json!(update.newrev));
    object.insert("pusher".into(), clip(&notification.pusher));
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
    let tag = notification.tag.as_ref().map(|tag| {
        let mut value = json!(tag);
        value["name"] = clip(&tag.name);
        if let Some(tagger) = &tag.tagger {
            value["tagger"] = signature(tagger, field);
        }
        value
    });
    object.insert("tag".into(), json!(tag));
    for (key, value) in &notification.extra {
        object.insert(key.clone(), clip(value));
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

/// A signature with its name and email cut to `field` bytes.
fn signature(signature: &Signature, field: usize) -> Value {
    let mut value = json!(signature);
    value["name"] = json!(clip_field(&signature.name, field));
    value["email"] = json!(clip_field(&signature.email, field));
    value
}

fn commit_value(commit: &Commit, field: usize) -> Value {
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
        "author": signature(&commit.author, field),
        "committer": signature(&commit.committer, field),
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

#[cfg(test)]
mod tests {
    use super::super::{render, Format, Limits, Prepared};
    use crate::model::{AnnotatedTag, Change, IdList, Notification, RefKind, RefUpdate, Signature};

    /// Every field huge, and made of control characters that JSON writes as
    /// six bytes each.
    fn hostile(size: usize) -> Notification {
        let huge = "\u{1}".repeat(size);
        let signature = Signature::at(
            huge.clone(),
            huge.clone(),
            chrono::DateTime::UNIX_EPOCH.into(),
        );
        Notification {
            repo: huge.clone(),
            pusher: huge.clone(),
            update: RefUpdate {
                refname: format!("refs/tags/{huge}"),
                oldrev: "0".repeat(40),
                newrev: "1".repeat(40),
                kind: RefKind::AnnotatedTag,
                change: Change::Create,
                shape: None,
            },
            new_commits: IdList::default(),
            known_commits: IdList::default(),
            discarded_commits: IdList::default(),
            omitted_commits: IdList::default(),
            tag: Some(AnnotatedTag {
                name: huge.clone(),
                target: "1".repeat(40),
                target_type: "commit".into(),
                tagger: Some(signature),
                message: huge.clone(),
            }),
            extra: vec![("project".into(), huge.clone()), ("revision".into(), huge)],
        }
    }

    #[test]
    fn no_field_takes_a_body_over_the_cap() {
        let limits = Limits {
            max_bytes: 2048,
            ..Limits::default()
        };
        let notification = hostile(100_000);
        let prepared = Prepared {
            notification: &notification,
            shown: Vec::new(),
            not_shown: Vec::new(),
            not_shown_total: 0,
        };
        for format in [Format::Text, Format::Json, Format::Summary] {
            let rendered = render(format, &prepared, &limits);
            assert!(
                rendered.body.len() <= 2048,
                "{format:?}: {}",
                rendered.body.len()
            );
            for (key, value) in &rendered.headers {
                assert!(
                    value.len() <= 300,
                    "{format:?} header {key}: {}",
                    value.len()
                );
            }
        }
        let json = render(Format::Json, &prepared, &limits).body;
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(value["repo"].as_str().unwrap().starts_with('\u{1}'));
        let text = render(Format::Text, &prepared, &limits).body;
        let first: Vec<&str> = text.lines().take(4).collect();
        assert!(first[0].starts_with("repo: \u{FFFD}") && first[0].contains("[hookbus: +"));
        assert_eq!(
            first[1..3],
            [
                format!("oldrev: {}", "0".repeat(40)),
                format!("newrev: {}", "1".repeat(40))
            ]
        );
        assert!(first[3].starts_with("refname: refs/tags/\u{FFFD}"));
    }
}
