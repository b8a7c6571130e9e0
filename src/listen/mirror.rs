//! One mirror's work: clone when missing, fetch, then what its mode says.
//! Every path comes from the config or from git's own ref names (checked
//! before use); nothing from a message gets here.
//!
//! The engine's room: [`publish`] swaps published trees, [`git`] runs git,
//! [`provision`] shapes a checkout. It knows nothing of the rooms above: the
//! worker pool that runs these updates as the status board allows is in
//! [`super::ops`].

use crate::config::mirror::{is_safe_branch, MirrorConfig, Mode};
use anyhow::{bail, Context, Result};
use git::Git;
use provision::{links, onchange::OnChange, sparse};
use publish::make_dir;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

pub mod git;
pub mod provision;
pub mod publish;

/// Where `branches` mode keeps each branch's releases, inside its target.
const BRANCH_RELEASES: &str = ".hookbus";

/// A mirror ready to work.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// What the config says about it.
    pub config: MirrorConfig,
    /// How its git runs.
    pub git: Git,
    /// Its on-change chain, if it has one.
    pub on_change: Option<std::sync::Arc<OnChange>>,
}

/// What one piece of work did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// The commit now published or checked out (checkout, in-place).
    pub head: Option<String>,
    /// Branches published, changed or removed (branches mode).
    pub changed: Vec<String>,
    /// Branch names refused as directory names (branches mode).
    pub refused: Vec<String>,
}

impl Mirror {
    /// Brings the mirror up to date.
    pub fn update(&self) -> Result<Done> {
        self.fetch()?;
        match self.config.mode {
            Mode::Fetch => Ok(Done::default()),
            Mode::Checkout => self.checkout(),
            Mode::InPlace => self.in_place(),
            Mode::Branches => self.branches(),
        }
    }

    /// Clones when missing, then fetches; the target is not touched (what a
    /// held mirror does).
    pub fn fetch(&self) -> Result<()> {
        if !self.config.path.exists() {
            self.clone_from_url()?;
        }
        self.git_in_clone(&["fetch", "--prune", "--tags", "--quiet", "origin"])?;
        Ok(())
    }

    /// Removes the lock files a git killed with a daemon left in the clone
    /// (`index.lock`, a ref's `.lock`, `packed-refs.lock`, …): git refuses
    /// to work while one exists, so the mirror would stay BROKEN. For the
    /// start, before any git of this daemon runs; returns what it removed.
    pub fn clear_git_locks(&self) -> Result<Vec<PathBuf>> {
        let git_dir = self.config.path.join(".git");
        let mut removed = Vec::new();
        if fs::symlink_metadata(&git_dir).is_ok_and(|meta| meta.is_dir()) {
            remove_locks(&git_dir, &git_dir.join("objects"), &mut removed)?;
        }
        Ok(removed)
    }

