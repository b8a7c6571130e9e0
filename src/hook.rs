//! Opening a repository for a run: its name, the routes in force and whether
//! hooks stay silent for it, decided the same way for git and Subversion.

use crate::config::Config;
use crate::git::{self, HookEnv, PushContext};
use crate::naming;
use crate::route::Router;
use crate::svn::SvnRepository;
use std::fmt;
use std::path::Path;

/// Why opening failed: the repository itself, or the configuration of it.
#[derive(Debug)]
pub enum OpenError {
    /// The repository is missing or cannot be read.
    Repository(anyhow::Error),
    /// Its settings (or the routes) are invalid.
    Config(anyhow::Error),
    /// What was asked of it cannot be read (a revision it lacks, a bad range).
    Input(anyhow::Error),
}

/// Why a hook sends nothing for a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silenced {
    /// `git config hookbus.enabled = false`.
    Disabled,
    /// Its name matches `[repos] skip`.
    Skipped,
}

impl fmt::Display for Silenced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Silenced::Disabled => "git config hookbus.enabled = false",
            Silenced::Skipped => "its name matches [repos] skip",
        })
    }
}

/// A repository opened for a run, with the routes that apply to it.
pub struct Opened<R> {
    /// The repository.
    pub repo: R,
    /// Its name in messages.
    pub name: String,
    /// The configured routes, narrowed to the repository's selection.
    pub router: Router,
    /// Why hooks stay silent for it, if they do (replays still emit).
    pub silenced: Option<Silenced>,
}

/// A git repository opened for a run, and who and what its messages name.
pub struct GitRun {
    /// The repository, its name and its routes.
    pub opened: Opened<git2::Repository>,
    /// The naming context of its notifications.
    pub context: PushContext,
}

/// Opens a git repository (`dir`, else `$GIT_DIR` or the current directory):
/// names it from `git config hookbus.name`, `GL_REPO` or its path, and selects
/// the routes `hookbus.routes` names.
pub fn open_git(config: &Config, dir: Option<&Path>, env: &HookEnv) -> Result<GitRun, OpenError> {
    let repo = git::open(dir).map_err(OpenError::Repository)?;
    let settings = git::settings(&repo).map_err(OpenError::Config)?;
    let router = match &settings.routes {
        Some(names) => config.router().select(names),
        None => config.router().clone(),
    };
    let name = git::repo_name(&repo, &settings, env, config.repos.base.as_deref());
    let context = PushContext {
        repo_name: name.clone(),
        pusher: env.pusher(),
        announce_notes: config.git.announce_notes,
        max_listed: config.limits.max_listed(),
    };
    let silenced = silenced(
        config,
        &name,
        settings.enabled,
        "set a plain one with git config hookbus.name",
    )
    .map_err(OpenError::Config)?;
    let opened = Opened {
        repo,
        name,
        router,
        silenced,
    };
    Ok(GitRun { opened, context })
}

/// Opens a Subversion repository at `path` (as svn passes it to hooks), named
/// `name` when given, else by its path.
pub fn open_svn(
    config: &Config,
    path: &Path,
    name: Option<&str>,
) -> Result<Opened<SvnRepository>, OpenError> {
    let repo = SvnRepository::open(path, &config.svn, name, config.repos.base.as_deref())
        .map_err(OpenError::Repository)?;
    let name = repo.name().to_string();
    Ok(Opened {
        silenced: silenced(
            config,
            &name,
            true,
            "set a plain one with --name or HOOKBUS_REPO_NAME",
        )
        .map_err(OpenError::Config)?,
        router: config.router().clone(),
        repo,
        name,
    })
}

/// Why hooks stay silent for the repository `name`, if they do; a name that
/// would be announced must be fit for the messages (`fix` says where a plain
/// one is set). `enabled` is false when the repository turned hooks off.
pub fn silenced(
    config: &Config,
    name: &str,
    enabled: bool,
    fix: &str,
) -> anyhow::Result<Option<Silenced>> {
    Ok(if !enabled {
        Some(Silenced::Disabled)
    } else if config.repos.is_skipped(name) {
        Some(Silenced::Skipped)
    } else {
        naming::check_name("repository name", name, fix)?;
        None
    })
}
