//! `flush` and `outbox list|show|retry`: the messages that wait.

use super::args::{FlushArgs, OutboxAction};
use super::emit::{publisher, to_syslog};
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::bus::Retry;
use hookbus::config::Config;
use hookbus::deliver::dry_run::to_json_line;
use hookbus::deliver::flush;
use hookbus::deliver::lock::{Held, Holder};
use hookbus::deliver::outbox::Outbox;
use hookbus::syslog::Severity;
use std::io::Write;
use std::time::Duration;

/// `hookbus flush`: delivers the outbox under its lock. Fails with
/// [`Status::Delivery`] when messages are left or were refused.
pub fn flush(args: &FlushArgs, config: &Config, reporter: &mut Reporter) -> Result<(), Failure> {
    let replayed = super::kept::replay(config, reporter)?;
    if !replayed.kept.is_empty() {
        reporter.record(Status::Delivery);
    }
    let Some(publisher) = publisher(config, reporter)? else {
        if replayed.emitted > 0 || !replayed.kept.is_empty() {
            // Their messages wait in the outbox, as the hooks would have left them.
            return Ok(());
        }
        return Err(Failure::new(
            Status::Config,
            "no [broker] configured, so there is nowhere to flush to; add a [broker] table (see hookbus.toml(5))",
        ));
    };
    let wait = Duration::from_secs(args.wait);
    let outbox = config.outbox();
    let Some(_lock) = outbox.lock(wait).status(Status::Delivery)? else {
        return left_to_holder(&outbox, wait, reporter);
    };
    outbox.remove_stale_temps();
    let report =
        flush::flush(&outbox, &publisher, None, Retry::UntilDeadline).status(Status::Delivery)?;
    // A flush that did not stop left nothing: no need to read it all again.
    let left = match report.stopped {
        Some(_) => outbox.count_waiting().status(Status::Delivery)?,
        None => 0,
    };
    let mut line = format!(
        "flush: {} delivered, {} dead-lettered, {left} left in {}",
        report.delivered,
        report.dead_lettered,
        outbox.dir().display()
    );
    if let Some(stopped) = &report.stopped {
        line.push_str(&format!(" ({})", stopped.reason));
    }
    reporter.say(&line);
    for damaged in &report.set_aside {
        reporter.say(format_args!("set aside in dead/: {damaged}"));
    }
    let trouble = left > 0 || report.dead_lettered > 0 || !report.set_aside.is_empty();
    let severity = if trouble {
        Severity::Warning
    } else {
        Severity::Info
    };
    if report.delivered > 0 || trouble {
        to_syslog(config, severity, &line);
    }
    if trouble {
        // Already said: the line above tells what is left and why.
        reporter.record(Status::Delivery);
    }
    Ok(())
}

/// What `flush` says when another process holds the outbox: a hook or
/// flush that did not finish within `wait`, or `hookbus relay`, which
/// delivers for good (exit 6 while it finds the broker unreachable and
/// messages wait).
fn left_to_holder(outbox: &Outbox, wait: Duration, reporter: &mut Reporter) -> Result<(), Failure> {
    let dir = outbox.dir().display();
    let Held::ByRelay(holder) = outbox.held().status(Status::Delivery)? else {
        reporter.say(format_args!(
            "flush: another hookbus is still delivering from {dir} after {} s; it sends these messages",
            wait.as_secs()
        ));
        return Ok(());
    };
    let waiting = outbox.count_waiting().status(Status::Delivery)?;
    if holder == Holder::Unreachable && waiting > 0 {
        reporter.say(format_args!(
            "flush: {waiting} message(s) wait in {dir}; hookbus relay holds it and keeps trying the unreachable broker"
        ));
        reporter.record(Status::Delivery);
    } else {
        reporter.say(format_args!(
            "flush: hookbus relay holds {dir} and delivers what lands there ({waiting} waiting now)"
        ));
    }
    Ok(())
}

