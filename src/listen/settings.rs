//! What the daemon takes from the config, checked once (at start and on each
//! reload), and the pieces built from it.

use super::actions::{self, remember};
use super::mirror::provision::onchange::OnChange;
use super::mirror::{git, Mirror};
use super::ops::worker::Pool;
use super::report::Reporter;
use crate::action::Action;
use crate::bus::{Publisher, SubscribeSpec};
use crate::config::mirror::MirrorConfig;
use crate::config::Config;
use crate::deliver::outbox::Outbox;
use crate::private_file::{Access, Place};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The state directory, in errors: checked as the outbox is (a root daemon
/// must not write where another user can plant links).
const STATE_DIR: Place = Place {
    setting: "[listen] state_dir",
    group_setting: None,
    foreign_owner_fix: "chown it to the user the listener runs as, or set [listen] state_dir to a directory of its own",
};

/// Everything the daemon needs from the config, checked.
pub(super) struct Settings {
    pub(super) spec: SubscribeSpec,
    pub(super) publisher: Publisher,
    pub(super) report: Option<String>,
    pub(super) outbox: Outbox,
    pub(super) workers: usize,
    pub(super) poll_every: Option<Duration>,
    pub(super) mirrors: Vec<Mirror>,
    /// The daemon's own files: outbox, status board, control socket.
    pub(super) state_dir: PathBuf,
    /// The control socket's group (read at start only).
    pub(super) control_group: Option<u32>,
    /// The keys whose signatures are trusted (`[listen] trust`).
    pub(super) trust: crate::sign::Trust,
    /// What an unverified message may still do.
    pub(super) require: crate::sign::Require,
    /// The keys fleet commands must be signed by, whatever `require` says.
    pub(super) commands: crate::sign::Trust,
    pub(super) actions: Vec<Arc<Action>>,
    pub(super) action_workers: usize,
    pub(super) remembered: remember::Remembered,
    pub(super) mirror_wait: Duration,
}

impl Settings {
    pub(super) fn from_config(config: &Config) -> Result<Settings> {
        let Some(listen) = &config.listen else {
            bail!("no [listen] table in the config: see hookbus.toml(5)");
        };
        let Some(publisher) = config.publisher(|warning| eprintln!("hookbus: {warning}"))? else {
            bail!("no [broker] table in the config: there is nothing to listen to");
        };
        let root = crate::account::running_as_root();
        let outbox = Outbox::new(listen.state_dir.join("outbox"));
        let mut mirrors = Vec::new();
        for mirror in &config.mirrors {
            let account = match (&mirror.user, root) {
                (Some(user), true) => Some(
                    crate::account::Account::lookup(user)
                        .with_context(|| format!("mirror {}", mirror.name()))?,
                ),
                _ => None,
            };
            match (&mirror.user, root) {
                (None, true) => eprintln!(
                    "hookbus: listen: mirror {} runs git as root (it has no user): set its user to the account that should own the clone and the published tree",
                    mirror.name()
                ),
                (Some(user), false) => eprintln!(
                    "hookbus: listen: mirror {}: user {user} is ignored: hookbus does not run as root",
                    mirror.name()
                ),
                _ => {}
            }
            let on_change = OnChange::build(mirror, &outbox, &publisher)
                .with_context(|| format!("mirror {}", mirror.name()))?;
            mirrors.push(Mirror {
                on_change,
                config: mirror.clone(),
                git: git::Git {
                    timeout: listen.git_timeout(),
                    account,
                },
            });
        }
        let group = actions::group::spec(listen, config)?;
        let state_access = Access::private().at(STATE_DIR);
        state_access.ensure_searchable_dir(&listen.state_dir)?;
        let trust = crate::sign::Trust::from_listen(
            &listen.trust,
            listen.require_signature,
            listen.max_age_s,
        )?;
        let remembered = remember::Remembered::open(
            listen.state_dir.join("actions"),
            Duration::from_secs(listen.remember_hours * 3600),
            state_access,
        )?;
        Ok(Settings {
            actions: config
                .compiled_actions()
                .iter()
                .cloned()
                .map(Arc::new)
                .collect(),
            action_workers: listen.action_workers,
            remembered,
            // A clone, a fetch and a checkout, each bounded by git's timeout.
            mirror_wait: listen.git_timeout() * 4,
            spec: SubscribeSpec {
                destinations: listen.subscribe.clone(),
                durable: listen.durable.clone(),
                heartbeat: listen.heartbeat(),
                queue_type: listen.queue_type,
                group,
                control: listen.control_topic.clone(),
            },
            publisher,
            report: listen.report.clone(),
            outbox,
            workers: listen.workers,
            poll_every: listen.poll_every(),
            mirrors,
            state_dir: listen.state_dir.clone(),
            control_group: listen
                .control_group
                .as_deref()
                .map(crate::account::group_id)
                .transpose()
                .context("[listen] control_group")?,
            // Nothing required: no verdict is ever read, so no delivery
            // pays for an Ed25519 check (no keys: no check is made).
            trust: match listen.require_signature {
                crate::sign::Require::None => crate::sign::Trust::default(),
                _ => trust.clone(),
            },
            commands: trust,
            require: listen.require_signature,
        })
    }
}

/// The reporter for `settings`: its own publisher, the daemon's outbox.
pub(super) fn start_reporter(settings: &Settings) -> Reporter {
    let target =
        (settings.report.clone()).map(|destination| (destination, settings.publisher.clone()));
    Reporter::start(target, settings.outbox.clone())
}

/// The configured mirrors' settings.
pub(super) fn mirror_configs(settings: &Settings) -> Vec<MirrorConfig> {
    settings.mirrors.iter().map(|m| m.config.clone()).collect()
}

/// What action steps need from the daemon, for `settings`.
pub(super) fn action_context(
    settings: &Settings,
    pool: &Pool,
    host: String,
) -> Arc<actions::Context> {
    Arc::new(actions::Context {
        host,
        outbox: settings.outbox.clone(),
        publisher: settings.publisher.clone(),
        mirrors: Box::new(pool.submitter()),
        remembered: settings.remembered.clone(),
        mirror_wait: settings.mirror_wait,
    })
}
