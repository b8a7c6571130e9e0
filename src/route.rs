//! Routing: which configured routes a notification matches, and the destination
//! each one names. Routes are compiled once from the config and validated there,
//! so a bad glob or placeholder is a config error, not a failed push.

pub mod destination;

use crate::model::{Notification, RefKind};
use crate::render::Format;
use anyhow::{bail, Context, Result};
use destination::{Placeholder, Template};
use glob::Pattern;
use serde::Deserialize;

/// The destination of the built-in route used when no `[[route]]` is configured.
pub const DEFAULT_DESTINATION: &str = "/topic/git.commits";

/// One `[[route]]` table: which updates go where, in which format.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Destination template; `{repo}`, `{refname}`, `{branch}`, `{name}`,
    /// `{reftype}`, `{change}` and `{project}` are replaced.
    pub destination: String,
    #[serde(default)]
    /// The message format: text, json or summary.
    pub format: Format,
    /// Repository name globs; empty means every repository.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Refname globs (`refs/heads/*`); empty means every ref.
    #[serde(default)]
    pub refs: Vec<String>,
    /// Change kinds: create, update, delete, fast-forward, rewind, non-fast-forward.
    #[serde(default)]
    pub changes: Vec<String>,
    /// Ref kinds: branch, tag, annotated-tag, notes, other.
    #[serde(default)]
    pub reftypes: Vec<String>,
    /// Ask the broker to keep the message across restarts (STOMP `persistent`).
    #[serde(default = "persistent_by_default")]
    pub persistent: bool,
    /// A name for this route, for per-repository selection with `hookbus.routes`.
    pub name: Option<String>,
}

impl RouteConfig {
    /// The route used when the config has none: everything, as text.
    pub fn default_route() -> Self {
        RouteConfig {
            destination: DEFAULT_DESTINATION.to_string(),
            format: Format::Text,
            repos: Vec::new(),
            refs: Vec::new(),
            changes: Vec::new(),
            reftypes: Vec::new(),
            persistent: persistent_by_default(),
            name: Some("default".to_string()),
        }
    }
}

fn persistent_by_default() -> bool {
    true
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route's name, for `hookbus.routes`.
    pub name: Option<String>,
    /// The format its messages are rendered in.
    pub format: Format,
    /// Ask the broker to keep its messages across restarts.
    pub persistent: bool,
    destination: Template,
    repos: Vec<Pattern>,
    refs: Vec<Pattern>,
    changes: Vec<String>,
    reftypes: Vec<String>,
}

/// Change names a route's `changes` filter accepts.
const CHANGE_NAMES: [&str; 6] = [
    "create",
    "update",
    "delete",
    "fast-forward",
    "rewind",
    "non-fast-forward",
];

impl Route {
    fn compile(index: usize, config: &RouteConfig) -> Result<Route> {
        let context = || format!("[[route]] number {}", index + 1);
        let destination = Template::parse(&config.destination).with_context(context)?;
        let globs = |list: &[String], what: &str| -> Result<Vec<Pattern>> {
            list.iter()
                .map(|glob| Pattern::new(glob).with_context(|| format!("bad {what} glob {glob:?}")))
                .collect()
        };
        for change in &config.changes {
            if !CHANGE_NAMES.contains(&change.as_str()) {
                bail!(
                    "{}: unknown change {change:?}; use one of {}",
                    context(),
                    CHANGE_NAMES.join(", ")
                );
            }
        }
        for reftype in &config.reftypes {
            if !RefKind::ALL.iter().any(|kind| kind.as_str() == reftype) {
                let names: Vec<&str> = RefKind::ALL.iter().map(|kind| kind.as_str()).collect();
                bail!(
                    "{}: unknown reftype {reftype:?}; use one of {}",
                    context(),
                    names.join(", ")
                );
            }
        }
        Ok(Route {
            name: config.name.clone(),
            format: config.format,
            persistent: config.persistent,
            destination,
            repos: globs(&config.repos, "repos").with_context(context)?,
            refs: globs(&config.refs, "refs").with_context(context)?,
            changes: config.changes.clone(),
            reftypes: config.reftypes.clone(),
        })
    }

    /// True when the notification passes every filter of this route.
    pub fn matches(&self, notification: &Notification) -> bool {
        let update = &notification.update;
        let any_glob = |patterns: &[Pattern], text: &str| {
            patterns.is_empty() || patterns.iter().any(|pattern| pattern.matches(text))
        };
        let change_ok = self.changes.is_empty()
            || self.changes.iter().any(|name| {
                name == update.change.as_str()
                    || update.shape.is_some_and(|shape| shape.as_str() == name)
            });
        let reftype_ok = self.reftypes.is_empty()
            || self
                .reftypes
                .iter()
                .any(|name| name == update.kind.as_str());
        any_glob(&self.repos, &notification.repo)
            && any_glob(&self.refs, &update.refname)
            && change_ok
            && reftype_ok
    }

    /// The destination for this notification, with placeholders filled in
    /// (encoded, see [`destination`]).
    pub fn destination(&self, notification: &Notification) -> String {
        let update = &notification.update;
        self.destination.fill(|placeholder| match placeholder {
            Placeholder::Repo => &notification.repo,
            Placeholder::Refname => &update.refname,
            Placeholder::Branch => update.branch(),
            Placeholder::Name => update.short_name(),
            Placeholder::Reftype => update.kind.as_str(),
            Placeholder::Change => update.change.as_str(),
            Placeholder::Project => notification.project(),
        })
    }

