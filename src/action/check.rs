//! `hookbus listen --check`: the sample message as the listener reads it,
//! then each action and what it would do for it, every template filled
//! (nothing is run, no secret is shown).

use super::run::{command, message, request, Scope};
use super::step::{Kind, Step};
use super::Action;
use crate::inbound::{self, Reading, Received};
use std::fmt::Write;

/// The built-in sample: a push of a branch, as hookbus's hook announces it.
pub const SAMPLE_HEADERS: [(&str, &str); 9] = [
    ("destination", "/topic/git.commits"),
    ("repo", "example"),
    ("refname", "refs/heads/master"),
    ("oldrev", "1111111111111111111111111111111111111111"),
    ("newrev", "2222222222222222222222222222222222222222"),
    ("reftype", "branch"),
    ("change", "update"),
    ("pusher", "alice"),
    ("hookbus-id", "sample-0001"),
];

/// The built-in sample message, read.
pub fn sample() -> Reading {
    let headers: Vec<(String, String)> = SAMPLE_HEADERS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    inbound::read(&headers, b"")
}

/// A sample message from JSON: `{"headers": {NAME: VALUE, …}, "body": TEXT}`
/// (both optional).
pub fn sample_from_json(text: &str) -> anyhow::Result<Reading> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        headers: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        body: String,
    }
    let sample: Sample = serde_json::from_str(text).map_err(|error| {
        anyhow::anyhow!("not a JSON object {{\"headers\": {{…}}, \"body\": \"…\"}}: {error}")
    })?;
    let headers: Vec<(String, String)> = sample.headers.into_iter().collect();
    Ok(inbound::read(&headers, sample.body.as_bytes()))
}

/// Says how the sample reads and which mirrors would be updated for it
/// (`wanting`: a line per mirror, from the listener's plan), then describes
/// every action for it.
pub fn describe(actions: &[Action], sample: &Reading, wanting: &[String], host: &str) -> String {
    let mut out = String::new();
    let message = match sample {
        Reading::Received(message) => {
            let _ = writeln!(out, "the sample reads as:");
            for line in message.describe().lines() {
                let _ = writeln!(out, "  {line}");
            }
            for mirror in wanting {
                let _ = writeln!(out, "mirror {mirror}: updated for the sample");
            }
            message
        }
        Reading::Keepalive => {
            out.push_str("the sample is a keep-alive: nothing is done for it\n");
            return out;
        }
        Reading::Unusable(why) => {
            let _ = writeln!(
                out,
                "the sample is unusable ({why}): nothing is done for it"
            );
            return out;
        }
    };
    for action in actions {
        let verdict = match action.matcher.mismatch(message) {
            None => "matches the sample".to_string(),
            Some(why) => format!("does not match the sample: {why}"),
        };
        let _ = writeln!(out, "action {}: {verdict}", action.name);
        for step in &action.steps {
            describe_step(&mut out, action, step, message, host, 1);
        }
    }
    if actions.is_empty() {
        out.push_str("no [[action]] in the config\n");
    }
    out
}

