//! The STOMP frame codec: encoding with header escaping and incremental decoding
//! of frames from a byte buffer (STOMP 1.0, 1.1 and 1.2).

use std::fmt;

/// Most characters of broker-supplied text (an ERROR's words, a bad header
/// line) shown or logged: enough for any real explanation, and a broker
/// cannot flood a pusher's terminal or the syslog.
pub const MAX_SHOWN_CHARS: usize = 400;

/// `text` cut to [`MAX_SHOWN_CHARS`] characters, saying how much was cut.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes in all)", &text[..cut], text.len()),
    }
}

/// Largest frame the decoder holds; brokers only send us small control frames
/// (CONNECTED, RECEIPT, ERROR) and messages. A larger body is read through
/// and dropped (see [`Frame::dropped_body`]); larger headers are an error.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

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
    /// The size of a body over [`MAX_FRAME_BYTES`], which was read through
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
        self.headers
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
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

/// Why bytes from the broker are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame headers larger than {MAX_FRAME_BYTES} bytes")]
    /// Command and headers over [`MAX_FRAME_BYTES`].
    TooLarge,
    #[error("header line without a colon: {0:?}")]
    /// A header line with no `:`.
    HeaderWithoutColon(String),
    #[error("undefined escape sequence in header: {0:?}")]
    /// A `\` escape STOMP 1.2 does not define.
    BadEscape(String),
    #[error("bad content-length {0:?}")]
    /// A `content-length` that is not a number.
    BadContentLength(String),
    #[error("body of declared length is not followed by NUL")]
    /// The body is not followed by the NUL byte.
    MissingNul,
}

/// Decodes frames from bytes as they arrive, in any split.
#[derive(Debug)]
pub struct Decoder {
    buffer: Vec<u8>,
    escaping: Escaping,
    /// How much of the buffer is known to hold no end of the current frame's
    /// headers, and of its body: each byte is searched once, so a huge frame
    /// arriving in small reads costs linear time, not quadratic.
    head_searched: usize,
    body_searched: usize,
    /// A frame whose body is too large to hold, while its body is read through.
    skipping: Option<Skipping>,
}

/// A frame being read through: its head is kept, its body only counted.
#[derive(Debug)]
struct Skipping {
    frame: Frame,
    /// Body bytes still to come; `None` when the frame declared no length
    /// and its body ends at the next NUL.
    left: Option<u64>,
    /// Body bytes read through so far.
    skipped: u64,
}

impl Skipping {
    /// Counts the part of `bytes` that belongs to the body and returns the
    /// rest, which starts with the frame's closing NUL once the body is over.
    fn swallow<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let taken = match &mut self.left {
            Some(left) => {
                let taken = bytes
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= taken as u64;
                taken
            }
            None => match bytes.iter().position(|&b| b == 0) {
                Some(nul) => {
                    self.left = Some(0);
                    nul
                }
                None => bytes.len(),
            },
        };
        self.skipped += taken as u64;
        &bytes[taken..]
    }
}

impl Decoder {
    /// A decoder that unescapes headers as `escaping` says.
    pub fn new(escaping: Escaping) -> Decoder {
        Decoder {
            buffer: Vec::new(),
            escaping,
            head_searched: 0,
            body_searched: 0,
            skipping: None,
        }
    }

    /// Switches escaping once the protocol version is known.
    pub fn set_escaping(&mut self, escaping: Escaping) {
        self.escaping = escaping;
    }

    /// Adds received bytes; those of a body being read through are only counted.
    pub fn push(&mut self, bytes: &[u8]) {
        let rest = match &mut self.skipping {
            Some(skipping) => skipping.swallow(bytes),
            None => bytes,
        };
        self.buffer.extend_from_slice(rest);
    }

