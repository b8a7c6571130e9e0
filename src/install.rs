//! Putting the post-receive hook into bare repositories without clobbering
//! hooks that are already there.
//!
//! A repository with no post-receive gets a link to the hookbus binary (which
//! runs as `hookbus post-receive` under that name), or the shipped script when
//! a config must be written into the hook. One whose
//! post-receive is somebody else's gets a small chaining hook instead: the old
//! hook is kept under another name and both run, each with the push's full stdin.
//! Installing twice changes nothing.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The hook shipped in `hooks/post-receive`; its marker line identifies hooks
/// that are already ours.
const SHIPPED_HOOK: &str = include_str!("../hooks/post-receive");

/// The line every hook hookbus writes carries.
const MARKER: &str = "# hookbus: post-receive hook";

/// Where a chained repository's previous post-receive is kept.
pub const PREVIOUS_HOOK: &str = "post-receive.pre-hookbus";

/// What the installed hook runs: which binary, with which config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCommand {
    /// The hookbus binary (unless `$HOOKBUS` says otherwise when the hook runs).
    pub binary: PathBuf,
    /// The config the admin installed with (unless `$HOOKBUS_CONFIG` says
    /// otherwise when the hook runs); `None`: the hook finds the config as any
    /// run does (`/etc/hookbus/hookbus.toml`, else built-in defaults). Pushes
    /// over ssh run hooks with the server account's environment, so a config
    /// given at install time must be written into the hook to apply to them.
    pub config: Option<PathBuf>,
}

/// What `install` did to one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// There was no post-receive; hookbus's is there now.
    Fresh,
    /// The same hookbus post-receive was already there; nothing changed.
    AlreadyThere,
    /// A hookbus post-receive running another binary or config was there; it
    /// now runs this one.
    Updated,
    /// An existing post-receive was moved aside and now runs first.
    Chained {
        /// Where the previous hook now is.
        previous: PathBuf,
    },
}

/// A post-receive hook as it is on disk.
#[derive(Debug, PartialEq, Eq)]
enum HookFile {
    /// A symbolic link to a binary: hookbus run under the hook's name, which
    /// costs a push one process start fewer than a shell script.
    Link(PathBuf),
    /// A script.
    Script(String),
}

impl HookFile {
    /// The hook running `command` alone: a link to the binary when it has an
    /// absolute path and no config goes into the hook, else the shipped
    /// script (which finds a bare name in PATH and sets the config).
    fn plain(command: &HookCommand) -> HookFile {
        if command.config.is_none() && command.binary.is_absolute() {
            HookFile::Link(command.binary.clone())
        } else {
            HookFile::Script(plain_hook(command))
        }
    }

    /// What is at `path`, not following a link; `None` when nothing is.
    fn read(path: &Path) -> Result<Option<HookFile>> {
        let context = || format!("cannot read {}", path.display());
        match path.symlink_metadata() {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(context),
            Ok(meta) if meta.file_type().is_symlink() => Ok(Some(HookFile::Link(
                fs::read_link(path).with_context(context)?,
            ))),
            Ok(_) => {
                let bytes = fs::read(path).with_context(context)?;
                Ok(Some(HookFile::Script(
                    String::from_utf8_lossy(&bytes).into_owned(),
                )))
            }
        }
    }

    /// Whether hookbus wrote it: a script with the marker, or a link to
    /// `command`'s binary or to another hookbus (`hookbus`, or a version of
    /// it such as `hookbus-1.2`). A link to another tool whose name merely
    /// starts with hookbus (`hookbus-mailer`) is somebody else's hook.
    fn is_ours(&self, command: &HookCommand) -> bool {
        match self {
            HookFile::Link(target) => {
                *target == command.binary
                    || (target.file_name())
                        .is_some_and(|name| is_hookbus_name(&name.to_string_lossy()))
            }
            HookFile::Script(text) => text.contains(MARKER),
        }
    }

