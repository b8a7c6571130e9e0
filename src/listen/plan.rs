//! Deciding what a received message asks for: nothing (a keep-alive, an
//! unusable message, a duplicate, one no mirror or action wants), or work:
//! some mirrors updated, some action chains run. Pure: it takes the message
//! as [`crate::inbound`] read it, and touches nothing.

use crate::action::Action;
use crate::config::mirror::MirrorConfig;
use crate::inbound::{Reading, Received};
use crate::sign::Require;
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

/// Message ids remembered to skip duplicates.
const SEEN_IDS: usize = 10_000;

/// What to do with one message.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Do this, then acknowledge.
    Work(Work),
    /// Acknowledge at once; nothing to do.
    Skip(Skip),
}

/// The work a message asks for; at least one mirror or action.
#[derive(Debug, Clone)]
pub struct Work {
    /// The message, as read: mirrors and actions share this one value.
    pub message: Arc<Received>,
    /// The mirrors (by path) that want its repository.
    pub mirrors: Vec<PathBuf>,
    /// The actions it matches.
    pub actions: Vec<Arc<Action>>,
    /// Why some of that work was withheld (`[listen] require_signature`).
    pub refused: Option<String>,
    /// Why the mirrors' on-change steps may not run for this message, if
    /// they may not: its signature does not allow acting. Such a message
    /// only makes a mirror with on-change steps fetch.
    pub on_change_withheld: Option<String>,
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
    /// No mirror wants its repository and no action matches it.
    Unwanted,
    /// Work was wanted, but the message's signature allows none of it.
    Refused {
        /// The message, for the refusal's report.
        message: Arc<Received>,
        /// Why.
        reason: String,
    },
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

    pub(super) fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

/// The mirrors that want `message`'s repository (none when it names none).
pub fn wanting<'a, 'm>(
    message: &'m Received,
    mirrors: impl Iterator<Item = &'a MirrorConfig> + 'm,
) -> impl Iterator<Item = &'a MirrorConfig> + 'm {
    mirrors.filter(|mirror| (message.repo.as_deref()).is_some_and(|repo| mirror.wants(repo)))
}

/// Decides for a message as it was read.
pub fn decide<'a>(
    reading: Reading,
    seen: &Seen,
    mirrors: impl Iterator<Item = &'a MirrorConfig>,
    actions: &[Arc<Action>],
) -> Decision {
    let message = match reading {
        Reading::Received(message) => message,
        Reading::Keepalive => return Decision::Skip(Skip::Keepalive),
        Reading::Unusable(reason) => return Decision::Skip(Skip::Unusable(reason)),
    };
    if message.id.as_deref().is_some_and(|id| seen.contains(id)) {
        return Decision::Skip(Skip::Duplicate);
    }
    let mirrors: Vec<PathBuf> = wanting(&message, mirrors)
        .map(|mirror| mirror.path.clone())
        .collect();
    let actions: Vec<Arc<Action>> = (actions.iter())
        .filter(|action| action.matcher.matches(&message))
        .cloned()
        .collect();
    if mirrors.is_empty() && actions.is_empty() {
        return Decision::Skip(Skip::Unwanted);
    }
    Decision::Work(Work {
        message: Arc::from(message),
        mirrors,
        actions,
        refused: None,
        on_change_withheld: None,
    })
}

