//! The `[webhook]` table: where `hookbus webhook` listens, its endpoints with
//! their secrets, how forge repository names map to hookbus names, optional
//! local mirrors, and which other forge events are forwarded.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The forges' own limit on a payload (GitHub's): 25 MiB.
const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The `[webhook]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `HOST:PORT` to listen on; loopback behind a TLS reverse proxy.
    pub listen: String,
    /// Requests with a larger body get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Requests handled at once; more get 503 (the forges retry).
    #[serde(default = "default_max_requests")]
    pub max_requests: usize,
    /// Where delivery ids are remembered across restarts [default: `webhook/`
    /// beside the outbox directory].
    pub state_dir: Option<PathBuf>,
    /// How long a delivery id is remembered, so a redelivery is not emitted twice.
    #[serde(default = "default_remember_hours")]
    pub remember_hours: u64,
    /// Bound on fetching a mirror before rendering from it.
    #[serde(default = "default_fetch_timeout_ms")]
    pub fetch_timeout_ms: u64,
    /// `[[webhook.endpoint]]`: the paths forges post to.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
    /// `[[webhook.repo]]`: names and mirrors per forge repository.
    #[serde(default, rename = "repo")]
    pub repos: Vec<RepoConfig>,
    /// `[[webhook.forward]]`: other events published as JSON.
    #[serde(default, rename = "forward")]
    pub forwards: Vec<ForwardConfig>,
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_max_requests() -> usize {
    32
}

fn default_remember_hours() -> u64 {
    72
}

fn default_fetch_timeout_ms() -> u64 {
    5000
}

/// The forge software that calls an endpoint: it decides the signature and
/// the payload layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// GitHub (and GitHub Enterprise Server).
    Github,
    /// GitLab.
    Gitlab,
    /// Gitea, Forgejo and Gogs.
    Gitea,
}

impl ForgeKind {
    /// The name used in the config and in the `source` header.
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Github => "github",
            ForgeKind::Gitlab => "gitlab",
            ForgeKind::Gitea => "gitea",
        }
    }
}

/// One `[[webhook.endpoint]]`: a URL path a forge posts to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The URL path, e.g. `/github`.
    pub path: String,
    /// Which forge posts here: decides the signature and payload layout.
    pub kind: ForgeKind,
    /// The shared secret (GitHub, Gitea) or token (GitLab); first line of the file.
    pub secret_file: Option<PathBuf>,
    /// Accept requests without checking any signature; logged loudly at start.
    #[serde(default)]
    pub insecure_no_signature: bool,
}

/// One `[[webhook.repo]]`: a forge repository's hookbus name and mirror.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// The forge's full name: GitHub's and Gitea's `repository.full_name`,
    /// GitLab's `project.path_with_namespace`.
    pub full_name: String,
    /// The `repo` in messages [default: the full name].
    pub name: Option<String>,
    /// A local bare mirror (`git clone --mirror`) fetched and rendered from,
    /// exactly as the hook renders.
    pub mirror: Option<PathBuf>,
}

/// One `[[webhook.forward]]`: forge events other than pushes, published as
/// their JSON payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// Event names as the forge sends them (`pull_request`, `Merge Request Hook`).
    pub events: Vec<String>,
    /// Destination; `{event}` and `{repo}` are replaced.
    pub destination: String,
}

impl WebhookConfig {
    /// Reads and checks the config's `[webhook]` table.
    pub fn from_table(table: &toml::Table) -> Result<WebhookConfig> {
        let config: WebhookConfig = toml::Value::Table(table.clone())
            .try_into()
            .context("[webhook]")?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects what could never work, before anything listens.
    pub fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            bail!("[webhook] has no [[webhook.endpoint]]; add one per forge");
        }
        if self.max_requests == 0 || self.max_body_bytes == 0 {
            bail!("[webhook] max_requests and max_body_bytes must be above 0");
        }
        if !(1..=60_000).contains(&self.fetch_timeout_ms) {
            bail!("[webhook] fetch_timeout_ms must be between 1 and 60000 (the forges wait 10 s)");
        }
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let context = || format!("[[webhook.endpoint]] number {}", index + 1);
            if !endpoint.path.starts_with('/') {
                bail!("{}: path {:?} must start with /", context(), endpoint.path);
            }
            if self.endpoints[..index]
                .iter()
                .any(|other| other.path == endpoint.path)
            {
                bail!("{}: path {:?} is used twice", context(), endpoint.path);
            }
            match (&endpoint.secret_file, endpoint.insecure_no_signature) {
                (None, false) => bail!(
                    "{}: secret_file is missing (set insecure_no_signature = true to accept unsigned requests)",
                    context()
                ),
                (Some(_), true) => bail!(
                    "{}: secret_file and insecure_no_signature = true contradict each other",
                    context()
                ),
                _ => {}
            }
        }
        for forward in &self.forwards {
            if forward.destination.trim().is_empty() || forward.events.is_empty() {
                bail!("[[webhook.forward]] needs events and a destination");
            }
        }
        Ok(())
    }

    /// The repository's hookbus name and mirror, by its forge full name.
    pub fn repo(&self, full_name: &str) -> (String, Option<&Path>) {
        match self.repos.iter().find(|repo| repo.full_name == full_name) {
            Some(repo) => (
                repo.name.clone().unwrap_or_else(|| full_name.to_string()),
                repo.mirror.as_deref(),
            ),
            None => (full_name.to_string(), None),
        }
    }
}

/// Reads a secret: the first line of the file, which must not be empty.
pub fn read_secret(file: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read(file)
        .with_context(|| format!("cannot read webhook secret_file {}", file.display()))?;
    let line = text.split(|&byte| byte == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("webhook secret_file {} is empty", file.display());
    }
    Ok(line.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebhookConfig> {
        WebhookConfig::from_table(&toml::from_str(text)?)
    }

    #[test]
    fn endpoints_need_a_secret_unless_explicitly_insecure() {
        let base = "listen = \"127.0.0.1:8750\"\n[[endpoint]]\npath = \"/gh\"\nkind = \"github\"\n";
        assert!(parse(base).is_err());
        assert!(parse(&format!("{base}secret_file = \"/s\"\n")).is_ok());
        assert!(parse(&format!("{base}insecure_no_signature = true\n")).is_ok());
        assert!(parse(&format!("{base}kind2 = 1\n")).is_err());
        assert!(parse(&format!(
            "{base}secret_file = \"/s\"\n[[endpoint]]\npath = \"/gh\"\nkind = \"gitea\"\nsecret_file = \"/t\"\n"
        ))
        .is_err());
    }

    #[test]
    fn the_example_configs_webhook_tables_are_valid_uncommented() {
        let example = include_str!("../../contrib/hookbus.toml");
        let start = example.find("# [webhook]\n").expect("a [webhook] example");
        let text: String = example[start..]
            .lines()
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| line.starts_with('[') || line.contains(" = "))
            .map(|line| format!("{line}\n"))
            .collect();
        let config = crate::config::Config::parse(&text).unwrap();
        let webhook = crate::webhook::settings(&config).unwrap();
        assert_eq!(webhook.endpoints[0].kind, ForgeKind::Github);
        assert_eq!(webhook.repo("octo-org/app").0, "app");
        assert_eq!(webhook.forwards.len(), 1);
    }

    #[test]
    fn repo_names_default_to_the_full_name() {
        let config = parse(
            "listen = \"127.0.0.1:0\"\n[[endpoint]]\npath = \"/g\"\nkind = \"gitlab\"\nsecret_file = \"/s\"\n[[repo]]\nfull_name = \"mike/diaspora\"\nname = \"diaspora\"\nmirror = \"/srv/m.git\"\n",
        )
        .unwrap();
        assert_eq!(
            config.repo("mike/diaspora"),
            ("diaspora".to_string(), Some(Path::new("/srv/m.git")))
        );
        assert_eq!(config.repo("a/b"), ("a/b".to_string(), None));
    }
}