/// `hookbus outbox …`: lists on `out`, counts on stderr.
pub fn outbox(
    action: &OutboxAction,
    config: &Config,
    out: &mut dyn Write,
    reporter: &mut Reporter,
) -> Result<(), Failure> {
    let outbox = config.outbox();
    match action {
        OutboxAction::List => list(&outbox, out, reporter),
        OutboxAction::Show { name } => {
            let entry = outbox.find(name).status(Status::Input)?;
            let letters = outbox.read_letters(&entry).status(Status::Delivery)?;
            for letter in letters {
                let _ = writeln!(out, "{}", to_json_line(&letter.message));
            }
            Ok(())
        }
        OutboxAction::Retry { names, all } => {
            let entries = if *all {
                outbox.list_dead().status(Status::Delivery)?
            } else {
                names
                    .iter()
                    .map(|name| outbox.find_dead(name))
                    .collect::<anyhow::Result<Vec<_>>>()
                    .status(Status::Input)?
            };
            let mut put_back = 0;
            for entry in &entries {
                // A damaged file stays where it is; the others still go back.
                match outbox.retry(entry) {
                    Ok(()) => put_back += 1,
                    Err(error) => reporter.fail(Status::Input, format_args!("{error:#}")),
                }
            }
            reporter.say(format_args!(
                "{put_back} dead letter file(s) put back in {}; `hookbus flush` sends them",
                outbox.dir().display()
            ));
            Ok(())
        }
    }
}

/// One line per waiting message, then per dead letter with its reason, per
/// damaged file with what is wrong, and per kept push.
fn list(outbox: &Outbox, out: &mut dyn Write, reporter: &mut Reporter) -> Result<(), Failure> {
    let (mut waiting, mut damaged) = (0, 0);
    for entry in &outbox.list().status(Status::Delivery)? {
        // A file a flush delivered since the listing is simply gone.
        let messages = match outbox.read_if_present(entry) {
            Ok(messages) => messages,
            Err(error) => {
                damaged += 1;
                let _ = writeln!(out, "{}\t\t\t{error:#}", entry.name);
                continue;
            }
        };
        for (index, message) in messages.iter().flatten().enumerate() {
            waiting += 1;
            let _ = writeln!(
                out,
                "{}#{index}\t{}\t{}",
                entry.name,
                message.destination,
                message.header("subject").unwrap_or("")
            );
        }
    }
    let mut dead = 0;
    for entry in &outbox.list_dead().status(Status::Delivery)? {
        match outbox.read_letters(entry) {
            Ok(letters) => {
                for (index, letter) in letters.iter().enumerate() {
                    dead += 1;
                    let _ = writeln!(
                        out,
                        "{}#{index}\t{}\t{}\t{}",
                        entry.name,
                        letter.message.destination,
                        letter.message.header("subject").unwrap_or(""),
                        letter.reason
                    );
                }
            }
            Err(error) => {
                damaged += 1;
                let _ = writeln!(out, "{}\t\t\t{error:#}", entry.name);
            }
        }
    }
    reporter.say(format_args!(
        "{waiting} message(s) waiting, {dead} dead letter(s), {damaged} damaged file(s) in {}",
        outbox.dir().display()
    ));
    super::kept::list(out, reporter);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbus::message::Message;

    #[test]
    fn list_and_show_take_names_as_list_prints_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(&format!("[outbox]\ndir = {:?}", dir.path())).unwrap();
        let message = Message::compose("/topic/a", Some("hi"), &[], b"body".to_vec()).unwrap();
        let stored = Outbox::new(dir.path()).store(&[message]).unwrap();
        let (mut reporter, said) = Reporter::captured();
        let mut out = Vec::new();
        outbox(&OutboxAction::List, &config, &mut out, &mut reporter).unwrap();
        let listed = String::from_utf8(out).unwrap();
        assert_eq!(listed, format!("{}#0\t/topic/a\thi\n", stored.name));
        assert!(said
            .text()
            .contains("1 message(s) waiting, 0 dead letter(s)"));
        let name = listed.split('\t').next().unwrap().to_string();
        let mut out = Vec::new();
        outbox(
            &OutboxAction::Show { name },
            &config,
            &mut out,
            &mut reporter,
        )
        .unwrap();
        assert!(String::from_utf8(out).unwrap().contains("\"/topic/a\""));
        assert_eq!(reporter.finish(Ok(())), Status::Ok);
    }
}
