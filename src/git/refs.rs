//! Reading a repository's refs, whatever stores them: libgit2 reads the
//! `files` backend (loose refs and packed-refs); libgit2 1.9 cannot read
//! reftable (`git init --ref-format=reftable`, git ≥ 2.45), so there `git`
//! itself lists and resolves refs. Names are bytes: git allows any byte but a
//! few in a refname, and a name that is not UTF-8 is still a ref.

use super::git_command as git;
use anyhow::{bail, Context, Result};
use git2::{ObjectType, Oid, Repository};

/// One ref and the commit it peels to (tags peeled; `None` for a ref to a
/// tree or blob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTip {
    /// The full refname as stored, e.g. `refs/heads/master`.
    pub name: Vec<u8>,
    /// The commit the ref peels to.
    pub commit: Option<Oid>,
}

/// True when the repository keeps its refs in reftable, which only `git` reads.
pub fn is_reftable(repo: &Repository) -> bool {
    repo.config()
        .and_then(|config| config.get_string("extensions.refstorage"))
        .is_ok_and(|storage| storage.eq_ignore_ascii_case("reftable"))
}

/// Every ref under `refs/` with the commit it peels to.
pub fn list(repo: &Repository) -> Result<Vec<RefTip>> {
    if is_reftable(repo) {
        return list_with_git(repo);
    }
    let mut tips = Vec::new();
    for reference in repo.references()? {
        let reference = reference?;
        tips.push(RefTip {
            name: reference.name_bytes().to_vec(),
            commit: reference.peel_to_commit().ok().map(|commit| commit.id()),
        });
    }
    Ok(tips)
}

/// The object a revision (ref name, id, `rev^`…) names: libgit2 resolves it,
/// except in reftable repositories, where `git rev-parse` does.
pub fn resolve<'r>(repo: &'r Repository, rev: &str) -> Result<git2::Object<'r>> {
    if !is_reftable(repo) {
        return Ok(repo.revparse_single(rev)?);
    }
    let output = git(repo)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{object}}"))
        .output()
        .context("cannot run git to resolve a revision of this reftable repository")?;
    if !output.status.success() {
        bail!("git rev-parse does not know {rev:?}");
    }
    let id = String::from_utf8_lossy(&output.stdout);
    let oid = Oid::from_str_ext(id.trim(), repo.object_format())?;
    Ok(repo.find_object(oid, None)?)
}

/// `git for-each-ref` output: `ID TYPE NAME` per line, names as raw bytes.
fn list_with_git(repo: &Repository) -> Result<Vec<RefTip>> {
    let output = git(repo)
        .args([
            "for-each-ref",
            "--format=%(objectname) %(objecttype) %(refname)",
        ])
        .output()
        .context(
            "cannot run git to list the refs of this reftable repository (it needs git 2.45 or newer in PATH)",
        )?;
    if !output.status.success() {
        bail!(
            "git for-each-ref failed on a reftable repository (it needs git 2.45 or newer in PATH): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut tips = Vec::new();
    for line in output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let mut fields = line.splitn(3, |&b| b == b' ');
        let (Some(id), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            bail!(
                "git for-each-ref printed {:?}",
                String::from_utf8_lossy(line)
            );
        };
        let oid = Oid::from_str_ext(&String::from_utf8_lossy(id), repo.object_format())?;
        let commit = match kind {
            b"commit" => Some(oid),
            b"tag" => repo
                .find_object(oid, None)
                .and_then(|object| object.peel(ObjectType::Commit))
                .ok()
                .map(|object| object.id()),
            _ => None,
        };
        tips.push(RefTip {
            name: name.to_vec(),
            commit,
        });
    }
    Ok(tips)
}
