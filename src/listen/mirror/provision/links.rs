//! `[[mirror.link]]`: a local path (`/etc/grafana`) made a symlink to a path
//! inside the published tree (`TREE/grafana/etc`). The link goes through the
//! published path itself (the target's symlink in checkout mode), so the one
//! rename(2) that publishes a release switches every link with it: a reader
//! never sees a link into one release and the tree of another. Symlinks,
//! not bind mounts: they need no mount namespace or privilege to follow,
//! survive a reboot without fstab entries, and switch atomically, where a
//! bind mount pins the release it was made on.
//!
//! A real file or directory at `local` is never replaced unless the link
//! says `replace = true`; it is then moved aside to `LOCAL.hookbus-replaced`,
//! never deleted.

use crate::config::mirror::MirrorConfig;
use crate::config::provision::LinkConfig;
use crate::listen::mirror::git::Git;
use crate::listen::mirror::publish::make_dir;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Makes every link of `config` point where it should, once its tree is
/// published: a missing link is made, a symlink elsewhere is swapped
/// (rename(2) over it), a real file or directory is refused (or moved aside
/// with `replace = true`). A link whose path the tree lacks is an error.
pub fn ensure(config: &MirrorConfig, git: &Git) -> Result<()> {
    let Some(tree) = config.tree() else {
        return Ok(());
    };
    for link in &config.links {
        let wanted = tree.join(&link.path);
        if !wanted.exists() {
            bail!(
                "link {}: the published tree has no {}",
                link.local.display(),
                link.path.display()
            );
        }
        ensure_one(link, &wanted, git).with_context(|| format!("link {}", link.local.display()))?;
    }
    Ok(())
}

fn ensure_one(link: &LinkConfig, wanted: &Path, git: &Git) -> Result<()> {
    let local = &link.local;
    match fs::symlink_metadata(local) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if fs::read_link(local).is_ok_and(|value| value == wanted) {
                return Ok(());
            }
        }
        Ok(_) if !link.replace => bail!(
            "{} is a real {} hookbus will not replace: move it away, or set replace = true on the [[mirror.link]] to have it moved to {}",
            local.display(),
            if local.is_dir() { "directory" } else { "file" },
            aside(local).display()
        ),
        Ok(_) => {
            let aside = aside(local);
            if fs::symlink_metadata(&aside).is_ok() {
                bail!(
                    "{} is in the way and {} exists already: remove one of them",
                    local.display(),
                    aside.display()
                );
            }
            fs::rename(local, &aside)
                .with_context(|| format!("cannot move {} aside", local.display()))?;
            eprintln!(
                "hookbus: listen: moved {} to {} to link it (replace = true)",
                local.display(),
                aside.display()
            );
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = local.parent() {
                make_dir(git, parent)?;
            }
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", local.display()))
        }
    }
    swap(local, wanted)
}

/// Points `local` at `wanted` with one rename(2): a reader finds the old link
/// or the new one, never none.
fn swap(local: &Path, wanted: &Path) -> Result<()> {
    let name = local.file_name().context("a link needs a name")?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(".hookbus-link");
    let temporary = local.with_file_name(temporary);
    let _ = fs::remove_file(&temporary);
    std::os::unix::fs::symlink(wanted, &temporary)
        .with_context(|| format!("cannot make {}", temporary.display()))?;
    fs::rename(&temporary, local).with_context(|| format!("cannot swap {}", local.display()))
}

fn aside(local: &Path) -> PathBuf {
    let mut name = local.as_os_str().to_os_string();
    name.push(".hookbus-replaced");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_link_is_made_swapped_and_replaces_a_real_path_only_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("clone/etc")).unwrap();
        let local = d.join("conf/app");
        let config = |replace: bool| -> MirrorConfig {
            toml::from_str(&format!(
                "repo = 'a'\npath = '{}'\nmode = 'in-place'\n[[link]]\nlocal = '{}'\npath = 'etc'\nreplace = {replace}\n",
                d.join("clone").display(),
                local.display()
            ))
            .unwrap()
        };
        let git = Git {
            timeout: Duration::from_secs(5),
            account: None,
        };
        ensure(&config(false), &git).unwrap();
        assert_eq!(fs::read_link(&local).unwrap(), d.join("clone/etc"));
        fs::remove_file(&local).unwrap();
        std::os::unix::fs::symlink("/elsewhere", &local).unwrap();
        ensure(&config(false), &git).unwrap();
        assert_eq!(
            fs::read_link(&local).unwrap(),
            d.join("clone/etc"),
            "swapped"
        );

        fs::remove_file(&local).unwrap();
        fs::create_dir(&local).unwrap();
        fs::write(local.join("mine"), "kept").unwrap();
        let refused = format!("{:#}", ensure(&config(false), &git).unwrap_err());
        assert!(refused.contains("real directory") && refused.contains("replace = true"));
        assert!(fs::symlink_metadata(&local).unwrap().is_dir());
        ensure(&config(true), &git).unwrap();
        assert_eq!(fs::read_link(&local).unwrap(), d.join("clone/etc"));
        let aside = d.join("conf/app.hookbus-replaced/mine");
        assert_eq!(fs::read_to_string(aside).unwrap(), "kept");

        fs::remove_dir(d.join("clone/etc")).unwrap();
        let missing = format!("{:#}", ensure(&config(false), &git).unwrap_err());
        assert!(
            missing.contains("the published tree has no etc"),
            "{missing}"
        );
    }
}
