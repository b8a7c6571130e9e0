//! Everything a publish needs to know about the brokers, resolved from the
//! config file and the environment (passcodes included, but never shown).

use super::url::{BrokerUrl, HostSpec};
use crate::secret::Secret;
use crate::sign::Signer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default bound on one whole publish, failover included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(2000);

/// Resolved broker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerSettings {
    /// The parsed `[broker] url`.
    pub url: BrokerUrl,
    /// Login for hosts whose URL names none.
    pub login: Option<String>,
    /// Passcode for hosts whose URL gives none.
    pub passcode: Option<Secret>,
    /// `$HOOKBUS_PASSCODE`: wins over every configured passcode.
    pub env_passcode: Option<Secret>,
    /// Sent as the CONNECT `host` header; `/` when unset.
    pub vhost: Option<String>,
    /// One bound for a whole publish, whatever the URL's options say.
    pub deadline: Duration,
    /// PEM CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Check that a broker's certificate names its host.
    pub tls_verify_hostname: bool,
    /// Escape CONNECT header values (RabbitMQ needs it for a `\` in a passcode).
    pub escape_connect_headers: bool,
    /// Lines to show the user on every run (ignored options, risky settings).
    pub warnings: Vec<String>,
    /// The key every message is signed with (`[sign] key_file`), loaded once.
    pub signer: Option<Arc<Signer>>,
}

impl BrokerSettings {
    /// Settings for one URL with every other option at its default.
    pub fn for_url(url: BrokerUrl) -> BrokerSettings {
        BrokerSettings {
            warnings: url.warnings.clone(),
            url,
            login: None,
            passcode: None,
            env_passcode: None,
            vhost: None,
            deadline: DEFAULT_DEADLINE,
            ca_file: None,
            tls_verify_hostname: true,
            escape_connect_headers: true,
            signer: None,
        }
    }

    /// The login and passcode for one host: `$HOOKBUS_PASSCODE`, else the URL's
    /// own, else the shared ones.
    pub fn credentials<'a>(&'a self, host: &'a HostSpec) -> (Option<&'a str>, Option<&'a Secret>) {
        let login = host.login.as_deref().or(self.login.as_deref());
        let passcode = self
            .env_passcode
            .as_ref()
            .or(host.passcode.as_ref())
            .or(self.passcode.as_ref());
        (login, passcode)
    }

    /// True when some host uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.url.hosts.iter().any(|host| host.tls)
    }
}

/// The environment variable whose value overrides every configured passcode.
pub const PASSCODE_ENV: &str = "HOOKBUS_PASSCODE";
