//! One config for a whole fleet: which `[[mirror]]`s a host runs (`hosts`
//! globs against `[listen] host`) and what each is called there. Names are
//! settled once, here, so ctl, status, reports, metrics, presence, fleet and
//! the `mirror` action step all use the same one.

use super::listen::{validate, ListenConfig};
use super::mirror::MirrorConfig;
use anyhow::{bail, Context, Result};

/// True when a `hosts` list (globs; empty: every host) takes `host`.
pub fn for_host(hosts: &[String], host: &str) -> bool {
    hosts.is_empty()
        || hosts
            .iter()
            .any(|glob| glob::Pattern::new(glob).is_ok_and(|pattern| pattern.matches(host)))
}

/// Checks a `hosts` key as written: present means at least one valid glob.
pub fn check_hosts(hosts: Option<&[String]>) -> Result<()> {
    let Some(hosts) = hosts else {
        return Ok(());
    };
    if hosts.is_empty() {
        bail!("hosts = [] is for no host: remove the key for every host, or name some, e.g. [\"web*\"]");
    }
    for glob in hosts {
        glob::Pattern::new(glob).with_context(|| format!("hosts: bad glob {glob:?}"))?;
        if glob.trim().is_empty() || glob.chars().any(|c| c.is_control() || c.is_whitespace()) {
            bail!("hosts: {glob:?} is not a host name or glob");
        }
    }
    Ok(())
}

/// The mirrors `host` runs, named: every mirror as written is checked, then
/// those whose `hosts` take `host` get their names settled and are checked
/// together (no two may share a name, a clone or a target on one host).
pub fn select(
    listen: Option<&ListenConfig>,
    written: &[MirrorConfig],
    host: &str,
) -> Result<Vec<MirrorConfig>> {
    for (index, mirror) in written.iter().enumerate() {
        let context = || format!("[[mirror]] number {} (repo {:?})", index + 1, mirror.repo);
        mirror.validate().with_context(context)?;
        check_hosts(mirror.hosts.as_deref()).with_context(context)?;
    }
    let mut chosen: Vec<MirrorConfig> = (written.iter())
        .filter(|mirror| for_host(mirror.hosts.as_deref().unwrap_or_default(), host))
        .cloned()
        .collect();
    settle_names(&mut chosen)?;
    validate(listen, &chosen).with_context(|| format!("on host {host:?}"))?;
    Ok(chosen)
}

/// Gives every mirror its name: `name` when written, else its `repo` when that
/// is one repository (no glob characters) no other mirror here follows, else
/// its clone path. Two mirrors with one name are an error naming both.
pub fn settle_names(mirrors: &mut [MirrorConfig]) -> Result<()> {
    let repos: Vec<String> = mirrors.iter().map(|m| m.repo.clone()).collect();
    for mirror in mirrors.iter_mut() {
        if mirror.name.is_some() {
            continue;
        }
        let literal = !mirror.repo.contains(['*', '?', '[', ']']);
        let unique = repos.iter().filter(|repo| **repo == mirror.repo).count() == 1;
        mirror.name = Some(match literal && unique {
            true => mirror.repo.clone(),
            false => mirror.path.display().to_string(),
        });
    }
    for (index, mirror) in mirrors.iter().enumerate() {
        let twin = mirrors[..index]
            .iter()
            .find(|other| other.name == mirror.name || other.path == mirror.path);
        if let Some(twin) = twin {
            let what = match twin.path == mirror.path {
                true => "the clone path",
                false => "the name",
            };
            bail!(
                "two mirrors on one host share {what}: repo {:?} at {} and repo {:?} at {} are both {:?}; give one a `name` (or another path), or `hosts` that keep them apart",
                twin.repo,
                twin.path.display(),
                mirror.repo,
                mirror.path.display(),
                match twin.path == mirror.path {
                    true => twin.path.display().to_string(),
                    false => mirror.name(),
                }
            );
        }
    }
    Ok(())
}

