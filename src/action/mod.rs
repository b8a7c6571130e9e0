//! Listener actions (`[[action]]`): what a deploy host does for a message
//! besides keeping mirrors — trigger a build over HTTP, run a command, publish
//! a message, update a mirror — chained, with handlers for success and
//! failure. [`config`] reads the tables, [`matcher`] and [`template`] are
//! compiled from them and see a message as [`crate::inbound`] read it, [`run`] runs a chain
//! ([`http`] and [`exec`] do the work; publishing and mirrors are the
//! listener's, through [`run::Effects`]), [`check`] shows what would be done.
//! Nothing here knows the listener's loop or the CLI.

pub mod check;
pub mod config;
pub mod exec;
pub mod http;
pub mod legacy;
pub mod matcher;
pub mod run;
pub mod step;
pub mod template;

/// One action, compiled.
#[derive(Debug, Clone)]
pub struct Action {
    /// Its unique name.
    pub name: String,
    /// Which messages start it.
    pub matcher: matcher::Matcher,
    /// Its steps, in order.
    pub steps: Vec<step::Step>,
}
