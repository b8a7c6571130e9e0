//! Actions in the listener: a bounded pool of threads of their own (a slow
//! build trigger never delays a mirror's fetch) running [`crate::action`]
//! chains. Before an action's first step, its (`hookbus-id`, action) record
//! is on disk ([`Remembered`]), so a redelivered message does not start it
//! twice. Every step's result is reported like a mirror's work; `publish`
//! steps go through the daemon's outbox, `mirror` steps ask the mirror pool
//! and wait for their turn. [`refused`] reports work a signature did not
//! allow; `group` shares one subscription's actions across listeners.

use super::mirror::provision::onchange;
use super::pending::Ticket;
use super::report::{Event, Report};
use super::threads::{Queue, Threads};
use crate::action::run::{Effects, StepResult};
use crate::action::step::{Kind, Step};
use crate::action::Action;
use crate::bus::Publisher;
use crate::deliver::outbox::Outbox;
use crate::inbound::Received;
use crate::message::Message;
use remember::Remembered;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

pub(super) mod group;
pub mod refused;
pub mod remember;

/// How a mirror step asks for a mirror's update: the worker pool answers,
/// from the room above ([`super::ops`]: it also runs operators' commands).
pub trait Mirrors: Send + Sync {
    /// Asks for an update of the mirror `wanted` names (its name, its repo
    /// when unique on the host, or its clone path); the update's event comes
    /// on `reply`. False when it names none.
    fn update(&self, wanted: &str, reply: Sender<Event>) -> bool;
}

/// What steps need from the daemon; replaced as a whole on reload, while
/// running chains finish with the one they started with.
pub struct Context {
    /// This machine.
    pub host: String,
    /// The daemon's outbox.
    pub outbox: Outbox,
    /// Publishes what publish steps store.
    pub publisher: Publisher,
    /// The mirror pool.
    pub mirrors: Box<dyn Mirrors>,
    /// Started actions.
    pub remembered: Remembered,
    /// How long a mirror step waits for its update.
    pub mirror_wait: Duration,
}

/// One chain to run.
pub struct Job {
    /// The message to acknowledge when it is done.
    pub ticket: Ticket,
    /// The action.
    pub action: Arc<Action>,
    /// The message, as read.
    pub message: Arc<Received>,
    /// The daemon's side.
    pub context: Arc<Context>,
}

/// What the runner tells the daemon.
pub enum Done {
    /// A step's result, to report.
    Step(Box<ActionEvent>),
    /// A chain finished (or was not started again): its message's turn.
    Chain(Ticket),
}

/// One step's result, as reported.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ActionEvent {
    /// This machine.
    pub host: String,
    /// The action.
    pub action: String,
    /// The step (`step 2`, `step 2 on_failure`).
    pub step: String,
    /// `http`, `exec`, `publish` or `mirror`.
    pub kind: String,
    /// The message's repository.
    pub repo: String,
    /// Its refname.
    pub refname: String,
    /// Its new revision.
    pub newrev: String,
    /// Its SVN project.
    pub project: String,
    /// Its `hookbus-id`.
    pub hookbus_id: Option<String>,
    /// `ok` or `failed`.
    pub result: String,
    /// How long the step took.
    pub duration_ms: u64,
    /// exec: the exit status.
    pub exit_code: Option<i32>,
    /// http: the last status.
    pub http_status: Option<u16>,
    /// http: attempts made.
    pub attempts: u32,
    /// Why it failed.
    pub error: Option<String>,
    /// The output's tail.
    pub output: String,
}

impl ActionEvent {
    fn new(
        host: &str,
        action: &str,
        step: &Step,
        message: &Received,
        result: &StepResult,
    ) -> ActionEvent {
        ActionEvent {
            host: host.to_string(),
            action: action.to_string(),
            step: step.label.clone(),
            kind: match step.kind {
                Kind::Http(_) => "http",
                Kind::Exec(_) => "exec",
                Kind::Publish(_) => "publish",
                Kind::Mirror(_) => "mirror",
            }
            .to_string(),
            repo: message.fact("repo"),
            refname: message.fact("refname"),
            newrev: message.fact("newrev"),
            project: message.fact("project"),
            hookbus_id: message.id.clone(),
            result: if result.ok { "ok" } else { "failed" }.to_string(),
            duration_ms: result.duration.as_millis() as u64,
            exit_code: result.exit_code,
            http_status: result.http_status,
            attempts: result.attempts,
            error: result.reason.clone(),
            output: result.output.clone(),
        }
    }
}

