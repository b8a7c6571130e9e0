//! Repository names: the `[repos]` table (a base directory names repositories
//! by their path below it; `skip` silences some), shared by the git side, the
//! Subversion side and `install --all`.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// How repositories are named, and which are never announced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoNaming {
    /// Repositories below this directory are named by their path relative to it
    /// (without `.git`), e.g. `team/app` for `BASE/team/app.git`.
    pub base: Option<PathBuf>,
    /// Repository name globs hookbus stays silent for. gitolite-admin by default:
    /// its pushes are access-control changes, not code.
    #[serde(default = "default_skip")]
    pub skip: Vec<String>,
}

impl Default for RepoNaming {
    fn default() -> Self {
        RepoNaming {
            base: None,
            skip: default_skip(),
        }
    }
}

fn default_skip() -> Vec<String> {
    vec!["gitolite-admin".to_string()]
}

impl RepoNaming {
    /// True when `repo` matches one of the `skip` globs.
    pub fn is_skipped(&self, repo: &str) -> bool {
        self.skip
            .iter()
            .any(|glob| glob::Pattern::new(glob).is_ok_and(|pattern| pattern.matches(repo)))
    }

    /// Checks that every `skip` glob compiles.
    pub fn validate(&self) -> Result<()> {
        for glob in &self.skip {
            glob::Pattern::new(glob).with_context(|| format!("[repos] skip: bad glob {glob:?}"))?;
        }
        Ok(())
    }
}

/// The name of the repository in `dir`: its path below `base` when it is
/// below it, else its directory name; always without a trailing `.git`.
pub fn name_of_dir(dir: &Path, base: Option<&Path>) -> String {
    let relative = base
        .and_then(|base| {
            let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
            dir.strip_prefix(base).ok().map(Path::to_path_buf)
        })
        .filter(|path| !path.as_os_str().is_empty());
    match relative {
        Some(path) => name_from_path(&path),
        None => dir
            .file_name()
            .map(Path::new)
            .map_or_else(String::new, name_from_path),
    }
}

/// The name of a repository found below `base` by a directory walk (as
/// `install --all` does), for `[repos] skip`.
pub fn name_below(base: &Path, repo: &Path) -> String {
    name_from_path(repo.strip_prefix(base).unwrap_or(repo))
}

/// A repository name from a (relative) path: its text without a trailing `/`
/// or `.git`.
fn name_from_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let text = text.trim_end_matches('/');
    text.strip_suffix(".git").unwrap_or(text).to_string()
}
/// Refuses a repository name holding a control character: in a text body a
/// newline would start lines of its own and could pass for `oldrev:`,
/// `newrev:` or `refname:`. `fix` says where a plain name is set.
pub fn check_name(what: &str, name: &str, fix: &str) -> Result<()> {
    if let Some(bad) = name.chars().find(|c| c.is_control()) {
        bail!(
            "the {what} {name:?} holds the control character {bad:?}, which could spoof a message's header lines; {fix}"
        );
    }
    Ok(())
}
