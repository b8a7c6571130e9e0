//! `[listen] group`: listeners that share one subscription for their actions,
//! so that the broker hands each message to one member
//! (a shared subscription: [`crate::bus::GroupSpec`]), and a member that dies before acknowledging
//! leaves it to another. A member with mirrors keeps its own subscription for
//! them on the same connection: what comes on its own subscription updates
//! mirrors only, what comes on the group's runs actions only, and the two are
//! de-duplicated apart (the same message comes on both).

use crate::action::Action;
use crate::bus::GroupSpec;
use crate::config::listen::ListenConfig;
use crate::config::Config;
use crate::listen::mirror::Mirror;
use crate::listen::plan::Seen;
use anyhow::{bail, Result};
use std::sync::Arc;

/// The group's share of the subscription, if `listen` names a group.
pub(in crate::listen) fn spec(listen: &ListenConfig, config: &Config) -> Result<Option<GroupSpec>> {
    let Some(name) = &listen.group else {
        return Ok(None);
    };
    if config.compiled_actions().is_empty() {
        bail!("[listen] group {name:?}: this listener has no [[action]]: as a member it would take the group's messages and run nothing; give every member the same [[action]]s, or remove group");
    }
    let only = config.mirrors.is_empty();
    if only && listen.durable.is_some() {
        eprintln!("hookbus: listen: durable is not used: with group and no [[mirror]], the group's subscription is the only one (and it keeps messages while every member is away)");
    }
    Ok(Some(GroupSpec {
        name: name.clone(),
        // As many unacknowledged as can run at once: a busy member leaves
        // the rest to the others.
        prefetch: listen.action_workers,
        only,
    }))
}

/// What a message may ask of this host: on the group's subscription
/// (`shared`) actions only; on its own, mirrors only when it is a member of a
/// group (`grouped`), else both.
pub(in crate::listen) fn wanted<'a>(
    shared: bool,
    grouped: bool,
    mirrors: &'a [Mirror],
    actions: &'a [Arc<Action>],
) -> (&'a [Mirror], &'a [Arc<Action>]) {
    match (shared, grouped) {
        (true, _) => (&[], actions),
        (false, true) => (mirrors, &[]),
        (false, false) => (mirrors, actions),
    }
}

/// The answered messages of each subscription, apart: a message answered
/// on one is no duplicate on the other.
#[derive(Debug, Default)]
pub(in crate::listen) struct Answered {
    own: Seen,
    shared: Seen,
}

impl Answered {
    /// The answered messages of the group's subscription (`shared`) or of
    /// this host's own.
    pub(in crate::listen) fn of(&self, shared: bool) -> &Seen {
        if shared {
            &self.shared
        } else {
            &self.own
        }
    }

    /// Remembers a message answered on that subscription.
    pub(in crate::listen) fn insert(&mut self, shared: bool, id: String) {
        match shared {
            true => self.shared.insert(id),
            false => self.own.insert(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, rest: &str) -> Result<Config> {
        let text = format!("[listen]\nsubscribe = ['/topic/VirtualTopic.git']\n{listen}\n{rest}");
        Config::parse(&text)
    }

    const ACTION: &str =
        "[[action]]\nname = 'ci'\n[[action.step]]\nkind = 'exec'\nargv = ['/bin/true']\n";
    const MIRROR: &str = "[[mirror]]\nrepo = 'a'\npath = '/m/a'\n";

    fn group_of(listen: &str, rest: &str) -> Result<Option<GroupSpec>> {
        let config = config(listen, rest)?;
        spec(config.listen.as_ref().unwrap(), &config)
    }

    #[test]
    fn a_member_needs_actions_and_a_plain_name_and_shares_topics_only() {
        let member = group_of("group = 'ci'\naction_workers = 3", ACTION).unwrap();
        let member = member.unwrap();
        assert_eq!((member.name.as_str(), member.prefetch), ("ci", 3));
        assert!(member.only, "no mirror: no subscription of its own");
        let with_mirror = group_of("group = 'ci'", &format!("{ACTION}{MIRROR}"));
        assert!(!with_mirror.unwrap().unwrap().only);
        assert!(group_of("", ACTION).unwrap().is_none());
        let idle = group_of("group = 'ci'", MIRROR).unwrap_err();
        assert!(format!("{idle:#}").contains("no [[action]]"), "{idle:#}");
        let dotted = config("group = 'c.i'", ACTION).unwrap_err();
        assert!(
            format!("{dotted:#}").contains("group \"c.i\""),
            "{dotted:#}"
        );
        let queue = config("group = 'ci'\nsubscribe = ['/queue/x']", ACTION);
        assert!(queue.is_err());
    }

    #[test]
    fn the_groups_messages_run_actions_and_a_members_own_update_mirrors() {
        let config = config("", &format!("{ACTION}{MIRROR}")).unwrap();
        let actions: Vec<Arc<Action>> =
            (config.compiled_actions().iter().cloned().map(Arc::new)).collect();
        let mirrors = [Mirror {
            config: config.mirrors[0].clone(),
            git: crate::listen::mirror::git::Git {
                timeout: std::time::Duration::from_secs(1),
                account: None,
            },
            on_change: None,
        }];
        let counts = |(m, a): (&[Mirror], &[Arc<Action>])| (m.len(), a.len());
        assert_eq!(counts(wanted(true, true, &mirrors, &actions)), (0, 1));
        assert_eq!(counts(wanted(false, true, &mirrors, &actions)), (1, 0));
        assert_eq!(counts(wanted(false, false, &mirrors, &actions)), (1, 1));
        let mut answered = Answered::default();
        answered.insert(true, "id".into());
        assert!(answered.of(true).contains("id") && !answered.of(false).contains("id"));
    }
}
