//! `[listen] presence`: every `presence_s` the daemon publishes one JSON
//! document saying who it is and where each of its mirrors stands, and one
//! last "leaving" document when it stops cleanly. `hookbus fleet` reads them.
//! Presence is news, not record: it is published directly (bounded by the
//! broker's `deadline_ms`), never kept in the outbox; a document that cannot
//! be sent is dropped and the next one says the same, newer. The "leaving"
//! document is the exception: a host that left says nothing more, so it also
//! goes, persistent, to [`last_words`], which `hookbus fleet` reads through a
//! durable subscription of its own: a fleet started later still sees it left
//! (both brokers keep a durable subscription's messages; the periodic
//! documents do not go there, so what is kept grows only by one per stop).

use super::status::{Board, MirrorStatus};
use crate::bus::Publisher;
use crate::deliver::Message;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `up` while running; `leaving` in the last document of a clean stop.
pub const UP: &str = "up";
/// See [`UP`].
pub const LEAVING: &str = "leaving";

/// Where the "leaving" documents of `presence` are kept for later readers:
/// the same destination with `.last` appended.
pub fn last_words(presence: &str) -> String {
    format!("{presence}.last")
}

/// One presence document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// The host (`[listen] host`, else its system name).
    pub host: String,
    /// hookbus's version there.
    pub version: String,
    /// `up` or `leaving`.
    pub status: String,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// When this document was made (Unix seconds, the host's clock).
    pub sent: u64,
    /// How often the host publishes (its `presence_s`).
    pub interval_s: u64,
    /// Every mirror, by name.
    pub mirrors: Vec<MirrorPresence>,
}

/// One mirror in a presence document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorPresence {
    /// Its name (see `[[mirror]] name`).
    pub name: String,
    /// The repository (or glob) it mirrors.
    pub repo: String,
    /// Its mode.
    pub mode: String,
    /// The branch it follows, for modes that follow one.
    pub branch: Option<String>,
    /// `OK`, `FROZEN`, `ROLLED-BACK` or `BROKEN`.
    pub state: String,
    /// The commit at its target (for `fetch`, the fetched head of its branch).
    pub commit: Option<String>,
    /// When its state or commit last changed (Unix seconds).
    pub changed_at: u64,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl Document {
    /// The document for `host` now.
    pub fn new(
        host: &str,
        status: &str,
        started: Instant,
        interval: Duration,
        mirrors: &[MirrorStatus],
    ) -> Document {
        Document {
            host: host.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            status: status.to_string(),
            uptime_s: started.elapsed().as_secs(),
            sent: unix(SystemTime::now()),
            interval_s: interval.as_secs(),
            mirrors: mirrors
                .iter()
                .map(|mirror| MirrorPresence {
                    name: mirror.name.clone(),
                    repo: mirror.repo.clone(),
                    mode: mirror.mode.clone(),
                    branch: mirror.branch.clone(),
                    state: mirror.state.as_str().to_string(),
                    commit: mirror.commit.clone(),
                    changed_at: unix(mirror.changed_at),
                })
                .collect(),
        }
    }

    /// As a message to `destination`.
    pub fn message(&self, destination: &str) -> Result<Message> {
        let headers = [
            ("content-type".to_string(), "application/json".to_string()),
            ("host".to_string(), self.host.clone()),
            ("presence".to_string(), self.status.clone()),
            // News, not record: the broker need not write it to disk; the
            // last word is the record a later `hookbus fleet` reads.
            (
                "persistent".to_string(),
                (self.status == LEAVING).to_string(),
            ),
        ];
        let subject = format!("{} {}", self.host, self.status);
        Message::compose(
            destination,
            Some(&subject),
            &headers,
            serde_json::to_vec(self)?,
        )
    }
}

/// The thread that publishes presence.
pub struct Presence {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the presence thread needs.
pub struct Target {
    /// The destination.
    pub destination: String,
    /// Publishes there.
    pub publisher: Publisher,
    /// The host's name.
    pub host: String,
    /// Between two documents.
    pub interval: Duration,
}

impl Presence {
    /// Publishes a document at once and then every `target.interval`; on
    /// [`Presence::finish`], one "leaving" document.
    pub fn start(target: Target, board: Board) -> Presence {
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut failing = false;
            let mut status = UP;
            loop {
                let document = Document::new(
                    &target.host,
                    status,
                    started,
                    target.interval,
                    &board.snapshot(),
                );
                let mut destinations = vec![target.destination.clone()];
                if status == LEAVING {
                    destinations.push(last_words(&target.destination));
                }
                let sent = (destinations.iter())
                    .map(|destination| document.message(destination))
                    .collect::<Result<Vec<Message>>>()
                    .and_then(|messages| Ok(target.publisher.publish(&messages)?));
                match sent {
                    Err(error) if !failing => {
                        eprintln!("hookbus: listen: presence not published: {error:#}");
                        failing = true;
                    }
                    Ok(()) if failing => {
                        eprintln!("hookbus: listen: presence published again");
                        failing = false;
                    }
                    _ => {}
                }
                if status == LEAVING {
                    return;
                }
                // A stop (or the daemon gone) ends the wait: say goodbye.
                if !matches!(
                    stopped.recv_timeout(target.interval),
                    Err(RecvTimeoutError::Timeout)
                ) {
                    status = LEAVING;
                }
            }
        });
        Presence {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Publishes the "leaving" document (bounded by the broker's deadline) and
    /// stops.
    pub fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_names_its_host_and_says_what_it_is() {
        let mirror: crate::config::mirror::MirrorConfig =
            toml::from_str("repo = 'app'\npath = '/m/a'\nmode = 'checkout'\ntarget = '/t'")
                .unwrap();
        let board = Board::new(&[mirror]);
        let started = Instant::now();
        let document = Document::new(
            "web1",
            LEAVING,
            started,
            Duration::from_secs(60),
            &board.snapshot(),
        );
        let message = document.message("/topic/presence").unwrap();
        assert_eq!(message.header("host"), Some("web1"));
        assert_eq!(message.header("presence"), Some("leaving"));
        assert_eq!(message.header("content-type"), Some("application/json"));
        assert_eq!(
            message.header("persistent"),
            Some("true"),
            "the last word is kept"
        );
        assert_eq!(last_words("/topic/presence"), "/topic/presence.last");
        let back: Document = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(back, document);
        assert_eq!(back.mirrors[0].state, "OK");
        assert_eq!(back.mirrors[0].branch.as_deref(), Some("master"));
        assert_eq!(back.interval_s, 60);
    }
}
