//! Migration from the seed's Ruby configs (`stomp-postrec.yaml`,
//! `svn-stomp.yaml`, and the deploy-host daemon's `stomp-git.yaml`): reads
//! their keys (`rserver`, `stomp-options`, `trigger-topic`, `report-topic`,
//! `listen-topic`, `repo-list`; stomp-jenkins' `jenkins-url`, `jenkins-projects`
//! or `REPO: TICKET` entries) and writes the equivalent hookbus.toml, with
//! comments wherever the Ruby client behaved differently from what the file said.

use crate::text::toml_string;
use anyhow::{bail, Context, Result};
use std::fmt::Write;
use yaml_rust2::{Yaml, YamlLoader};

/// Failover options the Ruby stomp gem implements, spelled as it reads them
/// (case-sensitively).
const GEM_OPTIONS: [&str; 6] = [
    "initialReconnectDelay",
    "maxReconnectDelay",
    "useExponentialBackOff",
    "backOffMultiplier",
    "maxReconnectAttempts",
    "randomize",
];

/// Options the gem accepts in a URL but never implemented.
const UNIMPLEMENTED_OPTIONS: [&str; 2] = ["backup", "timeout"];

/// Where the imported config tells the admin to keep the passcode.
const PASSCODE_FILE: &str = "/etc/hookbus/passcode";

/// What a seed config said, as far as hookbus is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyConfig {
    /// The broker URL (`rserver`), possibly a `failover://(…)?…` list.
    pub rserver: Option<String>,
    /// `stomp-options`, flattened to `key = value` pairs (or one value).
    pub stomp_options: Vec<(String, String)>,
    /// Topic (or destination) commit messages went to.
    pub trigger_topic: Option<String>,
    /// Topic for short human-readable reports.
    pub report_topic: Option<String>,
    /// Top-level keys hookbus has no use for.
    pub ignored_keys: Vec<String>,
    /// stomp-git (the deploy-host daemon): the topic it listened to.
    pub listen_topic: Option<String>,
    /// stomp-git's `repo-list`.
    pub mirrors: Vec<crate::listen::legacy::LegacyMirror>,
    /// stomp-jenkins: the Jenkins jobs it started.
    pub jenkins: Option<crate::action::legacy::LegacyJenkins>,
}

impl LegacyConfig {
    /// Parses a seed YAML file's text.
    pub fn parse(text: &str) -> Result<LegacyConfig> {
        let docs = YamlLoader::load_from_str(text).context("not valid YAML")?;
        let Some(Yaml::Hash(map)) = docs.into_iter().next() else {
            bail!("expected a YAML mapping with rserver, trigger-topic, … at the top");
        };
        let mut legacy = LegacyConfig::default();
        let (mut jenkins_url, mut jenkins_projects, mut others) = (None, None, Vec::new());
        for (key, value) in map {
            let key = scalar(&key);
            match key.trim_start_matches(':') {
                "rserver" => legacy.rserver = Some(scalar(&value)),
                "trigger-topic" => legacy.trigger_topic = Some(scalar(&value)),
                "report-topic" => legacy.report_topic = Some(scalar(&value)),
                "stomp-options" => legacy.stomp_options = flatten(&value),
                "listen-topic" => legacy.listen_topic = Some(scalar(&value)),
                "repo-list" => legacy.mirrors = crate::listen::legacy::mirrors(&value, scalar),
                "jenkins-url" => jenkins_url = Some(scalar(&value)),
                "jenkins-projects" => jenkins_projects = Some(value),
                _ => others.push((key, value)),
            }
        }
        legacy.ignored_keys = match (jenkins_url, &jenkins_projects) {
            (None, None) => others.into_iter().map(|(key, _)| key).collect(),
            (url, projects) => {
                let url = url.unwrap_or_default();
                let (jenkins, rest) = crate::action::legacy::LegacyJenkins::read(
                    &url,
                    projects.as_ref(),
                    &others,
                    scalar,
                );
                legacy.jenkins = Some(jenkins);
                rest
            }
        };
        if legacy.jenkins.as_ref().is_some_and(|j| j.url.is_empty()) {
            bail!(
                "jenkins-projects without jenkins-url: add the Jenkins base URL stomp-jenkins used"
            );
        }
        if legacy.jenkins.is_some() && legacy.listen_topic.is_none() {
            bail!("jenkins-url or jenkins-projects without listen-topic: add the topic stomp-jenkins listened to");
        }
        if legacy.rserver.is_none()
            && legacy.trigger_topic.is_none()
            && legacy.listen_topic.is_none()
        {
            bail!("neither rserver, trigger-topic nor listen-topic is set: is this a stomp-postrec.yaml, svn-stomp.yaml or stomp-git.yaml?");
        }
        Ok(legacy)
    }

