//! A step, compiled: every template parsed, every literal checked, so that at
//! run time only the message's values can make it fail (with a reason).

use super::config::{KnownMirror, StepConfig, StepKind};
use super::template::{Name, Template};
use crate::secret::Secret;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Default bound on one HTTP attempt.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default extra HTTP attempts.
const HTTP_RETRIES: u32 = 2;
/// Default bound on a command.
const EXEC_TIMEOUT: Duration = Duration::from_secs(600);

/// A compiled step with its handlers.
#[derive(Debug, Clone)]
pub struct Step {
    /// Where it sits in its action (`step 2`, `step 2 on_failure`): in reports.
    pub label: String,
    /// What it does.
    pub kind: Kind,
    /// Run when it succeeded.
    pub on_success: Option<Box<Step>>,
    /// Run when it failed.
    pub on_failure: Option<Box<Step>>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Kind {
    /// An HTTP request.
    Http(HttpPlan),
    /// A command.
    Exec(ExecPlan),
    /// A message.
    Publish(PublishPlan),
    /// A mirror's update (the mirror's name).
    Mirror(String),
}

/// A secret read when the step runs (so a missing file fails the step, not
/// the daemon, and a changed token is used at once).
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// Given in the config.
    Inline(Secret),
    /// The trimmed content (token) or first line (password) of a file.
    File(PathBuf),
}

impl SecretSource {
    fn from(
        inline: &Option<Secret>,
        file: &Option<PathBuf>,
        key: &str,
    ) -> Result<Option<SecretSource>> {
        match (inline, file) {
            (Some(_), Some(_)) => bail!("give {key} or {key}_file, not both"),
            (Some(secret), None) => Ok(Some(SecretSource::Inline(secret.clone()))),
            (None, Some(file)) => {
                absolute(&format!("{key}_file"), file)?;
                Ok(Some(SecretSource::File(file.clone())))
            }
            (None, None) => Ok(None),
        }
    }

    /// The secret, or why it cannot be had.
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Inline(secret) => Ok(secret.clone()),
            SecretSource::File(file) => std::fs::read_to_string(file)
                .map(|text| Secret::new(text.lines().next().unwrap_or("").trim()))
                .map_err(|error| format!("cannot read {}: {error}", file.display())),
        }
    }
}

/// An HTTP request to make.
#[derive(Debug, Clone)]
pub struct HttpPlan {
    /// The method.
    pub method: String,
    /// The URL.
    pub url: Template,
    /// Header names and value templates.
    pub headers: Vec<(String, Template)>,
    /// A form body (names and value templates).
    pub form: Vec<(String, Template)>,
    /// A body template.
    pub body: Option<Template>,
    /// Where `{token}` comes from.
    pub token: Option<SecretSource>,
    /// Basic authentication's user and password.
    pub basic: Option<(String, SecretSource)>,
    /// Bound on one attempt.
    pub timeout: Duration,
    /// Extra attempts on connection errors and 5xx.
    pub retries: u32,
}

