//! Text from repositories: bytes in whatever encoding history used, turned into
//! UTF-8 for messages. Shared by the git and Subversion sides; and text written
//! into the configs the seed imports print.

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
}
