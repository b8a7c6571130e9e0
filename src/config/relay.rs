//! `[relay]`: `hookbus relay`'s own settings.

use anyhow::{Context, Result};
use serde::Deserialize;

/// What `hookbus relay` serves besides delivering.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// `IP:PORT` of an HTTP listener serving `/metrics` (Prometheus) and
    /// `/healthz` (200 while the relay holds the outbox and its broker
    /// answers).
    pub metrics: Option<String>,
}

impl RelayConfig {
    /// Checks the address, so a typo fails at load, not when the relay starts.
    pub fn validate(&self) -> Result<()> {
        if let Some(address) = &self.metrics {
            address.parse::<std::net::SocketAddr>().with_context(|| {
                format!("[relay] metrics {address:?}: write IP:PORT, e.g. \"127.0.0.1:9751\"")
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_metrics_address_is_checked_at_load_and_unknown_keys_are_errors() {
        let config = Config::parse("[relay]\nmetrics = \"127.0.0.1:9751\"\n").unwrap();
        let relay = config.relay.unwrap();
        assert_eq!(relay.metrics.as_deref(), Some("127.0.0.1:9751"));
        let bad = Config::parse("[relay]\nmetrics = \"localhost\"\n").unwrap_err();
        assert!(format!("{bad:#}").contains("write IP:PORT"), "{bad:#}");
        let unknown = Config::parse("[relay]\nmetric = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(format!("{unknown:#}").contains("metric"), "{unknown:#}");
    }
}
