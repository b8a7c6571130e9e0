//! `hookbus fleet`: what the deploy hosts say about themselves. Listeners
//! publish presence documents ([`crate::listen::ops::presence`]); [`Hearing`] hears
//! them for a while, [`Known`] remembers every host heard (in a small state
//! file, so a host that went silent is still known), and [`view`] decides
//! which hosts are up, quiet or left and which mirrors differ from the
//! majority. [`command`] sends them signed commands and hears their answers.
//! With `[fleet] trust` ([`vouch`]) only documents and answers signed by a
//! key listed for their host are believed.

pub mod command;
pub mod view;
pub mod vouch;

use crate::bus::{Publisher, QueueType, Subscribe, SubscribeSpec};
use crate::listen::ops::presence::{last_words, Document};
use crate::private_file::Access;
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vouch::{Doubts, Vouching};

/// Bound on connecting and subscribing.
const CONNECT_BOUND: Duration = Duration::from_secs(10);
/// Bound on saying goodbye.
const DISCONNECT_BOUND: Duration = Duration::from_secs(2);
/// Bound on reading the last words kept for `hookbus fleet`.
const LAST_WORDS_BOUND: Duration = Duration::from_secs(30);
/// Hosts remembered at most (a flood of made-up names cannot grow the file
/// without end); the longest-silent go first.
const MAX_HOSTS: usize = 10_000;

/// One host as last heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heard {
    /// Its last document.
    pub document: Document,
    /// When it was received (Unix milliseconds, this machine's clock).
    pub heard_ms: u64,
    /// The id of the `[fleet] trust` key that signed it; none: not verified.
    #[serde(default)]
    pub key: Option<String>,
}

/// Every host heard, now or in earlier runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// By host name.
    pub hosts: BTreeMap<String, Heard>,
}

/// What one run heard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeardCount {
    /// Documents taken.
    pub documents: usize,
    /// Messages that were no presence document; why, for the first few.
    pub unusable: Vec<String>,
    /// Documents not believed (`[fleet] trust`).
    pub doubted: Doubts,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

impl Known {
    /// Reads the state file; a missing one is an empty fleet.
    pub fn load(path: &Path) -> Result<Known> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a fleet state file; remove it to start afresh",
                    path.display()
                )
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Known::default()),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the state file atomically and durably (a temporary file of this
    /// process, synced, then renamed), so two `hookbus fleet` at once never
    /// share a temporary file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot make {}", parent.display()))?;
                parent
            }
            None => Path::new("."),
        };
        let name = path
            .file_name()
            .context("the fleet state file has no name")?;
        let temp = dir.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        Access::private()
            .write_atomic(dir, &temp, path, |out| {
                Ok(serde_json::to_writer_pretty(&mut *out, self)?)
            })
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Reads the state file and `[fleet] trust` (`fleet`), and forgets the
    /// hosts the trust does not vouch for (see [`Known::keep_vouched`]).
    pub fn load_vouched(
        path: &Path,
        fleet: Option<&vouch::FleetConfig>,
    ) -> Result<(Known, Option<Vouching>, Doubts)> {
        let mut known = Known::load(path)?;
        let vouching = Vouching::from_config(fleet)?;
        let mut doubts = Doubts::default();
        if let Some(vouching) = &vouching {
            known.keep_vouched(vouching, &mut doubts);
        }
        Ok((known, vouching, doubts))
    }

    /// Forgets the hosts whose record no key of `vouching` vouches for
    /// (heard while nothing was verified, or its key no longer listed),
    /// counting each in `doubts`: the state file keeps no forgery (nor one's
    /// future `sent`, which would hide what the host says next).
    pub fn keep_vouched(&mut self, vouching: &Vouching, doubts: &mut Doubts) {
        self.hosts.retain(|host, heard| {
            let vouched = (heard.key.as_deref()).is_some_and(|key| vouching.speaks_for(key, host));
            if !vouched {
                doubts.add(host, "kept unverified in the state file".into());
            }
            vouched
        });
    }

    /// Takes one document heard: it replaces what its host said before.
    pub fn take(&mut self, heard: Heard) {
        let host = &heard.document.host;
        // Last words and live documents come by two subscriptions: what the
        // host said last (by its own clock) wins, whichever came first.
        if (self.hosts.get(host)).is_some_and(|known| known.document.sent > heard.document.sent) {
            return;
        }
        self.hosts.insert(host.clone(), heard);
        while self.hosts.len() > MAX_HOSTS {
            let oldest = self
                .hosts
                .iter()
                .min_by_key(|(_, heard)| heard.heard_ms)
                .map(|(host, _)| host.clone());
            if let Some(host) = oldest {
                self.hosts.remove(&host);
            }
        }
    }
}

