//! `hookbus fleet`: hears the listeners' presence for a while and shows the
//! hosts × mirrors table (or JSON); `hookbus fleet freeze|unfreeze|rollback`
//! sends them a signed command and shows their answers.

use super::args::{FleetArgs, FleetTarget, MirrorCommand};
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::bus::Publisher;
use hookbus::config::Config;
use hookbus::fleet::command::{self, Answering, SendError};
use hookbus::fleet::vouch::{closing_line, Vouching};
use hookbus::fleet::{self, view, Hearing, Known};
use hookbus::listen::ops::control::Verdict;
use hookbus::listen::ops::remote::{Command, Commanded};
use hookbus::text::{self, clip};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
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
    let state = args.common.state.clone().unwrap_or_else(default_state_file);
    let (mut known, vouching, mut doubts) =
        Known::load_vouched(&state, config.fleet.as_ref()).status(Status::Config)?;
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
    let (durable, vouching) = (&args.durable, vouching.as_ref());
    let last = Hearing::last_words(&publisher, &destination, durable, vouching, &mut known)
        .status(Status::Delivery)?;
    let mut heard = (hearing.collect(wait, vouching, &mut known)).status(Status::Delivery)?;
    heard.unusable.extend(last.unusable);
    for reason in &heard.unusable {
        reporter.say(format_args!(
            "fleet: skipped a message on {destination}: {reason}"
        ));
    }
    doubts.extend(last.doubted);
    doubts.extend(heard.doubted);
    let what = format!("presence documents on {destination}");
    if let Some(line) = closing_line(vouching, &doubts, &what) {
        reporter.say(line);
    }
    known.save(&state).status(Status::Config)?;
    let hosts = view::view(&known, fleet::now_ms());
    let text = if args.common.json {
        pretty(&hosts)?
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

/// `hookbus fleet freeze|unfreeze|rollback`: publishes the command and,
/// with `[listen] report`, prints the listeners' answers heard within
/// `--wait`; the exit status says whether every host did it.
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
    let report = config
        .listen
        .as_ref()
        .and_then(|listen| listen.report.as_deref());
    let state = (to.common.state.clone()).unwrap_or_else(default_state_file);
    // Read before anything is sent: a bad state file sends nothing.
    let (known, vouching, _) =
        Known::load_vouched(&state, config.fleet.as_ref()).status(Status::Config)?;
    let publisher = publisher(config, reporter)?;
    let failure = |error: SendError| match error {
        SendError::Unsigned => Failure::new(Status::Config, error),
        SendError::Command(_) => Failure::new(Status::Input, error),
        SendError::Publish { .. } => Failure::new(Status::Delivery, error),
    };
    let sent = command::prepare(&publisher, &to.hosts, request).map_err(failure)?;
    // Subscribed before the command goes out, so that no answer is missed.
    let answering = (report.map(|report| Answering::start(&publisher, report)))
        .transpose()
        .status(Status::Delivery)?;
    command::send(&publisher, &topic, &sent).map_err(failure)?;
    let mut answers = Sent {
        command: &sent,
        topic: &topic,
        report,
        answers: Vec::new(),
        missing: Vec::new(),
    };
    match answering {
        Some(answering) => {
            let vouching = vouching.as_ref();
            hear(answering, (&known, &state), vouching, to.wait, &mut answers, reporter)
        }
        None => reporter.say(
            "fleet: the listeners' answers cannot be shown without [listen] report (where they report)",
        ),
    }
    let text = if to.common.json {
        pretty(&answers)?
    } else {
        answers.text(to.wait)
    };
    out.write_all(text.as_bytes()).status(Status::Input)
}

