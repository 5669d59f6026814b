//! What an attempt may use (limits) and what it is given (grants). Plain data: the defaults are
//! written here, in one place, and documented in docs/limits.md.

use std::path::PathBuf;
use std::time::Duration;

/// The largest linear memory a plugin may be given (wasm32 addresses 4 GiB).
pub const MAX_MEMORY: u64 = 4 << 30;

/// The largest fuel budget (wasmtime keeps fuel in a signed 64-bit counter).
pub const MAX_FUEL: u64 = i64::MAX as u64;

/// Per-attempt resource limits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// CPU budget in wasmtime fuel units (about one per wasm instruction).
    pub fuel: u64,
    /// Cap on linear memory, in bytes.
    pub memory: u64,
    /// Wall-clock limit for the whole attempt.
    pub timeout: Duration,
    /// Cap on stdout (the task's output), in bytes. Going over fails the attempt.
    pub max_output: u64,
    /// Cap on stderr (the attempt's log), in bytes. Going over drops the rest, with a marker.
    pub max_logs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            memory: 64 << 20,
            timeout: Duration::from_secs(30),
            max_output: 1 << 20,
            max_logs: 1 << 20,
        }
    }
}

/// Host resources granted to an attempt. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grants {
    /// Environment variables, exactly these and no others.
    pub env: Vec<(String, String)>,
    /// Host directories visible to the plugin.
    pub mounts: Vec<Mount>,
    /// Outgoing HTTP (components only); none unless granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
}

/// Outgoing HTTP granted to an attempt: requests to these origins only, within these bounds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpGrant {
    /// The origins (scheme, host, port) requests may go to. Nothing else is reachable.
    pub allow: Vec<Origin>,
    /// Requests one attempt may make; the next one is refused.
    pub max_requests: u32,
    /// Bytes of one response's body; a longer body fails to read.
    pub max_response: u64,
    /// Wall-clock limit of one request, from connecting to the body's last byte.
    pub timeout: Duration,
}

impl HttpGrant {
    /// Defaults of the bounds when a workflow names only `allow`.
    pub const DEFAULT_MAX_REQUESTS: u32 = 100;
    /// 10 MiB.
    pub const DEFAULT_MAX_RESPONSE: u64 = 10 << 20;
    /// 10 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The allowlist entry that admits a request to `https`/`host`/`port`, if any. `host` is
    /// compared without regard to ASCII case.
    pub fn admits(&self, https: bool, host: &str, port: u16) -> Option<&Origin> {
        self.allow
            .iter()
            .find(|o| o.https == https && o.port == port && o.host.eq_ignore_ascii_case(host))
    }
}

/// One allowlist entry: `https://api.example.com`, `http://127.0.0.1:8900`, `http://[::1]:80`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// `https` (true) or `http`.
    pub https: bool,
    /// A DNS name in lower case, or an IP address (IPv6 without brackets).
    pub host: String,
    /// The port, the scheme's default when the entry names none.
    pub port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` with an optional trailing `/`; nothing else (no path, query,
    /// user or wildcard) so that an entry means exactly one origin.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let bad = |why: &str| {
            format!("`{text}` is not an origin: {why}; write e.g. `https://api.example.com` or `http://127.0.0.1:8900`")
        };
        let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("it must start with `http://` or `https://`"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@', '*']) || rest.chars().any(char::is_whitespace) {
            return Err(bad(
                "only a scheme, a host and a port are allowed (no path, query, user or wildcard)",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or_else(|| bad("`[` without `]`"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("the part in brackets is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
            };
            (addr.to_ascii_lowercase(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (rest.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        if !host.contains(':')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(bad("the host may hold only letters, digits, `-` and `.`"));
        }
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        Ok(Origin { https, host, port })
    }

    /// The host as an IP address, when the entry names one rather than a DNS name.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.host.parse().ok()
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port_with_the_schemes_default_port() {
        let o = Origin::parse("https://API.example.com/").unwrap();
        assert_eq!(
            (o.https, o.host.as_str(), o.port),
            (true, "api.example.com", 443)
        );
        assert_eq!(Origin::parse("http://127.0.0.1:8900").unwrap().port, 8900);
        let v6 = Origin::parse("http://[::1]:81").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 81));
        assert_eq!(v6.to_string(), "http://[::1]:81");
        assert_eq!(v6.ip(), Some("::1".parse().unwrap()));
        assert_eq!(Origin::parse("http://a.example").unwrap().port, 80);
    }

    #[test]
    fn an_origin_with_more_than_an_origin_or_a_bad_port_is_refused_with_the_reason() {
        for (text, why) in [
            ("ftp://a.example", "must start with"),
            ("https://a.example/v1", "no path"),
            ("https://*.example.com", "wildcard"),
            ("https://user@a.example", "no path, query, user"),
            ("https://a.example:0", "port must be"),
            ("https://a.example:70000", "port must be"),
            ("https://", "host is missing"),
            ("https://[::1", "without `]`"),
            ("https://a_b.example", "only letters"),
        ] {
            let e = Origin::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn a_grant_admits_only_the_exact_origin() {
        let g = HttpGrant {
            allow: vec![Origin::parse("http://127.0.0.1:8900").unwrap()],
            max_requests: 1,
            max_response: 1,
            timeout: Duration::from_secs(1),
        };
        assert!(g.admits(false, "127.0.0.1", 8900).is_some());
        assert!(g.admits(true, "127.0.0.1", 8900).is_none());
        assert!(g.admits(false, "127.0.0.1", 8901).is_none());
        assert!(g.admits(false, "127.0.0.2", 8900).is_none());
    }
}

/// A host directory made visible at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Absolute host path of the directory.
    pub host: PathBuf,
    /// Absolute path inside the sandbox, e.g. `/data`.
    pub guest: String,
    /// Whether the plugin may create, change and delete files under it.
    pub writable: bool,
    /// Device and inode of the directory when the workflow was validated: every attempt checks
    /// it still opens that directory.
    pub identity: (u64, u64),
}
