//! Publishing a commit's tree atomically: the tree is exported into a fresh
//! directory of its own (`RELEASES/COMMIT`), then a symlink at the published
//! path is swapped to it with rename(2). A reader sees the old tree or the new
//! one, never a mix, and the published path never goes missing; an export
//! that fails leaves the old tree published. The release before the current
//! one is kept for readers still inside it; older ones are removed.

use super::git::Git;
use super::provision::sparse;
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// True when `link` is already published at `commit`.
fn is_current(link: &Path, commit: &str, relative: &Path) -> bool {
    fs::read_link(link).is_ok_and(|value| value == relative.join(commit)) && link.join(".").is_dir()
}

/// Publishes `commit` of `clone` at `link`, with its releases kept in
/// `releases` (a directory beside `link` or below its parent), only the paths
/// `sparse` names when it names any. Returns whether anything changed.
pub fn publish(
    git: &Git,
    clone: &Path,
    commit: &str,
    link: &Path,
    releases: &Path,
    sparse: &[String],
) -> Result<bool> {
    let parent = link
        .parent()
        .with_context(|| format!("{} has no parent directory", link.display()))?;
    let relative = releases
        .strip_prefix(parent)
        .with_context(|| format!("{} is not below {}", releases.display(), parent.display()))?
        .to_path_buf();
    match fs::symlink_metadata(link) {
        Ok(meta) if !meta.file_type().is_symlink() => bail!(
            "{} exists and is not a symlink hookbus made; move it away once so that it can be published atomically",
            link.display()
        ),
        _ => {}
    }
    clear_leftovers(releases)?;
    if is_current(link, commit, &relative) {
        return Ok(false);
    }
    make_dir(git, releases)?;
    let release = releases.join(commit);
    let staging = releases.join(format!(".{commit}.tmp"));
    let index = releases.join(format!(".{commit}.index"));
    remove_any(&release)?;
    let exported = export(git, clone, commit, &staging, &index, sparse);
    let _ = fs::remove_file(&index);
    if let Err(error) = exported {
        let _ = remove_any(&staging);
        return Err(error);
    }
    fs::rename(&staging, &release)
        .with_context(|| format!("cannot move {} into place", release.display()))?;
    let next_link = releases.join(format!(".{commit}.link"));
    std::os::unix::fs::symlink(relative.join(commit), &next_link)
        .with_context(|| format!("cannot make {}", next_link.display()))?;
    git.hand_over(&next_link)?;
    fs::rename(&next_link, link).with_context(|| format!("cannot swap {}", link.display()))?;
    keep_recent(releases, commit)?;
    Ok(true)
}

/// Removes what a publish that never finished left in `releases` (a killed
/// daemon): its temporaries are the entries whose names start with a dot
/// (`.COMMIT.tmp` trees, `.COMMIT.index` files and git's `.lock` beside
/// them, `.COMMIT.link` links not yet swapped in); releases are named by
/// their commit. Publishes of one mirror never overlap, so none is in use.
fn clear_leftovers(releases: &Path) -> Result<()> {
    let entries = match fs::read_dir(releases) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        entries => entries.with_context(|| format!("cannot read {}", releases.display()))?,
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", releases.display()))?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            remove_any(&entry.path())?;
        }
    }
    Ok(())
}

/// Removes what `publish` made for `link`: the symlink first (so no reader
/// finds a half-removed tree through it), then the releases.
pub fn unpublish(link: &Path, releases: &Path) -> Result<()> {
    if fs::symlink_metadata(link).is_ok_and(|meta| meta.file_type().is_symlink()) {
        fs::remove_file(link).with_context(|| format!("cannot remove {}", link.display()))?;
    }
    remove_any(releases)
}

