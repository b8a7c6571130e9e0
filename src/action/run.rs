//! Running an action's chain for one message: each step filled from the
//! message (and its parent's result), done, reported, then its `on_success`
//! or `on_failure` handler run with its result. The chain goes on while steps
//! succeed. A step that cannot even start (a missing body key, a header value
//! with a line break, an unreadable token file) fails with that reason.

use super::exec;
use super::http::{self, HttpRequest};
use super::step::{ExecPlan, HttpPlan, Kind, PublishPlan, Step};
use super::template::{percent_encode, Encoding, Name, Template, Values};
use super::Action;
use crate::inbound::Received;
use crate::message::Message;
use crate::secret::Secret;
use std::time::{Duration, Instant};

/// One step's result: what the next templates see as `{parent.*}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepResult {
    /// Whether it succeeded.
    pub ok: bool,
    /// exec: the exit status.
    pub exit_code: Option<i32>,
    /// exec: the tail of stdout and stderr; http: of the response body;
    /// publish and mirror: what was done.
    pub output: String,
    /// http: the last response's status.
    pub http_status: Option<u16>,
    /// How long it took.
    pub duration: Duration,
    /// Why it failed.
    pub reason: Option<String>,
    /// http: attempts made.
    pub attempts: u32,
}

impl StepResult {
    fn failed(reason: String) -> StepResult {
        StepResult {
            reason: Some(reason),
            ..StepResult::default()
        }
    }
}

/// What steps do outside the action module: the listener's outbox, its
/// mirrors, its reports.
pub trait Effects {
    /// Publishes a message (stored in the outbox first); says what happened.
    fn publish(&self, message: Message) -> Result<String, String>;
    /// Updates a mirror now (in its turn); says what it did.
    fn mirror(&self, name: &str) -> Result<String, String>;
    /// One step's result.
    fn report(&self, action: &str, step: &Step, message: &Received, result: &StepResult);
}

/// Where templates take their values from.
pub struct Scope<'a> {
    /// The message, as read.
    pub message: &'a Received,
    /// The action's name.
    pub action: &'a str,
    /// This machine.
    pub host: &'a str,
    /// The parent step's result, if there is one.
    pub parent: Option<&'a StepResult>,
    /// `{token}`, read for an http step.
    pub token: Option<Secret>,
    /// `listen --check`: show placeholders for what only a run knows.
    pub dry_run: bool,
}

impl Values for Scope<'_> {
    fn value(&self, name: &Name) -> Result<String, String> {
        match name {
            Name::Fact("token") => match (&self.token, self.dry_run) {
                (_, true) => Ok("<token>".into()),
                (Some(token), false) => Ok(token.expose().to_string()),
                (None, false) => Err("{token} has no token_file or token".into()),
            },
            Name::Fact("host") => Ok(self.host.to_string()),
            Name::Fact("action") => Ok(self.action.to_string()),
            Name::Fact(fact) => Ok(self.message.fact(fact)),
            Name::Header(header) => Ok(self.message.header(header).unwrap_or_default().into()),
            Name::Body(key) => (self.message.body_key(key))
                .map(str::to_string)
                .ok_or_else(|| format!("the message has no body line {key:?}")),
            Name::Parent(field) if self.dry_run => Ok(format!("<parent.{field}>")),
            Name::Parent(field) => Ok(self
                .parent
                .map(|parent| parent_field(parent, field))
                .unwrap_or_default()),
        }
    }
}

fn parent_field(parent: &StepResult, field: &str) -> String {
    let optional = |value: Option<String>| value.unwrap_or_default();
    match field {
        "status" => if parent.ok { "ok" } else { "failed" }.into(),
        "exit_code" => optional(parent.exit_code.map(|code| code.to_string())),
        "output" => parent.output.clone(),
        "http_status" => optional(parent.http_status.map(|status| status.to_string())),
        "duration_ms" => parent.duration.as_millis().to_string(),
        _ => optional(parent.reason.clone()),
    }
}

/// Runs `action` for a message; true when every step succeeded.
pub fn run(action: &Action, message: &Received, host: &str, effects: &dyn Effects) -> bool {
    let mut parent: Option<StepResult> = None;
    for step in &action.steps {
        let scope = Scope {
            message,
            action: &action.name,
            host,
            parent: parent.as_ref(),
            token: None,
            dry_run: false,
        };
        let result = run_step(step, scope, effects);
        if !result.ok {
            return false;
        }
        parent = Some(result);
    }
    true
}

