//! A mirror's `on_change` steps (gitopper's `action = "reload"`): run once
//! each time the commit at its published tree changes (an update, a
//! rollback, an unfreeze that catches up), never for work that published
//! nothing new. They are [`crate::action`] steps (exec, http, publish),
//! compiled and run by its runner; their templates see `{oldrev}` and
//! `{newrev}` (published before and now; all zeros before the first),
//! `{repo}` and `{branch}` (the mirror's), and `{paths}` (the published paths
//! that changed, one per line). `on_change_paths` globs decide whether a
//! change is one the steps care about. Exec steps run as the mirror's `user`
//! unless they name their own.
//!
//! When the chain runs, and what its failure does to the mirror's state, is
//! the status board's part ([`crate::listen::ops::operate`]).

use crate::action::matcher::Matcher;
use crate::action::run::{self, Effects, StepResult};
use crate::action::step::Step;
use crate::action::Action;
use crate::bus::Publisher;
use crate::config::mirror::MirrorConfig;
use crate::config::provision::on_change_steps;
use crate::deliver::flush;
use crate::deliver::outbox::Outbox;
use crate::inbound::Received;
use crate::listen::mirror::Mirror;
use crate::message::Message;
use crate::text::tail_line;
use anyhow::Result;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::time::Duration;

/// The most changed paths `{paths}` carries (the rest are counted).
const MAX_PATHS: usize = 1000;

/// Longest end of a failed step's output carried into the mirror's error.
const OUTPUT_TAIL: usize = 300;

/// The oldrev before anything was published.
const NOTHING: &str = "0000000000000000000000000000000000000000";

/// How long a publish step waits for the outbox lock before leaving its
/// message for the next delivery.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// A mirror's on-change chain, compiled, with what its publish steps need.
#[derive(Debug)]
pub struct OnChange {
    action: Action,
    paths: Vec<glob::Pattern>,
    outbox: Outbox,
    publisher: Publisher,
}

/// What a change came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Not run, and why (no published path changed, or none matched).
    Skipped(String),
    /// Every step succeeded.
    Done(usize),
    /// A step failed: which, and why.
    Failed(String),
}

impl Ran {
    /// How reports and logs say it.
    pub fn describe(&self) -> String {
        match self {
            Ran::Skipped(why) => format!("skipped: {why}"),
            Ran::Done(steps) => format!("ok ({steps} step(s))"),
            Ran::Failed(why) => format!("failed: {why}"),
        }
    }
}

impl OnChange {
    /// The chain of `config`, if it has one; publish steps go through
    /// `outbox` with `publisher`.
    pub fn build(
        config: &MirrorConfig,
        outbox: &Outbox,
        publisher: &Publisher,
    ) -> Result<Option<std::sync::Arc<OnChange>>> {
        let (steps, paths) = on_change_steps(config)?;
        if steps.is_empty() {
            return Ok(None);
        }
        Ok(Some(std::sync::Arc::new(OnChange {
            action: Action {
                name: format!("on_change {}", config.name()),
                // Never matched: the chain runs for changes, not messages.
                matcher: Matcher::compile(&Default::default())?,
                steps,
            },
            paths,
            outbox: outbox.clone(),
            publisher: publisher.clone(),
        })))
    }

