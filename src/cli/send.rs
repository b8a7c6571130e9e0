//! `send`: publishes bytes as one message.

use super::args::SendArgs;
use super::emit::{say_outcome, transport};
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::config::Config;
use hookbus::deliver::broker::Waiting;
use hookbus::message::Message;
use std::io::Write;
use std::time::Duration;

/// `hookbus send`: `body`, byte for byte, as one message.
pub fn send(
    args: &SendArgs,
    config: &Config,
    body: Vec<u8>,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let message = Message::compose(
        &args.destination,
        args.subject.as_deref(),
        &args.headers,
        body,
    )
    .status(Status::Input)?;
    // Someone (a CI job, say) waits for it: bounded like a hook.
    let waiting = config
        .broker
        .as_ref()
        .map(|broker| Waiting::Bounded(Duration::from_millis(broker.deadline_ms)));
    let mut transport = transport(config, args.dry_run, waiting, None, out, reporter)?;
    let mut outcome = transport
        .deliver(std::slice::from_ref(&message))
        .status(Status::Delivery)?;
    outcome.add(transport.finish().status(Status::Delivery)?);
    drop(transport);
    if !args.dry_run {
        say_outcome(config, &outcome, waiting, reporter);
    }
    Ok(())
}
