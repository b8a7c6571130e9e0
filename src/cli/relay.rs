//! `relay`: the signals, the publisher and the log around the library's
//! relay loop.

use super::emit::{publisher, to_syslog};
use super::handoff::Desk;
use super::report::{Failure, Reporter, Status, WithStatus};
use hookbus::config::Config;
use hookbus::deliver::relay::board::Board;
use hookbus::deliver::relay::metrics::{self, RelayMetrics};
use hookbus::deliver::relay::{self, Event};
use hookbus::syslog::Severity;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

/// `hookbus relay`: delivers the outbox as files land, until SIGTERM or
/// SIGINT.
pub fn relay(config: &Config, reporter: &mut Reporter) -> Result<(), Failure> {
    let Some(publisher) = publisher(config, reporter)? else {
        return Err(Failure::new(
            Status::Config,
            "no [broker] configured, so there is nothing to relay to; add a [broker] table (see hookbus.toml(5))",
        ));
    };
    // A signal writes a byte here; the relay sleeps on its other end.
    let (stop, signalled) = UnixStream::pair().status(Status::Config)?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::low_level::pipe::register(
            signal,
            signalled.try_clone().status(Status::Config)?,
        )
        .status(Status::Config)?;
    }
    let outbox = config.outbox();
    let counted = RelayMetrics::new(outbox.clone());
    let address = config
        .relay
        .as_ref()
        .and_then(|relay| relay.metrics.as_deref());
    let exporter = match address {
        Some(address) => {
            let exporter = metrics::start(address, counted.clone()).status(Status::Config)?;
            reporter.say(format_args!(
                "relay: metrics on http://{}/metrics",
                exporter.address()
            ));
            Some(exporter)
        }
        None => None,
    };
    // Hooks hand their pushes over while the relay holds the outbox.
    let mut desk = None;
    let board = Arc::new(Board::new());
    let relayed = relay::relay(&outbox, &publisher, &board, stop.as_fd(), &mut |event| {
        counted.record(&event);
        match event {
            Event::Holding { .. } => {
                match Desk::open(config, counted.clone(), Arc::clone(&board)) {
                    Ok(opened) => desk = opened,
                    Err(error) => reporter.say(format_args!(
                        "relay: hooks cannot hand pushes over, each does its own: {error:#}"
                    )),
                }
            }
            Event::Stopped => desk = None,
            _ => {}
        }
        let line = format!("relay: {event}");
        match event {
            Event::Unreachable { .. } | Event::SetAside(_) => {
                to_syslog(config, Severity::Warning, &line)
            }
            Event::Delivered { dead_lettered, .. } if dead_lettered > 0 => {
                to_syslog(config, Severity::Warning, &line)
            }
            _ => {}
        }
        reporter.say(line);
    });
    if let Some(exporter) = exporter {
        exporter.stop();
    }
    relayed.status(Status::Delivery)
}
