//! The signals the daemon answers: SIGTERM and SIGINT stop it, SIGHUP reloads
//! its config. Handlers only set flags; the loop looks at them each turn.

use anyhow::Result;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Signals, as flags the loop looks at.
pub(super) struct Signals {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) reload: Arc<AtomicBool>,
}

impl Signals {
    pub(super) fn register() -> Result<Signals> {
        let signals = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
        };
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&signals.stop))?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&signals.reload))?;
        Ok(signals)
    }
}
