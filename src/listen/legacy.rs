//! The stomp-git daemon's part of a seed config (`listen-topic`,
//! `report-topic`, `repo-list` with `user`/`repo`/`target`/`mode`) as
//! `[listen]` and `[[mirror]]` tables; `hookbus config import-legacy` reads
//! the file.

use crate::text::toml_string;
use std::fmt::Write;
use yaml_rust2::Yaml;

/// One `repo-list` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyMirror {
    /// The entry's key: the repository name messages carry.
    pub name: String,
    /// The account git ran as.
    pub user: Option<String>,
    /// The local clone (`repo:`).
    pub path: Option<String>,
    /// Where trusting and puppetmaster modes checked out.
    pub target: Option<String>,
    /// The seed's mode name: normal, trusting, dangerous, puppetmaster.
    pub mode: Option<String>,
}

/// Reads `repo-list`.
pub fn mirrors(value: &Yaml, scalar: impl Fn(&Yaml) -> String) -> Vec<LegacyMirror> {
    let Yaml::Hash(map) = value else {
        return Vec::new();
    };
    map.iter()
        .map(|(name, entry)| {
            let field = |key: &str| match entry {
                Yaml::Hash(fields) => fields
                    .get(&Yaml::String(key.to_string()))
                    .map(&scalar)
                    .filter(|text| !text.is_empty()),
                _ => None,
            };
            LegacyMirror {
                name: scalar(name),
                user: field("user"),
                path: field("repo"),
                target: field("target"),
                mode: field("mode"),
            }
        })
        .collect()
}

/// hookbus's mode for a seed mode name.
fn mode(seed: Option<&str>) -> Option<&'static str> {
    match seed.unwrap_or("normal") {
        "normal" => Some("fetch"),
        "trusting" => Some("checkout"),
        "dangerous" => Some("in-place"),
        "puppetmaster" => Some("branches"),
        _ => None,
    }
}

/// The `[listen]` table and one `[[mirror]]` per usable entry; entries that
/// cannot be converted become comments saying why.
pub fn to_toml(topic: &str, report: Option<&str>, mirrors: &[LegacyMirror]) -> String {
    let mut out = String::from(
        "# listen-topic: what `hookbus listen` subscribes to on this deploy host.\n[listen]\n",
    );
    let _ = writeln!(out, "subscribe = [{}]", toml_string(topic));
    if let Some(report) = report {
        let _ = writeln!(out, "report = {}", toml_string(report));
    }
    out.push_str(
        "# A durable subscription (one name per host) keeps what is published while\n\
         # the host is down; the seed had none.\n# durable = \"deploy-HOSTNAME\"\n\n",
    );
    for mirror in mirrors {
        let (Some(path), Some(mode)) = (&mirror.path, mode(mirror.mode.as_deref())) else {
            let _ = writeln!(
                out,
                "# repo-list entry {:?} not converted: it needs a repo path and one of the modes normal, trusting, dangerous, puppetmaster\n",
                mirror.name
            );
            continue;
        };
        let seed_mode = mirror.mode.as_deref().unwrap_or("normal");
        let _ = writeln!(out, "# seed mode {seed_mode}\n[[mirror]]");
        let _ = writeln!(
            out,
            "name = {}\nrepo = {}\npath = {}\nmode = \"{mode}\"",
            toml_string(&mirror.name),
            toml_string(&mirror.name),
            toml_string(path)
        );
        if let Some(user) = &mirror.user {
            let _ = writeln!(out, "user = {}", toml_string(user));
        }
        match (&mirror.target, mode) {
            (Some(target), "checkout" | "branches") => {
                let _ = writeln!(out, "target = {}", toml_string(target));
            }
            (None, "checkout" | "branches") => {
                out.push_str(
                    "# the seed gave no target; set one before use\n# target = \"/srv/...\"\n",
                );
            }
            _ => {}
        }
        if matches!(mode, "checkout" | "in-place") {
            out.push_str("branch = \"master\"  # the seed always used origin/master\n");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_modes_map_to_hookbus_modes() {
        assert_eq!(mode(None), Some("fetch"));
        assert_eq!(mode(Some("trusting")), Some("checkout"));
        assert_eq!(mode(Some("dangerous")), Some("in-place"));
        assert_eq!(mode(Some("puppetmaster")), Some("branches"));
        assert_eq!(mode(Some("reckless")), None);
    }
}
