//! The Subversion side: reads a repository with `svnlook` and turns a revision
//! into one [`Notification`] per (project, branch) it touches, so that every
//! format and route works as for git.
//!
//! Ids are `rN` (`oldrev` = `r(N-1)`, `newrev` = `rN`, the commit `rN`); the
//! plain number is in the `revname` extra, as the seed sent it.

pub mod changed;
mod commit;
pub mod diff;
pub mod layout;
pub mod options;
mod range;
mod split;
pub mod svnlook;

use crate::model::{Change, IdList, Notification, RefKind, RefUpdate, UpdateShape, PROJECT};
use anyhow::{bail, Context, Result};
use changed::{Action, ChangedPath};
use commit::{peg, rev_id};
use layout::Layouts;
pub use range::RevisionRange;
use split::SplitDiff;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use svnlook::Svnlook;

pub use options::SvnOptions;

/// A revision's changed paths and revision properties.
#[derive(Debug)]
struct Revision {
    number: u64,
    changed: Vec<ChangedPath>,
    /// The group of each changed path (an index into `groups`).
    group_of_path: Vec<usize>,
    /// The distinct groups, in the order of their first path.
    groups: Vec<GroupKey>,
    author: String,
    /// svn:date as stored (ISO 8601 UTC); empty when unset.
    date: String,
    log: String,
}

/// What identifies one message of a revision: the project (the repository name
/// for top-level layouts) and the refname.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// One Subversion repository, read through svnlook.
pub struct SvnRepository {
    name: String,
    look: Svnlook,
    layouts: Layouts,
    /// Revisions read so far: each is read once, for its notifications, and
    /// used again while its messages are rendered.
    revisions: RefCell<HashMap<u64, Rc<Revision>>>,
    /// The diff of the revision rendered last, split by group: one `svnlook
    /// diff` serves every message of a revision.
    split: RefCell<Option<SplitDiff>>,
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
            revisions: RefCell::new(HashMap::new()),
            split: RefCell::new(None),
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
        let mut groups: Vec<Group> = revision
            .groups
            .iter()
            .map(|key| Group {
                key: key.clone(),
                paths: Vec::new(),
                root: None,
            })
            .collect();
        for (path, &index) in revision.changed.iter().zip(&revision.group_of_path) {
            let group = &mut groups[index];
            group.paths.push(path);
            let structural = matches!(
                path.action,
                Action::Added | Action::Deleted | Action::Replaced
            );
            if path.is_dir() && structural && self.layouts.place(&path.path).is_root {
                group.root = Some(path);
            }
        }
        groups
    }

    /// Reads a revision's changed paths and properties, once.
    fn revision(&self, number: u64) -> Result<Rc<Revision>> {
        if let Some(cached) = self.revisions.borrow().get(&number) {
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
        let changed = changed::parse(&output.changed)?;
        let mut groups: Vec<GroupKey> = Vec::new();
        let mut index: HashMap<GroupKey, usize> = HashMap::new();
        let group_of_path = changed
            .iter()
            .map(|path| {
                let key = self.key(&self.layouts.place(&path.path));
                *index.entry(key.clone()).or_insert_with(|| {
                    groups.push(key);
                    groups.len() - 1
                })
            })
            .collect();
        let revision = Rc::new(Revision {
            number,
            changed,
            group_of_path,
            groups,
            author: prop(),
            date: prop(),
            log: prop(),
        });
        self.revisions
            .borrow_mut()
            .insert(number, Rc::clone(&revision));
        Ok(revision)
    }
}
