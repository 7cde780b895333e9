//! Which proxy, if any, carries our requests: one pure decision from the base
//! URL and the environment, so every rule is unit-tested without touching the
//! process environment, and reqwest is never left to read the variables
//! itself (it would send plain `http://` requests, API key included, to
//! `HTTP_PROXY` in clear).
//!
//! The rules:
//! - plain `http://` (loopback only, see `check_base_url`) is always direct;
//! - `https://` uses the first non-empty of `https_proxy`, `HTTPS_PROXY`,
//!   `all_proxy`, `ALL_PROXY` (curl's order; `HTTP_PROXY` is never read),
//!   through an HTTP `CONNECT` tunnel only, so the proxy sees `host:port`
//!   and then TLS;
//! - unless `no_proxy` (else `NO_PROXY`) lists the host: entries separated
//!   by commas or spaces; `*` matches every host; a name matches itself and
//!   its subdomains, with or without a leading dot; an IP address matches
//!   itself, an `ADDR/BITS` block the addresses in it; a `:port` on an entry
//!   is ignored; loopback is not exempt;
//! - a proxy URL is `http://` or `https://`, `[user:password@]host[:port]`
//!   (default port 80 or 443), nothing else. Anything else is an error that
//!   names the variable but never shows its value, which may hold the
//!   proxy's password.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use super::ClientError;

/// Proxy variables for `https://` targets, in the order curl reads them.
const HTTPS_PROXY_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// Exclusion lists, in the order curl reads them.
const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// How requests to the base URL travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to the server.
    Direct(Direct),
    /// Through an HTTP `CONNECT` tunnel; TLS runs end to end inside it.
    Connect {
        /// The proxy.
        proxy: ProxyUrl,
        /// The variable it came from.
        var: &'static str,
    },
}

/// Why requests go straight to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direct {
    /// Plain `http://`: a proxy would read every request, API key included.
    PlainHttp,
    /// No proxy variable for `https://` is set.
    Unset,
    /// The exclusion list in `var` matches `host`.
    Excluded {
        /// `no_proxy` or `NO_PROXY`.
        var: &'static str,
        /// The base URL's host.
        host: String,
    },
}

/// A validated proxy URL whose `Display` and `Debug` hide the credentials it
/// may carry, so it can be printed with `-v` or land in a log safely.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(Url);

impl ProxyUrl {
    /// The full URL, credentials included: for the HTTP client only.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        let userinfo = !url.username().is_empty() || url.password().is_some();
        write!(
            f,
            "{}://{}{}:{}",
            url.scheme(),
            if userinfo { "***@" } else { "" },
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        )
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// The `-v` line.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Connect { proxy, var } => write!(f, "proxy: CONNECT via {proxy} (from {var})"),
            Route::Direct(Direct::PlainHttp) => {
                write!(f, "proxy: none (plain http:// never goes through a proxy)")
            }
            Route::Direct(Direct::Unset) => write!(
                f,
                "proxy: none (no https_proxy, HTTPS_PROXY, all_proxy or ALL_PROXY set)"
            ),
            Route::Direct(Direct::Excluded { var, host }) => {
                write!(f, "proxy: none ({var} matches {host})")
            }
        }
    }
}

/// Decides the route to `base`, reading variables through `env` (the
/// process environment in production, a table in tests). An empty variable
/// counts as unset, as in curl.
pub fn route(base: &Url, env: impl Fn(&str) -> Option<String>) -> Result<Route, ClientError> {
    if base.scheme() != "https" {
        return Ok(Route::Direct(Direct::PlainHttp));
    }
    let first_set = |names: &[&'static str]| {
        names
            .iter()
            .find_map(|&name| env(name).filter(|v| !v.is_empty()).map(|v| (name, v)))
    };
    let Some((var, value)) = first_set(&HTTPS_PROXY_VARS) else {
        return Ok(Route::Direct(Direct::Unset));
    };
    if let (Some(host), Some((no_var, list))) = (base.host(), first_set(&NO_PROXY_VARS)) {
        if excluded(&list, &host) {
            let host = host.to_string();
            return Ok(Route::Direct(Direct::Excluded { var: no_var, host }));
        }
    }
    let proxy = parse_proxy(var, value.trim())?;
    Ok(Route::Connect { proxy, var })
}

