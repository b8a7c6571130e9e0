//! What a push means: classification of each ref update and git-multimail's
//! whole-push rule for which commits are new and which message owns each.

use super::input::{is_null_id, RawUpdate};
use super::UpdateError;
use crate::model::{Change, IdList, Notification, RefKind, RefUpdate, UpdateShape};
use git2::{ObjectType, Oid, Repository, Revwalk, Sort};
use std::collections::HashSet;

/// Who and where, for every notification of one run.
#[derive(Debug, Clone)]
pub struct PushContext {
    /// The repository's name in messages.
    pub repo_name: String,
    /// Who pushed (`GL_USER`, else `$USER`); empty when unknown.
    pub pusher: String,
    /// Announce `refs/notes/*` updates (off by default).
    pub announce_notes: bool,
    /// How many ids each commit list keeps (the total is always counted).
    pub max_listed: usize,
}

/// One classified update with the commit ids its old and new values peel to.
struct Classified {
    line: usize,
    update: RefUpdate,
    old_commit: Option<Oid>,
    new_commit: Option<Oid>,
    tag: Option<crate::model::AnnotatedTag>,
}

/// Turns one push (all stdin lines) into notifications in input order; lines that
/// cannot be handled become errors without affecting the others.
pub fn analyze(
    repo: &Repository,
    lines: Vec<RawUpdate>,
    context: &PushContext,
) -> Vec<Result<Notification, UpdateError>> {
    let classified: Vec<Result<Classified, UpdateError>> =
        lines.into_iter().map(|raw| classify(repo, raw)).collect();
    let announced: Vec<&Classified> = classified
        .iter()
        .filter_map(|result| result.as_ref().ok())
        .filter(|c| context.announce_notes || c.update.kind != RefKind::Notes)
        .collect();
    let result = compute(repo, &announced, context);
    let mut computed = match result {
        Ok(computed) => computed.into_iter(),
        Err(err) => {
            return classified
                .into_iter()
                .map(|c| c.and_then(|c| Err(UpdateError::git(c.line, &c.update.refname, &err))))
                .collect()
        }
    };
    classified
        .into_iter()
        .filter_map(|result| match result {
            Ok(c) if !context.announce_notes && c.update.kind == RefKind::Notes => None,
            Ok(_) => computed.next(),
            Err(err) => Some(Err(err)),
        })
        .collect()
}

/// The commit lists of every announced update, in the order given.
fn compute(
    repo: &Repository,
    updates: &[&Classified],
    context: &PushContext,
) -> Result<Vec<Result<Notification, UpdateError>>, git2::Error> {
    let pushed: HashSet<&str> = updates.iter().map(|c| c.update.refname.as_str()).collect();
    let other_refs = other_ref_commits(repo, &pushed)?;
    let old_commits: Vec<Oid> = updates.iter().filter_map(|c| c.old_commit).collect();
    let mut excluded: Vec<Oid> = other_refs.iter().chain(&old_commits).copied().collect();

    // Owner order: each new commit belongs to the first update that reaches it.
    let mut order: Vec<usize> = (0..updates.len()).collect();
    order.sort_by_key(|&i| {
        (
            owner_rank(&updates[i].update),
            updates[i].update.refname.clone(),
        )
    });
    let mut new_lists: Vec<Vec<Oid>> = vec![Vec::new(); updates.len()];
    for &i in &order {
        if let Some(new) = updates[i].new_commit {
            new_lists[i] = walk(repo, &[new], &excluded)?;
            excluded.push(new);
        }
    }
    let all_new: HashSet<Oid> = new_lists.iter().flatten().copied().collect();
    let current_refs: Vec<Oid> = other_refs
        .iter()
        .copied()
        .chain(updates.iter().filter_map(|c| c.new_commit))
        .collect();

    let keep = context.max_listed;
    let ids = |list: Vec<Oid>| IdList::collect(list.into_iter().map(|id| id.to_string()), keep);
    let mut notifications = Vec::with_capacity(updates.len());
    for (c, new_list) in updates.iter().zip(new_lists) {
        let known = match (c.update.change, c.new_commit) {
            (Change::Update, Some(new)) => walk(repo, &[new], c.old_commit.as_slice())?,
            (Change::Create, Some(new)) => walk(repo, &[new], &other_refs)?,
            _ => Vec::new(),
        };
        let known = known
            .into_iter()
            .filter(|id| !all_new.contains(id))
            .collect();
        let (discarded, omitted) = lost_commits(repo, c, &current_refs)?;
        notifications.push(Ok(Notification {
            new_commits: ids(new_list),
            known_commits: ids(known),
            discarded_commits: ids(discarded),
            omitted_commits: ids(omitted),
            tag: c.tag.clone(),
            ..Notification::new(&context.repo_name, &context.pusher, c.update.clone())
        }));
    }
    Ok(notifications)
}

