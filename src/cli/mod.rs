//! The command line: [`args`] defines it, one module per command family runs
//! it, [`report`] decides the exit status. Nothing below this module knows it
//! exists; commands take typed options, the config and writers.

mod args;
mod check;
mod config;
mod ctl;
mod emit;
mod fleet;
mod git;
mod handoff;
mod install;
mod kept;
mod keygen;
mod listen;
mod outbox;
mod relay;
mod report;
mod send;
mod svn;
mod webhook;

pub use args::Cli;

use args::{Command, ConfigAction};
use clap::Parser;
use hookbus::assemble::Problem;
use hookbus::config::Config;
use hookbus::hook::{OpenError, Silenced};
use report::{Failure, Reporter, Status, WithStatus};
use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// Parses arguments, runs the command and reports errors on stderr.
pub fn main() -> ExitCode {
    let cli = parse(hook_args());
    let stderr = std::io::stderr();
    let terminal = stderr.is_terminal();
    let mut reporter = Reporter::new(Box::new(stderr), cli.verbose > 0, terminal);
    let result = run(&cli, &mut std::io::stdout().lock(), &mut reporter);
    ExitCode::from(reporter.finish(result) as u8)
}

/// The table of contents: which function runs each command.
fn run(cli: &Cli, out: &mut dyn Write, reporter: &mut Reporter) -> Result<(), Failure> {
    if let Command::Config {
        action: ConfigAction::ImportLegacy { file },
    } = &cli.command
    {
        return config::import_legacy(file, out);
    }
    if let Command::Keygen(args) = &cli.command {
        return keygen::keygen(args, out);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => return Err(kept::keep_unconfigured(cli, error)),
    };
    match &cli.command {
        Command::PostReceive(args) => {
            let input = read_stdin()?;
            if cli.verbose == 0 && handoff::to_relay(args, &config, &input, reporter) {
                return Ok(());
            }
            git::post_receive(args, &config, &input, out, reporter)
        }
        Command::Replay(args) => git::replay(args, &config, out, reporter),
        Command::SvnPostCommit(args) => svn::post_commit(args, &config, out, reporter),
        Command::SvnReplay(args) => svn::replay(args, &config, out, reporter),
        Command::Send(args) => send::send(args, &config, read_stdin()?, out, reporter),
        Command::Check => check::check(&config, out, reporter),
        Command::Flush(args) => outbox::flush(args, &config, reporter),
        Command::Relay => relay::relay(&config, reporter),
        Command::Outbox { action } => outbox::outbox(action, &config, out, reporter),
        Command::Install(args) => install::install(args, &config, out, reporter),
        Command::Listen(args) => listen::listen(config, cli.config.clone(), args),
        Command::Webhook => webhook::serve(&config, reporter),
        Command::Fleet(args) => fleet::fleet(args, &config, out, reporter),
        Command::Ctl(args) => ctl::ctl(args, &config, out),
        Command::Config { .. } | Command::Keygen(_) => {
            unreachable!("handled before the config is loaded")
        }
    }
}

/// The arguments, as `hookbus post-receive ARGS` when git runs this binary
/// under the hook's name (`hookbus install` links `hooks/post-receive` to it:
/// no shell starts per push). `$HOOKBUS` names another binary to run, as in
/// the shell hook.
fn hook_args() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let called = args.first().map(Path::new).and_then(Path::file_name);
    if called != Some(OsStr::new("post-receive")) {
        return args;
    }
    args.splice(..1, [OsString::from("hookbus"), "post-receive".into()]);
    if let Some(other) = std::env::var_os("HOOKBUS").filter(|other| !other.is_empty()) {
        use std::os::unix::process::CommandExt;
        let error = std::process::Command::new(&other).args(&args[1..]).exec();
        eprintln!(
            "hookbus: cannot run {}: {error}",
            Path::new(&other).display()
        );
        std::process::exit(Status::Config as i32);
    }
    args
}

/// The command line. Git runs the hook with no arguments, which needs no
/// parser: building clap's whole command tree is a sixth of a hook run's
/// instructions.
fn parse(args: Vec<OsString>) -> Cli {
    if let [_, command] = &args[..] {
        if command == "post-receive" {
            return Cli {
                config: None,
                verbose: 0,
                command: Command::PostReceive(args::PostReceiveArgs {
                    dry_run: false,
                    repo: None,
                }),
            };
        }
    }
    Cli::parse_from(args)
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .status(Status::Input)?;
    Ok(input)
}

/// The exit status of a repository that could not be opened.
fn opening_failed(error: OpenError) -> Failure {
    match error {
        OpenError::Repository(error) => Failure {
            status: Status::Repository,
            error,
        },
        OpenError::Config(error) => Failure {
            status: Status::Config,
            error,
        },
        OpenError::Input(error) => Failure {
            status: Status::Input,
            error,
        },
    }
}

/// What a hook or replay says of the input it could not read (the rest was
/// still sent).
fn say_problems(problems: &[Problem], reporter: &mut Reporter) {
    for problem in problems {
        match problem {
            Problem::Input(error) => reporter.fail(Status::Input, format_args!("{error:#}")),
            Problem::Repository(error) => {
                reporter.fail(Status::Repository, format_args!("{error:#}"))
            }
        }
    }
}

/// What a hook says (with `-v`) when it sends nothing for a repository.
fn say_silenced(name: &str, reason: Silenced, reporter: &mut Reporter) {
    if reporter.verbose {
        reporter.say(format_args!("{name}: nothing sent: {reason}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_without_arguments_is_what_clap_would_make_of_it() {
        let args = || vec![OsString::from("hookbus"), "post-receive".into()];
        assert_eq!(
            format!("{:?}", parse(args())),
            format!("{:?}", Cli::parse_from(args()))
        );
    }
}
