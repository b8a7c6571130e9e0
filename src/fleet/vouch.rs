//! Whom `hookbus fleet` believes (`[fleet] trust`): each listener signs its
//! presence documents and its answers with its own `[sign]` key (at the
//! publisher's one SEND chokepoint), and the operator lists each key for the
//! host names it may speak for. A document or answer is believed only when
//! it is signed by a key listed for the host it names; the others are
//! counted in [`Doubts`] and shown nowhere else.
//!
//! These are the listeners' keys, not the git servers' or the operator's:
//! they are kept apart from `[listen] trust` so that a config shared by the
//! operator and the listeners never makes one deploy host's key good for
//! commands or pushes to the others.

pub use crate::config::fleet::FleetConfig;
use crate::config::select::for_host;
use crate::sign::{PublicKey, Signature, Trust};
use crate::text::clip;
use anyhow::Result;
use std::collections::BTreeSet;

/// How long ago a live document or an answer may have been signed: a day,
/// as `[listen] max_age_s`'s default (live ones are seconds old).
const MAX_AGE_S: u64 = 86_400;
/// Claimed host names kept for the line that counts what was ignored.
const SHOWN_HOSTS: usize = 10;

/// `[fleet] trust`, parsed: the keys, and the hosts each speaks for.
#[derive(Debug, Clone)]
pub struct Vouching {
    /// Every key listed, to check signatures with.
    trust: Trust,
    /// (host glob, key id), one per line.
    speaks_for: Vec<(String, String)>,
}

