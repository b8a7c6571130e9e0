//! Frames coming in: decoded incrementally from bytes as they arrive, in any
//! split, with headers unescaped as the negotiated version says; a body too
//! large to hold is read through and dropped.

use super::frame::{Escaping, Frame};
use crate::text::clip;

/// Largest frame the decoder holds; brokers only send us small control frames
/// (CONNECTED, RECEIPT, ERROR) and messages. A larger body is read through
/// and dropped (see [`Frame::dropped_body`]); larger headers are an error.
pub const MAX_FRAME_BYTES: usize = crate::bus::MAX_MESSAGE_BYTES;

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
    use crate::stomp::frame::tests::encode;

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
    fn a_broker_cannot_flood_the_error_text_with_a_bad_header() {
        let huge = format!("ü{}", "x".repeat(5_000_000));
        let mut decoder = Decoder::new(Escaping::V12);
        decoder.push(format!("ERROR\n{huge}\n\n\0").as_bytes());
        let bad = decoder.next_frame().unwrap_err().to_string();
        assert!(bad.len() < 1000, "{}", bad.len());
    }
}
