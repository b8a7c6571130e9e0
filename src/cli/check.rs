//! `check`: is the config valid and is each broker usable?

use super::emit::publisher;
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::bus::Trouble;
use hookbus::config::Config;
use hookbus::deliver::lock::{Held, Holder};
use std::io::Write;

/// `hookbus check`: one line per broker on `out`, then the outbox's counts
/// and who holds its lock (`hookbus relay`, say).
/// Fails unless one broker is usable.
pub fn check(config: &Config, out: &mut dyn Write, reporter: &mut Reporter) -> Result<(), Failure> {
    // The daemons' sections are theirs to read; a bad one is a bad config.
    if config.webhook.is_some() {
        hookbus::webhook::settings(config).status(Status::Config)?;
    }
    let Some(publisher) = publisher(config, reporter)? else {
        let _ = writeln!(
            out,
            "config is valid; no [broker] configured: messages stay in the outbox"
        );
        return Ok(());
    };
    if let Some(signer) = publisher.signer() {
        let _ = writeln!(
            out,
            "signing with key {} ({})",
            signer.public().id(),
            signer.file().display()
        );
    }
    let mut usable = false;
    let mut refused = 0;
    let router = config.router();
    for report in publisher.check(&router.samples()) {
        let _ = match report.result {
            Ok(reached) => {
                usable = true;
                let _ = writeln!(
                    out,
                    "{}: reachable, authenticated, {}, round trip {:.1} ms",
                    report.host,
                    reached.protocol,
                    reached.round_trip.as_secs_f64() * 1000.0
                );
                refused += reached.refusals.len();
                (reached.refusals.iter()).try_for_each(|(route, why)| {
                    let route = router.describe(*route);
                    writeln!(out, "{}: would refuse {route}: {why}", report.host)
                })
            }
            Err(error) if error.trouble() == Trouble::Unreachable => {
                writeln!(out, "{}: unreachable: {error}", report.host)
            }
            Err(error) => writeln!(out, "{}: reachable, not usable: {error}", report.host),
        };
    }
    let outbox = config.outbox();
    let _ = match (outbox.list(), outbox.list_dead()) {
        (Ok(waiting), Ok(dead)) => writeln!(
            out,
            "outbox {}: {} file(s) waiting, {} dead letter(s)",
            outbox.dir().display(),
            waiting.len(),
            dead.len()
        ),
        (Err(error), _) | (_, Err(error)) => writeln!(out, "outbox: {error:#}"),
    };
    let _ = match outbox.held() {
        Ok(held) => writeln!(out, "outbox lock: {}", describe(held)),
        Err(error) => writeln!(out, "outbox lock: {error:#}"),
    };
    if refused > 0 {
        Err(Failure::new(
            Status::Config,
            "fix the [[route]] destinations the broker would refuse",
        ))
    } else if usable {
        Ok(())
    } else {
        Err(Failure::new(
            Status::Delivery,
            "no broker in [broker] url is usable",
        ))
    }
}

/// Who delivers from the outbox, in words.
fn describe(held: Held) -> String {
    let doing = |holder| match holder {
        Holder::Starting => "connecting",
        Holder::Delivering => "delivering",
        Holder::Unreachable => "broker unreachable",
    };
    match held {
        Held::Free => "free (no hookbus relay: each hook delivers its own)".into(),
        Held::ByRelay(holder) => format!("held by hookbus relay ({})", doing(holder)),
        Held::ByRun(holder) => format!("held by a hook or flush ({})", doing(holder)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_broker_the_config_is_valid_and_messages_stay_in_the_outbox() {
        let (mut reporter, said) = Reporter::captured();
        let mut out = Vec::new();
        check(&Config::parse("").unwrap(), &mut out, &mut reporter).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "config is valid; no [broker] configured: messages stay in the outbox\n"
        );
        assert_eq!(said.text(), "");
    }
}
