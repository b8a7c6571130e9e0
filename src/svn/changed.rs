//! Parsing `svnlook changed --copy-info`: one line per path with status columns
//! (`A`/`D`/`U`/`R`/`_` for the node, `U` for properties, `+` for a copy), then
//! `    (from SOURCE:rN)` after each copy. Directories end in `/`.

use anyhow::{bail, Result};

/// What happened to a node's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `A`: added (a copy when `copied_from` is set).
    Added,
    /// `D`: deleted.
    Deleted,
    /// `U`: content changed.
    Modified,
    /// `R`: deleted and added again in the same revision.
    Replaced,
    /// Content untouched (`_`): only properties changed.
    Unchanged,
}

/// One changed path of a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedPath {
    /// Repository path without a leading `/`; directories end in `/`.
    pub path: String,
    /// What happened to its content.
    pub action: Action,
    /// Its properties changed too.
    pub properties_changed: bool,
    /// Copy source path and revision, for `A +` and `R +`.
    pub copied_from: Option<(String, u64)>,
}

impl ChangedPath {
    /// True for directories.
    pub fn is_dir(&self) -> bool {
        self.path.ends_with('/')
    }
}

/// Parses the whole output (decoded lossily: svnlook prints UTF-8 paths under a
/// UTF-8 locale).
pub fn parse(output: &[u8]) -> Result<Vec<ChangedPath>> {
    let text = String::from_utf8_lossy(output);
    let mut paths: Vec<ChangedPath> = Vec::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if let Some(source) = line.trim_start().strip_prefix("(from ") {
            let Some(last) = paths.last_mut() else {
                bail!("svnlook changed: copy source before any path: {line:?}");
            };
            last.copied_from = Some(copy_source(source)?);
            continue;
        }
        let (columns, path) = match (line.get(..4), line.get(4..)) {
            (Some(columns), Some(path)) if !path.is_empty() => (columns.as_bytes(), path),
            _ => bail!("svnlook changed: unexpected line {line:?}"),
        };
        let action = match columns[0] {
            b'A' => Action::Added,
            b'D' => Action::Deleted,
            b'U' => Action::Modified,
            b'R' => Action::Replaced,
            b'_' => Action::Unchanged,
            _ => bail!("svnlook changed: unknown action in {line:?}"),
        };
        paths.push(ChangedPath {
            path: path.to_string(),
            action,
            properties_changed: columns[1] == b'U',
            copied_from: None,
        });
    }
    Ok(paths)
}

/// `SOURCE:rN)` → (SOURCE, N).
fn copy_source(text: &str) -> Result<(String, u64)> {
    let parsed = text
        .strip_suffix(')')
        .and_then(|inner| inner.rsplit_once(":r"))
        .and_then(|(path, rev)| Some((path.to_string(), rev.parse().ok()?)));
    match parsed {
        Some(source) => Ok(source),
        None => bail!("svnlook changed: unexpected copy source {text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_properties_and_copies_parse() {
        let output = b"_U  projA/branches/x/\nD   projA/branches/x/README\nA + projA/branches/x/README.txt\n    (from projA/branches/x/README:r5)\nUU  projA/branches/x/logo.bin\nR + caf\xc3\xa9/\n    (from old:dir/:r12)\n";
        let paths = parse(output).unwrap();
        assert_eq!(paths.len(), 5);
        assert_eq!(paths[0].action, Action::Unchanged);
        assert!(paths[0].properties_changed && paths[0].is_dir());
        assert_eq!(paths[1].action, Action::Deleted);
        assert_eq!(
            paths[2].copied_from,
            Some(("projA/branches/x/README".to_string(), 5))
        );
        assert!(paths[3].properties_changed);
        assert_eq!(paths[3].action, Action::Modified);
        assert_eq!(paths[4].path, "café/");
        assert_eq!(paths[4].copied_from, Some(("old:dir/".to_string(), 12)));
    }

    #[test]
    fn garbage_is_an_error_not_a_guess() {
        assert!(parse(b"X   a\n").is_err());
        assert!(parse(b"    (from a:r1)\n").is_err());
        assert!(parse(b"A   a\n    (from a:rX)\n").is_err());
    }
}
