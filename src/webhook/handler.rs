//! One request, start to reply: endpoint, signature, event, redelivery check,
//! then the push rendered through the routes and stored durably in the outbox
//! before the 202. Independent of HTTP, so it is tested without a socket.

use super::config::{read_secret, EndpointConfig, ForgeKind, WebhookConfig};
use super::convert::{self, PayloadCommits};
use super::deliveries::{Claim, Deliveries};
use super::forge::{self, Event, Push};
use super::{mirror, signature};
use crate::assemble::{self, ForgePush};
use crate::config::Config;
use crate::deliver::outbox::Outbox;
use crate::git::{GitCommits, PushContext};
use crate::message::Message;
use crate::render::MAX_LISTED_IDS;
use crate::route::Router;
use anyhow::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// `POST`, `GET`, …
    pub method: String,
    /// The URL path, query included or not.
    pub path: String,
    /// Header names and values as sent.
    pub headers: Vec<(String, String)>,
    /// The raw body (signatures are over these bytes).
    pub body: Vec<u8>,
}

impl Incoming {
    /// A header's value by name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The status and the one-line reason sent back (and logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// One line saying why; also the body.
    pub reason: String,
}

fn reply(status: u16, reason: impl Into<String>) -> Reply {
    Reply {
        status,
        reason: reason.into(),
    }
}

struct Endpoint {
    config: EndpointConfig,
    secret: Option<Vec<u8>>,
}

/// Everything requests share: endpoints with their secrets, routes, the
/// outbox, the delivery ids and the delivering thread's wake-up.
pub struct Webhook {
    config: Config,
    settings: WebhookConfig,
    endpoints: Vec<Endpoint>,
    outbox: Outbox,
    deliveries: Deliveries,
    wake: Mutex<Sender<()>>,
    /// One lock per mirror: a fetch and the render after it are not interleaved.
    mirrors: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
}

