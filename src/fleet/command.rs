//! `hookbus fleet freeze|unfreeze|rollback`: one [`Command`] published on the
//! listeners' control topic, signed with `[sign]`'s key at the publisher's
//! one SEND chokepoint; never sent unsigned, since every listener refuses
//! that. The listeners' side is [`crate::listen::ops::remote`].

use crate::bus::{PublishError, Publisher};
use crate::listen::ops::control::Request;
use crate::listen::ops::remote::Command;

/// Why a command was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No `[sign]` key: the command could only go out unsigned.
    #[error("fleet commands are signed and this config has no [sign] key_file: make a key pair with `hookbus keygen PATH`, set [sign] key_file = \"PATH\", and add the line of PATH.pub to the listeners' [listen] trust")]
    Unsigned,
    /// The hosts glob or the request is no fleet command.
    #[error("{0:#}")]
    Command(anyhow::Error),
    /// The broker did not take it.
    #[error("the command was not published on {topic}: {error}")]
    Publish {
        /// Where it was to go.
        topic: String,
        /// What the broker (or the network) said.
        error: PublishError,
    },
}

/// Publishes `request` for the listeners whose host name `hosts` (a glob)
/// takes, on `topic`, signed by `publisher`'s key; returns the command sent.
pub fn send(
    publisher: &Publisher,
    topic: &str,
    hosts: &str,
    request: Request,
) -> Result<Command, SendError> {
    if publisher.signer().is_none() {
        return Err(SendError::Unsigned);
    }
    let command = Command::new(hosts, request).map_err(SendError::Command)?;
    let message = command.message(topic).map_err(SendError::Command)?;
    publisher
        .publish(&[message])
        .map_err(|error| SendError::Publish {
            topic: topic.to_string(),
            error,
        })?;
    Ok(command)
}
