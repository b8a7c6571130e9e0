//! `post-receive` and `replay`: the git commands.

use super::args::{PostReceiveArgs, ReplayArgs};
use super::emit::Run;
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::config::Config;
use hookbus::git::{self, GitCommits, HookEnv, ReplayRequest};
use hookbus::hook::{self, GitRun};
use hookbus::saved::HookCall;
use std::io::Write;
use std::path::Path;

/// `hookbus post-receive`: one message per ref update of the push on `input`
/// and matching route. Bad lines are reported and the others still sent.
pub fn post_receive(
    args: &PostReceiveArgs,
    config: &Config,
    input: &[u8],
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let git = open(config, args.repo.as_deref())?;
    if let Some(reason) = git.opened.silenced {
        super::say_silenced(&git.opened.name, reason, reporter);
        return Ok(());
    }
    let mut lines = Vec::new();
    for parsed in git::input::parse(input) {
        match parsed {
            Ok(line) => lines.push(line),
            Err(err) => reporter.fail(Status::Input, err),
        }
    }
    let mut notifications = Vec::new();
    for result in git::analyze(&git.opened.repo, lines, &git.context) {
        match result {
            Ok(notification) => notifications.push(notification),
            Err(err) => reporter.fail(Status::Input, err),
        }
    }
    let source = GitCommits::new(&git.opened.repo);
    let run = Run::new(config, &git.opened.router, args.dry_run, true);
    let emitted = run.emit(&notifications, &source, out, reporter);
    if args.dry_run {
        return emitted;
    }
    let call = HookCall::post_receive(args.repo.as_deref());
    super::kept::keep_undelivered(emitted, call, input)
}

/// `hookbus replay`: what a push of a range would have sent.
pub fn replay(
    args: &ReplayArgs,
    config: &Config,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let git = open(config, args.repo.as_deref())?;
    let request = ReplayRequest {
        refname: args.refname.clone(),
        oldrev: args.oldrev.clone(),
        newrev: args.newrev.clone(),
        each: args.each,
    };
    let notifications =
        git::replay(&git.opened.repo, &request, &git.context).status(Status::Input)?;
    let source = GitCommits::new(&git.opened.repo);
    let run = Run::new(config, &git.opened.router, args.dry_run, false);
    run.emit(&notifications, &source, out, reporter)
}

fn open(config: &Config, dir: Option<&Path>) -> Result<GitRun, Failure> {
    hook::open_git(config, dir, &HookEnv::from_process()).map_err(super::opening_failed)
}
