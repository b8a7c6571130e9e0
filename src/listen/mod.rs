//! `hookbus listen`: the deploy-host daemon. It subscribes to the commits
//! topic and keeps local mirrors up to date. Its rooms:
//!
//! - this module is only the loop: the link to the broker, polls,
//!   acknowledgements (`pending` counts each message's work down), signals
//!   (`signals`: the flags their handlers set), reloads;
//! - `settings`: what the daemon builds from its `[listen]` and `[[mirror]]`
//!   tables ([`crate::config::listen`], [`crate::config::mirror`]);
//! - [`plan`]: which mirrors and actions want a message ([`crate::inbound`]
//!   reads what it says);
//! - [`mirror`]: the engine — one mirror's fetch and checkout, publishing
//!   trees, running git, provisioning (sparse, links, on-change);
//! - [`actions`]: the runner of `[[action]]` chains ([`crate::action`]), what
//!   it remembers across restarts, one run per message across a group of
//!   listeners, refusals of unsigned work;
//! - [`ops`]: the mirrors' work as the status board allows — the worker
//!   pool, the board, the control socket for `hookbus ctl`, metrics and
//!   presence;
//! - [`report`]: the events every room tells the world.
//!
//! Uses go one way (`scripts/rooms src/listen` checks): `mirror` uses no
//! other room; `actions` uses `mirror`; `ops` uses both (the pool answers
//! actions' mirror steps through [`actions::Mirrors`]); `settings` builds
//! their pieces from the config; this module wires them. The single files
//! (`report`, `plan`, `threads`, `pending`, …) use none of the rooms.

pub mod actions;
pub mod legacy;
mod link;
pub mod mirror;
pub mod ops;
mod pending;
pub mod plan;
pub mod report;
mod settings;
mod signals;
mod threads;

use crate::bus::{AckToken, Incoming};
use crate::config::Config;
use crate::inbound;
use actions::{group, refused};
use anyhow::{Context, Result};
use link::Link;
use ops::control::{self, server::Server};
use ops::remote;
use ops::status::Board;
use ops::telemetry::{self, Telemetry};
use ops::worker::{Pool, Request};
use pending::{Pending, Pendings, Ticket};
use plan::{Decision, Skip};
use report::Reporter;
use settings::{action_context, mirror_configs, start_reporter, Settings};
use signals::Signals;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one turn of the loop waits for a message.
const TICK: Duration = Duration::from_millis(100);
/// How long SIGTERM waits for running git to finish.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// What the daemon counts (logged at exit).
#[derive(Debug, Default)]
struct Counts {
    received: u64,
    unwanted: u64,
    unusable: u64,
    duplicates: u64,
}

/// Runs until SIGTERM (or SIGINT). `config_file` is read again on SIGHUP.
pub fn run(config: Config, config_file: Option<PathBuf>) -> Result<()> {
    let signals = Signals::register().context("cannot catch signals")?;
    let settings = Settings::from_config(&config)?;
    crate::private_file::Access::private().ensure_dir(settings.outbox.dir())?;
    let listen = config.listen.as_ref().expect("checked by Settings");
    let host = config.host.clone();
    let lock = control::server::lock_state_dir(&settings.state_dir)?;
    mirror::clear_git_locks(&settings.mirrors);
    let board = Board::open(&settings.state_dir, &mirror_configs(&settings))?;
    let telemetry = Telemetry::start(listen, &settings.publisher, &host, board.clone())?;
    let server = Server::start(
        lock,
        &settings.state_dir,
        settings.control_group,
        board.clone(),
    )?;
    let pool = Pool::start(
        settings.workers,
        host.clone(),
        settings.mirrors.clone(),
        board.clone(),
    );
    let reporter = start_reporter(&settings);
    settings.remembered.expire();
    let context = action_context(&settings, &pool, host);
    let mut daemon = Daemon {
        actions: actions::Runner::start(settings.action_workers),
        context,
        link: Link::new(),
        settings,
        pool,
        reporter,
        pending: Pendings::default(),
        answered: group::Answered::default(),
        remote: remote::Remote::default(),
        counts: Counts::default(),
        next_poll: Instant::now(),
        config_file,
        board,
        telemetry,
        server,
    };
    eprintln!(
        "hookbus: listen: started with {} mirror(s) and {} action(s), subscribing to {}",
        daemon.settings.mirrors.len(),
        daemon.settings.actions.len(),
        daemon.settings.spec.destinations.join(", ")
    );
    while !signals.stop.load(Ordering::Relaxed) {
        if signals.reload.swap(false, Ordering::Relaxed) {
            daemon.reload();
        }
        daemon.turn();
    }
    daemon.shut_down();
    Ok(())
}

