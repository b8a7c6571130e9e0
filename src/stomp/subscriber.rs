//! The receiving side: one long-lived connection that subscribes with
//! client-individual acknowledgements, optionally as a durable subscription,
//! and keeps STOMP heart-beats both ways — it sends its own and treats a broker
//! silent for two of the broker's intervals as a dead link, so a firewall that
//! drops idle connections without a word is noticed. With a group, it also
//! (or only) consumes the group's shared subscription ([`super::group`]), and
//! says of each message which subscription it came on.
//!
//! Reconnecting is the caller's business: every error here means "this
//! connection is over".

use super::connection::{Connection, StompError};
use super::frame::Frame;
use super::group::GroupSpec;
use super::publisher::Publisher;
pub use super::queue_type::{queue_type_conflict, QueueType, QueueTypeConflict};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bound on one write (a heart-beat, an ACK) to a broker that stopped reading.
const WRITE_BOUND: Duration = Duration::from_secs(10);
/// What the subscription is waited on as, in RECEIPT frames.
const SUBSCRIBED_RECEIPT: &str = "hookbus-subscribed";
/// The id of the subscription to [`SubscribeSpec::control`].
const CONTROL_ID: &str = "hookbus-control";

/// What to subscribe to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeSpec {
    /// Destinations, e.g. `/topic/git.commits`.
    pub destinations: Vec<String>,
    /// A durable subscription's name: the broker keeps messages for it while
    /// the subscriber is away (ActiveMQ `client-id` + `activemq.subscriptionName`;
    /// RabbitMQ `durable:true`, `auto-delete:false` and a stable `id`).
    pub durable: Option<String>,
    /// Heart-beat interval offered both ways; zero: none.
    pub heartbeat: Duration,
    /// The type of a durable subscription's queue on RabbitMQ.
    pub queue_type: QueueType,
    /// The group whose shared subscription to the same destinations this
    /// subscriber also (or only) takes its share of.
    pub group: Option<GroupSpec>,
    /// A topic of commands for every listener (`[listen] control_topic`):
    /// subscribed plainly, never durable nor shared with a group, so each
    /// listener up hears each command once.
    pub control: Option<String>,
}

impl SubscribeSpec {
    /// The subscription id of destination number `index`: stable for a durable
    /// subscription (RabbitMQ names its queue after it).
    fn id(&self, index: usize) -> String {
        match (&self.durable, index) {
            (Some(name), 0) => name.clone(),
            (Some(name), _) => format!("{name}.{index}"),
            (None, _) => format!("hookbus-listen-{index}"),
        }
    }

    /// Every SUBSCRIBE for the broker whose CONNECTED said `server`: this
    /// subscriber's own, then the group's; and the group's ids.
    fn subscribe_frames(
        &self,
        server: Option<&str>,
    ) -> Result<(Vec<Frame>, Vec<String>), StompError> {
        let rabbitmq = server.is_some_and(|server| server.starts_with("RabbitMQ"));
        let mut frames = Vec::new();
        if !self.group.as_ref().is_some_and(|group| group.only) {
            frames.extend(
                (self.destinations.iter().enumerate())
                    .map(|(index, destination)| self.subscribe_frame(index, destination, rabbitmq)),
            );
        }
        if let Some(control) = &self.control {
            frames.push(
                Frame::new("SUBSCRIBE")
                    .header("destination", control)
                    .header("id", CONTROL_ID)
                    .header("ack", "client-individual"),
            );
        }
        let mut shared = Vec::new();
        if let Some(group) = &self.group {
            for (index, destination) in self.destinations.iter().enumerate() {
                let mut frame = (group.subscribe_frame(server, index, destination))
                    .map_err(StompError::Unsupported)?;
                if rabbitmq {
                    // The group's shared queue survives a node as the own one does.
                    frame = frame.header("x-queue-type", self.queue_type.name());
                }
                frames.push(frame);
                shared.push(group.id(index));
            }
        }
        Ok((frames, shared))
    }

    /// The SUBSCRIBE frame for destination number `index`; `rabbitmq`: the
    /// broker said it is RabbitMQ, the only one that knows queue types.
    fn subscribe_frame(&self, index: usize, destination: &str, rabbitmq: bool) -> Frame {
        let id = self.id(index);
        let mut frame = Frame::new("SUBSCRIBE")
            .header("destination", destination)
            .header("id", &id)
            .header("ack", "client-individual");
        if self.durable.is_some() {
            frame = frame
                .header("activemq.subscriptionName", &id)
                .header("durable", "true")
                .header("auto-delete", "false");
            if rabbitmq {
                frame = frame.header("x-queue-type", self.queue_type.name());
            }
        }
        frame
    }
}

/// What acknowledges one message (the headers each STOMP version wants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckToken {
    ack: Option<String>,
    message_id: Option<String>,
    subscription: Option<String>,
}

/// One message received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The MESSAGE frame.
    pub frame: Frame,
    /// What acknowledges it.
    pub ack: AckToken,
    /// True when it came on the group's shared subscription.
    pub shared: bool,
    /// True when it came on the control topic's subscription.
    pub control: bool,
}

