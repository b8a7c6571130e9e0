//! What a received message says: which repository changed, and where its ref
//! went. hookbus's own headers come first; else the `repo:`/`refname:`/`newrev:`
//! lines of a text body (the seed's Ruby hook and other emitters); else a JSON
//! body. Nothing here touches the disk: the result only selects mirrors.

/// Longest repository name, refname or id taken from a message.
const MAX_FIELD: usize = 1024;

/// A repository update as a message announced it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The repository's name, as mirrors are matched against it.
    pub repo: String,
    /// The ref that moved, if the message said.
    pub refname: Option<String>,
    /// Where it went (a full hex object id, else dropped).
    pub newrev: Option<String>,
    /// hookbus's change kind (create, update, delete, …).
    pub change: Option<String>,
    /// The `hookbus-id` header: the same for every redelivery of one message.
    pub id: Option<String>,
}

/// What a message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A repository update.
    Update(Update),
    /// A body that is only a line end: the seed's keepalive.
    Keepalive,
    /// Nothing usable; the reason says why.
    Unusable(String),
}

/// Reads a message's headers and body.
pub fn parse(headers: &[(String, String)], body: &[u8]) -> Parsed {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let id = header("hookbus-id").and_then(clean);
    if let Some(repo) = header("repo") {
        return finish(Fields {
            repo: Some(repo.to_string()),
            refname: header("refname").map(str::to_string),
            newrev: header("newrev").map(str::to_string),
            change: header("change").map(str::to_string),
            id,
        });
    }
    if body.iter().all(|&b| b == b'\n' || b == b'\r') {
        return if body.is_empty() {
            Parsed::Unusable("empty message".into())
        } else {
            Parsed::Keepalive
        };
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Parsed::Unusable("neither repo header nor UTF-8 body".into());
    };
    let mut fields = from_text(text);
    if fields.repo.is_none() {
        fields = from_json(text);
    }
    fields.id = id;
    finish(fields)
}

#[derive(Default)]
struct Fields {
    repo: Option<String>,
    refname: Option<String>,
    newrev: Option<String>,
    change: Option<String>,
    id: Option<String>,
}

/// `key: value` lines of the seed's text format; the first of each key wins.
fn from_text(text: &str) -> Fields {
    let mut fields = Fields::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let slot = match key {
            "repo" => &mut fields.repo,
            "refname" => &mut fields.refname,
            "newrev" => &mut fields.newrev,
            _ => continue,
        };
        slot.get_or_insert_with(|| value.trim().to_string());
    }
    fields
}

fn from_json(text: &str) -> Fields {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str(text) else {
        return Fields::default();
    };
    let field = |name: &str| {
        object
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    Fields {
        repo: field("repo"),
        refname: field("refname"),
        newrev: field("newrev"),
        change: field("change"),
        id: None,
    }
}

fn finish(fields: Fields) -> Parsed {
    let Some(repo) = fields.repo.as_deref().and_then(clean) else {
        return Parsed::Unusable("no usable repository name".into());
    };
    Parsed::Update(Update {
        repo,
        refname: fields.refname.as_deref().and_then(clean),
        newrev: fields.newrev.filter(|rev| {
            matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit())
        }),
        change: fields.change.as_deref().and_then(clean),
        id: fields.id,
    })
}

/// A field as it may be logged and matched: non-empty, bounded, one line.
fn clean(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty() && value.len() <= MAX_FIELD && !value.chars().any(char::is_control))
        .then(|| value.to_string())
}

/// Headers from `(name, value)` pairs, for tests.
#[cfg(test)]
pub(crate) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REV: &str = "aa794ab6cc1a4a504fd908efc938c0f241557ad4";

    #[test]
    fn hookbus_headers_win_over_the_body() {
        let parsed = parse(
            &headers(&[
                ("repo", "app"),
                ("refname", "refs/heads/main"),
                ("newrev", REV),
                ("hookbus-id", "x1"),
            ]),
            b"repo: other\n",
        );
        let Parsed::Update(update) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(update.repo, "app");
        assert_eq!(update.newrev.as_deref(), Some(REV));
        assert_eq!(update.id.as_deref(), Some("x1"));
    }

    #[test]
    fn the_seeds_text_format_is_read() {
        let body = format!(
            "[spog] refs/heads/master {REV}\nrepo: spog\noldrev: {REV}\nnewrev: {REV}\nrefname: refs/heads/master\n commit {REV}\n\nrepo: evil\n"
        );
        let Parsed::Update(update) = parse(&[], body.as_bytes()) else {
            panic!()
        };
        assert_eq!(update.repo, "spog");
        assert_eq!(update.refname.as_deref(), Some("refs/heads/master"));
        assert_eq!(update.newrev.as_deref(), Some(REV));
    }

    #[test]
    fn json_bodies_are_read() {
        let body = format!(
            "{{\"repo\": \"team/app\", \"refname\": \"refs/tags/v1\", \"newrev\": \"{REV}\"}}"
        );
        let Parsed::Update(update) = parse(&[], body.as_bytes()) else {
            panic!()
        };
        assert_eq!(update.repo, "team/app");
    }

    #[test]
    fn keepalives_and_junk_are_told_apart() {
        assert_eq!(parse(&[], b"\n"), Parsed::Keepalive);
        assert!(matches!(parse(&[], b""), Parsed::Unusable(_)));
        assert!(matches!(parse(&[], b"\xff\xfe"), Parsed::Unusable(_)));
        assert!(matches!(parse(&[], b"hello"), Parsed::Unusable(_)));
        assert!(matches!(
            parse(&headers(&[("repo", "a\nb")]), b""),
            Parsed::Unusable(_)
        ));
        assert!(matches!(
            parse(&headers(&[("repo", "  ")]), b""),
            Parsed::Unusable(_)
        ));
        let Parsed::Update(update) =
            parse(&headers(&[("repo", "a"), ("newrev", "$(rm -rf /)")]), b"")
        else {
            panic!()
        };
        assert_eq!(update.newrev, None);
    }
}
