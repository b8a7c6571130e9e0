//! What a message says, as actions see it: the headers hookbus sets (repo,
//! refname, newrev, change, project …), else the `key: value` lines of a text
//! body (the seed's format, SVN's `Project:` line, package-update messages),
//! else the string fields of a JSON object body. Values are bounded and on
//! one line; anything else is dropped, never passed on.

/// Longest value taken from a message.
const MAX_VALUE: usize = 4096;
/// Most body keys read from one message.
const MAX_KEYS: usize = 200;

/// One received message, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Where it came from (the frame's `destination`).
    pub destination: String,
    /// Its headers, in order.
    pub headers: Vec<(String, String)>,
    /// Its body's `key: value` lines or JSON string fields, keys lower-cased;
    /// the first of each key wins.
    pub body: Vec<(String, String)>,
}

impl Facts {
    /// Reads a message.
    pub fn read(headers: &[(String, String)], body: &[u8]) -> Facts {
        let destination = lookup(headers, "destination").unwrap_or_default();
        let headers = headers
            .iter()
            .filter_map(|(key, value)| clean(value).map(|value| (key.clone(), value)))
            .collect();
        let text = std::str::from_utf8(body).unwrap_or("");
        let mut fields = json_fields(text);
        if fields.is_empty() {
            fields = text_fields(text);
        }
        Facts {
            destination,
            headers,
            body: fields,
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        lookup(&self.headers, name)
    }

    /// A body key's value (`key` lower-case).
    pub fn body_key(&self, key: &str) -> Option<String> {
        lookup(&self.body, key)
    }

    /// A fact by name: the header, else the body key.
    pub fn field(&self, name: &str) -> Option<String> {
        self.header(name).or_else(|| self.body_key(name))
    }

    /// The repository (empty when the message names none).
    pub fn repo(&self) -> String {
        self.field("repo").unwrap_or_default()
    }

    /// The ref that moved (empty when none).
    pub fn refname(&self) -> String {
        self.field("refname").unwrap_or_default()
    }

    /// The SVN project (a `project` header or a `Project:` body line).
    pub fn project(&self) -> String {
        self.field("project").unwrap_or_default()
    }

    /// The change kind: hookbus's `change` header, else guessed from the revs.
    pub fn change(&self) -> String {
        if let Some(change) = self.field("change") {
            return change;
        }
        let zero = |rev: Option<String>| {
            rev.is_some_and(|rev| !rev.is_empty() && rev.bytes().all(|b| b == b'0'))
        };
        match (zero(self.field("oldrev")), zero(self.field("newrev"))) {
            (true, false) => "create".into(),
            (false, true) => "delete".into(),
            _ if self.field("newrev").is_some() => "update".into(),
            _ => String::new(),
        }
    }

    /// A named fact as templates see it: `branch`/`tag` are the refname's
    /// short name when it is one; anything absent is empty.
    pub fn fact(&self, name: &str) -> String {
        let refname = self.refname();
        match name {
            "repo" => self.repo(),
            "refname" => refname,
            "branch" => refname
                .strip_prefix("refs/heads/")
                .unwrap_or("")
                .to_string(),
            "tag" => refname.strip_prefix("refs/tags/").unwrap_or("").to_string(),
            "change" => self.change(),
            "project" => self.project(),
            "destination" => self.destination.clone(),
            "hookbus_id" => self.header("hookbus-id").unwrap_or_default(),
            other => self.field(other).unwrap_or_default(),
        }
    }

    /// The `hookbus-id` header: the same for every redelivery.
    pub fn id(&self) -> Option<String> {
        self.header("hookbus-id")
    }
}

fn lookup(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

fn clean(value: &str) -> Option<String> {
    let value = value.trim();
    (value.len() <= MAX_VALUE && !value.chars().any(char::is_control)).then(|| value.to_string())
}

/// `key: value` lines; keys are one word.
fn text_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let word = !key.is_empty()
            && key.len() <= 64
            && !line.starts_with([' ', '\t'])
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !word || fields.iter().any(|(known, _)| *known == key) {
            continue;
        }
        if let Some(value) = clean(value) {
            fields.push((key, value));
        }
        if fields.len() >= MAX_KEYS {
            break;
        }
    }
    fields
}

/// The string (and number) fields of a JSON object.
fn json_fields(text: &str) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str(text) else {
        return Vec::new();
    };
    object
        .into_iter()
        .filter_map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Number(number) => number.to_string(),
                _ => return None,
            };
            Some((key.to_ascii_lowercase(), clean(&value)?))
        })
        .take(MAX_KEYS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn headers_win_then_text_lines_then_json() {
        let facts = Facts::read(
            &pairs(&[
                ("destination", "/topic/x"),
                ("repo", "app"),
                ("refname", "refs/heads/main"),
            ]),
            b"repo: other\nProject: web\n commit: indented\npackage: foo-1\n",
        );
        assert_eq!(facts.repo(), "app");
        assert_eq!(facts.fact("branch"), "main");
        assert_eq!(facts.fact("tag"), "");
        assert_eq!(facts.project(), "web");
        assert_eq!(facts.body_key("package").as_deref(), Some("foo-1"));
        assert_eq!(facts.body_key("commit"), None);
        assert_eq!(facts.destination, "/topic/x");
        let json = Facts::read(&[], br#"{"repo": "j", "refname": "refs/tags/v1", "n": 3}"#);
        assert_eq!(
            (json.repo(), json.fact("tag"), json.fact("n")),
            ("j".into(), "v1".into(), "3".into())
        );
    }

    #[test]
    fn change_is_guessed_from_the_revisions() {
        let zero = "0".repeat(40);
        let rev = "a".repeat(40);
        let facts =
            |old: &str, new: &str| Facts::read(&pairs(&[("oldrev", old), ("newrev", new)]), b"");
        assert_eq!(facts(&zero, &rev).change(), "create");
        assert_eq!(facts(&rev, &zero).change(), "delete");
        assert_eq!(facts(&rev, &rev).change(), "update");
        assert_eq!(
            Facts::read(&pairs(&[("change", "force")]), b"").change(),
            "force"
        );
        let hostile = Facts::read(&pairs(&[("repo", "a\nb")]), b"");
        assert_eq!(hostile.repo(), "");
    }
}