struct Daemon {
    settings: Settings,
    actions: actions::Runner,
    context: Arc<actions::Context>,
    link: Link,
    pool: Pool,
    reporter: Reporter,
    pending: Pendings,
    answered: group::Answered,
    /// Fleet commands waiting for their answers.
    remote: remote::Remote,
    counts: Counts,
    next_poll: Instant,
    config_file: Option<PathBuf>,
    board: Board,
    /// Metrics and presence.
    telemetry: Telemetry,
    /// The control socket (`hookbus ctl`); holds the state directory's lock.
    server: Server,
}

impl Daemon {
    /// One turn: finished work acknowledged and reported, a poll if due, then
    /// a message (or a reconnect) waited for up to [`TICK`].
    fn turn(&mut self) {
        self.collect();
        for job in self.server.jobs() {
            control::server::dispatch(job, &self.settings.mirrors, &self.pool);
        }
        if Instant::now() >= self.next_poll {
            for mirror in &self.settings.mirrors {
                self.pool.submit(&mirror.config.path, Request::default());
            }
            self.next_poll = match self.settings.poll_every {
                Some(every) => Instant::now() + every,
                None => Instant::now() + Duration::from_secs(u64::MAX / 4),
            };
        }
        if let Some(delivery) = self
            .link
            .next(&self.settings.publisher, &self.settings.spec, TICK)
        {
            match delivery.dropped_body {
                Some(size) => self.oversized(&delivery.headers, size, delivery.ack),
                None if delivery.control => self.commanded(delivery),
                None => self.received(delivery),
            }
        }
        for answered in self.remote.answered() {
            self.reporter.send(answered);
        }
        self.telemetry
            .link(self.link.is_connected(), self.link.generation());
    }

    fn received(&mut self, delivery: Incoming) {
        let (ack, shared) = (delivery.ack, delivery.shared);
        self.counts.received += 1;
        self.telemetry.metrics.message_received();
        let grouped = self.settings.spec.group.is_some();
        let settings = &self.settings;
        let (mirrors, actions) =
            group::wanted(shared, grouped, &settings.mirrors, &settings.actions);
        let mirrors = mirrors.iter().map(|mirror| &mirror.config);
        let reading = inbound::read_trusting(&delivery.headers, &delivery.body, &settings.trust);
        let decision = plan::decide(reading, self.answered.of(shared), mirrors, actions);
        let work = match plan::gate(decision, settings.require) {
            Decision::Work(work) => work,
            Decision::Skip(skip) => {
                match skip {
                    Skip::Duplicate => self.telemetry.metrics.duplicate(),
                    _ => self.telemetry.metrics.ignored(),
                }
                match skip {
                    Skip::Keepalive => {}
                    Skip::Unusable(reason) => {
                        self.counts.unusable += 1;
                        eprintln!("hookbus: listen: ignored a message: {reason}");
                    }
                    Skip::Duplicate => self.counts.duplicates += 1,
                    Skip::Unwanted => self.counts.unwanted += 1,
                    Skip::Refused { message, reason } => self.refused(&message, &reason),
                }
                self.telemetry.metrics.acked();
                return self.link.ack(&ack);
            }
        };
        if let Some(reason) = &work.refused {
            self.refused(&work.message, reason);
        }
        let ticket = self.pending.open(Pending {
            ack,
            generation: self.link.generation(),
            remaining: work.mirrors.len() + work.actions.len(),
            id: work.message.id.clone(),
            shared,
            sent_at: telemetry::sent_at(&work.message.headers),
        });
        for path in &work.mirrors {
            let request = Request {
                message: Some(Arc::clone(&work.message)),
                ticket: Some(ticket),
                on_change_withheld: work.on_change_withheld.clone(),
                ..Request::default()
            };
            self.pool.submit(path, request);
        }
        for action in work.actions {
            self.actions.submit(actions::Job {
                ticket,
                action,
                message: Arc::clone(&work.message),
                context: Arc::clone(&self.context),
            });
        }
    }

    /// A fleet command: dispatched as `hookbus ctl`'s, or reported refused;
    /// acknowledged at once (its subscription is not durable).
    fn commanded(&mut self, delivery: Incoming) {
        let settings = &self.settings;
        let taking = remote::Taking {
            trust: &settings.commands,
            host: &self.context.host,
            remembered: &settings.remembered,
        };
        match self.remote.take(&delivery, &taking) {
            remote::Taken::Job(job) => {
                control::server::dispatch(job, &settings.mirrors, &self.pool)
            }
            remote::Taken::Refused(report) => self.reporter.send(*report),
            remote::Taken::Elsewhere => {}
        }
        self.link.ack(&delivery.ack);
    }

