//! Publishing: batches of messages (see [`super::batch`]) over one connection
//! kept open from batch to batch, failover across the URL's hosts, all within
//! one deadline ([`Patience`]).

use super::batch::{Batch, Clock, Patience, Verdict};
use super::connection::{ConnectParams, Connection, Session, StompError};
use super::settings::BrokerSettings;
use super::tls;
use super::url::HostSpec;
use crate::message::Message;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether a publish goes round the hosts again, with the URL's back-off,
/// after every host failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Until the deadline (or the URL's maxReconnectAttempts).
    UntilDeadline,
    /// Once round: the broker is known to have been down, and what fails now
    /// waits in the outbox anyway.
    OneRound,
}

/// A publish that did not fully succeed.
#[derive(Debug)]
pub struct PublishError {
    /// What became of each message: receipted, refused, or unanswered (it may
    /// or may not have arrived).
    pub verdicts: Vec<Verdict>,
    /// True when retrying cannot help (refused login or message, TLS trust).
    pub permanent: bool,
    /// The last failure on each host tried, as `host: reason`.
    pub attempts: Vec<(String, String)>,
}

impl PublishError {
    /// What went wrong on each host tried, as `host: reason; …`.
    pub fn reasons(&self) -> String {
        let reasons: Vec<String> = self
            .attempts
            .iter()
            .map(|(host, reason)| format!("{host}: {reason}"))
            .collect();
        reasons.join("; ")
    }

    /// Messages the broker receipted.
    pub fn delivered(&self) -> usize {
        self.count(|verdict| *verdict == Verdict::Receipted)
    }

    /// Messages the broker refused for good.
    pub fn refused(&self) -> usize {
        self.count(|verdict| matches!(verdict, Verdict::Refused(_)))
    }

    fn count(&self, which: impl Fn(&Verdict) -> bool) -> usize {
        self.verdicts
            .iter()
            .filter(|verdict| which(verdict))
            .count()
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.permanent {
            "permanent"
        } else {
            "transient"
        };
        write!(
            f,
            "{} of {} message(s) receipted, {} refused, before a {kind} failure: {}",
            self.delivered(),
            self.verdicts.len(),
            self.refused(),
            self.reasons()
        )
    }
}

impl std::error::Error for PublishError {}

/// How one broker host answered `hookbus check`.
#[derive(Debug)]
pub struct HostReport {
    /// The host without credentials.
    pub host: String,
    /// The session and the round trip of a receipted frame, or why it failed.
    pub result: Result<(Session, Duration), StompError>,
}

/// Publishes messages to the configured brokers. A clone shares the TLS
/// trust loaded once.
#[derive(Debug, Clone)]
pub struct Publisher {
    settings: BrokerSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Publisher {
    /// A publisher; loads TLS trust now, so a bad CA file fails before any message.
    pub fn new(settings: BrokerSettings) -> anyhow::Result<Publisher> {
        let tls = if settings.uses_tls() {
            Some(tls::client_config(
                settings.ca_file.as_deref(),
                settings.tls_verify_hostname,
            )?)
        } else {
            None
        };
        Ok(Publisher { settings, tls })
    }

    /// Sends every message, receipted, within the configured deadline.
    pub fn publish(&self, messages: &[Message]) -> Result<(), PublishError> {
        let deadline = Instant::now() + self.settings.deadline;
        self.publish_until(messages, deadline, Retry::UntilDeadline)
    }

    /// The key messages are signed with (`[sign]`), if any.
    pub fn signer(&self) -> Option<&crate::sign::Signer> {
        self.settings.signer.as_deref()
    }

    /// The configured bound on one publish.
    pub fn deadline(&self) -> Duration {
        self.settings.deadline
    }

    /// Sends every message, receipted, before `deadline`.
    pub fn publish_until(
        &self,
        messages: &[Message],
        deadline: Instant,
        retry: Retry,
    ) -> Result<(), PublishError> {
        let mut delivery = self.delivery(Patience::Until(deadline), retry);
        let result = delivery.publish(messages);
        delivery.close();
        result
    }

    /// A delivery of several batches over one connection, within `patience`.
    pub fn delivery(&self, patience: Patience, retry: Retry) -> Delivery<'_> {
        Delivery {
            publisher: self,
            hosts: self.host_order(),
            clock: Clock::new(patience),
            retry,
            open: None,
            on_progress: None,
        }
    }

