//! The listener's side: which keys it trusts, the verdict on one received
//! message, and what `[listen] require_signature` lets an unverified message
//! do.

use super::{canonical, PublicKey, SIGNATURE_HEADER, SIGNED_AT_HEADER, VERSION};
use crate::message::first_header;
use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

/// `[listen] max_age_s` unless set: one day.
pub fn default_max_age_s() -> u64 {
    86_400
}

/// How far ahead of this host's clock a time stamp may be (clock skew).
const FUTURE_SKEW_S: u64 = 300;

/// The keys a listener trusts (`[listen] trust`) and how old a signed
/// message may be (`[listen] max_age_s`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    keys: Vec<PublicKey>,
    max_age_s: u64,
}

/// The verdict on a received message's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// Signed, recently enough, by the trusted key with this id.
    Trusted(String),
    /// No `hookbus-signature` header.
    Unsigned,
    /// Signed by a key this host does not trust (its id as the message says).
    UnknownKey(String),
    /// A signature that does not hold (what is wrong with it).
    Bad(String),
    /// Signed by a trusted key, longer ago than `max_age_s` allows.
    TooOld {
        /// The signing key's id.
        key: String,
        /// Seconds since it was signed.
        age_s: u64,
    },
}

impl Signature {
    /// Why the message is not trusted, one line; `None` when it is.
    pub fn refusal(&self) -> Option<String> {
        match self {
            Signature::Trusted(_) => None,
            Signature::Unsigned => Some("unsigned".into()),
            Signature::UnknownKey(id) => Some(format!("unknown key {id}")),
            Signature::Bad(why) => Some(format!("bad signature: {why}")),
            Signature::TooOld { key, age_s } => {
                Some(format!("too old: signed {age_s} s ago by key {key}"))
            }
        }
    }
}

impl Trust {
    /// Trusts `keys`, for messages signed at most `max_age_s` ago.
    pub fn new(keys: Vec<PublicKey>, max_age_s: u64) -> Trust {
        Trust { keys, max_age_s }
    }

    /// Parses `[listen] trust` lines.
    fn parse(lines: &[String], max_age_s: u64) -> Result<Trust> {
        let keys = (lines.iter().enumerate())
            .map(|(index, line)| {
                PublicKey::parse(line).with_context(|| format!("[listen] trust[{index}]"))
            })
            .collect::<Result<_>>()?;
        Ok(Trust::new(keys, max_age_s))
    }

    /// `[listen] trust`, `require_signature` and `max_age_s`, checked:
    /// requiring signatures with no key trusted would refuse everything.
    pub fn from_listen(lines: &[String], require: Require, max_age_s: u64) -> Result<Trust> {
        if require != Require::None && lines.is_empty() {
            anyhow::bail!(
                "[listen] require_signature = \"{}\" with no [listen] trust key refuses every message: add the signers' public key lines (hookbus keygen PATH writes PATH.pub)",
                require.name()
            );
        }
        if max_age_s == 0 {
            anyhow::bail!("[listen] max_age_s must be at least 1 (seconds; default 86400)");
        }
        Trust::parse(lines, max_age_s)
    }

    /// How old a signature may be, in seconds.
    pub fn max_age_s(&self) -> u64 {
        self.max_age_s
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The verdict on a frame's headers (as received, first occurrence of
    /// each) and body, at `now` (Unix seconds). The time stamp is looked at
    /// only once the signature holds, so it is the signer's.
    pub fn verify(&self, headers: &[(String, String)], body: &[u8], now: u64) -> Signature {
        let Some(value) = first_header(headers, SIGNATURE_HEADER) else {
            return Signature::Unsigned;
        };
        let words: Vec<&str> = value.split_whitespace().collect();
        let [version, id, encoded] = words.as_slice() else {
            return Signature::Bad("not `v1 KEY-ID SIGNATURE`".into());
        };
        if *version != VERSION {
            return Signature::Bad(format!("version {:?} is not {VERSION}", clip(version)));
        }
        let Some(key) = self.keys.iter().find(|key| key.id() == *id) else {
            return Signature::UnknownKey(clip(id));
        };
        let Ok(signature) = STANDARD.decode(encoded) else {
            return Signature::Bad("not base64".into());
        };
        if !key.verifies(&canonical(headers, body), &signature) {
            return Signature::Bad(format!("does not match the message for key {id}"));
        }
        let Some(signed_at) =
            first_header(headers, SIGNED_AT_HEADER).and_then(|at| at.parse::<u64>().ok())
        else {
            return Signature::Bad(format!("no {SIGNED_AT_HEADER} time stamp"));
        };
        if signed_at > now + FUTURE_SKEW_S {
            return Signature::Bad(format!("time stamp {} s in the future", signed_at - now));
        }
        let age_s = now.saturating_sub(signed_at);
        if age_s > self.max_age_s {
            return Signature::TooOld {
                key: key.id().to_string(),
                age_s,
            };
        }
        Signature::Trusted(key.id().to_string())
    }
}

/// A word from a message, cut short for a log line.
fn clip(word: &str) -> String {
    word.chars()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `[listen] require_signature`: what a message without a trusted signature
/// may still do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// Everything: signatures are not checked for what runs.
    #[default]
    None,
    /// Mirrors may fetch (only ever from their configured URL); no action,
    /// no on-change step runs.
    Actions,
    /// Nothing: the message is ignored.
    All,
}

impl Require {
    /// The gate before anything a message makes run (actions, on-change
    /// steps, control commands): `Err` holds the refusal's reason.
    pub fn may_act(self, signature: &Signature) -> Result<(), String> {
        match (self, signature.refusal()) {
            (Require::None, _) | (_, None) => Ok(()),
            (_, Some(reason)) => Err(reason),
        }
    }