    /// The equivalent hookbus.toml, commented; `source` names the seed file.
    pub fn to_toml(&self, source: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# hookbus.toml imported from {source} by `hookbus config import-legacy`.\n\
             # Review it, install it as /etc/hookbus/hookbus.toml, then run `hookbus check`.\n"
        );
        if let Some(rserver) = &self.rserver {
            out.push_str(&broker_table(rserver));
        }
        if !self.stomp_options.is_empty() {
            out.push_str(
                "# stomp-options of the seed, not carried over (hookbus has one deadline per\n\
                 # publish, [broker] deadline_ms, and keeps what it cannot deliver in the outbox):\n",
            );
            for (key, value) in &self.stomp_options {
                let _ = writeln!(out, "#   {key} = {value}");
            }
            out.push('\n');
        }
        if let Some(topic) = &self.trigger_topic {
            let _ = writeln!(
                out,
                "# trigger-topic: every ref update (or SVN revision) as the seed's text message.\n\
                 [[route]]\nname = \"commits\"\ndestination = {}\nformat = \"text\"\n",
                toml_string(&destination(topic))
            );
        }
        if let Some(topic) = &self.listen_topic {
            let report = self.report_topic.as_deref().map(destination);
            // stomp-jenkins reported with its own text: a publish step, not [listen] report
            let listen_report = report.as_deref().filter(|_| self.jenkins.is_none());
            out.push_str(&crate::listen::legacy::to_toml(
                &destination(topic),
                listen_report,
                &self.mirrors,
            ));
            if let Some(jenkins) = &self.jenkins {
                out.push_str(&jenkins.to_toml(&destination(topic), report.as_deref()));
            }
        } else if let Some(topic) = &self.report_topic {
            let _ = writeln!(
                out,
                "# report-topic: one summary line per update, for people and chat bots.\n\
                 [[route]]\nname = \"report\"\ndestination = {}\nformat = \"summary\"\n",
                toml_string(&destination(topic))
            );
        }
        if !self.ignored_keys.is_empty() {
            let _ = writeln!(
                out,
                "# Keys of {source} with no hookbus equivalent: {}",
                self.ignored_keys.join(", ")
            );
        }
        out
    }
}

