//! The report on a message whose signature did not allow the work it asked
//! for (`[listen] require_signature`): why, and what was withheld. Nothing
//! the message says is repeated but where it came from and its id, shown
//! clipped on one line, never as if it were trusted.

use crate::inbound::Received;
use crate::listen::report::Report;
use crate::sign::Require;
use crate::text::clip;
use serde::Serialize;

/// One refusal.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Refused {
    /// This machine.
    pub host: String,
    /// Always `refused`: the `result` header consumers select on.
    pub result: &'static str,
    /// Why: `unsigned`, `unknown key ID`, `bad signature: …`, `too old: …`.
    pub reason: String,
    /// What `[listen] require_signature` withholds: `actions` (mirrors
    /// still fetch) or `all`.
    pub withheld: &'static str,
    /// The message's `destination`, as received.
    pub destination: String,
    /// The message's `hookbus-id`, as received.
    pub hookbus_id: Option<String>,
}

impl Refused {
    /// The report on `message`, refused for `reason` under `require`.
    pub fn new(host: &str, message: &Received, reason: &str, require: Require) -> Refused {
        Refused {
            host: host.to_string(),
            result: "refused",
            reason: reason.to_string(),
            withheld: require.name(),
            destination: clip(&message.destination),
            hookbus_id: message.id.as_deref().map(clip),
        }
    }
}

impl Report for Refused {
    fn log_line(&self) -> String {
        format!(
            "listen: refused a message from {} (hookbus-id {}): {}; withheld: {}",
            self.destination,
            self.hookbus_id.as_deref().unwrap_or("none"),
            self.reason,
            self.withheld
        )
    }

    fn subject(&self) -> String {
        format!("{} message {}", self.host, self.result)
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("result".to_string(), self.result.to_string()),
            ("reason".to_string(), self.reason.clone()),
        ]
    }

    fn json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}
