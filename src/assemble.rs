//! Assembling a push, whatever side it comes from: the repository opened and
//! named, hooks' silence and the name check applied, the updates read and
//! routed once. One function per input side (git's post-receive, a git
//! replay, Subversion revisions, a forge's push); the CLI and `hookbus
//! webhook` render and deliver what they return.

use crate::config::Config;
use crate::git::{self, HookEnv, ReplayRequest};
use crate::hook::{self, OpenError, Opened, Silenced};
use crate::message::Message;
use crate::route::{Routed, Router};
use crate::svn::{RevisionRange, SvnRepository};
use std::path::Path;

/// Part of the input that could not be assembled; the rest still was.
#[derive(Debug)]
pub enum Problem {
    /// A line of the input, or the ref update it names.
    Input(anyhow::Error),
    /// A revision the repository could not give.
    Repository(anyhow::Error),
}

/// A push assembled: the repository with its routes, the updates routed, and
/// what could not be read. Nothing is read when hooks stay silent for it;
/// `opened.silenced` is then the reason, and it is `None` whenever silence did
/// not apply to this run (replays, svn runs outside a hook).
pub struct Assembled<R> {
    /// The repository, its name, its routes, and whether hooks stay silent.
    pub opened: Opened<R>,
    /// Each update with the routes it goes to.
    pub routed: Vec<Routed>,
    /// What could not be read.
    pub problems: Vec<Problem>,
}

impl<R> Assembled<R> {
    fn nothing(opened: Opened<R>) -> Self {
        Assembled {
            opened,
            routed: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// git's post-receive: the push on `input` (one `OLD NEW REF` line per ref)
/// to the repository `dir` (else `$GIT_DIR` or the current directory).
pub fn git_push(
    config: &Config,
    dir: Option<&Path>,
    env: &HookEnv,
    input: &[u8],
) -> Result<Assembled<git2::Repository>, OpenError> {
    let run = hook::open_git(config, dir, env)?;
    if run.opened.silenced.is_some() {
        return Ok(Assembled::nothing(run.opened));
    }
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    for parsed in git::input::parse(input) {
        match parsed {
            Ok(line) => lines.push(line),
            Err(error) => problems.push(Problem::Input(error.into())),
        }
    }
    let mut routed = Vec::new();
    let opened = &run.opened;
    for result in git::analyze(&opened.repo, lines, &run.context, &opened.router) {
        match result {
            Ok(one) => routed.push(one),
            Err(error) => problems.push(Problem::Input(error.into())),
        }
    }
    Ok(Assembled {
        opened: run.opened,
        routed,
        problems,
    })
}

/// A git replay: what a push of `request`'s range would have sent (also when
/// hooks stay silent for the repository).
pub fn git_replay(
    config: &Config,
    dir: Option<&Path>,
    env: &HookEnv,
    request: &ReplayRequest,
) -> Result<Assembled<git2::Repository>, OpenError> {
    let mut run = hook::open_git(config, dir, env)?;
    run.opened.silenced = None;
    let notifications =
        git::replay(&run.opened.repo, request, &run.context).map_err(OpenError::Input)?;
    let router = &run.opened.router;
    let routed = notifications.into_iter().map(|n| router.route(n)).collect();
    Ok(Assembled {
        opened: run.opened,
        routed,
        problems: Vec::new(),
    })
}

/// Subversion: each revision of `range` of the repository at `path`, oldest
/// first; `hook` when svn's post-commit runs it (hooks' silence applies).
pub fn svn_revisions(
    config: &Config,
    path: &Path,
    name: Option<&str>,
    range: RevisionRange,
    hook: bool,
) -> Result<Assembled<SvnRepository>, OpenError> {
    let mut opened = hook::open_svn(config, path, name)?;
    if !hook {
        opened.silenced = None;
    } else if opened.silenced.is_some() {
        return Ok(Assembled::nothing(opened));
    }
    let mut routed = Vec::new();
    let mut problems = Vec::new();
    let revisions = opened.repo.revisions(range).map_err(OpenError::Input)?;
    for revision in revisions {
        match opened.repo.notifications(revision) {
            Ok(more) => routed.extend(more.into_iter().map(|n| opened.router.route(n))),
            Err(error) => problems.push(Problem::Repository(
                error.context(format!("r{revision} of {}", opened.name)),
            )),
        }
    }
    Ok(Assembled {
        opened,
        routed,
        problems,
    })
}

/// What a forge's push became.
#[derive(Debug)]
pub enum ForgePush {
    /// Hooks stay silent for the repository; nothing was read.
    Silenced(Silenced),
    /// Its messages (none when no route takes it).
    Messages(Vec<Message>),
}

/// A forge's push to the repository named `repo`: refused when the name is
/// unfit for messages, silent where a hook would be, else `render` (from a
/// mirror or the payload, routed by the router it is given) makes the messages.
pub fn forge_push(
    config: &Config,
    repo: &str,
    render: impl FnOnce(&Router) -> anyhow::Result<Vec<Message>>,
) -> anyhow::Result<ForgePush> {
    const FIX: &str = "give it a plain name with a [[webhook.repo]] table";
    if let Some(reason) = hook::silenced(config, repo, true, FIX)? {
        return Ok(ForgePush::Silenced(reason));
    }
    let messages = render(config.router()).map_err(|error| error.context("cannot render"))?;
    Ok(ForgePush::Messages(messages))
}