/// A subscribed connection.
pub struct Subscriber {
    connection: Connection,
    host: String,
    /// How often we must send something (already halved for slack).
    send_every: Option<Duration>,
    /// How long the broker may stay silent before the link counts as dead.
    silent_limit: Option<Duration>,
    last_sent: Instant,
    last_heard: Instant,
    heard_bytes: u64,
    early: VecDeque<Delivery>,
    /// The ids of the group's subscriptions.
    shared: Vec<String>,
}

impl Subscriber {
    /// Tries each broker host once (in the URL's order), logs in with
    /// heart-beats offered, subscribes and waits for the broker to receipt the
    /// subscription, each host within `bound`. Returns every host's failure
    /// when none worked.
    pub fn connect(
        publisher: &Publisher,
        spec: &SubscribeSpec,
        bound: Duration,
    ) -> Result<Subscriber, Vec<(String, StompError)>> {
        let mut failures = Vec::new();
        for host in publisher.host_order() {
            match Subscriber::connect_to(publisher, &host, spec, Instant::now() + bound) {
                Ok(subscriber) => return Ok(subscriber),
                Err(error) => failures.push((host.display(), error)),
            }
        }
        Err(failures)
    }

    fn connect_to(
        publisher: &Publisher,
        host: &super::url::HostSpec,
        spec: &SubscribeSpec,
        deadline: Instant,
    ) -> Result<Subscriber, StompError> {
        let beat = spec.heartbeat.as_millis().to_string();
        let heart_beat = format!("{beat},{beat}");
        let mut extra = vec![("heart-beat", heart_beat.as_str())];
        if let Some(name) = &spec.durable {
            extra.push(("client-id", name.as_str()));
        }
        let mut connection =
            Connection::open_with(host, &publisher.params(host), &extra, deadline)?;
        let (send_every, silent_limit) = negotiate(
            spec.heartbeat,
            connection.session.heart_beat.as_deref().unwrap_or("0,0"),
        );
        let (frames, shared) = spec.subscribe_frames(connection.session.server.as_deref())?;
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
                "MESSAGE" => early.push_back(delivery(frame, &shared)),
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
            last_sent: now,
            last_heard: now,
            early,
            shared,
        })
    }

    /// The host this subscriber is connected to, as it may be shown.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The broker's `heart-beat` answer when it will send none, so that a
    /// silent link cannot be told from a quiet one (`0,0`, or `none` when
    /// it said nothing); `None` when it sends heart-beats.
    pub fn heart_beats_refused(&self) -> Option<&str> {
        match self.silent_limit {
            Some(_) => None,
            None => Some(
                self.connection
                    .session
                    .heart_beat
                    .as_deref()
                    .unwrap_or("none"),
            ),
        }
    }

    /// The next message, or `None` when none came within `wait`. Sends
    /// heart-beats as they fall due; fails when the broker has been silent too
    /// long, closed the link or sent an ERROR.
    pub fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, StompError> {
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
                        "MESSAGE" => return Ok(Some(delivery(frame, &self.shared))),
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

    /// Acknowledges one message.
    pub fn ack(&mut self, token: &AckToken) -> Result<(), StompError> {
        let mut frame = Frame::new("ACK");
        for (key, value) in [
            ("id", &token.ack),
            ("message-id", &token.message_id),
            ("subscription", &token.subscription),
        ] {
            if let Some(value) = value {
                frame = frame.header(key, value);
            }
        }
        self.connection.queue(&frame);
        self.write()
    }

    /// Says goodbye (receipted, bounded by `bound`).
    pub fn disconnect(mut self, bound: Duration) -> Result<(), StompError> {
        self.connection.set_deadline(Instant::now() + bound);
        self.connection.disconnect()
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

/// A MESSAGE frame as received on one of our subscriptions; `shared` are
/// the group's subscription ids.
fn delivery(frame: Frame, shared: &[String]) -> Delivery {
    let get = |key: &str| frame.get(key).map(str::to_string);
    let ack = AckToken {
        ack: get("ack"),
        message_id: get("message-id"),
        subscription: get("subscription"),
    };
    let shared = (ack.subscription.as_ref()).is_some_and(|id| shared.contains(id));
    let control = ack.subscription.as_deref() == Some(CONTROL_ID);
    Delivery {
        frame,
        ack,
        shared,
        control,
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
        let second = spec.subscribe_frame(1, "/topic/b", false);
        assert_eq!(second.get("id"), Some("web1.1"));
        assert_eq!(second.get("activemq.subscriptionName"), Some("web1.1"));
        assert_eq!(second.get("durable"), Some("true"));
        assert_eq!(second.get("auto-delete"), Some("false"));
        assert_eq!(second.get("ack"), Some("client-individual"));
        // Only RabbitMQ is told the queue type.
        assert_eq!(second.get("x-queue-type"), None);
        let rabbit = spec.subscribe_frame(0, "/topic/a", true);
        assert_eq!(rabbit.get("x-queue-type"), Some("quorum"));
        let plain = SubscribeSpec {
            durable: None,
            ..spec
        };
        let plain = plain.subscribe_frame(0, "/topic/a", true);
        assert_eq!(plain.get("durable"), None);
        assert_eq!(plain.get("x-queue-type"), None);
    }
}
