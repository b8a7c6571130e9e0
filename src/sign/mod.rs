//! Signed messages (issue 27): Ed25519 key pairs ([`keys`]), the
//! `hookbus-signature` header the publisher adds to every SEND ([`Signer`]),
//! and the listener's verdict on a received message ([`verify`]).
//!
//! A signature covers the SHA-256 of the body and the headers consumers act
//! on ([`COVERED`]), each encoded so that an absent header differs from an
//! empty one, and a time stamp taken when the frame is sent (an outbox
//! message delivered after an outage is stamped when it finally goes out).
//! Ed25519 is ring's, which rustls already builds.

pub mod keys;
pub mod verify;

pub use keys::{PublicKey, Signer};
pub use verify::{Require, Signature, Trust};

use crate::message::first_header;
use sha2::{Digest, Sha256};

/// The header holding `v1 KEY-ID BASE64-SIGNATURE`.
pub const SIGNATURE_HEADER: &str = "hookbus-signature";
/// The header holding the send time, in seconds since the Unix epoch.
pub const SIGNED_AT_HEADER: &str = "hookbus-signed-at";
/// The version word the signature header starts with.
const VERSION: &str = "v1";
/// The headers a signature covers, in the order they are encoded.
pub const COVERED: [&str; 10] = [
    "destination",
    "repo",
    "refname",
    "oldrev",
    "newrev",
    "change",
    "project",
    "pusher",
    "hookbus-id",
    SIGNED_AT_HEADER,
];

/// The bytes signed: a domain label, the body's SHA-256, then each covered
/// header as its name, a marker byte (0 absent, 1 present) and, when present,
/// its length and bytes.
fn canonical(headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("hookbus-signature {VERSION}\n").into_bytes();
    out.extend_from_slice(&Sha256::digest(body));
    for name in COVERED {
        out.extend_from_slice(name.as_bytes());
        match first_header(headers, name) {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                out.extend_from_slice(&(value.len() as u64).to_be_bytes());
                out.extend_from_slice(value.as_bytes());
            }
        }
    }
    out
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `[sign]`: the key every message hookbus publishes is signed with.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignConfig {
    /// The private key file `hookbus keygen PATH` wrote (PATH).
    pub key_file: std::path::PathBuf,
}

impl SignConfig {
    /// Loads the key, with a warning when group or others may read it.
    pub fn load(&self) -> anyhow::Result<(Signer, Option<String>)> {
        let signer = Signer::load(&self.key_file)?;
        let warning = keys::readable_by_others(&self.key_file).then(|| {
            format!(
                "[sign] key_file {} is readable by group or others; chmod 600 it",
                self.key_file.display()
            )
        });
        Ok((signer, warning))
    }
}
