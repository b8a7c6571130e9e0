//! A revision as a commit: the files it touched with their counts, its log
//! and author, and its diff narrowed to one (project, branch) message.

use super::changed::{Action, ChangedPath};
use super::diff::NarrowedDiff;
use super::{GroupKey, SvnRepository};
use crate::model::{
    Commit, CommitSource, FileChange, FileStatus, Notification, PatchLimits, Signature,
};
use anyhow::{Context, Result};

impl SvnRepository {
    /// The commit of revision `number`, narrowed to one group's paths when `only`
    /// is given.
    fn commit(&self, number: u64, only: Option<&GroupKey>, limits: &PatchLimits) -> Result<Commit> {
        let revision = self.revision(number)?;
        let group = only.map(|key| revision.groups.iter().position(|group| group == key));
        let diff = match group {
            Some(None) => NarrowedDiff::default(), // a group this revision does not have
            Some(Some(index)) => self.diff(&revision, Some(index), limits)?,
            None => self.diff(&revision, None, limits)?,
        };
        let paths: Vec<&ChangedPath> = revision
            .changed
            .iter()
            .zip(&revision.group_of_path)
            .filter(|(_, &index)| group.is_none_or(|wanted| wanted == Some(index)))
            .map(|(path, _)| path)
            .collect();
        let mut files = Vec::with_capacity(paths.len());
        for path in &paths {
            let stats = diff
                .stats
                .get(path.path.trim_end_matches('/'))
                .copied()
                .unwrap_or_default();
            let binary_sizes = if stats.binary {
                Some(self.binary_sizes(number, path)?)
            } else {
                None
            };
            files.push(FileChange {
                path: path.path.clone(),
                old_path: path
                    .copied_from
                    .as_ref()
                    .map(|(source, rev)| peg(source, *rev)),
                status: file_status(path),
                binary: stats.binary,
                insertions: stats.insertions,
                deletions: stats.deletions,
                binary_sizes,
            });
        }
        let author = Signature::at(
            revision.author.clone(),
            String::new(),
            chrono::DateTime::parse_from_rfc3339(&revision.date).unwrap_or_default(),
        );
        let mut fields = Vec::new();
        if let Some(key) = only {
            fields.push(("Project".to_string(), key.project.clone()));
        }
        fields.push(("Dirs".to_string(), dirs_changed(&paths).join(" ")));
        Ok(Commit {
            id: rev_id(number),
            parents: vec![rev_id(number.saturating_sub(1))],
            committer: author.clone(),
            author,
            message: revision.log.clone(),
            files,
            patch: diff.patch,
            fields,
        })
    }

    /// Sizes before and after of a binary file, for the stat line.
    fn binary_sizes(&self, number: u64, path: &ChangedPath) -> Result<(u64, u64)> {
        let size = |rev: u64| self.look.file_size(rev, &path.path);
        Ok(match path.action {
            Action::Added => (0, size(number)?),
            Action::Deleted => (size(number - 1)?, 0),
            _ => (size(number - 1)?, size(number)?),
        })
    }
}

impl CommitSource for SvnRepository {
    /// The whole revision `rN`.
    fn load(&self, id: &str, limits: &PatchLimits) -> Result<Commit> {
        self.commit(parse_id(id)?, None, limits)
    }

    fn subject(&self, id: &str) -> Result<String> {
        let revision = self.revision(parse_id(id)?)?;
        Ok(revision.log.lines().next().unwrap_or("").to_string())
    }

    /// The revision as one (project, branch) message shows it: only that group's
    /// paths and diff.
    fn load_for(
        &self,
        notification: &Notification,
        id: &str,
        limits: &PatchLimits,
    ) -> Result<Commit> {
        let key = GroupKey {
            project: notification.project().to_string(),
            refname: notification.update.refname.clone(),
        };
        self.commit(parse_id(id)?, Some(&key), limits)
    }
}

/// `rN`, the id of revision N in messages.
pub(super) fn rev_id(number: u64) -> String {
    format!("r{number}")
}

fn parse_id(id: &str) -> Result<u64> {
    id.strip_prefix('r')
        .and_then(|number| number.parse().ok())
        .with_context(|| format!("{id:?} is not a Subversion revision id (rN)"))
}

/// `path@N`, svn's way of naming a path in a revision.
pub(super) fn peg(path: &str, rev: u64) -> String {
    format!("{}@{rev}", path.trim_end_matches('/'))
}

fn file_status(path: &ChangedPath) -> FileStatus {
    match path.action {
        Action::Added if path.copied_from.is_some() => FileStatus::Copied,
        Action::Added => FileStatus::Added,
        Action::Deleted => FileStatus::Removed,
        Action::Modified => FileStatus::Modified,
        Action::Replaced => FileStatus::Replaced,
        Action::Unchanged => FileStatus::PropertiesChanged,
    }
}

/// Directories whose entries or properties changed, like `svnlook dirs-changed`.
fn dirs_changed(paths: &[&ChangedPath]) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for path in paths {
        let dir = if path.is_dir() && path.properties_changed {
            path.path.clone()
        } else {
            let trimmed = path.path.trim_end_matches('/');
            match trimmed.rfind('/') {
                Some(slash) => trimmed[..=slash].to_string(),
                None => "/".to_string(),
            }
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_r_numbers() {
        assert_eq!(rev_id(5), "r5");
        assert_eq!(parse_id("r5").unwrap(), 5);
        assert!(parse_id("5").is_err());
    }
}