/// Hears the answers to `sent` for up to `wait` seconds (less once every
/// host `known` has as up and the glob takes has answered) and records the
/// exit status they come to; with `vouching`, only the answers it vouches for.
fn hear(
    answering: Answering,
    (known, state): (&Known, &Path),
    vouching: Option<&Vouching>,
    wait: u64,
    sent: &mut Sent,
    reporter: &mut Reporter,
) {
    let expected = command::expected(known, &sent.command.hosts, fleet::now_ms());
    if expected.is_empty() {
        reporter.say(format_args!(
            "fleet: no host up in {} matches {}: waiting {wait} s for answers",
            state.display(),
            sent.command.hosts,
        ));
    }
    let heard = answering.collect(
        &sent.command.id,
        expected,
        Duration::from_secs(wait),
        vouching,
    );
    if let Some(error) = &heard.stopped {
        let report = sent.report.unwrap_or_default();
        reporter.fail(
            Status::Delivery,
            format_args!("hearing answers on {report} stopped: {error:#}"),
        );
    }
    (sent.answers, sent.missing) = (heard.answers, heard.missing);
    let what = format!("answers on {}", sent.report.unwrap_or_default());
    if let Some(line) = closing_line(vouching, &heard.doubts, &what) {
        reporter.say(line);
    }
    verdict(sent, reporter);
}

/// A fleet command sent, and what came of it (`--json` prints it as it is).
#[derive(Serialize)]
struct Sent<'a> {
    command: &'a Command,
    topic: &'a str,
    /// `[listen] report`, where the answers were heard; none: not heard.
    report: Option<&'a str>,
    /// The listeners' answers, by host.
    answers: Vec<Commanded>,
    /// The hosts expected (up in the state file, taken by the glob) that
    /// did not answer.
    missing: Vec<String>,
}

impl Sent<'_> {
    /// The line saying it was sent, the answers' table and who was silent.
    fn text(&self, wait: u64) -> String {
        let command = self.command;
        let mut text = format!(
            "fleet command {} sent on {}: {} for hosts {}\n",
            command.id,
            self.topic,
            command.request.name(),
            command.hosts
        );
        if self.report.is_none() {
            return text;
        }
        if self.answers.is_empty() {
            text.push_str(&format!("no answer within {wait} s\n"));
        } else {
            let mut rows = vec![["HOST", "RESULT", "MESSAGE"].map(String::from).to_vec()];
            rows.extend(self.answers.iter().map(|answer| {
                vec![
                    shown(&answer.host),
                    answer.result.name().into(),
                    shown(&answer.message),
                ]
            }));
            text.push_str(&text::aligned(&rows));
        }
        if !self.missing.is_empty() {
            text.push_str(&format!("no answer from {}\n", self.missing.join(", ")));
        }
        text
    }
}

/// Records how it went: 9 when a host failed, else 8 when one refused, else
/// 7 when an expected host (or, none expected, every host) was silent.
fn verdict(sent: &Sent, reporter: &mut Reporter) {
    let count = |verdict: Verdict| sent.answers.iter().filter(|a| a.result == verdict).count();
    let (failed, refused) = (count(Verdict::Failed), count(Verdict::Refused));
    let silent = !sent.missing.is_empty() || sent.answers.is_empty();
    let status = match (failed, refused) {
        (0, 0) if !silent => return,
        (0, 0) => Status::Unreachable,
        (0, _) => Status::Refused,
        _ => Status::Failed,
    };
    let ok = sent.answers.len() - failed - refused;
    let mut said = format!(
        "fleet command {}: {ok} ok, {refused} refused, {failed} failed",
        sent.command.id
    );
    if !sent.missing.is_empty() {
        said.push_str(&format!("; no answer from {}", sent.missing.join(", ")));
    } else if sent.answers.is_empty() {
        said.push_str("; no listener answered");
    }
    reporter.fail(status, said);
}

/// A listener's words as one table cell: clipped, on one line.
fn shown(text: &str) -> String {
    clip(text).replace(char::is_control, " ")
}

/// What `--json` prints: `value`, pretty, and a newline.
fn pretty(value: &impl Serialize) -> Result<String, Failure> {
    let mut json = serde_json::to_string_pretty(value).status(Status::Input)?;
    json.push('\n');
    Ok(json)
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
