//! The command-line definition: every command, option and argument, with
//! the help text hookbus(1) is generated from.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// What `--help` and hookbus(1) say after the options.
const AFTER_HELP: &str = "\
Exit status:
  0  done
  2  bad usage
  3  bad or unreadable config (a hook still keeps the push for `hookbus flush`)
  4  bad input (a malformed stdin line, an unknown revision); the other refs were still handled
  5  repository missing or unreadable
  6  messages could neither be delivered nor saved (a hook keeps the push);
     for flush: messages or kept pushes are still waiting, or were dead-lettered
  7  ctl: no listener answers on the control socket (not running, or no access);
     fleet freeze|unfreeze|rollback: a host up in --state that GLOB takes did
     not answer within --wait, or no host answered
  8  ctl: the listener refused the command (unknown mirror or commit, a mode
     without a target); nothing changed. fleet: a host refused it (untrusted
     key, replay, unknown mirror)
  9  ctl: the command's work failed (git, the file system); see the message.
     fleet: it failed on a host (the worst of 7, 8 and 9 wins)

Delivery:
  With a [broker], every message is saved in the outbox first, then published,
  older messages first. A hook waits at most [broker] deadline_ms and leaves the
  rest queued for the next push or `hookbus flush` (run it from a timer). Delivery
  is at least once: a re-sent message keeps its hookbus-id header, so consumers
  can drop duplicates. Messages the broker refuses for good wait in outbox/dead/.

