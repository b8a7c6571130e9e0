//! The format of an outbox file: one or more messages, each a JSON line
//! (destination, headers, body length, and for a dead letter the broker's
//! reason) followed by the body bytes verbatim. A file with no message at all
//! cannot be one.

use super::Message;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

/// A message the broker refused for good, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message as it was stored.
    pub message: Message,
    /// What the broker said when it refused it.
    pub reason: String,
}

/// Borrows the message when writing (no copy per stored message), owns what
/// it reads.
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    destination: Cow<'a, str>,
    headers: Cow<'a, [(String, String)]>,
    /// Body bytes after the line; absent in single-message files, whose body is
    /// the rest of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    length: Option<usize>,
    /// Why a dead letter was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
}

/// Writes `records` (messages, with a reason for dead letters) to `file`.
pub fn write(file: &mut impl Write, records: &[(&Message, Option<&str>)]) -> std::io::Result<()> {
    for (message, reason) in records {
        let envelope = Envelope {
            destination: Cow::Borrowed(&message.destination),
            headers: Cow::Borrowed(&message.headers),
            length: Some(message.body.len()),
            reason: reason.map(Cow::Borrowed),
        };
        serde_json::to_writer(&mut *file, &envelope)?;
        file.write_all(b"\n")?;
        file.write_all(&message.body)?;
    }
    Ok(())
}

/// Parses one message file: every message in it, with its reason when dead.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<DeadLetter>> {
    if bytes.is_empty() {
        // Zero messages: sending it would deliver nothing and never finish it.
        bail!("{} is empty (not a hookbus message file)", path.display());
    }
    let damaged = || format!("{} is damaged (not a hookbus message file)", path.display());
    let mut letters = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let split = rest
            .iter()
            .position(|&b| b == b'\n')
            .with_context(damaged)?;
        let envelope: Envelope = serde_json::from_slice(&rest[..split]).with_context(damaged)?;
        let body_start = split + 1;
        let body_end = match envelope.length {
            Some(length) => body_start + length,
            None => rest.len(),
        };
        let body = rest
            .get(body_start..body_end)
            .with_context(damaged)?
            .to_vec();
        rest = &rest[body_end..];
        letters.push(DeadLetter {
            message: Message {
                destination: envelope.destination.into_owned(),
                headers: envelope.headers.into_owned(),
                body,
            },
            reason: envelope.reason.map(Cow::into_owned).unwrap_or_default(),
        });
    }
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_file(path: &Path) -> Result<Vec<DeadLetter>> {
        parse(path, &std::fs::read(path)?)
    }

    #[test]
    fn reads_single_message_files_without_a_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.msg");
        std::fs::write(
            &path,
            b"{\"destination\":\"/topic/a\",\"headers\":[]}\nbody\nwith lines",
        )
        .unwrap();
        let letters = read_file(&path).unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].message.body, b"body\nwith lines");
    }

    #[test]
    fn damaged_files_are_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.msg");
        for bytes in [
            &b""[..],
            b"no newline",
            b"{}\n",
            b"{\"destination\":\"/a\",\"headers\":[],\"length\":99}\nshort",
        ] {
            std::fs::write(&path, bytes).unwrap();
            assert!(read_file(&path).is_err(), "{bytes:?}");
        }
    }
}
