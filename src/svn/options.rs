//! The `[svn]` table of the config: where svnlook is, its locale, and the
//! layout rules.

use super::layout::LayoutRule;
use serde::Deserialize;
use std::path::PathBuf;

/// Options of the Subversion side (`[svn]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SvnOptions {
    /// Absolute path of `svnlook`: svn runs hooks with an empty environment (no PATH).
    pub svnlook: PathBuf,
    /// `LC_ALL` for svnlook: in the C locale it mangles non-ASCII text and
    /// `svnlook diff` fails on non-ASCII paths.
    pub locale: String,
    /// How changed paths map to projects and refnames, tried in order; empty
    /// means [`super::layout::default_rules`].
    #[serde(rename = "layout")]
    pub layouts: Vec<LayoutRule>,
}

impl Default for SvnOptions {
    fn default() -> Self {
        SvnOptions {
            svnlook: PathBuf::from("/usr/bin/svnlook"),
            locale: "C.UTF-8".to_string(),
            layouts: Vec::new(),
        }
    }
}
