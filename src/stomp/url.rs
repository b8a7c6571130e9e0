//! Broker URLs: `stomp://[user[:pass]@]host[:port]`, `stomp+ssl://…`, and the
//! Ruby stomp gem's failover syntax
//! `failover://(stomp://u:p@h1:61613,stomp+ssl://h2:61612)?option=value&…`.
//! Option names are matched case-insensitively (the gem ignored the
//! capitalised names older configs used).

use super::secret::Secret;
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
        let inner = rest
            .strip_prefix('(')
            .and_then(|inside| inside.split_once(')'))
            .with_context(|| {
                format!("bad broker url {shown}: write failover://(stomp://h1:61613,stomp://h2:61613)?options")
            })?;
        let (list, query) = inner;
        let hosts = list
            .split(',')
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
        other => bail!("unknown scheme {other:?}; use stomp:// or stomp+ssl://"),
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        bail!("a broker url has no path; set the vhost with [broker] vhost");
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
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
    if host.is_empty() {
        bail!("no host name");
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

/// Decodes `%XX` in a URL's user part, so a passcode may hold `:` or `@`.
fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .context("bad %-escape in the user part (write %XX with two hex digits)")?;
            out.push(hex);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).context("the user part is not UTF-8 once %-decoded")
}

/// The URL with every `user:password@` reduced to `user:***@`, for messages.
pub fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find("://") {
        out.push_str(&rest[..start + 3]);
        rest = &rest[start + 3..];
        let end = rest.find([',', ')', '/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                out.push_str(&format!("{user}:***@{hostport}"));
            }
            None => out.push_str(authority),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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
}
