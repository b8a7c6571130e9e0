//! The TOML configuration: limits, routes, naming, the outbox location and the
//! broker.
//!
//! One readable file (`--config FILE`, else `$HOOKBUS_CONFIG`, else
//! `/etc/hookbus/hookbus.toml`); a missing default file means the built-in
//! defaults. Unknown keys are errors so that typos do not silently do nothing.

use crate::account::group_id;
use crate::bus::Publisher;
use crate::deliver::outbox::Outbox;
use crate::naming::RepoNaming;
use crate::private_file::Access;
use crate::render::Limits;
use crate::route::{RouteConfig, Router};
use crate::secret::Secret;
use crate::stomp::settings::{BrokerSettings, PASSCODE_ENV};
use crate::stomp::{self, BrokerUrl};
use crate::svn::SvnOptions;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub mod fleet;
mod hosts;
pub mod listen;
pub mod mirror;
pub mod provision;
pub mod relay;
pub mod select;
mod toml_error;

/// Where the config is read from when neither `--config` nor `$HOOKBUS_CONFIG` is set.
pub const DEFAULT_PATH: &str = "/etc/hookbus/hookbus.toml";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    /// How repositories are named, and which hooks stay silent for (`[repos]`).
    pub repos: RepoNaming,
    #[serde(default)]
    /// Per-message limits (`[limits]`).
    pub limits: Limits,
    #[serde(default)]
    /// Options of the git side (`[git]`).
    pub git: GitOptions,
    #[serde(default)]
    /// Where undelivered messages are kept (`[outbox]`).
    pub outbox: OutboxOptions,
    #[serde(default)]
    /// Options of the Subversion side (`[svn]`).
    pub svn: SvnOptions,
    #[serde(default, rename = "route")]
    /// The `[[route]]` tables, in order; empty means the built-in default route.
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    /// Where the line per run is logged (`[log]`).
    pub log: LogOptions,
    /// Where messages are published; without it they stay in the outbox.
    pub broker: Option<BrokerConfig>,
    /// `hookbus listen`: what a deploy host subscribes to.
    pub listen: Option<listen::ListenConfig>,
    /// `hookbus listen`: the local clones this host keeps up to date (those
    /// whose `hosts` take [`Config::host`]), their names settled.
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<mirror::MirrorConfig>,
    /// `hookbus listen`: what this host does for messages besides mirrors
    /// (the actions whose `hosts` take [`Config::host`]).
    #[serde(default, rename = "action")]
    pub actions: Vec<crate::action::config::ActionConfig>,
    /// The host `mirrors` and `actions` were chosen for: `[listen] host`,
    /// else this machine's name.
    #[serde(skip)]
    pub host: String,
    /// Every `[[mirror]]` and `[[action]]` as written, for every host.
    #[serde(skip)]
    written: hosts::Written,
    /// `hookbus webhook`: forge pushes over HTTP. Read and checked by the
    /// webhook itself (it owns its section; the config knows nothing of it).
    pub webhook: Option<toml::Table>,
    /// The key every published message is signed with (`[sign]`).
    pub sign: Option<crate::sign::SignConfig>,
    /// `hookbus fleet`: whose presence and answers it believes (`[fleet]`).
    pub fleet: Option<fleet::FleetConfig>,
    /// `hookbus relay`: its metrics listener (`[relay]`).
    pub relay: Option<relay::RelayConfig>,
    /// The file this was read from, if any (for messages and permission checks).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// `actions` compiled, once, when the config is read.
    #[serde(skip)]
    compiled_actions: Vec<crate::action::Action>,
    /// `routes` (or the default route) compiled, once, when the config is read.
    #[serde(skip)]
    router: Router,
}

/// Options of the git side.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitOptions {
    /// Announce `refs/notes/*` updates (off by default, like git-multimail).
    #[serde(default)]
    pub announce_notes: bool,
}

/// Where undelivered messages are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxOptions {
    /// The outbox directory; see [`Config::outbox_dir`] for the fallbacks.
    pub dir: Option<PathBuf>,
    /// A group (name or id) whose members share the outbox: directories 2770,
    /// files 0640 in that group. Without it the outbox is private (0700/0600).
    pub group: Option<String>,
    /// The group's id, looked up when the config is parsed.
    #[serde(skip)]
    gid: Option<u32>,
}