/// Commits that left the ref: those reachable from nothing now (discarded) and
/// those still on some other ref (omitted). Only rewinds, forced updates and
/// deletes lose commits; for deletes "omitted" would be the whole shared history,
/// so only discarded commits are listed.
fn lost_commits(
    repo: &Repository,
    c: &Classified,
    current_refs: &[Oid],
) -> Result<(Vec<Oid>, Vec<Oid>), git2::Error> {
    let Some(old) = c.old_commit else {
        return Ok((Vec::new(), Vec::new()));
    };
    match (c.update.change, c.update.shape) {
        (Change::Delete, _) => Ok((walk(repo, &[old], current_refs)?, Vec::new())),
        (Change::Update, Some(UpdateShape::Rewind | UpdateShape::NonFastForward)) => {
            let left = walk(repo, &[old], c.new_commit.as_slice())?;
            let discarded = walk(repo, &[old], current_refs)?;
            let gone: HashSet<Oid> = discarded.iter().copied().collect();
            let omitted = left.into_iter().filter(|id| !gone.contains(id)).collect();
            Ok((discarded, omitted))
        }
        _ => Ok((Vec::new(), Vec::new())),
    }
}

/// git-multimail's order of ownership for new commits.
fn owner_rank(update: &RefUpdate) -> u8 {
    use Change::*;
    use RefKind::*;
    match (update.kind, update.change) {
        (Branch, Update) => 0,
        (Branch, Create) => 1,
        (AnnotatedTag, Update) => 2,
        (AnnotatedTag, Create) => 3,
        (LightweightTag, Update) => 4,
        (LightweightTag, Create) => 5,
        (Branch, Delete) => 6,
        (AnnotatedTag, Delete) => 7,
        (LightweightTag, Delete) => 8,
        (Other | Notes, Update) => 9,
        (Other | Notes, Create) => 10,
        (Other | Notes, Delete) => 11,
    }
}

/// Commits each ref outside this push points at (tags peeled), notes excluded.
fn other_ref_commits(repo: &Repository, pushed: &HashSet<&str>) -> Result<Vec<Oid>, git2::Error> {
    let mut commits = Vec::new();
    for reference in repo.references()? {
        let reference = reference?;
        let Ok(name) = reference.name() else { continue };
        if pushed.contains(name) || name.starts_with("refs/notes/") {
            continue;
        }
        if let Ok(commit) = reference.peel_to_commit() {
            commits.push(commit.id());
        }
    }
    Ok(commits)
}

/// Commits reachable from `tips` but from none of `hidden`, newest first.
pub(crate) fn walk(
    repo: &Repository,
    tips: &[Oid],
    hidden: &[Oid],
) -> Result<Vec<Oid>, git2::Error> {
    let mut walker: Revwalk = repo.revwalk()?;
    walker.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
    for &tip in tips {
        walker.push(tip)?;
    }
    for &id in hidden {
        walker.hide(id)?;
    }
    walker.collect()
}

/// Parses a full id of this repository's object format.
pub(crate) fn parse_id(repo: &Repository, id: &str) -> Result<Oid, git2::Error> {
    Oid::from_str_ext(id, repo.object_format())
}

