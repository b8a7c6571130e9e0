//! Running `svnlook`: at a configured absolute path, with the environment cleared
//! and `LC_ALL` set, since svn hooks get no PATH and no locale and svnlook mangles
//! non-ASCII text in the C locale. Output is read as bytes.

use crate::child::{Bounded, Keep, Ran, Streaming};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command};
use std::time::Duration;

/// Bound on one svnlook, reading its output included: a whole revision's
/// diff streams in well under this, so only a stalled disk or svnlook
/// reaches it (it is killed then, and the commit is not held).
const BOUND: Duration = Duration::from_secs(300);

/// Bytes of the end of svnlook's stderr kept for an error.
const STDERR_KEPT: usize = 2048;

/// The svn error code for a property that is not set.
const PROPERTY_NOT_FOUND: &str = "E200017";

/// Raw output about one revision.
#[derive(Debug)]
pub struct RevisionOutput {
    /// `svnlook changed --copy-info`.
    pub changed: Vec<u8>,
    /// The requested revision properties, in order; `None` when not set.
    pub revprops: Vec<Option<Vec<u8>>>,
}

/// How to run svnlook against one repository.
#[derive(Debug, Clone)]
pub struct Svnlook {
    program: PathBuf,
    locale: String,
    repo: PathBuf,
}

impl Svnlook {
    /// An svnlook for `repo`.
    pub fn new(program: &Path, locale: &str, repo: &Path) -> Self {
        Svnlook {
            program: program.to_path_buf(),
            locale: locale.to_string(),
            repo: repo.to_path_buf(),
        }
    }

    /// Starts `svnlook SUBCOMMAND ARGS… REPOS TRAILING…`, bounded, with its
    /// stdout for the caller.
    fn spawn(
        &self,
        subcommand: &str,
        args: &[&str],
        trailing: &[&str],
    ) -> Result<(Streaming, ChildStdout)> {
        let mut command = Command::new(&self.program);
        command
            .arg(subcommand)
            .args(args)
            .arg(&self.repo)
            .args(trailing)
            .env_clear()
            .env("LC_ALL", &self.locale);
        Bounded::new(format!("svnlook {subcommand}"), BOUND)
            .stderr(Keep::Tail(STDERR_KEPT))
            .spawn(&mut command)
            .with_context(|| {
                format!(
                    "cannot run {}: install subversion or set [svn] svnlook in the config to svnlook's absolute path",
                    self.program.display()
                )
            })
    }

    /// Reads a started svnlook's stdout to the end and reaps it.
    fn to_end(&self, subcommand: &str, started: (Streaming, ChildStdout)) -> Result<Ran> {
        let (child, mut stdout) = started;
        let mut read = Vec::new();
        stdout
            .read_to_end(&mut read)
            .with_context(|| format!("cannot read the output of svnlook {subcommand}"))?;
        drop(stdout);
        let ran = child.finish()?;
        Ok(Ran {
            stdout: read,
            ..ran
        })
    }

    /// Runs a subcommand to the end and returns its stdout.
    pub fn output(&self, subcommand: &str, args: &[&str]) -> Result<Vec<u8>> {
        let ran = self.to_end(subcommand, self.spawn(subcommand, args, &[])?)?;
        self.stdout_of(subcommand, ran)
    }

    /// Reads what a revision shows in one go: `changed --copy-info` and the
    /// given revision properties, run side by side since each svnlook costs
    /// 10–20 ms of startup. Properties that are not set are `None`.
    pub fn changes_and_revprops(&self, revision: u64, names: &[&str]) -> Result<RevisionOutput> {
        let rev = revision.to_string();
        let changed = self.spawn("changed", &["--copy-info", "-r", &rev], &[])?;
        let props = names
            .iter()
            .map(|name| self.spawn("propget", &["--revprop", "-r", &rev], &[name]))
            .collect::<Result<Vec<_>>>()?;
        let changed = self.to_end("changed", changed)?;
        let changed = self.stdout_of("changed", changed)?;
        let mut values = Vec::with_capacity(props.len());
        for started in props {
            let output = self.to_end("propget", started)?;
            let missing = !output.status.success()
                && String::from_utf8_lossy(&output.stderr).contains(PROPERTY_NOT_FOUND);
            values.push(if missing {
                None
            } else {
                Some(self.stdout_of("propget", output)?)
            });
        }
        Ok(RevisionOutput {
            changed,
            revprops: values,
        })
    }

    /// The size in bytes of a file in a revision.
    pub fn file_size(&self, revision: u64, path: &str) -> Result<u64> {
        let rev = revision.to_string();
        let output = self.to_end("filesize", self.spawn("filesize", &["-r", &rev], &[path])?)?;
        let stdout = self.stdout_of("filesize", output)?;
        let text = String::from_utf8_lossy(&stdout);
        text.trim()
            .parse()
            .with_context(|| format!("svnlook filesize printed {text:?}"))
    }

    /// The stdout of a finished svnlook, or its failure as an error.
    fn stdout_of(&self, subcommand: &str, output: Ran) -> Result<Vec<u8>> {
        if !output.status.success() {
            bail!(self.failure(subcommand, &output.stderr));
        }
        Ok(output.stdout)
    }

    /// Streams a subcommand's stdout line by line (without the newline), so a huge
    /// diff is never held whole; fails if svnlook does.
    pub fn for_each_line(
        &self,
        subcommand: &str,
        args: &[&str],
        mut each: impl FnMut(&[u8]),
    ) -> Result<()> {
        let (child, stdout) = self.spawn(subcommand, args, &[])?;
        for line in BufReader::new(stdout).split(b'\n') {
            each(&line.context("cannot read svnlook's output")?);
        }
        self.stdout_of(subcommand, child.finish()?)?;
        Ok(())
    }

    fn failure(&self, subcommand: &str, stderr: &[u8]) -> String {
        let message = String::from_utf8_lossy(stderr);
        format!(
            "svnlook {subcommand} failed on {}: {} (is it a Subversion repository, and the revision in it?)",
            self.repo.display(),
            message.trim().replace('\n', "; ")
        )
    }
}
