//! One batch of messages on one connection, and what the broker said about
//! each: receipted, refused, or not answered yet.
//!
//! SENDs are pipelined, each with its own receipt, and each message is sent
//! at most once per connection; a receipted or refused message is never sent
//! again. An ERROR naming a SEND's receipt is the verdict on that message. An
//! ERROR naming none (RabbitMQ's way: it may even come before the receipts of
//! earlier messages, which are then lost with the connection) is about one of
//! the SENDs still unanswered, so those become suspects: the next connection
//! first makes sure the broker has nothing else to complain about (a
//! receipted BEGIN/ABORT), then sends the suspects one at a time until one is
//! refused. An ERROR that answers no SEND is trouble on the broker's side.

use super::connection::{Connection, StompError};
use super::frame::Frame;
use crate::bus::{Patience, Verdict};
use crate::message::{Message, RESERVED_HEADERS};
use crate::sign::Signer;
use std::time::{Duration, Instant};

/// SENDs written ahead of their receipts. Receipts are small, so the broker never
/// blocks writing them while we are still writing. Measured with `replay --each`
/// of 10,652 messages to ActiveMQ: 128 took 0.88 s, 512 0.66 s, 2048 0.66 s,
/// 8192 0.68 s (the broker is the limit from 512 on).
const WINDOW: usize = 512;
/// Bytes queued before they are written out.
const WRITE_CHUNK: usize = 64 * 1024;
/// How long, after an ERROR naming no receipt, the broker may take to send
/// the receipts still due and close.
const AFTER_ERROR: Duration = Duration::from_secs(1);
/// The receipt of the BEGIN/ABORT pair that shows the broker answered
/// everything before the next SEND.
const PROBE: &str = "hookbus-probe";

/// The deadline every step is bounded by, moved on by progress when the
/// patience allows it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    patience: Patience,
    deadline: Instant,
}

impl Clock {
    /// A clock whose first deadline `patience` gives.
    pub fn new(patience: Patience) -> Clock {
        let deadline = match patience {
            Patience::Until(deadline) => deadline,
            Patience::WhileProgress(stall) => Instant::now() + stall,
        };
        Clock { patience, deadline }
    }

    /// The deadline every step is bounded by now.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A new batch: with patience for progress, its time counts from now
    /// (the run may have been rendering since the last one).
    pub fn restart(&mut self) {
        if let Patience::WhileProgress(stall) = self.patience {
            self.deadline = Instant::now() + stall;
        }
    }

    /// Time left before the deadline.
    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn progress(&mut self, connection: &mut Connection) {
        if let Patience::WhileProgress(stall) = self.patience {
            self.deadline = Instant::now() + stall;
            connection.set_deadline(self.deadline);
        }
    }
}

/// The messages of one publish and what is known about each.
pub struct Batch<'a> {
    messages: &'a [Message],
    /// Signs every SEND as it is built (`[sign]`), so its time stamp is the send time.
    signer: Option<&'a Signer>,
    /// What became of each message so far.
    pub verdicts: Vec<Verdict>,
    /// Unanswered messages an ERROR without a receipt may have been about.
    suspects: Vec<bool>,
    /// Grows whenever something is learned (a verdict, new suspects).
    pub learned: usize,
}

