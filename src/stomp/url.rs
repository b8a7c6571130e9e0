//! Broker URLs: `stomp://[user[:pass]@]host[:port]`, `stomp+ssl://…`, and the
//! Ruby stomp gem's failover syntax
//! `failover://(stomp://u:p@h1:61613,stomp+ssl://h2:61612)?option=value&…`.
//! Option names are matched case-insensitively (the gem ignored the
//! capitalised names older configs used).

use super::userinfo::{percent_decode, redact, split_hosts};
use crate::secret::Secret;
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// Port of `stomp://` when none is given.
pub const DEFAULT_PORT: u16 = 61613;
/// Port of `stomp+ssl://` when none is given.
pub const DEFAULT_TLS_PORT: u16 = 61612;

/// One broker to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `stomp+ssl://`.
    pub tls: bool,
    /// From the URL's user part; `[broker] login` applies when absent.
    pub login: Option<String>,
    /// From the URL's user part; other sources apply when absent.
    pub passcode: Option<Secret>,
}

impl HostSpec {
    /// The host as it may be shown: scheme, host and port, never credentials.
    pub fn display(&self) -> String {
        let scheme = if self.tls { "stomp+ssl" } else { "stomp" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// How to move between hosts, with the gem's option names and defaults; the
/// publish deadline bounds all of it whatever these say.
#[derive(Debug, Clone, PartialEq)]
pub struct FailoverOptions {
    /// Pause before the first retry (`initialReconnectDelay`).
    pub initial_reconnect_delay: Duration,
    /// Longest pause between retries (`maxReconnectDelay`).
    pub max_reconnect_delay: Duration,
    /// Pauses grow by `back_off_multiplier` (`useExponentialBackOff`).
    pub use_exponential_back_off: bool,
    /// How much each pause grows (`backOffMultiplier`).
    pub back_off_multiplier: f64,
    /// Rounds over the host list after the first; `None`: until the deadline.
    pub max_reconnect_attempts: Option<u32>,
    /// Start at a random host instead of the first.
    pub randomize: bool,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        FailoverOptions {
            initial_reconnect_delay: Duration::from_millis(10),
            max_reconnect_delay: Duration::from_millis(30_000),
            use_exponential_back_off: true,
            back_off_multiplier: 2.0,
            max_reconnect_attempts: None,
            randomize: false,
        }
    }
}

impl FailoverOptions {
    /// The pause before reconnect round `round` (0 for the first retry).
    pub fn delay(&self, round: u32) -> Duration {
        let factor = if self.use_exponential_back_off {
            self.back_off_multiplier.powi(round.min(64) as i32)
        } else {
            1.0
        };
        self.initial_reconnect_delay
            .mul_f64(factor.max(0.0))
            .min(self.max_reconnect_delay)
    }
}

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerUrl {
    /// Hosts in URL order.
    pub hosts: Vec<HostSpec>,
    /// How to move between the hosts.
    pub failover: FailoverOptions,
    /// Options that were accepted but do nothing, for the user to hear about.
    pub warnings: Vec<String>,
}

impl BrokerUrl {
    /// Parses a `stomp://`, `stomp+ssl://` or `failover:` URL.
    pub fn parse(url: &str) -> Result<BrokerUrl> {
        let shown = redact(url);
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if !lower.starts_with("failover:") {
            let host = parse_host(url).with_context(|| format!("bad broker url {shown}"))?;
            return Ok(BrokerUrl {
                hosts: vec![host],
                failover: FailoverOptions::default(),
                warnings: Vec::new(),
            });
        }
        let rest = url["failover:".len()..].trim_start_matches("//");
        // The list ends at the last ')', after the last '@': a passcode may hold
        // either, options never do.
        let after_users = rest.rfind('@').unwrap_or(0);
        let (list, query) = rest
            .strip_prefix('(')
            .filter(|_| rest[after_users..].contains(')'))
            .and_then(|inside| inside.rsplit_once(')'))
            .with_context(|| {
                format!("bad broker url {shown}: write failover://(stomp://h1:61613,stomp://h2:61613)?options")
            })?;
        let hosts = split_hosts(list)
            .map(|part| parse_host(part.trim()))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("bad broker url {shown}"))?;
        if hosts.is_empty() {
            bail!("bad broker url {shown}: no hosts in the failover list");
        }
        let mut parsed = BrokerUrl {
            hosts,
            failover: FailoverOptions::default(),
            warnings: Vec::new(),
        };
        if let Some(query) = query.strip_prefix('?') {
            for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                parsed
                    .apply_option(pair)
                    .with_context(|| format!("bad broker url {shown}"))?;
            }
        } else if !query.is_empty() {
            bail!("bad broker url {shown}: options after the host list start with '?'");
        }
        Ok(parsed)
    }

