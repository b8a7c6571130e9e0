//! A forge's push payload as the shared model: the same [`Notification`] a
//! hook builds for a ref update, and the listed commits as a
//! [`CommitSource`] (messages and file lists; the payload has no diffs).

use super::forge::{ListedCommit, Person, Push, GITHUB_MAX_LISTED};
use crate::git::input::is_null_id;
use crate::model::{
    Change, Commit, CommitSource, FileChange, FileStatus, IdList, Notification, Patch, PatchLimits,
    RefKind, RefUpdate, Signature, UpdateShape,
};
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;

/// The notification for a push, under the hookbus name `repo`.
pub fn notification(push: &Push, repo: &str) -> Notification {
    let change = if is_null_id(&push.before) {
        Change::Create
    } else if is_null_id(&push.after) {
        Change::Delete
    } else {
        Change::Update
    };
    // The payload cannot tell an annotated tag from a lightweight one, nor a
    // rewind from a forced push; a mirror can.
    let kind = match push.refname.split('/').take(2).collect::<Vec<_>>()[..] {
        ["refs", "heads"] => RefKind::Branch,
        ["refs", "tags"] => RefKind::LightweightTag,
        ["refs", "notes"] => RefKind::Notes,
        _ => RefKind::Other,
    };
    let shape = match (change, push.forced) {
        (Change::Update, Some(true)) => Some(UpdateShape::NonFastForward),
        (Change::Update, Some(false)) => Some(UpdateShape::FastForward),
        _ => None,
    };
    let (new, known): (Vec<&ListedCommit>, Vec<&ListedCommit>) = if change == Change::Delete {
        (Vec::new(), Vec::new())
    } else {
        push.commits.iter().partition(|commit| commit.distinct)
    };
    let ids = |list: Vec<&ListedCommit>| {
        let keep = list.len();
        IdList::collect(list.into_iter().map(|commit| commit.id.clone()), keep)
    };
    let mut extra = Vec::new();
    if let Some(note) = truncation_note(push) {
        extra.push(("forge-commits".to_string(), note));
    }
    Notification {
        repo: repo.to_string(),
        pusher: push.pusher.clone(),
        update: RefUpdate {
            refname: push.refname.clone(),
            oldrev: push.before.clone(),
            newrev: push.after.clone(),
            kind,
            change,
            shape,
        },
        new_commits: ids(new),
        known_commits: ids(known),
        discarded_commits: IdList::default(),
        omitted_commits: IdList::default(),
        tag: None,
        extra,
    }
}

/// `N of M listed by the forge` when the forge cut its commit list.
fn truncation_note(push: &Push) -> Option<String> {
    let listed = push.commits.len();
    match push.total {
        Some(total) if total > listed => Some(format!("{listed} of {total} listed by the forge")),
        None if listed >= GITHUB_MAX_LISTED => {
            Some(format!("{listed} of {listed} or more listed by the forge"))
        }
        _ => None,
    }
}

/// The commits a payload lists, loadable like a repository's.
pub struct PayloadCommits {
    commits: HashMap<String, ListedCommit>,
}

impl PayloadCommits {
    /// The listed commits of `push`.
    pub fn new(push: &Push) -> Self {
        let commits = push
            .commits
            .iter()
            .map(|commit| (commit.id.clone(), commit.clone()))
            .collect();
        PayloadCommits { commits }
    }

    fn get(&self, id: &str) -> Result<&ListedCommit> {
        self.commits
            .get(id)
            .ok_or_else(|| anyhow!("commit {id} is not in the payload"))
    }
}

impl CommitSource for PayloadCommits {
    fn load(&self, id: &str, _limits: &PatchLimits) -> Result<Commit> {
        let listed = self.get(id)?;
        let date = chrono::DateTime::parse_from_rfc3339(&listed.timestamp)
            .with_context(|| format!("commit {id}: bad timestamp {:?}", listed.timestamp))?;
        let signature =
            |person: &Person| Signature::at(person.name.clone(), person.email.clone(), date);
        let files = [
            (&listed.added, FileStatus::Added),
            (&listed.removed, FileStatus::Removed),
            (&listed.modified, FileStatus::Modified),
        ]
        .into_iter()
        .flat_map(|(paths, status)| {
            paths.iter().map(move |path| FileChange {
                path: path.clone(),
                old_path: None,
                status,
                binary: false,
                insertions: 0,
                deletions: 0,
                binary_sizes: None,
            })
        })
        .collect::<Vec<_>>();
        let mut fields = Vec::new();
        if !files.is_empty() {
            fields.push((
                "Files".to_string(),
                "as listed by the forge, without line counts".to_string(),
            ));
        }
        Ok(Commit {
            id: listed.id.clone(),
            parents: Vec::new(),
            author: signature(&listed.author),
            committer: signature(listed.committer.as_ref().unwrap_or(&listed.author)),
            message: listed.message.clone(),
            files,
            patch: Patch::default(),
            fields,
        })
    }

    fn subject(&self, id: &str) -> Result<String> {
        Ok(self
            .get(id)?
            .message
            .lines()
            .next()
            .unwrap_or("")
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::config::ForgeKind;
    use crate::webhook::forge::parse_push;

    #[test]
    fn gitlabs_documented_push_says_its_list_was_cut() {
        let body = include_bytes!("../../tests/fixtures/webhook/gitlab-push.json");
        let push = parse_push(ForgeKind::Gitlab, body).unwrap();
        let notification = notification(&push, "diaspora");
        assert_eq!(notification.update.change, Change::Update);
        assert_eq!(notification.update.shape, None);
        assert_eq!(notification.pusher, "jsmith");
        assert_eq!(
            notification.new_commits.ids,
            [
                "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"
            ]
        );
        assert_eq!(
            notification.extra,
            [(
                "forge-commits".to_string(),
                "2 of 4 listed by the forge".to_string()
            )]
        );
        let commit = PayloadCommits::new(&push)
            .load(
                &notification.new_commits.ids[1],
                &PatchLimits {
                    max_lines: 10,
                    max_line_length: 80,
                },
            )
            .unwrap();
        assert_eq!(commit.author.date, "2011-12-12T14:27:31+02:00");
        assert_eq!(commit.committer, commit.author);
        assert_eq!(commit.files.len(), 2);
    }
}
