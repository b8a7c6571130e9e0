//! The one reader of received messages: [`read`] turns a frame's headers and
//! body into one [`Received`] value (or says why it cannot), and the
//! listener's mirrors, duplicate check, actions, templates, reports and
//! metrics all take that value, so no two of them can read one message two
//! ways. The rules, documented for users in README "How a message is read":
//!
//! - Every header must be one line of at most [`MAX_VALUE`] bytes. One that
//!   is not makes the whole message unusable: ignoring it would let another
//!   part of the message (a body line) speak in its place.
//! - What the message says (repo, refname, revs, change, project, pusher) is
//!   taken from one place, chosen once: hookbus's own headers when the
//!   message has any of them; else the body's keys — the string fields of a
//!   JSON object, else the seed's `key: value` text lines. Fields are never
//!   mixed from two places, so a body line cannot amend what headers say.
//! - Those fields must be one line of at most [`MAX_VALUE`] bytes, and revs
//!   object ids (below); else the message is unusable, never half-read.
//! - `hookbus-id` (duplicates) and `destination` come from headers only.
//! - A body of only line ends is the seed's keep-alive; a message naming no
//!   repository, no project and no body key says nothing to act on.

use crate::message::first_header;
use crate::sign::{Signature, Trust};

/// Longest value taken from a message: a header, a field, a body key's value.
pub const MAX_VALUE: usize = 4096;
/// Most body keys read from one message.
const MAX_KEYS: usize = 200;
/// The fields that say what happened, read from one place (see above).
const FIELDS: [&str; 7] = [
    "repo", "refname", "oldrev", "newrev", "change", "project", "pusher",
];

/// One received message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Where it came from (the frame's `destination`; empty when none).
    pub destination: String,
    /// Its headers, in order, values trimmed (`{header.NAME}`, header matches).
    pub headers: Vec<(String, String)>,
    /// Its body's keys, lower-cased, first of each wins: a JSON object's
    /// string and number fields, else `key: value` lines (`{body.KEY}`).
    pub body: Vec<(String, String)>,
    /// The repository, when the message names one (mirrors want it by this).
    pub repo: Option<String>,
    /// The ref that moved.
    pub refname: Option<String>,
    /// Where the ref was (an object id, all zeros for a create, or `rN`).
    pub oldrev: Option<String>,
    /// Where it went (the same forms).
    pub newrev: Option<String>,
    /// hookbus's change kind, else guessed from the revs (create, update, delete, …).
    pub change: Option<String>,
    /// The SVN project.
    pub project: Option<String>,
    /// Who pushed, when known.
    pub pusher: Option<String>,
    /// The `hookbus-id` header: the same for every redelivery of one message.
    pub id: Option<String>,
    /// The changed paths of a mirror's published tree (its on-change steps'
    /// `{paths}`); a message has none.
    pub paths: Vec<String>,
    /// The verdict on its `hookbus-signature` ([`crate::sign`]): whether
    /// anything it asks for may run is `[listen] require_signature`'s call.
    pub signature: Signature,
}

/// What a frame turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// A message that says something.
    Received(Box<Received>),
    /// A body that is only a line end: the seed's keep-alive.
    Keepalive,
    /// Nothing may be done for it; the reason says why.
    Unusable(String),
}

/// Reads a frame's headers and body (see the module's rules), trusting no key.
pub fn read(headers: &[(String, String)], body: &[u8]) -> Reading {
    read_trusting(headers, body, &Trust::default())
}

/// Reads a frame's headers and body, its signature checked against `trust`
/// now (the raw headers, as the publisher signed them).
pub fn read_trusting(headers: &[(String, String)], body: &[u8], trust: &Trust) -> Reading {
    match read_fields(headers, body) {
        Ok(Reading::Received(mut message)) => {
            message.signature = trust.verify(headers, body, crate::sign::unix_now());
            Reading::Received(message)
        }
        Ok(reading) => reading,
        Err(reason) => Reading::Unusable(reason),
    }
}

