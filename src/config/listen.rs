//! The `[listen]` table of hookbus.toml: what a deploy host subscribes to and
//! how `hookbus listen` runs. The daemon's section, defined here so that
//! [`Config`](super::Config) holds it parsed (a typo is an error with its
//! line, for every command) while the daemon only reads it.

use super::mirror::MirrorConfig;
use crate::bus::QueueType;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// `[listen]`: the subscription and the daemon's own settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Destinations to subscribe to, e.g. `/topic/git.commits`.
    pub subscribe: Vec<String>,
    /// Name of a durable subscription, unique per host: the broker keeps what
    /// is published while the host is away.
    pub durable: Option<String>,
    /// On RabbitMQ, the type of the durable subscription's queue: `quorum`
    /// (replicated, survives a node's loss) or `classic` (on one node).
    #[serde(default)]
    pub queue_type: QueueType,
    /// STOMP heart-beat interval asked for both ways; 0 turns heart-beats off.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Where one JSON event per piece of work is published; none: only logged.
    pub report: Option<String>,
    /// The daemon's own files (the outbox of reports).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Mirrors worked on at the same time.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Every mirror is fetched at start and then every this many seconds,
    /// messages or not; 0: only at start.
    #[serde(default = "default_poll_s")]
    pub poll_s: u64,
    /// Bound on one git command; it is killed and reported after that.
    #[serde(default = "default_git_timeout_s")]
    pub git_timeout_s: u64,
    /// This host's name in reports and presence; default: the system's host name.
    pub host: Option<String>,
    /// `IP:PORT` of an HTTP listener serving `/metrics` (Prometheus) and
    /// `/healthz`; none: no listener.
    pub metrics: Option<String>,
    /// Where this host's presence (a JSON document with its mirrors' state
    /// and commit) is published every `presence_s`; none: not published.
    pub presence: Option<String>,
    /// Seconds between two presence documents.
    #[serde(default = "default_presence_s")]
    pub presence_s: u64,
    /// The group (name or number) whose members may use the control socket
    /// `state_dir/control.sock` (mode 0660) with `hookbus ctl`; none: the
    /// daemon's own group. Read at start only.
    pub control_group: Option<String>,
    /// How long the actions started for a message (by `hookbus-id`) are
    /// remembered, across restarts, so a redelivery does not start them again.
    #[serde(default = "default_remember_hours")]
    pub remember_hours: u64,
    /// Action chains run at the same time (threads of their own, apart from
    /// the mirrors' `workers`).
    #[serde(default = "default_action_workers")]
    pub action_workers: usize,
    /// The group of listeners (one name on every member) that share one
    /// subscription for actions, so each message's actions run on one member;
    /// mirrors stay per host.
    pub group: Option<String>,
    /// Public key lines (`hookbus keygen`'s PATH.pub) whose signatures are trusted.
    #[serde(default)]
    pub trust: Vec<String>,
    /// What a message without a trusted signature may do: `none` (all),
    /// `actions` (mirrors fetch, nothing runs), `all` (ignored).
    #[serde(default)]
    pub require_signature: crate::sign::Require,
    /// Oldest signature accepted, in seconds since it was signed.
    #[serde(default = "crate::sign::verify::default_max_age_s")]
    pub max_age_s: u64,
    /// The topic `hookbus fleet freeze|unfreeze|rollback` publishes signed
    /// commands on; none: the listener takes no commands over the bus.
    pub control_topic: Option<String>,
}

/// Checks a name made only of ASCII letters, digits and the characters `also`.
pub fn check_name(key: &str, name: Option<&str>, also: &str) -> Result<()> {
    let good = |name: &str| {
        !name.is_empty() && (name.chars()).all(|c| c.is_ascii_alphanumeric() || also.contains(c))
    };
    match name {
        Some(name) if !good(name) => bail!("{key} {name:?}: use letters, digits and {also:?} only"),
        _ => Ok(()),
    }
}

fn default_presence_s() -> u64 {
    60
}

fn default_remember_hours() -> u64 {
    72
}

fn default_action_workers() -> usize {
    4
}

fn default_heartbeat_ms() -> u64 {
    10_000
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/hookbus/listen")
}

fn default_workers() -> usize {
    4
}

fn default_poll_s() -> u64 {
    300
}

fn default_git_timeout_s() -> u64 {
    120
}

impl ListenConfig {
    /// The heart-beat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// The poll interval, if polling is on.
    pub fn poll_every(&self) -> Option<Duration> {
        (self.poll_s > 0).then(|| Duration::from_secs(self.poll_s))
    }

    /// The bound on one git command.
    pub fn git_timeout(&self) -> Duration {
        Duration::from_secs(self.git_timeout_s)
    }

