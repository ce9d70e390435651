//! The server's settings: one typed struct whose `Default` is the only place the
//! defaults are written (`API.md`, "Configuration" and "Security defaults"). The
//! command line layers `synap.toml`, `SYNAP_*` variables and flags on top.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// `development` or `production`; production turns on HSTS and `Secure` cookies
/// and has no default CORS origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    #[default]
    Development,
    Production,
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "development" | "dev" => Ok(Environment::Development),
            "production" | "prod" => Ok(Environment::Production),
            other => Err(format!(
                "unknown environment {other:?}; use development or production"
            )),
        }
    }
}

impl Environment {
    pub fn as_str(&self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
}

/// A rate limit: at most `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

/// Parses `N/window` (`100/15m`, `10/1s`, `6000/1h`) or `off` (no limit: `None`).
pub fn parse_rate_limit(text: &str) -> Result<Option<RateLimit>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let invalid =
        || format!("{text:?} is not a rate limit; write N/window such as 100/15m, or off");
    let (count, window) = text.split_once('/').ok_or_else(invalid)?;
    let requests: u32 = count.trim().parse().map_err(|_| invalid())?;
    let window = window.trim();
    let (number, unit) = window.split_at(
        window
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(window.len()),
    );
    let number: u64 = if number.is_empty() {
        1
    } else {
        number.parse().map_err(|_| invalid())?
    };
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        _ => return Err(invalid()),
    };
    if requests == 0 || seconds == 0 {
        return Err(invalid());
    }
    Ok(Some(RateLimit {
        requests,
        window: Duration::from_secs(seconds),
    }))
}

/// Parses `10MiB`, `512KiB`, `1048576` into bytes.
pub fn parse_byte_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 10MiB"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "KB" | "k" => 1024,
        "MiB" | "MB" | "M" => 1024 * 1024,
        "GiB" | "GB" | "G" => 1024 * 1024 * 1024,
        other => {
            return Err(format!(
                "unknown size unit {other:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    Ok(number * factor)
}

/// A trusted proxy: one address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    pub network: IpAddr,
    pub prefix_len: u8,
}

impl IpBlock {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix_len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix_len))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix_len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix_len))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpBlock {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length"))?,
            None => max,
        };
        Ok(IpBlock {
            network,
            prefix_len,
        })
    }
}

/// Everything the server can be told.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub environment: Environment,
    /// `None`: the environment's default (development: the local dev servers).
    pub allowed_origins: Option<Vec<String>>,
    pub allow_registration: bool,
    /// Per client IP, for anonymous requests and for `/v1/auth/*`.
    pub rate_limit_anonymous: Option<RateLimit>,
    /// Per user, for authenticated requests.
    pub rate_limit_user: Option<RateLimit>,
    /// Largest request body, also for chunked bodies.
    pub body_limit_bytes: usize,
    /// Largest attachment upload (`POST /v1/entities/{id}/attachments`), in bytes;
    /// that route streams its body and has this limit instead of `body_limit_bytes`.
    pub attachment_limit_bytes: u64,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpBlock>,
    /// Failed logins per account before it is locked out for the window.
    pub login_failures_max: u32,
    pub login_lockout: Duration,
    /// Sessions last this long and are extended when older than `session_refresh_after`.
    pub session_ttl: Duration,
    pub session_refresh_after: Duration,
    /// A token's `last_used_at` is written at most this often.
    pub token_touch_interval: Duration,
    /// Comment lines sent on an idle event stream.
    pub sse_keep_alive: Duration,
    /// Events buffered for one stream client before it is disconnected as too slow.
    pub sse_buffer_events: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Whether webhook subscriptions may target loopback, private and link-local
    /// addresses (`SYNAP_WEBHOOK_ALLOW_PRIVATE`; the deliverer checks again).
    pub webhook_allow_private: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            environment: Environment::Development,
            allowed_origins: None,
            allow_registration: false,
            rate_limit_anonymous: Some(RateLimit {
                requests: 100,
                window: Duration::from_secs(15 * 60),
            }),
            rate_limit_user: Some(RateLimit {
                requests: 6000,
                window: Duration::from_secs(15 * 60),
            }),
            body_limit_bytes: 10 * 1024 * 1024,
            attachment_limit_bytes: synap_store::attachments::ATTACHMENT_BYTES_MAX_DEFAULT,
            trusted_proxies: Vec::new(),
            login_failures_max: 5,
            login_lockout: Duration::from_secs(15 * 60),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            session_refresh_after: Duration::from_secs(24 * 3600),
            token_touch_interval: Duration::from_secs(60),
            sse_keep_alive: Duration::from_secs(15),
            sse_buffer_events: 1024,
            shutdown_grace: Duration::from_secs(10),
            webhook_allow_private: false,
        }
    }
}

impl ServerConfig {
    /// The CORS origins in force: configured ones, else the environment's default.
    pub fn cors_origins(&self) -> Vec<String> {
        match (&self.allowed_origins, self.environment) {
            (Some(origins), _) => origins.clone(),
            (None, Environment::Development) => {
                vec![
                    "http://localhost:5173".into(),
                    "http://localhost:3000".into(),
                    "http://localhost:3001".into(),
                ]
            }
            (None, Environment::Production) => Vec::new(),
        }
    }
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("environment", &self.environment)
            .field("allowed_origins", &self.cors_origins())
            .field("allow_registration", &self.allow_registration)
            .field("rate_limit_anonymous", &self.rate_limit_anonymous)
            .field("rate_limit_user", &self.rate_limit_user)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("attachment_limit_bytes", &self.attachment_limit_bytes)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse() {
        assert_eq!(
            parse_rate_limit("100/15m").unwrap(),
            Some(RateLimit {
                requests: 100,
                window: Duration::from_secs(900)
            })
        );
        assert_eq!(parse_rate_limit("off").unwrap(), None);
        assert!(parse_rate_limit("100").is_err());
        assert!(parse_rate_limit("0/1m").is_err());
        assert!(parse_rate_limit("5/1w").is_err());
    }

    #[test]
    fn sizes_and_blocks_parse() {
        assert_eq!(parse_byte_size("10MiB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_byte_size("512").unwrap(), 512);
        let block: IpBlock = "10.0.0.0/8".parse().unwrap();
        assert!(block.contains("10.1.2.3".parse().unwrap()));
        assert!(!block.contains("11.1.2.3".parse().unwrap()));
        let single: IpBlock = "::1".parse().unwrap();
        assert!(single.contains("::1".parse().unwrap()));
    }
}
