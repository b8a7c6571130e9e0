//! `hookbus listen`: the deploy-host daemon, run until SIGTERM; with
//! `--check`, what it would do for a sample message.

use super::args::ListenArgs;
use super::report::{Failure, Status, WithStatus};
use hookbus::action::check;
use hookbus::config::mirror::Mode;
use hookbus::config::Config;
use hookbus::inbound::Reading;
use hookbus::listen::plan;
use std::path::PathBuf;

/// Runs the daemon; `config_file` is what SIGHUP reads again. Its startup
/// failures (no [listen], a bad mirror, an unknown user) are config errors.
pub fn listen(
    config: Config,
    config_file: Option<PathBuf>,
    args: &ListenArgs,
) -> Result<(), Failure> {
    if args.check {
        return show_actions(&config, args);
    }
    hookbus::listen::run(config, config_file).status(Status::Config)
}

/// Prints how the sample reads, the mirrors it would update and what every
/// action would do for it; with `--host`, for that host, then what it runs.
fn show_actions(config: &Config, args: &ListenArgs) -> Result<(), Failure> {
    let mut config = config.clone();
    if let Some(host) = &args.host {
        config.select_host(host).status(Status::Config)?;
    }
    let sample = match &args.sample {
        Some(file) => std::fs::read_to_string(file)
            .map_err(anyhow::Error::from)
            .and_then(|text| check::sample_from_json(&text))
            .map_err(|error| error.context(format!("--sample {}", file.display())))
            .status(Status::Input)?,
        None => check::sample(),
    };
    let wanting: Vec<String> = match &sample {
        Reading::Received(message) => plan::wanting(message, config.mirrors.iter())
            .map(|mirror| mirror.name())
            .collect(),
        _ => Vec::new(),
    };
    let signatures = match &config.listen {
        Some(listen) => signatures(listen)?,
        None => String::new(),
    };
    let text = check::describe(config.compiled_actions(), &sample, &wanting, &config.host);
    print!("{text}{signatures}");
    if args.host.is_some() {
        print!("{}", runs(&config));
    }
    Ok(())
}

/// The mirrors and actions `config.host` runs, a line each.
fn runs(config: &Config) -> String {
    let mut out = format!(
        "host {} runs {} mirror(s) and {} action(s)\n",
        config.host,
        config.mirrors.len(),
        config.actions.len()
    );
    for mirror in &config.mirrors {
        let follows = match mirror.mode {
            Mode::Fetch | Mode::Branches => String::new(),
            Mode::Checkout | Mode::InPlace => format!(" branch {}", mirror.branch),
        };
        out.push_str(&format!(
            "mirror {}: repo {} mode {}{follows} at {}\n",
            mirror.name(),
            mirror.repo,
            mirror.mode.as_str(),
            mirror.path.display()
        ));
    }
    for action in &config.actions {
        out.push_str(&format!("action {}\n", action.name));
    }
    out
}

/// The `[listen]` signature settings, checked, and the fleet commands
/// taken, a line each.
fn signatures(listen: &hookbus::config::listen::ListenConfig) -> Result<String, Failure> {
    let require = listen.require_signature;
    let trust = hookbus::sign::Trust::from_listen(&listen.trust, require, listen.max_age_s)
        .status(Status::Config)?;
    let keys: Vec<&str> = trust.keys().iter().map(|key| key.id()).collect();
    let commands = match (&listen.control_topic, keys.is_empty()) {
        (None, _) => "off (no [listen] control_topic)".to_string(),
        (Some(topic), true) => format!("on {topic}, every one refused (no [listen] trust key)"),
        (Some(topic), false) => format!("on {topic}, signed by a trusted key"),
    };
    Ok(format!(
        "signatures: require_signature = {}, max_age_s = {}, trusted keys: {}\nfleet commands: {commands}\n",
        require.name(),
        trust.max_age_s(),
        match keys.is_empty() {
            true => "none".to_string(),
            false => keys.join(", "),
        }
    ))
}
