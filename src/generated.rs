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
    // Built once, as at run time: global options (`--config`, `-v`, ctl's
    // `--json`) reach every subcommand's page, each page's synopsis reads as
    // typed (`hookbus ctl status`) while its name and SEE ALSO entries use the
    // page names (`hookbus-ctl-status(1)`), and no page lists a `help`
    // subcommand (it has no page).
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    man_pages(&command, &mut files);
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
fn man_pages(command: &clap::Command, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    let mut bytes = Vec::new();
    clap_mangen::Man::new(command.clone())
        .source(format!("hookbus {}", env!("CARGO_PKG_VERSION")))
        .render(&mut bytes)
        .expect("rendering to memory cannot fail");
    files.push((PathBuf::from("man").join(format!("{name}.1")), bytes));
    for sub in command.get_subcommands() {
        man_pages(sub, files);
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

#[test]
fn every_man_page_has_the_global_options_and_refers_only_to_pages_that_exist() {
    let pages: Vec<(String, String)> = generated()
        .into_iter()
        .filter(|(path, _)| path.starts_with("man"))
        .map(|(path, bytes)| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, String::from_utf8(bytes).unwrap())
        })
        .collect();
    let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
    let reference = regex::Regex::new(r"(hookbus[a-z\\-]*)\(1\)").unwrap();
    for (name, text) in &pages {
        for option in [r"\-\-config", r"\-\-verbose"] {
            assert!(text.contains(option), "{name}.1 lacks {option}");
        }
        let synopsis = text.split(".SH SYNOPSIS\n\\fB").nth(1).unwrap();
        let typed = synopsis.split("\\fR").next().unwrap().replace("\\-", "-");
        assert_eq!(
            typed.split(' ').collect::<Vec<_>>().join("-"),
            *name,
            "{name}.1: the synopsis reads `{typed}`"
        );
        assert!(
            typed.contains(' ') || name == "hookbus",
            "{name}.1: `{typed}`"
        );
        for found in reference.captures_iter(text) {
            let target = found[1].replace("\\-", "-");
            assert!(
                names.contains(&target.as_str()),
                "{name}.1 refers to {target}(1)"
            );
        }
    }
    let status = &pages
        .iter()
        .find(|(name, _)| name == "hookbus-ctl-status")
        .unwrap()
        .1;
    assert!(status.contains(r"\-\-json") && status.contains(r"\-\-socket"));
}
