//! Publishing behind the replies: one thread flushes the outbox whenever a
//! request stored messages, and retries what is left every little while, so
//! a slow or absent broker never delays a reply and nothing waits forever.

use crate::bus::Publisher;
use crate::deliver::flush;
use crate::deliver::outbox::Outbox;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often messages left by a failed delivery are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(30);
/// How long to wait for the outbox lock; whoever holds it (a hook, `hookbus
/// flush`) delivers these messages too.
const LOCK_WAIT: Duration = Duration::from_millis(200);

/// The delivering thread.
pub struct Deliverer {
    wake: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Deliverer {
    /// Starts delivering from `outbox`; without a publisher, messages stay
    /// there (for a `hookbus flush` elsewhere) and no thread runs.
    pub fn start(outbox: Outbox, publisher: Option<Publisher>) -> Deliverer {
        let (wake, woken) = mpsc::channel();
        let thread = match publisher {
            Some(publisher) => Some(std::thread::spawn(move || {
                deliver(&outbox, &publisher, &woken)
            })),
            None => {
                eprintln!(
                    "hookbus webhook: no [broker] configured: messages stay in outbox {}",
                    outbox.dir().display()
                );
                None
            }
        };
        Deliverer { wake, thread }
    }

    /// What requests send to say the outbox has new messages.
    pub fn waker(&self) -> Sender<()> {
        self.wake.clone()
    }

    /// Ends the thread after its current flush (once every waker is dropped).
    pub fn stop(self) {
        drop(self.wake);
        if let Some(thread) = self.thread {
            let _ = thread.join();
        }
    }
}

fn deliver(outbox: &Outbox, publisher: &Publisher, woken: &Receiver<()>) {
    loop {
        match woken.recv_timeout(RETRY_EVERY) {
            Ok(()) => while woken.try_recv().is_ok() {},
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        match flush::flush_waiting(outbox, publisher, LOCK_WAIT) {
            Ok(None) => {}
            Ok(Some(report)) => {
                if let Some(stopped) = &report.stopped {
                    eprintln!(
                        "hookbus webhook: delivery: {} delivered, the rest stays queued ({}); retrying in {} s",
                        report.delivered,
                        stopped.reason,
                        RETRY_EVERY.as_secs()
                    );
                }
                if report.dead_lettered > 0 {
                    eprintln!(
                        "hookbus webhook: delivery: {} message(s) refused for good, kept in {}/dead",
                        report.dead_lettered,
                        outbox.dir().display()
                    );
                }
            }
            Err(error) => eprintln!("hookbus webhook: delivery: {error:#}"),
        }
    }
}
