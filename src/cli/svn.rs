//! `svn-post-commit` and `svn-replay`: the Subversion commands.

use super::args::{SvnArgs, SvnPostCommitArgs, SvnReplayArgs};
use super::emit::Run;
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::config::Config;
use hookbus::hook;
use hookbus::saved::HookCall;
use hookbus::svn::RevisionRange;
use std::io::Write;

/// `hookbus svn-post-commit`: the messages of one revision, unless hooks stay
/// silent for the repository.
pub fn post_commit(
    args: &SvnPostCommitArgs,
    config: &Config,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let range = RevisionRange {
        from: args.rev,
        to: Some(args.rev),
    };
    emit(&args.svn, config, range, true, out, reporter)
}

/// `hookbus svn-replay`: the messages of a range of revisions, oldest first.
pub fn replay(
    args: &SvnReplayArgs,
    config: &Config,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let range = RevisionRange::parse(&args.range).status(Status::Input)?;
    emit(&args.svn, config, range, false, out, reporter)
}

/// Emits the messages of each revision in `range`, oldest first. A revision that
/// cannot be read is reported and the others still emitted.
fn emit(
    args: &SvnArgs,
    config: &Config,
    range: RevisionRange,
    hook: bool,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let opened =
        hook::open_svn(config, &args.repos, args.name.as_deref()).map_err(super::opening_failed)?;
    if let (true, Some(reason)) = (hook, opened.silenced) {
        super::say_silenced(&opened.name, reason, reporter);
        return Ok(());
    }
    let repo = &opened.repo;
    let mut notifications = Vec::new();
    for revision in repo.revisions(range).status(Status::Input)? {
        match repo.notifications(revision) {
            Ok(mut more) => notifications.append(&mut more),
            Err(err) => reporter.fail(
                Status::Repository,
                format_args!("r{revision} of {}: {err:#}", opened.name),
            ),
        }
    }
    let run = Run::new(config, &opened.router, args.dry_run, hook);
    let emitted = run.emit(&notifications, repo, out, reporter);
    if !hook || args.dry_run {
        return emitted;
    }
    let call = HookCall::svn_post_commit(&args.repos, range.from, args.name.clone());
    super::kept::keep_undelivered(emitted, call, &[])
}
