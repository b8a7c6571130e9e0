//! What a push means: classification of each ref update and git-multimail's
//! whole-push rule for which commits are new and which message owns each.

use super::graph::{walk, Subgraph};
use super::input::{is_null_id, RawUpdate};
use super::{refs, UpdateError};
use crate::model::{Change, IdList, Notification, RefKind, RefUpdate, UpdateShape};
use crate::route::{Routed, Router};
use git2::{ObjectType, Oid, Repository};
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
    /// The refname as git gave it, to match against the repository's refs.
    refname_bytes: Vec<u8>,
    old_commit: Option<Oid>,
    new_commit: Option<Oid>,
    tag: Option<crate::model::AnnotatedTag>,
}

/// Turns one push (all stdin lines) into notifications in input order; lines that
/// cannot be handled become errors without affecting the others. Each update
/// is routed once by `router`; one no route takes still counts for the push
/// rule but gets only its new commits, so that it costs almost nothing.
pub fn analyze(
    repo: &Repository,
    lines: Vec<RawUpdate>,
    context: &PushContext,
    router: &Router,
) -> Vec<Result<Routed, UpdateError>> {
    let classified: Vec<Result<Classified, UpdateError>> =
        lines.into_iter().map(|raw| classify(repo, raw)).collect();
    let announced: Vec<&Classified> = classified
        .iter()
        .filter_map(|result| result.as_ref().ok())
        .filter(|c| context.announce_notes || c.update.kind != RefKind::Notes)
        .collect();
    let result = compute(repo, &announced, context, router);
    let mut computed = match result {
        Ok(computed) => computed.into_iter(),
        Err(err) => {
            let err = format!("{err:#}");
            return classified
                .into_iter()
                .map(|c| c.and_then(|c| Err(UpdateError::git(c.line, &c.update.refname, &err))))
                .collect();
        }
    };
    classified
        .into_iter()
        .filter_map(|result| match result {
            Ok(c) if !context.announce_notes && c.update.kind == RefKind::Notes => None,
            Ok(_) => computed.next().map(Ok),
            Err(err) => Some(Err(err)),
        })
        .collect()
}

/// The commit lists of every announced update, in the order given: git-multimail's
/// rule for the whole push, in a handful of walks whatever the number of refs.
fn compute(
    repo: &Repository,
    updates: &[&Classified],
    context: &PushContext,
    router: &Router,
) -> anyhow::Result<Vec<Routed>> {
    let pushed: HashSet<&[u8]> = updates.iter().map(|c| c.refname_bytes.as_slice()).collect();
    let mut other_refs: Vec<Oid> = refs::list(repo)?
        .into_iter()
        .filter(|tip| {
            !pushed.contains(tip.name.as_slice()) && !tip.name.starts_with(b"refs/notes/")
        })
        .filter_map(|tip| tip.commit)
        .collect();
    other_refs.sort_unstable();
    other_refs.dedup();
    let olds: Vec<Oid> = updates.iter().filter_map(|c| c.old_commit).collect();
    let news: Vec<Oid> = updates.iter().filter_map(|c| c.new_commit).collect();

    // New: reachable from a new value, from no other ref and no old value;
    // each goes to the first update in git-multimail's order that reaches it.
    let mut order: Vec<usize> = (0..updates.len()).collect();
    order.sort_by_key(|&i| (owner_rank(&updates[i].update), &updates[i].refname_bytes));
    let hidden: Vec<Oid> = other_refs.iter().chain(&olds).copied().collect();
    let new_set = Subgraph::walk(repo, &news, &hidden)?;
    let tips_by_rank: Vec<Option<Oid>> = order.iter().map(|&i| updates[i].new_commit).collect();
    let mut new_lists: Vec<Vec<Oid>> = vec![Vec::new(); updates.len()];
    for (rank, list) in new_set.partition(&tips_by_rank)?.into_iter().enumerate() {
        new_lists[order[rank]] = list;
    }
    let all_new: HashSet<Oid> = new_set.ids().iter().copied().collect();

    let keep = context.max_listed;
    let ids = |list: Vec<Oid>| IdList::collect(list.into_iter().map(|id| id.to_string()), keep);
    let mut routed: Vec<Routed> = updates
        .iter()
        .zip(new_lists)
        .map(|(c, new_list)| {
            router.route(Notification {
                new_commits: ids(new_list),
                tag: c.tag.clone(),
                ..Notification::new(&context.repo_name, &context.pusher, c.update.clone())
            })
        })
        .collect();
    let wanted: Vec<bool> = routed.iter().map(Routed::is_routed).collect();
    let chosen = || {
        updates
            .iter()
            .zip(&wanted)
            .filter_map(|(c, &wanted)| wanted.then_some(*c))
    };
    // Known on a created ref: reachable from no other ref, not new, so only
    // through an old value; none at all when no update had an old value.
    let created: Vec<Oid> = chosen()
        .filter(|c| c.update.change == Change::Create)
        .filter_map(|c| c.new_commit)
        .collect();
    let known_set = if olds.is_empty() || created.is_empty() {
        None
    } else {
        Some(Subgraph::walk(repo, &created, &other_refs)?)
            .filter(|set| set.ids().iter().any(|id| !all_new.contains(id)))
    };
    // Discarded: commits that were on a deleted or rewound ref and that no ref
    // reaches now.
    let current: Vec<Oid> = other_refs.iter().chain(&news).copied().collect();
    let losing: Vec<Oid> = chosen()
        .filter(|c| loses_commits(c))
        .filter_map(|c| c.old_commit)
        .collect();
    let lost_set = Subgraph::walk(repo, &losing, &current)?;

    for ((c, routed), wanted) in updates.iter().zip(&mut routed).zip(wanted) {
        if !wanted {
            continue;
        }
        let notification = &mut routed.notification;
        let known = match (c.update.change, c.new_commit, &known_set) {
            (Change::Update, Some(new), _) => walk(repo, &[new], c.old_commit.as_slice())?,
            (Change::Create, Some(new), Some(set)) => set.reachable_from(new)?,
            _ => Vec::new(),
        };
        let known = known.into_iter().filter(|id| !all_new.contains(id));
        notification.known_commits = ids(known.collect());
        if let (true, Some(old)) = (loses_commits(c), c.old_commit) {
            let discarded = lost_set.reachable_from(old)?;
            if c.update.change == Change::Update {
                // Left this ref but still reachable elsewhere. For deletes this
                // would be the whole shared history, so only updates list it.
                let gone: HashSet<Oid> = discarded.iter().copied().collect();
                let left = walk(repo, &[old], c.new_commit.as_slice())?;
                notification.omitted_commits =
                    ids(left.into_iter().filter(|id| !gone.contains(id)).collect());
            }
            notification.discarded_commits = ids(discarded);
        }
    }
    Ok(routed)
}

/// Only deletes, rewinds and forced updates take commits off a ref.
fn loses_commits(c: &Classified) -> bool {
    matches!(
        (c.update.change, c.update.shape),
        (Change::Delete, _)
            | (
                Change::Update,
                Some(UpdateShape::Rewind | UpdateShape::NonFastForward)
            )
    )
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
        refname_bytes,
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
        refname_bytes,
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
