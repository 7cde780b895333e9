//! A client of the OCI distribution API, for one thing: an image's config
//! (Entrypoint and Cmd) and the digest of what its tag names.
//!
//! Anonymous, Bearer token (`WWW-Authenticate: Bearer realm=…`, a token
//! from the realm for `repository:NAME:pull`) and Basic auth, credentials
//! from the auth files of podman and docker. HTTPS always, except for the
//! hosts named by `--insecure-registry`. Every manifest and config blob is
//! checked against its digest. Redirects are followed by hand: the
//! `Authorization` header never leaves the registry's host, and a redirect
//! to plain http is refused unless its host is an insecure one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use ureq::Body;

use crate::auth::{self, Challenge, Credentials};
use crate::image::{self, digest_of, Manifest, Platform, Reference};
use crate::wrap::{Config, ImageInfo, Resolve};
use crate::yaml::printable;

/// The most a manifest or config blob may be.
const MAX_BODY: u64 = 8 << 20;
/// The most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// How to reach registries.
pub struct Settings {
    /// `HOST:PORT`s spoken to in plain HTTP.
    pub insecure: Vec<String>,
    /// PEM CA certificates trusted instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// The auth files, in the order they are read.
    pub auth_files: Vec<PathBuf>,
    /// The platforms whose configs are read.
    pub platforms: Vec<Platform>,
}

/// The registry client, with the tokens and answers of this run.
pub struct Registry {
    agent: ureq::Agent,
    settings: Settings,
    /// `Authorization` values by (host, repository).
    auth: HashMap<(String, String), String>,
    cache: HashMap<String, ImageInfo>,
}