/// Checks a proxy URL. Errors describe the problem, never the value.
fn parse_proxy(var: &'static str, value: &str) -> Result<ProxyUrl, ClientError> {
    let bad = |detail: String| ClientError::BadProxy { var, detail };
    let shape = "write it as http://HOST:PORT or https://HOST:PORT";
    if !value.contains("://") {
        return Err(bad(format!("it has no scheme; {shape}")));
    }
    let url = Url::parse(value).map_err(|e| bad(format!("it is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "only http:// and https:// proxies are supported; {shape}"
        )));
    }
    if url.host().is_none()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad(format!("it must be a host and port only; {shape}")));
    }
    Ok(ProxyUrl(url))
}

/// Whether the `no_proxy` list names `host`.
fn excluded(list: &str, host: &Host<&str>) -> bool {
    list.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|entry| !entry.is_empty())
        .any(|entry| entry == "*" || entry_matches(without_port(entry), host))
}

/// Names match names and addresses addresses: `localhost` does not match
/// `127.0.0.1`, as in curl (no lookup is made to compare them).
fn entry_matches(entry: &str, host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => domain_matches(entry, name),
        Host::Ipv4(ip) => ip_matches(entry, IpAddr::V4(*ip)),
        Host::Ipv6(ip) => ip_matches(entry, IpAddr::V6(*ip)),
    }
}

/// `example.com` and `.example.com` both match `example.com` and
/// `api.example.com`, never `badexample.com`. Case and a trailing dot do not
/// matter.
fn domain_matches(entry: &str, name: &str) -> bool {
    let norm = |s: &str| s.trim_matches('.').to_ascii_lowercase();
    let (entry, name) = (norm(entry), norm(name));
    !entry.is_empty() && (name == entry || name.ends_with(&format!(".{entry}")))
}

/// An address matches itself; `ADDR/BITS` matches the block.
fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    match entry.split_once('/') {
        None => entry.parse::<IpAddr>().is_ok_and(|addr| addr == ip),
        Some((net, bits)) => match (net.parse::<IpAddr>(), bits.parse::<u32>()) {
            (Ok(net), Ok(bits)) => in_block(ip, net, bits),
            _ => false,
        },
    }
}

