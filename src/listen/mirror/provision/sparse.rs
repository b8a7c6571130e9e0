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
use anyhow::{Context, Result};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::Path;

/// Files handed to one `checkout-index` (bounds the command line).
const CHUNK: usize = 500;

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
