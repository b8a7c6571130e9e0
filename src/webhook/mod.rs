//! `hookbus webhook`: forge pushes (GitHub, GitLab, Gitea/Forgejo) become the
//! same messages as a hook's.
//!
//! Data flows one way: [`server`] reads HTTP requests → [`handler`] checks the
//! endpoint and [`signature`], reads the payload ([`forge`]), turns it into
//! the shared model ([`convert`], or git itself through a [`mirror`]), renders
//! and routes it like a hook and stores the messages in the outbox before the
//! 202; [`delivery`] publishes from the outbox on its own thread, so a slow
//! broker never delays a reply. [`deliveries`] remembers delivery ids so a
//! redelivery is not emitted twice.

pub mod config;
pub mod convert;
pub mod deliveries;
pub mod delivery;
pub mod forge;
pub mod handler;
pub mod mirror;
pub mod server;
pub mod signature;

pub use config::WebhookConfig;

use crate::bus::Publisher;
use crate::config::Config;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The `[webhook]` table, read and checked, or an error saying it is needed.
pub fn settings(config: &Config) -> Result<WebhookConfig> {
    let table = config.webhook.as_ref().context(
        "no [webhook] table in the config: add listen and [[webhook.endpoint]] (see hookbus.toml(5))",
    )?;
    WebhookConfig::from_table(table)
}

/// Where delivery ids are kept: `[webhook] state_dir`, else `webhook/` beside
/// the outbox directory.
pub fn state_dir(config: &Config, settings: &WebhookConfig) -> PathBuf {
    if let Some(dir) = &settings.state_dir {
        return dir.clone();
    }
    let outbox = config.outbox_dir();
    match outbox.parent() {
        Some(parent) => parent.join("webhook"),
        None => outbox.join("webhook"),
    }
}

/// Serves `settings` (the checked `[webhook]`) until `stop` is set (SIGTERM):
/// binds, says what it serves (loudly for unsigned endpoints), delivers in the
/// background with `publisher` (none: messages stay in the outbox), then
/// finishes the requests in flight.
pub fn run(
    config: &Config,
    settings: &WebhookConfig,
    publisher: Option<Publisher>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let outbox = config.outbox();
    let deliverer = delivery::Deliverer::start(outbox, publisher);
    let webhook = Arc::new(handler::Webhook::new(config, settings, deliverer.waker())?);
    let listener = server::Listener::bind(
        &settings.listen,
        settings.max_body_bytes,
        settings.max_requests,
    )?;
    for path in webhook.unsigned_paths() {
        eprintln!(
            "hookbus webhook: WARNING: endpoint {path} has insecure_no_signature = true: anyone who can reach it can publish messages"
        );
    }
    eprintln!(
        "hookbus webhook: listening on {} ({} endpoint(s)); outbox {}",
        listener.address(),
        settings.endpoints.len(),
        config.outbox_dir().display()
    );
    let served = listener.serve(&webhook, &stop);
    drop(webhook);
    deliverer.stop();
    eprintln!("hookbus webhook: stopped");
    served
}
