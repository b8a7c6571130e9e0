//! The `[[action]]` tables of hookbus.toml as written (see hookbus.toml(5)):
//! a name, a `[action.match]` and `[[action.step]]`s. [`compile`] checks them
//! and turns them into [`Action`]s, every template and pattern compiled.

use super::matcher::Matcher;
use super::step::Step;
use super::Action;
use crate::secret::Secret;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// One `[[action]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// Unique name: in reports, logs and the redelivery records.
    pub name: String,
    /// Which messages start it; every given field must match.
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    /// What it does, in order; the chain stops at the first failure.
    #[serde(rename = "step")]
    pub steps: Vec<StepConfig>,
    /// Globs on `[listen] host`: the hosts that run this action; absent:
    /// every host.
    pub hosts: Option<Vec<String>>,
}

/// A `[[mirror]]` a `mirror` step may name, by its name or its clone path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMirror {
    /// Its settled name.
    pub name: String,
    /// Its clone path, as written.
    pub path: String,
}

/// `[action.match]`: every given field must match; an empty table matches
/// every message.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// The destinations the message may come from (exact).
    #[serde(default)]
    pub destinations: Vec<String>,
    /// Globs on the repository name.
    #[serde(default)]
    pub repo: Vec<String>,
    /// Globs on the refname.
    #[serde(default)]
    pub refname: Vec<String>,
    /// hookbus change kinds (create, update, delete, force, …).
    #[serde(default)]
    pub change: Vec<String>,
    /// Globs on the SVN project (`project` header or `Project:` body line).
    #[serde(default)]
    pub project: Vec<String>,
    /// Headers the message must carry, with exactly these values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A regular expression searched in the refname (like the seed's Ruby
    /// `=~`): a refname it finds is not matched.
    pub ignore_refs: Option<String>,
    /// `key: value` lines of a text body (or JSON fields): the value is a glob.
    #[serde(default)]
    pub body: BTreeMap<String, String>,
}

/// What a step is.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// An HTTP request.
    Http,
    /// A command, run without a shell.
    Exec,
    /// A message through the listener's outbox.
    Publish,
    /// A `[[mirror]]`'s update, now.
    Mirror,
}

/// One `[[action.step]]` (or an `on_success`/`on_failure` table): the keys a
/// step of its `kind` does not take are refused.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// `http`, `exec`, `publish` or `mirror`.
    pub kind: StepKind,
    /// http: the method (default GET).
    pub method: Option<String>,
    /// http: the URL template; filled values are percent-encoded.
    pub url: Option<String>,
    /// http, publish: header templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// http: an x-www-form-urlencoded body of templates.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// http, publish: the body template.
    pub body: Option<String>,
    /// http: a file whose trimmed content is `{token}`.
    pub token_file: Option<PathBuf>,
    /// http: `{token}` inline (a secret: never logged).
    #[serde(default, deserialize_with = "secret")]
    pub token: Option<Secret>,
    /// http: Basic authentication's user.
    pub basic_user: Option<String>,
    /// http: a file holding Basic authentication's password (first line).
    pub basic_password_file: Option<PathBuf>,
    /// http: Basic authentication's password inline (never logged).
    #[serde(default, deserialize_with = "secret")]
    pub basic_password: Option<Secret>,
    /// http: seconds per attempt (default 30); exec: seconds before the
    /// command's process group is killed (default 600).
    pub timeout_s: Option<u64>,
    /// http: extra attempts on connection errors and 5xx (default 2).
    pub retries: Option<u32>,
    /// exec: the command and its arguments, each one template.
    #[serde(default)]
    pub argv: Vec<String>,
    /// exec: the working directory (literal).
    pub cwd: Option<PathBuf>,
    /// exec: the account it runs as when hookbus runs as root.
    pub user: Option<String>,
    /// exec: extra environment, values are templates.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// publish: the destination.
    pub destination: Option<String>,
    /// mirror: the `[[mirror]]` (its name or its path) to update.
    pub mirror: Option<String>,
    /// A step run when this one succeeded.
    pub on_success: Option<Box<StepConfig>>,
    /// A step run when this one failed.
    pub on_failure: Option<Box<StepConfig>>,
}

fn secret<'de, D: serde::Deserializer<'de>>(text: D) -> Result<Option<Secret>, D::Error> {
    Ok(Some(Secret::new(String::deserialize(text)?)))
}

impl StepConfig {
    /// The keys given that `kind` does not take.
    pub(super) fn foreign_keys(&self) -> Vec<&'static str> {
        let given = [
            ("method", self.method.is_some(), [StepKind::Http].as_slice()),
            ("url", self.url.is_some(), &[StepKind::Http]),
            (
                "headers",
                !self.headers.is_empty(),
                &[StepKind::Http, StepKind::Publish],
            ),
            ("form", !self.form.is_empty(), &[StepKind::Http]),
            (
                "body",
                self.body.is_some(),
                &[StepKind::Http, StepKind::Publish],
            ),
            ("token_file", self.token_file.is_some(), &[StepKind::Http]),
            ("token", self.token.is_some(), &[StepKind::Http]),
            ("basic_user", self.basic_user.is_some(), &[StepKind::Http]),
            (
                "basic_password_file",
                self.basic_password_file.is_some(),
                &[StepKind::Http],
            ),
            (
                "basic_password",
                self.basic_password.is_some(),
                &[StepKind::Http],
            ),
            (
                "timeout_s",
                self.timeout_s.is_some(),
                &[StepKind::Http, StepKind::Exec],
            ),
            ("retries", self.retries.is_some(), &[StepKind::Http]),
            ("argv", !self.argv.is_empty(), &[StepKind::Exec]),
            ("cwd", self.cwd.is_some(), &[StepKind::Exec]),
            ("user", self.user.is_some(), &[StepKind::Exec]),
            ("env", !self.env.is_empty(), &[StepKind::Exec]),
            (
                "destination",
                self.destination.is_some(),
                &[StepKind::Publish],
            ),
            ("mirror", self.mirror.is_some(), &[StepKind::Mirror]),
        ];
        given
            .into_iter()
            .filter(|(_, set, kinds)| *set && !kinds.contains(&self.kind))
            .map(|(key, _, _)| key)
            .collect()
    }
}

/// Checks every action and compiles it; `mirrors` are the `[[mirror]]`s a
/// `mirror` step may name.
pub fn compile(actions: &[ActionConfig], mirrors: &[KnownMirror]) -> Result<Vec<Action>> {
    let mut names = HashSet::new();
    let mut compiled = Vec::new();
    for (index, action) in actions.iter().enumerate() {
        let context = || format!("[[action]] number {} ({:?})", index + 1, action.name);
        let name_ok = !action.name.is_empty()
            && action.name.len() <= 100
            && action
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            bail!(
                "{}: name: use 1 to 100 letters, digits, '-', '_' and '.'",
                context()
            );
        }
        if !names.insert(action.name.clone()) {
            bail!("{}: another action has this name", context());
        }
        if action.steps.is_empty() {
            bail!("{}: give at least one [[action.step]]", context());
        }
        let matcher = Matcher::compile(&action.matches)
            .with_context(|| format!("{}: [action.match]", context()))?;
        let steps = action
            .steps
            .iter()
            .enumerate()
            .map(|(number, step)| {
                Step::compile(step, mirrors, &format!("step {}", number + 1))
                    .with_context(|| format!("{}: step {}", context(), number + 1))
            })
            .collect::<Result<Vec<Step>>>()?;
        compiled.push(Action {
            name: action.name.clone(),
            matcher,
            steps,
        });
    }
    Ok(compiled)
}
