//! Loading commits from a repository into the model: message (re-encoded),
//! signatures, changed files and a patch in `git log -p` form, cut to the limits
//! while it is read so memory stays bounded.

use crate::model::{Commit, CommitSource, FileChange, FileStatus, Patch, PatchLimits, Signature};
use crate::text::decode_text;
use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset};
use git2::{Delta, DiffFindOptions, DiffOptions, ObjectType, Oid, Repository, Tree};
use std::collections::HashMap;

/// Reads commits of one repository for rendering.
pub struct GitCommits<'r> {
    repo: &'r Repository,
}

impl<'r> GitCommits<'r> {
    /// A commit source over `repo`.
    pub fn new(repo: &'r Repository) -> Self {
        GitCommits { repo }
    }

    fn find(&self, id: &str) -> Result<git2::Commit<'r>> {
        let oid = Oid::from_str_ext(id, self.repo.object_format())
            .with_context(|| format!("{id} is not an object id"))?;
        self.repo
            .find_commit(oid)
            .with_context(|| format!("commit {id} is not in the repository"))
    }
}

impl CommitSource for GitCommits<'_> {
    fn load(&self, id: &str, limits: &PatchLimits) -> Result<Commit> {
        let commit = self.find(id)?;
        let encoding = commit.message_encoding().ok().flatten();
        let parents: Vec<String> = commit.parent_ids().map(|id| id.to_string()).collect();
        let (files, patch) = if commit.parent_count() > 1 {
            // Like `git log -p`, merges show no diff.
            (Vec::new(), Patch::default())
        } else {
            diff_first_parent(self.repo, &commit, limits)
                .with_context(|| format!("cannot diff commit {id}"))?
        };
        let author = signature(&commit.author(), encoding);
        let committer = signature(&commit.committer(), encoding);
        Ok(Commit {
            id: commit.id().to_string(),
            parents,
            author,
            committer,
            message: decode_text(commit.message_raw_bytes(), encoding).into_owned(),
            files,
            patch,
            fields: Vec::new(),
        })
    }

    fn subject(&self, id: &str) -> Result<String> {
        let commit = self.find(id)?;
        let encoding = commit.message_encoding().ok().flatten();
        let message = decode_text(commit.message_raw_bytes(), encoding);
        Ok(message.lines().next().unwrap_or("").to_string())
    }
}

/// A signature in the model, its text decoded like the message it belongs to.
pub(crate) fn signature(sig: &git2::Signature, encoding: Option<&str>) -> Signature {
    let decode = |bytes: &[u8]| decode_text(bytes, encoding).into_owned();
    let when = sig.when();
    let offset = FixedOffset::east_opt(when.offset_minutes() * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    let date = DateTime::from_timestamp(when.seconds(), 0)
        .unwrap_or_default()
        .with_timezone(&offset);
    Signature::at(decode(sig.name_bytes()), decode(sig.email_bytes()), date)
}

fn diff_first_parent(
    repo: &Repository,
    commit: &git2::Commit,
    limits: &PatchLimits,
) -> Result<(Vec<FileChange>, Patch)> {
    let new_tree = commit.tree()?;
    let old_tree = match commit.parent(0) {
        Ok(parent) => Some(parent.tree()?),
        Err(_) => None,
    };
    let mut options = DiffOptions::new();
    options.id_abbrev(7);
    // libgit2 reads every subtree of both sides; naming the changed paths lets
    // it skip the unchanged ones, as git does (this halves a one-commit push).
    let mut changed = Vec::new();
    changed_paths(repo, old_tree.as_ref(), Some(&new_tree), b"", &mut changed)?;
    for path in changed {
        options.pathspec(path);
    }
    options.disable_pathspec_match(true);
    let mut diff =
        repo.diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut options))?;
    // git log finds renames by default (diff.renames); so do we.
    diff.find_similar(Some(DiffFindOptions::new().renames(true)))?;
    let mut files = Vec::with_capacity(diff.deltas().len());
    let mut patch = PatchBuilder::new(*limits);
    for index in 0..diff.deltas().len() {
        let Some(mut file_patch) = git2::Patch::from_diff(&diff, index)? else {
            continue;
        };
        let delta = file_patch.delta();
        let change = file_change(&delta, &file_patch)?;
        patch.header(&delta, &change);
        if change.binary {
            let side = |prefix: &str, exists: bool, path: &str| {
                if exists {
                    format!("{prefix}{path}")
                } else {
                    "/dev/null".to_string()
                }
            };
            let old_path = change.old_path.as_deref().unwrap_or(&change.path);
            patch.line(&format!(
                "Binary files {} and {} differ",
                side("a/", delta.status() != Delta::Added, old_path),
                side("b/", delta.status() != Delta::Deleted, &change.path)
            ));
        } else {
            file_patch.print(&mut |_, _, line| {
                patch.diff_line(line.origin(), line.content());
                true
            })?;
        }
        files.push(change);
    }
    Ok((files, patch.finish()))
}

