//! The options of the outbox and config commands: `flush`, `outbox` and
//! `config`.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct FlushArgs {
    /// How long to wait for another hookbus that is delivering from the
    /// outbox (seconds)
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait: u64,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the hookbus.toml equivalent of the seed's Ruby config
    /// (stomp-postrec.yaml, svn-stomp.yaml, or the deploy daemons'
    /// stomp-git.yaml and stomp-jenkins.yaml), with comments where its options
    /// were silently ignored
    ///
    /// stomp-jenkins.yaml becomes one [[action]] per Jenkins job: the same GET
    /// {jenkins-url}/job/JOB/build?token=TICKET (job names byte for byte, the
    /// ticket as the step's token), ignore_refs kept, and the report line as an
    /// on_success publish step; entries and keys that were not converted are
    /// named in comments.
    ImportLegacy {
        /// The seed's YAML file
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// List waiting messages, oldest first, then dead letters with their
    /// reasons, damaged files, and pushes hooks kept
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
