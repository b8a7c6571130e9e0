//! Narrowing `svnlook diff` output to some paths while it streams, under the
//! patch limits, counting insertions and deletions per file and noting binary
//! files.
//!
//! svnlook prints one block per path: a header line (`Added: P`, `Modified: P`,
//! `Deleted: P`, `Copied: P (from rev N, S)`, `Index: P`) followed by a line of
//! `=`, or `Property changes on: P` followed by a line of `_`. A header is only
//! recognisable by the line after it, so lines are handled one behind.

use crate::model::{Patch, PatchLimits};
use std::collections::HashMap;

/// Line counts of one file's content diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Lines added.
    pub insertions: usize,
    /// Lines removed.
    pub deletions: usize,
    /// svnlook printed `(Binary files differ)` (svn:mime-type is not text).
    pub binary: bool,
}

/// The part of a revision's diff that belongs to the selected paths.
#[derive(Debug, Default)]
pub struct NarrowedDiff {
    /// The diff of the selected paths, cut to the limits.
    pub patch: Patch,
    /// Keyed by path without a trailing `/`.
    pub stats: HashMap<String, FileStats>,
}

struct Block {
    path: String,
    included: bool,
    properties: bool,
    in_hunks: bool,
}

/// Feeds on diff lines and keeps the selected paths' blocks.
pub struct DiffNarrower<F: Fn(&str) -> bool> {
    include: F,
    limits: PatchLimits,
    pending: Option<String>,
    block: Option<Block>,
    diff: NarrowedDiff,
}

impl<F: Fn(&str) -> bool> DiffNarrower<F> {
    /// Keeps the blocks of paths for which `include` is true.
    pub fn new(include: F, limits: PatchLimits) -> Self {
        DiffNarrower {
            include,
            limits,
            pending: None,
            block: None,
            diff: NarrowedDiff::default(),
        }
    }

    /// Takes the next line of output (without its newline).
    pub fn line(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        if let Some(previous) = self.pending.take() {
            if let Some((path, properties)) = block_header(&previous, &line) {
                self.block = Some(Block {
                    included: (self.include)(&path),
                    path,
                    properties,
                    in_hunks: false,
                });
            }
            self.keep(&previous);
        }
        self.pending = Some(line);
    }

    /// The kept diff, once every line was given.
    pub fn finish(mut self) -> NarrowedDiff {
        if let Some(last) = self.pending.take() {
            self.keep(&last);
        }
        self.diff
    }

    fn keep(&mut self, line: &str) {
        let Some(block) = self.block.as_mut().filter(|block| block.included) else {
            return;
        };
        self.diff.patch.push_line(line, &self.limits);
        if block.properties {
            return;
        }
        let stats = self.diff.stats.entry(block.path.clone()).or_default();
        if line == "(Binary files differ)" {
            stats.binary = true;
        } else if line.starts_with("@@") {
            block.in_hunks = true;
        } else if block.in_hunks && line.starts_with('+') {
            stats.insertions += 1;
        } else if block.in_hunks && line.starts_with('-') {
            stats.deletions += 1;
        }
    }
}

/// The path of a block header and whether it opens a property block, when
/// `line` is a header (decided by the `next` line).
fn block_header(line: &str, next: &str) -> Option<(String, bool)> {
    let underline = |c: char| next.len() >= 60 && next.chars().all(|n| n == c);
    if underline('_') {
        let path = line.strip_prefix("Property changes on: ")?;
        return Some((path.to_string(), true));
    }
    if !underline('=') {
        return None;
    }
    let (kind, rest) = line.split_once(": ")?;
    if !["Added", "Modified", "Deleted", "Copied", "Index"].contains(&kind) {
        return None;
    }
    let path = match kind {
        "Copied" => rest
            .rsplit_once(" (from rev ")
            .map_or(rest, |(path, _)| path),
        _ => rest,
    };
    Some((path.to_string(), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "===================================================================";
    const PROPS: &str = "___________________________________________________________________";

    fn narrow(diff: &str, prefix: &str, max_lines: usize) -> NarrowedDiff {
        let limits = PatchLimits {
            max_lines,
            max_line_length: 100,
        };
        let mut narrower = DiffNarrower::new(|path: &str| path.starts_with(prefix), limits);
        for line in diff.lines() {
            narrower.line(line.as_bytes());
        }
        narrower.finish()
    }

    fn sample() -> String {
        [
            "Modified: a/trunk/README",
            RULE,
            "--- a/trunk/README\t2026 (rev 2)",
            "+++ a/trunk/README\t2026 (rev 3)",
            "@@ -1,2 +1,2 @@",
            " one",
            "-two",
            "+2",
            "+Added: not a header",
            "",
            "Copied: b/trunk/x.bin (from rev 2, b/trunk/y.bin)",
            RULE,
            "(Binary files differ)",
            "",
            "Property changes on: b/trunk/x.bin",
            PROPS,
            "Added: svn:mime-type",
            "## -0,0 +1 ##",
            "+application/octet-stream",
        ]
        .join("\n")
    }

    #[test]
    fn only_the_selected_blocks_are_kept_and_counted() {
        let a = narrow(&sample(), "a/", 1000);
        assert!(a.patch.text.starts_with("Modified: a/trunk/README\n"));
        assert!(!a.patch.text.contains("x.bin"));
        assert_eq!(
            a.stats["a/trunk/README"],
            FileStats {
                insertions: 2,
                deletions: 1,
                binary: false
            }
        );
        let b = narrow(&sample(), "b/", 1000);
        assert!(b
            .patch
            .text
            .starts_with("Copied: b/trunk/x.bin (from rev 2"));
        assert!(b.patch.text.ends_with("+application/octet-stream\n"));
        assert!(b.stats["b/trunk/x.bin"].binary);
        assert_eq!(b.stats["b/trunk/x.bin"].insertions, 0);
    }

    #[test]
    fn the_line_limit_cuts_text_but_not_counts() {
        let a = narrow(&sample(), "a/", 3);
        assert_eq!(a.patch.shown_lines, 3);
        assert_eq!(a.patch.total_lines, 10);
        assert_eq!(a.stats["a/trunk/README"].insertions, 2);
    }
}
