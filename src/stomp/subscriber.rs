//! The receiving side: one long-lived connection that subscribes with
//! client-individual acknowledgements, optionally as a durable subscription,
//! and keeps STOMP heart-beats both ways — it sends its own and treats a broker
//! silent for two of the broker's intervals as a dead link, so a firewall that
//! drops idle connections without a word is noticed. With a group, it also
//! (or only) consumes the group's shared subscription ([`super::group`]), and
//! says of each message which subscription it came on.
//!
//! Reconnecting is the caller's business: every error here means "this
//! connection is over". [`Subscriber`] is STOMP's [`Subscribe`].

use super::client::Client;
use super::connection::{Connection, StompError};
use super::dial::KEEPALIVE_NOTICES_AFTER;
use super::frame::Frame;
use super::group;
use super::product::Product;
use super::queue_type::standoff;
use super::url::HostSpec;
use crate::bus::{AckToken, BusError, Incoming, Subscribe, SubscribeSpec};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bound on one write (a heart-beat, an ACK) to a broker that stopped reading.
const WRITE_BOUND: Duration = Duration::from_secs(10);
/// What the subscription is waited on as, in RECEIPT frames.
const SUBSCRIBED_RECEIPT: &str = "hookbus-subscribed";
/// The id of the subscription to the control topic ([`SubscribeSpec::control`]).
const CONTROL_ID: &str = "hookbus-control";

/// The subscription id of destination number `index`: stable for a durable
/// subscription (RabbitMQ names its queue after it).
fn subscription_id(spec: &SubscribeSpec, index: usize) -> String {
    match (&spec.durable, index) {
        (Some(name), 0) => name.clone(),
        (Some(name), _) => format!("{name}.{index}"),
        (None, _) => format!("hookbus-listen-{index}"),
    }
}

/// Every SUBSCRIBE for `product`: the subscriber's own, the control
/// topic's, then the group's; and the group's ids. The group's shared queue is typed as the own one
/// is, so it survives a node as the own one does.
fn subscribe_frames(
    spec: &SubscribeSpec,
    product: Product,
    server: Option<&str>,
) -> Result<(Vec<Frame>, Vec<String>), StompError> {
    let mut frames = Vec::new();
    if !spec.group.as_ref().is_some_and(|group| group.only) {
        frames.extend(
            (spec.destinations.iter().enumerate())
                .map(|(index, destination)| own_frame(spec, index, destination, product)),
        );
    }
    if let Some(control) = &spec.control {
        frames.push(
            Frame::new("SUBSCRIBE")
                .header("destination", control)
                .header("id", CONTROL_ID)
                .header("ack", "client-individual"),
        );
    }
    let mut shared = Vec::new();
    if let Some(group) = &spec.group {
        for (index, destination) in spec.destinations.iter().enumerate() {
            let frame = (group::subscribe_frame(group, product, server, index, destination))
                .map_err(StompError::Unsupported)?;
            frames.push(product.with_queue_type(frame, spec.queue_type));
            shared.push(group::id(group, index));
        }
    }
    Ok((frames, shared))
}

/// The subscriber's own SUBSCRIBE frame for destination number `index`. A
/// durable one carries both brokers' words (with the CONNECT `client-id`:
/// ActiveMQ's `activemq.subscriptionName`; RabbitMQ's `durable:true`,
/// `auto-delete:false` and a stable `id`).
fn own_frame(spec: &SubscribeSpec, index: usize, destination: &str, product: Product) -> Frame {
    let id = subscription_id(spec, index);
    let frame = Frame::new("SUBSCRIBE")
        .header("destination", destination)
        .header("id", &id)
        .header("ack", "client-individual");
    match spec.durable {
        Some(_) => product.with_queue_type(
            frame
                .header("activemq.subscriptionName", &id)
                .header("durable", "true")
                .header("auto-delete", "false"),
            spec.queue_type,
        ),
        None => frame,
    }
}

/// A subscribed connection.
pub struct Subscriber {
    connection: Connection,
    host: String,
    /// How often we must send something (already halved for slack).
    send_every: Option<Duration>,
    /// How long the broker may stay silent before the link counts as dead.
    silent_limit: Option<Duration>,
    /// The heart-beat interval we offered.
    asked_beats: Duration,
    last_sent: Instant,
    last_heard: Instant,
    heard_bytes: u64,
    early: VecDeque<Incoming>,
    /// The ids of the group's subscriptions.
    shared: Vec<String>,
}