    /// The gate before a message makes mirrors fetch.
    pub fn may_fetch(self, signature: &Signature) -> Result<(), String> {
        match self {
            Require::All => self.may_act(signature),
            Require::None | Require::Actions => Ok(()),
        }
    }

    /// The setting's name, as the config spells it.
    pub fn name(self) -> &'static str {
        match self {
            Require::None => "none",
            Require::Actions => "actions",
            Require::All => "all",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::keys::{generate, Signer};

    fn pair(dir: &std::path::Path, name: &str) -> Signer {
        generate(&dir.join(name), false).unwrap();
        Signer::load(&dir.join(name)).unwrap()
    }

    fn signed(signer: &Signer, at: u64) -> Vec<(String, String)> {
        let mut headers = vec![
            ("destination".to_string(), "/topic/git".to_string()),
            ("repo".to_string(), "app".to_string()),
            ("refname".to_string(), "refs/heads/main".to_string()),
        ];
        signer.sign(&mut headers, b"body", at);
        headers
    }

    #[test]
    fn every_forgery_gets_its_own_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new, stranger) = (
            pair(dir.path(), "old"),
            pair(dir.path(), "new"),
            pair(dir.path(), "stranger"),
        );
        let trust = Trust::new(vec![old.public().clone(), new.public().clone()], 100);
        for key in [&old, &new] {
            let verdict = trust.verify(&signed(key, 1000), b"body", 1050);
            assert_eq!(verdict, Signature::Trusted(key.public().id().into()));
        }
        let headers = signed(&old, 1000);
        assert!(matches!(
            trust.verify(&headers, b"bodY", 1000),
            Signature::Bad(_)
        ));
        let mut moved = headers.clone();
        moved[2].1 = "refs/heads/prod".into();
        assert!(matches!(
            trust.verify(&moved, b"body", 1000),
            Signature::Bad(_)
        ));
        let mut emptied = headers.clone();
        emptied.push(("project".into(), String::new()));
        assert!(matches!(
            trust.verify(&emptied, b"body", 1000),
            Signature::Bad(_)
        ));
        assert_eq!(
            trust.verify(&headers, b"body", 1101),
            Signature::TooOld {
                key: old.public().id().into(),
                age_s: 101
            }
        );
        assert!(matches!(
            trust.verify(&headers, b"body", 600),
            Signature::Bad(_)
        ));
        assert_eq!(
            trust.verify(&signed(&stranger, 1000), b"body", 1000),
            Signature::UnknownKey(stranger.public().id().into())
        );
        assert_eq!(
            trust.verify(&headers[..3], b"body", 1000),
            Signature::Unsigned
        );
    }

    #[test]
    fn require_gates_actions_and_fetches() {
        let trusted = Signature::Trusted("k".into());
        let unsigned = Signature::Unsigned;
        assert!(Require::None.may_act(&unsigned).is_ok());
        assert_eq!(Require::Actions.may_act(&unsigned), Err("unsigned".into()));
        assert!(Require::Actions.may_fetch(&unsigned).is_ok());
        assert!(Require::All.may_fetch(&unsigned).is_err());
        assert!(Require::All.may_act(&trusted).is_ok());
        assert!(Require::All.may_fetch(&trusted).is_ok());
    }
}
