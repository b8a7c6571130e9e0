//! What the forges send: which event a request is, its delivery id, and a push
//! payload read into one shape whatever the forge.

use super::config::ForgeKind;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::borrow::Cow;

/// The kind of event a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// GitHub's hello when a webhook is created; answered 200.
    Ping,
    /// A push of one ref (branch or tag).
    Push,
    /// Anything else, by the forge's own name for it.
    Other(String),
}

/// The event of a request of `kind`, from its headers.
pub fn event<'a>(kind: ForgeKind, header: impl Fn(&str) -> Option<&'a str>) -> Event {
    let name = match kind {
        ForgeKind::Github => header("X-GitHub-Event"),
        ForgeKind::Gitlab => header("X-Gitlab-Event"),
        ForgeKind::Gitea => header("X-Gitea-Event")
            .or_else(|| header("X-Forgejo-Event"))
            .or_else(|| header("X-Gogs-Event")),
    }
    .unwrap_or("")
    .trim();
    match (kind, name) {
        (ForgeKind::Github, "ping") => Event::Ping,
        (ForgeKind::Github | ForgeKind::Gitea, "push") => Event::Push,
        (ForgeKind::Gitlab, "Push Hook" | "Tag Push Hook") => Event::Push,
        (_, other) => Event::Other(other.to_string()),
    }
}

/// The JSON payload of a request body. GitHub (and Gitea) also send it
/// form-encoded, as the `payload` field, when a webhook's content type is
/// `application/x-www-form-urlencoded` (GitHub's default); the signature is
/// over the body as sent, so this runs after it was checked.
pub fn json_payload<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<Cow<'a, [u8]>> {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Ok(Cow::Borrowed(body));
    }
    let Some(encoded) = body
        .split(|&byte| byte == b'&')
        .find_map(|field| field.strip_prefix(b"payload="))
    else {
        bail!("a form-encoded body without a payload field (set the webhook's content type to application/json)");
    };
    let spaced: Vec<u8> = encoded
        .iter()
        .map(|&byte| if byte == b'+' { b' ' } else { byte })
        .collect();
    Ok(Cow::Owned(
        percent_encoding::percent_decode(&spaced).collect(),
    ))
}

/// The id a forge gives one delivery and keeps when it delivers it again;
/// `None` when absent or not a plain token.
pub fn delivery_id<'a>(
    kind: ForgeKind,
    header: impl Fn(&str) -> Option<&'a str>,
) -> Option<String> {
    let names: &[&str] = match kind {
        ForgeKind::Github => &["X-GitHub-Delivery"],
        ForgeKind::Gitlab => &["Idempotency-Key", "X-Gitlab-Event-UUID"],
        ForgeKind::Gitea => &["X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery"],
    };
    let id = names.iter().find_map(|name| header(name))?.trim();
    let plain = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    plain.then(|| id.to_string())
}

/// A person as the payload names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Person {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Email address (GitLab may say `[REDACTED]`).
    #[serde(default)]
    pub email: String,
}

/// One commit the payload lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedCommit {
    /// Full hex commit id.
    pub id: String,
    /// The whole commit message.
    #[serde(default)]
    pub message: String,
    /// RFC 3339.
    #[serde(default)]
    pub timestamp: String,
    /// Who wrote the commit.
    #[serde(default)]
    pub author: Person,
    /// Absent on GitLab, which names only the author.
    pub committer: Option<Person>,
    /// Paths the commit added.
    #[serde(default)]
    pub added: Vec<String>,
    /// Paths the commit removed.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Paths the commit modified.
    #[serde(default)]
    pub modified: Vec<String>,
    /// GitHub: false when the commit was already in the repository before.
    #[serde(default = "yes")]
    pub distinct: bool,
}

fn yes() -> bool {
    true
}

/// A push, whatever the forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The forge's full name of the repository (`owner/name`, `group/sub/project`).
    pub full_name: String,
    /// The pushed ref, e.g. `refs/heads/main`.
    pub refname: String,
    /// The ref's old id; all zeros for a create.
    pub before: String,
    /// The ref's new id; all zeros for a delete.
    pub after: String,
    /// Who pushed (the forge's user name); empty when not said.
    pub pusher: String,
    /// Whether the forge says the push was forced (GitHub only says).
    pub forced: Option<bool>,
    /// The listed commits, newest first.
    pub commits: Vec<ListedCommit>,
    /// How many commits the push had, when the forge says (GitLab, Gitea);
    /// GitHub lists up to 2,048 and gives no total.
    pub total: Option<usize>,
}

/// GitHub lists at most this many commits in a push payload.
pub const GITHUB_MAX_LISTED: usize = 2048;