    fn git_in_clone(&self, args: &[&str]) -> Result<String> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        self.git.run(&self.config.path, &args, &[])
    }

    fn clone_from_url(&self) -> Result<()> {
        let path = &self.config.path;
        let Some(url) = &self.config.url else {
            bail!(
                "{} does not exist and the mirror has no url to clone from",
                path.display()
            );
        };
        make_dir(&self.git, path)?;
        let mut args: Vec<&OsStr> = vec!["clone".as_ref(), "--quiet".as_ref()];
        if matches!(self.config.mode, Mode::Checkout | Mode::Branches) {
            args.push("--no-checkout".as_ref());
        }
        args.extend([OsStr::new("--"), OsStr::new(url), OsStr::new(".")]);
        if let Err(error) = self.git.run(path, &args, &[]) {
            // An empty directory would look like a clone to the next attempt.
            let _ = fs::remove_dir_all(path);
            return Err(error.context(format!("cannot clone into {}", path.display())));
        }
        Ok(())
    }

    /// The commit `origin/BRANCH` points at.
    pub fn remote_branch(&self, branch: &str) -> Result<String> {
        let reference = format!("refs/remotes/origin/{branch}^{{commit}}");
        let out = self
            .git_in_clone(&["rev-parse", "--verify", "--quiet", &reference])
            .with_context(|| format!("origin has no branch {branch}"))?;
        Ok(out.trim().to_string())
    }

    /// The commit `rev` names in what the mirror follows (origin's branches,
    /// tags, or a commit id), with the reference it was read from; `None`
    /// when nothing names it. The clone's own branches are never consulted:
    /// they stay where the clone left them. A name that is both a branch and
    /// a tag of different commits is refused as ambiguous. `rev` comes from an
    /// operator (`hookbus ctl rollback`): it is passed after
    /// `--end-of-options`, so it is never read as an option.
    pub fn resolve(&self, rev: &str) -> Result<Option<(String, String)>> {
        if !self.config.path.exists() {
            bail!("{} has not been cloned yet", self.config.path.display());
        }
        let mut found: Vec<(String, String)> = Vec::new();
        for reference in followed_references(rev) {
            let out = self.git_in_clone(&[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &format!("{reference}^{{commit}}"),
            ]);
            if let Ok(out) = out {
                found.push((out.trim().to_string(), reference));
            }
        }
        match found.as_slice() {
            [] => Ok(None),
            [(commit, _), rest @ ..] if rest.iter().all(|(other, _)| other == commit) => {
                Ok(found.into_iter().next())
            }
            _ => {
                let readings: Vec<String> = found
                    .iter()
                    .map(|(commit, reference)| format!("{reference} is {commit}"))
                    .collect();
                bail!(
                    "{rev:?} is ambiguous: {}; name one of them",
                    readings.join(", ")
                )
            }
        }
    }

    /// Puts `commit` (a resolved commit of the clone) where an update would
    /// put its branch: the target (checkout), the work tree (in-place), or
    /// `target/BRANCH` for `branch` (branches, a branch already published).
    pub fn put(&self, commit: &str, branch: &str) -> Result<()> {
        match self.config.mode {
            Mode::Fetch => bail!("mode fetch has no target"),
            Mode::Checkout => self.publish_at_target(commit).map(drop),
            Mode::InPlace => self.check_out(commit),
            Mode::Branches => {
                let target = self.target()?;
                if !self.publishes_branch(branch) {
                    bail!("{} publishes no branch {branch:?}", target.display());
                }
                let releases = target.join(BRANCH_RELEASES).join(branch);
                publish::publish(
                    &self.git,
                    &self.config.path,
                    commit,
                    &target.join(branch),
                    &releases,
                    &[],
                )
                .map(drop)
            }
        }
    }

    /// True when mode `branches` publishes `branch` (a safe name whose
    /// symlink is in the target).
    pub fn publishes_branch(&self, branch: &str) -> bool {
        let link = self
            .config
            .target
            .as_ref()
            .map(|target| target.join(branch));
        is_safe_directory_name(branch)
            && link.is_some_and(|link| fs::symlink_metadata(link).is_ok_and(|m| m.is_symlink()))
    }

    fn publish_at_target(&self, commit: &str) -> Result<bool> {
        let target = self.target()?;
        let releases = sibling_releases(target)?;
        let (clone, sparse) = (&self.config.path, &self.config.sparse);
        let changed = publish::publish(&self.git, clone, commit, target, &releases, sparse)?;
        links::ensure(&self.config, &self.git)?;
        Ok(changed)
    }

    fn checkout(&self) -> Result<Done> {
        let commit = self.remote_branch(&self.config.branch)?;
        let changed = self.publish_at_target(&commit)?;
        Ok(Done {
            changed: if changed {
                vec![self.config.branch.clone()]
            } else {
                Vec::new()
            },
            head: Some(commit),
            ..Done::default()
        })
    }

    /// Dangerous by design (the seed's name for it): files change one by one
    /// under a running reader, local edits are thrown away, and a failure
    /// half-way leaves a half-updated tree.
    fn in_place(&self) -> Result<Done> {
        let commit = self.remote_branch(&self.config.branch)?;
        self.check_out(&commit)?;
        Ok(Done {
            head: Some(commit),
            ..Done::default()
        })
    }

    /// Forces the clone's work tree (and its branch) to `commit`.
    fn check_out(&self, commit: &str) -> Result<()> {
        let branch = &self.config.branch;
        sparse::apply(&self.git, &self.config.path, &self.config.sparse)?;
        self.git_in_clone(&["checkout", "--quiet", "--force", "-B", branch, commit, "--"])?;
        self.git_in_clone(&["clean", "-ffdq"])?;
        links::ensure(&self.config, &self.git)
    }

    fn branches(&self) -> Result<Done> {
        let target = self.target()?;
        make_dir(&self.git, target)?;
        let listing = self.git_in_clone(&[
            "for-each-ref",
            "--format=%(objectname) %(refname:strip=3)",
            "refs/remotes/origin/",
        ])?;
        let mut done = Done::default();
        let mut live = BTreeSet::new();
        let releases_root = target.join(BRANCH_RELEASES);
        for line in listing.lines() {
            let Some((commit, name)) = line.split_once(' ') else {
                continue;
            };
            if name == "HEAD" {
                continue;
            }
            if !is_safe_directory_name(name) {
                done.refused.push(name.to_string());
                continue;
            }
            live.insert(name.to_string());
            let link = target.join(name);
            if publish::publish(
                &self.git,
                &self.config.path,
                commit,
                &link,
                &releases_root.join(name),
                &[],
            )? {
                done.changed.push(name.to_string());
            }
        }
        for gone in published_branches(target, &releases_root)?.difference(&live) {
            publish::unpublish(&target.join(gone), &releases_root.join(gone))?;
            done.changed.push(format!("-{gone}"));
        }
        Ok(done)
    }

    fn target(&self) -> Result<&PathBuf> {
        self.config
            .target
            .as_ref()
            .context("this mode needs a target (checked when the config is read)")
    }
}