Environment:
  HOOKBUS_CONFIG  config file when --config is not given
  HOOKBUS_OUTBOX  outbox directory when [outbox] dir is not set; its pushes/
                  keeps the pushes hooks could not handle, whatever the config
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
    pub config: Option<PathBuf>,

    /// Say more on stderr (repeat for even more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as a git post-receive hook: read `OLD NEW REFNAME` lines on stdin and
    /// emit one message per ref update and matching route
    PostReceive(PostReceiveArgs),
    /// Emit what a push of OLDREV..NEWREV to REFNAME would have, treating every
    /// commit in the range as new
    Replay(ReplayArgs),
    /// Install the post-receive hook into bare repositories; an existing
    /// post-receive is kept and chained, never replaced
    Install(InstallArgs),
    /// Work with config files
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Run as a Subversion post-commit hook: emit one message per (project,
    /// branch) revision REV touches and matching route
    SvnPostCommit(SvnPostCommitArgs),
    /// Emit what the post-commit hook would have for each revision of FROM[:TO]
    /// (TO may be HEAD), oldest first
    SvnReplay(SvnReplayArgs),
    /// Publish stdin, byte for byte, as one message
    Send(SendArgs),
    /// Validate the config and try each broker: reachable, authenticated,
    /// protocol version, round trip
    ///
    /// Then the outbox: files waiting, dead letters, and who holds its lock
    /// (free, `hookbus relay` or a hook or flush, and whether it is
    /// connecting, delivering or finds the broker unreachable).
    Check,
    /// Deliver the messages waiting in the outbox, oldest first, stopping at the
    /// first failure; messages the broker refuses for good become dead letters
    ///
    /// First, pushes a hook kept (its config could not be used, or it could
    /// neither save nor deliver) are run again, as the hook would have run,
    /// with this config; each one handled is removed.
    ///
    /// Safe to run at any time, beside hooks and other flushes: one lock on the
    /// outbox makes sure no two processes send the same message. Meant for a
    /// timer (contrib/systemd) or cron, as the user the hooks run as, so that it
    /// finds the same outbox. Exits 0 when the outbox is empty, 6 when messages
    /// are still waiting (the broker is down) or were moved to outbox/dead/ by
    /// this run (see `hookbus outbox list`).
    Flush(FlushArgs),
    /// Deliver the outbox for good: hold its lock and one broker connection,
    /// and send each file the moment a hook stores it
    ///
    /// For a busy git server. A hook that finds the relay holding the outbox
    /// leaves its messages to it and returns once the relay has the broker's
    /// receipt (or, with the broker unreachable, at once, told they are
    /// queued): no broker connection per push, and no push waits out an
    /// outage. The relay retries with a back-off of 1 s doubling to 30 s, and
    /// 1 s after a push; it closes its connection after 30 s without work.
    /// Without a relay running, hooks deliver their own messages as before.
    ///
    /// Hooks of the relay's own account, running its binary (restart it after
    /// an upgrade), that read its config file hand it
    /// their whole push over .relay.sock in the outbox: it does their work in
    /// its warm process and they say what it answers (others, and pushes with
    /// GIT_NAMESPACE, quarantine or other object stores, do their own).
    ///
    /// Runs in the foreground until SIGTERM or SIGINT, as the user the hooks
    /// run as, so that it finds the same outbox (contrib/systemd has
    /// hookbus-relay@.service); one line on stderr per delivery round,
    /// outage and stop. `hookbus flush` beside it replays kept pushes and
    /// leaves the outbox to it. Exits 3 without a [broker], 6 when the
    /// outbox cannot be used.
    Relay,
    /// Look at messages waiting in the local outbox, and dead letters
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Run the deploy-host daemon until SIGTERM: subscribe to [listen]
    /// subscribe and keep every [[mirror]] up to date (fetch, checkout,
    /// in-place or branches); SIGHUP reloads the config
    ///
    /// Each message is acknowledged only after its mirrors' work finished, so
    /// nothing is lost in a crash; every mirror is also fetched at start and
    /// every [listen] poll_s. One JSON event per piece of work goes to [listen]
    /// report through the outbox. Messages that match an [[action]] also run
    /// its chain of steps (http, exec, publish, mirror), once per hookbus-id.
    /// `hookbus ctl` talks to it through [listen] state_dir/control.sock; each
    /// mirror's state (FROZEN, ROLLED-BACK, …) is kept in state_dir and
    /// survives restarts; one daemon per state_dir.
    /// See hookbus.toml(5) and the README's "Deploy hosts".
    Listen(ListenArgs),
    /// Serve forge webhooks (GitHub, GitLab, Gitea, Forgejo) on [webhook]
    /// listen: their pushes become the same messages a hook sends
    ///
    /// Runs in the foreground until SIGTERM or SIGINT. Each [[webhook.endpoint]]
    /// checks its requests' signatures with its own secret (401 otherwise);
    /// pushes are rendered through the routes and stored in the outbox before
    /// the 202 reply, then published on a thread of their own. Redeliveries
    /// are answered without emitting twice. One line per request on stderr.
    Webhook,
    /// Show the deploy hosts: hear their presence ([listen] presence) for a
    /// while, then print hosts × mirrors with commit, state and age; or send
    /// them a signed freeze, unfreeze or rollback
    ///
    /// A host is "quiet" after three of its presence intervals without a
    /// document, "left" after its last document said it was leaving (a clean
    /// stop). A mirror is marked when its commit differs from the one most
    /// hosts have for the same repository and branch (hosts that left do not
    /// count; a tie marks nothing). Hosts heard before are remembered in a
    /// state file, so one that went silent is still shown; remove the file to
    /// forget them.
    ///
    /// `hookbus fleet freeze|unfreeze|rollback --hosts GLOB MIRROR [REV]`
    /// publishes a command on [listen] control_topic, signed with [sign]
    /// key_file (required): each listener that trusts the key ([listen]
    /// trust) and whose host name GLOB takes applies it as `hookbus ctl` would
    /// there, once, and reports how it went on [listen] report. Unsigned,
    /// untrusted, replayed or older than max_age_s: refused and reported.
    ///
    /// With [listen] report in the config, the command prints those answers
    /// (host, ok/refused/failed, message) heard within --wait, ending sooner
    /// once every host up in the state file that GLOB takes has answered,
    /// then the hosts expected that did not answer; it exits 0 only when
    /// every answer is ok and every host expected answered.
    ///
    /// With [fleet] trust (each listener's public key under its host name or
    /// glob; each listener signs with its own [sign] key_file), a presence
    /// document or answer is believed only when signed by a key listed for
    /// the host it names: the others are not shown nor counted as answers
    /// (a host whose only answer is forged is silent), and one line on stderr
    /// counts them and names the hosts they claimed. Hosts the state file
    /// kept unverified are dropped. Without it nothing is verified, and a
    /// line on stderr says so.
    #[command(args_conflicts_with_subcommands = true)]
    Fleet(FleetArgs),
    /// Talk to a running `hookbus listen` through its control socket: mirror
    /// states, freeze, unfreeze, rollback, sync
    ///
    /// The socket is [listen] state_dir/control.sock of the config (or
    /// --socket); its users are root and [listen] control_group. A mirror is
    /// named by its `name` or its clone path. States: OK (following its
    /// branch), FROZEN and ROLLED-BACK (held by an operator: the mirror still
    /// fetches, its target does not move), BROKEN (the last update failed).
    /// States survive restarts of the listener. Every change is a report
    /// event on [listen] report. A command returns once the listener did it
    /// (unfreeze: once the mirror caught up). Exits 7 when no listener
    /// answers, 8 when it refused the command, 9 when the work failed.
    Ctl(CtlArgs),
    /// Write an Ed25519 key pair for signed messages: the private key to PATH
    /// (mode 0600, for [sign] key_file), the public key line to PATH.pub (for
    /// [listen] trust)
    Keygen(crate::cli::keygen::KeygenArgs),
}

// The options of each command, by command group (plain comments on them: a
// doc comment would replace the command's own help).
mod daemons;
mod emitting;
mod outbox;

pub use daemons::{CtlArgs, FleetArgs, FleetTarget, ListenArgs, MirrorCommand};
pub use emitting::{
    InstallArgs, PostReceiveArgs, ReplayArgs, SendArgs, SvnArgs, SvnPostCommitArgs, SvnReplayArgs,
};
pub use outbox::{ConfigAction, FlushArgs, OutboxAction};
