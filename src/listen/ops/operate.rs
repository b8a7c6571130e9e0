//! A mirror's work as its state on the [`Board`] allows, and the operator's
//! commands for it (`hookbus ctl`): a held mirror (FROZEN, ROLLED-BACK) only
//! fetches, every update is recorded on the board, and freeze, unfreeze and
//! rollback change the board (and for rollback the target). Run by the
//! worker pool, so commands are serialised with the mirror's updates.

use super::control::{Job, Reply, Request as Control, Response, Verdict};
use super::status::{Board, Change, MirrorState, Outcome};
use crate::config::mirror::Mode;
use crate::listen::mirror::{Done, Mirror};
use crate::listen::report::Event;
use anyhow::{anyhow, Result};
use std::time::Instant;

mod chain;

/// What the board says after a piece of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The mirror's state now.
    pub state: MirrorState,
    /// The change the work made, if any.
    pub change: Option<Change>,
    /// How the mirror's on-change chain went, when it ran or was skipped.
    pub on_change: Option<String>,
}

impl Recorded {
    /// Puts the state (and the one before, when it changed) on `event`.
    pub fn describe(&self, event: &mut Event) {
        event.state = Some(self.state.as_str().to_string());
        event.previous_state = self.change.map(|change| change.from.as_str().to_string());
        event.on_change.clone_from(&self.on_change);
    }
}

/// Updates `mirror` (fetch only while it is held), records the result, and
/// runs its on-change chain when the published commit moved (`host` for its
/// templates). With `withheld` (why the messages that asked may not run
/// on-change steps) a mirror that has them only fetches: its target moves,
/// and its chain runs, on the next update a poll, `hookbus ctl` or a trusted
/// message asks for.
pub fn update(
    mirror: &Mirror,
    board: &Board,
    host: &str,
    withheld: Option<&str>,
) -> (Result<Done>, Recorded) {
    let name = mirror.config.name();
    let before = board.get(&name);
    let held = before.as_ref().is_some_and(|status| status.state.is_held());
    let withheld = withheld.filter(|_| mirror.on_change.is_some() && !held);
    let mut result = if held || withheld.is_some() {
        mirror.fetch().map(|()| Done::default())
    } else {
        mirror.update()
    };
    let outcome = match &result {
        Ok(_) if mirror.config.mode == Mode::Fetch => {
            Outcome::Done(mirror.remote_branch(&mirror.config.branch).ok())
        }
        Ok(done) => Outcome::Done(done.head.clone()),
        Err(error) => Outcome::Failed(format!("{error:#}")),
    };
    let change = board.updated(&name, &outcome).unwrap_or_else(|error| {
        eprintln!("hookbus: listen: mirror {name}: {error:#}");
        None
    });
    // A failed update keeps its own error on the board, not a chain's.
    let followed = match &result {
        Ok(done) => chain::follow(mirror, board, host, before, done.head.as_deref(), change),
        Err(_) => chain::Followed {
            change,
            ..chain::Followed::default()
        },
    };
    if let Some(failure) = &followed.failure {
        result = Err(anyhow!("{failure}"));
    }
    let on_change = match withheld {
        Some(why) => Some(format!("withheld ({why}): fetched only")),
        None => followed.on_change,
    };
    (result, recorded(board, &name, followed.change, on_change))
}

/// The board's word on `name` after `change`, with how its on-change chain went.
fn recorded(
    board: &Board,
    name: &str,
    change: Option<Change>,
    on_change: Option<String>,
) -> Recorded {
    let state = board
        .get(name)
        .map_or(MirrorState::Ok, |status| status.state);
    Recorded {
        state,
        change,
        on_change,
    }
}

/// A batch of work for one mirror, as the worker pool hands it over.
pub struct Batch<'a> {
    /// The `hookbus ctl` commands, in order.
    pub jobs: Vec<&'a Job>,
    /// A message or a poll asked for an update.
    pub asked: bool,
}

