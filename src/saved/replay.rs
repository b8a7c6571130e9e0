//! Running kept pushes again, as their hooks would have run: for git on a
//! view of the repository with the kept refs (its objects shared through
//! `objects/info/alternates`, `hookbus.name` fixed to the name it had), with
//! the kept stdin and naming environment, bounded in time.

use super::{
    absolute, HookCall, KeptPushes, ReplayReport, SavedPush, DAMAGED_SUFFIX, NAMING_ENV,
    REPLAY_BOUND, REPLAY_ENV, VIEW_SUFFIX,
};
use crate::child::{Bounded, ChildError};
use crate::git::{self, HookEnv};
use crate::private_file::sync_dir;
use anyhow::{Context, Result};
use std::fs::{self, TryLockError};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

impl KeptPushes {
    /// Runs every kept push again, oldest first: `run_hook` runs the hook on
    /// the repository given and says whether it handled the push, whose file
    /// is then removed. `base` names repositories as `[repos] base` does.
    /// Another process replaying at the same time is left to it.
    pub fn replay_all(
        &self,
        base: Option<&Path>,
        mut run_hook: impl FnMut(&SavedPush, &Path) -> Result<bool>,
    ) -> Result<ReplayReport> {
        let mut report = ReplayReport::default();
        let paths = self.list()?;
        if paths.is_empty() {
            return Ok(report);
        }
        let lock = self.access.open_lock(&self.dir.join(".lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(report),
            Err(TryLockError::Error(err)) => return Err(err.into()),
        }
        for path in paths {
            let push = match self.load(&path) {
                Ok(push) => push,
                Err(error) if path.exists() => {
                    let aside = path.with_extension(&DAMAGED_SUFFIX[1..]);
                    fs::rename(&path, &aside)
                        .with_context(|| format!("cannot set {} aside", path.display()))?;
                    report
                        .kept
                        .push(format!("{error:#}; set aside as {}", aside.display()));
                    continue;
                }
                Err(_) => continue, // replayed by another process meanwhile
            };
            let handled = push
                .view(base)
                .and_then(|view| run_hook(&push, view.repo()));
            match handled {
                Ok(true) => {
                    fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                    sync_dir(&self.dir)?;
                    report.emitted += 1;
                }
                Ok(false) => report
                    .kept
                    .push(format!("{}: the hook failed; still kept", push.describe())),
                Err(error) => report
                    .kept
                    .push(format!("{}: {error:#}; still kept", push.describe())),
            }
        }
        Ok(report)
    }
}

/// The repository a replayed hook runs on; a view is removed when dropped.
struct Replayed {
    repo: PathBuf,
    view: Option<PathBuf>,
}

impl Replayed {
    /// The repository directory to give the hook.
    fn repo(&self) -> &Path {
        &self.repo
    }
}

impl Drop for Replayed {
    fn drop(&mut self) {
        if let Some(view) = &self.view {
            let _ = fs::remove_dir_all(view);
        }
    }
}

impl SavedPush {
    /// For git, a view of the repository with the refs of the hook's time
    /// and the name it had (`hookbus.name`); else the repository itself.
    fn view(&self, base: Option<&Path>) -> Result<Replayed> {
        let (repo_dir, refs) = match (&self.header.call, &self.refs) {
            (HookCall::PostReceive { repo }, Some(refs)) => (repo, refs),
            (HookCall::PostReceive { repo }, None) => return Ok(plain(repo)),
            (HookCall::SvnPostCommit { repos, .. }, _) => return Ok(plain(repos)),
        };
        let repo = git::open(Some(repo_dir))?;
        let settings = git::settings(&repo)?;
        let var = |name: &str| {
            self.header
                .env
                .iter()
                .find(|(key, value)| key == name && !value.is_empty())
                .map(|(_, value)| value.clone())
        };
        let env = HookEnv {
            gl_repo: var("GL_REPO"),
            gl_user: var("GL_USER"),
            user: var("USER").or_else(|| var("LOGNAME")),
        };
        let name = git::repo_name(&repo, &settings, &env, base);
        let view = self.path.with_extension(&VIEW_SUFFIX[1..]);
        let replayed = Replayed {
            repo: view.clone(),
            view: Some(view.clone()),
        };
        if view.exists() {
            fs::remove_dir_all(&view).context("cannot remove an old view")?;
        }
        let objects = repo.commondir().join("objects");
        fs::create_dir_all(view.join("objects/info"))?;
        fs::create_dir_all(view.join("refs"))?;
        fs::write(view.join("HEAD"), "ref: refs/heads/master\n")?;
        fs::write(
            view.join("objects/info/alternates"),
            format!("{}\n", absolute(&objects).display()),
        )?;
        fs::write(view.join("packed-refs"), refs)?;
        let format = repo.config()?.get_string("extensions.objectformat").ok();
        let mut config = git2::Config::open(&view.join("config"))?;
        config.set_i32("core.repositoryformatversion", 1)?;
        config.set_bool("core.bare", true)?;
        if let Some(format) = format {
            config.set_str("extensions.objectformat", &format)?;
        }
        config.set_str("hookbus.name", &name)?;
        config.set_bool("hookbus.enabled", settings.enabled)?;
        if let Some(routes) = &settings.routes {
            config.set_str("hookbus.routes", &routes.join(" "))?;
        }
        Ok(replayed)
    }

    /// Runs the hook again with the push's stdin and naming environment;
    /// `None` when it ran past [`REPLAY_BOUND`] and was killed.
    pub fn run(&self, command: &mut Command) -> Result<Option<ExitStatus>> {
        for name in NAMING_ENV {
            command.env_remove(name);
        }
        command
            .envs(self.header.env.iter().map(|(k, v)| (k, v)))
            .env(REPLAY_ENV, &self.path)
            .stdout(Stdio::null());
        match Bounded::new("the replayed hook", REPLAY_BOUND)
            .stdin(self.stdin.clone())
            .run(command)
        {
            Ok(ran) => Ok(Some(ran.status)),
            Err(ChildError::TimedOut { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

fn plain(repo: &Path) -> Replayed {
    Replayed {
        repo: repo.to_path_buf(),
        view: None,
    }
}