impl Registry {
    /// A client with `settings`; fails if the CA file cannot be read.
    pub fn new(settings: Settings) -> Result<Registry, String> {
        let roots = match &settings.ca_file {
            None => RootCerts::WebPki,
            Some(file) => {
                let pem = std::fs::read(file)
                    .map_err(|e| format!("--registry-ca {}: {e}", file.display()))?;
                let mut certs = Vec::new();
                for item in ureq::tls::parse_pem(&pem) {
                    if let Ok(ureq::tls::PemItem::Certificate(cert)) = item {
                        certs.push(cert);
                    }
                }
                if certs.is_empty() {
                    return Err(format!(
                        "--registry-ca {}: no PEM certificate in it",
                        file.display()
                    ));
                }
                RootCerts::Specific(Arc::new(certs))
            }
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(concat!("kubectl-r4/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Registry {
            agent: ureq::Agent::new_with_config(config),
            settings,
            auth: HashMap::new(),
            cache: HashMap::new(),
        })
    }

    fn is_insecure(&self, host: &str) -> bool {
        self.settings.insecure.iter().any(|h| h == host)
    }

    /// The image's configs for every platform and its pinned name.
    fn look_up(&mut self, r: &Reference, written: &str) -> Result<ImageInfo, String> {
        let (bytes, content_type) =
            self.get(r, &format!("manifests/{}", r.manifest_ref()), image::ACCEPT)?;
        let digest = digest_of(&bytes);
        if let Some(want) = &r.digest {
            if *want != digest {
                return Err(format!(
                    "registry {} served a manifest whose digest is {digest}, not {want}",
                    r.registry
                ));
            }
        }
        let platforms = self.settings.platforms.clone();
        let mut configs = Vec::new();
        match image::parse_manifest(&bytes, content_type.as_deref())
            .map_err(|e| format!("registry {}: {e}", r.registry))?
        {
            Manifest::Index(entries) => {
                for platform in &platforms {
                    let entry = image::select(&entries, platform)?.to_owned();
                    let (bytes, content_type) =
                        self.get(r, &format!("manifests/{entry}"), image::ACCEPT)?;
                    self.check(r, &bytes, &entry, "manifest")?;
                    match image::parse_manifest(&bytes, content_type.as_deref())
                        .map_err(|e| format!("registry {}: {platform}: {e}", r.registry))?
                    {
                        Manifest::Image { config } => {
                            let (config, _) = self.config(r, &config)?;
                            configs.push((platform.clone(), config));
                        }
                        Manifest::Index(_) => {
                            return Err(format!(
                                "its {platform} entry is an index itself, which is not supported"
                            ))
                        }
                    }
                }
            }
            Manifest::Image { config } => {
                let (config, have) = self.config(r, &config)?;
                for platform in &platforms {
                    if let Some(have) = &have {
                        if !image::serves(have, platform) {
                            return Err(format!(
                                "it is a single {have} image (not an index), and --platform names {platform}"
                            ));
                        }
                    }
                    configs.push((platform.clone(), config.clone()));
                }
            }
        }
        let pinned = if r.digest.is_some() {
            written.to_owned()
        } else {
            r.pinned(&digest)
        };
        Ok(ImageInfo { pinned, configs })
    }

    fn check(&self, r: &Reference, bytes: &[u8], want: &str, what: &str) -> Result<(), String> {
        let got = digest_of(bytes);
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "registry {} served a {what} whose digest is {got}, not {want}",
                r.registry
            ))
        }
    }

    fn config(
        &mut self,
        r: &Reference,
        digest: &str,
    ) -> Result<(Config, Option<Platform>), String> {
        let (bytes, _) = self.get(r, &format!("blobs/{digest}"), "*/*")?;
        self.check(r, &bytes, digest, "config blob")?;
        image::parse_config(&bytes).map_err(|e| format!("registry {}: {e}", r.registry))
    }

    /// GET `/v2/REPOSITORY/PATH` of `r`'s registry, authenticating once
    /// when asked to; the body and its `Content-Type`.
    fn get(
        &mut self,
        r: &Reference,
        path: &str,
        accept: &str,
    ) -> Result<(Vec<u8>, Option<String>), String> {
        let host = r.api_host().to_owned();
        let scheme = if self.is_insecure(&host) {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{host}/v2/{}/{path}", r.repository);
        let key = (host.clone(), r.repository.clone());
        let mut authorized = false;
        loop {
            let auth = self.auth.get(&key).cloned();
            let mut resp = self.fetch(&url, accept, auth.as_deref(), &r.registry)?;
            let status = resp.status();
            if status.is_success() {
                let content_type = header(&resp, "content-type");
                let bytes = resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_BODY)
                    .read_to_vec()
                    .map_err(|e| format!("registry {}: reading {path}: {e}", r.registry))?;
                return Ok((bytes, content_type));
            }
            if status.as_u16() == 401 && !authorized {
                authorized = true;
                let challenge = header(&resp, "www-authenticate");
                let value = self.authorize(r, challenge.as_deref())?;
                self.auth.insert(key.clone(), value);
                continue;
            }
            let mut message = format!(
                "registry {} answered {} for {}",
                r.registry,
                status_text(status.as_u16()),
                printable(path, 100)
            );
            if let Some(detail) = error_detail(&mut resp) {
                message.push_str(&format!(" ({detail})"));
            }
            if status.as_u16() == 401 || status.as_u16() == 403 {
                message.push_str(&format!("; credentials tried: {}", self.tried(r)?));
            }
            return Err(message);
        }
    }

    /// What the auth files hold for `r`, for a message: the entry, or
    /// none and the files read.
    fn tried(&self, r: &Reference) -> Result<String, String> {
        let found = auth::lookup(&self.settings.auth_files, &r.registry, &r.repository)?;
        Ok(match found.credentials {
            Some(c) => c.source,
            None => none_found(&r.registry, &found.notes, &self.settings.auth_files),
        })
    }

    /// The `Authorization` value for a 401's challenge.
    fn authorize(&self, r: &Reference, challenge: Option<&str>) -> Result<String, String> {
        let found = auth::lookup(&self.settings.auth_files, &r.registry, &r.repository)?;
        let creds = found.credentials;
        let none = || none_found(&r.registry, &found.notes, &self.settings.auth_files);
        match challenge.and_then(auth::parse_challenge) {
            Some(Challenge::Basic) => match creds {
                Some(c) => Ok(c.basic()),
                None => Err(format!(
                    "registry {} asks for a password (Basic auth); credentials tried: {}",
                    r.registry,
                    none()
                )),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.token(r, &realm, service.as_deref(), creds.as_ref(), &none)?;
                Ok(format!("Bearer {token}"))
            }
            None => Err(format!(
                "registry {} answered 401 Unauthorized without a Bearer or Basic challenge",
                r.registry
            )),
        }
    }

    /// A pull token for `r` from the token server at `realm`.
    fn token(
        &self,
        r: &Reference,
        realm: &str,
        service: Option<&str>,
        creds: Option<&Credentials>,
        none: &dyn Fn() -> String,
    ) -> Result<String, String> {
        let shown = printable(realm, 200);
        let realm_host = url_host(realm).ok_or_else(|| {
            format!(
                "registry {}: token realm {shown} is not an http(s) URL",
                r.registry
            )
        })?;
        if realm.starts_with("http://") && !self.is_insecure(realm_host) {
            return Err(format!(
                "registry {}: token realm {shown} is plain http (allowed only for an --insecure-registry host)",
                r.registry
            ));
        }
        let mut url = realm.to_owned();
        url.push(if realm.contains('?') { '&' } else { '?' });
        if let Some(service) = service {
            url.push_str(&format!("service={}&", encode(service)));
        }
        url.push_str(&format!(
            "scope={}",
            encode(&format!("repository:{}:pull", r.repository))
        ));
        let basic = creds.map(Credentials::basic);
        let mut resp = self.fetch(&url, "application/json", basic.as_deref(), realm_host)?;
        let status = resp.status().as_u16();
        let tried = || creds.map_or_else(none, |c| c.source.clone());
        if status != 200 {
            return Err(format!(
                "the token server {shown} of registry {} answered {}; credentials tried: {}",
                r.registry,
                status_text(status),
                tried()
            ));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| format!("the token server {shown}: {e}"))?;
        let json: Value = serde_json::from_slice(&body)
            .map_err(|_| format!("the token server {shown} answered something that is not JSON"))?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .ok_or_else(|| format!("the token server {shown} answered no token"))
    }

    /// One GET, following redirects by hand. `auth` goes to `origin` only.
    fn fetch(
        &self,
        url: &str,
        accept: &str,
        auth: Option<&str>,
        origin: &str,
    ) -> Result<Response<Body>, String> {
        let origin_host = url_host(url).unwrap_or(origin).to_owned();
        let mut url = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let host = url_host(&url).unwrap_or("").to_owned();
            let mut req = self.agent.get(&url).header("Accept", accept);
            if let Some(auth) = auth.filter(|_| host == origin_host) {
                req = req.header("Authorization", auth);
            }
            let resp = req.call().map_err(|e| {
                format!(
                    "cannot reach registry {origin} ({}): {e}",
                    printable(&strip_query(&url), 200)
                )
            })?;
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let location = header(&resp, "location")
                .ok_or_else(|| format!("registry {origin} redirected without a Location"))?;
            let next = join(&url, &location).ok_or_else(|| {
                format!(
                    "registry {origin} redirected to {}",
                    printable(&location, 200)
                )
            })?;
            if next.starts_with("http://") && !self.is_insecure(url_host(&next).unwrap_or("")) {
                return Err(format!(
                    "registry {origin} redirected to plain http ({}), allowed only for an --insecure-registry host",
                    printable(&strip_query(&next), 200)
                ));
            }
            url = next;
        }
        Err(format!(
            "registry {origin}: more than {MAX_REDIRECTS} redirects"
        ))
    }
}

