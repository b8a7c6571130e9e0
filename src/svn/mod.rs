//! The Subversion side: reads a repository with `svnlook` and turns a revision
//! into one [`Notification`] per (project, branch) it touches, so that every
//! format and route works as for git.
//!
//! Ids are `rN` (`oldrev` = `r(N-1)`, `newrev` = `rN`, the commit `rN`); the
//! plain number is in the `revname` extra, as the seed sent it.

pub mod changed;
pub mod diff;
pub mod layout;
pub mod options;
pub mod svnlook;

use crate::model::{
    Change, Commit, CommitSource, FileChange, FileStatus, IdList, Notification, PatchLimits,
    RefKind, RefUpdate, Signature, UpdateShape, PROJECT,
};
use anyhow::{bail, Context, Result};
use changed::{Action, ChangedPath};
use diff::DiffNarrower;
use layout::Layouts;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use svnlook::Svnlook;

pub use options::SvnOptions;

/// A revision's changed paths and revision properties.
#[derive(Debug)]
struct Revision {
    number: u64,
    changed: Vec<ChangedPath>,
    author: String,
    /// svn:date as stored (ISO 8601 UTC); empty when unset.
    date: String,
    log: String,
}

/// What identifies one message of a revision: the project (the repository name
/// for top-level layouts) and the refname.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupKey {
    project: String,
    refname: String,
}

/// The changed paths of one (project, branch) of a revision.
struct Group<'r> {
    key: GroupKey,
    paths: Vec<&'r ChangedPath>,
    /// The branch directory itself, when it was added, deleted or replaced.
    root: Option<&'r ChangedPath>,
}

/// An inclusive range of revisions to replay; `to` `None` means the youngest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionRange {
    /// The first revision.
    pub from: u64,
    /// The last revision; `None` for the youngest.
    pub to: Option<u64>,
}

impl RevisionRange {
    /// Parses `FROM`, `FROM:TO` or `FROM:HEAD` (an `r` before a number is allowed).
    pub fn parse(text: &str) -> Result<RevisionRange> {
        let number = |part: &str| -> Result<u64> {
            part.strip_prefix('r').unwrap_or(part).parse().with_context(|| {
                format!("bad revision {part:?} in {text:?}: use FROM, FROM:TO or FROM:HEAD, e.g. 3:7")
            })
        };
        let range = match text.split_once(':') {
            None => {
                let rev = number(text)?;
                RevisionRange {
                    from: rev,
                    to: Some(rev),
                }
            }
            Some((from, "HEAD")) => RevisionRange {
                from: number(from)?,
                to: None,
            },
            Some((from, to)) => RevisionRange {
                from: number(from)?,
                to: Some(number(to)?),
            },
        };
        if range.to.is_some_and(|to| to < range.from) {
            bail!("revision range {text:?} runs backwards: give FROM:TO with FROM <= TO");
        }
        Ok(range)
    }
}

/// One Subversion repository, read through svnlook.
pub struct SvnRepository {
    name: String,
    look: Svnlook,
    layouts: Layouts,
    /// The revision read last: a hook's messages all come from one revision.
    cache: RefCell<Option<Rc<Revision>>>,
}

impl SvnRepository {
    /// Opens the repository at `path` (as svn passes it to hooks). Its name is
    /// `name` when given, else its path below `base`, else its directory name.
    pub fn open(
        path: &Path,
        options: &SvnOptions,
        name: Option<&str>,
        base: Option<&Path>,
    ) -> Result<SvnRepository> {
        if !path.join("format").is_file() || !path.join("db").is_dir() {
            bail!(
                "{} is not a Subversion repository (give the repository directory, as svn passes it to hooks)",
                path.display()
            );
        }
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        Ok(SvnRepository {
            name: name.map_or_else(|| crate::naming::name_of_dir(&path, base), str::to_string),
            look: Svnlook::new(&options.svnlook, &options.locale, &path),
            layouts: Layouts::compile(&options.layouts)?,
            cache: RefCell::new(None),
        })
    }

    /// The repository's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The newest revision.
    pub fn youngest(&self) -> Result<u64> {
        let output = self.look.output("youngest", &[])?;
        let text = String::from_utf8_lossy(&output);
        text.trim()
            .parse()
            .with_context(|| format!("svnlook youngest printed {text:?}"))
    }

    /// The revisions of a range, oldest first, checked against the repository.
    pub fn revisions(&self, range: RevisionRange) -> Result<std::ops::RangeInclusive<u64>> {
        let youngest = self.youngest()?;
        let to = range.to.unwrap_or(youngest);
        if to > youngest || range.from == 0 {
            bail!(
                "{} has revisions 1 to {youngest}; give a range inside them",
                self.name
            );
        }
        Ok(range.from..=to)
    }

    /// One notification per (project, branch) the revision touches.
    pub fn notifications(&self, number: u64) -> Result<Vec<Notification>> {
        let revision = self.revision(number)?;
        let mut groups = self.groups(&revision);
        if groups.is_empty() {
            // A revision that changed nothing still has an author and a log.
            groups.push(Group {
                key: self.key(&self.layouts.place("")),
                paths: Vec::new(),
                root: None,
            });
        }
        Ok(groups
            .iter()
            .map(|group| self.notification(&revision, group))
            .collect())
    }

