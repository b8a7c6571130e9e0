//! Reading a repository's refs, whatever stores them: libgit2 reads the
//! `files` backend (loose refs and packed-refs); libgit2 1.9 cannot read
//! reftable (`git init --ref-format=reftable`, git ≥ 2.45), so there `git`
//! itself lists and resolves refs. Names are bytes: git allows any byte but a
//! few in a refname, and a name that is not UTF-8 is still a ref.

use super::git_command as git;
use crate::child::{Bounded, Keep, Ran};
use anyhow::{anyhow, bail, Context, Result};
use git2::{ObjectType, Oid, Repository};
use std::time::Duration;

/// One ref and the commit it peels to (tags peeled; `None` for a ref to a
/// tree or blob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTip {
    /// The full refname as stored, e.g. `refs/heads/master`.
    pub name: Vec<u8>,
    /// The commit the ref peels to.
    pub commit: Option<Oid>,
}

/// Bound on one `git` call reading a reftable repository: listing a million
/// refs takes git about a second, so only a stalled disk or a wedged git
/// reaches it, and the push is not held longer than this.
pub const GIT_BOUND: Duration = Duration::from_secs(60);

/// Most of `git for-each-ref`'s output read: some two million refs.
const LISTING_LIMIT: usize = 256 << 20;

/// Bytes of the end of git's stderr kept for an error.
const STDERR_KEPT: usize = 2048;

/// What reads the refs: libgit2 (the `files` backend) or `git` (reftable).
/// Decided once for each operation ([`list`], [`resolve_all`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Files,
    Reftable,
}

impl Store {
    /// reftable when the repository says so (`extensions.refstorage`).
    fn of(repo: &Repository) -> Store {
        let reftable = repo
            .config()
            .and_then(|config| config.get_string("extensions.refstorage"))
            .is_ok_and(|storage| storage.eq_ignore_ascii_case("reftable"));
        if reftable {
            Store::Reftable
        } else {
            Store::Files
        }
    }
}

/// Every ref under `refs/` with the commit it peels to.
pub fn list(repo: &Repository) -> Result<Vec<RefTip>> {
    if Store::of(repo) == Store::Reftable {
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

/// The objects revisions (ref names, ids, `rev^`…) name, in order: libgit2
/// resolves them, except in reftable repositories, where one `git cat-file
/// --batch-check` resolves them all. The error names the revision unknown.
pub fn resolve_all<'r>(repo: &'r Repository, revs: &[&str]) -> Result<Vec<git2::Object<'r>>> {
    let unknown = |rev: &str| format!("unknown revision {rev:?} (give a commit id, tag or branch)");
    if Store::of(repo) == Store::Files {
        return revs
            .iter()
            .map(|rev| repo.revparse_single(rev).with_context(|| unknown(rev)))
            .collect();
    }
    let mut input = Vec::new();
    for rev in revs {
        if rev.is_empty() || rev.contains('\n') {
            bail!("{}: empty or holds a newline", unknown(rev));
        }
        input.extend_from_slice(rev.as_bytes());
        input.push(b'\n');
    }
    let ran = git_bounded(
        repo,
        &["cat-file", "--batch-check=%(objectname)"],
        input,
        Keep::Head(revs.len() * 80),
    )?;
    let answers = String::from_utf8_lossy(&ran.stdout);
    let answers: Vec<&str> = answers.lines().collect();
    if answers.len() != revs.len() {
        bail!(
            "git cat-file answered {} line(s) for {} revision(s): {answers:?}",
            answers.len(),
            revs.len()
        );
    }
    let mut objects = Vec::with_capacity(revs.len());
    for (rev, answer) in revs.iter().zip(answers) {
        // `REV missing` or `REV ambiguous` when it names no single object.
        if let Some(why) = answer.strip_prefix(*rev).and_then(|r| r.strip_prefix(' ')) {
            bail!("{}: git cat-file says {why}", unknown(rev));
        }
        let oid = Oid::from_str_ext(answer, repo.object_format())
            .with_context(|| format!("git cat-file printed {answer:?} for {rev:?}"))?;
        objects.push(repo.find_object(oid, None)?);
    }
    Ok(objects)
}

/// Runs `git ARGS` on a reftable repository within [`GIT_BOUND`], `input`
/// on its stdin; fails unless it succeeded and its output was kept whole.
/// Errors name the command and what to check.
fn git_bounded(repo: &Repository, args: &[&str], input: Vec<u8>, stdout: Keep) -> Result<Ran> {
    let what = format!("git {}", args[0]);
    let fix = || {
        format!(
            "{what} on this reftable repository (it needs git 2.45 or newer first in PATH; \
             run `git --git-dir {} {}` to see what fails or hangs)",
            repo.path().display(),
            args.join(" ")
        )
    };
    let ran = Bounded::new(&what, GIT_BOUND)
        .stdin(input)
        .stdout(stdout)
        .stderr(Keep::Tail(STDERR_KEPT))
        .run(git(repo).args(args))
        .with_context(fix)?;
    if !ran.status.success() {
        let said = String::from_utf8_lossy(&ran.stderr);
        return Err(anyhow!("{} ({}): {}", fix(), ran.status, said.trim()));
    }
    if ran.stdout_dropped > 0 {
        bail!("{} printed more than hookbus reads", fix());
    }
    Ok(ran)
}

/// `git for-each-ref` output: `ID TYPE NAME` per line, names as raw bytes.
fn list_with_git(repo: &Repository) -> Result<Vec<RefTip>> {
    let ran = git_bounded(
        repo,
        &[
            "for-each-ref",
            "--format=%(objectname) %(objecttype) %(refname)",
        ],
        Vec::new(),
        Keep::Head(LISTING_LIMIT),
    )?;
    let mut tips = Vec::new();
    for line in ran.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
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
