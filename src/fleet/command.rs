//! `hookbus fleet freeze|unfreeze|rollback`: one [`Command`] published on the
//! listeners' control topic, signed with `[sign]`'s key at the publisher's
//! one SEND chokepoint; never sent unsigned, since every listener refuses
//! that. The listeners' side is [`crate::listen::ops::remote`]; their
//! answers ([`Commanded`] reports on `[listen] report`) are heard by
//! [`Answering`], and with `[fleet] trust` believed only when signed by a
//! key listed for the host they name.

use super::vouch::{Doubts, Vouching};
use super::{view, Known};
use crate::bus::{PublishError, Publisher, Subscribe};
use crate::config::select::for_host;
use crate::listen::ops::control::Request;
use crate::listen::ops::remote::{Command, Commanded};
use anyhow::Result;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Why a command was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No `[sign]` key: the command could only go out unsigned.
    #[error("fleet commands are signed and this config has no [sign] key_file: make a key pair with `hookbus keygen PATH`, set [sign] key_file = \"PATH\", and add the line of PATH.pub to the listeners' [listen] trust")]
    Unsigned,
    /// The hosts glob or the request is no fleet command.
    #[error("{0:#}")]
    Command(anyhow::Error),
    /// The broker did not take it.
    #[error("the command was not published on {topic}: {error}")]
    Publish {
        /// Where it was to go.
        topic: String,
        /// What the broker (or the network) said.
        error: PublishError,
    },
}

/// The command `request` for the listeners whose host name `hosts` (a glob)
/// takes, to be signed by `publisher`'s key.
pub fn prepare(publisher: &Publisher, hosts: &str, request: Request) -> Result<Command, SendError> {
    if publisher.signer().is_none() {
        return Err(SendError::Unsigned);
    }
    Command::new(hosts, request).map_err(SendError::Command)
}

/// Publishes `command` on `topic`, signed by `publisher`'s key.
pub fn send(publisher: &Publisher, topic: &str, command: &Command) -> Result<(), SendError> {
    let message = command.message(topic).map_err(SendError::Command)?;
    publisher
        .publish(&[message])
        .map_err(|error| SendError::Publish {
            topic: topic.to_string(),
            error,
        })
}

/// Where the answers to a command are heard: a plain subscription to the
/// listeners' `[listen] report`, made before the command is sent so that no
/// answer comes before it.
pub struct Answering {
    subscriber: Box<dyn Subscribe>,
}

impl Answering {
    /// Subscribes to `report` (bounded).
    pub fn start(publisher: &Publisher, report: &str) -> Result<Answering> {
        let subscriber = super::subscribe(publisher, report, None)?;
        Ok(Answering { subscriber })
    }

    /// Hears the reports answering command `id` within `wait`, or until
    /// every host of `expected` has answered; other reports (mirrors'
    /// events, other commands') are passed over. With `vouching`, an answer
    /// it does not vouch for is no answer: it goes to the doubts. A broken
    /// subscription ends the hearing, keeping what came before.
    pub fn collect(
        mut self,
        id: &str,
        expected: BTreeSet<String>,
        wait: Duration,
        vouching: Option<&Vouching>,
    ) -> Answered {
        let mut answered = Answered::default();
        let until = Instant::now() + wait;
        let mut waiting = expected.clone();
        let mut hear = || -> Result<()> {
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                if !expected.is_empty() && waiting.is_empty() {
                    break;
                }
                let Some(delivery) = self.subscriber.next(left)? else {
                    continue;
                };
                self.subscriber.ack(&delivery.ack)?;
                let Some(answer) = answer_to(id, &delivery.body) else {
                    continue;
                };
                match Vouching::believe(vouching, &answer.host, &delivery.headers, &delivery.body) {
                    Ok(_) => {
                        waiting.remove(&answer.host);
                        answered.answers.push(answer);
                    }
                    Err(why) => answered.doubts.add(&answer.host, why),
                }
            }
            Ok(())
        };
        answered.stopped = hear().err();
        self.subscriber.close(super::DISCONNECT_BOUND);
        answered.answers.sort_by(|a, b| a.host.cmp(&b.host));
        answered.missing = waiting.into_iter().collect();
        answered
    }
}

