//! The `text` format: what the seed's consumers parse.
//!
//! The body starts with exactly `repo:`, `oldrev:`, `newrev:` and `refname:` lines,
//! then more `key: value` lines, a blank line, and the announced commits the way
//! `git log -p --stat` prints them, newest first.

use super::{cap_bytes, clip_field, list_note, Limits, Prepared};
use crate::model::{clip_line, AnnotatedTag, Commit, FileChange, IdList, Notification};
use std::fmt::Write;

/// Renders the text body.
pub fn render(prepared: &Prepared, limits: &Limits) -> String {
    let notification = prepared.notification;
    let mut out = String::with_capacity(capacity_hint(prepared, limits));
    // Every field is cut to an eighth of the cap, so the final cut never
    // reaches the first four lines.
    let field = limits.field_bytes();
    write_fields(&mut out, prepared, field);
    out.push('\n');
    if let Some(tag) = &notification.tag {
        write_tag(&mut out, tag, limits);
    }
    for (index, commit) in prepared.shown.iter().enumerate() {
        if index > 0 || notification.tag.is_some() {
            out.push('\n');
        }
        write_commit(&mut out, commit, limits);
    }
    if prepared.not_shown_total > 0 {
        let _ = writeln!(
            out,
            "\n[hookbus: {} more new commit(s) not shown in full ([limits] max_commits = {}, max_bytes = {})]",
            prepared.not_shown_total, limits.max_commits, limits.max_bytes
        );
        for listed in &prepared.not_shown {
            let line = format!("commit {} {}", listed.id, listed.subject);
            let _ = writeln!(out, "{}", clip_line(&line, limits.max_line_length));
        }
    }
    write_id_list(
        &mut out,
        "Commits discarded by this update (no longer on any ref)",
        &notification.discarded_commits,
    );
    write_id_list(
        &mut out,
        "Commits removed from this ref but still on another ref",
        &notification.omitted_commits,
    );
    write_id_list(
        &mut out,
        "Commits now on this ref that were already in the repository",
        &notification.known_commits,
    );
    cap_bytes(out, limits.max_bytes)
}

/// Room for the whole body up front: growing a large body by doubling holds
/// the old and the new buffer at once. Reserved pages that are never written
/// cost no memory, so the hint may be generous.
fn capacity_hint(prepared: &Prepared, limits: &Limits) -> usize {
    let commits: usize = prepared
        .shown
        .iter()
        .map(|commit| {
            commit.patch.text.len() + commit.message.len() * 2 + 100 * commit.files.len() + 512
        })
        .sum();
    (commits + 100 * prepared.not_shown.len() + 4096).min(limits.max_bytes + 1024)
}

fn write_fields(out: &mut String, prepared: &Prepared, field: usize) {
    let notification: &Notification = prepared.notification;
    let update = &notification.update;
    write_field(out, "repo", &notification.repo, field);
    write_field(out, "oldrev", &update.oldrev, field);
    write_field(out, "newrev", &update.newrev, field);
    write_field(out, "refname", &update.refname, field);
    write_field(out, "reftype", update.kind.as_str(), field);
    write_field(out, "change", update.change.as_str(), field);
    if let Some(shape) = update.shape {
        write_field(out, "update", shape.as_str(), field);
    }
    if !notification.pusher.is_empty() {
        write_field(out, "pusher", &notification.pusher, field);
    }
    let _ = writeln!(out, "commits: {}", notification.new_commits.total);
    if prepared.not_shown_total > 0 {
        let _ = writeln!(out, "commits-shown: {}", prepared.shown.len());
    }
    for (label, list) in [
        ("known-commits", &notification.known_commits),
        ("discarded-commits", &notification.discarded_commits),
        ("omitted-commits", &notification.omitted_commits),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "{label}: {}", list_note(list));
        }
    }
    for (key, value) in &notification.extra {
        write_field(out, key, value, field);
    }
}

/// One `key: value` line: the value cut to `field` bytes, and a control
/// character in it shown as U+FFFD so that it cannot start a line of its own.
fn write_field(out: &mut String, key: &str, value: &str, field: usize) {
    let value = clip_field(value, field);
    let _ = writeln!(
        out,
        "{key}: {}",
        value.replace(char::is_control, "\u{FFFD}")
    );
}

fn write_tag(out: &mut String, tag: &AnnotatedTag, limits: &Limits) {
    let field = limits.field_bytes();
    let _ = writeln!(out, "tag {}", clip_field(&tag.name, field));
    if let Some(tagger) = &tag.tagger {
        let (name, email) = (
            clip_field(&tagger.name, field),
            clip_field(&tagger.email, field),
        );
        let _ = writeln!(out, "Tagger: {name} <{email}>");
        let _ = writeln!(out, "Date:   {}", tagger.git_date);
    }
    let _ = writeln!(out, "Object: {} {}", tag.target_type, tag.target);
    out.push('\n');
    for line in tag.message.trim_end().lines() {
        let _ = writeln!(out, "{}", clip_line(line, limits.max_line_length));
    }
}

