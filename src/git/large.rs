//! Files too large to hand to libgit2's diff, which holds both blobs and every
//! line of the patch at once (a 200 MB file took 405 MB). Their size is known
//! before they are loaded; an added or deleted one is streamed line by line
//! (only the lines the limits keep are held, all are counted), and a modified
//! one is described, not diffed.

use super::git_command;
use crate::child::{Bounded, Keep, Streaming};
use crate::model::PatchLimits;
use anyhow::{bail, Context, Result};
use git2::{Oid, Repository};
use std::io::{BufRead, BufReader, Cursor, Read};
use std::time::Duration;

/// Blobs larger than this are not given to libgit2's diff.
pub const LARGE_BLOB_BYTES: u64 = 8 * 1024 * 1024;

/// Bound on streaming one blob out of git, the rendering of its lines
/// included: a file of a few GiB streams in well under a minute, so only a
/// stalled disk or git reaches it (the update then fails, the push does not
/// wait).
const STREAM_BOUND: Duration = Duration::from_secs(300);

/// Bytes of the end of git's stderr kept for an error.
const STDERR_KEPT: usize = 2048;

/// Bytes git reads to decide that a file is binary (a NUL among them).
const BINARY_PROBE_BYTES: usize = 8000;

/// The size of a blob, without loading it; `None` for ids that are not in the
/// object database (a submodule's commit, the null id).
pub fn blob_size(odb: &git2::Odb<'_>, id: Oid) -> Option<u64> {
    if id.is_zero() {
        return None;
    }
    let (size, _) = odb.read_header(id).ok()?;
    Some(size as u64)
}

/// A blob's content as a stream: libgit2 streams loose objects (what a push
/// of a few objects leaves); packed ones are streamed by `git cat-file`, since
/// libgit2 would inflate them whole.
pub struct BlobStream<'r> {
    reader: BufReader<Box<dyn Read + 'r>>,
    /// A child dropped unfinished (a binary file) is killed and reaped.
    child: Option<Streaming>,
    /// A NUL among the first bytes: git calls the file binary.
    pub binary: bool,
}

impl<'r> BlobStream<'r> {
    pub fn open(repo: &'r Repository, odb: &'r git2::Odb<'r>, id: Oid) -> Result<Self> {
        let (mut source, child): (Box<dyn Read + 'r>, _) = match odb.reader(id) {
            Ok((reader, _, _)) => (Box::new(reader), None),
            Err(_) => {
                let (child, stdout) = Bounded::new("git cat-file", STREAM_BOUND)
                    .stderr(Keep::Tail(STDERR_KEPT))
                    .spawn(git_command(repo).args(["cat-file", "blob", &id.to_string()]))
                    .context("cannot stream a large file")?;
                (Box::new(stdout), Some(child))
            }
        };
        let mut head = Vec::with_capacity(BINARY_PROBE_BYTES);
        (&mut source)
            .take(BINARY_PROBE_BYTES as u64)
            .read_to_end(&mut head)?;
        let binary = head.contains(&0);
        let reader: Box<dyn Read + 'r> = Box::new(Cursor::new(head).chain(source));
        Ok(BlobStream {
            reader: BufReader::with_capacity(1 << 16, reader),
            child,
            binary,
        })
    }

    /// Calls `each` with every line, `prefix` before it and clipped to the
    /// limits, from the start when `wanted` and while `each` returns true;
    /// after that lines are only counted. Returns the number of lines and whether the last one
    /// lacks a newline. Only what a clipped line shows is held, never the
    /// stream: the cut counts the characters that were skipped.
    pub fn lines(
        mut self,
        prefix: u8,
        limits: &PatchLimits,
        wanted: bool,
        mut each: impl FnMut(&str) -> bool,
    ) -> Result<(usize, bool)> {
        let keep_bytes = (limits.max_line_length + 1) * 4;
        let mut count = 0;
        let mut line: Vec<u8> = vec![prefix];
        let mut skipped_chars = 0usize;
        let mut in_line = false;
        let mut text_wanted = wanted;
        loop {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            let (chunk, ends_line) = match buffer.iter().position(|&b| b == b'\n') {
                Some(at) => (&buffer[..at], true),
                None => (buffer, false),
            };
            in_line = true;
            if text_wanted {
                let room = keep_bytes.saturating_sub(line.len()).min(chunk.len());
                line.extend_from_slice(&chunk[..room]);
                skipped_chars += chunk[room..].iter().filter(|&&b| b & 0xC0 != 0x80).count();
            }
            let consumed = chunk.len() + usize::from(ends_line);
            self.reader.consume(consumed);
            if ends_line {
                count += 1;
                in_line = false;
                if text_wanted {
                    text_wanted = each(&clipped(&line, skipped_chars, limits));
                    line.truncate(1);
                    skipped_chars = 0;
                }
            }
        }
        if in_line {
            count += 1;
            if text_wanted {
                each(&clipped(&line, skipped_chars, limits));
            }
        }
        self.finish()?;
        Ok((count, in_line))
    }

    fn finish(self) -> Result<()> {
        drop(self.reader);
        if let Some(child) = self.child {
            let ran = child.finish().context("cannot stream a large file")?;
            if !ran.status.success() {
                bail!(
                    "git cat-file failed: {}",
                    String::from_utf8_lossy(&ran.stderr).trim()
                );
            }
        }
        Ok(())
    }
}

/// One line's text as the patch shows it: clipped like every diff line, the
/// cut also counting the characters that were never read into memory.
fn clipped(kept: &[u8], skipped_chars: usize, limits: &PatchLimits) -> String {
    let text = String::from_utf8_lossy(kept);
    if skipped_chars == 0 {
        return limits.clip(&text).into_owned();
    }
    let cut = text
        .char_indices()
        .nth(limits.max_line_length)
        .map_or(text.len(), |(at, _)| at);
    let rest = text[cut..].chars().count() + skipped_chars;
    format!("{}[hookbus: +{rest} chars]", &text[..cut])
}