impl Batch<'_> {
    /// True when the batch needs an update of the mirror: a message, a poll,
    /// a sync, or an unfreeze (which catches up at once).
    fn wants_update(&self) -> bool {
        self.asked
            || (self.jobs.iter())
                .any(|job| matches!(job.request, Control::Sync { .. } | Control::Unfreeze { .. }))
    }
}

/// A batch's work: its commands in order, then, when it wants one, the update
/// `update` runs and describes. Every event comes with the answers to send
/// once it is stored.
pub fn batch(
    mirror: &Mirror,
    batch: &Batch,
    host: &str,
    board: &Board,
    update: impl FnOnce() -> Event,
) -> Vec<(Event, Vec<Reply>)> {
    let (mut events, waiting) = commands(mirror, batch, host, board);
    if batch.wants_update() {
        let event = update();
        let replies = answer(waiting, mirror, &event, board);
        events.push((event, replies));
    }
    events
}

/// What a command came to.
struct Answer {
    response: Response,
    change: Option<Change>,
    /// The commit it published (rollback).
    head: Option<String>,
    /// How the on-change chain went (rollback).
    on_change: Option<String>,
}

/// Runs the batch's commands in order, before its update. Returns one event
/// per command with its answer, and the commands whose answer waits for the
/// update (sync, and a successful unfreeze: it answers once caught up).
fn commands(
    mirror: &Mirror,
    batch: &Batch,
    host: &str,
    board: &Board,
) -> (Vec<(Event, Vec<Reply>)>, Vec<Job>) {
    let name = mirror.config.name();
    let (mut events, mut waiting) = (Vec::new(), Vec::new());
    for &job in &batch.jobs {
        let start = Instant::now();
        let answer = match &job.request {
            Control::Sync { .. } => {
                waiting.push(job.clone());
                continue;
            }
            Control::Freeze { .. } => held(
                mirror,
                board,
                board.freeze(&name),
                "frozen: its target stays where it is; it still fetches",
            ),
            Control::Unfreeze { .. } => held(mirror, board, board.unfreeze(&name), "unfrozen"),
            Control::Rollback { rev, branch, .. } => {
                rollback(mirror, rev, branch.as_deref(), board, host)
            }
            Control::Status => refused("status is not a mirror command".into()),
        };
        let mut event = base_event(mirror, host);
        event.command = Some(job.request.name().to_string());
        event.duration_ms = start.elapsed().as_millis() as u64;
        event.result = answer.response.verdict.name().to_string();
        if answer.response.verdict != Verdict::Ok {
            event.error = Some(answer.response.message.clone());
        }
        event.head = answer.head;
        recorded(board, &name, answer.change, answer.on_change).describe(&mut event);
        let catches_up = matches!(job.request, Control::Unfreeze { .. });
        if catches_up && answer.response.verdict == Verdict::Ok {
            waiting.push(job.clone());
            events.push((event, Vec::new()));
        } else {
            let reply = Reply {
                to: job.reply.clone(),
                response: answer.response,
            };
            events.push((event, vec![reply]));
        }
    }
    (events, waiting)
}

/// The answers to the commands that waited for the update `event` describes.
fn answer(waiting: Vec<Job>, mirror: &Mirror, event: &Event, board: &Board) -> Vec<Reply> {
    let status = board.get(&mirror.config.name());
    let state = status.as_ref().map_or("?", |status| status.state.as_str());
    let at = status
        .as_ref()
        .and_then(|status| status.commit.as_deref())
        .map(|commit| format!(" at {commit}"))
        .unwrap_or_default();
    let response = match &event.error {
        Some(error) if event.result == "failed" => Response {
            verdict: Verdict::Failed,
            message: format!("the update failed: {error}"),
            mirrors: status.into_iter().collect(),
        },
        _ => Response {
            verdict: Verdict::Ok,
            message: format!("updated: {state}{at}"),
            mirrors: status.into_iter().collect(),
        },
    };
    let reply = |job: Job| Reply {
        to: job.reply,
        response: response.clone(),
    };
    waiting.into_iter().map(reply).collect()
}

