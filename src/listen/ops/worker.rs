//! The worker pool: up to `workers` mirrors updated at once, each mirror's
//! work serialised and coalesced — requests that arrive while a mirror is
//! being updated are answered together by one more update, not one each. A
//! worker that finishes picks its mirror's next batch itself, so a burst
//! never waits for the daemon's loop. A turn is the engine's update as the
//! [`Board`] allows, with the batch's `hookbus ctl` commands ([`operate`]);
//! actions' mirror steps reach the pool through [`actions::Mirrors`].

use super::control::{Job, Reply};
use super::operate::{self, Batch};
use super::status::Board;
use crate::config::select::resolve;
use crate::inbound::Received;
use crate::listen::actions;
use crate::listen::mirror::Mirror;
use crate::listen::pending::Ticket;
use crate::listen::report::Event;
use crate::listen::threads::{Queue, Threads};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

/// Something a mirror should be updated for: a message, or a poll.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The message, as read; `None` for a poll.
    pub message: Option<Arc<Received>>,
    /// The message to acknowledge when done; `None` for a poll.
    pub ticket: Option<Ticket>,
    /// A `hookbus ctl` command, run before the batch's update.
    pub control: Option<Job>,
    /// Who waits for the event (an action's mirror step).
    pub reply: Option<Sender<Event>>,
    /// Why the message may not run on-change steps (see
    /// [`crate::listen::plan::Work::on_change_withheld`]); `None` for polls,
    /// `hookbus ctl` and messages whose signature allows acting.
    pub on_change_withheld: Option<String>,
}

/// A batch of requests answered.
#[derive(Debug)]
pub struct Finished {
    /// The messages answered.
    pub tickets: Vec<Ticket>,
    /// What was done; `None` when the mirror was removed from the config
    /// before its turn came.
    pub event: Option<Event>,
    /// Answers for `hookbus ctl`, sent once the event is stored.
    pub replies: Vec<Reply>,
}

#[derive(Default)]
struct MirrorState {
    waiting: Vec<Request>,
    queued: bool,
    busy: bool,
}

/// The pool's queue: the configured mirrors, the requests waiting for each,
/// and the mirrors whose turn comes next.
#[derive(Default)]
struct Mirrors {
    mirrors: HashMap<PathBuf, Mirror>,
    states: HashMap<PathBuf, MirrorState>,
    queue: VecDeque<PathBuf>,
}

/// One mirror's turn: the requests that waited for it, answered together.
struct Turn {
    path: PathBuf,
    /// `None` when the mirror was removed from the config before its turn.
    mirror: Option<Mirror>,
    batch: Vec<Request>,
}

impl Mirrors {
    fn add(&mut self, path: &Path, request: Request) {
        let state = self.states.entry(path.to_path_buf()).or_default();
        state.waiting.push(request);
        if !state.busy && !state.queued {
            state.queued = true;
            self.queue.push_back(path.to_path_buf());
        }
    }
}

impl Queue for Mirrors {
    type Work = Turn;

    fn take(&mut self) -> Option<Turn> {
        let path = self.queue.pop_front()?;
        let mirror = self.mirrors.get(&path).cloned();
        let state = self.states.entry(path.clone()).or_default();
        state.queued = false;
        state.busy = mirror.is_some();
        let batch = std::mem::take(&mut state.waiting);
        Some(Turn {
            path,
            mirror,
            batch,
        })
    }

    /// The worker that ran a mirror's turn queues its next batch itself.
    fn done(&mut self, turn: Turn) {
        if turn.mirror.is_none() {
            return;
        }
        let state = self.states.entry(turn.path.clone()).or_default();
        state.busy = false;
        if !state.waiting.is_empty() && !state.queued {
            state.queued = true;
            self.queue.push_back(turn.path);
        }
    }
}

/// The pool.
pub struct Pool {
    threads: Threads<Mirrors>,
    finished: Receiver<Finished>,
}

/// Asks the pool for updates from another thread (an action's mirror step).
#[derive(Clone)]
pub struct Submitter {
    threads: Threads<Mirrors>,
}

impl Submitter {
    /// Asks for an update of the mirror at `path`.
    pub fn submit(&self, path: &Path, request: Request) {
        self.threads.submit(|mirrors| mirrors.add(path, request));
    }
}

impl actions::Mirrors for Submitter {
    /// The mirror `wanted` names is looked up ([`resolve`]) now: a reload may
    /// have changed the names.
    fn update(&self, wanted: &str, reply: Sender<Event>) -> bool {
        let found = self.threads.with(|mirrors| {
            let configs = mirrors.mirrors.values().map(|mirror| &mirror.config);
            resolve(wanted, configs).map(|config| config.path.clone())
        });
        let Ok(path) = found else {
            return false;
        };
        let request = Request {
            reply: Some(reply),
            ..Request::default()
        };
        self.submit(&path, request);
        true
    }
}

