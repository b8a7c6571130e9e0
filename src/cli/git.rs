//! `post-receive` and `replay`: the git commands.

use super::args::{PostReceiveArgs, ReplayArgs};
use super::emit::Run;
use super::report::{Failure, Reporter};
use hookbus::assemble;
use hookbus::config::Config;
use hookbus::deliver::relay::board::Board;
use hookbus::git::{GitCommits, HookEnv, ReplayRequest};
use hookbus::saved::HookCall;
use std::io::Write;
use std::sync::Arc;

/// `hookbus post-receive`: one message per ref update of the push on `input`
/// and matching route. Bad lines are reported and the others still sent; a
/// push whose messages could be neither delivered nor saved is kept.
pub fn post_receive(
    args: &PostReceiveArgs,
    config: &Config,
    input: &[u8],
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let env = HookEnv::from_process();
    let emitted = post_receive_as(args, config, &env, input, None, out, reporter);
    if args.dry_run {
        return emitted;
    }
    let call = HookCall::post_receive(args.repo.as_deref());
    super::kept::keep_undelivered(emitted, call, input)
}

/// The post-receive work for a pusher named by `env` (this process's, or a
/// hook's that handed its push to `hookbus relay`), keeping nothing.
pub fn post_receive_as(
    args: &PostReceiveArgs,
    config: &Config,
    env: &HookEnv,
    input: &[u8],
    relay: Option<&Arc<Board>>,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let push = assemble::git_push(config, args.repo.as_deref(), env, input)
        .map_err(super::opening_failed)?;
    if let Some(reason) = push.opened.silenced {
        super::say_silenced(&push.opened.name, reason, reporter);
        return Ok(());
    }
    super::say_problems(&push.problems, reporter);
    let source = GitCommits::new(&push.opened.repo);
    let run = Run::new(config, &push.opened.router, args.dry_run, true).beside_relay(relay);
    run.emit(&push.routed, &source, out, reporter)
}

/// `hookbus replay`: what a push of a range would have sent.
pub fn replay(
    args: &ReplayArgs,
    config: &Config,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let request = ReplayRequest {
        refname: args.refname.clone(),
        oldrev: args.oldrev.clone(),
        newrev: args.newrev.clone(),
        each: args.each,
    };
    let env = HookEnv::from_process();
    let push = assemble::git_replay(config, args.repo.as_deref(), &env, &request)
        .map_err(super::opening_failed)?;
    let source = GitCommits::new(&push.opened.repo);
    let run = Run::new(config, &push.opened.router, args.dry_run, false);
    run.emit(&push.routed, &source, out, reporter)
}