/// A command to run: its argv and environment values are templates `T`
/// in a compiled step, text once filled in for a message ([`super::exec::Run`]).
#[derive(Debug, Clone)]
pub struct ExecPlan<T = Template> {
    /// The program and its arguments.
    pub argv: Vec<T>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// The account (when hookbus runs as root).
    pub user: Option<String>,
    /// Extra environment (a run's also has the HOOKBUS_* variables).
    pub env: Vec<(String, T)>,
    /// Its process group is killed after this.
    pub timeout: Duration,
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct PublishPlan {
    /// Where.
    pub destination: String,
    /// Header names and value templates.
    pub headers: Vec<(String, Template)>,
    /// The body.
    pub body: Template,
}

fn absolute(key: &str, path: &std::path::Path) -> Result<()> {
    if !path.is_absolute() {
        bail!("{key} {} must be an absolute path", path.display());
    }
    Ok(())
}

fn compile_map(
    key: &str,
    map: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, Template)>> {
    map.iter()
        .map(|(name, text)| {
            let usable = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !usable {
                bail!("{key}: name {name:?}: use letters, digits, '-', '_' and '.'");
            }
            let template = Template::compile(text).with_context(|| format!("{key}.{name}"))?;
            Ok((name.clone(), template))
        })
        .collect()
}

impl Step {
    /// Compiles a step table; `mirrors` are those a mirror step may name (by
    /// name or path; the step keeps the name).
    pub fn compile(config: &StepConfig, mirrors: &[KnownMirror], label: &str) -> Result<Step> {
        let foreign = config.foreign_keys();
        if !foreign.is_empty() {
            bail!(
                "a {:?} step takes no {} (see hookbus.toml(5))",
                config.kind,
                foreign.join(", ")
            );
        }
        let kind = match config.kind {
            StepKind::Http => Kind::Http(http(config)?),
            StepKind::Exec => Kind::Exec(exec(config)?),
            StepKind::Publish => Kind::Publish(publish(config)?),
            StepKind::Mirror => {
                let Some(mirror) = &config.mirror else {
                    bail!("a mirror step needs mirror = \"NAME\" (a [[mirror]]'s name or path)");
                };
                let known = mirrors
                    .iter()
                    .find(|known| known.name == *mirror || known.path == *mirror);
                let Some(known) = known else {
                    let names: Vec<&str> = mirrors.iter().map(|m| m.name.as_str()).collect();
                    bail!(
                        "mirror {mirror:?} is no [[mirror]]'s name or path on this host; there are: {}",
                        names.join(", ")
                    );
                };
                Kind::Mirror(known.name.clone())
            }
        };
        if !matches!(&kind, Kind::Http(plan) if plan.token.is_some()) {
            let uses_token = config
                .templates()
                .iter()
                .any(|text| Template::compile(text).is_ok_and(|t| t.uses(&Name::Fact("token"))));
            if uses_token {
                bail!("{{token}} is only for http steps with token or token_file");
            }
        }
        let handler =
            |handler: &Option<Box<StepConfig>>, name: &str| -> Result<Option<Box<Step>>> {
                match handler {
                    Some(handler) => {
                        let label = format!("{label} {name}");
                        Ok(Some(Box::new(
                            Step::compile(handler, mirrors, &label).context(name.to_string())?,
                        )))
                    }
                    None => Ok(None),
                }
            };
        Ok(Step {
            label: label.to_string(),
            kind,
            on_success: handler(&config.on_success, "on_success")?,
            on_failure: handler(&config.on_failure, "on_failure")?,
        })
    }
}

impl StepConfig {
    /// Every template text of the step itself.
    fn templates(&self) -> Vec<&String> {
        let maps = [&self.headers, &self.form, &self.env];
        let mut all: Vec<&String> = maps.iter().flat_map(|map| map.values()).collect();
        all.extend(self.url.iter().chain(&self.body).chain(&self.argv));
        all
    }
}

fn http(config: &StepConfig) -> Result<HttpPlan> {
    let method = config.method.clone().unwrap_or_else(|| "GET".into());
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
        bail!("method {method:?}: an HTTP method in capitals, e.g. POST");
    }
    let Some(url) = &config.url else {
        bail!("an http step needs url = \"http://…\"");
    };
    if !url.starts_with("http://") && !url.starts_with("https://") {
        bail!("url {url:?} must start with http:// or https://");
    }
    if !config.form.is_empty() && config.body.is_some() {
        bail!("give form or body, not both");
    }
    let basic = match (
        &config.basic_user,
        SecretSource::from(
            &config.basic_password,
            &config.basic_password_file,
            "basic_password",
        )?,
    ) {
        (Some(user), Some(password)) => Some((user.clone(), password)),
        (None, None) => None,
        _ => bail!("basic_user goes with basic_password or basic_password_file"),
    };
    let timeout = config.timeout_s.map_or(HTTP_TIMEOUT, Duration::from_secs);
    if timeout.is_zero() {
        bail!("timeout_s must be at least 1");
    }
    Ok(HttpPlan {
        method,
        url: Template::compile(url).context("url")?,
        headers: compile_map("headers", &config.headers)?,
        form: compile_map("form", &config.form)?,
        body: config
            .body
            .as_deref()
            .map(Template::compile)
            .transpose()
            .context("body")?,
        token: SecretSource::from(&config.token, &config.token_file, "token")?,
        basic,
        timeout,
        retries: config.retries.unwrap_or(HTTP_RETRIES),
    })
}