/// Classifies one input line: create/update/delete, ref kind, and shape.
fn classify(repo: &Repository, raw: RawUpdate) -> Result<Classified, UpdateError> {
    let RawUpdate {
        line,
        oldrev,
        newrev,
        refname,
    } = raw;
    let null_len = super::hex_len(repo);
    if oldrev.len() != null_len {
        return Err(UpdateError::WrongIdLength {
            line,
            expected: null_len,
        });
    }
    let change = match (is_null_id(&oldrev), is_null_id(&newrev)) {
        (true, true) => {
            return Err(UpdateError::git(
                line,
                &refname,
                &"both old and new ids are null",
            ))
        }
        (true, false) => Change::Create,
        (false, true) => Change::Delete,
        (false, false) => Change::Update,
    };
    let lookup = |id: &str| -> Result<Option<git2::Object>, UpdateError> {
        if is_null_id(id) {
            return Ok(None);
        }
        let unknown = || UpdateError::UnknownRevision {
            line,
            id: id.to_string(),
            refname: refname.clone(),
        };
        let oid = parse_id(repo, id).map_err(|_| unknown())?;
        repo.find_object(oid, None).map(Some).map_err(|_| unknown())
    };
    let old = lookup(&oldrev)?;
    let new = lookup(&newrev)?;
    let current = new.as_ref().or(old.as_ref()).expect("one side is not null");
    let kind = ref_kind(&refname, current.kind());
    let peel = |object: &Option<git2::Object>| {
        object
            .as_ref()
            .and_then(|o| o.peel(ObjectType::Commit).ok())
            .map(|o| o.id())
    };
    let (old_commit, new_commit) = (peel(&old), peel(&new));
    let shape = match (change, old_commit, new_commit) {
        (Change::Update, Some(old), Some(new)) => {
            Some(shape(repo, old, new).map_err(|err| UpdateError::git(line, &refname, &err))?)
        }
        _ => None,
    };
    let tag = match &new {
        Some(object) if kind == RefKind::AnnotatedTag => object.as_tag().map(annotated_tag),
        _ => None,
    };
    Ok(Classified {
        line,
        update: RefUpdate {
            refname,
            oldrev,
            newrev,
            kind,
            change,
            shape,
        },
        old_commit,
        new_commit,
        tag,
    })
}

/// The kind of ref, from the type of the object it names and its namespace.
pub(crate) fn ref_kind(refname: &str, object_type: Option<ObjectType>) -> RefKind {
    if refname.starts_with("refs/notes/") {
        return RefKind::Notes;
    }
    match object_type {
        Some(ObjectType::Tag) => RefKind::AnnotatedTag,
        Some(ObjectType::Commit) if refname.starts_with("refs/heads/") => RefKind::Branch,
        Some(ObjectType::Commit) if refname.starts_with("refs/tags/") => RefKind::LightweightTag,
        _ => RefKind::Other,
    }
}

/// Fast-forward, rewind or neither.
pub(crate) fn shape(repo: &Repository, old: Oid, new: Oid) -> Result<UpdateShape, git2::Error> {
    Ok(if old == new || repo.graph_descendant_of(new, old)? {
        UpdateShape::FastForward
    } else if repo.graph_descendant_of(old, new)? {
        UpdateShape::Rewind
    } else {
        UpdateShape::NonFastForward
    })
}

fn annotated_tag(tag: &git2::Tag) -> crate::model::AnnotatedTag {
    let decode = |bytes: &[u8]| crate::text::decode_text(bytes, None).into_owned();
    crate::model::AnnotatedTag {
        name: decode(tag.name_bytes()),
        target: tag.target_id().to_string(),
        target_type: tag
            .target_type()
            .map_or("unknown", |kind| kind.str())
            .to_string(),
        tagger: tag
            .tagger()
            .map(|sig| super::commits::signature(&sig, None)),
        message: decode(tag.message_bytes().unwrap_or_default()),
    }
}