fn read_fields(raw_headers: &[(String, String)], body: &[u8]) -> Result<Reading, String> {
    let mut headers = Vec::with_capacity(raw_headers.len());
    for (name, value) in raw_headers {
        let value = one_line(value).map_err(|why| format!("header {name:?} {why}"))?;
        headers.push((name.clone(), value.to_string()));
    }
    let from_headers = FIELDS
        .iter()
        .any(|name| first_header(&headers, name).is_some());
    if !from_headers && body.iter().all(|&b| b == b'\n' || b == b'\r') {
        return match body.is_empty() {
            true => Err("empty message".into()),
            false => Ok(Reading::Keepalive),
        };
    }
    let keys = match std::str::from_utf8(body) {
        Ok(text) => body_keys(text),
        Err(_) if from_headers => Vec::new(),
        Err(_) => return Err("neither hookbus's headers nor a UTF-8 body".into()),
    };
    let mut fields: [Option<String>; FIELDS.len()] = Default::default();
    for (slot, name) in fields.iter_mut().zip(FIELDS) {
        let value = match from_headers {
            true => first_header(&headers, name).map(str::to_string),
            false => match keys.iter().find(|(key, _)| key == name) {
                Some((_, value)) => Some(value.clone().map_err(|why| format!("{name} {why}"))?),
                None => None,
            },
        };
        *slot = value.filter(|value| !value.is_empty());
    }
    let [repo, refname, oldrev, newrev, change, project, pusher] = fields;
    for (name, rev) in [("oldrev", &oldrev), ("newrev", &newrev)] {
        if let Some(rev) = rev.as_deref().filter(|rev| !is_revision(rev)) {
            return Err(format!("{name} {} is not an object id", shown(rev)));
        }
    }
    // Free-text lines that are not one line of a value are no keys.
    let body: Vec<(String, String)> = (keys.into_iter())
        .filter_map(|(key, value)| Some((key, value.ok()?)))
        .collect();
    if repo.is_none() && project.is_none() && body.is_empty() {
        return Err("no repository, no project and no key: value line or JSON field".into());
    }
    let change = change.or_else(|| guess_change(oldrev.as_deref(), newrev.as_deref()));
    Ok(Reading::Received(Box::new(Received {
        destination: first_header(&headers, "destination")
            .unwrap_or_default()
            .to_string(),
        id: first_header(&headers, "hookbus-id")
            .filter(|id| !id.is_empty())
            .map(str::to_string),
        headers,
        body,
        repo,
        refname,
        oldrev,
        newrev,
        change,
        project,
        pusher,
        paths: Vec::new(),
        signature: Signature::Unsigned,
    })))
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// A body key's value (`key` lower-case).
    pub fn body_key(&self, key: &str) -> Option<&str> {
        first_header(&self.body, key)
    }

    /// A named fact as matches and templates see it: `branch`/`tag` are the
    /// refname's short name when it is one; anything absent is empty.
    pub fn fact(&self, name: &str) -> String {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let short = |prefix: &str| {
            (self.refname.as_deref())
                .and_then(|refname| refname.strip_prefix(prefix))
                .unwrap_or_default()
                .to_string()
        };
        match name {
            "repo" => text(&self.repo),
            "refname" => text(&self.refname),
            "branch" => short("refs/heads/"),
            "tag" => short("refs/tags/"),
            "oldrev" => text(&self.oldrev),
            "newrev" => text(&self.newrev),
            "change" => text(&self.change),
            "project" => text(&self.project),
            "pusher" => text(&self.pusher),
            "destination" => self.destination.clone(),
            "hookbus_id" => text(&self.id),
            "paths" => self.paths.join("\n"),
            _ => String::new(),
        }
    }

    /// What it says, a `name: value` line per field it has (`listen --check`).
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        let named = FIELDS.iter().map(|name| (*name, self.fact(name)));
        let extra = [
            ("hookbus-id", self.fact("hookbus_id")),
            ("destination", self.destination.clone()),
        ];
        for (name, value) in named.chain(extra) {
            if !value.is_empty() {
                lines.push(format!("{name}: {value}"));
            }
        }
        if !self.body.is_empty() {
            let keys: Vec<&str> = self.body.iter().map(|(key, _)| key.as_str()).collect();
            lines.push(format!("body keys: {}", keys.join(", ")));
        }
        lines.join("\n")
    }
}

/// A value trimmed, when it is one line of at most [`MAX_VALUE`] bytes.
fn one_line(value: &str) -> Result<&str, String> {
    let value = value.trim();
    if value.len() > MAX_VALUE {
        return Err(format!("is longer than {MAX_VALUE} bytes"));
    }
    match value.chars().any(char::is_control) {
        true => Err(format!("holds a control character: {}", shown(value))),
        false => Ok(value),
    }
}

/// A value as a reason quotes it: escaped, and cut so a log line stays short.
fn shown(value: &str) -> String {
    const SHOWN: usize = 80;
    match value.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}…", &value[..end]),
        None => format!("{value:?}"),
    }
}

/// A rev as hookbus and the seed send them: a full hex object id (40 digits
/// for SHA-1, 64 for SHA-256; all zeros for a created or deleted ref) or
/// Subversion's `rN`. Anything else — an abbreviation, a ref name, shell text —
/// is no revision, and a message claiming it is not acted on.
fn is_revision(rev: &str) -> bool {
    let hex = matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit());
    let svn = rev.strip_prefix('r').is_some_and(|number| {
        (1..=20).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
    });
    hex || svn
}

