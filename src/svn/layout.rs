//! Layout rules: which project and refname a repository path belongs to.
//!
//! A rule is a regex matched at the start of a path (directories end in `/`)
//! whose match is the top directory of a branch; its named captures fill a
//! refname template. The first matching rule wins.

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Deserialize;

/// One `[[svn.layout]]` rule: a regex for the top of a branch directory and the
/// refname it stands for.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LayoutRule {
    /// Matched at the start of a repository path (directories end in `/`); named
    /// captures (`project`, `branch`, `tag`, …) fill the refname template. End it
    /// with `/` so that `trunk/` does not match `trunk2/`.
    pub pattern: String,
    /// Refname template, e.g. `refs/heads/{branch}`.
    pub refname: String,
}

/// The refname of paths that no layout rule matches (`projA/`, `projA/branches/`,
/// files at the top), so that nothing a revision changed goes unannounced.
pub const UNMATCHED_REFNAME: &str = "refs/svn/unmatched";

/// The rules used when the config has none: `trunk`, `branches/NAME` and
/// `tags/NAME`, at the top of the repository or under a project directory.
pub fn default_rules() -> Vec<LayoutRule> {
    let rule = |pattern: &str, refname: &str| LayoutRule {
        pattern: pattern.to_string(),
        refname: refname.to_string(),
    };
    // Top-level rules first, so `branches/trunk/` is a branch, not a project.
    vec![
        rule("trunk/", "refs/heads/trunk"),
        rule("branches/(?P<branch>[^/]+)/", "refs/heads/{branch}"),
        rule("tags/(?P<tag>[^/]+)/", "refs/tags/{tag}"),
        rule("(?P<project>[^/]+)/trunk/", "refs/heads/trunk"),
        rule(
            "(?P<project>[^/]+)/branches/(?P<branch>[^/]+)/",
            "refs/heads/{branch}",
        ),
        rule("(?P<project>[^/]+)/tags/(?P<tag>[^/]+)/", "refs/tags/{tag}"),
    ]
}

/// Where one path belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The `project` capture; `None` for top-level layouts and unmatched paths.
    pub project: Option<String>,
    /// The refname the path belongs to.
    pub refname: String,
    /// True when the path is the branch directory itself (its creation or
    /// deletion creates or deletes the branch).
    pub is_root: bool,
}

struct CompiledRule {
    regex: Regex,
    refname: String,
}

/// Compiled layout rules.
pub struct Layouts {
    rules: Vec<CompiledRule>,
}

impl Layouts {
    /// Compiles `rules` (the defaults when empty), checking that every refname
    /// placeholder is a capture of its pattern.
    pub fn compile(rules: &[LayoutRule]) -> Result<Layouts> {
        let defaults;
        let rules = if rules.is_empty() {
            defaults = default_rules();
            &defaults
        } else {
            rules
        };
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                compile_rule(rule).with_context(|| format!("[[svn.layout]] number {}", index + 1))
            })
            .collect::<Result<_>>()?;
        Ok(Layouts { rules: compiled })
    }

    /// Places a path (with or without a trailing `/`).
    pub fn place(&self, path: &str) -> Placement {
        let dir_form = format!("{}/", path.trim_matches('/'));
        for rule in &self.rules {
            let Some(captures) = rule.regex.captures(&dir_form) else {
                continue;
            };
            let mut refname = rule.refname.clone();
            for name in rule.regex.capture_names().flatten() {
                let value = captures.name(name).map_or("", |m| m.as_str());
                refname = refname.replace(&format!("{{{name}}}"), value);
            }
            return Placement {
                project: captures.name("project").map(|m| m.as_str().to_string()),
                refname,
                is_root: captures[0].len() == dir_form.len(),
            };
        }
        Placement {
            project: None,
            refname: UNMATCHED_REFNAME.to_string(),
            is_root: false,
        }
    }
}

fn compile_rule(rule: &LayoutRule) -> Result<CompiledRule> {
    // Anchored at the start so a rule names the top of a branch, never a subdirectory.
    let regex = crate::pattern::compile(&format!("^(?:{})", rule.pattern))
        .with_context(|| format!("bad pattern {:?}", rule.pattern))?;
    let names: Vec<&str> = regex.capture_names().flatten().collect();
    let mut rest = rule.refname.as_str();
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            bail!("refname {:?} has an unclosed {{", rule.refname);
        };
        let name = &rest[start + 1..start + end];
        if !names.contains(&name) {
            bail!(
                "refname {:?} uses {{{name}}} but the pattern has no (?P<{name}>...) capture",
                rule.refname
            );
        }
        rest = &rest[start + end + 1..];
    }
    if !rule.refname.starts_with("refs/") {
        bail!("refname {:?} must start with refs/", rule.refname);
    }
    Ok(CompiledRule {
        regex,
        refname: rule.refname.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(path: &str) -> (Option<String>, String, bool) {
        let placement = Layouts::compile(&[]).unwrap().place(path);
        (placement.project, placement.refname, placement.is_root)
    }

    #[test]
    fn default_layouts_cover_projects_and_the_top_level() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            place("projA/trunk/src/main.c"),
            (some("projA"), "refs/heads/trunk".into(), false)
        );
        assert_eq!(
            place("projA/branches/x/"),
            (some("projA"), "refs/heads/x".into(), true)
        );
        assert_eq!(
            place("projA/tags/v1.0"),
            (some("projA"), "refs/tags/v1.0".into(), true)
        );
        assert_eq!(place("trunk/a"), (None, "refs/heads/trunk".into(), false));
        assert_eq!(
            place("branches/trunk/a"),
            (None, "refs/heads/trunk".into(), false)
        );
        assert_eq!(
            place("projA/branches/"),
            (None, UNMATCHED_REFNAME.into(), false)
        );
        assert_eq!(
            place("projA/trunk2/x"),
            (None, UNMATCHED_REFNAME.into(), false)
        );
    }

    #[test]
    fn bad_rules_are_config_errors_naming_the_fix() {
        let rule = |pattern: &str, refname: &str| LayoutRule {
            pattern: pattern.into(),
            refname: refname.into(),
        };
        let err = |rules: &[LayoutRule]| format!("{:#}", Layouts::compile(rules).err().unwrap());
        assert!(err(&[rule("(", "refs/heads/x")]).contains("bad pattern"));
        assert!(err(&[rule("b/(?P<name>[^/]+)/", "refs/heads/{branch}")])
            .contains("has no (?P<branch>...) capture"));
        assert!(err(&[rule("trunk/", "trunk")]).contains("must start with refs/"));
    }
}
