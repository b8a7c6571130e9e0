//! The options of the deploy-host commands: `listen`, `fleet` and `ctl`.

use clap::Subcommand;
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
    /// Print JSON instead of the table
    #[arg(long)]
    pub json: bool,
    /// Where hosts heard are remembered [default:
    /// $XDG_STATE_HOME/hookbus/fleet.json, else ~/.local/state/hookbus/fleet.json]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The presence destination [default: [listen] presence]
    #[arg(long, value_name = "D")]
    pub destination: Option<String>,
    /// The durable subscription to D.last, where hosts leave their last
    /// "leaving" document: made by the first run, it keeps them for the
    /// next (one name per reader of the fleet)
    #[arg(long, value_name = "NAME", default_value = "hookbus-fleet")]
    pub durable: String,
    #[command(subcommand)]
    pub command: Option<FleetCommand>,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// On each listener whose host name GLOB takes: hold MIRROR's target
    /// where it is, as `hookbus ctl freeze` there would
    Freeze {
        #[command(flatten)]
        to: FleetTarget,
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
    },
    /// On each listener whose host name GLOB takes: let MIRROR follow its
    /// branch again, as `hookbus ctl unfreeze` there would
    Unfreeze {
        #[command(flatten)]
        to: FleetTarget,
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
    },
    /// On each listener whose host name GLOB takes: publish REV at MIRROR's
    /// target and hold it there, as `hookbus ctl rollback` there would
    Rollback {
        #[command(flatten)]
        to: FleetTarget,
        /// For mode branches: the published branch to roll back
        #[arg(long, value_name = "NAME")]
        branch: Option<String>,
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
        /// A commit (or any revision) the mirror's clones have
        rev: String,
    },
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
    /// Hold MIRROR's target where it is; the mirror still fetches
    Freeze {
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
    },
    /// Let MIRROR follow its branch again; returns once it caught up
    Unfreeze {
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
    },
    /// Publish REV at MIRROR's target (atomically, as updates do) and hold it
    /// there until unfreeze; refused when the mirror's clone has no such
    /// commit, and for mirrors of mode fetch
    Rollback {
        /// For mode branches: the published branch to roll back
        #[arg(long, value_name = "NAME")]
        branch: Option<String>,
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
        /// A commit (or any revision) the mirror's clone has
        rev: String,
    },
    /// Fetch MIRROR now (and publish, unless it is held); returns when done
    Sync {
        /// The mirror's name, its repo when unique on the host, or its clone path
        mirror: String,
    },
}
