//! What a deploy host does with a published tree besides publishing it, as
//! gitopper does: [`sparse`] publishes only some paths, [`links`] makes local
//! paths point into the tree, [`onchange`] runs steps when the published
//! commit changes. All three need a published tree: modes `checkout` (the
//! target) and `in-place` (the clone's work tree).

use super::config::{MirrorConfig, Mode};
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