    /// Writes it at `path` atomically (temporary name, then rename), so a
    /// push never runs a half-written hook.
    fn write(&self, path: &Path) -> Result<()> {
        let temp = path.with_extension(format!("hookbus-tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            match self {
                HookFile::Link(target) => std::os::unix::fs::symlink(target, &temp)?,
                HookFile::Script(text) => {
                    let mut file = fs::File::create(&temp)?;
                    file.write_all(text.as_bytes())?;
                    file.set_permissions(fs::Permissions::from_mode(0o755))?;
                    file.sync_all()?;
                }
            }
            fs::rename(&temp, path)
        };
        write().map_err(|err| {
            let _ = fs::remove_file(&temp);
            anyhow::Error::new(err).context(format!("cannot write {}", path.display()))
        })
    }
}

/// `hookbus`, or `hookbus-VERSION` (digits and dots).
fn is_hookbus_name(name: &str) -> bool {
    let version = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.');
    name == "hookbus" || name.strip_prefix("hookbus-").is_some_and(version)
}

/// Installs the post-receive hook into the repository at `repo_dir`, running
/// `command`.
pub fn install(repo_dir: &Path, command: &HookCommand) -> Result<Installed> {
    let hooks = hooks_dir(repo_dir)?;
    let hook = hooks.join("post-receive");
    let Some(existing) = HookFile::read(&hook)? else {
        HookFile::plain(command).write(&hook)?;
        return Ok(Installed::Fresh);
    };
    if existing.is_ours(command) {
        // Ours, plain or chaining: rewritten in the same shape when the binary
        // or the config changed.
        let wanted = match &existing {
            HookFile::Script(text) if text.contains(PREVIOUS_HOOK) => {
                HookFile::Script(chaining_hook(command))
            }
            _ => HookFile::plain(command),
        };
        if existing == wanted {
            return Ok(Installed::AlreadyThere);
        }
        wanted.write(&hook)?;
        return Ok(Installed::Updated);
    }
    let previous = hooks.join(PREVIOUS_HOOK);
    if previous.symlink_metadata().is_ok() {
        bail!(
            "{} is not hookbus's, and {} already exists: merge the two by hand, then run install again",
            hook.display(),
            previous.display()
        );
    }
    fs::rename(&hook, &previous).with_context(|| {
        format!(
            "cannot move {} aside to {}",
            hook.display(),
            previous.display()
        )
    })?;
    HookFile::Script(chaining_hook(command)).write(&hook)?;
    Ok(Installed::Chained { previous })
}

