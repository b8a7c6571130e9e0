//! `config import-legacy`: the seed's configs as hookbus.toml.

use super::report::{Failure, Status, WithStatus};
use anyhow::Context;
use hookbus::legacy::LegacyConfig;
use std::io::Write;
use std::path::Path;

/// `hookbus config import-legacy FILE`: the equivalent hookbus.toml on `out`.
pub fn import_legacy(file: &Path, out: &mut dyn Write) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .status(Status::Input)?;
    let legacy = LegacyConfig::parse(&text)
        .with_context(|| format!("{} is not a seed config", file.display()))
        .status(Status::Input)?;
    let name = file
        .file_name()
        .unwrap_or(file.as_os_str())
        .to_string_lossy();
    let _ = write!(out, "{}", legacy.to_toml(&name));
    Ok(())
}