    /// Runs the chain for `mirror`'s change from `old` to `new`, when a
    /// published path that `on_change_paths` wants changed.
    pub fn run(&self, mirror: &Mirror, host: &str, old: Option<&str>, new: &str) -> Ran {
        let config = &mirror.config;
        let changed = match changed_paths(mirror, old, new) {
            Ok(changed) => changed,
            Err(error) => return Ran::Failed(format!("cannot list the changed paths: {error:#}")),
        };
        let mut changed: Vec<String> = (changed.into_iter())
            .filter(|path| config.publishes(path))
            .collect();
        if changed.is_empty() {
            return Ran::Skipped("no published path changed".into());
        }
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let wanted = |path: &String| {
            self.paths.is_empty()
                || (self.paths.iter()).any(|glob| glob.matches_with(path, options))
        };
        if !changed.iter().any(wanted) {
            return Ran::Skipped("no changed path matches on_change_paths".into());
        }
        if changed.len() > MAX_PATHS {
            let more = changed.len() - MAX_PATHS;
            changed.truncate(MAX_PATHS);
            changed.push(format!("… and {more} more"));
        }
        let change = Received {
            destination: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            repo: Some(config.repo.clone()),
            refname: Some(format!("refs/heads/{}", config.branch)),
            oldrev: Some(old.unwrap_or(NOTHING).to_string()),
            newrev: Some(new.to_string()),
            change: Some(if old.is_some() { "update" } else { "create" }.into()),
            project: None,
            pusher: None,
            id: None,
            paths: changed,
            // A change of the published tree, not a message: nothing signed it.
            signature: crate::sign::Signature::Unsigned,
        };
        let effects = Steps {
            on_change: self,
            failed: RefCell::new(None),
        };
        if run::run(&self.action, &change, host, &effects) {
            Ran::Done(self.action.steps.len())
        } else {
            let why = effects.failed.into_inner();
            Ran::Failed(why.unwrap_or_else(|| "a step failed".into()))
        }
    }
}

/// The paths that differ between `old` and `new` (every path of `new` when
/// nothing was published before, or `old` is gone from the clone).
fn changed_paths(mirror: &Mirror, old: Option<&str>, new: &str) -> Result<Vec<String>> {
    let git = |args: &[&str]| {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        mirror.git.run(&mirror.config.path, &args, &[])
    };
    let diff = old.map(|old| git(&["diff", "--no-renames", "--name-only", "-z", old, new, "--"]));
    let listed = match diff {
        Some(Ok(listed)) => listed,
        _ => git(&["ls-tree", "-r", "-z", "--name-only", new])?,
    };
    Ok((listed.split('\0'))
        .filter(|path| !path.is_empty())
        .map(str::to_string)
        .collect())
}

/// The daemon's side of on-change steps: publish through the outbox; the
/// first failing step's reason is kept for the board.
struct Steps<'a> {
    on_change: &'a OnChange,
    failed: RefCell<Option<String>>,
}

impl Effects for Steps<'_> {
    fn publish(&self, message: Message) -> Result<String, String> {
        publish(&self.on_change.outbox, &self.on_change.publisher, message)
    }

    fn mirror(&self, _name: &str) -> Result<String, String> {
        Err("an on_change step cannot update a mirror".into())
    }

    fn report(&self, _action: &str, step: &Step, _change: &Received, result: &StepResult) {
        // A handler's result does not decide the chain; the step's does.
        if result.ok || step.label.contains(" on_") {
            return;
        }
        let mut why = format!(
            "{}: {}",
            step.label,
            result.reason.as_deref().unwrap_or("failed")
        );
        let output = tail_line(&result.output, OUTPUT_TAIL);
        if !output.is_empty() {
            why.push_str(&format!(" ({output})"));
        }
        *self.failed.borrow_mut() = Some(why);
    }
}

/// A publish step's message: stored in `outbox` first, then delivered (a
/// delivery that cannot happen now leaves it for the next one); says what
/// happened. Shared by on-change steps and actions' (a room above).
pub fn publish(outbox: &Outbox, publisher: &Publisher, message: Message) -> Result<String, String> {
    outbox
        .store(&[message])
        .map_err(|error| format!("cannot store the message: {error:#}"))?;
    match flush::flush_waiting(outbox, publisher, LOCK_WAIT) {
        Ok(None) => Ok("stored in the outbox; another delivery is running".into()),
        Ok(Some(report)) => match report.stopped {
            None => Ok(format!(
                "published ({} message(s) delivered)",
                report.delivered
            )),
            Some(stopped) => Ok(format!(
                "stored in the outbox; delivery waits: {}",
                stopped.reason
            )),
        },
        Err(error) => Ok(format!("stored in the outbox; delivery failed: {error:#}")),
    }
}