/// A branch name that can be one directory name: no `/`, nothing that could
/// climb out, hide, or look like an option.
pub fn is_safe_directory_name(name: &str) -> bool {
    is_safe_branch(name) && !name.contains('/') && name != BRANCH_RELEASES
}

/// Removes the git locks a killed run left in the mirrors' clones (see
/// [`Mirror::clear_git_locks`]), at start: once the state directory's lock
/// says no other daemon works on them.
pub fn clear_git_locks(mirrors: &[Mirror]) {
    for mirror in mirrors {
        match mirror.clear_git_locks() {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => eprintln!(
                "hookbus: listen: mirror {}: removed what a killed git left: {}",
                mirror.config.name(),
                removed
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(error) => eprintln!(
                "hookbus: listen: mirror {}: {error:#}",
                mirror.config.name()
            ),
        }
    }
}

/// Removes every `*.lock` file below `dir`, without following links or
/// entering the loose-object directories of `objects` (they hold no lock).
fn remove_locks(dir: &Path, objects: &Path, removed: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let (path, name) = (entry.path(), entry.file_name());
        let name = name.as_encoded_bytes();
        let loose_objects = dir == objects && name.len() == 2;
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            if !loose_objects {
                remove_locks(&path, objects, removed)?;
            }
        } else if name.ends_with(b".lock") {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            removed.push(path);
        }
    }
    Ok(())
}

/// `DIR/.NAME.hookbus` for a target `DIR/NAME`.
fn sibling_releases(target: &Path) -> Result<PathBuf> {
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        bail!("target {} has no parent directory", target.display());
    };
    let mut releases = std::ffi::OsString::from(".");
    releases.push(name);
    releases.push(".hookbus");
    Ok(parent.join(releases))
}

/// Branches published earlier: names with releases, or symlinks into them.
fn published_branches(target: &Path, releases_root: &Path) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    if let Ok(entries) = fs::read_dir(releases_root) {
        for entry in entries {
            names.insert(entry?.file_name().to_string_lossy().into_owned());
        }
    }
    for entry in fs::read_dir(target)? {
        let entry = entry?;
        let ours =
            fs::read_link(entry.path()).is_ok_and(|value| value.starts_with(BRANCH_RELEASES));
        if ours {
            names.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// Where `rev` is looked for: `NAME` (with any `~N`, `^N`, … after it) as
/// origin's branch and as a tag, and as a commit id when it looks like one; a
/// full `refs/…` name as given.
fn followed_references(rev: &str) -> Vec<String> {
    let (name, suffix) = rev.split_at(rev.find(['~', '^', '@', ':']).unwrap_or(rev.len()));
    if name.starts_with("refs/") || name.is_empty() {
        return vec![rev.to_string()];
    }
    let mut references = vec![
        format!("refs/remotes/origin/{name}{suffix}"),
        format!("refs/tags/{name}{suffix}"),
    ];
    if name.len() >= 4 && name.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        references.push(rev.to_string());
    }
    references
}

#[cfg(test)]
mod tests {
    use super::followed_references;

    #[test]
    fn a_revision_is_read_as_origins_branch_a_tag_or_a_commit_id() {
        assert_eq!(
            followed_references("master~2"),
            ["refs/remotes/origin/master~2", "refs/tags/master~2"]
        );
        assert_eq!(
            followed_references("v1.0^{commit}"),
            [
                "refs/remotes/origin/v1.0^{commit}",
                "refs/tags/v1.0^{commit}"
            ]
        );
        assert_eq!(
            followed_references("abc123~1"),
            [
                "refs/remotes/origin/abc123~1",
                "refs/tags/abc123~1",
                "abc123~1"
            ]
        );
        assert_eq!(followed_references("refs/tags/v1"), ["refs/tags/v1"]);
    }
}
