//! The R4 machine API over HTTPS: one typed async call per endpoint of the
//! contract (§6–§7), the error envelope as a typed error, bounded bodies,
//! deadlines and retries of idempotent requests. No verification happens here;
//! that is the contract layer's job, applied by `resolve`.

mod dns;
mod error;
mod proxy;
mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use crate::contract::secret::Secret;
use crate::contract::wire::*;
pub use error::ClientError;

/// Largest response body accepted. A full sync of 1000 items is a few MiB.
pub const MAX_BODY: usize = 32 << 20;
/// Header carrying the API key (§1).
pub const API_KEY_HEADER: &str = "X-API-Key";

/// A progress sink for `-v` (names and paths only, never values).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Retry policy for idempotent requests: capped exponential backoff with full
/// jitter, `Retry-After` honoured up to a cap, a bounded number of tries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries, including the first.
    pub max_attempts: u32,
    /// First backoff ceiling.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
    /// Largest `Retry-After` honoured.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            retry_after_cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based) after `err`.
    fn delay(&self, attempt: u32, err: &ClientError) -> Duration {
        if let Some(after) = err.retry_after() {
            return after.min(self.retry_after_cap);
        }
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        jitter(ceiling, 0.0, 1.0)
    }
}

/// `d` scaled by a uniform random factor in `[from, to]`: the one source of
/// jitter for retries (full jitter) and the supervisor's polls (±10%), so
/// that replicas started together do not hit the server together. The
/// factor falls back to the middle of the range if the system RNG fails.
pub fn jitter(d: Duration, from: f64, to: f64) -> Duration {
    let mut r = [0u8; 4];
    let unit = match aws_lc_rs::rand::fill(&mut r) {
        Ok(()) => f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    d.mul_f64(from + (to - from) * unit)
}

/// How to reach the API.
#[derive(Clone)]
pub struct ClientOptions {
    /// Base URL, e.g. `https://r4.dev/api/v1/machine`.
    pub base_url: String,
    /// The AGENT API key (`access.secret`).
    pub api_key: Secret,
    /// Extra trust anchor (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Deadline for each request, from send to the last body byte.
    pub timeout: Duration,
    /// Deadline for establishing a connection.
    pub connect_timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Progress reporting.
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientOptions {
    /// Options with the default deadlines (10 s per request, 5 s to connect).
    pub fn new(base_url: impl Into<String>, api_key: Secret) -> ClientOptions {
        ClientOptions {
            base_url: base_url.into(),
            api_key,
            ca_pem: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            progress: None,
        }
    }
}

/// A client of the machine API. Cheap to clone; all clones share one
/// connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    opts: Arc<ClientOptions>,
    /// The variable naming the proxy in use, for connection errors.
    proxy: Option<&'static str>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.base)
    }
}

