//! The fleet as shown: each host up, quiet (no presence for
//! [`QUIET_INTERVALS`] of its own intervals) or left (its last document said
//! "leaving"), and each mirror marked when its commit differs from the one
//! most hosts have for the same repository and branch (gitopper's diff
//! detection). Hosts that left do not vote; quiet hosts vote with what they
//! last said. Without a strict majority (a tie) nothing is marked.

use super::Known;
use crate::listen::ops::presence::LEAVING;
use serde::Serialize;
use std::collections::HashMap;

/// A host is quiet after this many of its presence intervals without one.
pub const QUIET_INTERVALS: u64 = 3;

/// One host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostView {
    /// Its name.
    pub host: String,
    /// `up`, `quiet` or `left`.
    pub status: String,
    /// Seconds since its last document was heard.
    pub age_s: u64,
    /// Its hookbus version.
    pub version: String,
    /// Its daemon's uptime when it was last heard.
    pub uptime_s: u64,
    /// Its mirrors.
    pub mirrors: Vec<MirrorView>,
}

/// One mirror of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorView {
    /// Its name (clone path).
    pub name: String,
    /// The repository.
    pub repo: String,
    /// The branch it follows, if any.
    pub branch: Option<String>,
    /// Its state.
    pub state: String,
    /// Its commit, if its mode has one.
    pub commit: Option<String>,
    /// The majority's commit, when this one differs from it.
    pub majority: Option<String>,
}

/// Every known host at `now_ms`, by name.
pub fn view(known: &Known, now_ms: u64) -> Vec<HostView> {
    let mut hosts: Vec<HostView> = known
        .hosts
        .values()
        .map(|heard| {
            let document = &heard.document;
            let age_ms = now_ms.saturating_sub(heard.heard_ms);
            let quiet_ms = QUIET_INTERVALS * document.interval_s.max(1) * 1000;
            let status = if document.status == LEAVING {
                "left"
            } else if age_ms > quiet_ms {
                "quiet"
            } else {
                "up"
            };
            HostView {
                host: document.host.clone(),
                status: status.into(),
                age_s: age_ms / 1000,
                version: document.version.clone(),
                uptime_s: document.uptime_s,
                mirrors: document
                    .mirrors
                    .iter()
                    .map(|mirror| MirrorView {
                        name: mirror.name.clone(),
                        repo: mirror.repo.clone(),
                        branch: mirror.branch.clone(),
                        state: mirror.state.clone(),
                        commit: mirror.commit.clone(),
                        majority: None,
                    })
                    .collect(),
            }
        })
        .collect();
    mark_differences(&mut hosts);
    hosts
}

/// Sets `majority` on every mirror whose commit is not the one most voting
/// hosts have for its repository and branch.
fn mark_differences(hosts: &mut [HostView]) {
    let mut votes: HashMap<(String, String), HashMap<String, usize>> = HashMap::new();
    let voting = |host: &HostView| host.status != "left";
    for host in hosts.iter().filter(|host| voting(host)) {
        for mirror in &host.mirrors {
            if let (Some(branch), Some(commit)) = (&mirror.branch, &mirror.commit) {
                let key = (mirror.repo.clone(), branch.clone());
                *votes
                    .entry(key)
                    .or_default()
                    .entry(commit.clone())
                    .or_default() += 1;
            }
        }
    }
    let majority: HashMap<(String, String), String> = votes
        .into_iter()
        .filter_map(|(key, counts)| {
            let best = counts.values().copied().max()?;
            let mut winners = counts.into_iter().filter(|(_, count)| *count == best);
            match (winners.next(), winners.next()) {
                (Some((commit, _)), None) => Some((key, commit)),
                _ => None,
            }
        })
        .collect();
    for host in hosts.iter_mut().filter(|host| host.status != "left") {
        for mirror in &mut host.mirrors {
            if let (Some(branch), Some(commit)) = (&mirror.branch, &mirror.commit) {
                let key = (mirror.repo.clone(), branch.clone());
                if let Some(best) = majority.get(&key).filter(|best| *best != commit) {
                    mirror.majority = Some(best.clone());
                }
            }
        }
    }
}

/// The hosts × mirrors table: one line per mirror (one per host without any).
pub fn table(hosts: &[HostView]) -> String {
    let mut rows = vec![[
        "HOST", "STATUS", "AGE", "MIRROR", "BRANCH", "STATE", "COMMIT", "NOTE",
    ]
    .map(String::from)
    .to_vec()];
    for host in hosts {
        let head = [host.host.clone(), host.status.clone(), age(host.age_s)];
        if host.mirrors.is_empty() {
            let rest = ["-", "-", "-", "-", ""].map(String::from);
            rows.push([&head[..], &rest[..]].concat());
        }
        for mirror in &host.mirrors {
            let note = match &mirror.majority {
                Some(best) => format!("differs: most hosts have {}", short(best)),
                None => String::new(),
            };
            let rest = [
                mirror.name.clone(),
                mirror.branch.clone().unwrap_or_else(|| "-".into()),
                mirror.state.clone(),
                mirror.commit.as_deref().map_or_else(|| "-".into(), short),
                note,
            ];
            rows.push([&head[..], &rest[..]].concat());
        }
    }
    crate::text::aligned(&rows)
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

/// `42s`, `5m`, `3h`, `2d`.
fn age(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds}s"),
        120..=7199 => format!("{}m", seconds / 60),
        7200..=172_799 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Heard;
    use crate::listen::ops::presence::{Document, MirrorPresence};

    fn heard(host: &str, status: &str, commit: &str, heard_ms: u64) -> Heard {
        Heard {
            document: Document {
                host: host.into(),
                version: "1".into(),
                status: status.into(),
                uptime_s: 5,
                sent: 0,
                interval_s: 10,
                mirrors: vec![MirrorPresence {
                    name: format!("/srv/{host}"),
                    repo: "app".into(),
                    mode: "checkout".into(),
                    branch: Some("master".into()),
                    state: "OK".into(),
                    commit: Some(commit.into()),
                    changed_at: 0,
                }],
            },
            heard_ms,
            key: None,
        }
    }

    #[test]
    fn quiet_and_left_hosts_and_the_odd_commit_out_are_marked() {
        let mut known = Known::default();
        let now = 1_000_000;
        for (host, status, commit, at) in [
            ("a", "up", "new", now - 1000),
            ("b", "up", "new", now - 31_000),
            ("c", "up", "old", now - 2000),
            ("d", LEAVING, "older", now - 2000),
        ] {
            known
                .hosts
                .insert(host.into(), heard(host, status, commit, at));
        }
        let hosts = view(&known, now);
        let status: Vec<&str> = hosts.iter().map(|h| h.status.as_str()).collect();
        assert_eq!(status, ["up", "quiet", "up", "left"]);
        let majority: Vec<Option<&str>> = hosts
            .iter()
            .map(|h| h.mirrors[0].majority.as_deref())
            .collect();
        assert_eq!(majority, [None, None, Some("new"), None]);
        let text = table(&hosts);
        assert!(text.starts_with("HOST  STATUS  AGE"), "{text}");
        assert!(text.contains("differs: most hosts have new"), "{text}");
        assert!(text.contains("b     quiet   31s"), "{text}");
    }

    #[test]
    fn a_tie_marks_nothing() {
        let mut known = Known::default();
        known.hosts.insert("a".into(), heard("a", "up", "x", 0));
        known.hosts.insert("b".into(), heard("b", "up", "y", 0));
        assert!(view(&known, 0)
            .iter()
            .all(|host| host.mirrors[0].majority.is_none()));
    }
}
