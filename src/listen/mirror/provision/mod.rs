//! What a deploy host does with a published tree besides publishing it, as
//! gitopper does: [`sparse`] publishes only some paths, [`links`] makes local
//! paths point into the tree, [`onchange`] runs steps when the published
//! commit changes. All three need a published tree: modes `checkout` (the
//! target) and `in-place` (the clone's work tree).

use crate::listen::config::{MirrorConfig, Mode};
use anyhow::{bail, Result};
use std::path::Path;

pub mod links;
pub mod onchange;
pub mod sparse;

/// The published tree's root: the target (checkout) or the clone (in-place).
pub fn tree(config: &MirrorConfig) -> Option<&Path> {
    match config.mode {
        Mode::Checkout => config.target.as_deref(),
        Mode::InPlace => Some(&config.path),
        Mode::Fetch | Mode::Branches => None,
    }
}

/// Checks a mirror's `sparse`, `on_change`, `on_change_paths` and links.
pub fn validate(config: &MirrorConfig) -> Result<()> {
    let used = [
        ("sparse", !config.sparse.is_empty()),
        ("on_change", !config.on_change.is_empty()),
        ("on_change_paths", !config.on_change_paths.is_empty()),
        ("[[mirror.link]]", !config.links.is_empty()),
    ];
    if tree(config).is_none() {
        if let Some((key, _)) = used.iter().find(|(_, given)| *given) {
            bail!(
                "{key} needs a published tree: mode checkout or in-place, not {}",
                config.mode.as_str()
            );
        }
    }
    sparse::validate(&config.sparse)?;
    onchange::validate(config)?;
    links::validate(config)
}

/// True when `path` (of the tree) is published under `sparse` (empty: all).
pub fn published(sparse: &[String], path: &str) -> bool {
    sparse.is_empty() || sparse.iter().any(|entry| sparse::covers(entry, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(extra: &str) -> Result<MirrorConfig> {
        let text =
            format!("repo = 'a'\npath = '/m/a'\nmode = 'checkout'\ntarget = '/t/a'\n{extra}");
        let config: MirrorConfig = toml::from_str(&text)?;
        validate(&config)?;
        Ok(config)
    }

    #[test]
    fn provisioning_keys_are_checked_where_they_are_read() {
        let good = "sparse = ['grafana/']\non_change_paths = ['grafana/**']\n\
            [[on_change]]\nkind = 'exec'\nargv = ['/bin/true', '{oldrev}', '{newrev}', '{paths}']\n\
            [[link]]\nlocal = '/etc/grafana'\npath = 'grafana/etc'\n";
        assert!(mirror(good).is_ok());
        let refused = |extra: &str, says: &str| {
            let error = format!("{:#}", mirror(extra).unwrap_err());
            assert!(error.contains(says), "{extra}: {error}");
        };
        refused(
            "[[on_change]]\nkind = 'mirror'\nmirror = '/m/a'",
            "exec, http or publish",
        );
        refused(
            "[[on_change]]\nkind = 'exec'\nargv = ['/bin/x', '{nope}']",
            "unknown name",
        );
        refused("on_change_paths = ['etc/**']", "without on_change");
        refused("sparse = ['../x']", "without wildcards");
        refused("[[link]]\nlocal = 'etc'\npath = 'x'", "absolute");
        refused(
            "[[link]]\nlocal = '/etc/x'\npath = '../x'",
            "inside the published tree",
        );
        refused(
            "[[link]]\nlocal = '/t/a/x'\npath = 'x'",
            "must not contain each other",
        );
        refused(
            "sparse = ['a/']\n[[link]]\nlocal = '/etc/x'\npath = 'b'",
            "not under sparse",
        );
        let fetch: MirrorConfig =
            toml::from_str("repo = 'a'\npath = '/m/a'\nsparse = ['a/']").unwrap();
        let error = format!("{:#}", validate(&fetch).unwrap_err());
        assert!(error.contains("mode checkout or in-place"), "{error}");
    }
}