impl<'a> Batch<'a> {
    /// A batch of `messages`, none answered yet, each signed by `signer`.
    pub fn new(messages: &'a [Message], signer: Option<&'a Signer>) -> Batch<'a> {
        Batch {
            messages,
            signer,
            verdicts: vec![Verdict::Unanswered; messages.len()],
            suspects: vec![false; messages.len()],
            learned: 0,
        }
    }

    /// True when every message has its verdict.
    pub fn answered(&self) -> bool {
        !self.verdicts.contains(&Verdict::Unanswered)
    }

    fn decide(&mut self, index: usize, verdict: Verdict) {
        self.verdicts[index] = verdict;
        self.suspects[index] = false;
        self.learned += 1;
    }

    /// Sends what is unanswered on `connection` until each has its verdict.
    pub fn run(
        &mut self,
        connection: &mut Connection,
        clock: &mut Clock,
    ) -> Result<(), StompError> {
        if self.suspects.contains(&true) {
            self.one_at_a_time(connection, clock)?;
        }
        self.pipelined(connection, clock)
    }

    /// Suspects alone, after a probe, until one is refused.
    fn one_at_a_time(
        &mut self,
        connection: &mut Connection,
        clock: &mut Clock,
    ) -> Result<(), StompError> {
        connection.queue(&Frame::new("BEGIN").header("transaction", PROBE));
        connection.queue(
            &Frame::new("ABORT")
                .header("transaction", PROBE)
                .header("receipt", PROBE),
        );
        connection.flush()?;
        loop {
            let frame = connection.read_frame("waiting for a RECEIPT")?;
            match frame.command.as_str() {
                "RECEIPT" if frame.get("receipt-id") == Some(PROBE) => break,
                "ERROR" => return Err(StompError::Broker(frame.error_text())),
                _ => {}
            }
        }
        while let Some(index) = self.suspects.iter().position(|&suspect| suspect) {
            connection.queue(&self.send_frame(index));
            connection.flush()?;
            loop {
                let frame = connection.read_frame("waiting for a RECEIPT")?;
                match frame.command.as_str() {
                    "RECEIPT" if receipt_index(&frame) == Some(index) => {
                        self.decide(index, Verdict::Receipted);
                        clock.progress(connection);
                        break;
                    }
                    "ERROR" => {
                        // The broker answered all before it: this is the one.
                        self.decide(index, Verdict::Refused(frame.error_text()));
                        self.suspects.fill(false);
                        clock.progress(connection);
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Every unanswered message once, a window of them ahead of their receipts.
    fn pipelined(
        &mut self,
        connection: &mut Connection,
        clock: &mut Clock,
    ) -> Result<(), StompError> {
        let todo: Vec<usize> = (0..self.messages.len())
            .filter(|&index| self.verdicts[index] == Verdict::Unanswered)
            .collect();
        let mut sent_here = vec![false; self.messages.len()];
        let mut sent = 0;
        let mut outstanding = 0;
        while sent < todo.len() || outstanding > 0 {
            while sent < todo.len() && outstanding < WINDOW {
                let index = todo[sent];
                connection.queue(&self.send_frame(index));
                sent_here[index] = true;
                sent += 1;
                outstanding += 1;
                if connection.queued_bytes() >= WRITE_CHUNK {
                    break;
                }
            }
            connection.flush()?;
            if sent < todo.len() && outstanding < WINDOW {
                continue;
            }
            // Wait for one frame, then take every frame that came with it.
            let mut next = Some(connection.read_frame("waiting for a RECEIPT")?);
            while let Some(frame) = next {
                let named = receipt_index(&frame)
                    .filter(|&index| sent_here[index] && self.is_unanswered(index));
                match (frame.command.as_str(), named) {
                    ("RECEIPT", Some(index)) => self.decide(index, Verdict::Receipted),
                    ("ERROR", Some(index)) => {
                        self.decide(index, Verdict::Refused(frame.error_text()))
                    }
                    ("ERROR", None) if outstanding == 0 => {
                        return Err(StompError::Broker(frame.error_text()));
                    }
                    ("ERROR", None) => {
                        return Err(self.unattributed_error(connection, clock, &sent_here, &frame))
                    }
                    _ => {}
                }
                if named.is_some() {
                    outstanding -= 1;
                    clock.progress(connection);
                }
                next = connection.buffered_frame()?;
            }
        }
        Ok(())
    }

    /// The SEND frame of message number `index`, signed when there is a signer.
    fn send_frame(&self, index: usize) -> Frame {
        let mut frame = send_frame(&self.messages[index], index);
        if let Some(signer) = self.signer {
            signer.sign(&mut frame.headers, &frame.body, crate::sign::unix_now());
        }
        frame
    }

    fn is_unanswered(&self, index: usize) -> bool {
        self.verdicts[index] == Verdict::Unanswered
    }

    /// An ERROR naming no receipt while SENDs are unanswered: takes the
    /// receipts the broker still sends, then suspects the rest.
    fn unattributed_error(
        &mut self,
        connection: &mut Connection,
        clock: &Clock,
        sent_here: &[bool],
        error: &Frame,
    ) -> StompError {
        connection.set_deadline(clock.deadline().min(Instant::now() + AFTER_ERROR));
        while let Ok(frame) = connection.read_frame("after an ERROR") {
            match (frame.command.as_str(), receipt_index(&frame)) {
                ("RECEIPT", Some(index)) if sent_here[index] && self.is_unanswered(index) => {
                    self.decide(index, Verdict::Receipted)
                }
                _ => {}
            }
        }
        for (index, &sent) in sent_here.iter().enumerate() {
            if sent && self.is_unanswered(index) {
                self.suspects[index] = true;
            }
        }
        self.learned += 1;
        StompError::Broker(error.error_text())
    }
}

/// The SEND frame for message number `index` of a batch.
fn send_frame(message: &Message, index: usize) -> Frame {
    let mut frame = Frame::new("SEND")
        .header("destination", &message.destination)
        .header("receipt", &format!("hookbus-{index}"));
    for (key, value) in &message.headers {
        if !RESERVED_HEADERS.contains(&key.as_str()) {
            frame.headers.push((key.clone(), value.clone()));
        }
    }
    if message.header("persistent").is_none() {
        frame = frame.header("persistent", "true");
    }
    frame.body = message.body.clone();
    frame
}

/// The message number a RECEIPT or ERROR names, if any.
fn receipt_index(frame: &Frame) -> Option<usize> {
    frame
        .get("receipt-id")?
        .strip_prefix("hookbus-")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_headers_cannot_replace_the_publishers_own() {
        let message = Message {
            destination: "/queue/a".into(),
            headers: vec![
                ("destination".into(), "/queue/b".into()),
                ("receipt".into(), "x".into()),
                ("subject".into(), "s".into()),
            ],
            body: b"x".to_vec(),
        };
        let frame = send_frame(&message, 7);
        assert_eq!(frame.get("destination"), Some("/queue/a"));
        assert_eq!(frame.get("receipt"), Some("hookbus-7"));
        assert_eq!(frame.get("persistent"), Some("true"));
        assert_eq!(frame.headers.len(), 4);
        let receipt = Frame::new("RECEIPT").header("receipt-id", "hookbus-7");
        assert_eq!(receipt_index(&receipt), Some(7));
        assert_eq!(receipt_index(&Frame::new("ERROR")), None);
    }
}