/// Writes the tree of `commit` (its `sparse` paths, when given) into `dir`
/// through a private index, without a work tree or `.git` of its own at the
/// destination.
fn export(
    git: &Git,
    clone: &Path,
    commit: &str,
    dir: &Path,
    index: &Path,
    sparse: &[String],
) -> Result<()> {
    let env = [("GIT_INDEX_FILE", index.as_os_str())];
    git.run(clone, &["read-tree".as_ref(), commit.as_ref()], &env)?;
    let mut prefix = dir.as_os_str().to_os_string();
    prefix.push("/");
    let prefix = prefix_arg(&prefix);
    if sparse.is_empty() {
        let args: [&OsStr; 4] = [
            "checkout-index".as_ref(),
            "-a".as_ref(),
            "-f".as_ref(),
            &prefix,
        ];
        git.run(clone, &args, &env)?;
    } else {
        sparse::check_out_index(git, clone, &env, &prefix, sparse)?;
    }
    if !dir.is_dir() {
        // An empty tree exports nothing; publish an empty directory.
        fs::create_dir(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        git.hand_over(dir)?;
    }
    Ok(())
}

fn prefix_arg(prefix: &OsStr) -> std::ffi::OsString {
    let mut arg = std::ffi::OsString::from("--prefix=");
    arg.push(prefix);
    arg
}

/// Removes every release except `current` and the newest other one.
fn keep_recent(releases: &Path, current: &str) -> Result<()> {
    let mut others: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in fs::read_dir(releases)? {
        let entry = entry?;
        if entry.file_name() == current {
            continue;
        }
        let modified = entry.metadata().and_then(|meta| meta.modified());
        others.push((modified.unwrap_or(std::time::UNIX_EPOCH), entry.path()));
    }
    others.sort();
    let stale = others.len().saturating_sub(1);
    for (_, path) in others.into_iter().take(stale) {
        remove_any(&path)?;
    }
    Ok(())
}

/// Makes `dir` (and missing parents) owned by the mirror's account.
pub fn make_dir(git: &Git, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        make_dir(git, parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => git.hand_over(dir),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot make {}", dir.display())),
    }
}

/// Removes a file, symlink or directory tree (never following symlinks).
fn remove_any(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => Err(err),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    result.with_context(|| format!("cannot remove {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    fn commit(repo: &Path, content: &str) -> String {
        fs::write(repo.join("a.txt"), content).unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .current_dir(repo)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        git(&["add", "-A"]);
        git(&["commit", "-qm", content]);
        git(&["rev-parse", "HEAD"])
    }

    #[test]
    fn a_failed_publish_keeps_the_old_tree_and_old_releases_go() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        fs::create_dir(&repo).unwrap();
        assert!(Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .status()
            .unwrap()
            .success());
        let git = Git {
            timeout: Duration::from_secs(30),
            account: None,
        };
        let (link, releases) = (dir.path().join("www"), dir.path().join(".www.hookbus"));
        let first = commit(&repo, "1");
        assert!(publish(&git, &repo, &first, &link, &releases, &[]).unwrap());
        assert!(
            !publish(&git, &repo, &first, &link, &releases, &[]).unwrap(),
            "nothing to do"
        );
        let missing = "0123456789abcdef0123456789abcdef01234567";
        assert!(publish(&git, &repo, missing, &link, &releases, &[]).is_err());
        assert_eq!(fs::read_to_string(link.join("a.txt")).unwrap(), "1");
        let second = commit(&repo, "2");
        let third = commit(&repo, "3");
        publish(&git, &repo, &second, &link, &releases, &[]).unwrap();
        publish(&git, &repo, &third, &link, &releases, &[]).unwrap();
        assert_eq!(fs::read_to_string(link.join("a.txt")).unwrap(), "3");
        let mut kept: Vec<String> = fs::read_dir(&releases)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        kept.sort();
        let mut expected = vec![second, third];
        expected.sort();
        assert_eq!(kept, expected, "the current release and the one before");
        fs::remove_file(&link).unwrap();
        fs::create_dir(&link).unwrap();
        let refused = publish(&git, &repo, &first, &link, &releases, &[]).unwrap_err();
        assert!(refused.to_string().contains("not a symlink hookbus made"));
    }
}