    /// Connects to every host in turn and reports what each one said.
    pub fn check(&self) -> Vec<HostReport> {
        self.settings
            .url
            .hosts
            .iter()
            .map(|host| {
                let deadline = Instant::now() + self.settings.deadline;
                let result =
                    Connection::open(host, &self.params(host), deadline).and_then(|connection| {
                        let session = connection.session.clone();
                        let start = Instant::now();
                        connection.disconnect()?;
                        Ok((session, start.elapsed()))
                    });
                HostReport {
                    host: host.display(),
                    result,
                }
            })
            .collect()
    }

    /// What CONNECT needs for `host`: credentials, vhost, TLS.
    pub(crate) fn params<'a>(&'a self, host: &'a HostSpec) -> ConnectParams<'a> {
        let (login, passcode) = self.settings.credentials(host);
        ConnectParams {
            login,
            passcode,
            vhost: self.settings.vhost.as_deref().unwrap_or("/"),
            escape_connect_headers: self.settings.escape_connect_headers,
            tls: self.tls.as_ref(),
        }
    }

    /// Hosts in URL order, or rotated to a random start with `randomize=true`.
    pub(crate) fn host_order(&self) -> Vec<HostSpec> {
        let mut hosts = self.settings.url.hosts.clone();
        if self.settings.url.failover.randomize && !hosts.is_empty() {
            use std::hash::{BuildHasher, Hasher};
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            let start = (random % hosts.len() as u64) as usize;
            hosts.rotate_left(start);
        }
        hosts
    }
}

/// Batches published one after the other over one connection, failing over
/// between hosts on connection trouble (at-least-once: an unanswered message
/// goes out again, and `hookbus-id` lets consumers drop duplicates).
pub struct Delivery<'p> {
    publisher: &'p Publisher,
    hosts: Vec<HostSpec>,
    clock: Clock,
    retry: Retry,
    /// The open connection and the index of its host.
    open: Option<(usize, Connection)>,
    /// Told how connecting goes (see [`Delivery::on_progress`]).
    on_progress: Option<Box<dyn FnMut(Progress) + 'p>>,
}

/// How a delivery's connecting goes, as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A broker answered CONNECT.
    Connected,
    /// Every host failed a round; the delivery retries them if its
    /// [`Retry`] and deadline allow.
    AllHostsFailed,
}

impl<'p> Delivery<'p> {
    /// Calls `signal` as connecting goes, so that whoever waits on this
    /// delivery learns whether the broker answers long before the deadline.
    pub fn on_progress(mut self, signal: impl FnMut(Progress) + 'p) -> Self {
        self.on_progress = Some(Box::new(signal));
        self
    }

    fn progress(&mut self, progress: Progress) {
        if let Some(signal) = &mut self.on_progress {
            signal(progress);
        }
    }