/// The `[broker]` table for a seed `rserver` URL. Credentials move out of the URL
/// when every host shares them (login into `login`, the passcode into a file the
/// admin fills); option names the gem silently ignored are explained.
fn broker_table(rserver: &str) -> String {
    let (hosts, options) = split_failover(rserver);
    let credentials: Vec<Option<(&str, &str)>> = hosts.iter().map(|h| credentials(h)).collect();
    let shared = match credentials.first() {
        Some(Some(first)) if credentials.iter().all(|c| c.as_ref() == Some(first)) => Some(*first),
        _ => None,
    };
    let hosts: Vec<String> = match shared {
        Some(_) => hosts.iter().map(|h| strip_credentials(h)).collect(),
        None => hosts.iter().map(|h| h.to_string()).collect(),
    };
    let mut notes = Vec::new();
    let mut kept = Vec::new();
    for (name, value) in options {
        let lower = name.to_ascii_lowercase();
        if let Some(canonical) = GEM_OPTIONS.iter().find(|o| o.to_ascii_lowercase() == lower) {
            if name != *canonical {
                notes.push(format!(
                    "{name}={value}: the Ruby client read option names case-sensitively and silently ignored this one; hookbus honours it as {canonical}"
                ));
            }
            if lower == "maxreconnectattempts" && value == "0" {
                notes.push(
                    "maxReconnectAttempts=0 meant \"retry forever\" (a hook that never returns with both brokers down); hookbus gives up at deadline_ms and keeps the message in the outbox".to_string(),
                );
            }
            kept.push(format!("{canonical}={value}"));
        } else if UNIMPLEMENTED_OPTIONS.contains(&lower.as_str()) {
            notes.push(format!(
                "{name}={value}: never implemented by the Ruby client; dropped"
            ));
        } else {
            notes.push(format!("{name}={value}: unknown option; dropped"));
        }
    }
    let url = if hosts.len() == 1 && kept.is_empty() && !rserver.starts_with("failover:") {
        hosts[0].clone()
    } else {
        let query = if kept.is_empty() {
            String::new()
        } else {
            format!("?{}", kept.join("&"))
        };
        format!("failover://({}){query}", hosts.join(","))
    };
    let mut out = String::from("[broker]\n");
    let _ = writeln!(out, "url = {}", toml_string(&url));
    match (shared, credentials.iter().any(Option::is_some)) {
        (Some((login, _)), _) => {
            let _ = writeln!(
                out,
                "login = {}\n# The seed's URL carried the passcode of {login}: write it into this file\n\
                 # (mode 0600, owned by the user hooks run as), or set HOOKBUS_PASSCODE.\n\
                 passcode_file = {}",
                toml_string(login),
                toml_string(PASSCODE_FILE)
            );
        }
        (None, true) => out.push_str(
            "# The hosts use different credentials, so they stay in the URL: keep this file\n\
             # readable only by the user hooks run as (chmod 600).\n",
        ),
        (None, false) => {}
    }
    if !notes.is_empty() {
        out.push_str("# Failover options of the seed's rserver:\n");
        for note in notes {
            let _ = writeln!(out, "#   {note}");
        }
    }
    out.push('\n');
    out
}

/// The host URLs and `name=value` options of a (possibly failover) URL.
fn split_failover(url: &str) -> (Vec<&str>, Vec<(&str, &str)>) {
    let Some(rest) = url.strip_prefix("failover:") else {
        return (vec![url], Vec::new());
    };
    let rest = rest.trim_start_matches("//");
    let (list, query) = match rest.strip_prefix('(') {
        Some(inner) => match inner.split_once(')') {
            Some((list, after)) => (list, after.trim_start_matches('?')),
            None => (inner, ""),
        },
        None => rest.split_once('?').unwrap_or((rest, "")),
    };
    let hosts = list.split(',').map(str::trim).filter(|h| !h.is_empty());
    let options = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")));
    (hosts.collect(), options.collect())
}

/// `(login, passcode)` of a `stomp://login:passcode@host:port` URL.
fn credentials(host_url: &str) -> Option<(&str, &str)> {
    let after_scheme = host_url.split_once("://")?.1;
    let (userinfo, _) = after_scheme.rsplit_once('@')?;
    Some(userinfo.split_once(':').unwrap_or((userinfo, "")))
}

fn strip_credentials(host_url: &str) -> String {
    match host_url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
        None => host_url.to_string(),
    }
}

/// A seed topic name as a STOMP destination: the Ruby scripts prefixed `/topic/`.
fn destination(topic: &str) -> String {
    if topic.starts_with('/') {
        topic.to_string()
    } else {
        format!("/topic/{topic}")
    }
}

/// A YAML scalar as text (Ruby symbols such as `:reliable` keep their colon).
fn scalar(value: &Yaml) -> String {
    match value {
        Yaml::String(text) | Yaml::Real(text) => text.clone(),
        Yaml::Integer(number) => number.to_string(),
        Yaml::Boolean(flag) => flag.to_string(),
        Yaml::Null => String::new(),
        other => format!("{other:?}"),
    }
}

