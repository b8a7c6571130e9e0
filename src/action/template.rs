//! Templates: `{name}` placeholders filled from a message's facts and a
//! parent step's result. `{{` and `}}` are literal braces. Every template is
//! compiled when the config is read, so an unknown name is a config error and
//! never a surprise at run time. Filling never reaches a shell: a value is
//! text, encoded for where it goes (percent-encoded in URLs, refused in a
//! header when it holds a line break).

use anyhow::{bail, Result};

/// The message facts a template may name.
pub const FACTS: [&str; 13] = [
    "repo",
    "refname",
    "branch",
    "tag",
    "oldrev",
    "newrev",
    "change",
    "project",
    "destination",
    "hookbus_id",
    "host",
    "action",
    "token",
];

/// The parent step's result fields (`{parent.NAME}`).
pub const PARENT: [&str; 6] = [
    "status",
    "exit_code",
    "output",
    "http_status",
    "duration_ms",
    "reason",
];

/// What a placeholder names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// One of [`FACTS`].
    Fact(&'static str),
    /// `header.NAME`: a header of the message (absent: empty).
    Header(String),
    /// `body.KEY`: a `key: value` line (or JSON field) of the body; absent:
    /// the step fails.
    Body(String),
    /// `parent.NAME`: one of [`PARENT`].
    Parent(&'static str),
}

impl Name {
    fn parse(text: &str) -> Result<Name> {
        if let Some(fact) = FACTS.iter().find(|fact| **fact == text) {
            return Ok(Name::Fact(fact));
        }
        let usable = |key: &str| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if let Some(field) = text.strip_prefix("parent.") {
            if let Some(field) = PARENT.iter().find(|known| **known == field) {
                return Ok(Name::Parent(field));
            }
            bail!("{{{text}}}: a parent's result has {}", PARENT.join(", "));
        }
        if let Some(key) = text.strip_prefix("header.").filter(|key| usable(key)) {
            return Ok(Name::Header(key.to_string()));
        }
        if let Some(key) = text.strip_prefix("body.").filter(|key| usable(key)) {
            return Ok(Name::Body(key.to_ascii_lowercase()));
        }
        bail!(
            "unknown name {{{text}}}: use {}, header.NAME, body.KEY or parent.FIELD (write {{{{ for a literal brace)",
            FACTS.join(", ")
        )
    }
}

/// Where a filled value goes, which decides how it is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As it is (an argv element, a message body, an environment value).
    Plain,
    /// Percent-encoded: a value inside a URL.
    Url,
    /// As it is, but a value holding CR or LF is refused (a header).
    Line,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Name),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// Gives values for names; `Err` says why a name has none (the step fails).
pub trait Values {
    /// The value of `name`.
    fn value(&self, name: &Name) -> Result<String, String>;
}

impl Template {
    /// Compiles `source`; an unknown name or an unpaired brace is an error.
    pub fn compile(source: &str) -> Result<Template> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if name.contains('{') {
                        bail!("template {source:?}: a '{{' inside a placeholder");
                    }
                    if !closed {
                        bail!("template {source:?}: a '{{' without its '}}' (write {{{{ for a literal brace)");
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    let name = Name::parse(&name)
                        .map_err(|e| e.context(format!("template {source:?}")))?;
                    parts.push(Part::Value(name));
                }
                '}' => bail!("template {source:?}: a lone '}}' (write }}}} for a literal brace)"),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template names `name`.
    pub fn uses(&self, name: &Name) -> bool {
        self.parts
            .iter()
            .any(|part| part == &Part::Value(name.clone()))
    }

    /// The names used.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        self.parts.iter().filter_map(|part| match part {
            Part::Value(name) => Some(name),
            Part::Text(_) => None,
        })
    }

    /// Fills the template; `Err` is the reason the step cannot run.
    pub fn fill(&self, values: &dyn Values, encoding: Encoding) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(name) => {
                    let value = values.value(name)?;
                    match encoding {
                        Encoding::Plain => out.push_str(&value),
                        Encoding::Url => out.push_str(&percent_encode(&value)),
                        Encoding::Line if value.contains(['\r', '\n']) => {
                            return Err(format!(
                                "{:?} would put a line break into a header",
                                self.source
                            ))
                        }
                        Encoding::Line => out.push_str(&value),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Values for Fixed {
        fn value(&self, name: &Name) -> Result<String, String> {
            match name {
                Name::Fact("repo") => Ok("team/a b&c".into()),
                Name::Fact("refname") => Ok("refs/heads/x\r\ny".into()),
                Name::Body(key) => Err(format!("no {key}")),
                _ => Ok(String::new()),
            }
        }
    }

    #[test]
    fn values_are_encoded_for_where_they_go() {
        let url = Template::compile("http://j/job/{repo}/build?x={{1}}").unwrap();
        assert_eq!(
            url.fill(&Fixed, Encoding::Url).unwrap(),
            "http://j/job/team%2Fa%20b%26c/build?x={1}"
        );
        assert_eq!(
            url.fill(&Fixed, Encoding::Plain).unwrap(),
            "http://j/job/team/a b&c/build?x={1}"
        );
        let header = Template::compile("{refname}").unwrap();
        assert!(header
            .fill(&Fixed, Encoding::Line)
            .unwrap_err()
            .contains("line break"));
        let body = Template::compile("{body.Package}").unwrap();
        assert_eq!(
            body.fill(&Fixed, Encoding::Plain).unwrap_err(),
            "no package"
        );
    }

    #[test]
    fn bad_templates_are_config_errors() {
        for bad in [
            "{nope}",
            "{repo",
            "repo}",
            "{parent.colour}",
            "{header.}",
            "{a{b}",
            "x{repo}{repo",
        ] {
            assert!(Template::compile(bad).is_err(), "{bad}");
        }
        let parent = Template::compile("{parent.output} {header.x-y} {body.k}").unwrap();
        assert_eq!(parent.names().count(), 3);
        assert!(parent.uses(&Name::Parent("output")));
    }
}