fn describe_step(
    out: &mut String,
    action: &Action,
    step: &Step,
    received: &Received,
    host: &str,
    depth: usize,
) {
    let scope = Scope {
        message: received,
        action: &action.name,
        host,
        parent: None,
        token: None,
        dry_run: true,
    };
    let indent = "  ".repeat(depth);
    let what = match &step.kind {
        Kind::Http(plan) => request(plan, &scope).map(|request| {
            let mut text = format!("http {} {}", request.method, request.url);
            for (name, value) in &request.headers {
                let _ = write!(text, "\n{indent}    {name}: {value}");
            }
            if let Some((user, _)) = &request.basic {
                let _ = write!(text, "\n{indent}    basic auth as {user}");
            }
            if let Some(body) = &request.body {
                let _ = write!(
                    text,
                    "\n{indent}    body: {}",
                    String::from_utf8_lossy(body)
                );
            }
            let _ = write!(
                text,
                "\n{indent}    timeout {} s, {} retries",
                request.timeout.as_secs(),
                request.retries
            );
            text
        }),
        Kind::Exec(plan) => command(plan, &scope).map(|run| {
            let mut text = format!("exec {:?}", run.argv);
            if let Some(cwd) = &run.cwd {
                let _ = write!(text, " in {}", cwd.display());
            }
            if let Some(user) = &run.user {
                let _ = write!(text, " as {user}");
            }
            let _ = write!(text, ", timeout {} s", run.timeout.as_secs());
            text
        }),
        Kind::Publish(plan) => message(plan, &scope).map(|message| {
            let mut text = format!("publish to {}", message.destination);
            for (name, value) in &message.headers {
                let _ = write!(text, "\n{indent}    {name}: {value}");
            }
            let _ = write!(
                text,
                "\n{indent}    body: {}",
                String::from_utf8_lossy(&message.body)
            );
            text
        }),
        Kind::Mirror(name) => Ok(format!("update mirror {name}")),
    };
    let what = what.unwrap_or_else(|reason| format!("would fail: {reason}"));
    let _ = writeln!(out, "{indent}{}: {what}", step.label);
    for handler in step.on_success.iter().chain(&step.on_failure) {
        describe_step(out, action, handler, received, host, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_fills_every_template_and_hides_secrets() {
        let config: Vec<super::super::config::ActionConfig> = toml::from_str::<toml::Table>(
            "[[action]]\nname = 'build'\n[action.match]\nrepo = ['ex*']\n[[action.step]]\nkind = 'http'\nmethod = 'POST'\nurl = 'http://j/job/{repo}/build?token={token}'\ntoken = 'hunter2'\nform = { REV = '{newrev}' }\n[action.step.on_failure]\nkind = 'publish'\ndestination = '/topic/ci'\nheaders = { subject = 'failed {repo}' }\nbody = '{parent.output}'\n[[action]]\nname = 'pkg'\n[action.match]\nbody = { package = 'foo*' }\n[[action.step]]\nkind = 'exec'\nargv = ['/usr/bin/apt-get', 'install', '{body.package}']\n",
        )
        .unwrap()["action"]
            .clone()
            .try_into()
            .unwrap();
        let actions = super::super::config::compile(&config, &[]).unwrap();
        let text = describe(&actions, &sample(), &[], "web1");
        assert!(
            text.starts_with(
                "the sample reads as:\n  repo: example\n  refname: refs/heads/master\n"
            ),
            "{text}"
        );
        assert!(text.contains("action build: matches the sample"), "{text}");
        assert!(
            text.contains("http POST http://j/job/example/build?token=%3Ctoken%3E"),
            "{text}"
        );
        assert!(
            text.contains("body: REV=2222222222222222222222222222222222222222"),
            "{text}"
        );
        assert!(
            text.contains("step 1 on_failure: publish to /topic/ci"),
            "{text}"
        );
        assert!(text.contains("body: <parent.output>"), "{text}");
        assert!(text.contains("action pkg: does not match"), "{text}");
        assert!(
            text.contains("would fail: the message has no body line \"package\""),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
        let package = sample_from_json(r#"{"body": "package: foo-utils\nversion: 2\n"}"#).unwrap();
        let text = describe(&actions, &package, &[], "web1");
        assert!(text.contains("action pkg: matches"), "{text}");
        assert!(
            text.contains(r#"exec ["/usr/bin/apt-get", "install", "foo-utils"]"#),
            "{text}"
        );
        assert!(sample_from_json("[1]").is_err());
        let bad = sample_from_json(r#"{"headers": {"repo": "a\nb"}, "body": "repo: example\n"}"#);
        let text = describe(&actions, &bad.unwrap(), &[], "web1");
        assert!(
            text.starts_with("the sample is unusable (header \"repo\" holds a control character"),
            "{text}"
        );
        assert!(!text.contains("action build"), "{text}");
    }
}