/// Where the one line per run is logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogOptions {
    /// The syslog datagram socket (journald listens there too); empty: no log.
    #[serde(default = "default_syslog")]
    pub syslog: PathBuf,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            syslog: default_syslog(),
        }
    }
}

fn default_syslog() -> PathBuf {
    PathBuf::from("/dev/log")
}

impl LogOptions {
    /// The socket to log to, unless logging is off.
    pub fn syslog_socket(&self) -> Option<&Path> {
        Some(self.syslog.as_path()).filter(|path| !path.as_os_str().is_empty())
    }
}

/// The `[broker]` table as written; [`BrokerConfig::resolve`] turns it into
/// [`BrokerSettings`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `stomp://host:port`, `stomp+ssl://host:port` or
    /// `failover://(stomp://h1:61613,stomp://h2:61613)?options`.
    pub url: String,
    /// The STOMP login for hosts whose URL names none.
    pub login: Option<String>,
    /// A file whose content (less a trailing newline) is the passcode.
    pub passcode_file: Option<PathBuf>,
    /// The passcode itself; allowed, but warned about in a world-readable file.
    pub passcode: Option<String>,
    /// The CONNECT `host` header (RabbitMQ's vhost); `/` when unset.
    pub vhost: Option<String>,
    /// Bound on one whole publish, failover included; in a hook, the bound on
    /// the whole wait for delivery.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Hooks store the messages and leave delivery to a detached `hookbus
    /// flush` (or to `hookbus relay` when it holds the outbox), so a push
    /// never waits for the broker.
    #[serde(default)]
    pub background: bool,
    /// PEM CA certificates to trust for `stomp+ssl://` instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Check that the broker's certificate names the host; turning it off is loud.
    #[serde(default = "default_true")]
    pub tls_verify_hostname: bool,
    /// Escape CONNECT header values (RabbitMQ needs it for a `\` in a passcode).
    #[serde(default = "default_true")]
    pub escape_connect_headers: bool,
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("url", &stomp::userinfo::redact(&self.url))
            .field("login", &self.login)
            .field("passcode_file", &self.passcode_file)
            .field("passcode", &self.passcode.as_ref().map(|_| "***"))
            .field("vhost", &self.vhost)
            .field("deadline_ms", &self.deadline_ms)
            .finish_non_exhaustive()
    }
}

fn default_deadline_ms() -> u64 {
    stomp::settings::DEFAULT_DEADLINE.as_millis() as u64
}

impl BrokerConfig {
    /// Parses the URL, reads the passcode (`$HOOKBUS_PASSCODE`, else
    /// `passcode_file`, else `passcode`) and collects warnings. `config_file` is
    /// where this table was read from, for the world-readable check.
    pub fn resolve(&self, config_file: Option<&Path>) -> Result<BrokerSettings> {
        let url = BrokerUrl::parse(&self.url).context("[broker] url")?;
        if !(1..=600_000).contains(&self.deadline_ms) {
            bail!("[broker] deadline_ms must be between 1 and 600000 (a hook must not hang)");
        }
        let mut settings = BrokerSettings::for_url(url);
        settings.login = self.login.clone();
        settings.vhost = self.vhost.clone();
        settings.deadline = std::time::Duration::from_millis(self.deadline_ms);
        settings.ca_file = self.ca_file.clone();
        settings.tls_verify_hostname = self.tls_verify_hostname;
        settings.escape_connect_headers = self.escape_connect_headers;
        settings.env_passcode = std::env::var(PASSCODE_ENV)
            .ok()
            .filter(|value| !value.is_empty())
            .map(Secret::new);
        settings.passcode = match (&self.passcode_file, &self.passcode) {
            (Some(_), Some(_)) => {
                bail!("[broker] has both passcode_file and passcode; keep passcode_file")
            }
            // The variable wins: the file is not read, so a file not written
            // yet (as `config import-legacy` leaves it) is no error.
            (Some(_), None) if settings.env_passcode.is_some() => None,
            (Some(file), None) => {
                if world_readable(file) {
                    settings.warnings.push(format!(
                        "passcode file {} is world-readable; chmod 600 it",
                        file.display()
                    ));
                }
                Some(read_passcode_file(file)?)
            }
            (None, Some(literal)) => Some(Secret::new(literal.clone())),
            (None, None) => None,
        };
        let literal_in_config =
            self.passcode.is_some() || settings.url.hosts.iter().any(|h| h.passcode.is_some());
        if let Some(file) = config_file.filter(|file| literal_in_config && world_readable(file)) {
            settings.warnings.push(format!(
                "config {} holds a passcode and is world-readable; chmod 600 it or use passcode_file or ${PASSCODE_ENV}",
                file.display()
            ));
        }
        if !self.tls_verify_hostname && settings.uses_tls() {
            settings.warnings.push(
                "WARNING: [broker] tls_verify_hostname = false: any certificate from a trusted CA is accepted for any broker name".to_string(),
            );
        }
        Ok(settings)
    }
}

