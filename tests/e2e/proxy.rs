//! Proxies (`src/client/proxy.rs`), seen from a recording proxy: plain
//! `http://` never reaches it, whatever variable names it; `https://` reaches
//! it only as a `CONNECT host:port` followed by TLS, so neither the API key
//! nor any request is ever readable by the proxy; `NO_PROXY` keeps it out;
//! `-v` names the proxy without its password.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::util::*;

/// The secret half of [`API_KEY`]: not one recording may contain it.
const KEY_SECRET: &str = "test-secret-value-1234";
/// Proxy credentials of [`verbose_names_the_proxy_but_not_its_password`].
const PROXY_USER: &str = "agent-user";
const PROXY_PASSWORD: &str = "pr0xy-pa55";
/// `base64("agent-user:pr0xy-pa55")`.
const PROXY_BASIC: &str = "YWdlbnQtdXNlcjpwcjB4eS1wYTU1";

/// An HTTP proxy on a loopback port that records every byte each client
/// sends it. A `CONNECT host:port` to a loopback target is tunnelled both
/// ways; anything else is recorded and answered 502.
struct RecordingProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<Vec<JoinHandle<Vec<u8>>>>>,
}

impl RecordingProxy {
    fn start() -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // Non-blocking, so the acceptor can drain the queue and then stop.
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let acceptor = thread::spawn(move || {
            let mut conns = Vec::new();
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        conns.push(thread::spawn(move || serve(stream)));
                    }
                    Err(_) if flag.load(Ordering::SeqCst) => return conns,
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        RecordingProxy {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Call once the client has exited: accepts whatever is still queued,
    /// stops, and returns what each connection sent, in order.
    fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::SeqCst);
        let conns = self.acceptor.take().unwrap().join().unwrap();
        conns.into_iter().map(|c| c.join().unwrap()).collect()
    }
}