    fn apply_option(&mut self, pair: &str) -> Result<()> {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("option {pair:?} needs a value (name=value)"))?;
        let millis = || -> Result<Duration> {
            let ms: u64 = value
                .parse()
                .with_context(|| format!("{name} must be milliseconds, not {value:?}"))?;
            Ok(Duration::from_millis(ms))
        };
        let flag = || -> Result<bool> {
            match value.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => bail!("{name} must be true or false, not {value:?}"),
            }
        };
        let options = &mut self.failover;
        match name.to_ascii_lowercase().as_str() {
            "initialreconnectdelay" => options.initial_reconnect_delay = millis()?,
            "maxreconnectdelay" => options.max_reconnect_delay = millis()?,
            "useexponentialbackoff" => options.use_exponential_back_off = flag()?,
            "randomize" => options.randomize = flag()?,
            "backoffmultiplier" => {
                options.back_off_multiplier = value
                    .parse::<f64>()
                    .ok()
                    .filter(|m| m.is_finite() && *m >= 1.0)
                    .with_context(|| format!("{name} must be a number >= 1, not {value:?}"))?
            }
            "maxreconnectattempts" => {
                let attempts: i64 = value
                    .parse()
                    .with_context(|| format!("{name} must be a whole number, not {value:?}"))?;
                // The gem's 0 (and -1) mean "forever"; the deadline still applies.
                options.max_reconnect_attempts = u32::try_from(attempts).ok().filter(|&n| n > 0);
            }
            "backup" | "timeout" => self.warnings.push(format!(
                "broker url option {name} is not implemented (as in the Ruby stomp gem) and is ignored; [broker] deadline_ms bounds each publish"
            )),
            _ => bail!(
                "unknown option {name:?}; known: initialReconnectDelay, maxReconnectDelay, useExponentialBackOff, backOffMultiplier, maxReconnectAttempts, randomize"
            ),
        }
        Ok(())
    }
}

