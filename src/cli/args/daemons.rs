//! The options of the deploy-host commands: `listen`, `fleet` and `ctl`.

use clap::Subcommand;
use hookbus::listen::ops::control::Request;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// Check the config and print how a sample message reads (a branch push
    /// of repo "example" unless --sample), the mirrors it would update and
    /// each [[action]] with what it would do; nothing is run or sent
    #[arg(long)]
    pub check: bool,
    /// With --check: the sample message, a JSON object {"headers": {NAME:
    /// VALUE, ...}, "body": TEXT}
    #[arg(long, value_name = "FILE", requires = "check")]
    pub sample: Option<PathBuf>,
    /// With --check: show what host NAME would run (the mirrors and actions
    /// whose hosts globs take it) [default: [listen] host, else this
    /// machine's name]
    #[arg(long, value_name = "NAME", requires = "check")]
    pub host: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// How long to listen [default: [listen] presence_s (60) and a tenth more,
    /// at least 2 s more, so that every live host is heard once]
    #[arg(long = "for", value_name = "SECONDS")]
    pub for_seconds: Option<u64>,
    #[command(flatten)]
    pub common: FleetCommon,
    /// The presence destination [default: [listen] presence]
    #[arg(long, value_name = "D")]
    pub destination: Option<String>,
    /// The durable subscription to D.last, where hosts leave their last
    /// "leaving" document: made by the first run, it keeps them for the
    /// next (one name per reader of the fleet)
    #[arg(long, value_name = "NAME", default_value = "hookbus-fleet")]
    pub durable: String,
    #[command(subcommand)]
    pub command: Option<MirrorCommand<FleetTarget>>,
}

/// What `hookbus fleet` and its commands both take.
#[derive(Debug, clap::Args)]
pub struct FleetCommon {
    /// Print JSON instead of the table (for a command: the command and its
    /// answers, as one object)
    #[arg(long)]
    pub json: bool,
    /// Where hosts heard are remembered (a command expects answers from the
    /// ones up in it) [default: $XDG_STATE_HOME/hookbus/fleet.json, else
    /// ~/.local/state/hookbus/fleet.json]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct FleetTarget {
    /// The listeners that apply the command: a glob of host names ([listen]
    /// host, else the machine's name), e.g. 'web*'; '*' for all
    #[arg(long, value_name = "GLOB")]
    pub hosts: String,
    /// Where the listeners take commands [default: [listen] control_topic]
    #[arg(long, value_name = "D")]
    pub topic: Option<String>,
    /// How long to wait for the listeners' answers on [listen] report; it
    /// ends sooner once every host that --state has as up and GLOB takes has
    /// answered
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub wait: u64,
    #[command(flatten)]
    pub common: FleetCommon,
}

#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The listener's control socket [default: [listen] state_dir/control.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the listener's answer as one JSON object, for scripts
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: CtlAction,
}

#[derive(Debug, Subcommand)]
pub enum CtlAction {
    /// Show every mirror: mode, state, commit, when it last changed, last error
    Status,
    #[command(flatten)]
    Mirror(MirrorCommand<()>),
    /// Fetch MIRROR now (and publish, unless it is held); returns when done
    Sync {
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
    },
}

impl CtlAction {
    /// What the listener is asked.
    pub fn request(&self) -> Request {
        match self {
            CtlAction::Status => Request::Status,
            CtlAction::Mirror(command) => command.request().1,
            CtlAction::Sync { mirror } => Request::Sync {
                mirror: mirror.clone(),
            },
        }
    }
}

