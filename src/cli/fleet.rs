//! `hookbus fleet`: hears the listeners' presence for a while and shows the
//! hosts × mirrors table (or JSON); `hookbus fleet freeze|unfreeze|rollback`
//! sends them a signed command.

use super::args::{FleetArgs, FleetTarget, MirrorCommand};
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::bus::Publisher;
use hookbus::config::Config;
use hookbus::fleet::command::{self, SendError};
use hookbus::fleet::{self, view, Hearing, Known};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The presence interval assumed when the config has no `[listen]`.
const DEFAULT_PRESENCE_S: u64 = 60;

/// `hookbus fleet`.
pub fn fleet(
    args: &FleetArgs,
    config: &Config,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    if let Some(command) = &args.command {
        return send(command, config, out, reporter);
    }
    let listen = config.listen.as_ref();
    let destination = args
        .destination
        .clone()
        .or_else(|| listen.and_then(|listen| listen.presence.clone()))
        .ok_or_else(|| {
            Failure::new(
                Status::Config,
                "no presence destination: give --destination or set [listen] presence",
            )
        })?;
    // Checked first: an unusable name need not load the signing key.
    hookbus::config::listen::check_name("--durable", Some(&args.durable), "-_.")
        .status(Status::Config)?;
    let publisher = publisher(config, reporter)?;
    let state = args.state.clone().unwrap_or_else(default_state_file);
    let mut known = Known::load(&state).status(Status::Config)?;
    let wait = Duration::from_secs(args.for_seconds.unwrap_or_else(|| {
        let every = listen.map_or(DEFAULT_PRESENCE_S, |listen| listen.presence_s);
        every + (every / 10).max(2)
    }));
    let hearing = Hearing::start(&publisher, &destination).status(Status::Delivery)?;
    reporter.say(format_args!(
        "fleet: listening to {destination} for {} s",
        wait.as_secs()
    ));
    // Hosts that left while no fleet listened said so at D.last.
    let last = Hearing::last_words(&publisher, &destination, &args.durable, &mut known)
        .status(Status::Delivery)?;
    let mut heard = hearing.collect(wait, &mut known).status(Status::Delivery)?;
    heard.unusable.extend(last.unusable);
    for reason in &heard.unusable {
        reporter.say(format_args!(
            "fleet: skipped a message on {destination}: {reason}"
        ));
    }
    known.save(&state).status(Status::Config)?;
    let hosts = view::view(&known, fleet::now_ms());
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&hosts).status(Status::Input)?;
        json.push('\n');
        json
    } else {
        view::table(&hosts)
    };
    out.write_all(text.as_bytes()).status(Status::Input)
}

/// The config's broker, with its `[sign]` key.
fn publisher(config: &Config, reporter: &mut Reporter) -> Result<Publisher, Failure> {
    super::emit::publisher(config, reporter)?
        .ok_or_else(|| Failure::new(Status::Config, "no [broker] table in the config"))
}

/// `hookbus fleet freeze|unfreeze|rollback`: publishes the command and
/// prints its id.
fn send(
    command: &MirrorCommand<FleetTarget>,
    config: &Config,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let (to, request) = command.request();
    let topic = (to.topic.clone())
        .or_else(|| config.listen.as_ref()?.control_topic.clone())
        .ok_or_else(|| {
            Failure::new(
                Status::Config,
                "no control topic: set [listen] control_topic (as the listeners have it), or give --topic",
            )
        })?;
    let name = request.name();
    let sent = command::send(&publisher(config, reporter)?, &topic, &to.hosts, request);
    let sent = sent.map_err(|error| match error {
        SendError::Unsigned => Failure::new(Status::Config, error),
        SendError::Command(_) => Failure::new(Status::Input, error),
        SendError::Publish { .. } => Failure::new(Status::Delivery, error),
    })?;
    writeln!(
        out,
        "fleet command {} sent on {topic}: {name} for hosts {}; each listener taking it reports on its [listen] report",
        sent.id, sent.hosts
    )
    .status(Status::Input)
}

/// `$XDG_STATE_HOME/hookbus/fleet.json`, else `~/.local/state/hookbus/fleet.json`.
fn default_state_file() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("hookbus").join("fleet.json")
}
