//! Running `svnlook`: at a configured absolute path, with the environment cleared
//! and `LC_ALL` set, since svn hooks get no PATH and no locale and svnlook mangles
//! non-ASCII text in the C locale. Output is read as bytes.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// The svn error code for a property that is not set.
const PROPERTY_NOT_FOUND: &str = "E200017";

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

    /// Starts `svnlook SUBCOMMAND ARGS… REPOS TRAILING…` with stdout piped.
    fn spawn(&self, subcommand: &str, args: &[&str], trailing: &[&str]) -> Result<Child> {
        Command::new(&self.program)
            .arg(subcommand)
            .args(args)
            .arg(&self.repo)
            .args(trailing)
            .env_clear()
            .env("LC_ALL", &self.locale)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run {}: install subversion or set [svn] svnlook in the config to svnlook's absolute path",
                    self.program.display()
                )
            })
    }

    /// Runs a subcommand to the end and returns its stdout.
    pub fn output(&self, subcommand: &str, args: &[&str]) -> Result<Vec<u8>> {
        let output = self.spawn(subcommand, args, &[])?.wait_with_output()?;
        if !output.status.success() {
            bail!(self.failure(subcommand, &output.stderr));
        }
        Ok(output.stdout)
    }

    /// A revision property's raw bytes, `None` when it is not set.
    pub fn revprop(&self, revision: u64, name: &str) -> Result<Option<Vec<u8>>> {
        let rev = revision.to_string();
        let output = self
            .spawn("propget", &["--revprop", "-r", &rev], &[name])?
            .wait_with_output()?;
        if output.status.success() {
            return Ok(Some(output.stdout));
        }
        if String::from_utf8_lossy(&output.stderr).contains(PROPERTY_NOT_FOUND) {
            return Ok(None);
        }
        bail!(self.failure("propget", &output.stderr))
    }

    /// The size in bytes of a file in a revision.
    pub fn file_size(&self, revision: u64, path: &str) -> Result<u64> {
        let rev = revision.to_string();
        let output = self
            .spawn("filesize", &["-r", &rev], &[path])?
            .wait_with_output()?;
        if !output.status.success() {
            bail!(self.failure("filesize", &output.stderr));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .parse()
            .with_context(|| format!("svnlook filesize printed {text:?}"))
    }

    /// Streams a subcommand's stdout line by line (without the newline), so a huge
    /// diff is never held whole; fails if svnlook does.
    pub fn for_each_line(
        &self,
        subcommand: &str,
        args: &[&str],
        mut each: impl FnMut(&[u8]),
    ) -> Result<()> {
        let mut child = self.spawn(subcommand, args, &[])?;
        let stdout: ChildStdout = child.stdout.take().expect("stdout is piped");
        // stderr is small; read it after stdout is drained.
        for line in BufReader::new(stdout).split(b'\n') {
            each(&line.context("cannot read svnlook's output")?);
        }
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(self.failure(subcommand, &output.stderr));
        }
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
