//! Reports: one JSON event per piece of work, logged as one line and, with
//! `[listen] report`, published through the outbox (stored first, then
//! delivered by a thread of its own), so reports made during an outage arrive
//! when the broker is back.

use crate::bus::Publisher;
use crate::bus::MAX_MESSAGE_BYTES;
use crate::deliver::flush;
use crate::deliver::outbox::Outbox;
use crate::deliver::Message;
use crate::message::first_header;
use crate::text::clip;
use serde::Serialize;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often reports left in the outbox are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(30);
/// How long the reporter waits for the outbox lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Something reported: logged as one line, published as one message.
pub trait Report: Send + 'static {
    /// The one log line.
    fn log_line(&self) -> String;
    /// The message's subject.
    fn subject(&self) -> String;
    /// Headers naming what it is about (a consumer can select on them).
    fn headers(&self) -> Vec<(String, String)>;
    /// The JSON body.
    fn json(&self) -> serde_json::Result<Vec<u8>>;

    /// The message published to `destination`.
    fn message(&self, destination: &str) -> anyhow::Result<Message> {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        headers.extend(self.headers());
        Message::compose(destination, Some(&self.subject()), &headers, self.json()?)
    }
}

/// One piece of work, as reported.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Event {
    /// This machine.
    pub host: String,
    /// The mirror's clone path.
    pub mirror: String,
    /// The repository the (last) message named, else the mirror's `repo`.
    pub repo: String,
    /// The ref the (last) message named.
    pub refname: Option<String>,
    /// Where the message said it went.
    pub newrev: Option<String>,
    /// The mirror's mode.
    pub mode: String,
    /// `ok`, `failed`, or `refused` (a branch that cannot be a directory).
    pub result: String,
    /// How long the work took.
    pub duration_ms: u64,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The `hookbus-id` of the (last) message this work answered.
    pub hookbus_id: Option<String>,
    /// Messages answered by this one piece of work (coalesced); 0 for a poll.
    pub messages: usize,
    /// The commit published or checked out, for modes that do.
    pub head: Option<String>,
    /// Branches published or removed (`-NAME`).
    pub changed: Vec<String>,
    /// The mirror's state after the work (`OK`, `FROZEN`, `ROLLED-BACK`,
    /// `BROKEN`; see `hookbus ctl`).
    pub state: Option<String>,
    /// The state before, when the work changed it: this event is a state change.
    pub previous_state: Option<String>,
    /// The `hookbus ctl` command this event answers (`freeze`, `unfreeze`,
    /// `rollback`); none for messages, polls and syncs.
    pub command: Option<String>,
    /// How the mirror's on-change chain went (`ok (N step(s))`, `skipped:
    /// WHY`, `failed: WHY`), when the work moved its published commit.
    pub on_change: Option<String>,
}

impl Report for Event {
    fn log_line(&self) -> String {
        let mut line = format!(
            "listen: {} {} ({}, {} message(s), {} ms)",
            self.mirror, self.result, self.mode, self.messages, self.duration_ms
        );
        if let Some(command) = &self.command {
            line.push_str(&format!(" ctl {command}"));
        }
        if let Some(head) = &self.head {
            line.push_str(&format!(" at {head}"));
        }
        if !self.changed.is_empty() {
            line.push_str(&format!(" changed {}", self.changed.join(",")));
        }
        if let Some(on_change) = &self.on_change {
            line.push_str(&format!(" on_change {on_change}"));
        }
        if let (Some(before), Some(now)) = (&self.previous_state, &self.state) {
            line.push_str(&format!(" state {before} -> {now}"));
        }
        if let Some(error) = &self.error {
            line.push_str(&format!(": {error}"));
        }
        line
    }

    fn subject(&self) -> String {
        format!("{} {} {}", self.host, self.mirror, self.result)
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("mirror".to_string(), self.mirror.clone()),
            ("result".to_string(), self.result.clone()),
        ]
    }

    fn json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

/// A message too large to hold ([`MAX_MESSAGE_BYTES`]): its body was read
/// through and dropped, and the message acknowledged so that it does not
/// come again. Its headers are the broker's: shown clipped, on one line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Oversized {
    /// This machine.
    pub host: String,
    /// Always `oversized`: the `result` header consumers select on.
    pub result: &'static str,
    /// Where the message came from, as its `destination` header says.
    pub destination: Option<String>,
    /// The body's size in bytes.
    pub size: u64,
    /// The largest body held.
    pub limit: u64,
    /// The message's `hookbus-id`, if it had one.
    pub hookbus_id: Option<String>,
}

