//! The pipeline after the input side: for each notification, the routes it
//! matches, rendered once per format, become messages handed to a transport in
//! bounded batches (so a replay of 20,000 commits never holds them all).

use crate::deliver::{Message, Outcome, Transport};
use crate::model::CommitSource;
use crate::render::{self, Format, Limits, Rendered};
use crate::route::{Routed, Router};
use anyhow::Result;

/// Messages per batch handed to the transport. A broker transport connects
/// and drains its receipt pipeline once per batch, so small batches cost
/// throughput (256 gave 15k messages/s to ActiveMQ, 2048 gives 21k);
/// BATCH_BYTES still bounds memory.
const BATCH_MESSAGES: usize = 2048;
/// Bytes per batch handed to the transport.
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// What one run emitted.
#[derive(Debug, Default)]
pub struct Report {
    /// Messages rendered.
    pub rendered: usize,
    /// What the transport said, summed over batches.
    pub delivered: Outcome,
    /// Notifications that could not be rendered (the others still were).
    pub failures: Vec<anyhow::Error>,
}

/// Renders every notification for the routes `router` decided it goes to and
/// delivers the messages. A notification that fails to render is reported and
/// skipped; a transport failure stops the run (what was accepted so far is in
/// the report).
pub fn emit(
    routed: &[Routed],
    source: &dyn CommitSource,
    router: &Router,
    limits: &Limits,
    transport: &mut dyn Transport,
) -> Result<Report> {
    let mut report = Report::default();
    let mut batch: Vec<Message> = Vec::new();
    let mut batch_bytes = 0;
    for routed in routed {
        let notification = &routed.notification;
        let messages = match messages_for(routed, source, router, limits) {
            Ok(messages) => messages,
            Err(err) => {
                report.failures.push(err.context(format!(
                    "cannot render {} of {}",
                    notification.update.refname, notification.repo
                )));
                continue;
            }
        };
        for message in messages {
            report.rendered += 1;
            batch_bytes += message.body.len();
            batch.push(message);
        }
        if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
            deliver(transport, &mut batch, &mut report)?;
            batch_bytes = 0;
        }
    }
    deliver(transport, &mut batch, &mut report)?;
    report.delivered.add(transport.finish()?);
    Ok(report)
}

fn deliver(
    transport: &mut dyn Transport,
    batch: &mut Vec<Message>,
    report: &mut Report,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    report.delivered.add(transport.deliver(batch)?);
    batch.clear();
    Ok(())
}

/// The messages one routed notification produces: one per route `router`
/// decided it goes to.
pub fn messages_for(
    routed: &Routed,
    source: &dyn CommitSource,
    router: &Router,
    limits: &Limits,
) -> Result<Vec<Message>> {
    let notification = &routed.notification;
    let routes: Vec<_> = router.routes_of(routed).collect();
    if routes.is_empty() {
        return Ok(Vec::new());
    }
    let prepared = if routes.iter().all(|route| route.format == Format::Summary) {
        render::prepare_headline(notification, source)?
    } else {
        render::prepare(notification, source, limits)?
    };
    // Each format once; the commits are let go before the bodies are handed
    // out, and a body is copied only for a second route of its format.
    let mut rendered: Vec<(Format, Option<Rendered>)> = Vec::new();
    for route in &routes {
        if !rendered.iter().any(|(format, _)| *format == route.format) {
            let body = render::render(route.format, &prepared, limits);
            rendered.push((route.format, Some(body)));
        }
    }
    drop(prepared);
    let mut messages = Vec::with_capacity(routes.len());
    for (index, route) in routes.iter().enumerate() {
        let last_use = !routes[index + 1..].iter().any(|r| r.format == route.format);
        let slot = rendered
            .iter_mut()
            .find_map(|(format, body)| (*format == route.format).then_some(body))
            .expect("every format was rendered above");
        let body = if last_use { slot.take() } else { slot.clone() }
            .expect("a body is taken at its last use only");
        let destination = route.destination(notification);
        let mut headers = body.headers;
        headers.push((
            "hookbus-id".into(),
            route.message_id(notification, &destination),
        ));
        headers.push(("persistent".into(), route.persistent.to_string()));
        messages.push(Message {
            destination,
            headers,
            body: body.body.into_bytes(),
        });
    }
    Ok(messages)
}
