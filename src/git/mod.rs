//! The git side: reads a repository and hook input and produces
//! [`Notification`]s. Plumbing (input parsing, commit loading, the push rule)
//! lives in submodules; this module opens repositories and names them.

pub mod commits;
mod graph;
pub mod input;
mod large;
mod patch;
pub mod push;
pub mod refs;

use crate::model::{Change, IdList, Notification, RefUpdate};
use anyhow::{Context, Result};
use git2::{ObjectFormat, Oid, Repository};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use thiserror::Error;

pub use commits::GitCommits;
pub use push::{analyze, PushContext};

/// Why one ref update could not be turned into a message.
#[derive(Debug, Error)]
pub enum UpdateError {
    #[error(transparent)]
    /// A malformed stdin line.
    Input(#[from] input::InputError),
    #[error(
        "stdin line {line}: unknown revision {id} for {refname}; is this the repository that received the push? (run the hook inside it or pass --repo DIR)"
    )]
    /// An id the repository does not have.
    UnknownRevision {
        /// 1-based stdin line number.
        line: usize,
        /// The id as given.
        id: String,
        /// The ref the line updates.
        refname: String,
    },
    #[error("stdin line {line}: ids must have {expected} hex digits in this repository")]
    /// Ids of the other hash (SHA-1 in a SHA-256 repository, or the reverse).
    WrongIdLength {
        /// 1-based stdin line number.
        line: usize,
        /// Hex digits of an id in this repository.
        expected: usize,
    },
    #[error("stdin line {line}: {refname}: {message}")]
    /// libgit2 failed on this update.
    Git {
        /// 1-based stdin line number.
        line: usize,
        /// The ref the line updates.
        refname: String,
        /// What libgit2 said.
        message: String,
    },
}

impl UpdateError {
    pub(crate) fn git(line: usize, refname: &str, err: &dyn std::fmt::Display) -> Self {
        UpdateError::Git {
            line,
            refname: refname.to_string(),
            message: err.to_string(),
        }
    }
}

/// Number of hex digits of an object id in this repository.
pub(crate) fn hex_len(repo: &Repository) -> usize {
    match repo.object_format() {
        ObjectFormat::Sha1 => 40,
        ObjectFormat::Sha256 => 64,
    }
}

/// Bytes of pack files libgit2 keeps mapped at once. Its defaults (1 GiB windows,
/// 8 GiB in all) let a walk over a large pack map the whole file, and every page
/// it touches counts in the hook's resident memory: 84 MB for 20,000 commits.
const PACK_MAPPED_LIMIT: usize = 16 * 1024 * 1024;

/// Bytes per mapped pack window: small, so that the limit holds many of them.
const PACK_WINDOW_SIZE: usize = 1024 * 1024;

/// Bytes of parsed objects (commits, trees) libgit2 keeps cached. Its default
/// of 256 MiB let rendering a 2,000-commit push keep every tree it diffed.
const OBJECT_CACHE_BYTES: isize = 4 * 1024 * 1024;

/// Sets libgit2's process-wide options, once per process: bounded pack mappings,
/// and no re-hashing of every object read. git does not re-hash on read either
/// (index-pack checked the objects when they were received), and hashing with
/// collision detection was a quarter of the time spent rendering a push.
/// libgit2 refuses repositories whose refs are in reftable (`extensions.refstorage`);
/// their objects read as usual, and [`refs`] reads their refs with `git`.
fn configure_libgit2() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        git2::opts::strict_hash_verification(false);
        // SAFETY: these set plain libgit2 globals; Once makes this the only
        // writer, and it runs before this process opens its first repository.
        // They cannot fail for these options; a failure would only leave
        // libgit2's defaults in force.
        unsafe {
            let _ = git2::opts::set_mwindow_size(PACK_WINDOW_SIZE);
            let _ = git2::opts::set_mwindow_mapped_limit(PACK_MAPPED_LIMIT);
            let _ = git2::opts::set_cache_max_size(OBJECT_CACHE_BYTES);
            let _ = git2::opts::set_extensions(&["refstorage"]);
        }
    });
}

/// Opens the repository a hook runs in (`$GIT_DIR` or the current directory), or
/// `dir` when given. Repositories with reftable refs open too: only their ref
/// reads go through `git` (see [`refs`]).
pub fn open(dir: Option<&Path>) -> Result<Repository> {
    configure_libgit2();
    match dir {
        Some(dir) => Repository::open(dir)
            .with_context(|| format!("{} is not a git repository (check --repo)", dir.display())),
        None => Repository::open_from_env().context(
            "not inside a git repository: run from the repository (hooks do) or pass --repo DIR",
        ),
    }
}

/// `git` run against this repository only, whatever the environment says
/// about repositories (for what libgit2 cannot do: reftable refs, streaming
/// packed blobs).
pub(crate) fn git_command(repo: &Repository) -> Command {
    let mut command = Command::new("git");
    command
        .arg("--git-dir")
        .arg(repo.path())
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Per-repository settings from `git config hookbus.*` (gitolite writes these from
/// `config` lines in gitolite.conf).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoSettings {
    /// `hookbus.name`: the repository's name in messages.
    pub name: Option<String>,
    /// `hookbus.enabled`: false turns hookbus off for this repository.
    pub enabled: bool,
    /// `hookbus.routes`: names of the routes that apply (all when unset).
    pub routes: Option<Vec<String>>,
}

/// Reads `hookbus.*` settings of a repository.
pub fn settings(repo: &Repository) -> Result<RepoSettings> {
    // A snapshot: read once, where a live config looks at every file again
    // for each key.
    let config = (repo.config().and_then(|mut config| config.snapshot()))
        .context("cannot read the repository's git config")?;
    let routes = config.get_string("hookbus.routes").ok().map(|value| {
        value
            .split([',', ' '])
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect()
    });
    let enabled = match config.get_entry("hookbus.enabled") {
        Ok(_) => config
            .get_bool("hookbus.enabled")
            .context("git config hookbus.enabled must be true or false")?,
        Err(_) => true,
    };
    Ok(RepoSettings {
        name: config
            .get_string("hookbus.name")
            .ok()
            .filter(|n| !n.is_empty()),
        enabled,
        routes,
    })
}

/// The environment a hook runs in, as far as naming goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookEnv {
    /// gitolite's logical repository name.
    pub gl_repo: Option<String>,
    /// gitolite's name for the pusher.
    pub gl_user: Option<String>,
    /// The Unix user, when gitolite gives none.
    pub user: Option<String>,
}