/// Whether the first `bits` bits of `ip` and `net` agree; an IPv4 address is
/// never in an IPv6 block, nor the reverse.
fn in_block(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Drops a `:port` (`host:443`, `[::1]:443`); a bare IPv6 address, with its
/// several colons, is left whole.
fn without_port(entry: &str) -> &str {
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(addr, _)| addr);
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROXY: &str = "http://proxy.example:3128";

    fn route_with(base: &str, vars: &[(&str, &str)]) -> Result<Route, ClientError> {
        let base = Url::parse(base).unwrap();
        route(&base, |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn connect_var(base: &str, vars: &[(&str, &str)]) -> Option<&'static str> {
        match route_with(base, vars).unwrap() {
            Route::Connect { var, .. } => Some(var),
            Route::Direct(_) => None,
        }
    }

    const EVERY_PROXY_VAR: [(&str, &str); 6] = [
        ("http_proxy", PROXY),
        ("HTTP_PROXY", PROXY),
        ("https_proxy", PROXY),
        ("HTTPS_PROXY", PROXY),
        ("all_proxy", PROXY),
        ("ALL_PROXY", PROXY),
    ];

    #[test]
    fn plain_http_is_always_direct() {
        for base in [
            "http://127.0.0.1:8080/api",
            "http://localhost/",
            "http://[::1]/",
        ] {
            assert_eq!(
                route_with(base, &EVERY_PROXY_VAR).unwrap(),
                Route::Direct(Direct::PlainHttp)
            );
        }
        // Not even a malformed variable is looked at.
        let broken = [("HTTPS_PROXY", "::"), ("ALL_PROXY", "socks5://x")];
        assert!(route_with("http://127.0.0.1/", &broken).is_ok());
    }

    #[test]
    fn https_reads_the_variables_in_curls_order() {
        let base = "https://r4.example/api";
        assert_eq!(connect_var(base, &EVERY_PROXY_VAR), Some("https_proxy"));
        assert_eq!(
            connect_var(base, &EVERY_PROXY_VAR[3..]),
            Some("HTTPS_PROXY")
        );
        assert_eq!(connect_var(base, &EVERY_PROXY_VAR[4..]), Some("all_proxy"));
        assert_eq!(connect_var(base, &EVERY_PROXY_VAR[5..]), Some("ALL_PROXY"));
    }

    #[test]
    fn http_proxy_is_never_used() {
        let only_http = &EVERY_PROXY_VAR[..2];
        assert_eq!(
            route_with("https://r4.example/", only_http).unwrap(),
            Route::Direct(Direct::Unset)
        );
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let vars = [
            ("https_proxy", ""),
            ("HTTPS_PROXY", PROXY),
            ("no_proxy", ""),
        ];
        assert_eq!(
            connect_var("https://r4.example/", &vars),
            Some("HTTPS_PROXY")
        );
        let none = [("HTTPS_PROXY", "")];
        assert_eq!(
            route_with("https://r4.example/", &none).unwrap(),
            Route::Direct(Direct::Unset)
        );
    }

    #[test]
    fn the_route_keeps_the_credentials_for_the_client_only() {
        let vars = [("HTTPS_PROXY", "http://user:pa%40ss@proxy.example:3128/")];
        let Route::Connect { proxy, var } = route_with("https://r4.example/", &vars).unwrap()
        else {
            panic!("expected a proxy");
        };
        assert_eq!(var, "HTTPS_PROXY");
        assert_eq!(proxy.expose(), "http://user:pa%40ss@proxy.example:3128/");
        assert_eq!(proxy.to_string(), "http://***@proxy.example:3128");
        assert_eq!(
            format!("{proxy:?}"),
            "ProxyUrl(http://***@proxy.example:3128)"
        );
        let line = Route::Connect { proxy, var }.to_string();
        assert_eq!(
            line,
            "proxy: CONNECT via http://***@proxy.example:3128 (from HTTPS_PROXY)"
        );
    }

    #[test]
    fn default_ports_and_https_proxies() {
        for (value, shown) in [
            ("http://proxy.example", "http://proxy.example:80"),
            ("https://proxy.example", "https://proxy.example:443"),
            ("https://[::1]:8443", "https://[::1]:8443"),
            (" http://proxy.example:3128 ", "http://proxy.example:3128"),
        ] {
            let Route::Connect { proxy, .. } =
                route_with("https://r4.example/", &[("ALL_PROXY", value)]).unwrap()
            else {
                panic!("{value}");
            };
            assert_eq!(proxy.to_string(), shown);
        }
    }

    #[test]
    fn a_malformed_proxy_names_the_variable_not_the_value() {
        for value in [
            "user:hunter2@proxy.example:3128",
            "socks5://user:hunter2@proxy.example:1080",
            "http://user:hunter2@proxy.example:99999",
            "http://user:hunter2@proxy.example:3128/path",
            "http://user:hunter2@proxy.example:3128/?q",
            "http://user:hunter2@proxy.example:3128/#f",
            "http://user:hunter2@",
        ] {
            let err = route_with("https://r4.example/", &[("https_proxy", value)]).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("https_proxy "), "{text}");
            assert!(
                !text.contains("hunter2") && !text.contains("user"),
                "{text}"
            );
            assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        }
    }

    fn no_proxy(list: &str, base: &str) -> bool {
        let vars = [("HTTPS_PROXY", PROXY), ("NO_PROXY", list)];
        matches!(
            route_with(base, &vars).unwrap(),
            Route::Direct(Direct::Excluded { .. })
        )
    }

    #[test]
    fn no_proxy_star_matches_everything() {
        assert!(no_proxy("*", "https://r4.example/"));
        assert!(no_proxy("other.example, *", "https://10.1.2.3/"));
    }

    #[test]
    fn no_proxy_domains_match_themselves_and_subdomains() {
        for list in [
            "r4.example",
            ".r4.example",
            "R4.Example.",
            "x.test,r4.example",
        ] {
            assert!(no_proxy(list, "https://r4.example/"), "{list}");
            assert!(no_proxy(list, "https://api.r4.example:8443/"), "{list}");
            assert!(!no_proxy(list, "https://badr4.example/"), "{list}");
            assert!(!no_proxy(list, "https://r4.example.evil/"), "{list}");
        }
        assert!(no_proxy("example", "https://r4.example/"));
        assert!(!no_proxy("api.r4.example", "https://r4.example/"));
        assert!(no_proxy("r4.example", "https://R4.EXAMPLE./"));
    }

    #[test]
    fn no_proxy_lists_split_on_commas_and_spaces() {
        assert!(no_proxy("a.test , r4.example", "https://r4.example/"));
        assert!(no_proxy("a.test r4.example", "https://r4.example/"));
        assert!(!no_proxy(",, ,", "https://r4.example/"));
    }

    #[test]
    fn no_proxy_addresses_match_exactly_or_by_block() {
        assert!(no_proxy("127.0.0.1", "https://127.0.0.1:8443/"));
        assert!(!no_proxy("127.0.0.2", "https://127.0.0.1/"));
        assert!(!no_proxy("0.0.1", "https://127.0.0.1/"));
        assert!(!no_proxy("localhost", "https://127.0.0.1/"));
        assert!(!no_proxy("127.0.0.1", "https://localhost/"));
        assert!(no_proxy("10.0.0.0/8", "https://10.200.3.4/"));
        assert!(!no_proxy("10.0.0.0/8", "https://11.0.0.1/"));
        assert!(no_proxy("0.0.0.0/0", "https://11.0.0.1/"));
        assert!(!no_proxy("10.0.0.0/33", "https://10.0.0.1/"));
        assert!(!no_proxy("10.0.0.0/x", "https://10.0.0.1/"));
        assert!(no_proxy("::1", "https://[::1]/"));
        assert!(no_proxy("0:0::1", "https://[::1]/"));
        assert!(no_proxy("fd00::/8", "https://[fd12::1]/"));
        assert!(!no_proxy("fd00::/8", "https://[fe80::1]/"));
        assert!(!no_proxy("::/0", "https://10.0.0.1/"));
    }

    #[test]
    fn no_proxy_ports_are_ignored() {
        assert!(no_proxy("r4.example:1", "https://r4.example/"));
        assert!(no_proxy("127.0.0.1:443", "https://127.0.0.1:8443/"));
        assert!(no_proxy("[::1]:443", "https://[::1]/"));
        assert!(no_proxy("[::1]", "https://[::1]/"));
    }

    #[test]
    fn lowercase_no_proxy_wins_and_is_named() {
        let vars = [
            ("HTTPS_PROXY", PROXY),
            ("no_proxy", "r4.example"),
            ("NO_PROXY", "other.example"),
        ];
        let r = route_with("https://api.r4.example/", &vars).unwrap();
        assert_eq!(
            r.to_string(),
            "proxy: none (no_proxy matches api.r4.example)"
        );
        assert_eq!(
            connect_var("https://other.example/", &vars),
            Some("HTTPS_PROXY")
        );
    }

    #[test]
    fn an_excluded_host_does_not_need_a_valid_proxy() {
        let vars = [("HTTPS_PROXY", "not a url"), ("NO_PROXY", "*")];
        assert!(route_with("https://r4.example/", &vars).is_ok());
    }

    #[test]
    fn the_verbose_lines() {
        let line = |base: &str, vars: &[(&str, &str)]| route_with(base, vars).unwrap().to_string();
        assert_eq!(
            line("http://127.0.0.1/", &EVERY_PROXY_VAR),
            "proxy: none (plain http:// never goes through a proxy)"
        );
        assert_eq!(
            line("https://r4.example/", &[]),
            "proxy: none (no https_proxy, HTTPS_PROXY, all_proxy or ALL_PROXY set)"
        );
        assert_eq!(
            line(
                "https://[::1]/",
                &[("ALL_PROXY", PROXY), ("NO_PROXY", "::1")]
            ),
            "proxy: none (NO_PROXY matches [::1])"
        );
        assert_eq!(
            line("https://r4.example/", &[("ALL_PROXY", PROXY)]),
            "proxy: CONNECT via http://proxy.example:3128 (from ALL_PROXY)"
        );
    }
}
