//! The options of the commands that emit messages: the git and Subversion
//! hooks and replays, `send`, and `install` of the hook.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct PostReceiveArgs {
    /// Print the messages as JSON lines instead of sending them
    #[arg(long)]
    pub dry_run: bool,
    /// The repository [default: $GIT_DIR or the current directory]
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Print the messages as JSON lines instead of sending them
    #[arg(long)]
    pub dry_run: bool,
    /// The repository [default: $GIT_DIR or the current directory]
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// One message per commit, oldest first, as if pushed one by one
    #[arg(long)]
    pub each: bool,
    /// The ref the commits were pushed to, e.g. refs/heads/master
    pub refname: String,
    /// Where the ref was before (any revision; all zeros for "from the start")
    pub oldrev: String,
    /// Where the ref went (any revision)
    pub newrev: String,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// One repository
    #[arg(long, value_name = "DIR", required_unless_present = "all")]
    pub repo: Option<PathBuf>,
    /// Every bare repository below BASEDIR, except those [repos] skip names
    /// (gitolite-admin by default)
    #[arg(long, value_name = "BASEDIR", conflicts_with = "repo")]
    pub all: Option<PathBuf>,
    /// The hookbus binary the hook runs [default: this one]
    #[arg(long, value_name = "PATH")]
    pub hookbus: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SvnPostCommitArgs {
    #[command(flatten)]
    pub svn: SvnArgs,
    /// The revision that was committed
    pub rev: u64,
    /// The transaction name svn passes (unused)
    pub txn: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SvnReplayArgs {
    #[command(flatten)]
    pub svn: SvnArgs,
    /// Revisions: N, FROM:TO or FROM:HEAD
    pub range: String,
}

// What both Subversion commands take.
#[derive(Debug, clap::Args)]
pub struct SvnArgs {
    /// Print the messages as JSON lines instead of sending them
    #[arg(long)]
    pub dry_run: bool,
    /// The repository's name in messages [default: its path below [repos] base,
    /// else its directory name]
    #[arg(long, env = "HOOKBUS_REPO_NAME", value_name = "NAME")]
    pub name: Option<String>,
    /// The repository directory (svn passes it to hooks)
    pub repos: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Print the message as a JSON line instead of sending it
    #[arg(long)]
    pub dry_run: bool,
    /// Where to send it, e.g. /topic/builds
    #[arg(long, value_name = "D")]
    pub destination: String,
    /// An extra header (repeatable)
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// The subject header
    #[arg(long)]
    pub subject: Option<String>,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}
