//! What a message shows about each commit: its people, files, patch and the
//! limits a loader keeps to.

use serde::Serialize;

/// A person and a moment, as recorded on a commit or tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// The name, decoded like the text it belongs to.
    pub name: String,
    /// The email address, without `<>`.
    pub email: String,
    /// RFC 3339 with the signer's own offset, e.g. `2012-03-14T11:55:15+00:00`.
    pub date: String,
    /// The same moment as git prints it by default: `Wed Mar 14 11:55:15 2012 +0000`.
    #[serde(skip)]
    pub git_date: String,
}

impl Signature {
    /// A signature at `date`, kept to the second, in both date forms.
    pub fn at(name: String, email: String, date: chrono::DateTime<chrono::FixedOffset>) -> Self {
        Signature {
            name,
            email,
            date: date.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            git_date: date.format("%a %b %-d %H:%M:%S %Y %z").to_string(),
        }
    }
}

/// How a file changed in one commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    /// A new file.
    Added,
    /// A deleted file.
    Removed,
    /// Content changed.
    Modified,
    /// Moved, with or without changes (`old_path` says from where).
    Renamed,
    /// Copied from `old_path`.
    Copied,
    /// Changed between file, symlink and submodule.
    TypeChanged,
    /// Deleted and added again in the same commit (Subversion's `R`).
    Replaced,
    /// Only metadata changed (Subversion properties), not the content.
    PropertiesChanged,
}

/// One file touched by a commit, with its line counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Path after the change (before it, for removals). Decoded lossily.
    pub path: String,
    /// Path before a rename or copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// How the file changed.
    pub status: FileStatus,
    /// True when the content is not text; no line counts then.
    pub binary: bool,
    /// Lines added.
    pub insertions: usize,
    /// Lines removed.
    pub deletions: usize,
    /// Sizes in bytes before and after, for binary files (shown in the stat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_sizes: Option<(u64, u64)>,
}

/// A commit's patch, already cut to the per-commit line limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// Unified diff text (`diff --git …` blocks), decoded lossily.
    pub text: String,
    /// Lines the full patch has.
    pub total_lines: usize,
    /// Lines kept in `text`.
    pub shown_lines: usize,
}

impl Patch {
    /// Appends one line (clipped to the line length) while under the line limit;
    /// every line is counted either way.
    pub fn push_line(&mut self, line: &str, limits: &PatchLimits) {
        self.total_lines += 1;
        if self.shown_lines < limits.max_lines {
            self.shown_lines += 1;
            self.text.push_str(&limits.clip(line));
            self.text.push('\n');
        }
    }

    /// True when lines were dropped to honour the per-commit limit.
    pub fn is_truncated(&self) -> bool {
        self.shown_lines < self.total_lines
    }
}

/// A commit with everything a message shows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The full commit id (`rN` for Subversion).
    pub id: String,
    /// Parent ids, first parent first.
    pub parents: Vec<String>,
    /// Who wrote the change, and when.
    pub author: Signature,
    /// Who committed it, and when.
    pub committer: Signature,
    /// The full message, re-encoded to UTF-8 (lossily when it was not valid).
    pub message: String,
    /// Files changed relative to the first parent; empty for merges, like `git log -p`.
    pub files: Vec<FileChange>,
    /// The patch against the first parent, cut to the limits.
    pub patch: Patch,
    /// More `Label: value` lines the text format shows under the date (SVN's
    /// `Project:` and `Dirs:`, which the seed's consumers read); empty for git.
    pub fields: Vec<(String, String)>,
}

impl Commit {
    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

/// Details of an annotated tag object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnotatedTag {
    /// The tag's name, without `refs/tags/`.
    pub name: String,
    /// The id of the object the tag points at.
    pub target: String,
    /// `commit`, `tree`, `blob` or `tag`.
    pub target_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Who made the tag; old tags may have none.
    pub tagger: Option<Signature>,
    /// The tag's message, re-encoded to UTF-8.
    pub message: String,
}

/// A list of commit ids that may have been cut short; `total` counts them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdList {
    /// The ids kept, in list order.
    pub ids: Vec<String>,
    /// How many there were in all.
    pub total: usize,
}

impl IdList {
    /// Builds a list from an iterator, keeping at most `keep` ids but counting all.
    pub fn collect(ids: impl IntoIterator<Item = String>, keep: usize) -> Self {
        let mut list = IdList::default();
        for id in ids {
            if list.ids.len() < keep {
                list.ids.push(id);
            }
            list.total += 1;
        }
        list
    }

    /// True when there are no ids at all.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// How much of a patch a commit loader keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchLimits {
    /// Lines kept per commit (the total is still counted).
    pub max_lines: usize,
    /// Characters kept per line; longer lines end in a visible marker.
    pub max_line_length: usize,
}

impl PatchLimits {
    /// Shortens one line to the limit, marking how much was cut.
    pub fn clip<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        clip_line(line, self.max_line_length)
    }
}

/// Shortens `line` to at most `max_chars` characters plus a marker naming the cut.
pub fn clip_line(line: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    // No more bytes than the limit means no more characters: skip counting them.
    if line.len() <= max_chars {
        return std::borrow::Cow::Borrowed(line);
    }
    match line.char_indices().nth(max_chars) {
        None => std::borrow::Cow::Borrowed(line),
        Some((cut, _)) => {
            let rest = line[cut..].chars().count();
            std::borrow::Cow::Owned(format!("{}[hookbus: +{rest} chars]", &line[..cut]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_line_counts_characters_not_bytes() {
        assert_eq!(clip_line("héllo", 10), "héllo");
        assert_eq!(clip_line("héllo wörld", 5), "héllo[hookbus: +6 chars]");
    }
}
