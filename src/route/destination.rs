//! Destination templates: their validation, the encoding of the values put into
//! them, and which destinations a broker would refuse.
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

    /// Why a broker, known by its CONNECTED `server` header, would refuse the
    /// destinations of this template whatever the values, if it would. Brokers
    /// other than ActiveMQ and RabbitMQ are not judged.
    pub fn refusal(&self, server: &str) -> Option<String> {
        // Values are never empty and never hold '/', so one sample stands for all.
        let destination = self.fill(|_| "x");
        let segments: Vec<&str> = destination.split('/').collect();
        let product = server.split('/').next().unwrap_or("");
        if product.eq_ignore_ascii_case("ActiveMQ") {
            // ActiveMQ closes the connection on an empty topic or queue name.
            let empty_name = matches!(segments.as_slice(), ["", "topic" | "queue", ""]);
            return empty_name.then(|| {
                "ActiveMQ closes the connection on an empty topic or queue name".to_string()
            });
        }
        if !product.eq_ignore_ascii_case("RabbitMQ") || !destination.starts_with('/') {
            return None;
        }
        let one_name = |name: &[&str]| matches!(name, [single] if !single.is_empty());
        let accepted = match segments.as_slice() {
            ["", "topic" | "queue", name @ ..] => one_name(name),
            ["", "amq", "queue", name @ ..] => one_name(name),
            ["", "exchange", exchange, key @ ..] => {
                !exchange.is_empty() && (key.is_empty() || one_name(key))
            }
            _ => false,
        };
        (!accepted).then(|| {
            "RabbitMQ takes /topic/KEY, /queue/NAME, /amq/queue/NAME or /exchange/NAME[/KEY], each without a further '/'".to_string()
        })
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
    fn what_each_broker_would_refuse() {
        let refusal =
            |template: &str, server: &str| Template::parse(template).unwrap().refusal(server);
        let activemq = "ActiveMQ/5.17.2";
        let rabbitmq = "RabbitMQ/3.10.8";
        assert_eq!(refusal("/topic/git.{repo}", rabbitmq), None);
        assert_eq!(refusal("/topic/{branch}", activemq), None);
        assert!(refusal("/topic/", activemq).is_some());
        assert!(refusal("/queue/", rabbitmq).is_some());
        assert!(refusal("/topic/git/{repo}", rabbitmq).is_some());
        assert_eq!(refusal("/topic/git/{repo}", activemq), None);
        assert!(refusal("/foo/bar", rabbitmq).is_some());
        assert_eq!(refusal("/exchange/amq.topic/{repo}", rabbitmq), None);
        assert_eq!(refusal("/exchange/amq.topic", rabbitmq), None);
        assert_eq!(refusal("/amq/queue/{repo}", rabbitmq), None);
        assert_eq!(refusal("plain", rabbitmq), None);
        assert_eq!(refusal("/anything/a/b", "Artemis/2.31"), None);
    }
}
