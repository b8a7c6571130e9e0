//! One `svnlook diff` per revision, split among the revision's messages: a
//! revision touching 500 projects used to run svnlook 500 times.

use super::diff::{DiffSplitter, NarrowedDiff};
use super::{Revision, SvnRepository};
use crate::model::PatchLimits;
use anyhow::Result;

/// One revision's diff split among its groups; each group's part is taken
/// once (a group asked for again, or one over the budget, reads its own).
pub(super) struct SplitDiff {
    number: u64,
    limits: PatchLimits,
    groups: Vec<Option<NarrowedDiff>>,
}

/// Text bytes the split diff of one revision may hold for all its groups.
const SPLIT_BUDGET_BYTES: usize = 16 * 1024 * 1024;

impl SvnRepository {
    /// The diff of one group of a revision (of all of it with `None`): taken
    /// from the revision's split diff, which is made by one `svnlook diff` the
    /// first time any group asks.
    pub(super) fn diff(
        &self,
        revision: &Revision,
        only: Option<usize>,
        limits: &PatchLimits,
    ) -> Result<NarrowedDiff> {
        let Some(group) = only else {
            return self
                .run_diff(revision, 1, |_| Some(0), limits, usize::MAX)
                .map(one);
        };
        let mut split = self.split.borrow_mut();
        let fresh = split
            .as_ref()
            .is_none_or(|split| split.number != revision.number || split.limits != *limits);
        if fresh && revision.groups.len() > 1 {
            let groups = self.run_diff(
                revision,
                revision.groups.len(),
                |path| self.group_index(revision, path),
                limits,
                SPLIT_BUDGET_BYTES,
            )?;
            *split = Some(SplitDiff {
                number: revision.number,
                limits: *limits,
                groups: groups.into_iter().map(Some).collect(),
            });
        }
        let taken = split
            .as_mut()
            .filter(|split| split.number == revision.number && split.limits == *limits)
            .and_then(|split| split.groups.get_mut(group)?.take())
            .filter(|diff| !diff.overflowed);
        drop(split);
        match taken {
            Some(diff) => Ok(diff),
            None => self
                .run_diff(
                    revision,
                    1,
                    |path| (self.group_index(revision, path) == Some(group)).then_some(0),
                    limits,
                    usize::MAX,
                )
                .map(one),
        }
    }

    /// Runs `svnlook diff` on a revision, splitting it among `groups` groups.
    fn run_diff(
        &self,
        revision: &Revision,
        groups: usize,
        group_of: impl Fn(&str) -> Option<usize>,
        limits: &PatchLimits,
        budget: usize,
    ) -> Result<Vec<NarrowedDiff>> {
        let rev = revision.number.to_string();
        let mut splitter = DiffSplitter::new(groups, group_of, *limits, budget);
        self.look
            .for_each_line("diff", &["--diff-copy-from", "-r", &rev], |line| {
                splitter.line(line)
            })?;
        Ok(splitter.finish())
    }

    /// The group a path of the diff belongs to.
    fn group_index(&self, revision: &Revision, path: &str) -> Option<usize> {
        let key = self.key(&self.layouts.place(path));
        revision.groups.iter().position(|group| *group == key)
    }
}

/// The only group's diff of a one-group split.
fn one(mut diffs: Vec<NarrowedDiff>) -> NarrowedDiff {
    diffs.pop().unwrap_or_default()
}
