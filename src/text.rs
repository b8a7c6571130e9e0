//! Text from repositories: bytes in whatever encoding history used, turned into
//! UTF-8 for messages. Shared by the git and Subversion sides; text written
//! into the configs the seed imports print; the ends of outputs carried
//! into errors and reports; and text from outside (a broker's words, a
//! received message's headers) clipped before it is shown.

use encoding_rs::{Encoding, WINDOWS_1252};
use std::borrow::Cow;

/// Decodes text from a repository (commit messages, names, Subversion
/// properties): the declared `encoding` when there is one, UTF-8 when the
/// bytes are valid UTF-8, else Windows-1252 (a superset of Latin-1 that maps every
/// byte), so old non-UTF-8 history reads sensibly and never fails.
pub fn decode_text<'a>(bytes: &'a [u8], declared: Option<&str>) -> Cow<'a, str> {
    if let Some(encoding) = declared.and_then(|label| Encoding::for_label(label.as_bytes())) {
        return encoding.decode_without_bom_handling(bytes).0;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// `text` as a TOML string, quoted and escaped.
pub fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The end of `text`: at most `max` bytes, starting at a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    // The end is a boundary, so a cut inside the last character gives "".
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

/// The end of a child's output as an error or a report shows it: trimmed, at
/// most `max` bytes ([`tail`]), its lines joined with ` | `.
pub fn tail_line(text: &str, max: usize) -> String {
    tail(text.trim(), max).replace('\n', " | ")
}

/// Most characters of text from outside (a broker's ERROR, a bad header line,
/// a received message's destination) shown or logged: enough for any real
/// explanation, and a broker cannot flood a pusher's terminal or the syslog.
pub const MAX_SHOWN_CHARS: usize = 400;

/// `text` cut to [`MAX_SHOWN_CHARS`] characters, saying how much was cut.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes in all)", &text[..cut], text.len()),
    }
}

/// Rows as a plain table for a terminal: each column but the last padded to
/// its widest cell (in characters), two spaces between, no trailing blanks.
pub fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            (rows.iter())
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            match index + 1 == row.len() {
                true => line.push_str(cell),
                false => line.push_str(&format!("{cell:<width$}  ", width = widths[index])),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_honours_the_header_and_never_fails() {
        assert_eq!(decode_text(b"caf\xe9", Some("ISO-8859-1")), "café");
        assert_eq!(decode_text(b"caf\xe9", None), "café");
        assert_eq!(decode_text("café".as_bytes(), None), "café");
        assert_eq!(decode_text(b"\x82\xa0", Some("Shift_JIS")), "あ");
    }

    #[test]
    fn a_tail_starts_on_a_character_and_a_tail_line_is_one_line() {
        assert_eq!(tail("abcé", 1), "");
        assert_eq!(tail("abcé", 2), "é");
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail_line("  first\nfatal: no\n", 20), "first | fatal: no");
        assert_eq!(tail_line("one\ntwo\n", 3), "two");
    }

    #[test]
    fn aligned_pads_by_characters_and_leaves_no_trailing_blanks() {
        let rows: Vec<Vec<String>> = [["A", "BB", "C"], ["é", "x", ""]]
            .iter()
            .map(|row| row.map(String::from).to_vec())
            .collect();
        assert_eq!(aligned(&rows), "A  BB  C\né  x\n");
    }
}
