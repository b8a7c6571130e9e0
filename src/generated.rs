//! The man pages and shell completions generated from the command-line
//! definition are checked in (so packages and readers need no build step); this
//! test fails when they no longer match it. Regenerate them with
//! `HOOKBUS_REGENERATE=1 cargo test --bin hookbus generated`.

use crate::cli::Cli;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// Every generated file: its path in the repository and its contents.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let command = Cli::command();
    man_pages(&command, "", &mut files);
    let mut command = Cli::command();
    for (shell, name) in [
        (clap_complete::Shell::Bash, "hookbus.bash"),
        (clap_complete::Shell::Zsh, "_hookbus"),
        (clap_complete::Shell::Fish, "hookbus.fish"),
    ] {
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut command, "hookbus", &mut bytes);
        files.push((PathBuf::from("completions").join(name), bytes));
    }
    files
}

/// `hookbus.1` and one page per subcommand (`hookbus-replay.1`, …), like git's.
fn man_pages(command: &clap::Command, prefix: &str, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    let name = if prefix.is_empty() {
        command.get_name().to_string()
    } else {
        format!("{prefix}-{}", command.get_name())
    };
    let page = command.clone().name(name.clone());
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut bytes)
        .expect("rendering to memory cannot fail");
    files.push((PathBuf::from("man").join(format!("{name}.1")), bytes));
    for sub in command.get_subcommands() {
        if sub.get_name() != "help" {
            man_pages(sub, &name, files);
        }
    }
}

#[test]
fn generated_man_pages_and_completions_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let regenerate = std::env::var_os("HOOKBUS_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (path, bytes) in generated() {
        let path = root.join(path);
        if regenerate {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files (run HOOKBUS_REGENERATE=1 cargo test --bin hookbus generated): {}",
        stale.join(", ")
    );
}
