//! `[fleet]`: what `hookbus fleet` believes (see `crate::fleet::vouch`),
//! checked when the config loads.

use super::select::check_hosts;
use crate::sign::PublicKey;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[fleet]`: what `hookbus fleet` believes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Host name (or glob) → the public key line(s) (`hookbus keygen`'s
    /// PATH.pub) that may speak for it.
    #[serde(default)]
    pub trust: BTreeMap<String, KeyLines>,
}

/// One public key line, or several (while a host's key is rotated).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum KeyLines {
    /// `web1 = "ed25519 …"`.
    One(String),
    /// `web1 = ["ed25519 … old", "ed25519 … new"]`.
    Many(Vec<String>),
}

impl FleetConfig {
    /// Each host name (or glob) of `trust` with its keys, parsed; an error
    /// names the entry and what to give.
    pub fn keys(&self) -> Result<Vec<(String, Vec<PublicKey>)>> {
        let mut keys = Vec::new();
        for (hosts, lines) in &self.trust {
            let context = || format!("[fleet] trust {hosts:?}");
            check_hosts(Some(std::slice::from_ref(hosts))).with_context(context)?;
            let lines = match lines {
                KeyLines::One(line) => std::slice::from_ref(line),
                KeyLines::Many(lines) => lines.as_slice(),
            };
            if lines.is_empty() {
                anyhow::bail!("[fleet] trust {hosts:?} lists no key: give its PATH.pub line");
            }
            let parsed = (lines.iter())
                .map(|line| PublicKey::parse(line).with_context(context))
                .collect::<Result<Vec<_>>>()?;
            keys.push((hosts.clone(), parsed));
        }
        Ok(keys)
    }
}
