//! Name resolution without glibc's `getaddrinfo`, so a statically linked
//! r4-exec works in a `FROM scratch` image (static glibc cannot load NSS
//! modules there):
//! - `localhost` is answered locally with 127.0.0.1 and ::1 (RFC 6761), so
//!   the development server is reachable even with no `/etc` at all;
//! - IP literals never reach a resolver (reqwest connects directly);
//! - other names go to hickory-resolver, configured from `/etc/resolv.conf`
//!   and `/etc/hosts` (container runtimes provide both).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use hickory_resolver::TokioResolver;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The resolver installed in the HTTP client.
#[derive(Default, Clone)]
pub struct R4Resolver {
    hickory: Arc<OnceLock<Result<TokioResolver, String>>>,
}

/// Whether `host` is a name RFC 6761 reserves for the loopback interface.
pub fn is_localhost(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
}

impl Resolve for R4Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        if is_localhost(&host) {
            let addrs: Addrs = Box::new(
                [
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ]
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0)),
            );
            return Box::pin(async move { Ok(addrs) });
        }
        let cell = self.hickory.clone();
        Box::pin(async move {
            let resolver = cell
                .get_or_init(|| {
                    TokioResolver::builder_tokio()
                        .map(|b| b.build())
                        .map_err(|e| {
                            format!("cannot read the DNS configuration (/etc/resolv.conf): {e}")
                        })
                })
                .as_ref()
                .map_err(|e| DnsError {
                    host: host.clone(),
                    reason: e.clone(),
                })?;
            let ips = resolver
                .lookup_ip(host.as_str())
                .await
                .map_err(|e| DnsError {
                    host: host.clone(),
                    reason: reason(&e),
                })?;
            let addrs: Addrs = Box::new(
                ips.iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// A name that did not resolve, in words: hickory's own `Display` is its
/// internal debug text (`no records found for Query { name: Name(...) }`),
/// which says neither what failed nor what to check.
#[derive(Debug)]
pub struct DnsError {
    /// The name looked up.
    pub host: String,
    /// Why it failed.
    pub reason: String,
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot resolve {}: {}", self.host, self.reason)
    }
}

impl std::error::Error for DnsError {}

/// Why a lookup failed, for a person.
fn reason(e: &hickory_resolver::ResolveError) -> String {
    use hickory_resolver::proto::ProtoErrorKind;
    if e.is_nx_domain() {
        return "no such name in DNS".into();
    }
    if e.is_no_records_found() {
        return "the name has no address (A or AAAA) record".into();
    }
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::Timeout) => "the DNS servers did not answer in time".into(),
        Some(ProtoErrorKind::NoConnections) => {
            "no DNS server to ask (check /etc/resolv.conf)".into()
        }
        Some(ProtoErrorKind::Io(io)) => format!("the DNS query failed: {io}"),
        _ => "the DNS lookup failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("LOCALHOST."));
        assert!(!is_localhost("localhost.evil.com"));
        assert!(!is_localhost("127.0.0.1"));
    }
}