impl Pool {
    /// Starts `workers` threads; events name `host`; every update is
    /// recorded on `board`.
    pub fn start(workers: usize, host: String, mirrors: Vec<Mirror>, board: Board) -> Pool {
        let (sender, finished) = mpsc::channel();
        let run = move |turn: &Turn| work(turn, &sender, &host, &board);
        let threads = Threads::start(workers, Mirrors::default(), run);
        let pool = Pool { threads, finished };
        pool.set_mirrors(mirrors);
        pool
    }

    /// Replaces the mirrors (a reloaded config); work already running finishes
    /// with the old settings.
    pub fn set_mirrors(&self, mirrors: Vec<Mirror>) {
        self.threads.with(|queue| {
            queue.mirrors = mirrors
                .into_iter()
                .map(|mirror| (mirror.config.path.clone(), mirror))
                .collect();
        });
    }

    /// Asks for an update of the mirror at `path`.
    pub fn submit(&self, path: &Path, request: Request) {
        self.submitter().submit(path, request);
    }

    /// A handle for other threads.
    pub fn submitter(&self) -> Submitter {
        Submitter {
            threads: self.threads.clone(),
        }
    }

    /// Batches answered since the last call.
    pub fn finished(&self) -> Vec<Finished> {
        self.finished.try_iter().collect()
    }

    /// True when no update is running.
    pub fn idle(&self) -> bool {
        self.threads.idle()
    }

    /// Starts no more work; running updates go on to their end.
    pub fn stop(&self) {
        self.threads.stop();
    }
}

/// A mirror's turn: its batch's commands and update, each event sent with
/// the tickets and answers that go with it.
fn work(turn: &Turn, sender: &Sender<Finished>, host: &str, board: &Board) {
    let batch = &turn.batch;
    let tickets: Vec<Ticket> = batch.iter().filter_map(|request| request.ticket).collect();
    let Some(mirror) = &turn.mirror else {
        let _ = sender.send(Finished {
            tickets,
            event: None,
            replies: Vec::new(),
        });
        return;
    };
    let work = Batch {
        jobs: (batch.iter())
            .filter_map(|request| request.control.as_ref())
            .collect(),
        asked: batch.iter().any(|request| request.control.is_none()),
    };
    let events = operate::batch(mirror, &work, host, board, || {
        update(mirror, batch, host, board)
    });
    // An action's mirror step waits for the update's event: the last one
    // (a request with a reply always asks for an update).
    if let Some((event, _)) = events.last() {
        for reply in batch.iter().filter_map(|request| request.reply.as_ref()) {
            let _ = reply.send(event.clone());
        }
    }
    // The tickets go with the last event: acknowledged after all the work
    // (a batch with tickets always has an update, so an event).
    let (mut tickets, last) = (tickets, events.len().saturating_sub(1));
    for (index, (event, replies)) in events.into_iter().enumerate() {
        let tickets = match index == last {
            true => std::mem::take(&mut tickets),
            false => Vec::new(),
        };
        let _ = sender.send(Finished {
            tickets,
            event: Some(event),
            replies,
        });
    }
}

/// Updates one mirror for a batch and describes it.
fn update(mirror: &Mirror, batch: &[Request], host: &str, board: &Board) -> Event {
    let start = Instant::now();
    // On-change steps may run when anything in the batch allows them.
    let withheld: Option<Vec<&String>> = (batch.iter())
        .map(|request| request.on_change_withheld.as_ref())
        .collect();
    let withheld = withheld.and_then(|reasons| reasons.first().map(|why| why.as_str()));
    let (result, recorded) = operate::update(mirror, board, host, withheld);
    let last = batch
        .iter()
        .rev()
        .find_map(|request| request.message.as_deref());
    let mut event = Event {
        repo: (last.and_then(|message| message.repo.clone()))
            .unwrap_or_else(|| mirror.config.repo.clone()),
        refname: last.and_then(|message| message.refname.clone()),
        newrev: last.and_then(|message| message.newrev.clone()),
        duration_ms: start.elapsed().as_millis() as u64,
        hookbus_id: last.and_then(|message| message.id.clone()),
        messages: batch
            .iter()
            .filter(|request| request.ticket.is_some())
            .count(),
        ..operate::base_event(mirror, host)
    };
    recorded.describe(&mut event);
    match result {
        Ok(done) if done.refused.is_empty() => {
            event.result = "ok".into();
            event.head = done.head;
            event.changed = done.changed;
        }
        Ok(done) => {
            event.result = "refused".into();
            event.error = Some(format!(
                "branch names that cannot be a directory were not published: {:?}",
                done.refused
            ));
            event.changed = done.changed;
        }
        Err(error) => {
            event.result = "failed".into();
            event.error = Some(format!("{error:#}"));
        }
    }
    event
}
