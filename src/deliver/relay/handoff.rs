//! A hook handing its push to `hookbus relay`: the relay listens on
//! [`SOCKET`] in the outbox it holds; a hook sends one [`Request`] (a JSON
//! line) and its stdin, and the relay runs the hook's work in its own warm
//! process and sends back one [`Answer`]: what the hook would have said and
//! its exit status, or why it would not (the hook then does the work
//! itself). Everything read is bounded in size and time.

use crate::git::HookEnv;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The relay's socket, in the outbox directory.
pub const SOCKET: &str = ".relay.sock";
/// The longest request or answer line.
const MAX_LINE: u64 = 64 * 1024;
/// The largest hook input taken (a push of ~600,000 refs); a larger one is
/// the hook's own to handle.
pub const MAX_INPUT: usize = 64 * 1024 * 1024;
/// How long a request may take to arrive, whole.
pub const READ_BOUND: Duration = Duration::from_secs(5);

/// Which file a config was read from, and which version of it: a relay
/// serves only hooks that read the very file it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileId {
    /// The identity of the file at `path` now.
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        let meta = std::fs::metadata(path)?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }
}

/// What a hook asks of the relay: run `post-receive` for `repo` as this
/// hook would, with its naming environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The config file the hook read.
    pub config: PathBuf,
    /// Its identity when the hook read it.
    pub config_id: FileId,
    /// The hook's binary: a relay still running the build an upgrade
    /// replaced would render as the old one did.
    pub binary: FileId,
    /// Where the hook keeps pushes it cannot handle (its default outbox).
    pub default_outbox: PathBuf,
    /// The repository (its git directory), absolute.
    pub repo: PathBuf,
    /// Who pushes, and the repository's gitolite name.
    pub env: HookEnv,
    /// Bytes of hook input following the line.
    pub input_len: usize,
}

/// The relay's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum Answer {
    /// Done: the hook says `said` (its stderr) and exits with `status`.
    Done {
        /// The hook's exit status.
        status: u8,
        /// What the hook says on its stderr.
        said: String,
    },
    /// Not done, for `why`: the hook does the work itself.
    Declined {
        /// Why not.
        why: String,
    },
}

/// Sends `request` and `input`.
pub fn send_request(to: &mut impl Write, request: &Request, input: &[u8]) -> Result<()> {
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    to.write_all(&line)?;
    to.write_all(input)?;
    to.flush()?;
    Ok(())
}

/// Reads a request and its input (bounded: a line of 64 KB, [`MAX_INPUT`]).
pub fn read_request(from: impl Read) -> Result<(Request, Vec<u8>)> {
    let mut reader = BufReader::new(from);
    let request: Request = serde_json::from_slice(&read_line(&mut reader)?)
        .context("the request is not a hookbus relay request")?;
    if request.input_len > MAX_INPUT {
        bail!(
            "{} bytes of hook input is more than the relay takes",
            request.input_len
        );
    }
    let mut input = vec![0; request.input_len];
    reader
        .read_exact(&mut input)
        .context("the hook input ended early")?;
    Ok((request, input))
}

/// Sends `answer`.
pub fn send_answer(to: &mut impl Write, answer: &Answer) -> Result<()> {
    let mut line = serde_json::to_vec(answer)?;
    line.push(b'\n');
    to.write_all(&line)?;
    Ok(())
}

/// Reads the relay's answer.
pub fn read_answer(from: impl Read) -> Result<Answer> {
    let line = read_line(&mut BufReader::new(from))?;
    serde_json::from_slice(&line).context("the relay's answer is not one")
}

/// One line, at most [`MAX_LINE`] bytes, without its newline.
fn read_line(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    reader.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if line.pop() != Some(b'\n') {
        bail!("no whole line within {MAX_LINE} bytes");
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input_len: usize) -> Request {
        let file = tempfile::NamedTempFile::new().unwrap();
        Request {
            config: file.path().into(),
            config_id: FileId::of(file.path()).unwrap(),
            binary: FileId::of(file.path()).unwrap(),
            default_outbox: "/o".into(),
            repo: "/srv/app.git".into(),
            env: HookEnv {
                gl_repo: Some("app".into()),
                gl_user: Some("alice".into()),
                user: None,
            },
            input_len,
        }
    }

    #[test]
    fn a_request_and_an_answer_go_through_and_bad_ones_are_refused() {
        let input = b"0000 1111 refs/heads/main\n";
        let mut wire = Vec::new();
        let sent = request(input.len());
        send_request(&mut wire, &sent, input).unwrap();
        let (read, got) = read_request(&wire[..]).unwrap();
        assert_eq!(read, sent);
        assert_eq!(got, input);
        assert!(
            read_request(&wire[..wire.len() - 1]).is_err(),
            "input cut short"
        );
        assert!(read_request(&b"{not json\n"[..]).is_err());
        assert!(read_request(&vec![b'x'; 100_000][..]).is_err(), "no line");
        let mut huge = Vec::new();
        send_request(&mut huge, &request(MAX_INPUT + 1), b"").unwrap();
        assert!(read_request(&huge[..]).is_err());

        let answer = Answer::Done {
            status: 4,
            said: "hookbus: error: x\n".into(),
        };
        let mut wire = Vec::new();
        send_answer(&mut wire, &answer).unwrap();
        assert_eq!(read_answer(&wire[..]).unwrap(), answer);
    }
}
