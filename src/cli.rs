//! The command line: argument definitions and the wiring of library parts into
//! commands. Nothing below this module knows it exists.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hookbus::config::Config;
use hookbus::deliver::broker::{Broker, Waiting};
use hookbus::deliver::dry_run::{to_json_line, DryRun};
use hookbus::deliver::flush;
use hookbus::deliver::outbox::Outbox;
use hookbus::deliver::{Message, Outcome, Transport};
use hookbus::emit::{self, Report};
use hookbus::git::{self, HookEnv, PushContext, ReplayRequest};
use hookbus::install::{self, Installed};
use hookbus::legacy::LegacyConfig;
use hookbus::model::{CommitSource, Notification};
use hookbus::render::MAX_LISTED_IDS;
use hookbus::route::Router;
use hookbus::stomp::{Publisher, Retry};
use hookbus::svn::{RevisionRange, SvnRepository};
use hookbus::syslog::{Severity, Syslog};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit statuses; documented in hookbus(1). Bad command-line usage exits with 2
/// (clap's own status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything was handled.
    Ok = 0,
    /// The config file is missing, unreadable or invalid.
    Config = 3,
    /// Some input (a stdin line, a revision) was bad; the rest was handled.
    Input = 4,
    /// The repository is missing or could not be read.
    Repository = 5,
    /// Messages could not be delivered or saved anywhere (for `flush`: some
    /// are still waiting, or were refused for good).
    Delivery = 6,
}

impl Status {
    fn worst(self, other: Status) -> Status {
        if other as u8 > self as u8 {
            other
        } else {
            self
        }
    }
}

/// A failure with the status it exits with.
pub struct Failure {
    status: Status,
    error: anyhow::Error,
}

