//! Destination templates: their validation, the encoding of the values put into
//! them, and a sample of what they make, for a broker to judge.
//!
//! Values come from pushers (branch names, SVN directories) and repository
//! names. On ActiveMQ a ',' in a destination adds destinations and '.', '*' and
//! '>' make levels and wildcards; RabbitMQ refuses a '/' in a topic name and
//! gives '#' and '*' meaning in bindings; Artemis reads '::' and '.'. So every
//! byte of a value outside `A-Z a-z 0-9 - _` is written as `~` and two
//! upper-case hex digits (`feature/x` → `feature~2Fx`, `v1.2` → `v1~2E2`), and
//! an empty value as a lone `~`. Distinct values stay distinct, and the result
//! is the same valid name on every broker.

use anyhow::{bail, Context, Result};

/// A placeholder of a destination template: `{repo}` and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{repo}`: the repository's name.
    Repo,
    /// `{refname}`: the full refname.
    Refname,
    /// `{branch}`: the branch name, empty for other refs.
    Branch,
    /// `{name}`: the short ref name.
    Name,
    /// `{reftype}`: branch, tag, annotated-tag, notes or other.
    Reftype,
    /// `{change}`: create, update or delete.
    Change,
    /// `{project}`: the Subversion project, empty for git.
    Project,
}

impl Placeholder {
    const ALL: [(Placeholder, &'static str); 7] = [
        (Placeholder::Repo, "repo"),
        (Placeholder::Refname, "refname"),
        (Placeholder::Branch, "branch"),
        (Placeholder::Name, "name"),
        (Placeholder::Reftype, "reftype"),
        (Placeholder::Change, "change"),
        (Placeholder::Project, "project"),
    ];

    fn named(key: &str) -> Option<Placeholder> {
        Self::ALL
            .iter()
            .find(|(_, name)| *name == key)
            .map(|(placeholder, _)| *placeholder)
    }
}

/// Characters the fixed text of a template may not hold: they add destinations
/// (ActiveMQ's ','), name wildcards or options, or end the header.
const UNSAFE_FIXED: [char; 5] = [',', '*', '>', '#', '?'];

/// A value as it appears in a destination: see the module documentation.
pub fn encode(value: &str) -> String {
    if value.is_empty() {
        return "~".to_string();
    }
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("~{byte:02X}"));
        }
    }
    out
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Fixed(String),
    Placeholder(Placeholder),
}

/// A checked destination template, e.g. `/topic/git.{repo}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses a template, refusing an unknown placeholder, or fixed text that
    /// could reach destinations other than the one it names.
    pub fn parse(template: &str) -> Result<Template> {
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .with_context(|| format!("destination {template:?} has an unclosed '{{'"))?;
            let key = &rest[start + 1..start + end];
            let Some(placeholder) = Placeholder::named(key) else {
                let known = Placeholder::ALL.map(|(_, name)| format!("{{{name}}}"));
                bail!(
                    "destination {template:?} uses unknown placeholder {{{key}}}; use one of {}",
                    known.join(" ")
                );
            };
            pieces.push(Piece::Fixed(rest[..start].to_string()));
            pieces.push(Piece::Placeholder(placeholder));
            rest = &rest[start + end + 1..];
        }
        pieces.push(Piece::Fixed(rest.to_string()));
        for piece in &pieces {
            let Piece::Fixed(text) = piece else { continue };
            let unsafe_char =
                |c: &char| UNSAFE_FIXED.contains(c) || c.is_whitespace() || c.is_control();
            if let Some(bad) = text.chars().find(unsafe_char) {
                bail!(
                    "destination {template:?} holds {bad:?}: it would add destinations or wildcards; name one destination (placeholders are encoded, see hookbus.toml(5))"
                );
            }
        }
        if pieces.first() == Some(&Piece::Fixed(String::new())) {
            bail!("destination {template:?} must start with fixed text such as /topic/ or /queue/");
        }
        Ok(Template {
            text: template.to_string(),
            pieces,
        })
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The destination, with each placeholder replaced by its encoded value;
    /// `value` gives a placeholder's raw value.
    pub fn fill<'a>(&self, value: impl Fn(Placeholder) -> &'a str) -> String {
        let mut out = String::with_capacity(self.text.len());
        for piece in &self.pieces {
            match piece {
                Piece::Fixed(text) => out.push_str(text),
                Piece::Placeholder(key) => out.push_str(&encode(value(*key))),
            }
        }
        out
    }

    /// One destination that stands for every one this template makes, so
    /// that a broker can be asked which it would refuse: values are never
    /// empty and never hold '/', so any one value shows the shape of all.
    pub fn sample(&self) -> String {
        self.fill(|_| "x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_reversibly_and_stay_distinct() {
        assert_eq!(encode("feature/x"), "feature~2Fx");
        assert_eq!(
            encode("z,/queue/deploy.jobs"),
            "z~2C~2Fqueue~2Fdeploy~2Ejobs"
        );
        assert_eq!(encode(">"), "~3E");
        assert_eq!(encode("my_branch-2"), "my_branch-2");
        assert_eq!(encode("a b\t#*:?é~"), "a~20b~09~23~2A~3A~3F~C3~A9~7E");
        assert_eq!(encode(""), "~");
        let values = ["a/b", "a~2Fb", "a.b", "a_b", "", "~", "a%2Fb"];
        let encoded: std::collections::HashSet<String> = values.iter().map(|v| encode(v)).collect();
        assert_eq!(encoded.len(), values.len());
    }

    #[test]
    fn fixed_text_that_adds_destinations_is_refused() {
        for good in [
            "/topic/git.{repo}.{branch}",
            "/queue/commits",
            "/exchange/x/{name}",
        ] {
            assert_eq!(Template::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "/topic/a,/queue/b.{branch}",
            "/topic/git.>",
            "/topic/git.*.{repo}",
            "/topic/git.#",
            "/queue/a?consumer.x=1",
            "/topic/a b",
            "{repo}",
            "{repo}/topic/x",
            "/topic/{nope}",
            "/topic/{repo",
        ] {
            assert!(Template::parse(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn a_sample_has_the_shape_of_every_destination() {
        let template = Template::parse("/topic/git.{repo}.{branch}").unwrap();
        assert_eq!(template.sample(), "/topic/git.x.x");
    }
}