impl Resolve for Registry {
    fn resolve(&mut self, image: &str) -> Result<ImageInfo, String> {
        if let Some(info) = self.cache.get(image) {
            return Ok(info.clone());
        }
        let r = Reference::parse(image)?;
        let info = self
            .look_up(&r, image)
            .map_err(|e| format!("image {}: {e}", printable(image, 256)))?;
        self.cache.insert(image.to_owned(), info.clone());
        Ok(info)
    }
}

fn none_found(registry: &str, notes: &[String], files: &[PathBuf]) -> String {
    let read = if notes.is_empty() {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        format!("no auth file found (looked for: {})", names.join(", "))
    } else {
        format!("read: {}", notes.join("; "))
    };
    format!("none (no entry for {registry} in the auth files; {read})")
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn status_text(code: u16) -> String {
    let reason = ureq::http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{code} {reason}").trim_end().to_owned()
}

/// The first error of a registry's JSON error body: `CODE: message`,
/// control characters escaped.
fn error_detail(resp: &mut Response<Body>) -> Option<String> {
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .ok()?;
    let json: Value = serde_json::from_slice(&body).ok()?;
    let first = json.get("errors")?.as_array()?.first()?;
    let code = first.get("code").and_then(Value::as_str).unwrap_or("");
    let message = first.get("message").and_then(Value::as_str).unwrap_or("");
    Some(printable(&format!("{code}: {message}"), 200).into_owned())
}

/// The `host[:port]` of an http(s) URL (no user info accepted).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    (!host.is_empty() && !host.contains('@')).then_some(host)
}

fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or("").to_owned()
}

/// A redirect's `Location` resolved against `base`: absolute, or an
/// absolute path on the same origin.
pub fn join(base: &str, location: &str) -> Option<String> {
    if location.starts_with("https://") || location.starts_with("http://") {
        url_host(location)?;
        return Some(location.to_owned());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        let host = url_host(base)?;
        let scheme = if base.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        return Some(format!("{scheme}://{host}{location}"));
    }
    None
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            url_host("https://r.example:5000/v2/x"),
            Some("r.example:5000")
        );
        assert_eq!(url_host("http://127.0.0.1:9/t?x=1"), Some("127.0.0.1:9"));
        assert_eq!(url_host("https://u:p@evil/"), None);
        assert_eq!(url_host("ftp://x/"), None);
        assert_eq!(
            join("https://r.example/v2/a/blobs/x", "/storage/x?sig=1").as_deref(),
            Some("https://r.example/storage/x?sig=1")
        );
        assert_eq!(
            join("https://r.example/v2/", "https://cdn.example/b").as_deref(),
            Some("https://cdn.example/b")
        );
        assert_eq!(join("https://r.example/v2/", "relative"), None);
        assert_eq!(join("https://r.example/v2/", "//cdn/x"), None);
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
        assert_eq!(status_text(401), "401 Unauthorized");
    }
}