    /// A message whose signature withheld (some of) its work.
    fn refused(&mut self, message: &inbound::Received, reason: &str) {
        let (host, require) = (&self.context.host, self.settings.require);
        (self.reporter).send(refused::Refused::new(host, message, reason, require));
    }

    /// A message whose body was too large to hold: reported, then
    /// acknowledged so that the broker does not give it again.
    fn oversized(&mut self, headers: &[(String, String)], size: u64, ack: AckToken) {
        self.counts.received += 1;
        self.counts.unusable += 1;
        self.telemetry.metrics.message_received();
        self.telemetry.metrics.ignored();
        (self.reporter).send(report::Oversized::new(&self.context.host, headers, size));
        self.telemetry.metrics.acked();
        self.link.ack(&ack);
    }

    /// Acknowledges messages whose work is all done, and reports the work.
    fn collect(&mut self) {
        for finished in self.pool.finished() {
            if let Some(event) = &finished.event {
                self.telemetry.finished(event);
                for ticket in &finished.tickets {
                    if let Some(sent_at) = self.pending.sent_at(*ticket) {
                        self.telemetry.answered(event, sent_at);
                    }
                }
            }
            if let Some(event) = finished.event {
                let replies = finished.replies;
                let answer = move || replies.into_iter().for_each(control::Reply::send);
                self.reporter.send_then(event, answer);
            }
            for ticket in finished.tickets {
                self.answered(ticket);
            }
        }
        for done in self.actions.finished() {
            match done {
                actions::Done::Step(event) => {
                    let ok = event.result == "ok";
                    self.telemetry.metrics.action_run(&event.action, ok);
                    self.reporter.send(*event);
                }
                actions::Done::Chain(ticket) => self.answered(ticket),
            }
        }
    }

    /// One piece of a message's work is done; the last one acknowledges it.
    fn answered(&mut self, ticket: Ticket) {
        let Some(pending) = self.pending.answered(ticket) else {
            return;
        };
        if let Some(id) = pending.id {
            self.answered.insert(pending.shared, id);
        }
        if pending.generation == self.link.generation() {
            self.telemetry.metrics.acked();
            self.link.ack(&pending.ack);
        }
    }

    /// SIGHUP: reads the config again; a bad one is reported and the old kept.
    fn reload(&mut self) {
        let loaded = Config::load(self.config_file.as_deref())
            .and_then(|config| Settings::from_config(&config));
        match loaded {
            Ok(settings) => {
                // Compared as values: their Debug text hides passcodes.
                let broker_changed = settings.publisher != self.settings.publisher;
                let reconnect = broker_changed || settings.spec != self.settings.spec;
                if broker_changed || settings.report != self.settings.report {
                    std::mem::replace(&mut self.reporter, start_reporter(&settings)).finish();
                }
                self.pool.set_mirrors(settings.mirrors.clone());
                self.board.set_mirrors(&mirror_configs(&settings));
                self.context = action_context(&settings, &self.pool, self.context.host.clone());
                self.settings = settings;
                self.next_poll = Instant::now();
                if reconnect {
                    self.link.drop_connection("the config changed");
                }
                eprintln!(
                    "hookbus: listen: config reloaded: {} mirror(s), {} action(s){}",
                    self.settings.mirrors.len(),
                    self.settings.actions.len(),
                    if reconnect { ", reconnecting" } else { "" }
                );
            }
            Err(error) => {
                eprintln!("hookbus: listen: config not reloaded, keeping the old one: {error:#}")
            }
        }
    }

    /// SIGTERM: no more messages; running updates finish (bounded), their
    /// messages are acknowledged, then goodbye.
    fn shut_down(mut self) {
        eprintln!("hookbus: listen: stopping");
        self.actions.stop();
        let until = Instant::now() + STOP_WAIT;
        // Running chains may still ask for a mirror's update.
        while !self.actions.idle() && Instant::now() < until {
            self.collect();
            std::thread::sleep(Duration::from_millis(20));
        }
        self.pool.stop();
        while !self.pool.idle() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.collect();
        self.link.close();
        self.server.stop();
        self.reporter.finish();
        self.telemetry.finish();
        let counts = &self.counts;
        eprintln!(
            "hookbus: listen: stopped ({} received, {} for no mirror or action, {} unusable, {} duplicates)",
            counts.received, counts.unwanted, counts.unusable, counts.duplicates
        );
    }
}