    /// The next complete frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(skipping) = &self.skipping {
            if skipping.left != Some(0) || self.buffer.is_empty() {
                return Ok(None);
            }
            if self.buffer[0] != 0 {
                return Err(FrameError::MissingNul);
            }
            self.buffer.drain(..1);
            return Ok(self.skipping.take().map(|skipping| Frame {
                dropped_body: Some(skipping.skipped),
                ..skipping.frame
            }));
        }
        // Heart-beats and the optional EOLs after a frame's NUL are bare line ends.
        let skip = self
            .buffer
            .iter()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
        self.buffer.drain(..skip);
        // A blank line may straddle the previous search's end.
        let from = self.head_searched.saturating_sub(skip + 3);
        let Some(head_end) = find_head_end(&self.buffer, from) else {
            self.head_searched = self.buffer.len();
            return if self.buffer.len() > MAX_FRAME_BYTES {
                Err(FrameError::TooLarge)
            } else {
                Ok(None)
            };
        };
        let head = &self.buffer[..head_end.lines_end];
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        let command = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
        let mut headers = Vec::new();
        for line in lines {
            let text = String::from_utf8_lossy(line);
            let (key, value) = text
                .split_once(':')
                .ok_or_else(|| FrameError::HeaderWithoutColon(clip(&text)))?;
            let escaping = if command == "CONNECTED" {
                Escaping::None
            } else {
                self.escaping
            };
            headers.push((unescape(key, escaping)?, unescape(value, escaping)?));
        }
        let body_start = head_end.body_start;
        let content_length = headers
            .iter()
            .find(|(key, _)| key == "content-length")
            .map(|(_, value)| {
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| FrameError::BadContentLength(clip(value)))
            })
            .transpose()?;
        let too_large = |left| Skipping {
            frame: Frame {
                command: command.clone(),
                headers: headers.clone(),
                body: Vec::new(),
                dropped_body: None,
            },
            left,
            skipped: 0,
        };
        let (body_end, frame_end) = match content_length {
            Some(length) if length > MAX_FRAME_BYTES as u64 => {
                return self.skip_body(body_start, too_large(Some(length)));
            }
            Some(length) => {
                let end = body_start + length as usize;
                if self.buffer.len() <= end {
                    return Ok(None);
                }
                if self.buffer[end] != 0 {
                    return Err(FrameError::MissingNul);
                }
                (end, end + 1)
            }
            None => {
                let from = self.body_searched.max(body_start);
                match self.buffer[from..].iter().position(|&b| b == 0) {
                    Some(offset) => (from + offset, from + offset + 1),
                    None if self.buffer.len() > MAX_FRAME_BYTES => {
                        return self.skip_body(body_start, too_large(None));
                    }
                    None => {
                        self.body_searched = self.buffer.len();
                        return Ok(None);
                    }
                }
            }
        };
        let body = self.buffer[body_start..body_end].to_vec();
        self.buffer.drain(..frame_end);
        self.head_searched = 0;
        self.body_searched = 0;
        Ok(Some(Frame {
            command,
            headers,
            body,
            dropped_body: None,
        }))
    }

    /// Starts reading through the body that begins at `body_start`: what is
    /// buffered of it is counted and let go, and so is what comes later.
    fn skip_body(
        &mut self,
        body_start: usize,
        skipping: Skipping,
    ) -> Result<Option<Frame>, FrameError> {
        self.buffer.drain(..body_start);
        // Taken, not copied: the buffer's memory goes with it.
        let buffered = std::mem::take(&mut self.buffer);
        self.head_searched = 0;
        self.body_searched = 0;
        self.skipping = Some(skipping);
        self.push(&buffered);
        self.next_frame()
    }
}

/// Where the command and header lines end and where the body starts.
struct HeadEnd {
    lines_end: usize,
    body_start: usize,
}

/// Finds the blank line (`\n\n` or `\r\n\r\n`, mixed allowed) ending the
/// headers, searching from `from`.
fn find_head_end(buffer: &[u8], from: usize) -> Option<HeadEnd> {
    let mut index = from;
    while let Some(offset) = buffer[index..].iter().position(|&b| b == b'\n') {
        let newline = index + offset;
        let rest = &buffer[newline + 1..];
        let blank = if rest.starts_with(b"\n") {
            Some(1)
        } else if rest.starts_with(b"\r\n") {
            Some(2)
        } else {
            None
        };
        if let Some(blank_len) = blank {
            let lines_end = if newline > 0 && buffer[newline - 1] == b'\r' {
                newline - 1
            } else {
                newline
            };
            return Some(HeadEnd {
                lines_end,
                body_start: newline + 1 + blank_len,
            });
        }
        index = newline + 1;
    }
    None
}

