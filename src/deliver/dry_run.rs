//! `--dry-run`: print each message as one JSON object per line instead of sending it.

use super::{Message, Outcome, Transport};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::io::Write;

/// Writes `{"destination": …, "headers": {…}, "body": "…"}` lines to a writer.
pub struct DryRun<W: Write> {
    out: W,
}

impl<W: Write> DryRun<W> {
    /// A dry-run printer writing to `out` (stdout for the CLI).
    pub fn new(out: W) -> Self {
        DryRun { out }
    }
}

/// Headers as a JSON object that keeps their send order.
struct OrderedHeaders<'a>(&'a [(String, String)]);

impl Serialize for OrderedHeaders<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Line<'a> {
    destination: &'a str,
    headers: OrderedHeaders<'a>,
    /// Rendered bodies are always UTF-8; bytes from `hookbus send` may not be and
    /// are shown lossily.
    body: std::borrow::Cow<'a, str>,
}

impl<'a> Line<'a> {
    fn of(message: &'a Message) -> Self {
        Line {
            destination: &message.destination,
            headers: OrderedHeaders(&message.headers),
            body: String::from_utf8_lossy(&message.body),
        }
    }
}

/// Renders one message as its dry-run JSON line (without the newline).
pub fn to_json_line(message: &Message) -> String {
    serde_json::to_string(&Line::of(message)).expect("strings always serialize")
}

impl<W: Write> Transport for DryRun<W> {
    fn deliver(&mut self, messages: &[Message]) -> anyhow::Result<Outcome> {
        for message in messages {
            // Written as it is serialized: a large body is not copied again.
            serde_json::to_writer(&mut self.out, &Line::of(message))?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()?;
        Ok(Outcome {
            accepted: messages.len(),
            ..Outcome::default()
        })
    }
}
