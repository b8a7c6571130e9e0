//! Rendering: turns a [`Notification`] into a message body and headers in one of
//! the formats a route asks for, under the configured limits.

pub mod json;
pub mod summary;
pub mod text;

use crate::model::{Commit, CommitSource, IdList, Notification, PatchLimits};
use anyhow::{bail, Result};
use serde::Deserialize;

/// A message format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The seed-compatible `key: value` header lines plus `git log -p --stat` text.
    #[default]
    Text,
    /// One JSON object per ref update (schema in docs/json-schema.md).
    Json,
    /// One line for chat bots.
    Summary,
}

impl Format {
    /// The name used in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Summary => "summary",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Text | Format::Summary => "text/plain; charset=utf-8",
        }
    }
}

/// Per-message limits; every cut is marked in the message and counted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Commits rendered in full; the rest are listed by id and subject.
    pub max_commits: usize,
    /// Diff lines shown per commit.
    pub max_diff_lines: usize,
    /// Characters kept per line of message or diff.
    pub max_line_length: usize,
    /// Hard cap on the body in bytes (brokers limit frames in bytes).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_commits: 50,
            max_diff_lines: 1000,
            max_line_length: 500,
            max_bytes: 1024 * 1024,
        }
    }
}

/// The smallest byte cap accepted: room for the header lines and markers.
const MIN_BYTES: usize = 2048;

/// How many ids of a commit list are written out; the total is always given.
pub const MAX_LISTED_IDS: usize = 1000;

impl Limits {
    /// Rejects limits that could not produce a useful message.
    pub fn validate(&self) -> Result<()> {
        if self.max_bytes < MIN_BYTES {
            bail!(
                "[limits] max_bytes = {} is too small; use at least {MIN_BYTES}",
                self.max_bytes
            );
        }
        if self.max_line_length < 20 {
            bail!("[limits] max_line_length must be at least 20");
        }
        Ok(())
    }

    /// How many ids each commit list of a notification keeps: the commits
    /// rendered in full, then as many as a message lists by id.
    pub fn max_listed(&self) -> usize {
        self.max_commits + MAX_LISTED_IDS
    }

    /// The part of the limits a commit loader applies while reading a patch.
    pub fn patch_limits(&self) -> PatchLimits {
        PatchLimits {
            max_lines: self.max_diff_lines,
            max_line_length: self.max_line_length,
        }
    }
}

/// A commit that is listed but not rendered in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCommit {
    /// The full commit id.
    pub id: String,
    /// The first line of its message.
    pub subject: String,
}

/// A notification with the commits it shows loaded, ready for any format.
pub struct Prepared<'a> {
    /// The notification being rendered.
    pub notification: &'a Notification,
    /// Commits rendered in full, newest first.
    pub shown: Vec<Commit>,
    /// Announced commits not rendered in full, newest first (at most
    /// [`MAX_LISTED_IDS`]; `not_shown_total` counts them all).
    pub not_shown: Vec<ListedCommit>,
    /// How many announced commits are not rendered in full.
    pub not_shown_total: usize,
}

/// Loads the commits a notification announces: in full while the commit-count
/// and byte limits allow, then only their subjects. Memory stays near
/// `max_bytes` however many commits the push has.
pub fn prepare<'a>(
    notification: &'a Notification,
    source: &dyn CommitSource,
    limits: &Limits,
) -> Result<Prepared<'a>> {
    let mut prepared = Prepared {
        notification,
        shown: Vec::new(),
        not_shown: Vec::new(),
        not_shown_total: 0,
    };
    let mut loaded_bytes = 0;
    let patch_limits = limits.patch_limits();
    for id in &notification.new_commits.ids {
        if prepared.shown.len() < limits.max_commits && loaded_bytes < limits.max_bytes {
            let commit = source.load_for(notification, id, &patch_limits)?;
            loaded_bytes += commit.patch.text.len() + commit.message.len();
            prepared.shown.push(commit);
        } else {
            if prepared.not_shown.len() < MAX_LISTED_IDS {
                prepared.not_shown.push(ListedCommit {
                    id: id.clone(),
                    subject: source.subject(id)?,
                });
            }
            prepared.not_shown_total += 1;
        }
    }
    // Ids the git side counted but did not keep are still "not shown".
    prepared.not_shown_total += notification.new_commits.total - notification.new_commits.ids.len();
    Ok(prepared)
}