impl Vouching {
    /// `[fleet] trust`, checked; `None` when it lists no key (nothing is
    /// verified).
    pub fn from_config(config: Option<&FleetConfig>) -> Result<Option<Vouching>> {
        let Some(config) = config.filter(|config| !config.trust.is_empty()) else {
            return Ok(None);
        };
        let mut keys: Vec<PublicKey> = Vec::new();
        let mut speaks_for = Vec::new();
        for (hosts, listed) in config.keys()? {
            for key in listed {
                speaks_for.push((hosts.clone(), key.id().to_string()));
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        Ok(Some(Vouching {
            trust: Trust::new(keys, MAX_AGE_S),
            speaks_for,
        }))
    }

    /// The same keys, for last words: the broker keeps them for a reader
    /// that may come days later, so their age is not held against them (a
    /// replayed one never hides what its host said later: see
    /// [`super::Known::take`]).
    pub fn kept(&self) -> Vouching {
        Vouching {
            trust: Trust::new(self.trust.keys().to_vec(), u64::MAX),
            speaks_for: self.speaks_for.clone(),
        }
    }

    /// The id of the key that vouches for a message naming `host`, received
    /// with `headers` and `body`; `Err` says why it is not believed.
    pub fn check(
        &self,
        host: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<String, String> {
        match self.trust.verify(headers, body, crate::sign::unix_now()) {
            Signature::Trusted(key) if self.speaks_for(&key, host) => Ok(key),
            Signature::Trusted(key) => Err(format!("key {key} is not listed for this host")),
            verdict => Err(verdict.refusal().unwrap_or_default()),
        }
    }

    /// Whether a message naming `host` is believed: `Ok(None)` without
    /// `[fleet] trust` (`vouching` is `None`: every message is), else the id
    /// of the key that vouches for it; `Err` says why it is not believed.
    pub fn believe(
        vouching: Option<&Vouching>,
        host: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Option<String>, String> {
        vouching.map(|v| v.check(host, headers, body)).transpose()
    }

    /// True when `key` (an id) is listed for a glob that takes `host`.
    pub fn speaks_for(&self, key: &str, host: &str) -> bool {
        (self.speaks_for.iter())
            .any(|(hosts, id)| id == key && for_host(std::slice::from_ref(hosts), host))
    }
}

/// What was not believed: how many messages, the host names they claimed
/// (the first few) and why (each reason once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doubts {
    /// Messages not believed.
    pub count: usize,
    /// The host names they claimed, clipped.
    pub hosts: BTreeSet<String>,
    /// Why, each reason once.
    pub reasons: BTreeSet<String>,
}

impl Doubts {
    /// Counts one message claiming `host`, not believed for `reason`.
    pub fn add(&mut self, host: &str, reason: String) {
        self.count += 1;
        if self.hosts.len() < SHOWN_HOSTS {
            self.hosts.insert(clip(host).replace(char::is_control, "?"));
        }
        if self.reasons.len() < SHOWN_HOSTS {
            self.reasons.insert(reason);
        }
    }

    /// Adds what `other` counted.
    pub fn extend(&mut self, other: Doubts) {
        self.count += other.count;
        let room = SHOWN_HOSTS.saturating_sub(self.hosts.len());
        self.hosts.extend(other.hosts.into_iter().take(room));
        let room = SHOWN_HOSTS.saturating_sub(self.reasons.len());
        self.reasons.extend(other.reasons.into_iter().take(room));
    }

    /// The line saying what was ignored (`what`: "presence documents",
    /// "answers"); none when everything was believed.
    pub fn line(&self, what: &str) -> Option<String> {
        let hosts: Vec<&str> = self.hosts.iter().map(String::as_str).collect();
        let reasons: Vec<&str> = self.reasons.iter().map(String::as_str).collect();
        (self.count > 0).then(|| {
            format!(
                "fleet: ignored {} {what} claiming to come from {}: not signed by a key [fleet] trust lists for that host ({})",
                self.count,
                hosts.join(", "),
                reasons.join("; ")
            )
        })
    }
}

/// The line a run ends with about `what` it heard ("presence documents on
/// D"): with `vouching`, what was not believed (none when all was); without,
/// that nothing was verified and how to change that.
pub fn closing_line(vouching: Option<&Vouching>, doubts: &Doubts, what: &str) -> Option<String> {
    match vouching {
        Some(_) => doubts.line(what),
        None => Some(format!("fleet: {what} are not verified: anyone who may publish there can speak for any host; list each listener's public key (its [sign] key_file's PATH.pub) under its host name in [fleet] trust")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::keys::{generate, Signer};

    #[test]
    fn a_key_vouches_only_for_the_hosts_it_is_listed_for() {
        let dir = tempfile::tempdir().unwrap();
        let signer = |name: &str| {
            generate(&dir.path().join(name), false).unwrap();
            Signer::load(&dir.path().join(name)).unwrap()
        };
        let (web, db, stranger) = (signer("web"), signer("db"), signer("stranger"));
        let text = format!(
            "[fleet.trust]\n\"web*\" = \"{}\"\ndb1 = [\"{}\"]\n",
            web.public().line(),
            db.public().line()
        );
        let config: crate::config::Config = crate::config::Config::parse(&text).unwrap();
        let vouching = Vouching::from_config(config.fleet.as_ref())
            .unwrap()
            .unwrap();
        let signed = |by: &Signer, at: u64| {
            let mut headers = vec![("destination".to_string(), "/topic/p".to_string())];
            by.sign(&mut headers, b"doc", at);
            headers
        };
        let now = crate::sign::unix_now();
        let (by_web, id) = (signed(&web, now), web.public().id().to_string());
        assert_eq!(vouching.check("web7", &by_web, b"doc"), Ok(id));
        assert!(vouching.check("db1", &by_web, b"doc").is_err());
        assert!(vouching.check("db1", &signed(&db, now), b"doc").is_ok());
        let stranger = vouching.check("web1", &signed(&stranger, now), b"doc");
        assert!(stranger.unwrap_err().starts_with("unknown key "));
        assert_eq!(vouching.check("web1", &[], b"doc"), Err("unsigned".into()));
        let old = signed(&web, now - 2 * MAX_AGE_S);
        assert!(vouching.check("web1", &old, b"doc").is_err());
        assert!(vouching.kept().check("web1", &old, b"doc").is_ok());
        assert!(Vouching::from_config(None).unwrap().is_none());

        let mut doubts = Doubts::default();
        assert_eq!(closing_line(Some(&vouching), &doubts, "answers"), None);
        let unverified = closing_line(None, &doubts, "answers").unwrap();
        assert!(unverified.contains("[fleet] trust"), "{unverified}");
        doubts.add("web1", "unsigned".into());
        doubts.add("web\n2", "unsigned".into());
        let line = doubts.line("answers").unwrap();
        let start = "fleet: ignored 2 answers claiming to come from web1, web?2: not signed";
        assert!(line.starts_with(start), "{line}");
        assert!(line.ends_with(" (unsigned)"), "{line}");
    }
}