impl Report for ActionEvent {
    fn log_line(&self) -> String {
        let mut line = format!(
            "listen: action {} {} ({}) {} ({} ms)",
            self.action, self.step, self.kind, self.result, self.duration_ms
        );
        if let Some(status) = self.http_status {
            line.push_str(&format!(" HTTP {status}"));
        }
        if let Some(code) = self.exit_code {
            line.push_str(&format!(" exit {code}"));
        }
        if let Some(error) = &self.error {
            line.push_str(&format!(": {error}"));
        }
        line
    }

    fn subject(&self) -> String {
        format!(
            "{} action {} {} {}",
            self.host, self.action, self.step, self.result
        )
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("action".to_string(), self.action.clone()),
            ("step".to_string(), self.step.clone()),
            ("result".to_string(), self.result.clone()),
        ]
    }

    fn json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

/// The chains waiting for a thread.
#[derive(Default)]
struct Jobs(VecDeque<Job>);

impl Queue for Jobs {
    type Work = Job;

    fn take(&mut self) -> Option<Job> {
        self.0.pop_front()
    }
}

/// The pool of action threads.
pub struct Runner {
    threads: Threads<Jobs>,
    done: Receiver<Done>,
}

impl Runner {
    /// Starts `threads` threads.
    pub fn start(threads: usize) -> Runner {
        let (sender, done) = mpsc::channel();
        let chain = move |job: &Job| {
            run(job, &sender);
            let _ = sender.send(Done::Chain(job.ticket));
        };
        let threads = Threads::start(threads, Jobs::default(), chain);
        Runner { threads, done }
    }

    /// Queues a chain.
    pub fn submit(&self, job: Job) {
        self.threads.submit(|jobs| jobs.0.push_back(job));
    }

    /// What happened since the last call.
    pub fn finished(&self) -> Vec<Done> {
        self.done.try_iter().collect()
    }

    /// True when no chain runs (after [`Runner::stop`], none waits either).
    pub fn idle(&self) -> bool {
        self.threads.idle()
    }

    /// Starts no more chains (queued ones are dropped: their messages are not
    /// acknowledged and come again); running ones go on to their end.
    pub fn stop(&self) {
        self.threads.with(|jobs| jobs.0.clear());
        self.threads.stop();
    }
}

/// Runs one chain, unless its record says it already started.
fn run(job: &Job, sender: &Sender<Done>) {
    let context = &job.context;
    let name = &job.action.name;
    if let Some(id) = &job.message.id {
        match context.remembered.claim(id, name) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!(
                    "hookbus: listen: action {name} already started for message {id}; not again"
                );
                return;
            }
            Err(error) => {
                // Unrecorded, a redelivery could start it twice: better not now.
                eprintln!("hookbus: listen: action {name} not started for message {id}: {error:#}");
                return;
            }
        }
    }
    let effects = Steps { context, sender };
    crate::action::run::run(&job.action, &job.message, &context.host, &effects);
}

/// The daemon's side of steps.
struct Steps<'a> {
    context: &'a Context,
    sender: &'a Sender<Done>,
}

impl Effects for Steps<'_> {
    fn publish(&self, message: Message) -> Result<String, String> {
        onchange::publish(&self.context.outbox, &self.context.publisher, message)
    }

    fn mirror(&self, name: &str) -> Result<String, String> {
        let (reply, answer) = mpsc::channel();
        if !self.context.mirrors.update(name, reply) {
            return Err(format!(
                "there is no mirror {name:?} on this host (neither a name nor a clone path)"
            ));
        }
        match answer.recv_timeout(self.context.mirror_wait) {
            Ok(event) if event.result == "ok" => Ok(event.log_line()),
            Ok(event) => Err(event.error.unwrap_or(event.result)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "mirror {name} was not updated within {} s",
                self.context.mirror_wait.as_secs()
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(format!("mirror {name} is no longer configured"))
            }
        }
    }

    fn report(&self, action: &str, step: &Step, message: &Received, result: &StepResult) {
        let event = ActionEvent::new(&self.context.host, action, step, message, result);
        let _ = self.sender.send(Done::Step(Box::new(event)));
    }
}
