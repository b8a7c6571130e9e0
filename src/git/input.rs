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
    /// The full refname, e.g. `refs/heads/master`.
    pub refname: String,
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
    let text = String::from_utf8_lossy(input);
    text.lines()
        .enumerate()
        .map(|(index, raw)| parse_line(index + 1, raw.trim_end_matches('\r')))
        .collect()
}

fn parse_line(line: usize, raw: &str) -> Result<RawUpdate, InputError> {
    if raw.trim().is_empty() {
        return Err(InputError::Blank { line });
    }
    let mut fields = raw.split(' ');
    let (Some(oldrev), Some(newrev), Some(refname), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(InputError::Malformed {
            line,
            text: raw.to_string(),
        });
    };
    for value in [oldrev, newrev] {
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
    if refname.is_empty() || !refname.starts_with("refs/") && refname != "HEAD" {
        return Err(InputError::Malformed {
            line,
            text: raw.to_string(),
        });
    }
    Ok(RawUpdate {
        line,
        oldrev: oldrev.to_ascii_lowercase(),
        newrev: newrev.to_ascii_lowercase(),
        refname: refname.to_string(),
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
}
