//! `hookbus listen`: the deploy-host daemon, run until SIGTERM.

use super::report::{Failure, Status, WithStatus};
use hookbus::config::Config;
use std::path::PathBuf;

/// Runs the daemon; `config_file` is what SIGHUP reads again. Its startup
/// failures (no [listen], a bad mirror, an unknown user) are config errors.
pub fn listen(config: Config, config_file: Option<PathBuf>) -> Result<(), Failure> {
    hookbus::listen::run(config, config_file).status(Status::Config)
}