fn run_step(step: &Step, mut scope: Scope<'_>, effects: &dyn Effects) -> StepResult {
    let start = Instant::now();
    let mut result = match &step.kind {
        Kind::Http(plan) => http_step(plan, &mut scope),
        Kind::Exec(plan) => exec_step(plan, &scope),
        Kind::Publish(plan) => match message(plan, &scope) {
            Ok(message) => done(effects.publish(message)),
            Err(reason) => StepResult::failed(reason),
        },
        Kind::Mirror(name) => done(effects.mirror(name)),
    };
    result.duration = start.elapsed();
    effects.report(scope.action, step, scope.message, &result);
    let handler = if result.ok {
        &step.on_success
    } else {
        &step.on_failure
    };
    if let Some(handler) = handler {
        let scope = Scope {
            parent: Some(&result),
            token: None,
            ..scope
        };
        run_step(handler, scope, effects);
    }
    result
}

fn done(outcome: Result<String, String>) -> StepResult {
    match outcome {
        Ok(output) => StepResult {
            ok: true,
            output,
            ..StepResult::default()
        },
        Err(reason) => StepResult::failed(reason),
    }
}

fn fill_pairs(
    pairs: &[(String, Template)],
    scope: &Scope<'_>,
    encoding: Encoding,
) -> Result<Vec<(String, String)>, String> {
    pairs
        .iter()
        .map(|(name, template)| Ok((name.clone(), template.fill(scope, encoding)?)))
        .collect()
}

/// The request a plan makes for a message.
pub fn request(plan: &HttpPlan, scope: &Scope<'_>) -> Result<HttpRequest, String> {
    let basic = match &plan.basic {
        Some((user, password)) if scope.dry_run => Some((user.clone(), "<password>".into())),
        Some((user, password)) => Some((user.clone(), password.read()?.expose().to_string())),
        None => None,
    };
    let body = if let Some(body) = &plan.body {
        Some(body.fill(scope, Encoding::Plain)?.into_bytes())
    } else if !plan.form.is_empty() {
        let pairs = fill_pairs(&plan.form, scope, Encoding::Plain)?;
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
            .collect();
        Some(encoded.join("&").into_bytes())
    } else {
        None
    };
    let mut headers = fill_pairs(&plan.headers, scope, Encoding::Line)?;
    if !plan.form.is_empty()
        && !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    Ok(HttpRequest {
        method: plan.method.clone(),
        url: plan.url.fill(scope, Encoding::Url)?,
        headers,
        body,
        basic,
        timeout: plan.timeout,
        retries: plan.retries,
    })
}

fn http_step(plan: &HttpPlan, scope: &mut Scope<'_>) -> StepResult {
    if let Some(source) = &plan.token {
        match source.read() {
            Ok(token) => scope.token = Some(token),
            Err(reason) => return StepResult::failed(reason),
        }
    }
    let request = match request(plan, scope) {
        Ok(request) => request,
        Err(reason) => return StepResult::failed(reason),
    };
    let outcome = http::send(&request);
    let ok = outcome.ok();
    StepResult {
        ok,
        output: outcome.body_tail.clone(),
        http_status: outcome.status,
        attempts: outcome.attempts,
        reason: match (&outcome.error, outcome.status) {
            (Some(error), _) => Some(error.clone()),
            (None, Some(status)) if !ok => Some(format!("HTTP status {status}")),
            _ => None,
        },
        ..StepResult::default()
    }
}

/// The command a plan runs for a message.
pub fn command(plan: &ExecPlan, scope: &Scope<'_>) -> Result<exec::Run, String> {
    let argv = plan
        .argv
        .iter()
        .map(|template| template.fill(scope, Encoding::Plain))
        .collect::<Result<Vec<String>, String>>()?;
    refuse_options(plan, &argv)?;
    let mut env = fill_pairs(&plan.env, scope, Encoding::Plain)?;
    for (name, fact) in [
        ("HOOKBUS_REPO", "repo"),
        ("HOOKBUS_REFNAME", "refname"),
        ("HOOKBUS_BRANCH", "branch"),
        ("HOOKBUS_TAG", "tag"),
        ("HOOKBUS_OLDREV", "oldrev"),
        ("HOOKBUS_NEWREV", "newrev"),
        ("HOOKBUS_CHANGE", "change"),
        ("HOOKBUS_PROJECT", "project"),
        ("HOOKBUS_ID", "hookbus_id"),
        ("HOOKBUS_DESTINATION", "destination"),
        ("HOOKBUS_HOST", "host"),
        ("HOOKBUS_ACTION", "action"),
        ("HOOKBUS_PATHS", "paths"),
    ] {
        env.push((name.into(), scope.value(&Name::Fact(fact))?));
    }
    for (name, field) in [
        ("HOOKBUS_PARENT_STATUS", "status"),
        ("HOOKBUS_PARENT_EXIT_CODE", "exit_code"),
        ("HOOKBUS_PARENT_HTTP_STATUS", "http_status"),
        ("HOOKBUS_PARENT_DURATION_MS", "duration_ms"),
    ] {
        if scope.parent.is_some() {
            env.push((name.into(), scope.value(&Name::Parent(field))?));
        }
    }
    // Values are text from a message: a NUL cannot go into argv or environ.
    if argv
        .iter()
        .chain(env.iter().map(|(_, value)| value))
        .any(|value| value.contains('\0'))
    {
        return Err("a value holds a NUL byte".into());
    }
    Ok(exec::Run {
        argv,
        cwd: plan.cwd.clone(),
        user: plan.user.clone(),
        env,
        timeout: plan.timeout,
    })
}