/// The mirror an operator means by `wanted` (`hookbus ctl`): its name, else
/// its repo when one mirror here follows it, else its clone path. An
/// ambiguous repo is refused with the names to use instead. The one lookup
/// for `hookbus ctl` and the `mirror` action step alike.
pub fn resolve<'a, I>(wanted: &str, mirrors: I) -> Result<&'a MirrorConfig, String>
where
    I: IntoIterator<Item = &'a MirrorConfig>,
    I::IntoIter: Clone,
{
    let mirrors = mirrors.into_iter();
    if let Some(named) = mirrors.clone().find(|mirror| mirror.name() == wanted) {
        return Ok(named);
    }
    let by_repo: Vec<&MirrorConfig> = mirrors.clone().filter(|m| m.repo == wanted).collect();
    match by_repo[..] {
        [one] => return Ok(one),
        [] => {}
        _ => {
            let names: Vec<String> = by_repo.iter().map(|mirror| mirror.name()).collect();
            return Err(format!(
                "{wanted:?} is the repo of {} mirrors: name one of {}",
                names.len(),
                names.join(", ")
            ));
        }
    }
    (mirrors.into_iter())
        .find(|mirror| mirror.path == std::path::Path::new(wanted))
        .ok_or_else(|| format!("there is no mirror {wanted:?}: `hookbus ctl status` lists them"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn mirrors(text: &str) -> Vec<MirrorConfig> {
        #[derive(serde::Deserialize)]
        struct File {
            mirror: Vec<MirrorConfig>,
        }
        toml::from_str::<File>(text).unwrap().mirror
    }

    #[test]
    fn names_default_to_a_unique_literal_repo_else_the_path() {
        let mut all = mirrors(
            "[[mirror]]\nrepo = 'site'\npath = '/m/site'\n\
             [[mirror]]\nrepo = 'app'\npath = '/m/app1'\n\
             [[mirror]]\nrepo = 'app'\npath = '/m/app2'\n\
             [[mirror]]\nrepo = 'lib*'\npath = '/m/libs'\n\
             [[mirror]]\nrepo = 'x'\npath = '/m/x'\nname = 'named'\n",
        );
        settle_names(&mut all).unwrap();
        let names: Vec<String> = all.iter().map(MirrorConfig::name).collect();
        assert_eq!(names, ["site", "/m/app1", "/m/app2", "/m/libs", "named"]);
    }

    #[test]
    fn ctl_takes_a_name_a_unique_repo_or_a_path() {
        let mut all = mirrors(
            "[[mirror]]\nrepo = 'app'\npath = '/m/app1'\nname = 'blue'\n\
             [[mirror]]\nrepo = 'app'\npath = '/m/app2'\nname = 'green'\n\
             [[mirror]]\nrepo = 'site'\npath = '/m/site'\nname = 'www'\n",
        );
        settle_names(&mut all).unwrap();
        assert_eq!(resolve("green", &all).unwrap().path, Path::new("/m/app2"));
        assert_eq!(resolve("site", &all).unwrap().name(), "www");
        assert_eq!(resolve("/m/app1", &all).unwrap().name(), "blue");
        let ambiguous = resolve("app", &all).unwrap_err();
        assert!(ambiguous.contains("blue, green"), "{ambiguous}");
    }

    #[test]
    fn a_name_twice_names_both_mirrors() {
        let mut all = mirrors(
            "[[mirror]]\nrepo = 'site'\npath = '/m/site'\n\
             [[mirror]]\nrepo = 'other'\npath = '/m/other'\nname = 'site'\n",
        );
        let error = format!("{:#}", settle_names(&mut all).unwrap_err());
        assert!(
            error.contains("/m/site") && error.contains("/m/other"),
            "{error}"
        );
    }

    #[test]
    fn hosts_pick_mirrors_and_one_path_may_serve_two_hosts() {
        let written = mirrors(
            "[[mirror]]\nrepo = 'site'\npath = '/srv/site'\nhosts = ['web*']\n\
             [[mirror]]\nrepo = 'site'\npath = '/srv/site'\nbranch = 'next'\nhosts = ['canary']\n\
             [[mirror]]\nrepo = 'tools'\npath = '/srv/tools'\n",
        );
        let web = select(None, &written, "web1").unwrap();
        assert_eq!(web.len(), 2);
        assert_eq!(
            (web[0].name(), web[0].branch.as_str()),
            ("site".into(), "master")
        );
        let canary = select(None, &written, "canary").unwrap();
        assert_eq!(
            (canary[0].name(), canary[0].branch.as_str()),
            ("site".into(), "next")
        );
        assert_eq!(select(None, &written, "db1").unwrap()[0].name(), "tools");
        assert_eq!(
            resolve("tools", &web).unwrap().path,
            Path::new("/srv/tools")
        );
        assert_eq!(resolve("/srv/site", &web).unwrap().repo, "site");
        assert!(resolve("nonesuch", &web).unwrap_err().contains("no mirror"));
        assert!(check_hosts(Some(&[])).is_err());
        assert!(check_hosts(Some(&["web[".into()])).is_err());
    }
}