/// `[listen] require_signature` applied to a decision: work the message's
/// signature does not allow is withheld (mirrors only with `all`; actions,
/// the gate on-change steps and commands share, with `actions` and `all`),
/// and a message left with none is refused.
pub fn gate(decision: Decision, require: Require) -> Decision {
    let Decision::Work(mut work) = decision else {
        return decision;
    };
    if let Err(reason) = require.may_fetch(&work.message.signature) {
        work.mirrors.clear();
        work.refused = Some(reason);
    }
    if let Err(reason) = require.may_act(&work.message.signature) {
        if !work.actions.is_empty() {
            work.actions.clear();
            work.refused = Some(reason.clone());
        }
        work.on_change_withheld = Some(reason);
    }
    match (&work.refused, work.mirrors.is_empty()) {
        (Some(reason), true) => Decision::Skip(Skip::Refused {
            message: work.message,
            reason: reason.clone(),
        }),
        _ => Decision::Work(work),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::tests::headers;

    fn mirror(repo: &str, path: &str) -> MirrorConfig {
        toml::from_str(&format!("repo = '{repo}'\npath = '{path}'")).unwrap()
    }

    fn decide_for(
        pairs: &[(&str, &str)],
        body: &str,
        seen: &Seen,
        mirrors: &[MirrorConfig],
        actions: &[Arc<Action>],
    ) -> Decision {
        let reading = crate::inbound::read(&headers(pairs), body.as_bytes());
        decide(reading, seen, mirrors.iter(), actions)
    }

    fn skipped(decision: Decision) -> Skip {
        match decision {
            Decision::Skip(skip) => skip,
            Decision::Work(work) => panic!("work: {work:?}"),
        }
    }

    #[test]
    fn messages_select_mirrors_by_name_or_glob() {
        let mirrors = [
            mirror("app", "/m/app"),
            mirror("team/*", "/m/team"),
            mirror("other", "/m/o"),
        ];
        let seen = Seen::default();
        let decide = |pairs: &[(&str, &str)]| decide_for(pairs, "", &seen, &mirrors, &[]);
        let Decision::Work(work) = decide(&[("repo", "app")]) else {
            panic!()
        };
        assert_eq!(
            (work.message.repo.as_deref(), work.mirrors),
            (Some("app"), vec![PathBuf::from("/m/app")])
        );
        let Decision::Work(work) = decide(&[("repo", "team/web")]) else {
            panic!()
        };
        assert_eq!(work.mirrors, [PathBuf::from("/m/team")]);
        assert_eq!(skipped(decide(&[("repo", "nobody")])), Skip::Unwanted);
        assert_eq!(skipped(decide(&[])), Skip::Unusable("empty message".into()));
    }

    /// One exec action matching `match_table` (inline TOML).
    fn action(match_table: &str) -> Vec<Arc<Action>> {
        let config: Vec<crate::action::config::ActionConfig> = toml::from_str::<toml::Table>(
            &format!("[[action]]\nname = 'pkg'\n[action.match]\n{match_table}\n[[action.step]]\nkind = 'exec'\nargv = ['/bin/true']\n"),
        )
        .unwrap()["action"]
            .clone()
            .try_into()
            .unwrap();
        (crate::action::config::compile(&config, &[]).unwrap())
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    #[test]
    fn the_signature_gate_withholds_actions_or_everything() {
        let mirrors = [mirror("app", "/m/app")];
        let actions = action("repo = ['app']");
        let seen = Seen::default();
        let unsigned = || decide_for(&[("repo", "app")], "", &seen, &mirrors, &actions);
        let Decision::Work(work) = gate(unsigned(), Require::None) else {
            panic!()
        };
        assert_eq!((work.mirrors.len(), work.actions.len()), (1, 1));
        let Decision::Work(work) = gate(unsigned(), Require::Actions) else {
            panic!()
        };
        assert_eq!((work.mirrors.len(), work.actions.len()), (1, 0));
        assert_eq!(work.refused.as_deref(), Some("unsigned"));
        let refused = |skip| matches!(skip, Skip::Refused { reason, .. } if reason == "unsigned");
        assert!(refused(skipped(gate(unsigned(), Require::All))));
        let only_action = decide_for(&[("repo", "app")], "", &seen, &[], &actions);
        assert!(refused(skipped(gate(only_action, Require::Actions))));
    }

    #[test]
    fn a_message_without_a_repository_can_still_start_an_action() {
        let actions = action("body = { package = 'foo*' }");
        let mirrors = [mirror("*", "/m/all")];
        let seen = Seen::default();
        let Decision::Work(work) = decide_for(&[], "package: foo-1\n", &seen, &mirrors, &actions)
        else {
            panic!()
        };
        assert!(work.mirrors.is_empty() && work.actions.len() == 1);
        let other = decide_for(&[], "package: bar\n", &seen, &mirrors, &actions);
        assert_eq!(skipped(other), Skip::Unwanted);
        let junk = decide_for(&[], "hello", &seen, &mirrors, &actions);
        assert!(matches!(skipped(junk), Skip::Unusable(_)));
    }

    #[test]
    fn answered_ids_are_duplicates_and_the_memory_is_bounded() {
        let mirrors = [mirror("app", "/m/app")];
        let mut seen = Seen::default();
        let message = [("repo", "app"), ("hookbus-id", "id-1")];
        assert!(matches!(
            decide_for(&message, "", &seen, &mirrors, &[]),
            Decision::Work(..)
        ));
        seen.insert("id-1".into());
        assert_eq!(
            skipped(decide_for(&message, "", &seen, &mirrors, &[])),
            Skip::Duplicate
        );
        for i in 0..SEEN_IDS {
            seen.insert(format!("other-{i}"));
        }
        assert!(!seen.contains("id-1") && seen.ids.len() == SEEN_IDS);
    }
}
