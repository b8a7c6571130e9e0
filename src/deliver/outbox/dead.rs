//! Dead letters: messages the broker refused for good, kept in `dead/` with
//! their reason until an operator puts them back or removes them.

use super::{Entry, Outbox, DEAD_DIR, SUFFIX};
use crate::message::Message;
use crate::private_file::sync_dir;
use anyhow::{Context, Result};
use std::fs;

impl Outbox {
    /// Dead letters, oldest first.
    pub fn list_dead(&self) -> Result<Vec<Entry>> {
        self.list_dir(&self.dir.join(DEAD_DIR), "dead/")
    }

    /// Finds a dead letter file by its name, with or without `dead/`.
    pub fn find_dead(&self, name: &str) -> Result<Entry> {
        match name.starts_with("dead/") {
            true => self.find(name),
            false => self.find(&format!("dead/{name}")),
        }
    }

    /// Moves one message of a pending file to the dead letters with its reason.
    /// The caller then drops it from the pending file with [`Outbox::keep_only`].
    pub fn bury(&self, entry: &Entry, index: usize, message: &Message, reason: &str) -> Result<()> {
        let dead = self.dir.join(DEAD_DIR);
        self.create_dir(&dead)?;
        let stem = entry.name.trim_end_matches(SUFFIX);
        let path = dead.join(format!("{stem}-{index:05}{SUFFIX}"));
        self.write_file(&dead, &path, &[(message, Some(reason))])
            .with_context(|| format!("cannot save dead letter {}", path.display()))
    }

    /// Moves a whole pending file to the dead letters as it is (one that cannot
    /// be read, so it cannot be sent either).
    pub fn set_aside(&self, entry: &Entry) -> Result<()> {
        let dead = self.dir.join(DEAD_DIR);
        self.create_dir(&dead)?;
        fs::rename(&entry.path, dead.join(&entry.name))
            .with_context(|| format!("cannot move {} to {}", entry.name, dead.display()))?;
        sync_dir(&dead)?;
        sync_dir(&self.dir)
    }

    /// Puts a dead-letter file back among the pending ones, under its old name,
    /// so that the next flush sends it before anything newer.
    pub fn retry(&self, entry: &Entry) -> Result<()> {
        let name = entry.name.trim_start_matches("dead/");
        let target = self.dir.join(name);
        let letters = self
            .read_letters(entry)
            .with_context(|| format!("{} cannot be put back", entry.name))?;
        let records: Vec<(&Message, Option<&str>)> = letters
            .iter()
            .map(|letter| (&letter.message, None))
            .collect();
        self.write_file(&self.dir, &target, &records)
            .with_context(|| format!("cannot put {} back", entry.name))?;
        self.remove(entry)
    }

    /// How many messages of the pending file `name` became dead letters.
    pub fn buried_from(&self, name: &str) -> usize {
        let stem = format!("{}-", name.trim_end_matches(SUFFIX));
        self.list_dead().map_or(0, |dead| {
            dead.iter()
                .filter(|entry| entry.name["dead/".len()..].starts_with(&stem))
                .count()
        })
    }
}