fn read_passcode_file(file: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "cannot read [broker] passcode_file {} (make it readable by the hook's user)",
            file.display()
        )
    })?;
    // The first line: anything after it (a note, a second value) is not sent.
    let passcode = text.lines().next().unwrap_or_default();
    if passcode.is_empty() {
        bail!(
            "[broker] passcode_file {}: the first line (the passcode) is empty",
            file.display()
        );
    }
    Ok(Secret::new(passcode))
}

fn default_true() -> bool {
    true
}

fn world_readable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|meta| meta.permissions().mode() & 0o004 != 0)
}

impl Config {
    /// The transport `[broker]` names, with the `[sign]` key loaded and
    /// TLS trust read: what every publisher and subscriber of this process
    /// uses; `None` without a `[broker]` table. Lines the user should see
    /// (ignored options, risky settings) go to `say`. The one place where
    /// the config becomes a transport.
    pub fn publisher(&self, mut say: impl FnMut(&str)) -> Result<Option<Publisher>> {
        let Some(broker) = &self.broker else {
            return Ok(None);
        };
        let mut settings = broker.resolve(self.source.as_deref())?;
        if let Some(sign) = &self.sign {
            let (signer, warning) = sign.load()?;
            settings.warnings.extend(warning);
            settings.signer = Some(std::sync::Arc::new(signer));
        }
        settings.warnings.iter().for_each(|warning| say(warning));
        Ok(Some(Publisher::new(stomp::Client::new(settings)?)))
    }

    /// The `[[action]]` tables, compiled when the config was read (`mirror`
    /// steps may name its `[[mirror]]`s).
    pub fn compiled_actions(&self) -> &[crate::action::Action] {
        &self.compiled_actions
    }

    /// The `[[route]]` tables (or the built-in default route), compiled when
    /// the config was read.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Reads the config: `explicit` (from `--config`), else `$HOOKBUS_CONFIG`, else
    /// the default path if it exists, else built-in defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let from_env = std::env::var_os("HOOKBUS_CONFIG")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        match explicit.map(Path::to_path_buf).or(from_env) {
            Some(path) => Config::from_file(&path),
            None if Path::new(DEFAULT_PATH).exists() => Config::from_file(Path::new(DEFAULT_PATH)),
            None => Config::parse(""),
        }
    }

    /// Reads and validates one config file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read config {} (pass --config FILE or set HOOKBUS_CONFIG)",
                path.display()
            )
        })?;
        let mut config =
            Config::parse(&text).with_context(|| format!("bad config {}", path.display()))?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config> {
        let mut config: Config =
            toml::from_str(text).map_err(|err| toml_error::without_values(text, &err))?;
        config.limits.validate()?;
        config.repos.validate()?;
        config.router = Router::new(&config.effective_routes())?;
        // Only configured rules need checking: compiling the default regexes
        // would cost every git push a third of its instructions.
        if !config.svn.layouts.is_empty() {
            crate::svn::layout::Layouts::compile(&config.svn.layouts)?;
        }
        if let Some(broker) = &config.broker {
            BrokerUrl::parse(&broker.url).context("[broker] url")?;
        }
        config.choose_host()?;
        if let Some(fleet) = &config.fleet {
            fleet.keys()?;
        }
        if let Some(relay) = &config.relay {
            relay.validate()?;
        }
        if let Some(group) = &config.outbox.group {
            config.outbox.gid = Some(group_id(group).context("[outbox] group")?);
        }
        Ok(config)
    }

    /// The configured routes, or the built-in default route when there are none.
    fn effective_routes(&self) -> Vec<RouteConfig> {
        if self.routes.is_empty() {
            vec![RouteConfig::default_route()]
        } else {
            self.routes.clone()
        }
    }

    /// The outbox: [`Config::outbox_dir`], shared with `[outbox] group`.
    pub fn outbox(&self) -> Outbox {
        let access = self.outbox.gid.map_or(Access::private(), Access::shared);
        Outbox::with_access(self.outbox_dir(), access)
    }

    /// The outbox directory: `[outbox] dir`, else [`default_outbox_dir`].
    pub fn outbox_dir(&self) -> PathBuf {
        self.outbox.dir.clone().unwrap_or_else(default_outbox_dir)
    }
}

