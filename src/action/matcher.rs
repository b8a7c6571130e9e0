//! `[action.match]`, compiled: does a message start an action?

use super::config::MatchConfig;
use crate::inbound::Received;
use anyhow::{Context, Result};
use glob::Pattern;

/// A compiled match: every given field must hold.
#[derive(Debug, Clone)]
pub struct Matcher {
    destinations: Vec<String>,
    repo: Vec<Pattern>,
    refname: Vec<Pattern>,
    change: Vec<String>,
    project: Vec<Pattern>,
    headers: Vec<(String, String)>,
    ignore_refs: Option<regex::Regex>,
    body: Vec<(String, Pattern)>,
}

fn globs(key: &str, patterns: &[String]) -> Result<Vec<Pattern>> {
    patterns
        .iter()
        .map(|text| Pattern::new(text).with_context(|| format!("{key}: bad glob {text:?}")))
        .collect()
}

/// True when no pattern is given or one matches `value`.
fn any(patterns: &[Pattern], value: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|pattern| pattern.matches(value))
}

impl Matcher {
    /// Compiles a match table.
    pub fn compile(config: &MatchConfig) -> Result<Matcher> {
        let ignore_refs = match &config.ignore_refs {
            Some(text) => Some(
                crate::pattern::compile(text)
                    .with_context(|| format!("ignore_refs: bad regular expression {text:?}"))?,
            ),
            None => None,
        };
        let body = config
            .body
            .iter()
            .map(|(key, value)| {
                let pattern = Pattern::new(value)
                    .with_context(|| format!("body.{key}: bad glob {value:?}"))?;
                Ok((key.to_ascii_lowercase(), pattern))
            })
            .collect::<Result<_>>()?;
        Ok(Matcher {
            destinations: config.destinations.clone(),
            repo: globs("repo", &config.repo)?,
            refname: globs("refname", &config.refname)?,
            change: config.change.clone(),
            project: globs("project", &config.project)?,
            headers: config.headers.clone().into_iter().collect(),
            ignore_refs,
            body,
        })
    }

    /// True when `message` matches every given field.
    pub fn matches(&self, message: &Received) -> bool {
        self.mismatch(message).is_none()
    }

    /// The first given field `message` does not match (`listen --check` says
    /// it); `None` when they match every one. Nothing is formatted here:
    /// the daemon asks this of every action for every message.
    pub fn mismatch(&self, message: &Received) -> Option<Mismatch<'_>> {
        if !(self.destinations.is_empty() || self.destinations.contains(&message.destination)) {
            return Some(Mismatch::Listed(
                "destination",
                message.destination.clone(),
                &self.destinations,
            ));
        }
        let refname = message.fact("refname");
        let globbed = [
            ("repo", &self.repo, message.fact("repo")),
            ("refname", &self.refname, refname.clone()),
            ("project", &self.project, message.fact("project")),
        ];
        for (field, patterns, value) in globbed {
            if !any(patterns, &value) {
                return Some(Mismatch::Glob(field, value, patterns));
            }
        }
        let change = message.fact("change");
        if !(self.change.is_empty() || self.change.contains(&change)) {
            return Some(Mismatch::Listed("change", change, &self.change));
        }
        for (name, value) in &self.headers {
            if message.header(name) != Some(value.as_str()) {
                return Some(Mismatch::Header(name, value));
            }
        }
        if let Some(ignore) = self.ignore_refs.as_ref().filter(|i| i.is_match(&refname)) {
            return Some(Mismatch::Ignored(refname, ignore));
        }
        for (key, pattern) in &self.body {
            if !message
                .body_key(key)
                .is_some_and(|value| pattern.matches(value))
            {
                return Some(Mismatch::Body(key, pattern));
            }
        }
        None
    }
}

/// The first field of a match that a message fails.
#[derive(Debug)]
pub enum Mismatch<'m> {
    /// A field whose value is not one of the listed ones.
    Listed(&'static str, String, &'m [String]),
    /// A field whose value no glob matches.
    Glob(&'static str, String, &'m [Pattern]),
    /// A header that is missing or has another value.
    Header(&'m str, &'m str),
    /// A refname that `ignore_refs` matches.
    Ignored(String, &'m regex::Regex),
    /// A body line that is missing or matches no glob.
    Body(&'m str, &'m Pattern),
}