/// One commit as `git log -p --stat` prints it.
fn write_commit(out: &mut String, commit: &Commit, limits: &Limits) {
    let _ = writeln!(out, "commit {}", commit.id);
    if commit.parents.len() > 1 {
        let short: Vec<&str> = commit
            .parents
            .iter()
            .map(|id| &id[..7.min(id.len())])
            .collect();
        let _ = writeln!(out, "Merge: {}", short.join(" "));
    }
    let field = limits.field_bytes();
    let name = clip_field(&commit.author.name, field);
    if commit.author.email.is_empty() {
        // SVN authors are bare user names.
        let _ = writeln!(out, "Author: {name}");
    } else {
        let email = clip_field(&commit.author.email, field);
        let _ = writeln!(out, "Author: {name} <{email}>");
    }
    let _ = writeln!(out, "Date:   {}", commit.author.git_date);
    for (label, value) in &commit.fields {
        let _ = writeln!(out, "{label}: {}", clip_field(value, field));
    }
    out.push('\n');
    for line in commit.message.trim_end().lines() {
        // git indents every message line, blank ones included.
        let _ = writeln!(out, "    {}", clip_line(line, limits.max_line_length));
    }
    if !commit.files.is_empty() {
        // git separates message and stat with "---" when a patch follows.
        out.push_str(if commit.patch.text.is_empty() {
            "\n"
        } else {
            "---\n"
        });
        write_stat(out, &commit.files);
    }
    if !commit.patch.text.is_empty() {
        out.push('\n');
        out.push_str(&commit.patch.text);
    }
    if commit.patch.is_truncated() {
        let _ = writeln!(
            out,
            "[hookbus: diff cut at {} of {} lines ([limits] max_diff_lines = {})]",
            commit.patch.shown_lines, commit.patch.total_lines, limits.max_diff_lines
        );
    }
}

/// Total width of a stat line, as git uses when not writing to a terminal.
const STAT_WIDTH: usize = 80;

/// The `--stat` block: ` path | 3 ++-` lines and the summary line.
fn write_stat(out: &mut String, files: &[FileChange]) {
    let names: Vec<String> = files
        .iter()
        .map(|file| match &file.old_path {
            Some(old) => format!("{old} => {}", file.path),
            None => file.path.clone(),
        })
        .collect();
    let name_width = names
        .iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0);
    let max_change = files
        .iter()
        .map(|file| file.insertions + file.deletions)
        .max()
        .unwrap_or(0);
    let count_width = max_change
        .to_string()
        .len()
        .max(if files.iter().any(|f| f.binary) { 3 } else { 1 });
    let graph_width = STAT_WIDTH
        .saturating_sub(name_width + count_width + 4)
        .max(6);
    let (mut insertions, mut deletions) = (0, 0);
    for (file, name) in files.iter().zip(&names) {
        let pad = name_width - name.chars().count();
        if file.binary {
            let (before, after) = file.binary_sizes.unwrap_or_default();
            let _ = writeln!(out, " {name}{:pad$} | Bin {before} -> {after} bytes", "");
            continue;
        }
        insertions += file.insertions;
        deletions += file.deletions;
        let (plus, minus) = scale(file.insertions, file.deletions, max_change, graph_width);
        let changes = file.insertions + file.deletions;
        let graph = format!("{}{}", "+".repeat(plus), "-".repeat(minus));
        let _ = writeln!(
            out,
            " {name}{:pad$} | {changes:>count_width$}{}{graph}",
            "",
            if graph.is_empty() { "" } else { " " }
        );
    }
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            one.to_string()
        } else {
            many.to_string()
        }
    };
    let mut summary = format!(
        " {} {} changed",
        files.len(),
        plural(files.len(), "file", "files")
    );
    if insertions > 0 || deletions == 0 {
        summary += &format!(
            ", {insertions} {}(+)",
            plural(insertions, "insertion", "insertions")
        );
    }
    if deletions > 0 || insertions == 0 {
        summary += &format!(
            ", {deletions} {}(-)",
            plural(deletions, "deletion", "deletions")
        );
    }
    let _ = writeln!(out, "{summary}");
}

/// Scales a file's +/- counts to the graph width like git's diffstat does.
fn scale(insertions: usize, deletions: usize, max_change: usize, width: usize) -> (usize, usize) {
    if max_change <= width {
        return (insertions, deletions);
    }
    let scaled = |n: usize| {
        if n == 0 {
            0
        } else {
            1 + (n * (width - 1)) / max_change
        }
    };
    let total = scaled(insertions + deletions);
    let plus = scaled(insertions);
    let minus = total.saturating_sub(plus);
    (plus, minus)
}

fn write_id_list(out: &mut String, title: &str, list: &IdList) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}: {}", list_note(list));
    for id in &list.ids {
        let _ = writeln!(out, "  {id}");
    }
}