/// The outbox directory when the config names none (and whatever the config
/// says, where hooks keep pushes they could not handle): `$HOOKBUS_OUTBOX`,
/// else `$XDG_STATE_HOME/hookbus/outbox`, else `~/.local/state/hookbus/outbox`,
/// else `/var/spool/hookbus/outbox`.
pub fn default_outbox_dir() -> PathBuf {
    let env_dir = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = env_dir("HOOKBUS_OUTBOX") {
        return PathBuf::from(dir);
    }
    if let Some(state) = env_dir("XDG_STATE_HOME") {
        return Path::new(&state).join("hookbus/outbox");
    }
    if let Some(home) = env_dir("HOME") {
        return Path::new(&home).join(".local/state/hookbus/outbox");
    }
    PathBuf::from("/var/spool/hookbus/outbox")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Format;
    use crate::route::DEFAULT_DESTINATION;

    #[test]
    fn empty_config_has_one_default_text_route() {
        let config = Config::parse("").unwrap();
        let routes = config.effective_routes();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].destination, DEFAULT_DESTINATION);
        assert_eq!(routes[0].format, Format::Text);
    }

    #[test]
    fn routes_and_limits_parse() {
        let config = Config::parse(
            r#"
            [limits]
            max_bytes = 4096
            [[route]]
            destination = "/topic/git.{repo}"
            format = "json"
            refs = ["refs/heads/*"]
            changes = ["create", "fast-forward"]
            "#,
        )
        .unwrap();
        assert_eq!(config.limits.max_bytes, 4096);
        assert_eq!(config.routes[0].format, Format::Json);
    }

    #[test]
    fn gitolite_admin_is_skipped_unless_configured_otherwise() {
        assert!(Config::parse("")
            .unwrap()
            .repos
            .is_skipped("gitolite-admin"));
        assert!(!Config::parse("").unwrap().repos.is_skipped("app"));
        let config = Config::parse("[repos]\nskip = [\"scratch/*\"]").unwrap();
        assert!(config.repos.is_skipped("scratch/x"));
        assert!(!config.repos.is_skipped("gitolite-admin"));
    }

    #[test]
    fn svn_options_parse_with_their_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.svn.svnlook, Path::new("/usr/bin/svnlook"));
        assert_eq!(config.svn.locale, "C.UTF-8");
        let config = Config::parse(
            "[svn]\nlocale = \"C\"\n[[svn.layout]]\npattern = \"(?P<project>[^/]+)/\"\nrefname = \"refs/heads/main\"\n",
        )
        .unwrap();
        assert_eq!(config.svn.locale, "C");
        assert_eq!(config.svn.layouts[0].refname, "refs/heads/main");
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let config = Config::parse(include_str!("../contrib/hookbus.toml")).unwrap();
        assert_eq!(config.routes.len(), 2);
    }

    #[test]
    fn publishers_are_equal_when_their_settings_are() {
        let publisher = |table: &str| {
            let config = Config::parse(&format!("[broker]\n{table}")).unwrap();
            config.publisher(|_| {}).unwrap().unwrap()
        };
        let plain = publisher("url = \"stomp://h\"\nvhost = \"a\"");
        assert!(plain == publisher("url = \"stomp://h\"\nvhost = \"a\""));
        assert!(plain == plain.clone());
        assert!(plain != publisher("url = \"stomp://h\"\nvhost = \"b\""));
        assert!(Config::parse("")
            .unwrap()
            .publisher(|_| {})
            .unwrap()
            .is_none());
    }

    #[test]
    fn broker_passcode_sources_and_secrecy() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passcode");
        std::fs::write(&file, "p\\a:ss\n").unwrap();
        let config = Config::parse(&format!(
            "[broker]\nurl = \"failover:(stomp://u:urlpass@a,stomp://b)\"\nlogin = \"hook\"\npasscode_file = {:?}\nvhost = \"v\"",
            file
        ))
        .unwrap();
        let broker = config.broker.as_ref().unwrap();
        let settings = broker.resolve(None).unwrap();
        let (login, pass) = settings.credentials(&settings.url.hosts[1]);
        assert_eq!((login, pass.unwrap().expose()), (Some("hook"), "p\\a:ss"));
        let (login, pass) = settings.credentials(&settings.url.hosts[0]);
        assert_eq!((login, pass.unwrap().expose()), (Some("u"), "urlpass"));
        let typo = Config::parse("[broker]\nurl = \"stomp://h\"\npasscod = \"hunter2\"");
        let typo = format!("{:#}", typo.unwrap_err());
        assert!(
            typo.starts_with("line 3: unknown field `passcod`") && !typo.contains("hunter2"),
            "{typo}"
        );
        for shown in [format!("{config:?}"), format!("{settings:?}"), typo] {
            assert!(
                !shown.contains("urlpass") && !shown.contains("p\\a:ss"),
                "{shown}"
            );
        }
    }

    #[test]
    fn passcode_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passcode");
        let config = format!("[broker]\nurl = \"stomp://h\"\npasscode_file = {file:?}");
        let passcode = |content: &str| {
            std::fs::write(&file, content).unwrap();
            let settings = Config::parse(&config)
                .unwrap()
                .broker
                .unwrap()
                .resolve(None);
            settings.map(|settings| settings.passcode.unwrap().expose().to_string())
        };
        assert_eq!(passcode("s3 cret\nrotated 2026-01\n").unwrap(), "s3 cret");
        assert_eq!(passcode("s3 cret\r\n").unwrap(), "s3 cret");
        assert_eq!(passcode("s3 cret").unwrap(), "s3 cret");
        let empty = format!("{:#}", passcode("\nsecond\n").unwrap_err());
        assert!(
            empty.contains("first line") && !empty.contains("second"),
            "{empty}"
        );
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        for bad in [
            "[[route]]\ndestinaton = \"/topic/x\"",
            "[[route]]\ndestination = \"/topic/x\"\nformat = \"xml\"",
            "[[route]]\ndestination = \"/topic/{nope}\"",
            "[[route]]\ndestination = \"/topic/a,/queue/b.{branch}\"",
            "[[route]]\ndestination = \"/topic/git.>\"",
            "[[route]]\ndestination = \"{repo}\"",
            "[[route]]\ndestination = \"/topic/x\"\nchanges = [\"push\"]",
            "[limits]\nmax_bytes = 10",
            "[repos]\nskip = [\"[oops\"]",
            "[svn]\nsvnlok = \"/usr/bin/svnlook\"",
            "[[svn.layout]]\npattern = \"(\"\nrefname = \"refs/heads/x\"",
            "[[svn.layout]]\npattern = \"b/\"\nrefname = \"refs/heads/{branch}\"",
            "[broker]\nurl = \"stomp://h\"\npasscod = \"x\"",
            "[broker]\nurl = \"amqp://h\"",
            "[broker]\nurl = \"failover:(stomp://h)?maxreconnectdelay=soon\"",
        ] {
            assert!(Config::parse(bad).is_err(), "accepted: {bad}");
        }
    }
}
