//! Loading commits from a repository into the model: message (re-encoded),
//! signatures, changed files and a patch in `git log -p` form, cut to the limits
//! while it is read so memory stays bounded.

use super::large;
use super::patch::PatchBuilder;
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
    let odb = repo.odb()?;
    for index in 0..diff.deltas().len() {
        let delta = diff.get_delta(index).expect("delta index in range");
        let sizes =
            [delta.old_file().id(), delta.new_file().id()].map(|id| large::blob_size(&odb, id));
        if sizes
            .iter()
            .flatten()
            .any(|&size| size > large::LARGE_BLOB_BYTES)
        {
            let sizes = sizes.map(Option::unwrap_or_default);
            files.push(large_file(repo, &odb, &delta, sizes, &mut patch)?);
            continue;
        }
        let Some(mut file_patch) = git2::Patch::from_diff(&diff, index)? else {
            continue;
        };
        let delta = file_patch.delta();
        let (_, insertions, deletions) = file_patch.line_stats()?;
        let binary = delta.flags().is_binary();
        let sizes = binary.then(|| (delta.old_file().size(), delta.new_file().size()));
        let change = file_change(&delta, insertions, deletions, sizes);
        patch.header(&delta, &change);
        if change.binary {
            patch.binary_line(&delta, &change);
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

/// A file of the commit: its paths, status and line counts; `binary_sizes`
/// (before, after) for a binary file.
fn file_change(
    delta: &git2::DiffDelta,
    insertions: usize,
    deletions: usize,
    binary_sizes: Option<(u64, u64)>,
) -> FileChange {
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
    FileChange {
        path: if status == FileStatus::Removed {
            old_path.clone()
        } else {
            new_path
        },
        old_path: moved.then_some(old_path),
        status,
        binary: binary_sizes.is_some(),
        insertions,
        deletions,
        binary_sizes,
    }
}

/// A file over [`large::LARGE_BLOB_BYTES`]: an added or deleted one streamed
/// into the patch (every line counted, only those the limits keep held); a
/// changed one described, since diffing it would hold both versions whole.
fn large_file(
    repo: &Repository,
    odb: &git2::Odb,
    delta: &git2::DiffDelta,
    [old_size, new_size]: [u64; 2],
    patch: &mut PatchBuilder,
) -> Result<FileChange> {
    let (id, prefix) = match delta.status() {
        Delta::Added => (delta.new_file().id(), b'+'),
        Delta::Deleted => (delta.old_file().id(), b'-'),
        _ => {
            let change = file_change(delta, 0, 0, None);
            patch.header(delta, &change);
            patch.line(&format!(
                "[hookbus: not diffed: {old_size} bytes before, {new_size} after; files over {} bytes are not compared]",
                large::LARGE_BLOB_BYTES
            ));
            return Ok(change);
        }
    };
    let stream = large::BlobStream::open(repo, odb, id)?;
    if stream.binary {
        let change = file_change(delta, 0, 0, Some((old_size, new_size)));
        patch.header(delta, &change);
        patch.binary_line(delta, &change);
        return Ok(change);
    }
    let mut change = file_change(delta, 0, 0, None);
    patch.header(delta, &change);
    let hunk_header = patch.reserve_line();
    let (limits, wanted) = (patch.limits, patch.wants_text());
    let mut kept = 0;
    let (lines, no_newline) = stream.lines(prefix, &limits, wanted, |line| {
        kept += 1;
        patch.clipped_line(line)
    })?;
    // Lines past the limit were only counted by the stream.
    patch.count_lines(lines - kept);
    let counts = if lines == 1 {
        String::new()
    } else {
        format!(",{lines}")
    };
    patch.fill_line(
        hunk_header,
        &match prefix {
            b'+' => format!("@@ -0,0 +1{counts} @@"),
            _ => format!("@@ -1{counts} +0,0 @@"),
        },
    );
    if no_newline {
        patch.line("\\ No newline at end of file");
    }
    if prefix == b'+' {
        change.insertions = lines;
    } else {
        change.deletions = lines;
    }
    Ok(change)
}
