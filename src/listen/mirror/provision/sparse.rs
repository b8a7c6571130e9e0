//! `sparse = ["grafana/"]`: only those paths of the tree are published; the
//! clone keeps the whole history and tree (as gitopper's sparse checkout).
//!
//! Two mechanisms, one per mode, because the modes publish differently:
//! `checkout` exports each release from a private index and never uses the
//! clone's work tree, so the export itself is filtered (the index's files
//! under the sparse paths, and only those, go through `checkout-index`);
//! `in-place` publishes the clone's own work tree, so git's sparse checkout
//! (non-cone patterns, which unlike cone mode do not add the root's files)
//! decides what is in it.

use crate::listen::mirror::git::Git;
use anyhow::{bail, Context, Result};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::Path;

/// Files handed to one `checkout-index` (bounds the command line).
const CHUNK: usize = 500;

/// Checks `sparse`: relative paths of the tree, `dir/` or a file, literal.
pub fn validate(sparse: &[String]) -> Result<()> {
    for entry in sparse {
        let trimmed = entry.strip_suffix('/').unwrap_or(entry);
        let literal = !entry
            .chars()
            .any(|c| c.is_control() || "*?[]\\!#:".contains(c));
        let normal = !trimmed.is_empty()
            && trimmed
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !literal || !normal || entry.starts_with(['/', '-']) {
            bail!(
                "sparse {entry:?}: give a path inside the tree, a directory as \"dir/\" or a file, without wildcards, . or .."
            );
        }
    }
    Ok(())
}

/// True when `entry` (a sparse entry) covers `path` (a file of the tree).
pub fn covers(entry: &str, path: &str) -> bool {
    match entry.strip_suffix('/') {
        Some(dir) => path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/')),
        None => {
            path == entry
                || path
                    .strip_prefix(entry)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

/// Writes the files of the index `env` names that `sparse` covers below
/// `prefix` (`--prefix=DIR/`): the checkout mode's filtered export.
pub fn check_out_index(
    git: &Git,
    clone: &Path,
    env: &[(&str, &OsStr)],
    prefix: &OsStr,
    sparse: &[String],
) -> Result<()> {
    let mut args: Vec<OsString> = ["ls-files", "-z", "--"].map(OsString::from).to_vec();
    args.extend(
        sparse
            .iter()
            .map(|entry| format!(":(literal){entry}").into()),
    );
    let listed = git.run(clone, &refs(&args), env)?;
    let files: Vec<&str> = listed.split('\0').filter(|file| !file.is_empty()).collect();
    for chunk in files.chunks(CHUNK) {
        let mut args: Vec<OsString> = vec!["checkout-index".into(), "-f".into(), prefix.into()];
        args.push("--".into());
        args.extend(chunk.iter().map(OsString::from));
        git.run(clone, &refs(&args), env)?;
    }
    Ok(())
}

fn refs(args: &[OsString]) -> Vec<&OsStr> {
    args.iter().map(OsString::as_os_str).collect()
}

/// Makes the clone's sparse checkout what `sparse` says (the in-place mode),
/// before its work tree is forced to a commit: patterns anchored at the
/// root, set only when they differ; no sparse checkout when `sparse` is empty.
pub fn apply(git: &Git, clone: &Path, sparse: &[String]) -> Result<()> {
    let file = clone.join(".git/info/sparse-checkout");
    let present = fs::read_to_string(&file).ok();
    if sparse.is_empty() {
        if present.is_some() {
            git.run(
                clone,
                &["sparse-checkout".as_ref(), "disable".as_ref()],
                &[],
            )?;
            fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        }
        return Ok(());
    }
    let patterns: Vec<String> = sparse.iter().map(|entry| format!("/{entry}")).collect();
    let wanted: String = patterns.iter().map(|line| format!("{line}\n")).collect();
    if present.as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    let mut args: Vec<&OsStr> = ["sparse-checkout", "set", "--no-cone"]
        .map(OsStr::new)
        .to_vec();
    args.extend(patterns.iter().map(OsStr::new));
    git.run(clone, &args, &[])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_literal_paths_inside_the_tree() {
        assert!(validate(&["grafana/".into(), "etc/a.conf".into()]).is_ok());
        for bad in [
            "", "/etc", "../x", "a/../b", "a//b", "*.conf", "-x", "./a", "/",
        ] {
            assert!(validate(&[bad.to_string()]).is_err(), "{bad:?}");
        }
        assert!(covers("grafana/", "grafana/etc/x.ini"));
        assert!(!covers("grafana/", "grafana.txt"));
        assert!(!covers("grafana/", "grafana"));
        assert!(covers("a.txt", "a.txt"));
        assert!(covers("etc", "etc/x"));
        assert!(!covers("etc", "etc2/x"));
    }
}
