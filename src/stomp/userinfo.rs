//! The user part of broker URLs: where each host's begins and ends, whatever
//! characters a passcode holds, its %-decoding, and hiding it in messages.

use anyhow::{Context, Result};

/// Decodes `%XX` in a URL's user part, so a passcode may hold `:` or `@`.
pub(super) fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .context("bad %-escape in the user part (write %XX with two hex digits)")?;
            out.push(hex);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).context("the user part is not UTF-8 once %-decoded")
}

/// Schemes a host of a broker URL starts with (`parse_host` knows them all).
const SCHEMES: [&str; 5] = ["stomp", "stomp+ssl", "stomp+tls", "ssl", "tcp"];

/// Splits a failover host list at each ',' that starts another `scheme://`, so
/// that a ',' inside a passcode does not split its host.
pub(super) fn split_hosts(list: &str) -> impl Iterator<Item = &str> {
    let starts_host = |text: &str| {
        let text = text.trim_start().to_ascii_lowercase();
        SCHEMES
            .iter()
            .any(|scheme| text.starts_with(&format!("{scheme}://")))
    };
    let mut rest = Some(list);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut from = 0;
        while let Some(comma) = text[from..].find(',').map(|at| from + at) {
            if starts_host(&text[comma + 1..]) {
                rest = Some(&text[comma + 1..]);
                return Some(&text[..comma]);
            }
            from = comma + 1;
        }
        rest = None;
        Some(text)
    })
}

/// The URL with the passcode of every `user:passcode@` replaced by `***`, for
/// messages. Each host's user part runs to its last '@', whatever characters
/// the passcode holds.
pub fn redact(url: &str) -> String {
    let mut parts = Vec::new();
    for part in split_hosts(url) {
        let shown = match part.rfind('@') {
            Some(at) => {
                // Without a plain scheme before it, everything up to the '@' is hidden.
                let plain_scheme = |prefix: &str| {
                    let failover = prefix
                        .get(..9)
                        .filter(|p| p.eq_ignore_ascii_case("failover:"));
                    let scheme =
                        prefix[failover.map_or(0, str::len)..].trim_start_matches(['/', '(']);
                    scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
                };
                let start = part
                    .find("://")
                    .filter(|&end| end < at && plain_scheme(&part[..end]))
                    .map_or(0, |end| end + 3);
                let user = match start {
                    0 => "",
                    _ => part[start..at].split(':').next().unwrap_or(""),
                };
                format!("{}{user}:***{}", &part[..start], &part[at..])
            }
            None => part.to_string(),
        };
        parts.push(shown);
    }
    parts.join(",")
}
