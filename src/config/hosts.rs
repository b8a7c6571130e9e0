//! One config for a whole fleet: the `[[mirror]]`s and `[[action]]`s of the
//! host a config is read for (their `hosts` globs against `[listen] host`).

use super::Config;
use anyhow::{Context, Result};

/// The `[[mirror]]` and `[[action]]` tables as written, before a host is chosen.
#[derive(Debug, Clone, Default)]
pub(super) struct Written {
    pub(super) mirrors: Vec<super::mirror::MirrorConfig>,
    pub(super) actions: Vec<crate::action::config::ActionConfig>,
}

impl Config {
    /// Keeps the tables as written and chooses those of `[listen] host`, else
    /// of this machine's name (once, when the config is read).
    pub(super) fn choose_host(&mut self) -> Result<()> {
        self.written = Written {
            mirrors: std::mem::take(&mut self.mirrors),
            actions: std::mem::take(&mut self.actions),
        };
        let host = (self.listen.as_ref())
            .and_then(|listen| listen.host.clone())
            .unwrap_or_else(host_name);
        self.select_host(&host)
    }

    /// Chooses the `[[mirror]]`s and `[[action]]`s `host` runs (their `hosts`
    /// globs take it), settles the mirrors' names and compiles the actions:
    /// what `hookbus listen --check --host NAME` shows for another host.
    pub fn select_host(&mut self, host: &str) -> Result<()> {
        use super::select::{check_hosts, for_host, select};
        use crate::action::config::KnownMirror;
        self.mirrors = select(self.listen.as_ref(), &self.written.mirrors, host)?;
        for (index, action) in self.written.actions.iter().enumerate() {
            check_hosts(action.hosts.as_deref())
                .with_context(|| format!("[[action]] number {} ({:?})", index + 1, action.name))?;
        }
        self.actions = (self.written.actions.iter())
            .filter(|action| for_host(action.hosts.as_deref().unwrap_or_default(), host))
            .cloned()
            .collect();
        let known: Vec<KnownMirror> = (self.mirrors.iter())
            .map(|mirror| KnownMirror {
                name: mirror.name(),
                path: mirror.path.display().to_string(),
            })
            .collect();
        self.compiled_actions = crate::action::config::compile(&self.actions, &known)
            .with_context(|| format!("on host {host:?}"))?;
        self.host = host.to_string();
        Ok(())
    }
}

/// This machine's name: the host a config is read for when `[listen] host`
/// names none.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return "unknown".into();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = r#"
[listen]
subscribe = ["/topic/c"]
host = "web1"
[[mirror]]
repo = "site"
path = "/srv/site"
hosts = ["web*"]
[[action]]
name = "reload"
[[action.step]]
kind = "mirror"
mirror = "site"
[[action]]
name = "canary-only"
hosts = ["canary*"]
[[action.step]]
kind = "exec"
argv = ["/bin/true"]
"#;

    #[test]
    fn a_host_gets_its_mirrors_and_actions_and_another_can_be_shown() {
        let mut config = Config::parse(FLEET).unwrap();
        assert_eq!(config.host, "web1");
        let names: Vec<&str> = config.actions.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["reload"]);
        assert_eq!(config.mirrors[0].name(), "site");
        // On a host without the mirror, the action naming it is an error
        // naming that host: it needs hosts of its own.
        let error = format!("{:#}", config.select_host("db1").unwrap_err());
        assert!(
            error.contains("on host \"db1\"") && error.contains("\"site\""),
            "{error}"
        );
        let canary = FLEET.replace("mirror = \"site\"", "mirror = \"/srv/site\"");
        let mut config = Config::parse(
            &canary.replace("name = \"reload\"", "name = \"reload\"\nhosts = [\"web*\"]"),
        )
        .unwrap();
        config.select_host("canary2").unwrap();
        assert!(config.mirrors.is_empty());
        assert_eq!(config.actions[0].name, "canary-only");
        let typo = FLEET.replace("hosts = [\"canary*\"]", "hosts = []");
        assert!(format!("{:#}", Config::parse(&typo).unwrap_err()).contains("hosts = []"));
    }
}