trait WithStatus<T> {
    fn status(self, status: Status) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> WithStatus<T> for Result<T, E> {
    fn status(self, status: Status) -> Result<T, Failure> {
        self.map_err(|error| Failure {
            status,
            error: error.into(),
        })
    }
}

/// What `--help` and hookbus(1) say after the options.
const AFTER_HELP: &str = "\
Exit status:
  0  done
  2  bad usage
  3  bad or unreadable config
  4  bad input (a malformed stdin line, an unknown revision); the other refs were still handled
  5  repository missing or unreadable
  6  messages could neither be delivered nor saved; for flush: messages are
     still waiting or were dead-lettered

Delivery:
  With a [broker], every message is saved in the outbox first, then published,
  older messages first. A hook waits at most [broker] deadline_ms and leaves the
  rest queued for the next push or `hookbus flush` (run it from a timer). Delivery
  is at least once: a re-sent message keeps its hookbus-id header, so consumers
  can drop duplicates. Messages the broker refuses for good wait in outbox/dead/.

Environment:
  HOOKBUS_CONFIG  config file when --config is not given
  HOOKBUS_OUTBOX  outbox directory when [outbox] dir is not set
  GL_USER, GL_REPO  set by gitolite: the pusher and the repository name

Files:
  /etc/hookbus/hookbus.toml  the config, see hookbus.toml(5)";

/// Turns git pushes and Subversion commits into messages on STOMP brokers.
#[derive(Debug, Parser)]
#[command(
    name = "hookbus",
    version,
    about,
    long_about = None,
    after_long_help = AFTER_HELP,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Config file [default: $HOOKBUS_CONFIG, else /etc/hookbus/hookbus.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Say more on stderr (repeat for even more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run as a git post-receive hook: read `OLD NEW REFNAME` lines on stdin and
    /// emit one message per ref update and matching route
    PostReceive {
        /// Print the messages as JSON lines instead of sending them
        #[arg(long)]
        dry_run: bool,
        /// The repository [default: $GIT_DIR or the current directory]
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
    /// Emit what a push of OLDREV..NEWREV to REFNAME would have, treating every
    /// commit in the range as new
    Replay {
        /// Print the messages as JSON lines instead of sending them
        #[arg(long)]
        dry_run: bool,
        /// The repository [default: $GIT_DIR or the current directory]
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
        /// One message per commit, oldest first, as if pushed one by one
        #[arg(long)]
        each: bool,
        /// The ref the commits were pushed to, e.g. refs/heads/master
        refname: String,
        /// Where the ref was before (any revision; all zeros for "from the start")
        oldrev: String,
        /// Where the ref went (any revision)
        newrev: String,
    },
    /// Install the post-receive hook into bare repositories; an existing
    /// post-receive is kept and chained, never replaced
    Install {
        /// One repository
        #[arg(long, value_name = "DIR", required_unless_present = "all")]
        repo: Option<PathBuf>,
        /// Every bare repository below BASEDIR, except those [repos] skip names
        /// (gitolite-admin by default)
        #[arg(long, value_name = "BASEDIR", conflicts_with = "repo")]
        all: Option<PathBuf>,
        /// The hookbus binary the hook runs [default: this one]
        #[arg(long, value_name = "PATH")]
        hookbus: Option<PathBuf>,
    },
    /// Work with config files
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Run as a Subversion post-commit hook: emit one message per (project,
    /// branch) revision REV touches and matching route
    SvnPostCommit {
        #[command(flatten)]
        svn: SvnArgs,
        /// The revision that was committed
        rev: u64,
        /// The transaction name svn passes (unused)
        txn: Option<String>,
    },
    /// Emit what the post-commit hook would have for each revision of FROM[:TO]
    /// (TO may be HEAD), oldest first
    SvnReplay {
        #[command(flatten)]
        svn: SvnArgs,
        /// Revisions: N, FROM:TO or FROM:HEAD
        range: String,
    },
    /// Publish stdin, byte for byte, as one message
    Send {
        /// Print the message as a JSON line instead of sending it
        #[arg(long)]
        dry_run: bool,
        /// Where to send it, e.g. /topic/builds
        #[arg(long, value_name = "D")]
        destination: String,
        /// An extra header (repeatable)
        #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// The subject header
        #[arg(long)]
        subject: Option<String>,
    },
    /// Validate the config and try each broker: reachable, authenticated,
    /// protocol version, round trip
    Check,
    /// Deliver the messages waiting in the outbox, oldest first, stopping at the
    /// first failure; messages the broker refuses for good become dead letters
    ///
    /// Safe to run at any time, beside hooks and other flushes: one lock on the
    /// outbox makes sure no two processes send the same message. Meant for a
    /// timer (contrib/systemd) or cron, as the user the hooks run as, so that it
    /// finds the same outbox. Exits 0 when the outbox is empty, 6 when messages
    /// are still waiting (the broker is down) or were moved to outbox/dead/ by
    /// this run (see `hookbus outbox list`).
    Flush {
        /// How long to wait for another hookbus that is delivering from the
        /// outbox (seconds)
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        wait: u64,
    },
    /// Run the deploy-host daemon until SIGTERM: subscribe to [listen]
    /// subscribe and keep every [[mirror]] up to date (fetch, checkout,
    /// in-place or branches); SIGHUP reloads the config
    ///
    /// Each message is acknowledged only after its mirrors' work finished, so
    /// nothing is lost in a crash; every mirror is also fetched at start and
    /// every [listen] poll_s. One JSON event per piece of work goes to [listen]
    /// report through the outbox. See hookbus.toml(5) and the README's "Deploy
    /// hosts".
    Listen,
    /// Look at messages waiting in the local outbox, and dead letters
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
}

/// What both Subversion commands take.
#[derive(Debug, clap::Args)]
struct SvnArgs {
    /// Print the messages as JSON lines instead of sending them
    #[arg(long)]
    dry_run: bool,
    /// The repository's name in messages [default: its path below [repos] base,
    /// else its directory name]
    #[arg(long, env = "HOOKBUS_REPO_NAME", value_name = "NAME")]
    name: Option<String>,
    /// The repository directory (svn passes it to hooks)
    repos: PathBuf,
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Print the hookbus.toml equivalent of the seed's Ruby config
    /// (stomp-postrec.yaml, svn-stomp.yaml, or the deploy daemon's
    /// stomp-git.yaml), with comments where its options were silently ignored
    ImportLegacy {
        /// The seed's YAML file
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxAction {
    /// List waiting messages, oldest first, then dead letters with their reasons
    List,
    /// Print the messages of one file as JSON lines (like --dry-run)
    Show {
        /// The file name as `list` shows it, without `#N` (a unique prefix is
        /// enough; `dead/NAME` for a dead letter)
        name: String,
    },
    /// Put dead letters back in the outbox, ahead of newer messages, for the
    /// next flush
    Retry {
        /// Dead letters as `list` shows them (`dead/NAME`)
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every dead letter
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// Parses arguments, runs the command and reports errors on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match run(&cli) {
        Ok(status) => status,
        Err(failure) => {
            eprintln!("hookbus: error: {:#}", failure.error);
            failure.status
        }
    };
    ExitCode::from(status as u8)
}

fn run(cli: &Cli) -> Result<Status, Failure> {
    if let Command::Config {
        action: ConfigAction::ImportLegacy { file },
    } = &cli.command
    {
        return import_legacy(file);
    }
    let config = Config::load(cli.config.as_deref()).status(Status::Config)?;
    match &cli.command {
        Command::PostReceive { dry_run, repo } => {
            post_receive(cli, &config, *dry_run, repo.clone())
        }
        Command::Replay {
            dry_run,
            repo,
            each,
            refname,
            oldrev,
            newrev,
        } => {
            let request = ReplayRequest {
                refname: refname.clone(),
                oldrev: oldrev.clone(),
                newrev: newrev.clone(),
                each: *each,
            };
            replay(cli, &config, *dry_run, repo.clone(), &request)
        }
        Command::Install { repo, all, hookbus } => {
            install(&config, repo.as_deref(), all.as_deref(), hookbus.clone())
        }
        Command::SvnPostCommit { svn, rev, txn: _ } => {
            let range = RevisionRange {
                from: *rev,
                to: Some(*rev),
            };
            svn_emit(cli, &config, svn, range, true)
        }
        Command::SvnReplay { svn, range } => {
            let range = RevisionRange::parse(range).status(Status::Input)?;
            svn_emit(cli, &config, svn, range, false)
        }
        Command::Send {
            dry_run,
            destination,
            headers,
            subject,
        } => send(&config, *dry_run, destination, headers, subject.as_deref()),
        Command::Check => check(&config),
        Command::Flush { wait } => flush(&config, Duration::from_secs(*wait)),
        Command::Outbox { action } => outbox(&config, action),
        Command::Listen => hookbus::listen::run(config, cli.config.clone())
            .map(|()| Status::Ok)
            .status(Status::Config),
        Command::Config { .. } => unreachable!("handled before the config is loaded"),
    }
}

/// The repository, its per-repo settings and the naming context of a run.
struct Opened {
    repo: git2::Repository,
    context: PushContext,
    router: Router,
    /// Why hooks stay silent for this repository, if they do.
    silenced: Option<&'static str>,
}

fn open(config: &Config, dir: Option<PathBuf>) -> Result<Opened, Failure> {
    let repo = git::open(dir.as_deref()).status(Status::Repository)?;
    let settings = git::settings(&repo).status(Status::Config)?;
    let env = HookEnv::from_process();
    let router = Router::new(&config.effective_routes()).status(Status::Config)?;
    let router = match &settings.routes {
        Some(names) => router.select(names),
        None => router,
    };
    let repo_name = git::repo_name(&repo, &settings, &env, config.repos.base.as_deref());
    let silenced = if !settings.enabled {
        Some("git config hookbus.enabled = false")
    } else if config.repos.is_skipped(&repo_name) {
        Some("its name matches [repos] skip")
    } else {
        None
    };
    let context = PushContext {
        repo_name,
        pusher: env.pusher(),
        announce_notes: config.git.announce_notes,
        max_listed: config.limits.max_commits + MAX_LISTED_IDS,
    };
    Ok(Opened {
        repo,
        context,
        router,
        silenced,
    })
}

fn post_receive(
    cli: &Cli,
    config: &Config,
    dry_run: bool,
    dir: Option<PathBuf>,
) -> Result<Status, Failure> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .status(Status::Input)?;
    let opened = open(config, dir)?;
    if let Some(reason) = opened.silenced {
        if cli.verbose > 0 {
            eprintln!(
                "hookbus: {}: nothing sent: {reason}",
                opened.context.repo_name
            );
        }
        return Ok(Status::Ok);
    }
    let mut status = Status::Ok;
    let mut lines = Vec::new();
    for parsed in git::input::parse(&input) {
        match parsed {
            Ok(line) => lines.push(line),
            Err(err) => {
                eprintln!("hookbus: error: {err}");
                status = Status::Input;
            }
        }
    }
    let mut notifications = Vec::new();
    for result in git::analyze(&opened.repo, lines, &opened.context) {
        match result {
            Ok(notification) => notifications.push(notification),
            Err(err) => {
                eprintln!("hookbus: error: {err}");
                status = Status::Input;
            }
        }
    }
    let source = git::GitCommits::new(&opened.repo);
    let run = Run {
        cli,
        config,
        router: &opened.router,
        dry_run,
        hook: true,
    };
    Ok(status.worst(run.emit(&notifications, &source)?))
}

fn replay(
    cli: &Cli,
    config: &Config,
    dry_run: bool,
    dir: Option<PathBuf>,
    request: &ReplayRequest,
) -> Result<Status, Failure> {
    let opened = open(config, dir)?;
    let notifications =
        git::replay(&opened.repo, request, &opened.context).status(Status::Input)?;
    let source = git::GitCommits::new(&opened.repo);
    let run = Run {
        cli,
        config,
        router: &opened.router,
        dry_run,
        hook: false,
    };
    run.emit(&notifications, &source)
}

/// Emits the messages of each revision in `range`, oldest first. A revision that
/// cannot be read is reported and the others still emitted.
fn svn_emit(
    cli: &Cli,
    config: &Config,
    args: &SvnArgs,
    range: RevisionRange,
    hook: bool,
) -> Result<Status, Failure> {
    let repo = SvnRepository::open(
        &args.repos,
        &config.svn,
        args.name.as_deref(),
        config.repos.base.as_deref(),
    )
    .status(Status::Repository)?;
    let router = Router::new(&config.effective_routes()).status(Status::Config)?;
    let mut status = Status::Ok;
    let mut notifications = Vec::new();
    for revision in repo.revisions(range).status(Status::Input)? {
        match repo.notifications(revision) {
            Ok(mut more) => notifications.append(&mut more),
            Err(err) => {
                eprintln!("hookbus: error: r{revision} of {}: {err:#}", repo.name());
                status = Status::Repository;
            }
        }
    }
    let run = Run {
        cli,
        config,
        router: &router,
        dry_run: args.dry_run,
        hook,
    };
    Ok(status.worst(run.emit(&notifications, &repo)?))
}

/// What every emitting command shares: options, config and the routes in force.
struct Run<'a> {
    cli: &'a Cli,
    config: &'a Config,
    router: &'a Router,
    dry_run: bool,
    /// Run by git or svn: delivery waits at most the configured bound, and
    /// `background = true` applies.
    hook: bool,
}

impl Run<'_> {
    /// Renders and delivers, reporting on stderr what happened.
    fn emit(
        &self,
        notifications: &[Notification],
        source: &dyn CommitSource,
    ) -> Result<Status, Failure> {
        let waiting = self.waiting();
        let mut transport = transport(self.config, self.dry_run, waiting)?;
        let report: Report = emit::emit(
            notifications,
            source,
            self.router,
            &self.config.limits,
            transport.as_mut(),
        )
        .status(Status::Delivery)?;
        drop(transport); // lets go of the outbox lock before a background flush
        let outcome = &report.delivered;
        if !self.dry_run {
            say_outcome(self.config, outcome, waiting);
            if waiting == Some(Waiting::Never) && outcome.queued > 0 {
                if let Err(error) = spawn_flush(self.cli) {
                    eprintln!("hookbus: messages are queued, but {error:#}; run `hookbus flush`");
                }
            }
            let severity = if outcome.queued_because.is_some() || outcome.dead_lettered > 0 {
                Severity::Warning
            } else {
                Severity::Info
            };
            log_line(
                self.cli,
                self.config,
                severity,
                &push_line(notifications, &report),
            );
        }
        for failure in &report.failures {
            eprintln!("hookbus: error: {failure:#}");
        }
        Ok(if report.failures.is_empty() {
            Status::Ok
        } else {
            Status::Repository
        })
    }

    /// How long delivery may take; `None` without a broker.
    fn waiting(&self) -> Option<Waiting> {
        let broker = self.config.broker.as_ref()?;
        Some(match (self.hook, broker.background) {
            (true, true) => Waiting::Never,
            (true, false) => Waiting::Bounded(Duration::from_millis(broker.deadline_ms)),
            (false, _) => Waiting::PerPublish,
        })
    }
}

/// The pusher's view: nothing when all went out (or goes out in the
/// background), else one line saying where the messages wait and what sends them.
fn say_outcome(config: &Config, outcome: &Outcome, waiting: Option<Waiting>) {
    let dir = config.outbox_dir();
    if let Some(why) = &outcome.unsaved_because {
        eprintln!(
            "hookbus: {} message(s) could not be saved ({why}); they were published directly",
            outcome.unsaved
        );
    }
    if outcome.dead_lettered > 0 {
        eprintln!(
            "hookbus: {} message(s) refused by the broker for good, kept in {} (see `hookbus outbox list`)",
            outcome.dead_lettered,
            dir.join("dead").display()
        );
    }
    match waiting {
        None if outcome.queued > 0 => eprintln!(
            "hookbus: {} message(s) saved in outbox {} (no [broker] configured)",
            outcome.queued,
            dir.display()
        ),
        Some(Waiting::Bounded(_) | Waiting::PerPublish) if outcome.queued > 0 => eprintln!(
            "hookbus: {} message(s) queued in {} ({}); the next push or `hookbus flush` delivers them",
            outcome.queued,
            dir.display(),
            outcome
                .queued_because
                .as_deref()
                .unwrap_or("not delivered yet")
        ),
        _ => {}
    }
}

/// The log line of one emitting run: repository, refs, counts.
fn push_line(notifications: &[Notification], report: &Report) -> String {
    const SHOWN_REFS: usize = 5;
    let repo = notifications.first().map_or("-", |n| n.repo.as_str());
    let mut refs: Vec<&str> = Vec::new();
    for notification in notifications {
        let refname = notification.update.refname.as_str();
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
fn log_line(cli: &Cli, config: &Config, severity: Severity, line: &str) {
    if std::io::stderr().is_terminal() || cli.verbose > 0 {
        eprintln!("hookbus: {line}");
    }
    to_syslog(config, severity, line);
}

/// Sends a line to the configured syslog socket, unless a person watches
/// stderr (a terminal), where the line already went.
fn to_syslog(config: &Config, severity: Severity, line: &str) {
    if std::io::stderr().is_terminal() {
        return;
    }
    if let Some(socket) = config.log.syslog_socket() {
        Syslog::new(socket).send(severity, line);
    }
}

/// Starts `hookbus flush` detached from the hook: its own process group, no
/// stdin, stdout or stderr, so git does not wait for it.
fn spawn_flush(cli: &Cli) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().context("cannot find the hookbus binary")?;
    let mut command = Command::new(exe);
    if let Some(config) = &cli.config {
        command.arg("--config").arg(config);
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

fn install(
    config: &Config,
    repo: Option<&Path>,
    all: Option<&Path>,
    hookbus: Option<PathBuf>,
) -> Result<Status, Failure> {
    let hookbus = match hookbus {
        Some(path) => path,
        None => std::env::current_exe()
            .context("cannot tell where this hookbus binary is; pass --hookbus PATH")
            .status(Status::Config)?,
    };
    let repos = match (repo, all) {
        (Some(repo), _) => vec![repo.to_path_buf()],
        (None, Some(base)) => install::find_bare_repos(base)
            .status(Status::Repository)?
            .into_iter()
            .filter(|found| !config.repos.is_skipped(&install::name_below(base, found)))
            .collect(),
        (None, None) => unreachable!("clap requires --repo or --all"),
    };
    let mut status = Status::Ok;
    for repo in repos {
        match install::install(&repo, &hookbus) {
            Ok(Installed::Fresh) => println!("{}: installed", repo.display()),
            Ok(Installed::AlreadyThere) => println!("{}: already installed", repo.display()),
            Ok(Installed::Chained { previous }) => println!(
                "{}: chained: the existing post-receive now runs from {}, then hookbus",
                repo.display(),
                previous.display()
            ),
            Err(err) => {
                eprintln!("hookbus: error: {}: {err:#}", repo.display());
                status = Status::Repository;
            }
        }
    }
    Ok(status)
}

fn import_legacy(file: &Path) -> Result<Status, Failure> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .status(Status::Input)?;
    let legacy = LegacyConfig::parse(&text)
        .with_context(|| format!("{} is not a seed hook config", file.display()))
        .status(Status::Input)?;
    let name = file
        .file_name()
        .unwrap_or(file.as_os_str())
        .to_string_lossy();
    print!("{}", legacy.to_toml(&name));
    Ok(Status::Ok)
}

/// Where messages go: stdout for `--dry-run`, the outbox and then the broker
/// when one is configured, else the outbox.
fn transport(
    config: &Config,
    dry_run: bool,
    waiting: Option<Waiting>,
) -> Result<Box<dyn Transport>, Failure> {
    if dry_run {
        return Ok(Box::new(DryRun::new(std::io::stdout().lock())));
    }
    let outbox = Outbox::new(config.outbox_dir());
    match (publisher(config)?, waiting) {
        (Some(publisher), Some(waiting)) => Ok(Box::new(Broker::new(publisher, outbox, waiting))),
        _ => Ok(Box::new(outbox)),
    }
}

/// The configured publisher, with its warnings said on stderr.
fn publisher(config: &Config) -> Result<Option<Publisher>, Failure> {
    let Some(broker) = &config.broker else {
        return Ok(None);
    };
    let settings = broker
        .resolve(config.source.as_deref())
        .status(Status::Config)?;
    for warning in &settings.warnings {
        eprintln!("hookbus: {warning}");
    }
    Publisher::new(settings).status(Status::Config).map(Some)
}

fn send(
    config: &Config,
    dry_run: bool,
    destination: &str,
    headers: &[(String, String)],
    subject: Option<&str>,
) -> Result<Status, Failure> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .status(Status::Input)?;
    let message = Message::compose(destination, subject, headers, body).status(Status::Input)?;
    let waiting = config.broker.as_ref().map(|_| Waiting::PerPublish);
    let mut transport = transport(config, dry_run, waiting)?;
    let mut outcome = transport
        .deliver(std::slice::from_ref(&message))
        .status(Status::Delivery)?;
    outcome.add(transport.finish().status(Status::Delivery)?);
    if !dry_run {
        say_outcome(config, &outcome, waiting);
    }
    Ok(Status::Ok)
}

fn check(config: &Config) -> Result<Status, Failure> {
    let Some(publisher) = publisher(config)? else {
        println!("config is valid; no [broker] configured: messages stay in the outbox");
        return Ok(Status::Ok);
    };
    let mut usable = false;
    for report in publisher.check() {
        match report.result {
            Ok((session, round_trip)) => {
                usable = true;
                println!(
                    "{}: reachable, authenticated, STOMP {} ({}), round trip {:.1} ms",
                    report.host,
                    session.version,
                    session.server.as_deref().unwrap_or("server unnamed"),
                    round_trip.as_secs_f64() * 1000.0
                );
            }
            Err(error) if error.is_unreachable() => {
                println!("{}: unreachable: {error}", report.host)
            }
            Err(error) => println!("{}: reachable, not usable: {error}", report.host),
        }
    }
    let outbox = Outbox::new(config.outbox_dir());
    match (outbox.list(), outbox.list_dead()) {
        (Ok(waiting), Ok(dead)) => println!(
            "outbox {}: {} file(s) waiting, {} dead letter(s)",
            outbox.dir().display(),
            waiting.len(),
            dead.len()
        ),
        (Err(error), _) | (_, Err(error)) => println!("outbox: {error:#}"),
    }
    if usable {
        Ok(Status::Ok)
    } else {
        Err(Failure {
            status: Status::Delivery,
            error: anyhow::anyhow!("no broker in [broker] url is usable"),
        })
    }
}

/// `hookbus flush`: delivers the outbox under its lock.
fn flush(config: &Config, wait: Duration) -> Result<Status, Failure> {
    let Some(publisher) = publisher(config)? else {
        return Err(Failure {
            status: Status::Config,
            error: anyhow::anyhow!(
                "no [broker] configured, so there is nowhere to flush to; add a [broker] table (see hookbus.toml(5))"
            ),
        });
    };
    let outbox = Outbox::new(config.outbox_dir());
    let Some(_lock) = outbox.lock(wait).status(Status::Delivery)? else {
        eprintln!(
            "hookbus: flush: another hookbus is still delivering from {} after {} s; it sends these messages",
            outbox.dir().display(),
            wait.as_secs()
        );
        return Ok(Status::Ok);
    };
    outbox.remove_stale_temps();
    let report =
        flush::flush(&outbox, &publisher, None, Retry::UntilDeadline).status(Status::Delivery)?;
    let mut left = 0;
    for entry in outbox.list().status(Status::Delivery)? {
        left += outbox
            .read_if_present(&entry)
            .map_or(1, |messages| messages.map_or(0, |messages| messages.len()));
    }
    let mut line = format!(
        "flush: {} delivered, {} dead-lettered, {left} left in {}",
        report.delivered,
        report.dead_lettered,
        outbox.dir().display()
    );
    if let Some(stopped) = &report.stopped {
        line.push_str(&format!(" ({})", stopped.reason));
    }
    eprintln!("hookbus: {line}");
    for damaged in &report.set_aside {
        eprintln!("hookbus: set aside in dead/: {damaged}");
    }
    let trouble = left > 0 || report.dead_lettered > 0 || !report.set_aside.is_empty();
    let severity = if trouble {
        Severity::Warning
    } else {
        Severity::Info
    };
    if report.delivered > 0 || trouble {
        to_syslog(config, severity, &line);
    }
    Ok(if trouble {
        Status::Delivery
    } else {
        Status::Ok
    })
}

fn outbox(config: &Config, action: &OutboxAction) -> Result<Status, Failure> {
    let outbox = Outbox::new(config.outbox_dir());
    let mut out = std::io::stdout().lock();
    match action {
        OutboxAction::List => {
            let mut waiting = 0;
            for entry in &outbox.list().status(Status::Delivery)? {
                // A file a flush delivered since the listing is simply gone.
                let messages = outbox.read_if_present(entry).status(Status::Delivery)?;
                for (index, message) in messages.iter().flatten().enumerate() {
                    waiting += 1;
                    let _ = writeln!(
                        out,
                        "{}#{index}\t{}\t{}",
                        entry.name,
                        message.destination,
                        message.header("subject").unwrap_or("")
                    );
                }
            }
            let mut dead = 0;
            for entry in &outbox.list_dead().status(Status::Delivery)? {
                match outbox.read_letters(entry) {
                    Ok(letters) => {
                        for (index, letter) in letters.iter().enumerate() {
                            dead += 1;
                            let _ = writeln!(
                                out,
                                "{}#{index}\t{}\t{}\t{}",
                                entry.name,
                                letter.message.destination,
                                letter.message.header("subject").unwrap_or(""),
                                letter.reason
                            );
                        }
                    }
                    Err(error) => {
                        dead += 1;
                        let _ = writeln!(out, "{}\t\t\t{error:#}", entry.name);
                    }
                }
            }
            eprintln!(
                "hookbus: {waiting} message(s) waiting, {dead} dead letter(s) in {}",
                outbox.dir().display()
            );
        }
        OutboxAction::Show { name } => {
            let name = name.split('#').next().unwrap_or(name);
            let entry = outbox.find(name).status(Status::Input)?;
            let letters = outbox.read_letters(&entry).status(Status::Delivery)?;
            for letter in letters {
                let _ = writeln!(out, "{}", to_json_line(&letter.message));
            }
        }
        OutboxAction::Retry { names, all } => {
            let entries = if *all {
                outbox.list_dead().status(Status::Delivery)?
            } else {
                names
                    .iter()
                    .map(|name| {
                        let name = name.split('#').next().unwrap_or(name);
                        let name = if name.starts_with("dead/") {
                            name.to_string()
                        } else {
                            format!("dead/{name}")
                        };
                        outbox.find(&name)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
                    .status(Status::Input)?
            };
            for entry in &entries {
                outbox.retry(entry).status(Status::Delivery)?;
            }
            eprintln!(
                "hookbus: {} dead letter file(s) put back in {}; `hookbus flush` sends them",
                entries.len(),
                outbox.dir().display()
            );
        }
    }
    Ok(Status::Ok)
}