fn unescape(text: &str, escaping: Escaping) -> Result<String, FrameError> {
    if escaping == Escaping::None || !text.contains('\\') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match (chars.next(), escaping) {
            (Some('\\'), _) => out.push('\\'),
            (Some('n'), _) => out.push('\n'),
            (Some('c'), _) => out.push(':'),
            (Some('r'), Escaping::V12) => out.push('\r'),
            _ => return Err(FrameError::BadEscape(clip(text))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(frame: &Frame, escaping: Escaping) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(escaping, &mut out);
        out
    }

    fn decode_all(bytes: &[u8], escaping: Escaping) -> Vec<Frame> {
        let mut decoder = Decoder::new(escaping);
        decoder.push(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            frames.push(frame);
        }
        frames
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
    fn unescaped_frames_cannot_gain_headers() {
        let frame = Frame::new("CONNECT").header("login", "a\nreceipt:x");
        let bytes = encode(&frame, Escaping::None);
        let back = decode_all(&bytes, Escaping::None);
        assert_eq!(back[0].headers.len(), 1);
        assert_eq!(back[0].get("login"), Some("a receipt:x"));
    }

    #[test]
    fn round_trips_binary_bodies_and_unicode_headers() {
        let frame = Frame {
            command: "MESSAGE".into(),
            headers: vec![("subject".into(), "héllo\n:\\ wörld".into())],
            body: vec![0, 0xff, 0xfe, b'\n', 0, b'x'],
            dropped_body: None,
        };
        for escaping in [Escaping::V11, Escaping::V12] {
            let mut bytes = encode(&frame, escaping);
            bytes.extend_from_slice(b"\n\r\n");
            let mut expected = frame.clone();
            expected.headers.push(("content-length".into(), "6".into()));
            assert_eq!(decode_all(&bytes, escaping), vec![expected]);
        }
    }

    #[test]
    fn decodes_byte_by_byte_and_back_to_back() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"\n\nRECEIPT\r\nreceipt-id:m-1\r\n\r\n\0");
        bytes.extend_from_slice(b"ERROR\nmessage:denied\n\nno write access\0\n");
        let mut decoder = Decoder::new(Escaping::V12);
        let mut frames = Vec::new();
        for byte in &bytes {
            decoder.push(std::slice::from_ref(byte));
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].get("receipt-id"), Some("m-1"));
        assert_eq!(frames[1].error_text(), "denied: no write access");
    }

    #[test]
    fn connected_headers_are_not_unescaped() {
        let frames = decode_all(b"CONNECTED\nserver:a\\b\nversion:1.2\n\n\0", Escaping::V12);
        assert_eq!(frames[0].get("server"), Some("a\\b"));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &b"MESSAGE\nno colon here\n\n\0"[..],
            b"MESSAGE\nkey:bad \\t escape\n\n\0",
            b"MESSAGE\ncontent-length:x\n\n\0",
            b"MESSAGE\ncontent-length:1\n\nab\0",
        ] {
            let mut decoder = Decoder::new(Escaping::V12);
            decoder.push(bad);
            assert!(decoder.next_frame().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn incomplete_frames_wait_for_more() {
        let mut decoder = Decoder::new(Escaping::V12);
        decoder.push(b"MESSAGE\ncontent-length:4\n\nab");
        assert_eq!(decoder.next_frame().unwrap(), None);
        decoder.push(b"\0d\0");
        assert_eq!(decoder.next_frame().unwrap().unwrap().body, b"ab\0d");
    }

    /// Feeds `bytes` in 16 KiB reads, as a connection does; the frames and
    /// the most the decoder ever held.
    fn decode_in_reads(bytes: &[u8]) -> (Vec<Frame>, usize) {
        let mut decoder = Decoder::new(Escaping::V12);
        let (mut frames, mut held) = (Vec::new(), 0);
        for read in bytes.chunks(16 * 1024) {
            decoder.push(read);
            held = held.max(decoder.buffer.capacity());
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        (frames, held)
    }

    #[test]
    fn an_oversized_body_of_declared_length_is_read_through_not_held() {
        let size = MAX_FRAME_BYTES + 3_000_000;
        let mut bytes = b"MESSAGE\nmessage-id:m-1\ncontent-length:".to_vec();
        bytes.extend_from_slice(format!("{size}\n\n").as_bytes());
        bytes.resize(bytes.len() + size, 0);
        bytes.extend_from_slice(b"\0\nMESSAGE\nmessage-id:m-2\n\nnext\0");
        let (frames, held) = decode_in_reads(&bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].get("message-id"), Some("m-1"));
        assert_eq!(frames[0].dropped_body, Some(size as u64));
        assert!(frames[0].body.is_empty());
        assert_eq!(
            (frames[1].body.as_slice(), frames[1].dropped_body),
            (&b"next"[..], None)
        );
        assert!(held < 1024 * 1024, "held {held} bytes");
    }

    #[test]
    fn an_oversized_body_without_a_length_ends_at_its_nul() {
        let size = MAX_FRAME_BYTES + 100_000;
        let mut bytes = b"MESSAGE\nmessage-id:m-1\n\n".to_vec();
        bytes.resize(bytes.len() + size, b'x');
        bytes.extend_from_slice(b"\0RECEIPT\nreceipt-id:r\n\n\0");
        let (frames, held) = decode_in_reads(&bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].dropped_body, Some(size as u64));
        assert_eq!(frames[1].get("receipt-id"), Some("r"));
        // Without a declared length, the limit is held before the body is let go.
        assert!(held <= 2 * MAX_FRAME_BYTES + 64 * 1024, "held {held} bytes");
    }

    #[test]
    fn an_oversized_body_must_still_end_with_nul() {
        let mut decoder = Decoder::new(Escaping::V12);
        let size = MAX_FRAME_BYTES + 1;
        decoder.push(format!("MESSAGE\ncontent-length:{size}\n\n").as_bytes());
        decoder.push(&vec![b'x'; size]);
        assert_eq!(decoder.next_frame().unwrap(), None);
        decoder.push(b"y");
        assert_eq!(decoder.next_frame(), Err(FrameError::MissingNul));
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
        let mut decoder = Decoder::new(Escaping::V12);
        decoder.push(format!("ERROR\n{huge}\n\n\0").as_bytes());
        let bad = decoder.next_frame().unwrap_err().to_string();
        assert!(bad.len() < 1000, "{}", bad.len());
    }

    #[test]
    fn debug_output_hides_the_passcode() {
        let frame = Frame::new("CONNECT").header("passcode", "hunter2");
        assert!(!format!("{frame:?}").contains("hunter2"));
    }
}