/// Reads one message body as a presence document; `Err` says why it is none.
pub fn read(body: &[u8]) -> Result<Document, String> {
    let document: Document = serde_json::from_slice(body)
        .map_err(|error| format!("not a presence document: {error}"))?;
    let host = &document.host;
    if host.is_empty() || host.len() > 255 || host.chars().any(char::is_control) {
        return Err(format!("unusable host name {host:?}"));
    }
    Ok(document)
}

/// A subscription to the presence destination.
pub struct Hearing {
    subscriber: Box<dyn Subscribe>,
}

impl Hearing {
    /// Subscribes to `destination` (bounded); presence sent from now on is heard.
    pub fn start(publisher: &Publisher, destination: &str) -> Result<Hearing> {
        let subscriber = subscribe(publisher, destination, None)?;
        Ok(Hearing { subscriber })
    }

    /// Takes into `known` the last words ([`last_words`]) kept for the
    /// durable subscription `durable` since its previous reading (it is made
    /// by the first one); reads until none has come for a second, bounded
    /// by `LAST_WORDS_BOUND`. With `vouching`, only those it vouches for
    /// (whatever their age: [`Vouching::kept`]).
    pub fn last_words(
        publisher: &Publisher,
        presence: &str,
        durable: &str,
        vouching: Option<&Vouching>,
        known: &mut Known,
    ) -> Result<HeardCount> {
        let destination = last_words(presence);
        let subscriber = subscribe(publisher, &destination, Some(durable))?;
        let until = Instant::now() + LAST_WORDS_BOUND;
        let kept = vouching.map(Vouching::kept);
        Hearing { subscriber }.take(until, Some(Duration::from_secs(1)), kept.as_ref(), known)
    }

    /// Takes every presence document heard within `wait` into `known`
    /// (with `vouching`, only those it vouches for).
    pub fn collect(
        self,
        wait: Duration,
        vouching: Option<&Vouching>,
        known: &mut Known,
    ) -> Result<HeardCount> {
        self.take(Instant::now() + wait, None, vouching, known)
    }

    /// Takes documents until `until`, or until none came for `idle`.
    fn take(
        mut self,
        until: Instant,
        idle: Option<Duration>,
        vouching: Option<&Vouching>,
        known: &mut Known,
    ) -> Result<HeardCount> {
        let mut count = HeardCount::default();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let Some(delivery) = self
                .subscriber
                .next(idle.map_or(left, |idle| idle.min(left)))?
            else {
                if idle.is_some() {
                    break;
                }
                continue;
            };
            match read(&delivery.body) {
                Ok(document) => {
                    let (headers, body) = (&delivery.headers, &delivery.body);
                    match Vouching::believe(vouching, &document.host, headers, body) {
                        Ok(key) => {
                            let heard_ms = now_ms();
                            known.take(Heard {
                                document,
                                heard_ms,
                                key,
                            });
                            count.documents += 1;
                        }
                        Err(why) => count.doubted.add(&document.host, why),
                    }
                }
                Err(reason) if count.unusable.len() < 5 => count.unusable.push(reason),
                Err(_) => {}
            }
            self.subscriber.ack(&delivery.ack)?;
        }
        self.subscriber.close(DISCONNECT_BOUND);
        Ok(count)
    }
}

/// Subscribes to `destination` (bounded), durably when `durable` names the
/// subscription.
fn subscribe(
    publisher: &Publisher,
    destination: &str,
    durable: Option<&str>,
) -> Result<Box<dyn Subscribe>> {
    let spec = SubscribeSpec {
        destinations: vec![destination.to_string()],
        durable: durable.map(String::from),
        heartbeat: Duration::ZERO,
        queue_type: QueueType::default(),
        group: None,
        control: None,
    };
    publisher
        .subscribe(&spec, CONNECT_BOUND)
        .map_err(|failures| {
            let reasons: Vec<String> = failures
                .iter()
                .map(|(host, error)| format!("{host}: {error}"))
                .collect();
            anyhow!("cannot subscribe to {destination}: {}", reasons.join("; "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(status: &str, sent: u64) -> Heard {
        let json = serde_json::json!({
            "host": "web1", "version": "1", "status": status, "uptime_s": 1,
            "sent": sent, "interval_s": 60, "mirrors": []
        });
        let document = read(&serde_json::to_vec(&json).unwrap()).unwrap();
        Heard {
            document,
            heard_ms: sent,
            key: None,
        }
    }

    #[test]
    fn what_a_host_said_last_wins_whichever_came_first() {
        let mut known = Known::default();
        known.take(heard("up", 200));
        // A last word kept from an earlier stop, read after the live document.
        known.take(heard("leaving", 100));
        assert_eq!(known.hosts["web1"].document.status, "up");
        known.take(heard("leaving", 300));
        assert_eq!(known.hosts["web1"].document.status, "leaving");
        assert!(read(br#"{"host": ""}"#).is_err());
    }
}
