//! `install`: puts the post-receive hook into bare repositories.

use super::args::InstallArgs;
use super::report::{Failure, Reporter, Status, WithStatus};
use anyhow::Context;
use hookbus::config::Config;
use hookbus::config::DEFAULT_PATH;
use hookbus::install::{self, HookCommand, Installed};
use hookbus::naming::name_below;
use std::io::Write;

/// `hookbus install`: one line per repository on `out`; a repository that
/// fails is reported and the others still done.
pub fn install(
    args: &InstallArgs,
    config: &Config,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let binary = match &args.hookbus {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("cannot tell where this hookbus binary is; pass --hookbus PATH")
            .status(Status::Config)?,
    };
    // The config this run read (--config or $HOOKBUS_CONFIG) goes into the
    // hook, absolute: a push over ssh has neither.
    let config_file = match &config.source {
        Some(path) if path.as_path() != std::path::Path::new(DEFAULT_PATH) => Some(
            std::path::absolute(path)
                .with_context(|| format!("cannot make {} absolute", path.display()))
                .status(Status::Config)?,
        ),
        _ => None,
    };
    let command = HookCommand {
        binary,
        config: config_file,
    };
    let repos = match (&args.repo, &args.all) {
        (Some(repo), _) => vec![repo.clone()],
        (None, Some(base)) => install::find_bare_repos(base)
            .status(Status::Repository)?
            .into_iter()
            .filter(|found| !config.repos.is_skipped(&name_below(base, found)))
            .collect(),
        (None, None) => unreachable!("clap requires --repo or --all"),
    };
    for repo in repos {
        let _ = match install::install(&repo, &command) {
            Ok(Installed::Fresh) => writeln!(out, "{}: installed", repo.display()),
            Ok(Installed::AlreadyThere) => writeln!(out, "{}: already installed", repo.display()),
            Ok(Installed::Updated) => writeln!(
                out,
                "{}: updated: the hook now runs {}{}",
                repo.display(),
                command.binary.display(),
                command
                    .config
                    .as_ref()
                    .map(|config| format!(" with {}", config.display()))
                    .unwrap_or_default()
            ),
            Ok(Installed::Chained { previous }) => writeln!(
                out,
                "{}: chained: the existing post-receive now runs from {}, then hookbus",
                repo.display(),
                previous.display()
            ),
            Err(err) => {
                reporter.fail(
                    Status::Repository,
                    format_args!("{}: {err:#}", repo.display()),
                );
                Ok(())
            }
        };
    }
    Ok(())
}
