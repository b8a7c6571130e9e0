//! The STOMP frame and its wire form going out: header escaping and
//! `content-length` (STOMP 1.0, 1.1 and 1.2). Frames coming in are read by
//! [`super::decode`].

use crate::message::first_header;
use crate::text::clip;
use std::fmt;

/// How header names and values are escaped on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    /// STOMP 1.0, and CONNECT/CONNECTED frames: bytes as they are.
    None,
    /// STOMP 1.1: `\\`, `\n`, `\c`.
    V11,
    /// STOMP 1.2: 1.1 plus `\r`.
    V12,
}

impl Escaping {
    /// The escaping a negotiated protocol version uses for ordinary frames.
    pub fn for_version(version: &str) -> Escaping {
        match version {
            "1.0" => Escaping::None,
            "1.1" => Escaping::V11,
            _ => Escaping::V12,
        }
    }
}

/// One STOMP frame: a command, ordered headers and a byte-exact body.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// `CONNECT`, `SEND`, `RECEIPT`, `ERROR` …
    pub command: String,
    /// Headers in order, unescaped.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// The size of a body over [`super::decode::MAX_FRAME_BYTES`], which was read through
    /// and dropped rather than held: `body` is then empty.
    pub dropped_body: Option<u64>,
}

impl fmt::Debug for Frame {
    // Frames may carry a passcode: never print header values of CONNECT.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(key, value)| {
                let shown = if key == "passcode" { "***" } else { value };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("Frame")
            .field("command", &self.command)
            .field("headers", &headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("dropped_body", &self.dropped_body)
            .finish()
    }
}

impl Frame {
    /// A frame with no headers and no body.
    pub fn new(command: &str) -> Frame {
        Frame {
            command: command.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            dropped_body: None,
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, key: &str, value: &str) -> Frame {
        self.headers.push((key.to_string(), value.to_string()));
        self
    }

    /// The first value of header `key` (STOMP: the first occurrence wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        first_header(&self.headers, key)
    }

    /// The broker's explanation in an ERROR frame: its `message` header and
    /// the body's first line, clipped (see [`clip`]).
    pub fn error_text(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body = body.trim();
        let text = match (self.get("message"), body.is_empty()) {
            (Some(message), true) => message.to_string(),
            (Some(message), false) if first_line(body) == message => message.to_string(),
            (Some(message), false) => format!("{message}: {}", first_line(body)),
            (None, false) => first_line(body).to_string(),
            (None, true) => "(no message)".to_string(),
        };
        clip(&text)
    }

    /// Appends the wire form to `out`. A body, or any SEND, gets a
    /// `content-length` so NUL bytes and invalid UTF-8 survive.
    pub fn encode(&self, escaping: Escaping, out: &mut Vec<u8>) {
        out.extend_from_slice(self.command.as_bytes());
        out.push(b'\n');
        for (key, value) in &self.headers {
            escape_into(key, escaping, out);
            out.push(b':');
            escape_into(value, escaping, out);
            out.push(b'\n');
        }
        if !self.body.is_empty() || self.command == "SEND" {
            out.extend_from_slice(format!("content-length:{}\n", self.body.len()).as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out.push(0);
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Escapes one header name or value. Without escaping (1.0, CONNECT) a line break
/// or colon cannot be expressed, so it becomes a space rather than a new header.
/// NUL is never valid inside a header line and becomes U+FFFD.
fn escape_into(text: &str, escaping: Escaping, out: &mut Vec<u8>) {
    let mut buf = [0u8; 4];
    for ch in text.chars() {
        let replacement: &[u8] = match (ch, escaping) {
            ('\0', _) => "\u{FFFD}".as_bytes(),
            ('\n' | '\r', Escaping::None) => b" ",
            ('\\', Escaping::V11 | Escaping::V12) => b"\\\\",
            ('\n', Escaping::V11 | Escaping::V12) => b"\\n",
            (':', Escaping::V11 | Escaping::V12) => b"\\c",
            ('\r', Escaping::V12) => b"\\r",
            // 1.1 has no escape for CR: a space keeps the header on one line.
            ('\r', Escaping::V11) => b" ",
            _ => ch.encode_utf8(&mut buf).as_bytes(),
        };
        out.extend_from_slice(replacement);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::text::MAX_SHOWN_CHARS;

    /// The wire form of `frame`.
    pub(in crate::stomp) fn encode(frame: &Frame, escaping: Escaping) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(escaping, &mut out);
        out
    }

    #[test]
    fn send_escapes_headers_and_counts_the_body() {
        let frame = Frame::new("SEND")
            .header("destination", "/topic/x")
            .header("subject", "a\nb:c\\d\re");
        assert_eq!(
            encode(&frame, Escaping::V12),
            b"SEND\ndestination:/topic/x\nsubject:a\\nb\\cc\\\\d\\re\ncontent-length:0\n\n\0"
        );
    }

    #[test]
    fn broker_texts_are_clipped_on_a_character_boundary() {
        let huge = format!("ü{}", "x".repeat(5_000_000));
        let error = Frame::new("ERROR").header("message", &huge);
        let shown = error.error_text();
        assert!(
            shown.chars().count() < MAX_SHOWN_CHARS + 40,
            "{}",
            shown.len()
        );
        assert!(shown.starts_with("üxx") && shown.ends_with("(5000002 bytes in all)"));
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn debug_output_hides_the_passcode() {
        let frame = Frame::new("CONNECT").header("passcode", "hunter2");
        assert!(!format!("{frame:?}").contains("hunter2"));
    }
}