/// The commands that act on one mirror, the same words for `hookbus ctl`
/// (`T` is `()`: this host's listener) and `hookbus fleet` (`T` is
/// [`FleetTarget`]: the listeners that apply it).
#[derive(Debug, Subcommand)]
pub enum MirrorCommand<T: clap::Args> {
    /// Hold MIRROR's target where it is (on this host's listener, or with
    /// `fleet` on each listener --hosts takes); the mirror still fetches
    Freeze {
        #[command(flatten)]
        to: T,
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
    },
    /// Let MIRROR follow its branch again (on this host's listener, or with
    /// `fleet` on each listener --hosts takes); it catches up at once
    Unfreeze {
        #[command(flatten)]
        to: T,
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
    },
    /// Publish REV at MIRROR's target (atomically, as updates do) and hold it
    /// there until unfreeze (on this host's listener, or with `fleet` on each
    /// listener --hosts takes); refused when the mirror's clone has no such
    /// commit, and for mirrors of mode fetch
    Rollback {
        #[command(flatten)]
        to: T,
        /// For mode branches: the published branch to roll back
        #[arg(long, value_name = "NAME")]
        branch: Option<String>,
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
        /// A commit (or any revision) the mirror's clone has
        rev: String,
    },
}

impl<T: clap::Args> MirrorCommand<T> {
    /// Who applies the command, and the request they are given.
    pub fn request(&self) -> (&T, Request) {
        match self {
            MirrorCommand::Freeze { to, mirror } => (
                to,
                Request::Freeze {
                    mirror: mirror.clone(),
                },
            ),
            MirrorCommand::Unfreeze { to, mirror } => (
                to,
                Request::Unfreeze {
                    mirror: mirror.clone(),
                },
            ),
            MirrorCommand::Rollback {
                to,
                branch,
                mirror,
                rev,
            } => (
                to,
                Request::Rollback {
                    mirror: mirror.clone(),
                    rev: rev.clone(),
                    branch: branch.clone(),
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;

    fn parsed(words: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("hookbus").chain(words.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn ctl_and_fleet_build_the_same_requests_from_the_same_words() {
        let rollback = |branch: Option<&str>| Request::Rollback {
            mirror: "web".into(),
            rev: "abc123".into(),
            branch: branch.map(String::from),
        };
        let forms: [(&[&str], Request); 4] = [
            (
                &["freeze", "web"],
                Request::Freeze {
                    mirror: "web".into(),
                },
            ),
            (
                &["unfreeze", "web"],
                Request::Unfreeze {
                    mirror: "web".into(),
                },
            ),
            (&["rollback", "web", "abc123"], rollback(None)),
            (
                &["rollback", "--branch", "b", "web", "abc123"],
                rollback(Some("b")),
            ),
        ];
        for (words, request) in forms {
            let ctl = [&["ctl"], words].concat();
            match parsed(&ctl) {
                Ok(Command::Ctl(args)) => assert_eq!(args.action.request(), request, "{ctl:?}"),
                other => panic!("{ctl:?}: {other:?}"),
            }
            for topic in [None, Some("/topic/ctl")] {
                let mut fleet = vec!["fleet", words[0], "--hosts", "web*"];
                fleet.extend(topic.map(|topic| ["--topic", topic]).iter().flatten());
                fleet.extend(&words[1..]);
                let Ok(Command::Fleet(FleetArgs {
                    command: Some(command),
                    ..
                })) = parsed(&fleet)
                else {
                    panic!("{fleet:?}: {:?}", parsed(&fleet));
                };
                let (to, built) = command.request();
                assert_eq!(built, request, "{fleet:?}");
                assert_eq!((to.hosts.as_str(), to.topic.as_deref()), ("web*", topic));
            }
        }
        for (words, request) in [
            (&["ctl", "status"][..], Request::Status),
            (
                &["ctl", "sync", "web"],
                Request::Sync {
                    mirror: "web".into(),
                },
            ),
        ] {
            match parsed(words) {
                Ok(Command::Ctl(args)) => assert_eq!(args.action.request(), request),
                other => panic!("{words:?}: {other:?}"),
            }
        }
        // Each command takes only its own words: the listeners refuse a
        // fleet sync, and ctl acts on its own host.
        for words in [
            &["fleet", "freeze", "web"][..],
            &["fleet", "sync", "--hosts", "*", "web"],
            &["fleet", "rollback", "--hosts", "*", "web"],
            &["ctl", "freeze", "--hosts", "*", "web"],
            &["ctl", "rollback", "web", "abc123", "extra"],
        ] {
            assert!(parsed(words).is_err(), "{words:?} parsed");
        }
    }
}