/// The seed's messages have no `change`: a null old rev is a create, a null
/// new one a delete, any other new rev an update.
fn guess_change(oldrev: Option<&str>, newrev: Option<&str>) -> Option<String> {
    let null = |rev: Option<&str>| rev.is_some_and(|rev| rev.bytes().all(|b| b == b'0'));
    let change = match (null(oldrev), null(newrev)) {
        (true, false) => "create",
        (false, true) => "delete",
        _ if newrev.is_some() => "update",
        _ => return None,
    };
    Some(change.into())
}

/// A body key and its value, or why the value is not one line.
type BodyKey = (String, Result<String, String>);

/// The body's keys, the first of each: a JSON object's string and number
/// fields, else the `key: value` lines of a text body. A bad value stays
/// with its key, so that a later line of the same key cannot stand in for it.
fn body_keys(text: &str) -> Vec<BodyKey> {
    let pairs: Box<dyn Iterator<Item = (String, String)>> = match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(object)) => Box::new(json_fields(object)),
        _ => Box::new(text_lines(text)),
    };
    let mut keys: Vec<BodyKey> = Vec::new();
    for (key, value) in pairs {
        let key = key.to_ascii_lowercase();
        if !keys.iter().any(|(known, _)| *known == key) {
            keys.push((key, one_line(&value).map(str::to_string)));
        }
        if keys.len() >= MAX_KEYS {
            break;
        }
    }
    keys
}

