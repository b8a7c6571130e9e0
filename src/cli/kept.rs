//! Pushes a hook keeps when it cannot handle them (no usable config, nowhere
//! to save or deliver), and running them again from `flush`.

use super::args::{Cli, Command};
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::config::Config;
use hookbus::saved::{HookCall, KeptPushes, ReplayReport};
use std::io::{Read, Write};

/// A hook whose config cannot be used keeps what it was given, so that
/// `hookbus flush` runs it again once the config is fixed; it still exits 3.
pub fn keep_unconfigured(cli: &Cli, error: anyhow::Error) -> Failure {
    let call = match &cli.command {
        Command::PostReceive(args) if !args.dry_run => HookCall::post_receive(args.repo.as_deref()),
        Command::SvnPostCommit(args) if !args.svn.dry_run => {
            HookCall::svn_post_commit(&args.svn.repos, args.rev, args.svn.name.clone())
        }
        _ => {
            return Failure {
                status: Status::Config,
                error,
            }
        }
    };
    let mut stdin = Vec::new();
    if matches!(call, HookCall::PostReceive { .. }) {
        let _ = std::io::stdin().read_to_end(&mut stdin);
    }
    Failure {
        status: Status::Config,
        error: keep(call, &stdin, error, "fix the config"),
    }
}

/// A hook whose messages could be neither delivered nor saved (the outbox
/// refused, the broker down) keeps the push too.
pub fn keep_undelivered(
    emitted: Result<(), Failure>,
    call: HookCall,
    stdin: &[u8],
) -> Result<(), Failure> {
    match emitted {
        Err(Failure {
            status: Status::Delivery,
            error,
        }) => Err(Failure {
            status: Status::Delivery,
            error: keep(call, stdin, error, "once the outbox or broker works"),
        }),
        other => other,
    }
}

/// Keeps a push; the error then says where, and what sends it.
fn keep(call: HookCall, stdin: &[u8], error: anyhow::Error, fix: &str) -> anyhow::Error {
    match KeptPushes::in_default_place().keep(call, stdin, &error) {
        Ok(path) => error.context(format!(
            "push kept in {}: {fix}, then `hookbus flush` (run as this user) sends it",
            path.display()
        )),
        Err(lost) => error.context(format!("the push could not be kept either: {lost:#}")),
    }
}

/// Runs the hooks kept while they could not run, as they would have run (this
/// binary, this config, their stdin and environment); says what stays kept.
pub fn replay(config: &Config, reporter: &mut Reporter) -> Result<ReplayReport, Failure> {
    let exe = std::env::current_exe()
        .map_err(anyhow::Error::from)
        .status(Status::Delivery)?;
    let kept = KeptPushes::in_default_place();
    let report = kept
        .replay_all(config.repos.base.as_deref(), |push, repo| {
            let mut command = std::process::Command::new(&exe);
            if let Some(source) = &config.source {
                command.arg("--config").arg(source);
            }
            match push.call() {
                HookCall::PostReceive { .. } => command.arg("post-receive").arg("--repo").arg(repo),
                HookCall::SvnPostCommit { rev, name, .. } => {
                    command.arg("svn-post-commit");
                    if let Some(name) = name {
                        command.arg("--name").arg(name);
                    }
                    command.arg(repo).arg(rev.to_string())
                }
            };
            // Handled as the hook would have: done, or done but for bad lines.
            let status = push.run(&mut command)?;
            Ok(status.is_some_and(|status| matches!(status.code(), Some(0 | 4))))
        })
        .status(Status::Delivery)?;
    if report.emitted > 0 {
        reporter.say(format_args!(
            "flush: {} kept push(es) from {} run again",
            report.emitted,
            kept.dir().display()
        ));
    }
    for line in &report.kept {
        reporter.say(format_args!("flush: {line}"));
    }
    Ok(report)
}

/// The pushes hooks kept, one line each, after the outbox's messages.
pub fn list(out: &mut dyn Write, reporter: &mut Reporter) {
    let kept = KeptPushes::in_default_place();
    let paths = match kept.list() {
        Ok(paths) => paths,
        Err(error) => return reporter.say(format_args!("kept pushes: {error:#}")),
    };
    for path in &paths {
        let _ = match kept.load(path) {
            Ok(push) => writeln!(
                out,
                "{}\t\t\tkept: {}",
                push.describe(),
                push.why().replace('\n', " ")
            ),
            Err(error) => writeln!(out, "{}\t\t\t{error:#}", path.display()),
        };
    }
    if !paths.is_empty() {
        reporter.say(format_args!(
            "{} push(es) kept in {}; `hookbus flush` runs them again",
            paths.len(),
            kept.dir().display()
        ));
    }
}