    fn notification(&self, revision: &Revision, group: &Group) -> Notification {
        let number = revision.number;
        let change = match group.root.map(|root| root.action) {
            Some(Action::Added | Action::Replaced) => Change::Create,
            Some(Action::Deleted) => Change::Delete,
            _ => Change::Update,
        };
        let refname = &group.key.refname;
        let kind = if refname.starts_with("refs/heads/") {
            RefKind::Branch
        } else if refname.starts_with("refs/tags/") {
            RefKind::LightweightTag
        } else {
            RefKind::Other
        };
        let mut extra = vec![
            (PROJECT.to_string(), group.key.project.clone()),
            ("revname".to_string(), number.to_string()),
        ];
        if let Some((source, rev)) = group.root.and_then(|root| root.copied_from.as_ref()) {
            extra.push(("copied-from".to_string(), peg(source, *rev)));
        }
        let update = RefUpdate {
            refname: refname.clone(),
            oldrev: rev_id(number.saturating_sub(1)),
            newrev: rev_id(number),
            kind,
            change,
            shape: (change == Change::Update).then_some(UpdateShape::FastForward),
        };
        Notification {
            new_commits: IdList::collect([rev_id(number)], 1),
            extra,
            ..Notification::new(&self.name, &revision.author, update)
        }
    }

    fn key(&self, placement: &layout::Placement) -> GroupKey {
        GroupKey {
            project: placement
                .project
                .clone()
                .unwrap_or_else(|| self.name.clone()),
            refname: placement.refname.clone(),
        }
    }

    /// The revision's paths grouped by (project, refname), in path order.
    fn groups<'r>(&self, revision: &'r Revision) -> Vec<Group<'r>> {
        let mut groups: Vec<Group> = Vec::new();
        for path in &revision.changed {
            let placement = self.layouts.place(&path.path);
            let key = self.key(&placement);
            let index = match groups.iter().position(|group| group.key == key) {
                Some(index) => index,
                None => {
                    groups.push(Group {
                        key,
                        paths: Vec::new(),
                        root: None,
                    });
                    groups.len() - 1
                }
            };
            let group = &mut groups[index];
            group.paths.push(path);
            let structural = matches!(
                path.action,
                Action::Added | Action::Deleted | Action::Replaced
            );
            if placement.is_root && path.is_dir() && structural {
                group.root = Some(path);
            }
        }
        groups
    }

    /// Reads a revision's changed paths and properties (the last one is cached).
    fn revision(&self, number: u64) -> Result<Rc<Revision>> {
        if let Some(cached) = self.cache.borrow().as_ref().filter(|r| r.number == number) {
            return Ok(Rc::clone(cached));
        }
        let output = self
            .look
            .changes_and_revprops(number, &["svn:author", "svn:date", "svn:log"])
            .with_context(|| format!("cannot read r{number}"))?;
        let mut props = output.revprops.into_iter().map(|value| {
            let bytes = value.unwrap_or_default();
            crate::text::decode_text(&bytes, None).into_owned()
        });
        let mut prop = || props.next().unwrap_or_default();
        let revision = Rc::new(Revision {
            number,
            changed: changed::parse(&output.changed)?,
            author: prop(),
            date: prop(),
            log: prop(),
        });
        *self.cache.borrow_mut() = Some(Rc::clone(&revision));
        Ok(revision)
    }

    /// The commit of revision `number`, narrowed to one group's paths when `only`
    /// is given.
    fn commit(&self, number: u64, only: Option<&GroupKey>, limits: &PatchLimits) -> Result<Commit> {
        let revision = self.revision(number)?;
        let belongs =
            |path: &str| only.is_none_or(|key| self.key(&self.layouts.place(path)) == *key);
        let rev = number.to_string();
        let mut narrower = DiffNarrower::new(belongs, *limits);
        self.look
            .for_each_line("diff", &["--diff-copy-from", "-r", &rev], |line| {
                narrower.line(line)
            })?;
        let diff = narrower.finish();
        let paths: Vec<&ChangedPath> = revision
            .changed
            .iter()
            .filter(|path| belongs(&path.path))
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
fn rev_id(number: u64) -> String {
    format!("r{number}")
}

fn parse_id(id: &str) -> Result<u64> {
    id.strip_prefix('r')
        .and_then(|number| number.parse().ok())
        .with_context(|| format!("{id:?} is not a Subversion revision id (rN)"))
}

/// `path@N`, svn's way of naming a path in a revision.
fn peg(path: &str, rev: u64) -> String {
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
    fn ranges_parse_and_bad_ones_say_how_to_write_them() {
        let range = |from, to| RevisionRange { from, to };
        assert_eq!(RevisionRange::parse("5").unwrap(), range(5, Some(5)));
        assert_eq!(RevisionRange::parse("r3:7").unwrap(), range(3, Some(7)));
        assert_eq!(RevisionRange::parse("3:HEAD").unwrap(), range(3, None));
        let err = RevisionRange::parse("x:7").unwrap_err().to_string();
        assert!(err.contains("use FROM, FROM:TO or FROM:HEAD"), "{err}");
        assert!(RevisionRange::parse("7:3").is_err());
    }

    #[test]
    fn ids_are_r_numbers() {
        assert_eq!(rev_id(5), "r5");
        assert_eq!(parse_id("r5").unwrap(), 5);
        assert!(parse_id("5").is_err());
    }
}