/// `key: value` lines as the seed's consumers read them: a one-word key at
/// the start of a line (any case, so SVN's `Project:` is `project`), a colon,
/// the value. Indented lines (commit text, diffs) are not keys.
fn text_lines(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let word = |key: &str| {
        !key.is_empty()
            && key.len() <= 64
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(move |(key, _)| word(key))
        .map(|(key, value)| (key.to_string(), value.to_string()))
}

/// A JSON object's string and number fields.
fn json_fields(
    object: serde_json::Map<String, serde_json::Value>,
) -> impl Iterator<Item = (String, String)> {
    object.into_iter().filter_map(|(key, value)| match value {
        serde_json::Value::String(text) => Some((key, text)),
        serde_json::Value::Number(number) => Some((key, number.to_string())),
        _ => None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const REV: &str = "aa794ab6cc1a4a504fd908efc938c0f241557ad4";

    /// Headers from `(name, value)` pairs.
    pub(crate) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A message that must read as one.
    pub(crate) fn received(pairs: &[(&str, &str)], body: &str) -> Received {
        match read(&headers(pairs), body.as_bytes()) {
            Reading::Received(message) => *message,
            other => panic!("{pairs:?} {body:?}: {other:?}"),
        }
    }

    fn unusable(pairs: &[(&str, &str)], body: &[u8]) -> String {
        match read(&headers(pairs), body) {
            Reading::Unusable(why) => why,
            other => panic!("{pairs:?} {body:?}: {other:?}"),
        }
    }

    #[test]
    fn hookbus_headers_are_the_whole_story_when_present() {
        let message = received(
            &[
                ("destination", "/topic/c"),
                ("repo", "app"),
                ("refname", "refs/heads/main"),
                ("newrev", REV),
                ("hookbus-id", "x1"),
            ],
            "repo: other\noldrev: 0000000000000000000000000000000000000000\nProject: web\npackage: foo-1\n",
        );
        assert_eq!(message.repo.as_deref(), Some("app"));
        assert_eq!(message.id.as_deref(), Some("x1"));
        assert_eq!(message.fact("branch"), "main");
        assert_eq!(message.destination, "/topic/c");
        // No field is taken from the body when the headers speak…
        assert_eq!((&message.oldrev, &message.project), (&None, &None));
        assert_eq!(message.change.as_deref(), Some("update"));
        // …but the body's keys are there for `body.KEY`.
        assert_eq!(message.body_key("package"), Some("foo-1"));
        let row_one = received(&[("repo", "app")], "refname: refs/heads/main\n");
        assert_eq!(row_one.refname, None);
    }

    #[test]
    fn the_seeds_text_format_is_read_as_its_consumers_read_it() {
        let body = format!(
            "[spog] refs/heads/master {REV}\nrepo: spog\noldrev: {REV}\nnewrev: {REV}\nrefname: refs/heads/master\n commit {REV}\nAuthor: A <a@example.com>\n\n    repo: evil\nrepo: evil\n"
        );
        let message = received(&[("hookbus-id", "s1")], &body);
        assert_eq!(message.repo.as_deref(), Some("spog"));
        assert_eq!(message.refname.as_deref(), Some("refs/heads/master"));
        assert_eq!(message.newrev.as_deref(), Some(REV));
        assert_eq!(message.id.as_deref(), Some("s1"));
        let loose = received(&[], "Repo: app\nrefname:refs/heads/main\nProject: web\n");
        assert_eq!(
            (
                loose.fact("repo"),
                loose.fact("refname"),
                loose.fact("project")
            ),
            ("app".into(), "refs/heads/main".into(), "web".into())
        );
        let package = received(&[], "Package: foo-tools\nversion: 2\n");
        assert_eq!(
            (package.fact("repo"), package.body_key("package")),
            (String::new(), Some("foo-tools"))
        );
    }

    #[test]
    fn json_bodies_are_read() {
        let body = format!(
            "{{\"repo\": \"team/app\", \"refname\": \"refs/tags/v1\", \"newrev\": \"{REV}\", \"n\": 3, \"commits\": []}}"
        );
        let message = received(&[], &body);
        assert_eq!(message.fact("repo"), "team/app");
        assert_eq!(message.fact("tag"), "v1");
        assert_eq!(message.body_key("n"), Some("3"));
        assert_eq!(message.body_key("commits"), None);
    }

    #[test]
    fn revs_are_object_ids_and_change_is_guessed_from_them() {
        let zero = "0".repeat(40);
        let long = "b".repeat(64);
        let change = |old: &str, new: &str| {
            received(&[("repo", "a"), ("oldrev", old), ("newrev", new)], "").fact("change")
        };
        assert_eq!(change(&zero, REV), "create");
        assert_eq!(change(REV, &zero), "delete");
        assert_eq!(change(REV, &long), "update");
        assert_eq!(change("r4", "r5"), "update");
        let told = received(&[("repo", "a"), ("change", "force"), ("newrev", REV)], "");
        assert_eq!(told.fact("change"), "force");
        for bad in ["$(rm -rf /)", "aa794ab", "refs/heads/main", "r", "rx1"] {
            let why = unusable(&[("repo", "a"), ("newrev", bad)], b"");
            assert!(why.contains("not an object id"), "{bad}: {why}");
        }
        let long = "x".repeat(MAX_VALUE);
        let why = unusable(&[("repo", "a"), ("newrev", &long)], b"");
        assert!(why.len() < 200, "a reason is one short log line: {why}");
        let why = unusable(
            &[],
            format!("repo: a\noldrev: HEAD~1\nnewrev: {REV}\n").as_bytes(),
        );
        assert!(why.starts_with("oldrev"), "{why}");
    }

    #[test]
    fn a_bad_header_makes_the_message_unusable_never_a_fallback() {
        let why = unusable(&[("repo", "a\nb")], b"repo: app\n");
        assert!(why.contains("control character"), "{why}");
        let why = unusable(&[("repo", "app"), ("x-note", "a\rb")], b"");
        assert!(why.contains("x-note"), "{why}");
        let long = "a".repeat(MAX_VALUE + 1);
        assert!(unusable(&[("refname", &long)], b"").contains("longer than"));
        // A body field that is not one line is not skipped for a later one.
        let json = format!("{{\"repo\": \"{}\"}}", "r".repeat(MAX_VALUE + 1));
        assert!(unusable(&[], json.as_bytes()).starts_with("repo"));
        assert!(unusable(&[], b"{\"repo\": \"a\\nb\"}").starts_with("repo"));
        // Free-text lines that are not keys are only dropped.
        let message = received(&[], "repo: app\nnote: a\tb\n");
        assert_eq!(message.body_key("note"), None);
    }

    #[test]
    fn keepalives_and_messages_that_say_nothing_are_told_apart() {
        assert_eq!(read(&[], b"\n"), Reading::Keepalive);
        assert_eq!(
            read(&headers(&[("destination", "/t")]), b"\r\n"),
            Reading::Keepalive
        );
        assert_eq!(unusable(&[], b""), "empty message");
        assert!(unusable(&[], b"\xff\xfe").contains("UTF-8"));
        assert!(unusable(&[], b"hello").contains("no repository"));
        assert!(unusable(&[("repo", "  ")], b"").contains("no repository"));
        let svn = received(&[("repo", "depot"), ("project", "awful")], "");
        assert_eq!(svn.fact("project"), "awful");
    }

    #[test]
    fn describe_shows_every_field_read() {
        let message = received(
            &[
                ("repo", "app"),
                ("refname", "refs/heads/main"),
                ("pusher", "alice"),
            ],
            "package: x\n",
        );
        assert_eq!(
            message.describe(),
            "repo: app\nrefname: refs/heads/main\npusher: alice\nbody keys: package"
        );
    }
}