/// `stomp-options` as pairs: a mapping's entries, or one unnamed value.
fn flatten(value: &Yaml) -> Vec<(String, String)> {
    match value {
        Yaml::Hash(map) => map
            .iter()
            .map(|(key, value)| (scalar(key), scalar(value)))
            .collect(),
        Yaml::Null => Vec::new(),
        other => vec![("value".to_string(), scalar(other))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's git config, as the tests of the CLI use it.
    const SEED: &str = include_str!("../tests/fixtures/legacy/stomp-postrec.yaml");

    #[test]
    fn imports_the_seed_config_with_credentials_moved_out_and_options_explained() {
        let toml = LegacyConfig::parse(SEED)
            .unwrap()
            .to_toml("stomp-postrec.yaml");
        assert!(toml.contains(
            "url = \"failover://(stomp://amq1.example.com:61613,stomp://amq2.example.com:61613)?initialReconnectDelay=10&maxReconnectDelay=30000&backOffMultiplier=2&maxReconnectAttempts=0\""
        ), "{toml}");
        assert!(toml.contains("login = \"gituser\""));
        assert!(
            !toml.contains("gitpass"),
            "the passcode never appears: {toml}"
        );
        assert!(toml.contains("MaxReconnectDelay=30000: the Ruby client read option names case-sensitively and silently ignored this one"));
        assert!(toml.contains("Backup=false: never implemented"));
        assert!(toml.contains("retry forever"));
        assert!(toml.contains("#   :reliable = true"));
        assert!(toml.contains("destination = \"/topic/future.git.commits\"\nformat = \"text\""));
        assert!(toml.contains("destination = \"/topic/future.events.git\"\nformat = \"summary\""));
        assert!(toml.contains("no hookbus equivalent: repo-base"));
        toml.parse::<toml::Table>().expect("valid TOML");
    }

    #[test]
    fn different_credentials_stay_in_the_url_with_a_warning() {
        let toml = LegacyConfig::parse(
            "rserver: failover://(stomp://a:x@h1:61613,stomp://b:y@h2:61613)\ntrigger-topic: /queue/commits\n",
        )
        .unwrap()
        .to_toml("svn-stomp.yaml");
        assert!(toml.contains("url = \"failover://(stomp://a:x@h1:61613,stomp://b:y@h2:61613)\""));
        assert!(toml.contains("chmod 600"));
        assert!(toml.contains("destination = \"/queue/commits\""));
    }

    #[test]
    fn the_deploy_daemons_config_becomes_listen_and_mirrors() {
        let seed = include_str!("../tests/fixtures/legacy/stomp-git.yaml");
        let toml = LegacyConfig::parse(seed).unwrap().to_toml("stomp-git.yaml");
        let config =
            crate::config::Config::parse(&toml).unwrap_or_else(|e| panic!("{e:#}\n{toml}"));
        let listen = config.listen.expect("[listen]");
        assert_eq!(listen.subscribe, ["/topic/acme.git.commits"]);
        assert_eq!(
            listen.report.as_deref(),
            Some("/topic/acme.events.stomp-git")
        );
        assert!(
            config.routes.is_empty(),
            "report-topic is the daemon's, not a route"
        );
        let modes: Vec<(&str, &str)> = config
            .mirrors
            .iter()
            .map(|m| (m.repo.as_str(), m.mode.as_str()))
            .collect();
        assert_eq!(
            modes,
            [
                ("tools", "fetch"),
                ("website", "checkout"),
                ("hiera", "in-place"),
                ("environments", "branches")
            ]
        );
        assert_eq!(config.mirrors[1].user.as_deref(), Some("www-data"));
        assert!(toml.contains("repo-list entry \"odd\" not converted"));
        assert!(!toml.contains("secret"));
    }

    #[test]
    fn a_plain_url_stays_plain_and_non_configs_are_refused() {
        let toml = LegacyConfig::parse("rserver: stomp://h:61613\n")
            .unwrap()
            .to_toml("x.yaml");
        assert!(toml.contains("url = \"stomp://h:61613\"\n"));
        assert!(LegacyConfig::parse("- a\n- b\n").is_err());
        assert!(LegacyConfig::parse("other: 1\n").is_err());
        assert!(LegacyConfig::parse("rserver: [unclosed\n").is_err());
        assert!(LegacyConfig::parse("rserver: s://h\njenkins-url: http://j\n").is_err());
        assert!(LegacyConfig::parse("listen-topic: t\njenkins-projects: {}\n").is_err());
    }
}