impl Webhook {
    /// Reads the secrets and the remembered deliveries; `wake` tells the
    /// delivering thread that the outbox has new messages.
    /// `settings` is the config's `[webhook]` table, read.
    pub fn new(config: &Config, settings: &WebhookConfig, wake: Sender<()>) -> Result<Webhook> {
        let endpoints = settings
            .endpoints
            .iter()
            .map(|endpoint| {
                let secret = endpoint
                    .secret_file
                    .as_deref()
                    .map(read_secret)
                    .transpose()?;
                Ok(Endpoint {
                    config: endpoint.clone(),
                    secret,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let state_dir = super::state_dir(config, settings);
        let retention = Duration::from_secs(settings.remember_hours * 3600);
        Ok(Webhook {
            config: config.clone(),
            settings: settings.clone(),
            endpoints,
            outbox: config.outbox(),
            deliveries: Deliveries::open(&state_dir, retention)?,
            wake: Mutex::new(wake),
            mirrors: Mutex::new(HashMap::new()),
        })
    }

    /// Paths of endpoints that accept unsigned requests.
    pub fn unsigned_paths(&self) -> impl Iterator<Item = &str> {
        self.endpoints
            .iter()
            .filter(|endpoint| endpoint.secret.is_none())
            .map(|endpoint| endpoint.config.path.as_str())
    }

    /// Handles one request.
    pub fn handle(&self, request: &Incoming) -> Reply {
        let path = request.path.split('?').next().unwrap_or("");
        let Some(endpoint) = self.endpoints.iter().find(|e| e.config.path == path) else {
            return reply(404, format!("no endpoint at {path}"));
        };
        if request.method != "POST" {
            return reply(405, format!("{} is not POST", request.method));
        }
        let kind = endpoint.config.kind;
        let header = |name: &str| request.header(name);
        if let Some(secret) = &endpoint.secret {
            if let Err(refusal) = signature::verify(kind, secret, header, &request.body) {
                return reply(401, format!("bad signature: {refusal}"));
            }
        }
        let event = forge::event(kind, header);
        if event == Event::Ping {
            return reply(200, "pong");
        }
        let body = match forge::json_payload(header("Content-Type"), &request.body) {
            Ok(body) => body,
            Err(error) => return reply(400, format!("{error:#}")),
        };
        let Some(id) = forge::delivery_id(kind, header) else {
            return self.handle_event(kind, &event, &body);
        };
        let key = format!("{path} {id}");
        match self.deliveries.claim(&key) {
            Claim::Done => reply(202, format!("delivery {id} was emitted before")),
            Claim::Busy => reply(409, format!("delivery {id} is being handled")),
            Claim::New => {
                let answer = self.handle_event(kind, &event, &body);
                if answer.status == 202 {
                    if let Err(error) = self.deliveries.done(&key) {
                        return reply(202, format!("{}; but {error:#}", answer.reason));
                    }
                } else {
                    self.deliveries.release(&key);
                }
                answer
            }
        }
    }

    fn handle_event(&self, kind: ForgeKind, event: &Event, body: &[u8]) -> Reply {
        match event {
            Event::Ping => reply(200, "pong"),
            Event::Push => match forge::parse_push(kind, body) {
                Ok(push) => self.handle_push(kind, &push),
                Err(error) => reply(400, format!("malformed push: {error:#}")),
            },
            Event::Other(name) => self.forward(kind, name, body),
        }
    }

    fn handle_push(&self, kind: ForgeKind, push: &Push) -> Reply {
        let (repo, mirror) = self.settings.repo(&push.full_name);
        let assembled = assemble::forge_push(&self.config, &repo, |router| match mirror {
            Some(mirror) => self.render_from_mirror(router, mirror, &repo, push),
            None => self.render_from_payload(router, &repo, push, None),
        });
        let mut messages = match assembled {
            Ok(ForgePush::Messages(messages)) => messages,
            Ok(ForgePush::Silenced(reason)) => {
                return reply(202, format!("{repo}: ignored, {reason}"))
            }
            Err(error) => return reply(400, format!("{error:#}")),
        };
        if messages.is_empty() {
            return reply(202, format!("{repo} {}: no route matches", push.refname));
        }
        for message in &mut messages {
            message
                .headers
                .push(("source".to_string(), kind.as_str().to_string()));
        }
        self.store(&messages, &format!("{repo} {}", push.refname))
    }

    /// Renders from the payload; `fallback` says why the mirror was not used.
    fn render_from_payload(
        &self,
        router: &Router,
        repo: &str,
        push: &Push,
        fallback: Option<String>,
    ) -> Result<Vec<Message>> {
        let mut notification = convert::notification(push, repo);
        if let Some(why) = fallback {
            let why = why.replace(['\n', '\r'], " ");
            notification.extra.push((
                "mirror".to_string(),
                format!("{why}; rendered from the forge's payload"),
            ));
        }
        let source = PayloadCommits::new(push);
        let routed = router.route(notification);
        crate::emit::messages_for(&routed, &source, router, &self.config.limits)
    }

    fn render_from_mirror(
        &self,
        router: &Router,
        mirror: &Path,
        repo: &str,
        push: &Push,
    ) -> Result<Vec<Message>> {
        let lock = {
            let mut mirrors = crate::sync::lock(&self.mirrors);
            Arc::clone(mirrors.entry(mirror.to_path_buf()).or_default())
        };
        let _held = crate::sync::lock(&lock);
        let from_git = || -> Result<Vec<Message>> {
            mirror::fetch(
                mirror,
                Duration::from_millis(self.settings.fetch_timeout_ms),
            )?;
            let git = crate::git::open(Some(mirror))?;
            let context = PushContext {
                repo_name: repo.to_string(),
                pusher: push.pusher.clone(),
                announce_notes: self.config.git.announce_notes,
                max_listed: self.config.limits.max_commits + MAX_LISTED_IDS,
            };
            let routed = mirror::notification(&git, push, &context, router)?;
            let source = GitCommits::new(&git);
            crate::emit::messages_for(&routed, &source, router, &self.config.limits)
        };
        match from_git() {
            Ok(messages) => Ok(messages),
            Err(error) => {
                let why = format!("mirror {}: {error:#}", mirror.display());
                eprintln!("hookbus webhook: {why}; falling back to the payload");
                self.render_from_payload(router, repo, push, Some(why))
            }
        }
    }

    /// Other events: published as their JSON payload where a
    /// `[[webhook.forward]]` asks for them, else acknowledged and dropped.
    fn forward(&self, kind: ForgeKind, event: &str, body: &[u8]) -> Reply {
        let wanted: Vec<_> = self
            .settings
            .forwards
            .iter()
            .filter(|forward| forward.events.iter().any(|name| name == event))
            .collect();
        if wanted.is_empty() {
            return reply(
                202,
                format!("event {event:?} ignored: no [[webhook.forward]] asks for it"),
            );
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            return reply(400, format!("malformed {event} payload: not JSON"));
        }
        let full_name = forge::repository_of(kind, body).unwrap_or_default();
        let repo = self.settings.repo(&full_name).0;
        let mut messages = Vec::new();
        for forward in wanted {
            let destination = forward
                .destination
                .replace("{event}", event)
                .replace("{repo}", &repo);
            let headers = [
                ("event".to_string(), event.to_string()),
                ("source".to_string(), kind.as_str().to_string()),
                ("repo".to_string(), repo.clone()),
                (
                    "content-type".to_string(),
                    "application/json; charset=utf-8".to_string(),
                ),
            ];
            let subject = format!("[{repo}] {event}");
            match Message::compose(&destination, Some(&subject), &headers, body.to_vec()) {
                Ok(message) => messages.push(message),
                Err(error) => return reply(400, format!("cannot forward {event}: {error:#}")),
            }
        }
        self.store(&messages, &format!("{repo} {event}"))
    }

    /// Stores durably, then wakes the delivering thread: the 202 means "saved".
    fn store(&self, messages: &[Message], what: &str) -> Reply {
        match self.outbox.store(messages) {
            Ok(_) => {
                let _ = crate::sync::lock(&self.wake).send(());
                reply(202, format!("{what}: {} message(s) queued", messages.len()))
            }
            Err(error) => reply(503, format!("{error:#}")),
        }
    }
}
