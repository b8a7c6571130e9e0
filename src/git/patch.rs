//! Patch text in `git log -p` form, built line by line under the limits:
//! file headers with git's path quoting, diff lines, and lines filled in later.

use crate::model::{FileChange, FileStatus, Patch, PatchLimits};
use git2::Delta;

/// Quotes a path the way `git -c core.quotePath=false` does: unquoted unless it
/// holds control characters, a quote or a backslash, which are C-escaped so the
/// header stays on one line and unambiguous. Non-ASCII stays readable.
pub fn quote_path(prefix: &str, path: &str) -> String {
    let needs_quotes = path
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\');
    if !needs_quotes {
        return format!("{prefix}{path}");
    }
    let mut out = String::from("\"");
    out.push_str(prefix);
    for c in path.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Accumulates patch text line by line, keeping at most `max_lines` lines (each
/// clipped) and counting all of them.
pub(super) struct PatchBuilder {
    pub(super) limits: PatchLimits,
    patch: Patch,
}

impl PatchBuilder {
    pub(super) fn new(limits: PatchLimits) -> Self {
        PatchBuilder {
            limits,
            patch: Patch::default(),
        }
    }

    pub(super) fn line(&mut self, line: &str) {
        self.patch.push_line(line, &self.limits);
    }

    /// True while lines are still kept, not only counted.
    pub(super) fn wants_text(&self) -> bool {
        self.patch.shown_lines < self.limits.max_lines
    }

    /// A line already clipped to the limits; says whether more text is wanted.
    pub(super) fn clipped_line(&mut self, line: &str) -> bool {
        let unclipped = PatchLimits {
            max_line_length: usize::MAX,
            ..self.limits
        };
        self.patch.push_line(line, &unclipped);
        self.wants_text()
    }

    /// Adds an empty line to fill in later; where it is, when it was kept.
    pub(super) fn reserve_line(&mut self) -> Option<usize> {
        let at = self.wants_text().then_some(self.patch.text.len());
        self.line("");
        at
    }

    /// Fills in a line [`PatchBuilder::reserve_line`] kept.
    pub(super) fn fill_line(&mut self, at: Option<usize>, line: &str) {
        if let Some(at) = at {
            self.patch.text.insert_str(at, line);
        }
    }

    /// git's line for a binary file.
    pub(super) fn binary_line(&mut self, delta: &git2::DiffDelta, change: &FileChange) {
        let side = |prefix: &str, exists: bool, path: &str| {
            if exists {
                format!("{prefix}{path}")
            } else {
                "/dev/null".to_string()
            }
        };
        let old_path = change.old_path.as_deref().unwrap_or(&change.path);
        self.line(&format!(
            "Binary files {} and {} differ",
            side("a/", delta.status() != Delta::Added, old_path),
            side("b/", delta.status() != Delta::Deleted, &change.path)
        ));
    }

    /// The `diff --git` header block of one file, with our own path quoting.
    pub(super) fn header(&mut self, delta: &git2::DiffDelta, change: &FileChange) {
        let old_path = change.old_path.as_deref().unwrap_or(&change.path);
        self.line(&format!(
            "diff --git {} {}",
            quote_path("a/", old_path),
            quote_path("b/", &change.path)
        ));
        let (old, new) = (delta.old_file(), delta.new_file());
        let mode = |file: &git2::DiffFile| format!("{:06o}", u32::from(file.mode()));
        let abbrev = |file: &git2::DiffFile| {
            let id = file.id().to_string();
            id[..7.min(id.len())].to_string()
        };
        match delta.status() {
            Delta::Added => self.line(&format!("new file mode {}", mode(&new))),
            Delta::Deleted => self.line(&format!("deleted file mode {}", mode(&old))),
            _ if old.mode() != new.mode() => {
                self.line(&format!("old mode {}", mode(&old)));
                self.line(&format!("new mode {}", mode(&new)));
            }
            _ => {}
        }
        if let Some(from) = &change.old_path {
            let verb = if change.status == FileStatus::Copied {
                "copy"
            } else {
                "rename"
            };
            self.line(&format!("{verb} from {from}"));
            self.line(&format!("{verb} to {}", change.path));
        }
        if old.id() == new.id() && !old.id().is_zero() {
            return; // a pure rename or mode change has no content diff
        }
        // git appends the mode when it did not change and the file exists on both sides.
        let same_mode =
            old.mode() == new.mode() && !matches!(delta.status(), Delta::Added | Delta::Deleted);
        let index = format!("index {}..{}", abbrev(&old), abbrev(&new));
        if same_mode {
            self.line(&format!("{index} {}", mode(&new)));
        } else {
            self.line(&index);
        }
        if change.binary {
            return;
        }
        let side = |prefix: &str, exists: bool, path: &str| {
            if exists {
                quote_path(prefix, path)
            } else {
                "/dev/null".to_string()
            }
        };
        self.line(&format!(
            "--- {}",
            side("a/", delta.status() != Delta::Added, old_path)
        ));
        self.line(&format!(
            "+++ {}",
            side("b/", delta.status() != Delta::Deleted, &change.path)
        ));
    }

    /// One line from libgit2's patch printer: hunk headers and +/-/context lines
    /// (file headers are written by [`PatchBuilder::header`]).
    pub(super) fn diff_line(&mut self, origin: char, content: &[u8]) {
        let prefix = match origin {
            '+' | '-' | ' ' => Some(origin),
            'H' | '=' | '>' | '<' => None,
            _ => return,
        };
        let text = String::from_utf8_lossy(content);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        match prefix {
            Some(prefix) => self.line(&format!("{prefix}{text}")),
            // Hunk headers and "\ No newline at end of file" (which libgit2 sends
            // with a leading newline).
            None => {
                for line in text.split('\n').filter(|line| !line.is_empty()) {
                    self.line(line);
                }
            }
        }
    }

    /// Lines that were only counted, not kept (past the limit).
    pub(super) fn count_lines(&mut self, lines: usize) {
        self.patch.total_lines += lines;
    }

    pub(super) fn finish(self) -> Patch {
        self.patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_only_when_ambiguous() {
        assert_eq!(
            quote_path("a/", "dir/fïchier avec espace.txt"),
            "a/dir/fïchier avec espace.txt"
        );
        assert_eq!(quote_path("b/", "new\nline"), "\"b/new\\nline\"");
        assert_eq!(quote_path("a/", "q\"uote"), "\"a/q\\\"uote\"");
    }
}