/// What a command's listeners were heard to say.
#[derive(Debug, Default)]
pub struct Answered {
    /// The answers believed, by host.
    pub answers: Vec<Commanded>,
    /// The expected hosts that did not answer.
    pub missing: Vec<String>,
    /// What was not believed (with `[fleet] trust`).
    pub doubts: Doubts,
    /// Why hearing stopped before its time, when the subscription broke.
    pub stopped: Option<anyhow::Error>,
}

/// The report in `body` when it answers command `id`: its command's, or
/// (refused before its command was read) the refused message's `hookbus-id`.
fn answer_to(id: &str, body: &[u8]) -> Option<Commanded> {
    let answer: Commanded = serde_json::from_slice(body).ok()?;
    let command = answer.command.as_ref().map(|command| command.id.as_str());
    (command.or(answer.hookbus_id.as_deref()) == Some(id)).then_some(answer)
}

/// The hosts a command for `hosts` (a glob) expects answers from: those
/// `known` has as up at `now_ms` (see [`view`]) whose names it takes.
pub fn expected(known: &Known, hosts: &str, now_ms: u64) -> BTreeSet<String> {
    let glob = [hosts.to_string()];
    view::view(known, now_ms)
        .into_iter()
        .filter(|host| host.status == "up" && for_host(&glob, &host.host))
        .map(|host| host.host)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Heard;
    use crate::listen::ops::control::Verdict;
    use crate::listen::ops::presence::Document;
    use crate::listen::report::Report;

    fn refused(command: Option<Command>, hookbus_id: &str) -> Vec<u8> {
        let report = Commanded {
            host: "web1".into(),
            result: Verdict::Refused,
            message: "unsigned".into(),
            command,
            key: None,
            destination: "/topic/control".into(),
            hookbus_id: Some(hookbus_id.into()),
        };
        report.json().unwrap()
    }

    #[test]
    fn an_answer_is_the_report_of_this_command_read_or_refused_unread() {
        let freeze = Request::Freeze {
            mirror: "app".into(),
        };
        let command = Command::new("web*", freeze).unwrap();
        let id = &command.id.clone();
        let answer = answer_to(id, &refused(Some(command.clone()), id)).unwrap();
        assert_eq!(
            (answer.host.as_str(), answer.result),
            ("web1", Verdict::Refused)
        );
        assert!(answer_to(id, &refused(None, id)).is_some());
        assert!(answer_to(id, &refused(None, "other")).is_none());
        // A message with this id refused as another command's: not this one's.
        assert!(answer_to("other", &refused(Some(command), "other")).is_none());
        // A mirror's event carries a hookbus_id too, and is no answer.
        let event =
            format!(r#"{{"host":"web1","mirror":"/srv/app","result":"ok","hookbus_id":"{id}"}}"#);
        assert!(answer_to(id, event.as_bytes()).is_none());
    }

    #[test]
    fn the_hosts_expected_are_those_up_that_the_glob_takes() {
        let now = 1_000_000_000;
        let mut known = Known::default();
        for (host, status, heard_ms) in [
            ("web1", "up", now),
            ("web2", "up", now - 200_000),
            ("web3", "leaving", now),
            ("db1", "up", now),
        ] {
            let document = Document {
                host: host.into(),
                version: "1".into(),
                status: status.into(),
                uptime_s: 1,
                sent: 0,
                interval_s: 60,
                mirrors: Vec::new(),
            };
            known.hosts.insert(
                host.into(),
                Heard {
                    document,
                    heard_ms,
                    key: None,
                },
            );
        }
        let expected: Vec<String> = expected(&known, "web*", now).into_iter().collect();
        assert_eq!(expected, ["web1"]);
    }
}
