//! Templates: `{name}` placeholders filled from a message's facts and a
//! parent step's result. `{{` and `}}` are literal braces. Every template is
//! compiled when the config is read, so an unknown name is a config error and
//! never a surprise at run time. Filling never reaches a shell: a value is
//! text, encoded for where it goes (percent-encoded in URLs, refused in a
//! header when it holds a line break), and never allowed to change a URL's
//! structure (a value that makes a path segment of dots fails the step).

use anyhow::{bail, Result};
use std::ops::Range;

/// The message facts a template may name.
pub const FACTS: [&str; 14] = [
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
    "paths",
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
        // Where each value landed in `out`, for the URL's structure check.
        let mut filled = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(name) => {
                    let value = values.value(name)?;
                    match encoding {
                        Encoding::Plain => out.push_str(&value),
                        Encoding::Url => {
                            let start = out.len();
                            out.push_str(&percent_encode(&value));
                            filled.push(start..out.len());
                        }
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
        if let Some(segment) = dot_segment_made_by_values(&out, &filled) {
            return Err(format!(
                "{:?} would request a path segment {segment:?}, which servers and proxies resolve \
                 to another path: a value may not change the URL's structure",
                self.source
            ));
        }
        Ok(out)
    }
}

/// The first segment of `url`'s path made only of dots (`.` and `..` are
/// dot segments, removed or resolved against the parent; `...` is refused
/// too) that a filled value (a range of `url`) is part of. Percent-encoding
/// the dots would not help: `%2E` is an unreserved character's encoding,
/// which normalisers decode and the WHATWG URL parser treats as a dot.
/// Values never hold `/`, `?` or `#` (they are encoded), so the template's
/// own text decides where the path ends; dots in the query or the fragment
/// are only text.
fn dot_segment_made_by_values<'a>(url: &'a str, filled: &[Range<usize>]) -> Option<&'a str> {
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    let mut start = 0;
    for segment in url[..path_end].split('/') {
        let end = start + segment.len();
        let from_a_value = filled
            .iter()
            .any(|value| !value.is_empty() && value.start < end && start < value.end);
        if from_a_value && !segment.is_empty() && segment.bytes().all(|byte| byte == b'.') {
            return Some(segment);
        }
        start = end + 1;
    }
    None
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

    /// Every name is `repo`'s value.
    struct Repo(&'static str);
    impl Values for Repo {
        fn value(&self, _: &Name) -> Result<String, String> {
            Ok(self.0.to_string())
        }
    }

    #[test]
    fn a_value_never_makes_a_dot_segment_of_a_url_path() {
        let job = Template::compile("http://ci/job/{repo}/build?r={repo}#{repo}").unwrap();
        for dots in [".", "..", "..."] {
            let error = job.fill(&Repo(dots), Encoding::Url).unwrap_err();
            assert!(error.contains("structure"), "{dots}: {error}");
        }
        let prefixed = Template::compile("http://ci/job/.{repo}/x/{repo}").unwrap();
        assert!(
            prefixed.fill(&Repo("."), Encoding::Url).is_err(),
            "'.' + '.'"
        );
        assert!(Template::compile("http://ci/job/{repo}")
            .unwrap()
            .fill(&Repo(".."), Encoding::Url)
            .is_err());
        // Dots among other characters, a slash (encoded), the query and the
        // fragment keep the structure; so do the template's own dot segments.
        for (value, url) in [
            ("a..b", "http://ci/job/a..b/build?r=a..b#a..b"),
            ("../..", "http://ci/job/..%2F../build?r=..%2F..#..%2F.."),
            ("", "http://ci/job//build?r=#"),
        ] {
            assert_eq!(job.fill(&Repo(value), Encoding::Url).unwrap(), url);
        }
        for query in [
            "http://ci/job?r={repo}",
            "http://ci/job#{repo}",
            "http://ci/../x?{repo}",
        ] {
            let template = Template::compile(query).unwrap();
            assert_eq!(
                template.fill(&Repo(".."), Encoding::Url).unwrap(),
                query.replace("{repo}", "..")
            );
        }
        assert_eq!(
            job.fill(&Repo(".."), Encoding::Plain).unwrap(),
            "http://ci/job/../build?r=..#.."
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