impl std::fmt::Display for Mismatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Listed(field, value, listed) => {
                write!(f, "{field} {value:?} is not one of {}", listed.join(", "))
            }
            Mismatch::Glob(field, value, patterns) => {
                let texts: Vec<&str> = patterns.iter().map(Pattern::as_str).collect();
                write!(f, "{field} {value:?} is not {}", texts.join(", "))
            }
            Mismatch::Header(name, value) => write!(f, "header {name} is not {value:?}"),
            Mismatch::Ignored(refname, ignore) => write!(
                f,
                "refname {refname:?} matches ignore_refs {:?}",
                ignore.as_str()
            ),
            Mismatch::Body(key, pattern) => {
                write!(f, "body line {key:?} is not {}", pattern.as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(text: &str) -> Matcher {
        Matcher::compile(&toml::from_str(text).unwrap()).unwrap()
    }

    fn facts(headers: &[(&str, &str)], body: &str) -> Received {
        crate::inbound::tests::received(headers, body)
    }

    #[test]
    fn every_given_field_must_match() {
        let m = matcher(
            "destinations = ['/topic/c']\nrepo = ['web-*']\nrefname = ['refs/heads/*', 'refs/tags/*']\nignore_refs = 'refs/tags/jenkins-.*'\nheaders = { reftype = 'branch' }",
        );
        let base = [
            ("destination", "/topic/c"),
            ("repo", "web-a"),
            ("reftype", "branch"),
        ];
        let with = |refname: &str| {
            let mut headers = base.to_vec();
            headers.push(("refname", refname));
            facts(&headers, "")
        };
        assert!(m.matches(&with("refs/heads/main")));
        assert!(m.matches(&with("refs/tags/v1")));
        assert!(!m.matches(&with("refs/tags/jenkins-12")), "ignore_refs");
        assert!(!m.matches(&with("refs/notes/x")));
        assert!(!m.matches(&facts(
            &[("destination", "/topic/c"), ("repo", "web-a")],
            ""
        )));
        assert!(!m.matches(&facts(
            &[
                ("destination", "/topic/other"),
                ("repo", "web-a"),
                ("reftype", "branch")
            ],
            ""
        )));
        assert!(matcher("").matches(&facts(&[], "anything: at all")));
    }

    #[test]
    fn a_mismatch_names_the_field_that_failed() {
        let m = matcher("repo = ['web-*']\nignore_refs = 'refs/tags/jenkins-.*'");
        let said = |repo: &str, refname: &str| {
            m.mismatch(&facts(&[("repo", repo), ("refname", refname)], ""))
                .map(|mismatch| mismatch.to_string())
        };
        assert_eq!(said("web-a", "refs/heads/main"), None);
        assert_eq!(
            said("app", "refs/heads/main").as_deref(),
            Some("repo \"app\" is not web-*")
        );
        assert_eq!(
            said("web-a", "refs/tags/jenkins-1").as_deref(),
            Some("refname \"refs/tags/jenkins-1\" matches ignore_refs \"refs/tags/jenkins-.*\"")
        );
    }

    #[test]
    fn projects_and_body_lines_match_text_messages() {
        let m = matcher("body = { package = 'foo*' }");
        assert!(m.matches(&facts(&[], "Package: foo-tools\nversion: 2\n")));
        assert!(!m.matches(&facts(&[], "package: bar\n")));
        assert!(!m.matches(&facts(&[], "version: 2\n")));
        let p = matcher("project = ['awful-*']");
        assert!(p.matches(&facts(&[("project", "awful-project")], "")));
        assert!(p.matches(&facts(&[], "Project: awful-project\n")));
        assert!(!p.matches(&facts(&[("project", "nice")], "")));
        assert!(Matcher::compile(&toml::from_str("ignore_refs = '('").unwrap()).is_err());
    }
}