/// The fields every event about `mirror` has.
pub fn base_event(mirror: &Mirror, host: &str) -> Event {
    Event {
        host: host.to_string(),
        mirror: mirror.config.name(),
        repo: mirror.config.repo.clone(),
        mode: mirror.config.mode.as_str().to_string(),
        ..Event::default()
    }
}

fn refused(message: String) -> Answer {
    Answer {
        response: Response::refused(message),
        change: None,
        head: None,
        on_change: None,
    }
}

fn failed(message: String) -> Answer {
    Answer {
        response: Response {
            verdict: Verdict::Failed,
            message,
            mirrors: Vec::new(),
        },
        change: None,
        head: None,
        on_change: None,
    }
}

/// The answer to freeze or unfreeze, once the board was told.
fn held(mirror: &Mirror, board: &Board, changed: Result<Option<Change>>, done: &str) -> Answer {
    match changed {
        Err(error) => failed(format!("{error:#}")),
        Ok(change) => Answer {
            response: Response {
                verdict: Verdict::Ok,
                message: match change {
                    Some(_) => done.to_string(),
                    None => "nothing to change".to_string(),
                },
                mirrors: board.get(&mirror.config.name()).into_iter().collect(),
            },
            change,
            head: None,
            on_change: None,
        },
    }
}

/// Publishes `rev` where the mirror's updates publish, then holds it there.
/// Refused for a mirror without a target, a revision that is not one, or a
/// commit the clone does not have.
fn rollback(mirror: &Mirror, rev: &str, branch: Option<&str>, board: &Board, host: &str) -> Answer {
    let config = &mirror.config;
    let name = config.name();
    let branch = match (config.mode, branch) {
        (Mode::Fetch, _) => {
            return refused(format!(
                "mirror {name} only fetches (mode fetch): it has no target to roll back"
            ))
        }
        (Mode::Branches, None) => {
            return refused(format!(
                "mirror {name} publishes every branch (mode branches): say which one with --branch NAME"
            ))
        }
        (Mode::Branches, Some(branch)) if !mirror.publishes_branch(branch) => {
            return refused(format!("mirror {name} publishes no branch {branch:?}"))
        }
        (Mode::Branches, Some(branch)) => branch,
        (_, Some(branch)) if branch != config.branch => {
            return refused(format!(
                "mirror {name} follows branch {}; --branch only chooses among the branches of mode branches",
                config.branch
            ))
        }
        (_, _) => config.branch.as_str(),
    };
    if rev.is_empty()
        || rev.len() > 256
        || rev.starts_with('-')
        || rev.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return refused(format!("{rev:?} is not a revision"));
    }
    let (commit, reference) = match mirror.resolve(rev) {
        Err(error) => return refused(format!("mirror {name}: {error:#}")),
        Ok(None) => {
            return refused(format!(
                "mirror {name} has no commit {rev:?}: its clone {} does not know it (`hookbus ctl sync {name}` fetches what origin has now)",
                config.path.display()
            ))
        }
        Ok(Some(resolved)) => resolved,
    };
    let before = board.get(&name);
    if let Err(error) = mirror.put(&commit, branch) {
        return failed(format!("cannot publish {commit}: {error:#}"));
    }
    match board.rolled_back(&name, &commit) {
        Err(error) => failed(format!(
            "{commit} is published, but the hold could not be recorded, so the next update moves on: {error:#}"
        )),
        Ok(change) => {
            let followed = chain::follow(mirror, board, host, before, Some(&commit), change);
            let (verdict, message) = match &followed.failure {
                Some(failure) => (
                    Verdict::Failed,
                    format!("{branch} rolled back to {commit} ({reference}) and held there, but {failure}"),
                ),
                None => (
                    Verdict::Ok,
                    format!(
                        "{branch} rolled back to {commit} ({reference}) and held there; `hookbus ctl unfreeze {name}` follows {branch} again"
                    ),
                ),
            };
            Answer {
                response: Response {
                    verdict,
                    message,
                    mirrors: board.get(&name).into_iter().collect(),
                },
                change: followed.change,
                head: Some(commit),
                on_change: followed.on_change,
            }
        }
    }
}

#[cfg(test)]
mod tests;
