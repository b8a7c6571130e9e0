//! One `[[mirror]]` table: a local clone `hookbus listen` keeps up to date,
//! and what it does with it. The daemon's section, defined here so that
//! [`Config`](super::Config) holds the tables parsed and chosen for its host.

use super::provision::{self, LinkConfig};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What a mirror does after each fetch.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `git fetch --prune` branches and tags (the seed's `normal`).
    #[default]
    Fetch,
    /// Fetch, then publish `branch` at `target` atomically (the seed's `trusting`).
    Checkout,
    /// Fetch, then force the clone's own work tree to `origin/branch` (the
    /// seed's `dangerous`).
    InPlace,
    /// Fetch, then every branch at `target/NAME`, atomically per branch (the
    /// seed's `puppetmaster`).
    Branches,
}

impl Mode {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fetch => "fetch",
            Mode::Checkout => "checkout",
            Mode::InPlace => "in-place",
            Mode::Branches => "branches",
        }
    }
}

/// One `[[mirror]]`: a local clone kept up to date.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// What `hookbus ctl`, reports and the status board call the mirror;
    /// default: its `repo` when that is one repository no other mirror of
    /// the host follows, else its clone path (see
    /// [`settle_names`](super::select::settle_names)).
    pub name: Option<String>,
    /// The repository name (or a glob) as messages carry it.
    pub repo: String,
    /// The local clone.
    pub path: PathBuf,
    /// Cloned from here when `path` does not exist yet.
    pub url: Option<String>,
    /// The account git runs as when the daemon runs as root.
    pub user: Option<String>,
    /// What is done after each fetch.
    #[serde(default)]
    pub mode: Mode,
    /// Where `checkout` publishes the tree, or the directory `branches` fills.
    pub target: Option<PathBuf>,
    /// The branch `checkout` and `in-place` follow.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Globs on `[listen] host`: the hosts that run this mirror; absent:
    /// every host.
    pub hosts: Option<Vec<String>>,
    /// Only these paths of the tree (`dir/` or a file) are published; the
    /// clone keeps everything (the listener's sparse export).
    #[serde(default)]
    pub sparse: Vec<String>,
    /// Steps (the keys of `[[action.step]]`) run once each time the
    /// published commit changes (run by the listener).
    #[serde(default)]
    pub on_change: Vec<crate::action::config::StepConfig>,
    /// Globs on the changed paths; `on_change` runs only when one matches
    /// (empty: any change).
    #[serde(default)]
    pub on_change_paths: Vec<String>,
    /// `[[mirror.link]]`: local paths made to point into the published tree.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkConfig>,
}

fn default_branch() -> String {
    "master".to_string()
}

impl MirrorConfig {
    /// Its name for logs, reports and `hookbus ctl`: `name` (settled when
    /// the config is read), else the clone's path.
    pub fn name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => self.path.display().to_string(),
        }
    }

    /// True when this mirror wants messages about `repo`.
    pub fn wants(&self, repo: &str) -> bool {
        glob::Pattern::new(&self.repo).is_ok_and(|pattern| pattern.matches(repo))
    }

    /// The published tree's root: the target (checkout) or the clone
    /// (in-place); the other modes publish no tree.
    pub fn tree(&self) -> Option<&Path> {
        match self.mode {
            Mode::Checkout => self.target.as_deref(),
            Mode::InPlace => Some(&self.path),
            Mode::Fetch | Mode::Branches => None,
        }
    }

    /// True when `path` (of the tree) is published under `sparse` (empty: all).
    pub fn publishes(&self, path: &str) -> bool {
        self.sparse.is_empty() || (self.sparse.iter()).any(|entry| provision::covers(entry, path))
    }

    pub(super) fn validate(&self) -> Result<()> {
        glob::Pattern::new(&self.repo)
            .with_context(|| format!("repo: bad glob {:?}", self.repo))?;
        absolute("path", &self.path)?;
        match (self.mode, &self.target) {
            (Mode::Checkout | Mode::Branches, None) => {
                bail!("mode {} needs a target directory", self.mode.as_str())
            }
            (Mode::Checkout | Mode::Branches, Some(target)) => {
                absolute("target", target)?;
                if target.starts_with(&self.path) || self.path.starts_with(target) {
                    bail!("target and path must not contain each other");
                }
            }
            (Mode::Fetch | Mode::InPlace, Some(_)) => {
                bail!("mode {} takes no target", self.mode.as_str())
            }
            (Mode::Fetch | Mode::InPlace, None) => {}
        }
        if !is_safe_branch(&self.branch) {
            bail!("branch {:?} is not a plain branch name", self.branch);
        }
        if let Some(url) = &self.url {
            if url.is_empty() || url.starts_with('-') || url.chars().any(char::is_control) {
                bail!("url {url:?} is not a repository URL");
            }
        }
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.starts_with('-') || name.chars().any(char::is_control)
            {
                bail!("name {name:?}: give a non-empty name on one line, not starting with '-'");
            }
        }
        if let Some(user) = &self.user {
            if user.is_empty() || user.starts_with('-') || user.chars().any(char::is_control) {
                bail!("user {user:?} is not an account name");
            }
        }
        provision::validate(self)
    }
}