/// One `stomp://` or `stomp+ssl://` URL.
fn parse_host(url: &str) -> Result<HostSpec> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| "expected stomp://host:port or stomp+ssl://host:port".to_string())?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "stomp" | "tcp" => false,
        "stomp+ssl" | "stomp+tls" | "ssl" => true,
        other
            if other
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) =>
        {
            bail!("unknown scheme {other:?}; use stomp:// or stomp+ssl://")
        }
        _ => bail!("expected stomp://host:port or stomp+ssl://host:port"),
    };
    // The user part runs to the last '@': a passcode may hold any character.
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, rest),
    };
    let hostport = hostport.trim_end_matches('/');
    if hostport.contains('/') {
        bail!("a broker url has no path; set the vhost with [broker] vhost");
    }
    let (login, passcode) = match userinfo {
        None => (None, None),
        Some(info) => match info.split_once(':') {
            Some((user, pass)) => (Some(percent_decode(user)?), Some(percent_decode(pass)?)),
            None => (Some(percent_decode(info)?), None),
        },
    };
    let default_port = if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT };
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .context("unclosed '[' in an IPv6 host")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let host_char = |c: char| c.is_ascii_alphanumeric() || "-._:%".contains(c);
    if host.is_empty() || !host.chars().all(host_char) {
        bail!("bad host name {host:?} (percent-encode a passcode's special characters as %XX)");
    }
    let port = match port {
        None => default_port,
        Some(port) => port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .with_context(|| format!("bad port {port:?}"))?,
    };
    Ok(HostSpec {
        host: host.to_string(),
        port,
        tls,
        login: login.filter(|l| !l.is_empty()),
        passcode: passcode.map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tls_urls() {
        let url = BrokerUrl::parse("stomp://mq.example.com").unwrap();
        assert_eq!(url.hosts[0].display(), "stomp://mq.example.com:61613");
        let url = BrokerUrl::parse("stomp+ssl://u:p%3Aw@[::1]:61614").unwrap();
        let host = &url.hosts[0];
        assert!(host.tls);
        assert_eq!((host.host.as_str(), host.port), ("::1", 61614));
        assert_eq!(host.login.as_deref(), Some("u"));
        assert_eq!(host.passcode.as_ref().unwrap().expose(), "p:w");
    }

    #[test]
    fn the_seeds_failover_url_with_any_option_case() {
        let url = BrokerUrl::parse(
            "failover://(stomp://u:p@h1:61613,stomp+ssl://h2:61614)?initialReconnectDelay=50&MaxReconnectDelay=400&BackOffMultiplier=3&MaxReconnectAttempts=0&randomize=false&Backup=false&Timeout=5",
        )
        .unwrap();
        assert_eq!(url.hosts.len(), 2);
        assert!(url.hosts[1].tls && url.hosts[1].login.is_none());
        let options = &url.failover;
        assert_eq!(options.max_reconnect_attempts, None);
        assert_eq!(options.delay(0), Duration::from_millis(50));
        assert_eq!(options.delay(1), Duration::from_millis(150));
        assert_eq!(options.delay(5), Duration::from_millis(400));
        assert_eq!(url.warnings.len(), 2);
    }

    #[test]
    fn bad_urls_are_clear_errors_without_the_password() {
        for bad in [
            "http://u:secretpw@h:1",
            "stomp://u:secretpw@h:99999",
            "failover:(stomp://u:secretpw@h1)?bogus=1",
            "failover:stomp://u:secretpw@h1",
            "stomp://u:secretpw@h/vhost",
        ] {
            let error = format!("{:#}", BrokerUrl::parse(bad).unwrap_err());
            assert!(!error.contains("secretpw"), "{error}");
            assert!(error.contains("u:***@"), "{error}");
        }
    }

    /// Passcodes holding every character that used to end the redaction.
    const ODD_PASSCODES: [&str; 4] = [
        "pa?SECRET",
        "pa/SE)CR,ET",
        "p@:#SE,stomp:CRET",
        "SECRET)?x=1",
    ];

    #[test]
    fn any_passcode_character_stays_hidden_in_errors() {
        for passcode in ODD_PASSCODES {
            for bad in [
                format!("stomp://u:{passcode}@h:99999"),
                format!("stomp://u:{passcode}@h/vhost"),
                format!("failover:(stomp://u:{passcode}@h1,stomp://h2:0)"),
                format!("failover:(stomp://h0,stomp://u:{passcode}@h1)?bogus=1"),
                format!("failover:(stomp://u:{passcode}@h1"),
                format!("u:{passcode}@h1"),
                format!("u:{passcode}://x@h1"),
            ] {
                let error = format!("{:#}", BrokerUrl::parse(&bad).unwrap_err());
                assert!(!error.contains("SE"), "{bad}: {error}");
                assert!(!redact(&bad).contains("SE"), "{bad}: {}", redact(&bad));
            }
        }
    }

    #[test]
    fn unencoded_odd_passcodes_still_parse() {
        for passcode in ODD_PASSCODES {
            let url = format!("failover:(stomp://u:{passcode}@h1:1,stomp://h2)?randomize=true");
            let url = BrokerUrl::parse(&url).unwrap();
            assert_eq!(url.hosts.len(), 2);
            assert_eq!(url.hosts[0].passcode.as_ref().unwrap().expose(), passcode);
            assert_eq!((url.hosts[0].host.as_str(), url.hosts[0].port), ("h1", 1));
            assert!(url.failover.randomize);
        }
    }
}