/// A message's value must not become an option of the program (`-o…`,
/// `--config=…`): an argument that starts with `-` only because of a value
/// fails the step, unless a literal `--` came before it.
fn refuse_options(plan: &ExecPlan, argv: &[String]) -> Result<(), String> {
    for (template, value) in plan.argv.iter().zip(argv).skip(1) {
        if template.source() == "--" {
            return Ok(());
        }
        if value.starts_with('-') && !template.source().starts_with('-') {
            return Err(format!(
                "argument {value:?} (from {:?}) would be read as an option; put \"--\" before it in argv",
                template.source()
            ));
        }
    }
    Ok(())
}

fn exec_step(plan: &ExecPlan, scope: &Scope<'_>) -> StepResult {
    let run = match command(plan, scope) {
        Ok(run) => run,
        Err(reason) => return StepResult::failed(reason),
    };
    let outcome = exec::run(&run);
    StepResult {
        ok: outcome.error.is_none(),
        exit_code: outcome.exit_code,
        output: outcome.output,
        reason: outcome.error,
        ..StepResult::default()
    }
}

/// The message a plan publishes for a message.
pub fn message(plan: &PublishPlan, scope: &Scope<'_>) -> Result<Message, String> {
    let mut headers = fill_pairs(&plan.headers, scope, Encoding::Line)?;
    let subject = headers
        .iter()
        .position(|(name, _)| name == "subject")
        .map(|index| headers.remove(index).1);
    headers.push(("hookbus-action".into(), scope.action.to_string()));
    let body = plan.body.fill(scope, Encoding::Plain)?;
    Message::compose(
        &plan.destination,
        subject.as_deref(),
        &headers,
        body.into_bytes(),
    )
    .map_err(|error| format!("{error:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::config::StepConfig;
    use crate::inbound::tests::received;

    fn plan(argv: &str) -> ExecPlan {
        let config: StepConfig = toml::from_str(&format!("kind = 'exec'\nargv = {argv}")).unwrap();
        match Step::compile(&config, &[], "step 1").unwrap().kind {
            Kind::Exec(plan) => plan,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_step_that_cannot_run_fails_with_its_reason() {
        let config: StepConfig = toml::from_str(
            "kind = 'http'\nurl = 'http://127.0.0.1:9/{body.job}?t={token}'\ntoken_file = '/nonexistent/token'",
        )
        .unwrap();
        let Kind::Http(plan) = Step::compile(&config, &[], "step 1").unwrap().kind else {
            unreachable!()
        };
        let job = received(&[], "job: x\n");
        let mut scope = Scope {
            message: &job,
            action: "a",
            host: "h",
            parent: None,
            token: None,
            dry_run: false,
        };
        let result = http_step(&plan, &mut scope);
        assert!(
            !result.ok
                && result
                    .reason
                    .unwrap()
                    .contains("cannot read /nonexistent/token")
        );
        let other = received(&[], "other: y\n");
        scope.message = &other;
        scope.token = Some(Secret::new("t"));
        assert!(request(&plan, &scope)
            .unwrap_err()
            .contains("no body line \"job\""));
    }

    #[test]
    fn message_values_never_become_options_and_the_environment_says_what_happened() {
        let evil = received(&[("repo", "-oEvil=1"), ("hookbus-id", "x1")], "");
        let parent = StepResult {
            ok: false,
            exit_code: Some(2),
            ..StepResult::default()
        };
        let scope = Scope {
            message: &evil,
            action: "a",
            host: "h",
            parent: Some(&parent),
            token: None,
            dry_run: false,
        };
        let refused = command(&plan("['/bin/echo', '{repo}']"), &scope).unwrap_err();
        assert!(refused.contains("would be read as an option"), "{refused}");
        let run = command(&plan("['/bin/echo', '--', '{repo}']"), &scope).unwrap();
        assert_eq!(run.argv, ["/bin/echo", "--", "-oEvil=1"]);
        let run = command(&plan("['/bin/echo', '--name={repo}']"), &scope).unwrap();
        assert_eq!(run.argv[1], "--name=-oEvil=1");
        let env = |name: &str| {
            run.env
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(env("HOOKBUS_REPO"), Some("-oEvil=1"));
        assert_eq!(env("HOOKBUS_ID"), Some("x1"));
        assert_eq!(env("HOOKBUS_PARENT_STATUS"), Some("failed"));
        assert_eq!(env("HOOKBUS_PARENT_EXIT_CODE"), Some("2"));
    }
}
