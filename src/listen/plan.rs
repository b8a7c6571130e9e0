//! Deciding what a received message asks for: nothing (a keepalive, junk, a
//! duplicate, a repository no mirror wants), or an update of some mirrors.
//! Pure: it reads the message and the config, and touches nothing.

use super::config::MirrorConfig;
use super::message::{self, Parsed, Update};
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;

/// Message ids remembered to skip duplicates.
const SEEN_IDS: usize = 10_000;

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Update these mirrors (by path), then acknowledge.
    Update(Update, Vec<PathBuf>),
    /// Acknowledge at once; nothing to do.
    Skip(Skip),
}

/// Why a message needs no work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A body that is only a line end.
    Keepalive,
    /// Nothing usable; why.
    Unusable(String),
    /// Its `hookbus-id` was already answered.
    Duplicate,
    /// No mirror wants its repository.
    Unwanted,
}

/// The ids of messages whose work finished (the most recent `SEEN_IDS`).
#[derive(Debug, Default)]
pub struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Remembers an answered message.
    pub fn insert(&mut self, id: String) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > SEEN_IDS {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

/// Reads a message and decides.
pub fn decide<'a>(
    headers: &[(String, String)],
    body: &[u8],
    seen: &Seen,
    mirrors: impl Iterator<Item = &'a MirrorConfig>,
) -> Decision {
    let update = match message::parse(headers, body) {
        Parsed::Update(update) => update,
        Parsed::Keepalive => return Decision::Skip(Skip::Keepalive),
        Parsed::Unusable(reason) => return Decision::Skip(Skip::Unusable(reason)),
    };
    if update.id.as_deref().is_some_and(|id| seen.contains(id)) {
        return Decision::Skip(Skip::Duplicate);
    }
    let wanted: Vec<PathBuf> = mirrors
        .filter(|mirror| mirror.wants(&update.repo))
        .map(|mirror| mirror.path.clone())
        .collect();
    if wanted.is_empty() {
        return Decision::Skip(Skip::Unwanted);
    }
    Decision::Update(update, wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listen::message::headers;

    fn mirror(repo: &str, path: &str) -> MirrorConfig {
        toml::from_str(&format!("repo = '{repo}'\npath = '{path}'")).unwrap()
    }

    #[test]
    fn messages_select_mirrors_by_name_or_glob() {
        let mirrors = [
            mirror("app", "/m/app"),
            mirror("team/*", "/m/team"),
            mirror("other", "/m/o"),
        ];
        let seen = Seen::default();
        let decide = |pairs: &[(&str, &str)]| decide(&headers(pairs), b"", &seen, mirrors.iter());
        let Decision::Update(update, paths) = decide(&[("repo", "app")]) else {
            panic!()
        };
        assert_eq!(
            (update.repo.as_str(), paths),
            ("app", vec![PathBuf::from("/m/app")])
        );
        let Decision::Update(_, paths) = decide(&[("repo", "team/web")]) else {
            panic!()
        };
        assert_eq!(paths, [PathBuf::from("/m/team")]);
        assert_eq!(
            decide(&[("repo", "nobody")]),
            Decision::Skip(Skip::Unwanted)
        );
        assert_eq!(
            decide(&[]),
            Decision::Skip(Skip::Unusable("empty message".into()))
        );
    }

    #[test]
    fn answered_ids_are_duplicates_and_the_memory_is_bounded() {
        let mirrors = [mirror("app", "/m/app")];
        let mut seen = Seen::default();
        let message = headers(&[("repo", "app"), ("hookbus-id", "id-1")]);
        assert!(matches!(
            decide(&message, b"", &seen, mirrors.iter()),
            Decision::Update(..)
        ));
        seen.insert("id-1".into());
        assert_eq!(
            decide(&message, b"", &seen, mirrors.iter()),
            Decision::Skip(Skip::Duplicate)
        );
        for i in 0..SEEN_IDS {
            seen.insert(format!("other-{i}"));
        }
        assert!(!seen.contains("id-1") && seen.ids.len() == SEEN_IDS);
    }
}