/// Refuses anything but `https://`, or `http://` to a loopback host (§1).
pub fn check_base_url(base_url: &str) -> Result<url::Url, ClientError> {
    let url = url::Url::parse(base_url)
        .map_err(|e| ClientError::BadBaseUrl(format!("\"{base_url}\" is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ClientError::BadBaseUrl(format!(
            "\"{base_url}\" uses plain http:// to a non-loopback host; use https://"
        ))),
        other => Err(ClientError::BadBaseUrl(format!(
            "\"{base_url}\" has unsupported scheme {other}:"
        ))),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => dns::is_localhost(d),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl Client {
    /// Builds a client; refuses insecure URLs.
    pub fn new(opts: ClientOptions) -> Result<Client, ClientError> {
        let url = check_base_url(&opts.base_url)?;
        // reqwest builds a rustls config even for http://; make aws-lc-rs the
        // process default (a second call finds it installed, which is fine).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut key =
            HeaderValue::from_bytes(opts.api_key.expose()).map_err(|_| ClientError::BadApiKey)?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY_HEADER, key);
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("r4-exec/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            .read_timeout(opts.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(dns::R4Resolver::default()));
        if url.scheme() == "https" {
            builder = builder.use_preconfigured_tls(tls::client_config(opts.ca_pem.as_deref())?);
        }
        let route = proxy::route(&url, env_var)?;
        let http = with_route(builder, &route)?
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let client = Client {
            http,
            base: opts.base_url.trim_end_matches('/').to_string(),
            opts: Arc::new(opts),
            proxy: match &route {
                proxy::Route::Connect { var, .. } => Some(*var),
                proxy::Route::Direct(_) => None,
            },
        };
        client.report(&route.to_string());
        Ok(client)
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn report(&self, msg: &str) {
        if let Some(p) = &self.opts.progress {
            p(msg);
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.get_limited(path, MAX_BODY).await
    }

    /// [`Client::get`], the answer read by `decode` instead of
    /// [`from_json`].
    async fn get_decoded<T>(&self, path: &str, decode: Decode<T>) -> Result<T, ClientError> {
        self.with_retries("GET", path, MAX_BODY, decode, || {
            self.http.get(format!("{}{path}", self.base))
        })
        .await
    }

    /// [`Client::get`] refusing a body larger than `limit` (`TooLarge`).
    async fn get_limited<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: usize,
    ) -> Result<T, ClientError> {
        self.with_retries("GET", path, limit, from_json::<T>, || {
            self.http.get(format!("{}{path}", self.base))
        })
        .await
    }

    async fn with_retries<T>(
        &self,
        method: &'static str,
        path: &str,
        limit: usize,
        decode: Decode<T>,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let policy = &self.opts.retry;
        let mut attempt = 1;
        loop {
            let result = self.once(method, path, limit, decode, request()).await;
            match result {
                Err(err) if err.is_transient() && attempt < policy.max_attempts => {
                    let delay = policy.delay(attempt, &err);
                    self.report(&format!(
                        "retrying {method} {path} in {} ms (attempt {}/{}): {err}",
                        delay.as_millis(),
                        attempt + 1,
                        policy.max_attempts
                    ));
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once<T>(
        &self,
        method: &'static str,
        path: &str,
        limit: usize,
        decode: Decode<T>,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let net = |e: reqwest::Error| classify(method, path, e, self.opts.timeout, self.proxy);
        let resp = request.send().await.map_err(net)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_limited(resp, path, limit, net).await?;
        if status.is_success() {
            return decode(&body).map_err(|detail| ClientError::Decode {
                path: path.to_string(),
                detail,
            });
        }
        let (code, message) = match from_json::<ErrorEnvelope>(&body) {
            Ok(env) => (env.error.code, env.error.message),
            Err(_) => (
                format!("http_{}", status.as_u16()),
                status.canonical_reason().unwrap_or("error").to_string(),
            ),
        };
        Err(ClientError::Api {
            method,
            path: path.to_string(),
            status: status.as_u16(),
            code,
            message,
            retry_after,
        })
    }

    /// `GET /me` (§6.1).
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.get("/me").await
    }

    /// `GET /vault[?projectId=]`.
    pub async fn vaults(&self, project_id: Option<&str>) -> Result<VaultList, ClientError> {
        match project_id {
            Some(p) => self.get(&format!("/vault?projectId={}", enc(p))).await,
            None => self.get("/vault").await,
        }
    }

    /// `GET /vault/:vaultId`.
    pub async fn vault(&self, vault_id: &str) -> Result<Vault, ClientError> {
        self.get(&format!("/vault/{}", enc(vault_id))).await
    }

    /// `GET /vault/:vaultId/items` with its summary checkpoint (§4.2).
    pub async fn items(&self, vault_id: &str) -> Result<ItemList, ClientError> {
        let path = format!("/vault/{}/items", enc(vault_id));
        self.get_decoded(&path, ItemList::from_json).await
    }

    /// `GET /vault/:vaultId/items/:itemId` with its detail checkpoint (§4.3).
    pub async fn item(&self, vault_id: &str, item_id: &str) -> Result<ItemDetail, ClientError> {
        self.get(&format!("/vault/{}/items/{}", enc(vault_id), enc(item_id)))
            .await
    }

    /// `GET /vault/:vaultId/fields/:fieldId` (§4.4).
    pub async fn field(
        &self,
        vault_id: &str,
        field_id: &str,
    ) -> Result<FieldResponse, ClientError> {
        self.get(&format!(
            "/vault/{}/fields/{}",
            enc(vault_id),
            enc(field_id)
        ))
        .await
    }

    /// `GET /vault/:vaultId/wrapped-key` (§4.1).
    pub async fn wrapped_key(
        &self,
        vault_id: &str,
    ) -> Result<crate::contract::Signed<WrappedKey>, ClientError> {
        self.get(&format!("/vault/{}/wrapped-key", enc(vault_id)))
            .await
    }

    /// `GET /vault/:vaultId/public-keys` (§5).
    pub async fn public_keys(&self, vault_id: &str) -> Result<SignerDirectory, ClientError> {
        self.get(&format!("/vault/{}/public-keys", enc(vault_id)))
            .await
    }

    /// `GET /vault/sync[?cursor=]` (§6.3).
    pub async fn sync(&self, cursor: Option<&str>) -> Result<SyncResponse, ClientError> {
        match cursor {
            Some(c) => self.get(&format!("/vault/sync?cursor={}", enc(c))).await,
            None => self.get("/vault/sync").await,
        }
    }

    /// `GET /vault/sync` (a full answer), unless its body is larger than
    /// `limit`: then `None`, as soon as that is known (from
    /// `Content-Length`, else once `limit` bytes have arrived), and the
    /// rest is not read.
    pub async fn sync_within(&self, limit: usize) -> Result<Option<SyncResponse>, ClientError> {
        match self.get_limited("/vault/sync", limit).await {
            Ok(sync) => Ok(Some(sync)),
            Err(ClientError::TooLarge { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /vault/env/:projectId` (§6.4).
    pub async fn env(&self, project_id: &str) -> Result<EnvResponse, ClientError> {
        self.get(&format!("/vault/env/{}", enc(project_id))).await
    }

    /// `GET /vault/encryption-key` (§6.5, legacy).
    pub async fn encryption_key(&self) -> Result<LegacyKeyPair, ClientError> {
        self.get("/vault/encryption-key").await
    }

    /// `GET /project`.
    pub async fn projects(&self) -> Result<ProjectList, ClientError> {
        self.get("/project").await
    }

    /// `GET /project/:id`.
    pub async fn project(&self, id: &str) -> Result<ProjectDetail, ClientError> {
        self.get(&format!("/project/{}", enc(id))).await
    }

    /// `POST /vault/public-key` (§7). Idempotent by design, so retried.
    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        let body = serde_json::to_vec(req).expect("wire type serializes");
        let url = format!("{}/vault/public-key", self.base);
        self.with_retries("POST", "/vault/public-key", MAX_BODY, from_json, || {
            self.http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}

/// How a successful answer's body becomes its type: [`from_json`], or a
/// reader of one answer's own (`ItemList::from_json`).
type Decode<T> = fn(&[u8]) -> Result<T, String>;

/// Applies the proxy decision. `no_proxy()` comes first and always: without
/// it reqwest reads the proxy variables itself, and would send plain
/// `http://` requests, API key included, to `HTTP_PROXY`. The one proxy we
/// add is for `https://` only, which reqwest reaches through `CONNECT`.
fn with_route(
    builder: reqwest::ClientBuilder,
    route: &proxy::Route,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let builder = builder.no_proxy();
    let proxy::Route::Connect { proxy, var } = route else {
        return Ok(builder);
    };
    // reqwest's error would quote the URL, password included.
    let https = reqwest::Proxy::https(proxy.expose()).map_err(|_| ClientError::BadProxy {
        var,
        detail: "the HTTP client cannot use it".into(),
    })?;
    Ok(builder.proxy(https))
}

/// The process environment, for [`proxy::route`]. A value that is not UTF-8
/// is kept, lossily, so that it is refused as malformed rather than skipped.
fn env_var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Percent-encodes a path segment or query value (ids are hex; names never
/// reach a path, but a hostile config must not inject `/` or `?`).
fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

fn classify(
    method: &'static str,
    path: &str,
    e: reqwest::Error,
    after: Duration,
    proxy: Option<&'static str>,
) -> ClientError {
    if let Some(detail) = unreachable(&e, proxy) {
        ClientError::Network {
            method,
            path: path.to_string(),
            detail,
        }
    } else if e.is_timeout() {
        ClientError::Timeout {
            method,
            path: path.to_string(),
            after,
        }
    } else {
        let mut detail = e.to_string();
        let mut unknown_issuer = false;
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail = format!("{detail}: {s}");
            unknown_issuer |= is_unknown_issuer(s);
            source = s.source();
        }
        if unknown_issuer {
            detail.push_str(
                " (the server's certificate chains to no trusted root: add its CA with ca_file in [r4] or SSL_CERT_FILE)",
            );
        }
        ClientError::Network {
            method,
            path: path.to_string(),
            detail,
        }
    }
}

/// A name that does not resolve or a connection the network refuses, in
/// words: which host, what failed, what to check. `None` for anything else
/// (TLS, HTTP), which keeps the library's own chain of messages.
fn unreachable(e: &reqwest::Error, proxy: Option<&'static str>) -> Option<String> {
    if !e.is_connect() {
        return None;
    }
    let (target, check) = match proxy {
        Some(var) => (
            format!("the proxy of {var}"),
            format!("check {var} (and NO_PROXY) and the network"),
        ),
        None => (
            e.url().map_or_else(
                || "the server".to_string(),
                |u| {
                    let host = u.host_str().unwrap_or("?");
                    match u.port_or_known_default() {
                        Some(port) => format!("{host}:{port}"),
                        None => host.to_string(),
                    }
                },
            ),
            "check base_url in [r4] (or R4_BASE_URL) and the network".to_string(),
        ),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(dns) = s.downcast_ref::<dns::DnsError>() {
            return Some(format!("{dns}; {check}"));
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(what) = connect_failure(io, &target) {
                return Some(format!("{what}; {check}"));
            }
        }
        source = s.source();
    }
    e.is_timeout()
        .then(|| format!("connecting to {target} timed out; {check}"))
}

/// What an operating-system error on connect means. TLS errors also reach
/// us as `io::Error`s, but carry no OS error code, so they are left alone.
fn connect_failure(io: &std::io::Error, target: &str) -> Option<String> {
    use std::io::ErrorKind;
    io.raw_os_error()?;
    Some(match io.kind() {
        ErrorKind::ConnectionRefused => {
            format!("connection to {target} refused (nothing listens there)")
        }
        ErrorKind::TimedOut => format!("connecting to {target} timed out"),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            format!("{target} is unreachable from this host")
        }
        _ => format!("cannot connect to {target}: {io}"),
    })
}

/// A TLS failure because the server's chain reaches no trusted root. rustls
/// errors reach us wrapped in `io::Error`s (nested), whose `source()` skips
/// the error they wrap, so those are unwrapped here.
fn is_unknown_issuer(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return is_unknown_issuer(inner);
    }
    matches!(
        e.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))
    )
}

async fn read_limited(
    mut resp: reqwest::Response,
    path: &str,
    limit: usize,
    net: impl Fn(reqwest::Error) -> ClientError,
) -> Result<Vec<u8>, ClientError> {
    let too_large = || ClientError::TooLarge {
        path: path.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // Sized from `Content-Length` (at most `limit`, checked above), so that
    // a large answer is neither regrown nor copied: each doubling of a
    // 1.5 MB body touched fresh pages and the zeroing allocator wiped the
    // old block. A server that claims more than it sends costs at most
    // `limit` bytes (the zeroing allocator wipes the whole block when it is
    // freed), as many as it could send anyway.
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(8192) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(&net)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://r4.dev/api/v1/machine",
            "http://127.0.0.1:8080/api/v1/machine",
            "http://127.9.9.9/x",
            "http://[::1]:1/x",
            "http://localhost:3000",
        ] {
            assert!(check_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://r4.dev/api/v1/machine",
            "http://10.0.0.1/",
            "http://localhost.evil.com/",
            "ftp://127.0.0.1/",
            "not a url",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_is_capped_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let net = ClientError::Network {
            method: "GET",
            path: "/x".into(),
            detail: "reset".into(),
        };
        for attempt in 1..10 {
            assert!(p.delay(attempt, &net) <= p.cap);
        }
        let limited = ClientError::Api {
            method: "GET",
            path: "/x".into(),
            status: 429,
            code: "rate_limit_exceeded".into(),
            message: String::new(),
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(p.delay(1, &limited), p.retry_after_cap);
        assert!(limited.is_transient());
    }

    #[test]
    fn options_debug_redacts_the_key() {
        let o = ClientOptions::new("https://x", Secret::new(b"rk_a.very-secret".to_vec()));
        assert!(!format!("{o:?}").contains("very-secret"));
    }
}
