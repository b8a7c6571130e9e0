//! The one line per run for the system log: sent as a datagram to the syslog
//! socket (`/dev/log`, where journald listens too), the way libc's `syslog(3)`
//! does. Logging is best effort: a missing or busy log socket never fails a hook.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// syslog's `user` facility.
const FACILITY_USER: u8 = 1;
/// A log socket that does not take a datagram at once is not waited for.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// How serious a line is (syslog severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A run that failed.
    Error = 3,
    /// A run that left messages queued or refused.
    Warning = 4,
    /// A run that went as planned.
    Info = 6,
}

/// A syslog socket to send lines to.
#[derive(Debug, Clone)]
pub struct Syslog {
    socket: PathBuf,
}

impl Syslog {
    /// Logs to the datagram socket at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Syslog {
        Syslog {
            socket: socket.into(),
        }
    }

    /// Sends one line tagged `hookbus[PID]`; returns whether the socket took it.
    pub fn send(&self, severity: Severity, line: &str) -> bool {
        let Ok(socket) = UnixDatagram::unbound() else {
            return false;
        };
        let _ = socket.set_write_timeout(Some(SEND_TIMEOUT));
        socket
            .send_to(format_line(severity, line).as_bytes(), &self.socket)
            .is_ok()
    }
}

/// `<PRI>Mmm dd hh:mm:ss hookbus[PID]: LINE`, on one line whatever LINE holds.
fn format_line(severity: Severity, line: &str) -> String {
    let priority = FACILITY_USER * 8 + severity as u8;
    let stamp = chrono::Local::now().format("%b %e %H:%M:%S");
    let line: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "<{priority}>{stamp} hookbus[{}]: {line}",
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reaches_the_socket_with_priority_tag_and_no_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let listener = UnixDatagram::bind(&path).unwrap();
        assert!(Syslog::new(&path).send(Severity::Warning, "two\nlines"));
        let mut buffer = [0u8; 512];
        let size = listener.recv(&mut buffer).unwrap();
        let text = std::str::from_utf8(&buffer[..size]).unwrap();
        assert!(text.starts_with("<12>"), "{text}");
        assert!(
            text.ends_with(&format!("hookbus[{}]: two lines", std::process::id())),
            "{text}"
        );
    }

    #[test]
    fn a_missing_socket_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!Syslog::new(dir.path().join("none")).send(Severity::Info, "x"));
    }
}