/// What a summary line needs and no more: the newest commit's subject and the
/// counts. Loading patches for a one-line message would be most of its cost.
pub fn prepare_headline<'a>(
    notification: &'a Notification,
    source: &dyn CommitSource,
) -> Result<Prepared<'a>> {
    let not_shown = match notification.new_commits.ids.first() {
        Some(id) => vec![ListedCommit {
            id: id.clone(),
            subject: source.subject(id)?,
        }],
        None => Vec::new(),
    };
    Ok(Prepared {
        notification,
        shown: Vec::new(),
        not_shown,
        not_shown_total: notification.new_commits.total,
    })
}

/// A rendered message body with its headers, before routing adds a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Headers in the order they are sent.
    pub headers: Vec<(String, String)>,
    /// The message body.
    pub body: String,
}

/// Renders a prepared notification in `format`, never over `limits.max_bytes`.
pub fn render(format: Format, prepared: &Prepared, limits: &Limits) -> Rendered {
    let body = match format {
        Format::Text => text::render(prepared, limits),
        Format::Json => json::render(prepared, limits),
        Format::Summary => summary::render(prepared, limits),
    };
    Rendered {
        headers: headers(prepared.notification, format),
        body,
    }
}

/// The headers every message carries; `subject` is the seed's `[REPO] REFNAME NEWREV`.
fn headers(notification: &Notification, format: Format) -> Vec<(String, String)> {
    let update = &notification.update;
    let mut headers = vec![
        (
            "subject".to_string(),
            format!(
                "[{}] {} {}",
                notification.repo, update.refname, update.newrev
            ),
        ),
        ("repo".to_string(), notification.repo.clone()),
        ("refname".to_string(), update.refname.clone()),
        ("oldrev".to_string(), update.oldrev.clone()),
        ("newrev".to_string(), update.newrev.clone()),
        ("reftype".to_string(), update.kind.as_str().to_string()),
        ("change".to_string(), update.change.as_str().to_string()),
    ];
    if !notification.pusher.is_empty() {
        headers.push(("pusher".to_string(), notification.pusher.clone()));
    }
    headers.extend(notification.extra.iter().cloned());
    headers.push((
        "content-type".to_string(),
        format.content_type().to_string(),
    ));
    headers
}

/// Cuts `body` to at most `max_bytes` at a character boundary, ending it with a
/// visible marker that says how much was left out.
pub(crate) fn cap_bytes(mut body: String, max_bytes: usize) -> String {
    if body.len() <= max_bytes {
        return body;
    }
    let total = body.len();
    // The marker's own length depends on the numbers in it; 120 bytes is ample.
    let mut cut = max_bytes.saturating_sub(120);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    body.truncate(cut);
    body.push_str(&format!(
        "\n[hookbus: message cut at {cut} of {total} bytes ([limits] max_bytes = {max_bytes})]\n"
    ));
    body
}

/// One `label: N` count, and whether a list was cut.
pub(crate) fn list_note(list: &IdList) -> String {
    if list.ids.len() < list.total {
        format!("{} ({} listed)", list.total, list.ids.len())
    } else {
        list.total.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_bytes_keeps_utf8_and_marks_the_cut() {
        let body = "é".repeat(5000);
        let capped = cap_bytes(body, 2048);
        assert!(capped.len() <= 2048);
        assert!(capped.contains("[hookbus: message cut at"));
        assert!(capped.contains("of 10000 bytes"));
    }
}