    /// Sends every message of a batch, receipted; `Err` says what became of
    /// each when not all were receipted.
    pub fn publish(&mut self, messages: &[Message]) -> Result<(), PublishError> {
        self.clock.restart();
        let mut batch = Batch::new(messages, self.publisher.settings.signer.as_deref());
        let mut attempts = Vec::new();
        let mut permanent = false;
        let first = self.open.as_ref().map_or(0, |(host, _)| *host);
        let order: Vec<usize> = (0..self.hosts.len())
            .map(|offset| (first + offset) % self.hosts.len())
            .collect();
        let failover = &self.publisher.settings.url.failover;
        let mut round = 0;
        let mut last_host = first;
        'rounds: loop {
            let mut worth_retrying = false;
            for &host in &order {
                last_host = host;
                let error = loop {
                    if batch.answered() {
                        break 'rounds;
                    }
                    let learned = batch.learned;
                    let error = match self.run_on(host, &mut batch) {
                        Ok(()) => break 'rounds,
                        Err(error) => error,
                    };
                    // Each connection that taught something earns another.
                    if batch.learned == learned || self.clock.left().is_zero() {
                        break error;
                    }
                };
                permanent = error.is_permanent();
                worth_retrying |= !permanent;
                record(&mut attempts, self.hosts[host].display(), &error);
                if !error.fails_over() || self.clock.left().is_zero() {
                    break 'rounds;
                }
            }
            self.progress(Progress::AllHostsFailed);
            let out_of_attempts = failover
                .max_reconnect_attempts
                .is_some_and(|attempts| round >= attempts);
            let left = self.clock.left();
            if self.retry == Retry::OneRound || !worth_retrying || out_of_attempts || left.is_zero()
            {
                break;
            }
            std::thread::sleep(failover.delay(round).min(left));
            round += 1;
        }
        if batch
            .verdicts
            .iter()
            .all(|verdict| *verdict == Verdict::Receipted)
        {
            return Ok(());
        }
        let refused = batch.verdicts.iter().find_map(|verdict| match verdict {
            Verdict::Refused(reason) => Some(reason.clone()),
            _ => None,
        });
        if let (true, Some(reason)) = (attempts.is_empty(), refused) {
            let host = self.hosts[last_host].display();
            attempts.push((host, format!("broker refused a message: {reason}")));
            permanent = true;
        }
        Err(PublishError {
            verdicts: batch.verdicts,
            permanent,
            attempts,
        })
    }

    /// Runs the batch on host number `host`, reusing the open connection if
    /// it goes there; keeps the connection open when all went well.
    fn run_on(&mut self, host: usize, batch: &mut Batch<'_>) -> Result<(), StompError> {
        if let Some((open_host, mut connection)) = self.open.take() {
            if open_host == host {
                let learned = batch.learned;
                connection.set_deadline(self.clock.deadline());
                match batch.run(&mut connection, &mut self.clock) {
                    Ok(()) => {
                        self.open = Some((host, connection));
                        return Ok(());
                    }
                    // Idle since the last batch, the broker may have closed
                    // it: a fresh connection gets a fair chance.
                    Err(_) if batch.learned == learned => {}
                    Err(error) => return Err(error),
                }
            }
        }
        let spec = &self.hosts[host];
        let params = self.publisher.params(spec);
        let mut connection = Connection::open(spec, &params, self.clock.deadline())?;
        self.progress(Progress::Connected);
        batch.run(&mut connection, &mut self.clock)?;
        self.open = Some((host, connection));
        Ok(())
    }

    /// Ends the open connection with a DISCONNECT, not waiting for its
    /// receipt: every batch on it was answered, so the receipt would say
    /// nothing, and a hook would wait a round trip for it.
    pub fn close(mut self) {
        if let Some((_, connection)) = self.open.take() {
            connection.leave();
        }
    }
}

/// Keeps one reason per host, so long retry rounds stay readable: the latest,
/// except that running out of time on a retry does not hide the first reason.
fn record(attempts: &mut Vec<(String, String)>, host: String, error: &StompError) {
    let reason = error.to_string();
    match attempts.iter_mut().find(|(known, _)| *known == host) {
        Some(entry) if matches!(error, StompError::Timeout(_)) => {
            if !entry.1.ends_with(RETRIED) {
                entry.1.push_str(RETRIED);
            }
        }
        Some(entry) => entry.1 = reason,
        None => attempts.push((host, reason)),
    }
}

const RETRIED: &str = " (retried until the deadline)";