    fn validate(&self) -> Result<()> {
        if self.subscribe.is_empty() {
            bail!("subscribe: name at least one destination, e.g. [\"/topic/git.commits\"]");
        }
        for destination in self
            .subscribe
            .iter()
            .chain(&self.report)
            .chain(&self.presence)
            .chain(&self.control_topic)
        {
            if destination.trim().is_empty() || destination.chars().any(char::is_control) {
                bail!("destination {destination:?} must be non-empty and on one line");
            }
        }
        check_name("durable", self.durable.as_deref(), "-_.")?;
        check_control_topic(self)?;
        // A dot would split ActiveMQ's Consumer.GROUP.VirtualTopic.X wrongly.
        check_name("group", self.group.as_deref(), "-_")?;
        let queue = (self.subscribe.iter()).find(|d| !d.starts_with("/topic/"));
        if let (Some(_), Some(queue)) = (&self.group, queue) {
            bail!("group shares topics only: subscribe to /topic/NAME, not {queue:?}");
        }
        if self.heartbeat_ms != 0 && self.heartbeat_ms < 100 {
            bail!(
                "heartbeat_ms {} is too short: 0 (off) or at least 100",
                self.heartbeat_ms
            );
        }
        if self.workers == 0 {
            bail!("workers must be at least 1");
        }
        if self.git_timeout_s == 0 {
            bail!("git_timeout_s must be at least 1");
        }
        if self.presence_s == 0 {
            bail!("presence_s must be at least 1");
        }
        if let Some(address) = &self.metrics {
            address.parse::<std::net::SocketAddr>().with_context(|| {
                format!("metrics {address:?}: write IP:PORT, e.g. \"127.0.0.1:9750\"")
            })?;
        }
        if self.action_workers == 0 {
            bail!("action_workers must be at least 1");
        }
        if self.remember_hours == 0 {
            bail!("remember_hours must be at least 1: a redelivery must not start an action again");
        }
        if let Some(host) = &self.host {
            if host.is_empty() || host.chars().any(|c| c.is_control() || c.is_whitespace()) {
                bail!("host {host:?}: one word, e.g. the machine's name");
            }
        }
        Ok(())
    }
}

/// Checks `[listen]`, and that no two of one host's mirrors share a name, a
/// clone or a target (they would race); each mirror is checked by `select`.
pub fn validate(listen: Option<&ListenConfig>, mirrors: &[MirrorConfig]) -> Result<()> {
    if let Some(listen) = listen {
        listen.validate().context("[listen]")?;
    }
    let mut paths = HashSet::new();
    let mut names = HashSet::new();
    for (index, mirror) in mirrors.iter().enumerate() {
        let context = || format!("[[mirror]] number {} (repo {:?})", index + 1, mirror.repo);
        // Each mirror was checked as written (`select`); here only what
        // mirrors on one host must not share.
        // `hookbus ctl` takes a name or a path: neither may mean two mirrors.
        let path = mirror.path.display().to_string();
        let also_path = (mirror.name() != path).then_some(path);
        for name in std::iter::once(mirror.name()).chain(also_path) {
            if !names.insert(name.clone()) {
                bail!(
                    "{}: the name {name:?} is another mirror's name or path",
                    context()
                );
            }
        }
        let links = mirror.links.iter().map(|link| &link.local);
        for place in std::iter::once(&mirror.path)
            .chain(&mirror.target)
            .chain(links)
        {
            if !paths.insert(place.clone()) {
                bail!(
                    "{}: {} is used by another mirror",
                    context(),
                    place.display()
                );
            }
        }
    }
    Ok(())
}

/// Checks `[listen] control_topic`: a topic (every listener hears each
/// command), none of the subscribed destinations, and ids remembered at least
/// as long as a signature stays valid (else a replay could pass).
fn check_control_topic(listen: &ListenConfig) -> Result<()> {
    let Some(topic) = &listen.control_topic else {
        return Ok(());
    };
    if !topic.starts_with("/topic/") {
        bail!(
            "control_topic {topic:?}: commands go to every listener, so it must be a /topic/NAME"
        );
    }
    if listen.subscribe.contains(topic) {
        bail!("control_topic {topic:?} is also in subscribe: give commands a topic of their own");
    }
    if listen.max_age_s > listen.remember_hours * 3600 {
        bail!(
            "max_age_s {} is longer than remember_hours ({} s): a command's id must be remembered as long as its signature is valid, or a replay would be taken",
            listen.max_age_s,
            listen.remember_hours * 3600
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::mirror::parse_checked as mirror;

    #[test]
    fn mirrors_may_not_share_places() {
        let a = mirror("repo = 'a'\npath = '/m/a'").unwrap();
        assert!(validate(None, &[a.clone(), a]).is_err());
        let b = mirror("repo = 'b'\npath = '/m/b'\nname = 'web'").unwrap();
        let c = mirror("repo = 'c'\npath = '/m/c'\nname = '/m/b'").unwrap();
        assert_eq!(b.name(), "web");
        assert!(
            validate(None, &[b.clone(), c]).is_err(),
            "a name that is another's path"
        );
        let d = mirror("repo = 'd'\npath = '/m/d'\nname = 'web'").unwrap();
        assert!(validate(None, &[b, d]).is_err(), "one name twice");
    }

    #[test]
    fn the_control_topic_is_a_topic_of_its_own_whose_ids_outlive_their_signatures() {
        let listen = |extra: &str| -> ListenConfig {
            toml::from_str(&format!("subscribe = ['/topic/c']\n{extra}")).unwrap()
        };
        assert!(check_control_topic(&listen("")).is_ok());
        assert!(check_control_topic(&listen("control_topic = '/topic/fleet'")).is_ok());
        for bad in [
            "control_topic = '/queue/fleet'",
            "control_topic = '/topic/c'",
            "control_topic = '/topic/fleet'\nmax_age_s = 7200\nremember_hours = 1",
        ] {
            assert!(check_control_topic(&listen(bad)).is_err(), "{bad}");
        }
    }
}
