//! The broker transport: publishes through [`crate::stomp::Publisher`] and keeps
//! whatever the broker did not receipt in the outbox, so nothing is lost.

use super::outbox::Outbox;
use super::{Message, Outcome, Transport};
use crate::stomp::Publisher;
use anyhow::{Context, Result};

/// Publishes to the broker; falls back to the outbox.
pub struct Stomp {
    publisher: Publisher,
    outbox: Outbox,
    /// Set after the first failed publish: later batches of the same run go
    /// straight to the outbox instead of waiting out another deadline.
    broker_down: bool,
}

impl Stomp {
    /// A transport publishing with `publisher` and saving failures in `outbox`.
    pub fn new(publisher: Publisher, outbox: Outbox) -> Stomp {
        Stomp {
            publisher,
            outbox,
            broker_down: false,
        }
    }

    fn save(&self, messages: &[Message], why: &str) -> Result<Outcome> {
        let entries = self.outbox.store(messages).with_context(|| {
            format!(
                "{} message(s) were neither delivered ({why}) nor saved",
                messages.len()
            )
        })?;
        Ok(Outcome {
            accepted: entries.len(),
            notes: vec![format!(
                "hookbus: {why}; {} message(s) saved in outbox {}",
                entries.len(),
                self.outbox.dir().display()
            )],
        })
    }
}

impl Transport for Stomp {
    fn deliver(&mut self, messages: &[Message]) -> Result<Outcome> {
        if messages.is_empty() {
            return Ok(Outcome::default());
        }
        if self.broker_down {
            return self.save(messages, "broker unavailable earlier in this run");
        }
        match self.publisher.publish(messages) {
            Ok(()) => Ok(Outcome {
                accepted: messages.len(),
                notes: Vec::new(),
            }),
            Err(error) => {
                self.broker_down = true;
                let why = format!("cannot publish: {error}");
                let mut outcome = self.save(&messages[error.delivered..], &why)?;
                outcome.accepted += error.delivered;
                Ok(outcome)
            }
        }
    }
}