impl HookEnv {
    /// Reads `GL_REPO`, `GL_USER` and `USER` from the process environment.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        HookEnv {
            gl_repo: var("GL_REPO"),
            gl_user: var("GL_USER"),
            user: var("USER").or_else(|| var("LOGNAME")),
        }
    }

    /// The pusher: `GL_USER`, else `$USER`, else empty.
    pub fn pusher(&self) -> String {
        self.gl_user
            .clone()
            .or_else(|| self.user.clone())
            .unwrap_or_default()
    }
}

/// The repository's name: `git config hookbus.name`, else `GL_REPO`, else its path
/// relative to `base`, else its directory name; always without `.git`.
pub fn repo_name(
    repo: &Repository,
    settings: &RepoSettings,
    env: &HookEnv,
    base: Option<&Path>,
) -> String {
    if let Some(name) = &settings.name {
        return name.clone();
    }
    if let Some(name) = &env.gl_repo {
        return name.clone();
    }
    let dir: PathBuf = if repo.is_bare() {
        repo.path().to_path_buf()
    } else {
        repo.path().parent().unwrap_or(repo.path()).to_path_buf()
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    crate::naming::name_of_dir(&dir, base)
}

/// One replay request: announce every commit in `OLD..NEW` of `refname`, as if
/// pushed now (refs have moved on since, so the push rule would find nothing).
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// The ref the commits were pushed to, e.g. `refs/heads/master`.
    pub refname: String,
    /// Any revision; all zeros (or empty) for "from the beginning".
    pub oldrev: String,
    /// Any revision the range ends at.
    pub newrev: String,
    /// One notification per commit, oldest first, as if pushed one by one.
    pub each: bool,
}

/// Builds the notifications a replay emits.
pub fn replay(
    repo: &Repository,
    request: &ReplayRequest,
    context: &PushContext,
) -> Result<Vec<Notification>> {
    // Both ends resolved at once: in a reftable repository, by one git.
    let given = |rev: &str| !rev.is_empty() && !input::is_null_id(rev);
    let ends = [request.oldrev.as_str(), request.newrev.as_str()];
    let revs: Vec<&str> = ends.into_iter().filter(|rev| given(rev)).collect();
    let mut objects = refs::resolve_all(repo, &revs)?.into_iter();
    let mut resolved = |rev: &str| {
        given(rev).then(|| objects.next()).flatten().map(|object| {
            let id = object.id().to_string();
            (object, id)
        })
    };
    let old = resolved(&request.oldrev);
    let (new_object, new_id) = resolved(&request.newrev).with_context(|| {
        format!(
            "NEWREV {:?} is null; replay needs something to announce",
            request.newrev
        )
    })?;
    let to_commit = |object: &git2::Object| object.peel_to_commit().map(|c| c.id()).ok();
    let new_commit = to_commit(&new_object)
        .with_context(|| format!("{} does not lead to a commit", request.newrev))?;
    let old_commit = old.as_ref().and_then(|(object, _)| to_commit(object));
    let null = "0".repeat(hex_len(repo));
    let ids = graph::walk(repo, &[new_commit], old_commit.as_slice())?;
    let keep = context.max_listed;
    let base = |update: RefUpdate, commits: Vec<Oid>| Notification {
        new_commits: IdList::collect(commits.into_iter().map(|id| id.to_string()), keep),
        ..Notification::new(&context.repo_name, &context.pusher, update)
    };
    if request.each {
        let mut notifications = Vec::with_capacity(ids.len());
        for id in ids.into_iter().rev() {
            let commit = repo.find_commit(id)?;
            let parent = commit.parent_id(0).ok();
            let update = RefUpdate {
                refname: request.refname.clone(),
                oldrev: parent.map_or_else(|| null.clone(), |p| p.to_string()),
                newrev: id.to_string(),
                kind: push::ref_kind(&request.refname, Some(git2::ObjectType::Commit)),
                change: if parent.is_some() {
                    Change::Update
                } else {
                    Change::Create
                },
                shape: parent.map(|_| crate::model::UpdateShape::FastForward),
            };
            notifications.push(base(update, vec![id]));
        }
        return Ok(notifications);
    }
    let shape = match old_commit {
        Some(old) => Some(push::shape(repo, old, new_commit)?),
        None => None,
    };
    let update = RefUpdate {
        refname: request.refname.clone(),
        oldrev: old.map_or_else(|| null.clone(), |(_, id)| id),
        newrev: new_id,
        kind: push::ref_kind(
            &request.refname,
            Some(new_object.kind().unwrap_or(git2::ObjectType::Commit)),
        ),
        change: if old_commit.is_some() {
            Change::Update
        } else {
            Change::Create
        },
        shape,
    };
    Ok(vec![base(update, ids)])
}
