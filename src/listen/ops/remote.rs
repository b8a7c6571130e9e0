//! Fleet commands over the bus (`[listen] control_topic`): `hookbus fleet
//! freeze|unfreeze|rollback` publishes a signed [`Command`]; each listener
//! that trusts its key, has not taken its id before and whose host name the
//! command's glob takes hands it to the worker pool as `hookbus ctl` would
//! ([`super::control::server::dispatch`], then [`super::operate`]), and
//! reports how it went ([`Commanded`]).
//!
//! A command needs a trusted signature whatever `require_signature` says;
//! without a `[listen] trust` key every command is refused. Its signature's
//! time stamp is held to `max_age_s`, and its id is remembered (on disk, as
//! actions' ids are) for `remember_hours`, so a replay is refused too.

use super::control::{Job, Request, Response, Verdict};
use crate::bus::Incoming;
use crate::config::select::{check_hosts, for_host};
use crate::listen::actions::remember::Remembered;
use crate::listen::report::Report;
use crate::message::first_header;
use crate::message::Message;
use crate::sign::{Signature, Trust};
use crate::text::clip;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{self, Receiver, TryRecvError};

/// What a command's id is remembered as (beside actions' names).
const CLAIM: &str = "fleet command";

/// One fleet command, as its (signed) JSON body says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Unique per command: a listener takes each id once.
    pub id: String,
    /// The glob of the host names that apply it (`[listen] host`).
    pub hosts: String,
    /// What to do, as `hookbus ctl` asks it.
    pub request: Request,
}

impl Command {
    /// A new command with a random id; refused when `request` is no fleet
    /// command or `hosts` no glob.
    pub fn new(hosts: &str, request: Request) -> Result<Command> {
        use ring::rand::SecureRandom;
        let mut random = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| anyhow::anyhow!("the system gave no randomness for a command id"))?;
        let command = Command {
            id: random.iter().map(|byte| format!("{byte:02x}")).collect(),
            hosts: hosts.to_string(),
            request,
        };
        command.check().map_err(anyhow::Error::msg)?;
        Ok(command)
    }

    /// The message publishing it on `topic` (signed when it is sent).
    pub fn message(&self, topic: &str) -> Result<Message> {
        let subject = format!("fleet {} for hosts {}", self.request.name(), self.hosts);
        let headers = [
            ("content-type".to_string(), "application/json".to_string()),
            ("hookbus-id".to_string(), self.id.clone()),
        ];
        Message::compose(topic, Some(&subject), &headers, serde_json::to_vec(self)?)
    }

    /// Reads a body; `Err` says why it is no command.
    pub fn read(body: &[u8]) -> Result<Command, String> {
        let command: Command = serde_json::from_slice(body).map_err(|error| error.to_string())?;
        command.check()?;
        Ok(command)
    }

    fn check(&self) -> Result<(), String> {
        let id = &self.id;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("id {:?} is not a command id", clip(id)));
        }
        check_hosts(Some(std::slice::from_ref(&self.hosts))).map_err(|e| format!("{e:#}"))?;
        let words: Vec<&String> = match &self.request {
            Request::Freeze { mirror } | Request::Unfreeze { mirror } => vec![mirror],
            Request::Rollback {
                mirror,
                rev,
                branch,
            } => [mirror, rev].into_iter().chain(branch).collect(),
            Request::Status | Request::Sync { .. } => {
                return Err(format!(
                    "{} is no fleet command (freeze, unfreeze, rollback)",
                    self.request.name()
                ))
            }
        };
        // Each is shown in log lines and reports: one line each.
        match words.iter().find(|word| word.chars().any(char::is_control)) {
            Some(word) => Err(format!("{:?} holds a control character", clip(word))),
            None => Ok(()),
        }
    }

    /// The request's words, for a line: `freeze web`, `rollback web abc`.
    fn shown(&self) -> String {
        let mirror = self.request.mirror().unwrap_or_default();
        match &self.request {
            Request::Rollback { rev, branch, .. } => {
                let branch = branch
                    .as_ref()
                    .map_or(String::new(), |b| format!(" --branch {b}"));
                format!("rollback{branch} {mirror} {rev}")
            }
            request => format!("{} {mirror}", request.name()),
        }
    }
}

/// What became of one message on the control topic: logged as one line and
/// published on `[listen] report`, where `hookbus fleet freeze|unfreeze|rollback`
/// reads it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Commanded {
    /// This machine.
    pub host: String,
    /// `ok`, `refused` (not applied, and why) or `failed` (applied, and
    /// the work failed).
    pub result: Verdict,
    /// Why it was refused, or the listener's answer, as `hookbus ctl` prints it.
    pub message: String,
    /// The command, once its signature held.
    pub command: Option<Command>,
    /// The key that signed it, once its signature held.
    pub key: Option<String>,
    /// The message's `destination`, as received.
    pub destination: String,
    /// The message's `hookbus-id`, as received.
    pub hookbus_id: Option<String>,
}