/// The repository's hooks directory: `core.hooksPath` when set, else `hooks/` in
/// the git directory.
fn hooks_dir(repo_dir: &Path) -> Result<PathBuf> {
    let repo = crate::git::open(Some(repo_dir))?;
    let configured = repo
        .config()
        .ok()
        .and_then(|config| config.get_path("core.hooksPath").ok());
    let dir = match configured {
        Some(path) if path.is_absolute() => path,
        Some(path) => repo.path().join(path),
        None => repo.path().join("hooks"),
    };
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The shipped hook with `command`'s absolute binary path as its default, so it
/// works where PATH does not lead to hookbus, and its config when one was given.
fn plain_hook(command: &HookCommand) -> String {
    SHIPPED_HOOK.replace(
        "exec \"${HOOKBUS:-hookbus}\"",
        &format!("{}exec {}", config_line(command), binary_word(command)),
    )
}

/// `export HOOKBUS_CONFIG=…` (keeping a value the push's environment sets) when
/// the admin installed with a config, else nothing.
fn config_line(command: &HookCommand) -> String {
    match &command.config {
        Some(config) => format!(
            ": \"${{HOOKBUS_CONFIG:={}}}\"\nexport HOOKBUS_CONFIG\n",
            shell_quoted(config)
        ),
        None => String::new(),
    }
}

/// A hook that runs the previous post-receive and then hookbus, each with the
/// whole stdin, and exits with the previous hook's status.
fn chaining_hook(command: &HookCommand) -> String {
    format!(
        r#"#!/bin/sh
{MARKER} (chained by `hookbus install`)
# Runs the repository's previous post-receive ({PREVIOUS_HOOK}), then hookbus;
# both get the push's full stdin. The previous hook's exit status is kept.
input=$(mktemp "${{TMPDIR:-/tmp}}/hookbus-push.XXXXXX") || exit 1
trap 'rm -f "$input"' EXIT
cat > "$input"
status=0
previous="$(dirname "$0")/{PREVIOUS_HOOK}"
if [ -x "$previous" ]; then
    "$previous" "$@" < "$input"
    status=$?
fi
{config}{binary} post-receive < "$input"
exit $status
"#,
        config = config_line(command),
        binary = binary_word(command)
    )
}

/// `"${HOOKBUS:-PATH}"`: the binary, as one double-quoted shell word.
fn binary_word(command: &HookCommand) -> String {
    format!("\"${{HOOKBUS:-{}}}\"", shell_quoted(&command.binary))
}

/// A path escaped for use inside a double-quoted shell string.
fn shell_quoted(path: &Path) -> String {
    path.to_string_lossy()
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' | '$' | '`' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

/// Every bare repository below `base` (directories holding `HEAD`, `objects/`
/// and `refs/`), sorted; repositories inside repositories are not searched.
pub fn find_bare_repos(base: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![base.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if ["HEAD", "objects", "refs"]
            .iter()
            .all(|part| dir.join(part).exists())
        {
            found.push(dir);
            continue;
        }
        let entries =
            fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(dir: &Path) -> PathBuf {
        git2::Repository::init_bare(dir).unwrap();
        dir.to_path_buf()
    }

    fn binary(path: &str) -> HookCommand {
        HookCommand {
            binary: PathBuf::from(path),
            config: None,
        }
    }

    #[test]
    fn fresh_then_already_there() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = bare(&tmp.path().join("a.git"));
        let hookbus = binary("/opt/hook bus/hookbus");
        assert_eq!(install(&repo, &hookbus).unwrap(), Installed::Fresh);
        let hook = repo.join("hooks/post-receive");
        assert_eq!(fs::read_link(&hook).unwrap(), hookbus.binary);
        assert_eq!(install(&repo, &hookbus).unwrap(), Installed::AlreadyThere);
        assert_eq!(
            install(&repo, &binary("/usr/bin/hookbus")).unwrap(),
            Installed::Updated
        );
        assert_eq!(fs::read_link(&hook).unwrap(), Path::new("/usr/bin/hookbus"));
        let versioned = binary("/opt/hookbus/bin/hookbus-1.2");
        assert_eq!(install(&repo, &versioned).unwrap(), Installed::Updated);
        assert_eq!(install(&repo, &versioned).unwrap(), Installed::AlreadyThere);
        assert_eq!(
            install(&repo, &binary("/opt/hookbus/bin/hookbus-1.3")).unwrap(),
            Installed::Updated
        );
    }

    #[test]
    fn a_binary_found_in_path_gets_the_script_and_a_script_becomes_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = bare(&tmp.path().join("a.git"));
        let hook = repo.join("hooks/post-receive");
        assert_eq!(
            install(&repo, &binary("hookbus")).unwrap(),
            Installed::Fresh
        );
        let text = fs::read_to_string(&hook).unwrap();
        assert!(text.contains(r#"exec "${HOOKBUS:-hookbus}" post-receive"#));
        assert!(!text.contains("HOOKBUS_CONFIG:="), "{text}");
        let hookbus = binary("/usr/bin/hookbus");
        assert_eq!(install(&repo, &hookbus).unwrap(), Installed::Updated);
        assert_eq!(fs::read_link(&hook).unwrap(), hookbus.binary);
    }

    #[test]
    fn a_link_to_a_tool_named_like_hookbus_is_chained_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = bare(&tmp.path().join("a.git"));
        let hook = repo.join("hooks/post-receive");
        std::os::unix::fs::symlink("/usr/local/bin/hookbus-mailer", &hook).unwrap();
        let outcome = install(&repo, &binary("/usr/bin/hookbus")).unwrap();
        assert!(matches!(outcome, Installed::Chained { .. }), "{outcome:?}");
        let previous = repo.join("hooks").join(PREVIOUS_HOOK);
        assert_eq!(
            fs::read_link(previous).unwrap(),
            Path::new("/usr/local/bin/hookbus-mailer")
        );
        assert!(is_hookbus_name("hookbus-0.1.0") && is_hookbus_name("hookbus"));
        assert!(!is_hookbus_name("hookbus-") && !is_hookbus_name("hookbus2"));
    }

    #[test]
    fn a_foreign_link_is_chained() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = bare(&tmp.path().join("a.git"));
        let hook = repo.join("hooks/post-receive");
        std::os::unix::fs::symlink("/usr/bin/other-tool", &hook).unwrap();
        let outcome = install(&repo, &binary("/usr/bin/hookbus")).unwrap();
        let previous = repo.join("hooks").join(PREVIOUS_HOOK);
        assert_eq!(
            outcome,
            Installed::Chained {
                previous: previous.clone()
            }
        );
        assert_eq!(
            fs::read_link(&previous).unwrap(),
            Path::new("/usr/bin/other-tool")
        );
        assert!(fs::read_to_string(&hook).unwrap().contains(PREVIOUS_HOOK));
    }

    #[test]
    fn the_config_given_at_install_is_written_into_the_hook_and_can_change() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = bare(&tmp.path().join("a.git"));
        let mut command = binary("/usr/bin/hookbus");
        command.config = Some(PathBuf::from("/srv/hook$bus/\"x\".toml"));
        assert_eq!(install(&repo, &command).unwrap(), Installed::Fresh);
        let hook = fs::read_to_string(repo.join("hooks/post-receive")).unwrap();
        assert!(
            hook.contains(": \"${HOOKBUS_CONFIG:=/srv/hook\\$bus/\\\"x\\\".toml}\"\nexport HOOKBUS_CONFIG\nexec "),
            "{hook}"
        );
        assert_eq!(install(&repo, &command).unwrap(), Installed::AlreadyThere);
        command.config = Some(PathBuf::from("/etc/other.toml"));
        assert_eq!(install(&repo, &command).unwrap(), Installed::Updated);
        let hook = fs::read_to_string(repo.join("hooks/post-receive")).unwrap();
        assert!(hook.contains("HOOKBUS_CONFIG:=/etc/other.toml}"), "{hook}");
        assert!(!hook.contains("hook\\$bus"), "{hook}");
    }

    #[test]
    fn a_foreign_hook_is_chained_once_and_a_second_foreign_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = bare(&tmp.path().join("a.git"));
        let hook = repo.join("hooks/post-receive");
        fs::write(&hook, "#!/bin/sh\necho mine\n").unwrap();
        let command = binary("/usr/bin/hookbus");
        let outcome = install(&repo, &command).unwrap();
        assert_eq!(
            outcome,
            Installed::Chained {
                previous: repo.join("hooks").join(PREVIOUS_HOOK)
            }
        );
        assert_eq!(
            fs::read_to_string(repo.join("hooks").join(PREVIOUS_HOOK)).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
        fs::write(&hook, "#!/bin/sh\necho another\n").unwrap();
        let err = install(&repo, &command).unwrap_err();
        assert!(format!("{err:#}").contains("merge the two by hand"));
    }

    #[test]
    fn finds_bare_repos_below_a_base_and_names_them() {
        let tmp = tempfile::tempdir().unwrap();
        bare(&tmp.path().join("team/app.git"));
        bare(&tmp.path().join("gitolite-admin.git"));
        fs::create_dir_all(tmp.path().join("empty/dir")).unwrap();
        let names: Vec<String> = find_bare_repos(tmp.path())
            .unwrap()
            .iter()
            .map(|repo| crate::naming::name_below(tmp.path(), repo))
            .collect();
        assert_eq!(names, ["gitolite-admin", "team/app"]);
    }
}
