//! Revision ranges for `svn-replay`: `FROM`, `FROM:TO` or `FROM:HEAD`.

use anyhow::{bail, Context, Result};

/// An inclusive range of revisions to replay; `to` `None` means the youngest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionRange {
    /// The first revision.
    pub from: u64,
    /// The last revision; `None` for the youngest.
    pub to: Option<u64>,
}

impl RevisionRange {
    /// Parses `FROM`, `FROM:TO` or `FROM:HEAD` (an `r` before a number is allowed).
    pub fn parse(text: &str) -> Result<RevisionRange> {
        let number = |part: &str| -> Result<u64> {
            part.strip_prefix('r').unwrap_or(part).parse().with_context(|| {
                format!("bad revision {part:?} in {text:?}: use FROM, FROM:TO or FROM:HEAD, e.g. 3:7")
            })
        };
        let range = match text.split_once(':') {
            None => {
                let rev = number(text)?;
                RevisionRange {
                    from: rev,
                    to: Some(rev),
                }
            }
            Some((from, "HEAD")) => RevisionRange {
                from: number(from)?,
                to: None,
            },
            Some((from, to)) => RevisionRange {
                from: number(from)?,
                to: Some(number(to)?),
            },
        };
        if range.to.is_some_and(|to| to < range.from) {
            bail!("revision range {text:?} runs backwards: give FROM:TO with FROM <= TO");
        }
        Ok(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_bad_ones_say_how_to_write_them() {
        let range = |from, to| RevisionRange { from, to };
        assert_eq!(RevisionRange::parse("5").unwrap(), range(5, Some(5)));
        assert_eq!(RevisionRange::parse("r3:7").unwrap(), range(3, Some(7)));
        assert_eq!(RevisionRange::parse("3:HEAD").unwrap(), range(3, None));
        let err = RevisionRange::parse("x:7").unwrap_err().to_string();
        assert!(err.contains("use FROM, FROM:TO or FROM:HEAD"), "{err}");
        assert!(RevisionRange::parse("7:3").is_err());
    }
}
