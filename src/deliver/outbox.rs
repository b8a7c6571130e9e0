//! The local outbox: a directory of message files written durably, oldest first.
//!
//! With no broker configured it is where messages go (the embedded default); with
//! a broker it keeps what could not be delivered yet. Each message is one file:
//! a JSON line with destination and headers, then the body bytes verbatim. Files
//! are written under a temporary name, fsynced, renamed and the directory fsynced,
//! so a crash leaves either the whole message or nothing.

use super::{Message, Outcome, Transport};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const SUFFIX: &str = ".msg";
const TEMP_PREFIX: &str = ".tmp-";

/// A directory holding messages that have not been delivered yet.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

/// One stored message file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File name; names sort in the order the messages were stored.
    pub name: String,
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    destination: String,
    headers: Vec<(String, String)>,
}

impl Outbox {
    /// An outbox in `dir`; the directory is created on the first store.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Outbox { dir: dir.into() }
    }

    /// The directory this outbox uses.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores every message durably, in order, and returns their entries.
    pub fn store(&self, messages: &[Message]) -> Result<Vec<Entry>> {
        fs::create_dir_all(&self.dir).with_context(|| {
            format!(
                "cannot create outbox directory {} (set [outbox] dir in the config to a writable directory)",
                self.dir.display()
            )
        })?;
        let entries = messages
            .iter()
            .map(|message| self.store_one(message))
            .collect::<Result<Vec<_>>>()?;
        sync_dir(&self.dir)?;
        Ok(entries)
    }

    fn store_one(&self, message: &Message) -> Result<Entry> {
        let name = next_name();
        let temp = self.dir.join(format!("{TEMP_PREFIX}{name}"));
        let path = self.dir.join(&name);
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            let envelope = Envelope {
                destination: message.destination.clone(),
                headers: message.headers.clone(),
            };
            serde_json::to_writer(&mut file, &envelope)?;
            file.write_all(b"\n")?;
            file.write_all(&message.body)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        };
        if let Err(err) = write() {
            let _ = fs::remove_file(&temp);
            return Err(err).with_context(|| {
                format!(
                    "cannot save message for {} in outbox {}",
                    message.destination,
                    self.dir.display()
                )
            });
        }
        Ok(Entry { name, path })
    }

    /// Every stored message, oldest first. A missing directory is an empty outbox.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let read = match fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot read outbox {}", self.dir.display()))
            }
        };
        let mut entries = Vec::new();
        for item in read {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(SUFFIX) && !name.starts_with(TEMP_PREFIX) {
                entries.push(Entry {
                    path: item.path(),
                    name,
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Reads a stored message back.
    pub fn read(&self, entry: &Entry) -> Result<Message> {
        read_message(&entry.path)
    }

    /// Finds an entry by its file name (or a unique prefix of it).
    pub fn find(&self, name: &str) -> Result<Entry> {
        let matches: Vec<Entry> = self
            .list()?
            .into_iter()
            .filter(|entry| entry.name.starts_with(name))
            .collect();
        match matches.len() {
            1 => Ok(matches.into_iter().next().expect("one match")),
            0 => bail!(
                "no message named {name} in outbox {} (see `hookbus outbox list`)",
                self.dir.display()
            ),
            n => bail!("{n} messages start with {name}; give more of the name"),
        }
    }

    /// Removes a delivered message.
    pub fn remove(&self, entry: &Entry) -> Result<()> {
        fs::remove_file(&entry.path)
            .with_context(|| format!("cannot remove {}", entry.path.display()))?;
        sync_dir(&self.dir)
    }
}

/// Reads one message file.
pub fn read_message(path: &Path) -> Result<Message> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .with_context(|| format!("{} is not a hookbus message file", path.display()))?;
    let envelope: Envelope = serde_json::from_slice(&bytes[..split])
        .with_context(|| format!("{} has a damaged header line", path.display()))?;
    Ok(Message {
        destination: envelope.destination,
        headers: envelope.headers,
        body: bytes[split + 1..].to_vec(),
    })
}

/// A file name that sorts after every earlier one from this or another process.
fn next_name() -> String {
    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:012}.{:09}-{:07}-{:05}{SUFFIX}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .with_context(|| format!("cannot sync outbox directory {}", dir.display()))
}

impl Transport for Outbox {
    fn deliver(&mut self, messages: &[Message]) -> Result<Outcome> {
        if messages.is_empty() {
            return Ok(Outcome::default());
        }
        let entries = self.store(messages)?;
        Ok(Outcome {
            accepted: entries.len(),
            notes: vec![format!(
                "hookbus: {} message(s) saved in outbox {}",
                entries.len(),
                self.dir.display()
            )],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_reads_back_byte_exact_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("box"));
        let messages: Vec<Message> = (0..3u8)
            .map(|i| Message {
                destination: format!("/topic/t{i}"),
                headers: vec![("subject".into(), format!("line\nbreak {i}"))],
                body: vec![0, 0xff, b'\n', i],
            })
            .collect();
        outbox.store(&messages).unwrap();
        let entries = outbox.list().unwrap();
        assert_eq!(entries.len(), 3);
        let back: Vec<Message> = entries.iter().map(|e| outbox.read(e).unwrap()).collect();
        assert_eq!(back, messages);
        outbox.remove(&entries[0]).unwrap();
        assert_eq!(outbox.list().unwrap().len(), 2);
    }

    #[test]
    fn missing_directory_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Outbox::new(dir.path().join("none"))
            .list()
            .unwrap()
            .is_empty());
    }
}