/// Checks that `path` is absolute and plain (no `.` or `..`); `key` names it.
pub(super) fn absolute(key: &str, path: &Path) -> Result<()> {
    let normal = path.components().all(|part| {
        matches!(
            part,
            std::path::Component::RootDir | std::path::Component::Normal(_)
        )
    });
    if !path.is_absolute() || !normal {
        bail!(
            "{key} {} must be an absolute path without . or ..",
            path.display()
        );
    }
    Ok(())
}

/// A branch name that is safe as a ref (and, one component at a time, as a
/// directory name): ASCII letters, digits and `-_./`, no `..`, no component
/// starting with `.` or `-`.
pub fn is_safe_branch(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+@".contains(c))
        && name.split('/').all(|part| {
            !part.is_empty() && !part.starts_with(['.', '-']) && !part.ends_with(".lock")
        })
}

/// A `[[mirror]]` table read and validated as the config does (for tests).
#[cfg(test)]
pub(super) fn parse_checked(text: &str) -> Result<MirrorConfig> {
    let mirror: MirrorConfig = toml::from_str(text)?;
    mirror.validate()?;
    Ok(mirror)
}

#[cfg(test)]
mod tests {
    use super::parse_checked as mirror;
    use super::*;

    #[test]
    fn modes_need_the_right_keys() {
        assert_eq!(
            mirror("repo = 'a'\npath = '/m/a'").unwrap().mode,
            Mode::Fetch
        );
        assert!(mirror("repo = 'a'\npath = '/m/a'\nmode = 'checkout'").is_err());
        assert!(mirror("repo = 'a'\npath = '/m/a'\nmode = 'in-place'\ntarget = '/t'").is_err());
        let branches = mirror("repo = 'a'\npath = '/m/a'\nmode = 'branches'\ntarget = '/t'");
        assert_eq!(branches.unwrap().mode, Mode::Branches);
        assert!(mirror("repo = 'a'\npath = 'relative'").is_err());
        assert!(mirror("repo = 'a'\npath = '/m/../etc'").is_err());
        assert!(mirror("repo = 'a'\npath = '/m/a'\nmode = 'checkout'\ntarget = '/m/a/x'").is_err());
        assert!(mirror("repo = 'a'\npath = '/m/a'\nbranch = '../x'").is_err());
        assert!(mirror("repo = 'a'\npath = '/m/a'\nmode = 'normal'").is_err());
        assert!(mirror("repo = 'a'\npath = '/m/a'\ncolour = 'red'").is_err());
    }

    #[test]
    fn branch_names_that_could_escape_a_directory_are_unsafe() {
        for good in ["master", "feature/x", "v1.2", "a-b_c"] {
            assert!(is_safe_branch(good), "{good}");
        }
        for bad in [
            "", "..", "a/../b", ".hidden", "-rf", "a//b", "a\nb", "a b", "x.lock", "é",
        ] {
            assert!(!is_safe_branch(bad), "{bad:?}");
        }
    }
}