impl Subscriber {
    /// Tries each broker host once (in the URL's order), logs in with
    /// heart-beats offered, subscribes and waits for the broker to receipt the
    /// subscription, each host within `bound`. Returns every host's failure
    /// when none worked.
    pub fn connect(
        client: &Client,
        spec: &SubscribeSpec,
        bound: Duration,
    ) -> Result<Subscriber, Vec<(String, BusError)>> {
        let mut failures = Vec::new();
        for host in client.host_order() {
            match Subscriber::connect_to(client, &host, spec, Instant::now() + bound) {
                Ok(subscriber) => return Ok(subscriber),
                Err(error) => {
                    let error = match standoff(&error, spec.queue_type) {
                        Some(standoff) => standoff,
                        None => BusError::from(error),
                    };
                    failures.push((host.display(), error))
                }
            }
        }
        Err(failures)
    }

    fn connect_to(
        client: &Client,
        host: &HostSpec,
        spec: &SubscribeSpec,
        deadline: Instant,
    ) -> Result<Subscriber, StompError> {
        let beat = spec.heartbeat.as_millis().to_string();
        let heart_beat = format!("{beat},{beat}");
        let mut extra = vec![("heart-beat", heart_beat.as_str())];
        if let Some(name) = &spec.durable {
            extra.push(("client-id", name.as_str()));
        }
        let mut connection = Connection::open_with(host, &client.params(host), &extra, deadline)?;
        let (send_every, silent_limit) = negotiate(
            spec.heartbeat,
            connection.session.heart_beat.as_deref().unwrap_or("0,0"),
        );
        let server = connection.session.server.as_deref();
        let (frames, shared) = subscribe_frames(spec, Product::of(server), server)?;
        let last = frames.len() - 1;
        for (index, mut frame) in frames.into_iter().enumerate() {
            if index == last {
                frame = frame.header("receipt", SUBSCRIBED_RECEIPT);
            }
            connection.queue(&frame);
        }
        connection.flush()?;
        let mut early = VecDeque::new();
        loop {
            let frame = connection.read_frame("waiting for the subscription's RECEIPT")?;
            match frame.command.as_str() {
                "RECEIPT" if frame.get("receipt-id") == Some(SUBSCRIBED_RECEIPT) => break,
                "MESSAGE" => early.push_back(received(frame, &shared)),
                "ERROR" => return Err(StompError::Broker(frame.error_text())),
                _ => {}
            }
        }
        let now = Instant::now();
        Ok(Subscriber {
            heard_bytes: connection.bytes_received(),
            connection,
            host: host.display(),
            send_every,
            silent_limit,
            asked_beats: spec.heartbeat,
            last_sent: now,
            last_heard: now,
            early,
            shared,
        })
    }

    /// The next message, or `None` when none came within `wait`. Sends
    /// heart-beats as they fall due; fails when the broker has been silent too
    /// long, closed the link or sent an ERROR.
    fn next_message(&mut self, wait: Duration) -> Result<Option<Incoming>, StompError> {
        if let Some(delivery) = self.early.pop_front() {
            return Ok(Some(delivery));
        }
        let until = Instant::now() + wait;
        loop {
            self.beat_if_due()?;
            let now = Instant::now();
            let mut read_until = until;
            if let Some(every) = self.send_every {
                read_until = read_until.min(self.last_sent + every);
            }
            self.connection
                .set_deadline(read_until.max(now + Duration::from_millis(1)));
            match self.connection.read_frame("waiting for messages") {
                Ok(frame) => {
                    self.heard();
                    match frame.command.as_str() {
                        "MESSAGE" => return Ok(Some(received(frame, &self.shared))),
                        "ERROR" => return Err(StompError::Broker(frame.error_text())),
                        _ => {}
                    }
                }
                Err(StompError::Timeout(_)) => {
                    if self.connection.bytes_received() != self.heard_bytes {
                        self.heard();
                    }
                    if let Some(limit) = self.silent_limit {
                        if self.last_heard.elapsed() > limit {
                            return Err(StompError::Timeout(
                                "for heart-beats: the broker went silent",
                            ));
                        }
                    }
                    if Instant::now() >= until {
                        return Ok(None);
                    }
                }
                Err(other) => return Err(other),
            }
        }
    }

    fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.heard_bytes = self.connection.bytes_received();
    }

    fn beat_if_due(&mut self) -> Result<(), StompError> {
        match self.send_every {
            Some(every) if self.last_sent.elapsed() >= every => {
                self.connection.queue_heartbeat();
                self.write()
            }
            _ => Ok(()),
        }
    }

    fn write(&mut self) -> Result<(), StompError> {
        self.connection.set_deadline(Instant::now() + WRITE_BOUND);
        self.connection.flush()?;
        self.last_sent = Instant::now();
        Ok(())
    }
}

impl Subscribe for Subscriber {
    fn host(&self) -> &str {
        &self.host
    }

    fn next(&mut self, wait: Duration) -> Result<Option<Incoming>, BusError> {
        Ok(self.next_message(wait)?)
    }

