//! What the emitting commands share: the transport a run delivers to, and
//! what a run says about it (on stderr and in the system log).

use super::report::{Failure, Reporter, Status, WithStatus};
use anyhow::Context;
use hookbus::bus::Publisher;
use hookbus::config::Config;
use hookbus::deliver::broker::{Broker, Waiting};
use hookbus::deliver::dry_run::DryRun;
use hookbus::deliver::lock::Held;
use hookbus::deliver::relay::board::Board;
use hookbus::deliver::{Outcome, Transport};
use hookbus::emit::{self, Report};
use hookbus::model::CommitSource;
use hookbus::route::{Routed, Router};
use hookbus::syslog::{Severity, Syslog};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// One emitting run: options, config and the routes in force.
pub struct Run<'a> {
    config: &'a Config,
    router: &'a Router,
    dry_run: bool,
    /// Run by git or svn: delivery waits at most the configured bound, and
    /// `background = true` applies.
    hook: bool,
    /// Run inside `hookbus relay`, which delivers what it stores.
    relay: Option<Arc<Board>>,
}

impl<'a> Run<'a> {
    /// A run delivering through `router`; `hook` when git or svn runs it.
    pub fn new(config: &'a Config, router: &'a Router, dry_run: bool, hook: bool) -> Self {
        Run {
            config,
            router,
            dry_run,
            hook,
            relay: None,
        }
    }

    /// With `board`, the same run inside `hookbus relay` (a hook handed its
    /// push over): the relay delivers what it stores, and tells `board` how
    /// that goes.
    pub fn beside_relay(mut self, board: Option<&Arc<Board>>) -> Self {
        self.relay = board.cloned();
        self
    }

    /// Renders and delivers (dry runs print on `out`), reporting what happened.
    pub fn emit(
        &self,
        routed: &[Routed],
        source: &dyn CommitSource,
        out: &mut dyn Write,
        reporter: &mut Reporter,
    ) -> Result<(), Failure> {
        let waiting = waiting(self.config, self.hook);
        let mut transport = transport(
            self.config,
            self.dry_run,
            waiting,
            self.relay.as_ref(),
            out,
            reporter,
        )?;
        let report: Report = emit::emit(
            routed,
            source,
            self.router,
            &self.config.limits,
            transport.as_mut(),
        )
        .status(Status::Delivery)?;
        drop(transport); // lets go of the outbox lock before a background flush
        let outcome = &report.delivered;
        if !self.dry_run {
            say_outcome(self.config, outcome, waiting, reporter);
            let mut line = push_line(routed, &report);
            if waiting == Some(Waiting::Never) && outcome.queued > 0 {
                if relay_holds(self.config) {
                    line.push_str(" (hookbus relay delivers them)");
                } else if let Err(error) = spawn_flush(self.config) {
                    reporter.say(format_args!(
                        "messages are queued, but {error:#}; run `hookbus flush`"
                    ));
                }
            }
            let severity = if outcome.queued_because.is_some() || outcome.dead_lettered > 0 {
                Severity::Warning
            } else {
                Severity::Info
            };
            log_line(self.config, severity, &line, reporter);
        }
        for failure in &report.failures {
            reporter.fail(Status::Repository, format_args!("{failure:#}"));
        }
        Ok(())
    }
}

/// How long delivery may take; `None` without a broker.
pub fn waiting(config: &Config, hook: bool) -> Option<Waiting> {
    let broker = config.broker.as_ref()?;
    Some(match (hook, broker.background) {
        (true, true) => Waiting::Never,
        (true, false) => Waiting::Bounded(Duration::from_millis(broker.deadline_ms)),
        (false, _) => Waiting::PerPublish,
    })
}

/// Where messages go: `out` for `--dry-run`, the outbox and then the broker
/// when one is configured, else the outbox.
pub fn transport<'o>(
    config: &Config,
    dry_run: bool,
    waiting: Option<Waiting>,
    relay: Option<&Arc<Board>>,
    out: &'o mut dyn Write,
    reporter: &mut Reporter,
) -> Result<Box<dyn Transport + 'o>, Failure> {
    if dry_run {
        return Ok(Box::new(DryRun::new(out)));
    }
    let outbox = config.outbox();
    match (publisher(config, reporter)?, waiting) {
        (Some(publisher), Some(waiting)) => {
            let broker = Broker::new(publisher, outbox, waiting);
            Ok(Box::new(broker.beside_relay(relay.cloned())))
        }
        _ => Ok(Box::new(outbox)),
    }
}