    /// A stable id for this update on this route: the same when the same update is
    /// rendered again, so consumers can drop duplicates.
    pub fn message_id(&self, notification: &Notification, destination: &str) -> String {
        let update = &notification.update;
        let mut parts: Vec<&[u8]> = vec![
            notification.repo.as_bytes(),
            update.refname.as_bytes(),
            update.oldrev.as_bytes(),
            update.newrev.as_bytes(),
            destination.as_bytes(),
            self.format.as_str().as_bytes(),
        ];
        // Extra facts tell apart updates of the same refname and revisions (two
        // SVN projects' trunks in one revision); git updates have none.
        for (key, value) in &notification.extra {
            parts.push(key.as_bytes());
            parts.push(value.as_bytes());
        }
        crate::message::stable_id(&parts)
    }
}

/// The compiled set of routes.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// A notification with the routes it matches: decided once per push, then
/// rendered and delivered by that decision.
#[derive(Debug, Clone)]
pub struct Routed {
    /// What the update says.
    pub notification: Notification,
    /// Indexes into the [`Router`] that decided.
    routes: Vec<usize>,
}

impl Routed {
    /// True when at least one route takes the notification.
    pub fn is_routed(&self) -> bool {
        !self.routes.is_empty()
    }
}

impl Router {
    /// Compiles and validates the routes.
    pub fn new(configs: &[RouteConfig]) -> Result<Router> {
        let routes = configs
            .iter()
            .enumerate()
            .map(|(index, config)| Route::compile(index, config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Router { routes })
    }

    /// Keeps only the routes whose names are listed (a per-repository selection).
    pub fn select(&self, names: &[String]) -> Router {
        Router {
            routes: self
                .routes
                .iter()
                .filter(|route| {
                    route
                        .name
                        .as_ref()
                        .is_some_and(|name| names.iter().any(|wanted| wanted == name))
                })
                .cloned()
                .collect(),
        }
    }

    /// One destination per route, standing for all the route makes (see
    /// [`destination::Template::sample`]), for a broker to say which it
    /// would refuse; the index of each is its route's.
    pub fn samples(&self) -> Vec<String> {
        (self.routes.iter())
            .map(|route| route.destination.sample())
            .collect()
    }

    /// Route number `index` as messages name it.
    pub fn describe(&self, index: usize) -> String {
        let template = self.routes[index].destination.as_str();
        format!("[[route]] number {} ({template:?})", index + 1)
    }

    /// Decides which routes take `notification` (matching looks only at the
    /// repository and the ref update, so a notification whose commit lists
    /// are still to be filled in is routed as it will be sent).
    pub fn route(&self, notification: Notification) -> Routed {
        let routes = (self.routes.iter().enumerate())
            .filter(|(_, route)| route.matches(&notification))
            .map(|(index, _)| index)
            .collect();
        Routed {
            notification,
            routes,
        }
    }

    /// The routes this router decided `routed` goes to, in config order.
    pub fn routes_of<'a>(&'a self, routed: &'a Routed) -> impl Iterator<Item = &'a Route> {
        routed
            .routes
            .iter()
            .filter_map(|&index| self.routes.get(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, RefUpdate, UpdateShape};

    fn notification(refname: &str, change: Change, shape: Option<UpdateShape>) -> Notification {
        let update = RefUpdate {
            refname: refname.into(),
            oldrev: "1".repeat(40),
            newrev: "2".repeat(40),
            kind: RefKind::Branch,
            change,
            shape,
        };
        Notification::new("team/app", "alice", update)
    }

    fn route(toml_route: &str) -> Route {
        let config: RouteConfig = toml::from_str(toml_route).unwrap();
        Router::new(&[config]).unwrap().routes.remove(0)
    }

    #[test]
    fn destination_template_and_filters() {
        let route = route(
            "destination = \"/topic/git.{repo}.{branch}\"\nrefs = [\"refs/heads/*\"]\nchanges = [\"fast-forward\", \"create\"]",
        );
        let ff = notification(
            "refs/heads/feature/x",
            Change::Update,
            Some(UpdateShape::FastForward),
        );
        assert!(route.matches(&ff));
        assert_eq!(route.destination(&ff), "/topic/git.team~2Fapp.feature~2Fx");
        let rewind = notification(
            "refs/heads/master",
            Change::Update,
            Some(UpdateShape::Rewind),
        );
        assert!(!route.matches(&rewind));
        let tag = notification("refs/tags/v1", Change::Create, None);
        assert!(!route.matches(&tag));
    }

    #[test]
    fn message_id_is_stable_and_distinct() {
        let route = route("destination = \"/topic/x\"");
        let a = notification("refs/heads/master", Change::Update, None);
        let b = notification("refs/heads/other", Change::Update, None);
        assert_eq!(
            route.message_id(&a, "/topic/x"),
            route.message_id(&a, "/topic/x")
        );
        assert_ne!(
            route.message_id(&a, "/topic/x"),
            route.message_id(&b, "/topic/x")
        );
        assert_eq!(route.message_id(&a, "/topic/x").len(), 32);
    }
}