#[derive(Deserialize)]
struct RawPush {
    #[serde(rename = "ref")]
    refname: String,
    before: String,
    after: String,
    #[serde(default)]
    commits: Vec<ListedCommit>,
    #[serde(default)]
    forced: Option<bool>,
    // GitHub and Gitea
    repository: Option<RawRepository>,
    pusher: Option<RawPusher>,
    #[serde(default)]
    total_commits: Option<usize>,
    // GitLab
    project: Option<RawProject>,
    user_username: Option<String>,
    user_name: Option<String>,
    total_commits_count: Option<usize>,
}

#[derive(Deserialize)]
struct RawRepository {
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct RawProject {
    path_with_namespace: String,
}

#[derive(Deserialize)]
struct RawPusher {
    name: Option<String>,
    login: Option<String>,
    username: Option<String>,
}

/// Reads a push payload of `kind`; the error is one line saying what is wrong.
pub fn parse_push(kind: ForgeKind, body: &[u8]) -> Result<Push> {
    let raw: RawPush = serde_json::from_slice(body).context("not a push payload")?;
    let full_name = match kind {
        ForgeKind::Gitlab => raw.project.map(|project| project.path_with_namespace),
        ForgeKind::Github | ForgeKind::Gitea => raw.repository.and_then(|repo| repo.full_name),
    };
    let Some(full_name) = full_name.filter(|name| !name.is_empty()) else {
        bail!("the payload names no repository");
    };
    for id in [&raw.before, &raw.after] {
        if !crate::git::input::is_full_id(id) {
            bail!("{id:?} is not a full commit id");
        }
    }
    let pusher = match kind {
        ForgeKind::Gitlab => raw.user_username.or(raw.user_name),
        ForgeKind::Github => raw.pusher.and_then(|p| p.name),
        ForgeKind::Gitea => raw.pusher.and_then(|p| p.login.or(p.username).or(p.name)),
    };
    let mut commits = raw.commits;
    // GitHub and GitLab list oldest first, Gitea newest first: the pushed
    // tip tells which end is newest.
    if commits.first().is_some_and(|c| c.id != raw.after) {
        commits.reverse();
    }
    Ok(Push {
        full_name,
        refname: raw.refname,
        before: raw.before.to_ascii_lowercase(),
        after: raw.after.to_ascii_lowercase(),
        pusher: pusher.unwrap_or_default(),
        forced: raw.forced,
        commits,
        total: raw.total_commits_count.or(raw.total_commits),
    })
}

/// The repository a non-push payload is about, when it says (for `{repo}`).
pub fn repository_of(kind: ForgeKind, body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let name = match kind {
        ForgeKind::Gitlab => &value["project"]["path_with_namespace"],
        ForgeKind::Github | ForgeKind::Gitea => &value["repository"]["full_name"],
    };
    name.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_delivery_ids_by_forge() {
        let github = |name: &str| match name {
            "X-GitHub-Event" => Some("ping"),
            "X-GitHub-Delivery" => Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            _ => None,
        };
        assert_eq!(event(ForgeKind::Github, github), Event::Ping);
        assert!(delivery_id(ForgeKind::Github, github).is_some());
        let gitlab = |name: &str| (name == "X-Gitlab-Event").then_some("Tag Push Hook");
        assert_eq!(event(ForgeKind::Gitlab, gitlab), Event::Push);
        let forgejo = |name: &str| match name {
            "X-Forgejo-Event" => Some("pull_request"),
            "X-Forgejo-Delivery" => Some("bad id"),
            _ => None,
        };
        assert_eq!(
            event(ForgeKind::Gitea, forgejo),
            Event::Other("pull_request".into())
        );
        assert_eq!(delivery_id(ForgeKind::Gitea, forgejo), None);
    }

    #[test]
    fn form_encoded_payloads_are_decoded_and_json_is_passed_through() {
        let form = Some("application/x-www-form-urlencoded");
        let decoded = json_payload(form, b"a=1&payload=%7B%22x%22%3A+%22a+b%2B%22%7D").unwrap();
        assert_eq!(&*decoded, br#"{"x": "a b+"}"#);
        let json = br#"{"payload=": 1}"#;
        assert_eq!(
            &*json_payload(Some("application/json"), json).unwrap(),
            json
        );
        assert_eq!(&*json_payload(None, json).unwrap(), json);
        assert!(json_payload(form, b"payloads=1").is_err());
    }

    #[test]
    fn bad_payloads_say_why_in_one_line() {
        let error = |body: &str| {
            format!(
                "{:#}",
                parse_push(ForgeKind::Github, body.as_bytes()).unwrap_err()
            )
        };
        assert!(error("{").starts_with("not a push payload"));
        let zero = "0".repeat(40);
        let no_repo = format!(r#"{{"ref":"refs/heads/x","before":"{zero}","after":"{zero}"}}"#);
        assert_eq!(error(&no_repo), "the payload names no repository");
        let short = r#"{"ref":"refs/heads/x","before":"abc","after":"abc","repository":{"full_name":"a/b"}}"#;
        assert!(error(short).contains("is not a full commit id"));
    }
}
