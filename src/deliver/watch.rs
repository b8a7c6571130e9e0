//! Waiting for files to land in (or leave) the outbox directory
//! (inotify), or for a stop signal, whichever comes first: how `hookbus
//! relay` sleeps between deliveries, and how a hook waiting for another
//! process to deliver its files hears that they went, without polling.

use anyhow::{Context, Result};
use inotify::{EventMask, Inotify, WatchMask};
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

/// A watch on one directory for files renamed into it (every outbox file is
/// written under a temporary name and renamed into place), or for files
/// removed from it.
pub struct DirWatch {
    inotify: Inotify,
    dir: std::path::PathBuf,
}

/// Why [`DirWatch::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// A file arrived (or several).
    Files,
    /// The stop descriptor became readable (a signal arrived).
    Stop,
    /// The timeout passed.
    Timeout,
}

impl DirWatch {
    /// Watches `dir`, which must exist, for files renamed into it.
    pub fn arrivals(dir: &Path) -> Result<DirWatch> {
        DirWatch::new(dir, WatchMask::MOVED_TO)
    }

    /// Watches `dir`, which must exist, for files removed or renamed away.
    pub fn departures(dir: &Path) -> Result<DirWatch> {
        DirWatch::new(dir, WatchMask::DELETE | WatchMask::MOVED_FROM)
    }

    fn new(dir: &Path, mask: WatchMask) -> Result<DirWatch> {
        let inotify = Inotify::init().context("cannot start inotify")?;
        inotify
            .watches()
            .add(dir, mask | WatchMask::DELETE_SELF | WatchMask::MOVE_SELF)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
        Ok(DirWatch {
            inotify,
            dir: dir.to_path_buf(),
        })
    }

    /// Sleeps until a file arrives (or leaves), `stop` is readable or
    /// `timeout` passes (`None`: no timeout). Which file is not said: the
    /// caller looks at the directory.
    pub fn wait(
        &mut self,
        stop: Option<BorrowedFd<'_>>,
        timeout: Option<Duration>,
    ) -> Result<Woke> {
        let mut fds = [
            libc::pollfd {
                // poll(2) ignores a negative descriptor.
                fd: stop.map_or(-1, |stop| stop.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.inotify.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let millis = timeout.map_or(-1, |timeout| {
            // Round up, so that a wait for 0.4 ms does not spin.
            timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        });
        // SAFETY: `fds` is a valid array of two pollfd for the whole call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if ready < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == ErrorKind::Interrupted {
                return Ok(Woke::Timeout);
            }
            return Err(error).context("cannot wait for the outbox");
        }
        if fds[0].revents != 0 {
            return Ok(Woke::Stop);
        }
        if fds[1].revents == 0 {
            return Ok(Woke::Timeout);
        }
        self.drain()?;
        Ok(Woke::Files)
    }

    /// Reads the pending events, so that the next wait sleeps. The
    /// directory itself removed or renamed is an error: files land in
    /// another one now, which this watch would never see.
    fn drain(&mut self) -> Result<()> {
        let mut buffer = [0u8; 4096];
        loop {
            match self.inotify.read_events(&mut buffer) {
                Ok(events) => {
                    let mut any = false;
                    for event in events {
                        any = true;
                        if event
                            .mask
                            .intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF)
                        {
                            anyhow::bail!(
                                "{} was removed or renamed; start again to use the new one",
                                self.dir.display()
                            );
                        }
                    }
                    if !any {
                        return Ok(());
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(error).context("cannot read inotify events"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn wakes_for_a_file_renamed_in_and_for_stop_and_times_out_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let (stop_tx, stop_rx) = UnixStream::pair().unwrap();
        let mut watch = DirWatch::arrivals(dir.path()).unwrap();
        let short = Some(Duration::from_millis(20));
        assert_eq!(
            watch.wait(Some(stop_rx.as_fd()), short).unwrap(),
            Woke::Timeout
        );
        std::fs::write(dir.path().join(".tmp-a"), b"x").unwrap();
        assert_eq!(
            watch.wait(Some(stop_rx.as_fd()), short).unwrap(),
            Woke::Timeout,
            "a temporary file being written is no news"
        );
        std::fs::rename(dir.path().join(".tmp-a"), dir.path().join("a.msg")).unwrap();
        assert_eq!(
            watch.wait(Some(stop_rx.as_fd()), short).unwrap(),
            Woke::Files
        );
        assert_eq!(
            watch.wait(Some(stop_rx.as_fd()), short).unwrap(),
            Woke::Timeout,
            "events are read once"
        );
        use std::io::Write;
        (&stop_tx).write_all(b"x").unwrap();
        assert_eq!(watch.wait(Some(stop_rx.as_fd()), None).unwrap(), Woke::Stop);
    }

    #[test]
    fn departures_wake_for_a_file_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.msg"), b"x").unwrap();
        let mut watch = DirWatch::departures(dir.path()).unwrap();
        let short = Some(Duration::from_millis(20));
        std::fs::write(dir.path().join("b.msg"), b"x").unwrap();
        assert_eq!(watch.wait(None, short).unwrap(), Woke::Timeout);
        std::fs::remove_file(dir.path().join("a.msg")).unwrap();
        assert_eq!(watch.wait(None, short).unwrap(), Woke::Files);
    }

    #[test]
    fn the_directory_going_away_is_an_error_not_a_silence() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        std::fs::create_dir(&outbox).unwrap();
        let (_stop_tx, stop_rx) = UnixStream::pair().unwrap();
        let mut watch = DirWatch::arrivals(&outbox).unwrap();
        std::fs::rename(&outbox, dir.path().join("elsewhere")).unwrap();
        let error = watch.wait(Some(stop_rx.as_fd()), None).unwrap_err();
        assert!(error.to_string().contains("removed or renamed"), "{error}");
    }
}
