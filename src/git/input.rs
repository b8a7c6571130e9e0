//! Parsing post-receive standard input: one `OLD NEW REFNAME` line per ref.

use thiserror::Error;

/// One well-formed input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawUpdate {
    /// 1-based line number, for error messages.
    pub line: usize,
    /// The id before the push; all zeros on create.
    pub oldrev: String,
    /// The id after the push; all zeros on delete.
    pub newrev: String,
    /// The full refname, e.g. `refs/heads/master`, decoded lossily for messages.
    pub refname: String,
    /// The refname as git gave it: a ref name need not be UTF-8, and matching
    /// it against the repository's refs must use its bytes.
    pub refname_bytes: Vec<u8>,
}

/// Why an input line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error(
        "stdin line {line} is blank; post-receive input is one 'OLD NEW REFNAME' line per ref"
    )]
    /// An empty line.
    Blank {
        /// 1-based stdin line number.
        line: usize,
    },
    #[error("stdin line {line} is not 'OLD NEW REFNAME': {text:?}")]
    /// Not three fields separated by spaces.
    Malformed {
        /// 1-based stdin line number.
        line: usize,
        /// The line as read.
        text: String,
    },
    #[error("stdin line {line}: {value:?} is not a full object id (40 or 64 hex digits)")]
    /// A field that is not a full hex object id.
    BadId {
        /// 1-based stdin line number.
        line: usize,
        /// The field that is not an id.
        value: String,
    },
    #[error("stdin line {line}: old and new ids have different lengths (SHA-1 and SHA-256 mixed)")]
    /// Old and new ids of different lengths.
    MixedIds {
        /// 1-based stdin line number.
        line: usize,
    },
}

/// True for a full-length hex object id (SHA-1 or SHA-256).
pub fn is_full_id(value: &str) -> bool {
    matches!(value.len(), 40 | 64) && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True for the all-zero id that marks a create (old) or delete (new).
pub fn is_null_id(value: &str) -> bool {
    value.bytes().all(|b| b == b'0')
}

/// Parses every line; bad lines become errors without stopping the good ones.
pub fn parse(input: &[u8]) -> Vec<Result<RawUpdate, InputError>> {
    if input.is_empty() {
        return Vec::new();
    }
    let input = input.strip_suffix(b"\n").unwrap_or(input);
    input
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(index, raw)| parse_line(index + 1, raw.strip_suffix(b"\r").unwrap_or(raw)))
        .collect()
}

fn parse_line(line: usize, raw: &[u8]) -> Result<RawUpdate, InputError> {
    if raw.trim_ascii().is_empty() {
        return Err(InputError::Blank { line });
    }
    let malformed = || InputError::Malformed {
        line,
        text: String::from_utf8_lossy(raw).into_owned(),
    };
    let mut fields = raw.split(|&b| b == b' ');
    let (Some(oldrev), Some(newrev), Some(refname_bytes), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed());
    };
    let (oldrev, newrev) = (
        String::from_utf8_lossy(oldrev),
        String::from_utf8_lossy(newrev),
    );
    for value in [&oldrev, &newrev] {
        if !is_full_id(value) {
            return Err(InputError::BadId {
                line,
                value: value.to_string(),
            });
        }
    }
    if oldrev.len() != newrev.len() {
        return Err(InputError::MixedIds { line });
    }
    if !refname_bytes.starts_with(b"refs/") && refname_bytes != b"HEAD" {
        return Err(malformed());
    }
    Ok(RawUpdate {
        line,
        oldrev: oldrev.to_ascii_lowercase(),
        newrev: newrev.to_ascii_lowercase(),
        refname: String::from_utf8_lossy(refname_bytes).into_owned(),
        refname_bytes: refname_bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_lines() {
        let a = "a".repeat(40);
        let z = "0".repeat(40);
        let input = format!(
            "{z} {a} refs/heads/master\n\n{a} {z}\nnot-an-id {a} refs/heads/x\n{z} {} refs/heads/y\n{} {} refs/tags/v1\n",
            "b".repeat(64),
            "c".repeat(64),
            "0".repeat(64)
        );
        let parsed = parse(input.as_bytes());
        assert_eq!(parsed.len(), 6);
        assert_eq!(parsed[0].as_ref().unwrap().refname, "refs/heads/master");
        assert_eq!(parsed[1], Err(InputError::Blank { line: 2 }));
        assert!(matches!(
            parsed[2],
            Err(InputError::Malformed { line: 3, .. })
        ));
        assert!(matches!(parsed[3], Err(InputError::BadId { line: 4, .. })));
        assert_eq!(parsed[4], Err(InputError::MixedIds { line: 5 }));
        assert!(parsed[5].is_ok());
    }

    #[test]
    fn refnames_keep_their_bytes() {
        let a = "a".repeat(40);
        let z = "0".repeat(40);
        let input = [format!("{z} {a} refs/heads/caf").as_bytes(), b"\xe9\r\n"].concat();
        let parsed = parse(&input);
        let update = parsed[0].as_ref().unwrap();
        assert_eq!(update.refname_bytes, b"refs/heads/caf\xe9");
        assert_eq!(update.refname, "refs/heads/caf\u{fffd}");
    }
}