impl Report for Commanded {
    fn log_line(&self) -> String {
        let what = match (&self.command, &self.key) {
            (Some(command), Some(key)) => format!(
                "fleet command {} ({} for hosts {}, key {key})",
                command.id,
                command.shown(),
                command.hosts
            ),
            _ => format!(
                "a fleet command from {} (hookbus-id {})",
                self.destination,
                self.hookbus_id.as_deref().unwrap_or("none")
            ),
        };
        format!("listen: {what} {}: {}", self.result.name(), self.message)
    }

    fn subject(&self) -> String {
        format!("{} fleet command {}", self.host, self.result.name())
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![("result".to_string(), self.result.name().to_string())];
        if let Some(command) = &self.command {
            headers.push(("fleet-command".to_string(), command.id.clone()));
        }
        headers
    }

    fn json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

/// What taking commands needs from the daemon.
pub(in crate::listen) struct Taking<'a> {
    /// `[listen] trust`, whatever `require_signature` says.
    pub trust: &'a Trust,
    /// This host's name, for the commands' globs.
    pub host: &'a str,
    /// Where ids taken are remembered.
    pub remembered: &'a Remembered,
}

/// What a message on the control topic comes to.
#[derive(Debug)]
pub(in crate::listen) enum Taken {
    /// A command for this host: dispatched as `hookbus ctl`'s would be.
    Job(Job),
    /// Refused: reported, nothing done.
    Refused(Box<Commanded>),
    /// A command for other hosts.
    Elsewhere,
}

/// Commands handed over, waiting for their answers.
#[derive(Default)]
pub(in crate::listen) struct Remote {
    waiting: Vec<(Commanded, Receiver<Response>)>,
}

impl Remote {
    /// Takes a message from the control topic.
    pub(in crate::listen) fn take(&mut self, message: &Incoming, taking: &Taking) -> Taken {
        let mut report = Commanded {
            host: taking.host.to_string(),
            result: Verdict::Refused,
            message: String::new(),
            command: None,
            key: None,
            destination: clip(first_header(&message.headers, "destination").unwrap_or_default()),
            hookbus_id: first_header(&message.headers, "hookbus-id").map(clip),
        };
        let refuse = |mut report: Commanded, why: String| {
            report.message = why;
            Taken::Refused(Box::new(report))
        };
        if taking.trust.keys().is_empty() {
            let why = "no [listen] trust key: fleet commands need a signature by a trusted key";
            return refuse(report, why.into());
        }
        let now = crate::sign::unix_now();
        let key = match taking.trust.verify(&message.headers, &message.body, now) {
            Signature::Trusted(key) => key,
            refused => return refuse(report, refused.refusal().unwrap_or_default()),
        };
        report.key = Some(key);
        let command = match Command::read(&message.body) {
            Ok(command) => command,
            Err(why) => return refuse(report, format!("not a fleet command: {why}")),
        };
        report.command = Some(command.clone());
        if !for_host(std::slice::from_ref(&command.hosts), taking.host) {
            eprintln!(
                "hookbus: listen: fleet command {} ({}) is for hosts {}, not {}",
                command.id,
                command.shown(),
                command.hosts,
                taking.host
            );
            return Taken::Elsewhere;
        }
        match taking.remembered.claim(&command.id, CLAIM) {
            Ok(true) => {}
            Ok(false) => return refuse(report, "replayed: this command was taken before".into()),
            Err(error) => {
                let why = format!("its id cannot be remembered, so it is not taken: {error:#}");
                return refuse(report, why);
            }
        }
        let (reply, answer) = mpsc::channel();
        self.waiting.push((report, answer));
        Taken::Job(Job {
            request: command.request,
            reply,
        })
    }

    /// The reports of commands answered since the last call.
    pub(in crate::listen) fn answered(&mut self) -> Vec<Commanded> {
        let mut done = Vec::new();
        self.waiting.retain_mut(|(report, answer)| {
            let (result, message) = match answer.try_recv() {
                Err(TryRecvError::Empty) => return true,
                Ok(response) => (response.verdict, response.message),
                Err(TryRecvError::Disconnected) => (
                    Verdict::Failed,
                    "the listener dropped the command (the mirror left the config)".to_string(),
                ),
            };
            report.result = result;
            report.message = message;
            done.push(report.clone());
            false
        });
        done
    }
}

#[cfg(test)]
mod tests;