/// Appends to `out` the paths of the files (blobs, links, submodules) that
/// differ between two trees, reading only subtrees whose ids differ.
fn changed_paths(
    repo: &Repository,
    old: Option<&Tree>,
    new: Option<&Tree>,
    prefix: &[u8],
    out: &mut Vec<Vec<u8>>,
) -> Result<(), git2::Error> {
    let entries = |tree: Option<&Tree>| -> HashMap<Vec<u8>, (Oid, i32, bool)> {
        tree.into_iter()
            .flat_map(|tree| tree.iter())
            .map(|entry| {
                let is_tree = entry.kind() == Some(ObjectType::Tree);
                (
                    entry.name_bytes().to_vec(),
                    (entry.id(), entry.filemode(), is_tree),
                )
            })
            .collect()
    };
    let (old_entries, new_entries) = (entries(old), entries(new));
    let mut names: Vec<&Vec<u8>> = old_entries.keys().chain(new_entries.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (before, after) = (old_entries.get(name), new_entries.get(name));
        if before == after {
            continue;
        }
        let path = [prefix, name].concat();
        let subtree = |side: Option<&(Oid, i32, bool)>| match side {
            Some(&(id, _, true)) => repo.find_tree(id).map(Some),
            _ => Ok(None),
        };
        let (old_subtree, new_subtree) = (subtree(before)?, subtree(after)?);
        if old_subtree.is_some() || new_subtree.is_some() {
            let dir = [path.as_slice(), b"/"].concat();
            changed_paths(repo, old_subtree.as_ref(), new_subtree.as_ref(), &dir, out)?;
        }
        // A file on either side (also when the other side is a directory).
        if before.is_some_and(|e| !e.2) || after.is_some_and(|e| !e.2) {
            out.push(path);
        }
    }
    Ok(())
}

fn lossy_path(file: &git2::DiffFile) -> String {
    String::from_utf8_lossy(file.path_bytes().unwrap_or_default()).into_owned()
}

fn file_change(delta: &git2::DiffDelta, patch: &git2::Patch) -> Result<FileChange> {
    let (_, insertions, deletions) = patch.line_stats()?;
    let old_path = lossy_path(&delta.old_file());
    let new_path = lossy_path(&delta.new_file());
    let status = match delta.status() {
        Delta::Added => FileStatus::Added,
        Delta::Deleted => FileStatus::Removed,
        Delta::Renamed => FileStatus::Renamed,
        Delta::Copied => FileStatus::Copied,
        Delta::Typechange => FileStatus::TypeChanged,
        _ => FileStatus::Modified,
    };
    let moved = matches!(status, FileStatus::Renamed | FileStatus::Copied);
    let binary = delta.flags().is_binary();
    Ok(FileChange {
        path: if status == FileStatus::Removed {
            old_path.clone()
        } else {
            new_path
        },
        old_path: moved.then_some(old_path),
        status,
        binary,
        insertions,
        deletions,
        binary_sizes: binary.then(|| (delta.old_file().size(), delta.new_file().size())),
    })
}

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
struct PatchBuilder {
    limits: PatchLimits,
    patch: Patch,
}

impl PatchBuilder {
    fn new(limits: PatchLimits) -> Self {
        PatchBuilder {
            limits,
            patch: Patch::default(),
        }
    }

    fn line(&mut self, line: &str) {
        self.patch.push_line(line, &self.limits);
    }

    /// The `diff --git` header block of one file, with our own path quoting.
    fn header(&mut self, delta: &git2::DiffDelta, change: &FileChange) {
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
    fn diff_line(&mut self, origin: char, content: &[u8]) {
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

    fn finish(self) -> Patch {
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
