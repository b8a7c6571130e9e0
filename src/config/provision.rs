//! The provisioning keys of a `[[mirror]]`, as gitopper has them: `sparse`
//! (only some paths published), `[[mirror.link]]` (local paths pointing into
//! the tree), `on_change` steps and their `on_change_paths`. All need a
//! published tree (modes `checkout` and `in-place`). Checked here, when the
//! config is read; the listener does the work.

use super::mirror::{absolute, MirrorConfig};
use crate::action::config::{StepConfig, StepKind};
use crate::action::step::{Kind, Step};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Component, PathBuf};

/// One `[[mirror.link]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// The path made a symlink (absolute), e.g. `/etc/grafana`.
    pub local: PathBuf,
    /// Where it points, inside the published tree, e.g. `grafana/etc`.
    pub path: PathBuf,
    /// Move a real file or directory at `local` aside instead of refusing.
    #[serde(default)]
    pub replace: bool,
}

/// Checks the links against their mirror.
fn check_links(config: &MirrorConfig) -> Result<()> {
    let Some(tree) = config.tree() else {
        return Ok(());
    };
    for link in &config.links {
        absolute("[[mirror.link]] local", &link.local)?;
        let inside = link
            .path
            .components()
            .all(|part| matches!(part, Component::Normal(_)));
        if link.path.as_os_str().is_empty() || !inside {
            bail!(
                "[[mirror.link]] path {}: give a path inside the published tree, e.g. \"etc\", without /, . or ..",
                link.path.display()
            );
        }
        let text = link.path.to_string_lossy();
        // A link may name a sparse directory itself, or one above it.
        let above = (config.sparse.iter()).any(|entry| entry.starts_with(&format!("{text}/")));
        if !config.publishes(&text) && !above {
            bail!(
                "[[mirror.link]] path {text} is not under sparse {:?}: the link would point at nothing",
                config.sparse
            );
        }
        for place in [tree, config.path.as_path()] {
            if link.local.starts_with(place) || place.starts_with(&link.local) {
                bail!(
                    "[[mirror.link]] local {} and {} must not contain each other",
                    link.local.display(),
                    place.display()
                );
            }
        }
    }
    Ok(())
}

/// Checks a mirror's `sparse`, `on_change`, `on_change_paths` and links.
pub(super) fn validate(config: &MirrorConfig) -> Result<()> {
    let used = [
        ("sparse", !config.sparse.is_empty()),
        ("on_change", !config.on_change.is_empty()),
        ("on_change_paths", !config.on_change_paths.is_empty()),
        ("[[mirror.link]]", !config.links.is_empty()),
    ];
    if config.tree().is_none() {
        if let Some((key, _)) = used.iter().find(|(_, given)| *given) {
            bail!(
                "{key} needs a published tree: mode checkout or in-place, not {}",
                config.mode.as_str()
            );
        }
    }
    check_sparse(&config.sparse)?;
    on_change_steps(config)?;
    check_links(config)
}

/// Checks `sparse`: relative paths of the tree, `dir/` or a file, literal.
fn check_sparse(sparse: &[String]) -> Result<()> {
    for entry in sparse {
        let trimmed = entry.strip_suffix('/').unwrap_or(entry);
        let literal = !entry
            .chars()
            .any(|c| c.is_control() || "*?[]\\!#:".contains(c));
        let normal = !trimmed.is_empty()
            && trimmed
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !literal || !normal || entry.starts_with(['/', '-']) {
            bail!(
                "sparse {entry:?}: give a path inside the tree, a directory as \"dir/\" or a file, without wildcards, . or .."
            );
        }
    }
    Ok(())
}

/// True when `entry` (a sparse entry) covers `path` (a file of the tree).
pub(super) fn covers(entry: &str, path: &str) -> bool {
    match entry.strip_suffix('/') {
        Some(dir) => path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/')),
        None => {
            path == entry
                || path
                    .strip_prefix(entry)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

/// The `on_change` steps compiled (exec steps as the mirror's user) and the
/// `on_change_paths` globs: checked when the config is read, built again by
/// the listener.
pub fn on_change_steps(config: &MirrorConfig) -> Result<(Vec<Step>, Vec<glob::Pattern>)> {
    let mut steps = Vec::new();
    for (index, step) in config.on_change.iter().enumerate() {
        let label = format!("on_change step {}", index + 1);
        no_mirror_step(step).context(label.clone())?;
        let mut step = Step::compile(step, &[], &label).context(label)?;
        as_mirrors_user(&mut step, config.user.as_deref());
        steps.push(step);
    }
    let paths = (config.on_change_paths.iter())
        .map(|glob| {
            glob::Pattern::new(glob).with_context(|| format!("on_change_paths: bad glob {glob:?}"))
        })
        .collect::<Result<_>>()?;
    if steps.is_empty() && !config.on_change_paths.is_empty() {
        bail!("on_change_paths without on_change: give the steps to run");
    }
    Ok((steps, paths))
}

fn no_mirror_step(step: &StepConfig) -> Result<()> {
    if step.kind == StepKind::Mirror {
        bail!("an on_change step is exec, http or publish: the mirror is what changed");
    }
    for handler in step.on_success.iter().chain(&step.on_failure) {
        no_mirror_step(handler)?;
    }
    Ok(())
}

/// Exec steps without a `user` run as the mirror's.
fn as_mirrors_user(step: &mut Step, user: Option<&str>) {
    if let Kind::Exec(plan) = &mut step.kind {
        if plan.user.is_none() {
            plan.user = user.map(str::to_string);
        }
    }
    for handler in step.on_success.iter_mut().chain(step.on_failure.iter_mut()) {
        as_mirrors_user(handler, user);
    }
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

    #[test]
    fn entries_are_literal_paths_inside_the_tree() {
        assert!(check_sparse(&["grafana/".into(), "etc/a.conf".into()]).is_ok());
        for bad in [
            "", "/etc", "../x", "a/../b", "a//b", "*.conf", "-x", "./a", "/",
        ] {
            assert!(check_sparse(&[bad.to_string()]).is_err(), "{bad:?}");
        }
        assert!(covers("grafana/", "grafana/etc/x.ini"));
        assert!(!covers("grafana/", "grafana.txt"));
        assert!(!covers("grafana/", "grafana"));
        assert!(covers("a.txt", "a.txt"));
        assert!(covers("etc", "etc/x"));
        assert!(!covers("etc", "etc2/x"));
    }

    #[test]
    fn exec_steps_run_as_the_mirrors_user_unless_they_name_one() {
        let config: MirrorConfig = toml::from_str(
            "repo = 'a'\npath = '/m/a'\nmode = 'in-place'\nuser = 'deploy'\n\
             [[on_change]]\nkind = 'exec'\nargv = ['/bin/true']\n\
             [on_change.on_failure]\nkind = 'exec'\nargv = ['/bin/false']\n\
             [[on_change]]\nkind = 'exec'\nargv = ['/bin/true']\nuser = 'root'\n",
        )
        .unwrap();
        let (steps, _) = on_change_steps(&config).unwrap();
        let user = |step: &Step| match &step.kind {
            Kind::Exec(plan) => plan.user.clone(),
            _ => unreachable!(),
        };
        assert_eq!(user(&steps[0]).as_deref(), Some("deploy"));
        let handler = steps[0].on_failure.as_deref().unwrap();
        assert_eq!(user(handler).as_deref(), Some("deploy"));
        assert_eq!(user(&steps[1]).as_deref(), Some("root"));
    }
}