    /// ACK with the headers each STOMP version wants (1.2 `id`, 1.1
    /// `message-id` and `subscription`), as the MESSAGE gave them.
    fn ack(&mut self, token: &AckToken) -> Result<(), BusError> {
        let mut frame = Frame::new("ACK");
        for (key, value) in token.fields() {
            frame = frame.header(key, value);
        }
        self.connection.queue(&frame);
        Ok(self.write()?)
    }

    /// The broker's `heart-beat` answer when it will send none, so that a
    /// silent link cannot be told from a quiet one.
    fn unwatched(&self) -> Option<String> {
        if self.silent_limit.is_some() || self.asked_beats.is_zero() {
            return None;
        }
        let answer = self.connection.session.heart_beat.as_deref();
        Some(format!(
            "heart-beats are off: {} answered heart-beat {} to our {} ms; a silent link is noticed only by TCP keepalive, after about {} s",
            self.host,
            answer.unwrap_or("none"),
            self.asked_beats.as_millis(),
            KEEPALIVE_NOTICES_AFTER.as_secs()
        ))
    }

    /// DISCONNECT, receipted, within `bound`; a failure loses nothing.
    fn close(mut self: Box<Self>, bound: Duration) {
        self.connection.set_deadline(Instant::now() + bound);
        let _ = self.connection.disconnect();
    }
}

/// A MESSAGE frame as received on one of our subscriptions; `shared` are
/// the group's subscription ids.
fn received(frame: Frame, shared: &[String]) -> Incoming {
    // The MESSAGE header each ACK header takes its value from.
    let fields = [
        ("id", "ack"),
        ("message-id", "message-id"),
        ("subscription", "subscription"),
    ];
    let ack = (fields.into_iter())
        .filter_map(|(key, from)| Some((key, frame.get(from)?.to_string())))
        .collect();
    let subscription = frame.get("subscription");
    let control = subscription == Some(CONTROL_ID);
    let shared = subscription.is_some_and(|id| shared.iter().any(|ours| ours == id));
    Incoming {
        ack: AckToken::new(ack),
        shared,
        control,
        headers: frame.headers,
        body: frame.body,
        dropped_body: frame.dropped_body,
    }
}

/// From our offer (`ours` both ways) and the broker's CONNECTED `heart-beat:sx,sy`:
/// how often we send (half the agreed interval, for slack) and how long the
/// broker may be silent (two of its intervals). STOMP 1.2 §Heart-beating.
fn negotiate(ours: Duration, theirs: &str) -> (Option<Duration>, Option<Duration>) {
    let mut parts = theirs
        .split(',')
        .map(|part| part.trim().parse::<u64>().unwrap_or(0));
    let (server_sends, server_wants) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let ours = ours.as_millis() as u64;
    let agreed = |a: u64, b: u64| (a > 0 && b > 0).then(|| Duration::from_millis(a.max(b)));
    (
        agreed(ours, server_wants).map(|every| every / 2),
        agreed(ours, server_sends).map(|every| every * 2),
    )
}

#[cfg(test)]
mod group_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::QueueType;

    #[test]
    fn heart_beats_are_negotiated_as_stomp_says() {
        let second = Duration::from_secs(1);
        assert_eq!(
            negotiate(second, "2000,500"),
            (
                Some(Duration::from_millis(500)),
                Some(Duration::from_secs(4))
            )
        );
        assert_eq!(negotiate(second, "0,0"), (None, None));
        assert_eq!(negotiate(Duration::ZERO, "1000,1000"), (None, None));
        assert_eq!(negotiate(second, "junk"), (None, None));
    }

    #[test]
    fn durable_subscriptions_have_stable_ids_and_both_brokers_headers() {
        let spec = SubscribeSpec {
            destinations: vec!["/topic/a".into(), "/topic/b".into()],
            durable: Some("web1".into()),
            heartbeat: Duration::from_secs(30),
            queue_type: QueueType::Quorum,
            group: None,
            control: None,
        };
        let second = own_frame(&spec, 1, "/topic/b", Product::ActiveMq);
        assert_eq!(second.get("id"), Some("web1.1"));
        assert_eq!(second.get("activemq.subscriptionName"), Some("web1.1"));
        assert_eq!(second.get("durable"), Some("true"));
        assert_eq!(second.get("auto-delete"), Some("false"));
        assert_eq!(second.get("ack"), Some("client-individual"));
        // Only RabbitMQ is told the queue type.
        assert_eq!(second.get("x-queue-type"), None);
        let rabbit = own_frame(&spec, 0, "/topic/a", Product::RabbitMq);
        assert_eq!(rabbit.get("x-queue-type"), Some("quorum"));
        let plain = SubscribeSpec {
            durable: None,
            ..spec
        };
        let plain = own_frame(&plain, 0, "/topic/a", Product::RabbitMq);
        assert_eq!(plain.get("durable"), None);
        assert_eq!(plain.get("x-queue-type"), None);
    }
}