impl Oversized {
    /// The report on the message with `headers`, whose body of `size`
    /// bytes was dropped.
    pub fn new(host: &str, headers: &[(String, String)], size: u64) -> Oversized {
        let shown = |key| {
            first_header(headers, key).map(|value| clip(&value.replace(char::is_control, " ")))
        };
        Oversized {
            host: host.to_string(),
            result: "oversized",
            destination: shown("destination"),
            size,
            limit: MAX_MESSAGE_BYTES as u64,
            hookbus_id: shown("hookbus-id"),
        }
    }
}

impl Report for Oversized {
    fn log_line(&self) -> String {
        format!(
            "listen: dropped a message of {} bytes (more than {}) from {}, hookbus-id {}",
            self.size,
            self.limit,
            self.destination.as_deref().unwrap_or("(no destination)"),
            self.hookbus_id.as_deref().unwrap_or("(none)")
        )
    }

    fn subject(&self) -> String {
        format!("{} message {}", self.host, self.result)
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![("result".to_string(), self.result.to_string())]
    }

    fn json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

/// What runs once an event is stored (answers to `hookbus ctl`).
type Then = Box<dyn FnOnce() + Send>;

/// An event handed to the reporter's thread, with what runs once it is stored.
type Handed = (Box<dyn Report>, Option<Then>);

/// Where events go.
pub struct Reporter {
    sender: Option<Sender<Handed>>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Logs every event on stderr and, with a destination and a publisher,
    /// publishes it through `outbox`.
    pub fn start(target: Option<(String, Publisher)>, outbox: Outbox) -> Reporter {
        let (sender, receiver) = mpsc::channel::<Handed>();
        let thread = std::thread::spawn(move || {
            let mut waiting = false;
            loop {
                let (event, then) = match receiver.recv_timeout(RETRY_EVERY) {
                    Ok((event, then)) => (Some(event), then),
                    Err(RecvTimeoutError::Timeout) => (None, None),
                    Err(RecvTimeoutError::Disconnected) => {
                        deliver(target.as_ref(), &outbox, &mut waiting);
                        return;
                    }
                };
                if let Some(event) = &event {
                    eprintln!("hookbus: {}", event.log_line());
                    if let Some((destination, _)) = &target {
                        let stored = event.message(destination).and_then(|m| outbox.store(&[m]));
                        if let Err(error) = stored {
                            eprintln!(
                                "hookbus: listen: cannot keep a report in {}: {error:#}",
                                outbox.dir().display()
                            );
                        }
                    }
                }
                if let Some(then) = then {
                    then();
                }
                deliver(target.as_ref(), &outbox, &mut waiting);
            }
        });
        Reporter {
            sender: Some(sender),
            thread: Some(thread),
        }
    }

    /// Hands an event over (never blocks on the broker).
    pub fn send(&self, event: impl Report) {
        if let Some(sender) = &self.sender {
            let _ = sender.send((Box::new(event), None));
        }
    }

    /// Hands an event over; `then` runs once it is logged and stored in the
    /// outbox, so that what it announces survives a crash.
    pub fn send_then(&self, event: impl Report, then: impl FnOnce() + Send + 'static) {
        if let Some(sender) = &self.sender {
            let _ = sender.send((Box::new(event), Some(Box::new(then))));
        }
    }

    /// Delivers what is left (one bounded try) and stops the thread.
    pub fn finish(mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Publishes what waits in the outbox, once round the hosts; what fails stays.
/// Says so once when reports start waiting, and once when they are through.
fn deliver(target: Option<&(String, Publisher)>, outbox: &Outbox, waiting: &mut bool) {
    let Some((_, publisher)) = target else {
        return;
    };
    match flush::flush_waiting(outbox, publisher, LOCK_WAIT) {
        Ok(None) => {}
        Ok(Some(report)) => match report.stopped {
            Some(stopped) if !*waiting => {
                eprintln!(
                    "hookbus: listen: reports wait in {}: {}",
                    outbox.dir().display(),
                    stopped.reason
                );
                *waiting = true;
            }
            None if *waiting => {
                eprintln!("hookbus: listen: waiting reports delivered");
                *waiting = false;
            }
            _ => {}
        },
        Err(error) => eprintln!("hookbus: listen: reports: {error:#}"),
    }
}
