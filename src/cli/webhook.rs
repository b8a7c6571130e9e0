//! `webhook`: the signals and the publisher around the library's server.

use super::emit::publisher;
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::config::Config;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// `hookbus webhook`: serves until SIGTERM or SIGINT.
pub fn serve(config: &Config, reporter: &mut Reporter) -> Result<(), Failure> {
    let settings = hookbus::webhook::settings(config).status(Status::Config)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).status(Status::Config)?;
    }
    let publisher = publisher(config, reporter)?;
    hookbus::webhook::run(config, &settings, publisher, stop).status(Status::Config)
}