fn exec(config: &StepConfig) -> Result<ExecPlan> {
    if config.argv.is_empty() || config.argv[0].is_empty() {
        bail!("an exec step needs argv = [\"/path/to/program\", …]");
    }
    if Template::compile(&config.argv[0])?.names().next().is_some() {
        bail!(
            "argv: the program {:?} must be literal: a message never chooses what runs",
            config.argv[0]
        );
    }
    if let Some(cwd) = &config.cwd {
        absolute("cwd", cwd)?;
    }
    if let Some(user) = &config.user {
        if user.is_empty() || user.starts_with('-') || user.chars().any(char::is_control) {
            bail!("user {user:?} is not an account name");
        }
    }
    for name in config.env.keys() {
        let usable = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !usable || name.starts_with("HOOKBUS_") {
            bail!("env {name:?}: use capitals, digits and '_', not starting with HOOKBUS_ (hookbus sets those)");
        }
    }
    let timeout = config.timeout_s.map_or(EXEC_TIMEOUT, Duration::from_secs);
    if timeout.is_zero() {
        bail!("timeout_s must be at least 1");
    }
    Ok(ExecPlan {
        argv: config
            .argv
            .iter()
            .map(|text| Template::compile(text).context("argv"))
            .collect::<Result<_>>()?,
        cwd: config.cwd.clone(),
        user: config.user.clone(),
        env: config
            .env
            .iter()
            .map(|(name, text)| {
                Ok((
                    name.clone(),
                    Template::compile(text).with_context(|| format!("env.{name}"))?,
                ))
            })
            .collect::<Result<_>>()?,
        timeout,
    })
}

fn publish(config: &StepConfig) -> Result<PublishPlan> {
    let Some(destination) = &config.destination else {
        bail!("a publish step needs destination = \"/topic/…\"");
    };
    if destination.trim().is_empty() || destination.chars().any(char::is_control) {
        bail!("destination {destination:?} must be non-empty and on one line");
    }
    Ok(PublishPlan {
        destination: destination.clone(),
        headers: compile_map("headers", &config.headers)?,
        body: Template::compile(config.body.as_deref().unwrap_or("")).context("body")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> Result<Step> {
        let config: StepConfig = toml::from_str(text)?;
        let known = KnownMirror {
            name: "a".into(),
            path: "/m/a".into(),
        };
        Step::compile(&config, &[known], "step 1")
    }

    #[test]
    fn steps_take_only_their_own_keys_and_check_them() {
        assert!(step("kind = 'http'\nurl = 'http://j/{repo}'").is_ok());
        assert!(step("kind = 'http'\nurl = 'ftp://j'").is_err());
        assert!(step("kind = 'http'\nurl = 'http://j'\nargv = ['x']")
            .unwrap_err()
            .to_string()
            .contains("argv"));
        assert!(step("kind = 'http'\nurl = 'http://j'\nform = { a = 'b' }\nbody = 'x'").is_err());
        assert!(
            step("kind = 'http'\nurl = 'http://j?t={token}'").is_err(),
            "no token source"
        );
        assert!(step("kind = 'http'\nurl = 'http://j?t={token}'\ntoken_file = '/etc/t'").is_ok());
        assert!(step("kind = 'http'\nurl = 'http://j'\nbasic_user = 'u'").is_err());
        assert!(step("kind = 'exec'\nargv = ['/bin/x', '{token}']").is_err());
        assert!(step("kind = 'exec'\nargv = ['/bin/{repo}']").is_err());
        assert!(step("kind = 'exec'\nargv = ['/bin/x']\nenv = { HOOKBUS_REPO = 'x' }").is_err());
        assert!(step("kind = 'exec'\nargv = ['/bin/x']\ncwd = 'rel'").is_err());
        assert!(step("kind = 'mirror'\nmirror = '/m/b'").is_err());
        assert!(step("kind = 'mirror'\nmirror = '/m/a'").is_ok());
        let by_name = step("kind = 'mirror'\nmirror = 'a'").unwrap();
        assert!(matches!(by_name.kind, Kind::Mirror(name) if name == "a"));
        assert!(
            matches!(step("kind = 'mirror'\nmirror = '/m/a'").unwrap().kind, Kind::Mirror(name) if name == "a")
        );
        assert!(step("kind = 'publish'\ndestination = '/topic/x'\nbody = '{nope}'").is_err());
        let nested = step(
            "kind = 'exec'\nargv = ['/bin/false']\n[on_failure]\nkind = 'publish'\ndestination = '/topic/x'\nbody = '{parent.output}'\n[on_failure.on_success]\nkind = 'mirror'\nmirror = '/m/a'",
        )
        .unwrap();
        let failure = nested.on_failure.unwrap();
        assert_eq!(failure.label, "step 1 on_failure");
        assert_eq!(
            failure.on_success.unwrap().label,
            "step 1 on_failure on_success"
        );
        assert!(format!(
            "{:?}",
            step("kind = 'http'\nurl = 'http://j'\ntoken = 'hunter2'").unwrap()
        )
        .contains("***"));
    }
}