impl Drop for RecordingProxy {
    /// A failed test still stops the acceptor.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Serves one client and returns every byte it sent.
fn serve(mut client: TcpStream) -> Vec<u8> {
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut seen = Vec::new();
    let head_end = loop {
        if !read_some(&mut client, &mut seen) {
            return seen;
        }
        if let Some(i) = find(&seen, b"\r\n\r\n") {
            break i + 4;
        }
    };
    let Some(mut target) = connect_target(&seen[..head_end]) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        return seen;
    };
    let _ = client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n");
    let _ = target.write_all(&seen[head_end..]);
    // Target to client: not recorded; ends when either side closes.
    let (mut from_target, mut to_client) =
        (target.try_clone().unwrap(), client.try_clone().unwrap());
    thread::spawn(move || {
        let _ = std::io::copy(&mut from_target, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    loop {
        let before = seen.len();
        if !read_some(&mut client, &mut seen) || target.write_all(&seen[before..]).is_err() {
            break;
        }
    }
    let _ = target.shutdown(Shutdown::Both);
    seen
}

/// Appends what the client sends next; false at its end.
fn read_some(client: &mut TcpStream, seen: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    match client.read(&mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            seen.extend_from_slice(&buf[..n]);
            true
        }
    }
}

/// The target of a `CONNECT` to a loopback address, connected.
fn connect_target(head: &[u8]) -> Option<TcpStream> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let authority = line.strip_prefix("CONNECT ")?.strip_suffix(" HTTP/1.1")?;
    let addr: SocketAddr = authority.replace("localhost", "127.0.0.1").parse().ok()?;
    if !addr.ip().is_loopback() {
        return None;
    }
    TcpStream::connect(addr).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first line of each recording, for failure messages.
fn first_lines(seen: &[Vec<u8>]) -> Vec<String> {
    seen.iter()
        .map(|c| String::from_utf8_lossy(&c[..c.len().min(80)]).into_owned())
        .collect()
}

/// `r4-exec -v` against `base_url`, trusting the TLS devserver's CA,
/// printing `$DB_PASSWORD` from the child.
fn verbose_print_password(world: &World, base_url: &str) -> Command {
    let mut cmd = print_password(world, base_url, &["-v"]);
    cmd.env("SSL_CERT_FILE", world.path("ca.pem"));
    cmd
}

/// `host:port` of a base URL.
fn authority(base_url: &str) -> &str {
    let rest = base_url.split_once("://").unwrap().1;
    rest.split('/').next().unwrap()
}

/// A tunnel as it must look from the proxy: exactly one `CONNECT` head for
/// `authority` with no header but `Host`, `User-Agent` and the expected
/// `Proxy-Authorization`; then, with nothing in between, a TLS ClientHello;
/// and the API key nowhere.
fn assert_connect_then_tls(conn: &[u8], authority: &str, proxy_auth: Option<&str>) {
    let end = find(conn, b"\r\n\r\n").expect("a complete CONNECT head") + 4;
    let head = std::str::from_utf8(&conn[..end]).unwrap();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        lines.next(),
        Some(format!("CONNECT {authority} HTTP/1.1").as_str()),
        "{head}"
    );
    let mut headers: Vec<String> = lines.map(|l| l.to_ascii_lowercase()).collect();
    headers.sort();
    let mut expected = vec![
        format!("host: {authority}"),
        concat!("user-agent: r4-exec/", env!("CARGO_PKG_VERSION")).to_string(),
    ];
    if let Some(auth) = proxy_auth {
        expected.push(format!(
            "proxy-authorization: basic {}",
            auth.to_ascii_lowercase()
        ));
    }
    expected.sort();
    assert_eq!(headers, expected, "{head}");
    let tls = &conn[end..];
    assert!(
        tls.len() > 5 && tls[0] == 0x16 && tls[1] == 0x03 && tls[5] == 0x01,
        "after the CONNECT head comes a TLS ClientHello, nothing else: {:?}",
        &tls[..tls.len().min(16)]
    );
    for secret in [API_KEY, KEY_SECRET] {
        assert!(
            find(conn, secret.as_bytes()).is_none(),
            "the API key reached the proxy"
        );
    }
}

#[test]
fn plain_http_never_reaches_a_proxy() {
    let world = World::new();
    let proxy = RecordingProxy::start();
    let mut cmd = verbose_print_password(&world, world.server.base_url());
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env(var, proxy.url());
    }
    let out = cmd.output().unwrap();
    let seen = proxy.finish();
    assert!(
        seen.is_empty(),
        "{} connection(s) reached the proxy: {:?}",
        seen.len(),
        first_lines(&seen)
    );
    assert_eq!(stdout(&out), DB_PASSWORD, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("proxy: none (plain http:// never goes through a proxy)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn https_reaches_the_proxy_only_as_connect_and_tls() {
    let (world, server) = tls_world();
    let proxy = RecordingProxy::start();
    let out = verbose_print_password(&world, server.base_url())
        .env("HTTPS_PROXY", proxy.url())
        .output()
        .unwrap();
    let seen = proxy.finish();
    assert_eq!(stdout(&out), DB_PASSWORD, "{}", stderr(&out));
    assert!(!seen.is_empty(), "nothing reached the proxy");
    for conn in &seen {
        assert_connect_then_tls(conn, authority(server.base_url()), None);
    }
}

#[test]
fn no_proxy_keeps_https_away_from_the_proxy() {
    let (world, server) = tls_world();
    for (var, list) in [
        ("NO_PROXY", "127.0.0.1"),
        ("no_proxy", "r4.example, 127.0.0.0/8"),
    ] {
        let proxy = RecordingProxy::start();
        let out = verbose_print_password(&world, server.base_url())
            .env("HTTPS_PROXY", proxy.url())
            .env("ALL_PROXY", proxy.url())
            .env(var, list)
            .output()
            .unwrap();
        let seen = proxy.finish();
        assert!(
            seen.is_empty(),
            "{var}={list}: {} connection(s) reached the proxy: {:?}",
            seen.len(),
            first_lines(&seen)
        );
        assert_eq!(stdout(&out), DB_PASSWORD, "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("proxy: none ({var} matches 127.0.0.1)")),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn verbose_names_the_proxy_but_not_its_password() {
    let (world, server) = tls_world();
    let proxy = RecordingProxy::start();
    let addr = proxy.addr;
    let out = verbose_print_password(&world, server.base_url())
        .env(
            "HTTPS_PROXY",
            format!("http://{PROXY_USER}:{PROXY_PASSWORD}@{addr}"),
        )
        .output()
        .unwrap();
    let seen = proxy.finish();
    let err = stderr(&out);
    assert_eq!(stdout(&out), DB_PASSWORD, "{err}");
    assert!(
        err.contains(&format!(
            "r4-exec: proxy: CONNECT via http://***@{addr} (from HTTPS_PROXY)"
        )),
        "{err}"
    );
    assert!(
        !err.contains(PROXY_PASSWORD) && !err.contains(PROXY_USER),
        "{err}"
    );
    // The credentials are used, and only in the CONNECT head.
    assert!(!seen.is_empty(), "nothing reached the proxy");
    for conn in &seen {
        assert_connect_then_tls(conn, authority(server.base_url()), Some(PROXY_BASIC));
    }
}

#[test]
fn a_malformed_proxy_is_refused_by_name_without_its_value() {
    let world = World::new();
    let marker = world.marker();
    let err = fails(
        world
            .std_command()
            .env("R4_BASE_URL", "https://127.0.0.1:1/api/v1/machine")
            .env(
                "https_proxy",
                format!("socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1080"),
            )
            .arg("--")
            .args(marker.command()),
        64,
        &["https_proxy is not a usable proxy: only http:// and https://"],
    );
    assert!(
        !err.contains(PROXY_PASSWORD) && !err.contains(PROXY_USER),
        "{err}"
    );
    marker.assert_not_ran();
}
