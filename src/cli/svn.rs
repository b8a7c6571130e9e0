//! `svn-post-commit` and `svn-replay`: the Subversion commands.

use super::args::{SvnArgs, SvnPostCommitArgs, SvnReplayArgs};
use super::emit::Run;
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::assemble;
use hookbus::config::Config;
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
    let name = args.name.as_deref();
    let push = assemble::svn_revisions(config, &args.repos, name, range, hook)
        .map_err(super::opening_failed)?;
    if let Some(reason) = push.opened.silenced {
        super::say_silenced(&push.opened.name, reason, reporter);
        return Ok(());
    }
    super::say_problems(&push.problems, reporter);
    let run = Run::new(config, &push.opened.router, args.dry_run, hook);
    let emitted = run.emit(&push.routed, &push.opened.repo, out, reporter);
    if !hook || args.dry_run {
        return emitted;
    }
    let call = HookCall::svn_post_commit(&args.repos, range.from, args.name.clone());
    super::kept::keep_undelivered(emitted, call, &[])
}