/// The configured publisher, with its warnings said on stderr.
pub fn publisher(config: &Config, reporter: &mut Reporter) -> Result<Option<Publisher>, Failure> {
    (config.publisher(|warning| reporter.say(warning))).status(Status::Config)
}

/// The pusher's view: nothing when all went out (or goes out in the
/// background), else one line saying where the messages wait and what sends them.
pub fn say_outcome(
    config: &Config,
    outcome: &Outcome,
    waiting: Option<Waiting>,
    reporter: &mut Reporter,
) {
    let dir = config.outbox_dir();
    if let Some(why) = &outcome.unsaved_because {
        reporter.say(format_args!(
            "{} message(s) could not be saved ({why}); they were published directly",
            outcome.unsaved
        ));
    }
    if outcome.dead_lettered > 0 {
        reporter.say(format_args!(
            "{} message(s) refused by the broker for good, kept in {} (see `hookbus outbox list`)",
            outcome.dead_lettered,
            dir.join("dead").display()
        ));
    }
    match waiting {
        None if outcome.queued > 0 => reporter.say(format_args!(
            "{} message(s) saved in outbox {} (no [broker] configured)",
            outcome.queued,
            dir.display()
        )),
        Some(Waiting::Bounded(_) | Waiting::PerPublish) if outcome.queued > 0 => {
            let because = outcome.queued_because.as_deref();
            let who = if outcome.relay_keeps_trying {
                "it delivers them"
            } else {
                "the next push or `hookbus flush` delivers them"
            };
            reporter.say(format_args!(
                "{} message(s) queued in {} ({}); {who}",
                outcome.queued,
                dir.display(),
                because.unwrap_or("not delivered yet")
            ))
        }
        _ => {}
    }
}

/// The log line of one emitting run: repository, refs, counts.
fn push_line(routed: &[Routed], report: &Report) -> String {
    const SHOWN_REFS: usize = 5;
    let repo = routed.first().map_or("-", |r| r.notification.repo.as_str());
    let mut refs: Vec<&str> = Vec::new();
    for routed in routed {
        let refname = routed.notification.update.refname.as_str();
        if !refs.contains(&refname) {
            refs.push(refname);
        }
    }
    let more = refs.len().saturating_sub(SHOWN_REFS);
    refs.truncate(SHOWN_REFS);
    let mut refs = refs.join(",");
    if more > 0 {
        refs.push_str(&format!(",+{more} more"));
    }
    let outcome = &report.delivered;
    let mut line = format!(
        "{repo}: {refs}: {} message(s), {} delivered, {} queued",
        report.rendered,
        outcome.accepted - outcome.queued,
        outcome.queued
    );
    if outcome.dead_lettered > 0 {
        line.push_str(&format!(", {} dead-lettered", outcome.dead_lettered));
    }
    if let Some(why) = &outcome.queued_because {
        line.push_str(&format!(" ({why})"));
    }
    line
}

/// One line for the record: on stderr when a person watches it (a terminal,
/// or `-v`), in the system log otherwise.
fn log_line(config: &Config, severity: Severity, line: &str, reporter: &mut Reporter) {
    if reporter.watched {
        reporter.say(line);
    }
    to_syslog(config, severity, line);
}

/// Sends a line to the configured syslog socket, unless a person watches
/// stderr (a terminal), where the line already went.
pub fn to_syslog(config: &Config, severity: Severity, line: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return;
    }
    if let Some(socket) = config.log.syslog_socket() {
        Syslog::new(socket).send(severity, line);
    }
}

/// Whether `hookbus relay` holds the outbox: it delivers what a background
/// hook stored (or keeps trying while the broker is unreachable), so the
/// `hookbus flush` a background hook starts would only find the lock taken
/// and exit, a process started for nothing on every push.
fn relay_holds(config: &Config) -> bool {
    matches!(config.outbox().held(), Ok(Held::ByRelay(_)))
}

/// Starts `hookbus flush` detached from the hook: its own process group, no
/// stdin, stdout or stderr, so git does not wait for it. It reads the config
/// this run read.
fn spawn_flush(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().context("cannot find the hookbus binary")?;
    let mut command = Command::new(exe);
    if let Some(file) = &config.source {
        command.arg("--config").arg(file);
    }
    command
        .arg("flush")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start a background `hookbus flush`")?;
    Ok(())
}
