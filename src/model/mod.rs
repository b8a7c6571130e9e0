//! The shared domain model: what a push (or an SVN revision) means, independent of
//! where it came from and of how it will be rendered.
//!
//! The git side and the SVN side both produce [`Notification`]s; rendering and routing
//! only ever look at these types.

mod commit;

pub use commit::{
    clip_line, AnnotatedTag, Commit, FileChange, FileStatus, IdList, Patch, PatchLimits, Signature,
};
use serde::Serialize;

/// The kind of ref that changed, decided by object type and namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefKind {
    /// A commit under `refs/heads/`.
    Branch,
    /// A commit under `refs/tags/`.
    LightweightTag,
    /// A tag object, in any namespace.
    AnnotatedTag,
    /// A `refs/notes/` ref; not announced unless configured.
    Notes,
    /// Anything else: `refs/remotes/`, `refs/changes/`, refs to trees or blobs.
    Other,
}

impl RefKind {
    /// The stable name used in messages, config filters and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::LightweightTag => "tag",
            RefKind::AnnotatedTag => "annotated-tag",
            RefKind::Notes => "notes",
            RefKind::Other => "other",
        }
    }

    /// Every kind, for validating config filters.
    pub const ALL: [RefKind; 5] = [
        RefKind::Branch,
        RefKind::LightweightTag,
        RefKind::AnnotatedTag,
        RefKind::Notes,
        RefKind::Other,
    ];
}

/// Whether the ref was created, moved or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The ref did not exist before.
    Create,
    /// The ref moved.
    Update,
    /// The ref was removed.
    Delete,
}

impl Change {
    /// The stable name used in messages, config filters and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Delete => "delete",
        }
    }
}

/// How an update moved the ref relative to its old value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateShape {
    /// OLD is an ancestor of NEW.
    FastForward,
    /// NEW is an ancestor of OLD: commits were only removed.
    Rewind,
    /// Neither is an ancestor of the other (a forced push that rewrote history).
    NonFastForward,
}

impl UpdateShape {
    /// The stable name used in messages, config filters and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateShape::FastForward => "fast-forward",
            UpdateShape::Rewind => "rewind",
            UpdateShape::NonFastForward => "non-fast-forward",
        }
    }
}

/// One line of post-receive input (or one SVN branch touched by a revision),
/// classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The full refname, e.g. `refs/heads/master`.
    pub refname: String,
    /// Full hex id; all zeros on create.
    pub oldrev: String,
    /// Full hex id; all zeros on delete.
    pub newrev: String,
    /// What kind of ref it is.
    pub kind: RefKind,
    /// Created, moved or deleted.
    pub change: Change,
    /// Set for updates whose old and new values are both commits.
    pub shape: Option<UpdateShape>,
}

impl RefUpdate {
    /// The short name: `master` for `refs/heads/master`, `v1` for `refs/tags/v1`,
    /// the full refname otherwise.
    pub fn short_name(&self) -> &str {
        ["refs/heads/", "refs/tags/"]
            .iter()
            .find_map(|prefix| self.refname.strip_prefix(prefix))
            .unwrap_or(&self.refname)
    }

    /// The branch name for branches, else empty (used by `{branch}` in destinations).
    pub fn branch(&self) -> &str {
        self.refname.strip_prefix("refs/heads/").unwrap_or("")
    }
}

/// Where the commits of a notification come from; implemented by the git and SVN
/// sides so that rendering can load full commits lazily, one at a time, and stay
/// within bounded memory however large the push.
pub trait CommitSource {
    /// Loads one commit with its file list and a patch cut to `limits` (the
    /// total line count is still given).
    fn load(&self, id: &str, limits: &PatchLimits) -> anyhow::Result<Commit>;

    /// The first line of a commit's message, without loading its patch.
    fn subject(&self, id: &str) -> anyhow::Result<String>;

    /// Loads a commit as `notification` shows it. A source whose commits span
    /// several notifications (an SVN revision touching two branches) narrows the
    /// files and patch to the notification's part; by default the whole commit.
    fn load_for(
        &self,
        _notification: &Notification,
        id: &str,
        limits: &PatchLimits,
    ) -> anyhow::Result<Commit> {
        self.load(id, limits)
    }
}

/// Everything one message is about: a classified ref update and the commits it
/// announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Logical repository name (gitolite's `GL_REPO`, a configured name, or the
    /// directory name).
    pub repo: String,
    /// Who pushed (`GL_USER`, else `$USER`); empty when unknown.
    pub pusher: String,
    /// The ref update this message is about.
    pub update: RefUpdate,
    /// New commits this message announces, newest first (as `git log` prints them).
    pub new_commits: IdList,
    /// Commits now on the ref that were already in the repository.
    pub known_commits: IdList,
    /// Commits that were on the ref and are now reachable from nothing.
    pub discarded_commits: IdList,
    /// Commits that left the ref but are still reachable from another ref.
    pub omitted_commits: IdList,
    /// The tag object, for annotated tags.
    pub tag: Option<AnnotatedTag>,
    /// Extra `key: value` facts from the input side (SVN's project, revname …),
    /// rendered in text bodies, JSON and headers.
    pub extra: Vec<(String, String)>,
}

impl Notification {
    /// A notification of `update` with no commits listed yet and no extras.
    pub fn new(repo: &str, pusher: &str, update: RefUpdate) -> Self {
        Notification {
            repo: repo.to_string(),
            pusher: pusher.to_string(),
            update,
            new_commits: IdList::default(),
            known_commits: IdList::default(),
            discarded_commits: IdList::default(),
            omitted_commits: IdList::default(),
            tag: None,
            extra: Vec::new(),
        }
    }

    /// The value of the extra fact `key`, if the input side gave one.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// The Subversion project the notification is about; empty for git.
    pub fn project(&self) -> &str {
        self.extra(PROJECT).unwrap_or("")
    }
}

/// The extra fact naming a Subversion project.
pub const PROJECT: &str = "project";
