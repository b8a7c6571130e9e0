//! Exit statuses and the one place that says what went wrong: commands record
//! failures in a [`Reporter`] as they go on, or stop with a [`Failure`]; the
//! status the process exits with is decided here.

use std::fmt::Display;
use std::io::Write;

/// Exit statuses; documented in hookbus(1). Bad command-line usage exits with 2
/// (clap's own status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Everything was handled.
    Ok = 0,
    /// The config file is missing, unreadable or invalid.
    Config = 3,
    /// Some input (a stdin line, a revision) was bad; the rest was handled.
    Input = 4,
    /// The repository is missing or could not be read.
    Repository = 5,
    /// Messages could not be delivered or saved anywhere (for `flush`: some
    /// are still waiting, or were refused for good).
    Delivery = 6,
    /// `ctl`: no listener answers on the control socket.
    Unreachable = 7,
    /// `ctl`: the listener refused the command; nothing changed.
    Refused = 8,
    /// `ctl`: the command's work failed.
    Failed = 9,
}

impl Status {
    /// The status an exit code stands for (an unknown one is a delivery failure).
    pub fn from_code(code: u8) -> Status {
        [
            Status::Ok,
            Status::Config,
            Status::Input,
            Status::Repository,
            Status::Delivery,
            Status::Unreachable,
            Status::Refused,
            Status::Failed,
        ]
        .into_iter()
        .find(|status| *status as u8 == code)
        .unwrap_or(Status::Delivery)
    }
}

/// A failure that stops the command, with the status it exits with.
#[derive(Debug)]
pub struct Failure {
    pub status: Status,
    pub error: anyhow::Error,
}

impl Failure {
    /// A failure from a message.
    pub fn new(status: Status, message: impl Display) -> Failure {
        Failure {
            status,
            error: anyhow::anyhow!("{message}"),
        }
    }
}

/// Attaches the exit status to an error.
pub trait WithStatus<T> {
    fn status(self, status: Status) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> WithStatus<T> for Result<T, E> {
    fn status(self, status: Status) -> Result<T, Failure> {
        self.map_err(|error| Failure {
            status,
            error: error.into(),
        })
    }
}

/// Says things on stderr (`hookbus: …` lines) and remembers the worst failure
/// a command went on after.
pub struct Reporter {
    err: Box<dyn Write>,
    status: Status,
    /// `-v` given: say more.
    pub verbose: bool,
    /// A person watches stderr: a terminal, or `-v`.
    pub watched: bool,
}

impl Reporter {
    /// A reporter writing to `err`.
    pub fn new(err: Box<dyn Write>, verbose: bool, terminal: bool) -> Reporter {
        Reporter {
            err,
            status: Status::Ok,
            verbose,
            watched: terminal || verbose,
        }
    }

    /// One line on stderr.
    pub fn say(&mut self, line: impl Display) {
        let _ = writeln!(self.err, "hookbus: {line}");
    }

    /// Text another process wrote for this one's stderr, as it is.
    pub fn pass_on(&mut self, text: &str) {
        let _ = self.err.write_all(text.as_bytes());
    }

    /// An error the command goes on after; the exit status is at least `status`.
    pub fn fail(&mut self, status: Status, error: impl Display) {
        self.say(format_args!("error: {error}"));
        self.record(status);
    }

    /// A failure already said otherwise; the exit status is at least `status`.
    pub fn record(&mut self, status: Status) {
        self.status = self.status.max(status);
    }

    /// What the command exits with: the worst failure recorded, or the one it
    /// stopped with.
    pub fn finish(mut self, result: Result<(), Failure>) -> Status {
        match result {
            Ok(()) => self.status,
            Err(failure) => {
                self.say(format_args!("error: {:#}", failure.error));
                failure.status
            }
        }
    }

    /// A reporter that keeps what it is told, for tests.
    #[cfg(test)]
    pub fn captured() -> (Reporter, Captured) {
        let captured = Captured::default();
        let reporter = Reporter::new(Box::new(captured.clone()), false, false);
        (reporter, captured)
    }
}

/// Text a test reporter was told.
#[cfg(test)]
#[derive(Clone, Default)]
pub struct Captured(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    /// Everything said so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

#[cfg(test)]
impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_recorded_failure_decides_unless_one_stops_the_command() {
        let (mut reporter, captured) = Reporter::captured();
        reporter.fail(Status::Input, "bad line");
        reporter.fail(Status::Config, "bad setting");
        assert_eq!(reporter.finish(Ok(())), Status::Input);
        assert_eq!(
            captured.text(),
            "hookbus: error: bad line\nhookbus: error: bad setting\n"
        );
        let (reporter, _) = Reporter::captured();
        let stop = Failure::new(Status::Config, "no broker");
        assert_eq!(reporter.finish(Err(stop)), Status::Config);
    }
}
