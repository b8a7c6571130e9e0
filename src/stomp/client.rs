//! Publishing: batches of messages (see [`super::batch`]) over one connection
//! kept open from batch to batch, failover across the URL's hosts, all within
//! one deadline ([`Patience`]); and STOMP as a [`Bus`].

use super::batch::{Batch, Clock};
use super::connection::{ConnectParams, Connection, StompError};
use super::product::Product;
use super::settings::BrokerSettings;
use super::subscriber::Subscriber;
use super::tls;
use super::url::HostSpec;
use crate::bus::{
    Bus, BusError, HostReport, Patience, Progress, Publish, PublishError, Reached, Retry,
    Subscribe, SubscribeSpec, Verdict,
};
use crate::message::Message;
use crate::sign::Signer;
use std::any::Any;
use std::time::{Duration, Instant};

/// The configured STOMP brokers, for publishing and subscribing. A clone
/// shares the TLS trust loaded once.
#[derive(Debug, Clone)]
pub struct Client {
    settings: BrokerSettings,
    tls: Option<tls::Trust>,
}

impl Client {
    /// A client; reads a CA file now, so a bad one fails before any message
    /// (see [`tls::Trust`]).
    pub fn new(settings: BrokerSettings) -> anyhow::Result<Client> {
        let tls = if settings.uses_tls() {
            Some(tls::Trust::new(
                settings.ca_file.as_deref(),
                settings.tls_verify_hostname,
            )?)
        } else {
            None
        };
        Ok(Client { settings, tls })
    }

    /// Connects to `host`, reports what it said and which of `destinations`
    /// it would refuse, and says goodbye.
    fn check_host(&self, host: &HostSpec, destinations: &[String]) -> Result<Reached, StompError> {
        let deadline = Instant::now() + self.settings.deadline;
        let connection = Connection::open(host, &self.params(host), deadline)?;
        let session = connection.session.clone();
        let start = Instant::now();
        connection.disconnect()?;
        let round_trip = start.elapsed();
        let product = Product::of(session.server.as_deref());
        let refusals = (destinations.iter().enumerate())
            .filter_map(|(index, destination)| Some((index, product.refusal(destination)?)))
            .collect();
        let server = session.server.as_deref().unwrap_or("server unnamed");
        Ok(Reached {
            protocol: format!("STOMP {} ({server})", session.version),
            round_trip,
            refusals,
        })
    }

    /// What CONNECT needs for `host`: credentials, vhost, TLS.
    pub(super) fn params<'a>(&'a self, host: &'a HostSpec) -> ConnectParams<'a> {
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
    pub(super) fn host_order(&self) -> Vec<HostSpec> {
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
/// between hosts on connection trouble.
pub struct Delivery<'p> {
    client: &'p Client,
    hosts: Vec<HostSpec>,
    clock: Clock,
    retry: Retry,
    /// The open connection and the index of its host.
    open: Option<(usize, Connection)>,
    /// Told how connecting goes.
    on_progress: Option<Box<dyn FnMut(Progress) + 'p>>,
}

impl<'p> Delivery<'p> {
    fn progress(&mut self, progress: Progress) {
        if let Some(signal) = &mut self.on_progress {
            signal(progress);
        }
    }

    /// Sends every message of a batch, receipted; `Err` says what became of
    /// each when not all were receipted.
    fn publish_batch(&mut self, messages: &[Message]) -> Result<(), PublishError> {
        self.clock.restart();
        let mut batch = Batch::new(messages, self.client.settings.signer.as_deref());
        let mut attempts = Vec::new();
        let mut permanent = false;
        let first = self.open.as_ref().map_or(0, |(host, _)| *host);
        let order: Vec<usize> = (0..self.hosts.len())
            .map(|offset| (first + offset) % self.hosts.len())
            .collect();
        let failover = &self.client.settings.url.failover;
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
        self.progress(Progress::Connecting);
        let spec = &self.hosts[host];
        let params = self.client.params(spec);
        let mut connection = Connection::open(spec, &params, self.clock.deadline())?;
        self.progress(Progress::Connected);
        batch.run(&mut connection, &mut self.clock)?;
        self.open = Some((host, connection));
        Ok(())
    }
}

impl Publish for Delivery<'_> {
    fn publish(&mut self, messages: &[Message]) -> Result<(), PublishError> {
        self.publish_batch(messages)
    }

    /// Ends the open connection with a DISCONNECT, not waiting for its
    /// receipt: every batch on it was answered, so the receipt would say
    /// nothing, and a hook would wait a round trip for it.
    fn close(mut self: Box<Self>) {
        if let Some((_, connection)) = self.open.take() {
            connection.leave();
        }
    }
}

impl Bus for Client {
    fn delivery<'p>(
        &'p self,
        patience: Patience,
        retry: Retry,
        progress: Option<Box<dyn FnMut(Progress) + 'p>>,
    ) -> Box<dyn Publish + 'p> {
        Box::new(Delivery {
            client: self,
            hosts: self.host_order(),
            clock: Clock::new(patience),
            retry,
            open: None,
            on_progress: progress,
        })
    }

    fn subscribe(
        &self,
        spec: &SubscribeSpec,
        bound: Duration,
    ) -> Result<Box<dyn Subscribe>, Vec<(String, BusError)>> {
        let subscriber = Subscriber::connect(self, spec, bound)?;
        Ok(Box::new(subscriber))
    }

    fn check(&self, destinations: &[String]) -> Vec<HostReport> {
        (self.settings.url.hosts.iter())
            .map(|host| HostReport {
                host: host.display(),
                result: self.check_host(host, destinations).map_err(BusError::from),
            })
            .collect()
    }

    fn deadline(&self) -> Duration {
        self.settings.deadline
    }

    fn signer(&self) -> Option<&Signer> {
        self.settings.signer.as_deref()
    }

    fn same_as(&self, other: &dyn Any) -> bool {
        (other.downcast_ref::<Client>()).is_some_and(|other| other.settings == self.settings)
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
