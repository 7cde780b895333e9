//! Registry credentials: the auth files of podman and docker, and the
//! `WWW-Authenticate` challenges registries answer 401 with. No credential
//! is ever put in a message: messages name the file and the entry.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::yaml::printable;

/// A user name and password from an auth file, and where they came from.
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// `the entry "HOST" of FILE`, for messages.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({})", self.source)
    }
}

impl Credentials {
    /// The `Authorization` value for Basic auth.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The auth files to read, in order: `--authfile` alone if given, else
/// `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json` and
/// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`).
pub fn auth_files(authfile: Option<&Path>) -> Vec<PathBuf> {
    if let Some(file) = authfile {
        return vec![file.to_owned()];
    }
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        files.push(Path::new(&dir).join("containers/auth.json"));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        files.push(Path::new(&dir).join("config.json"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        files.push(Path::new(&home).join(".docker/config.json"));
    }
    files
}

/// The names an `auths` key may give Docker Hub.
fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// An `auths` key reduced to `host[/path]`: scheme and `/v1/`-style API
/// suffixes removed.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    let key = key
        .strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key);
    match key.split_once('/') {
        Some((host, path)) if is_docker_hub(host) => format!("docker.io/{path}"),
        None if is_docker_hub(key) => "docker.io".to_owned(),
        _ => key.to_owned(),
    }
}

/// What the auth files hold for `registry`/`repository`, and the files
/// that were read (for the message when there is none).
#[derive(Debug)]
pub struct Lookup {
    pub credentials: Option<Credentials>,
    /// Files read, and entries that could not be used (credential helpers).
    pub notes: Vec<String>,
}

/// The credentials for `registry` (as the reference names it: `docker.io`
/// for Docker Hub) and `repository`: the first file that has an entry;
/// within it the longest key that matches (`host/ns/repo`, `host/ns`,
/// `host`).
pub fn lookup(files: &[PathBuf], registry: &str, repository: &str) -> Result<Lookup, String> {
    let mut notes = Vec::new();
    for file in files {
        let text = match std::fs::read(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("auth file {}: {e}", file.display())),
        };
        let json: Value = serde_json::from_slice(&text)
            .map_err(|_| format!("auth file {}: not JSON", file.display()))?;
        notes.push(file.display().to_string());
        let Some(auths) = json.get("auths").and_then(Value::as_object) else {
            continue;
        };
        let mut best: Option<(usize, &str, &Value)> = None;
        for (key, entry) in auths {
            let norm = normalize_key(key);
            let full = format!("{registry}/{repository}");
            let matches = norm == registry
                || (full.starts_with(&norm) && full.as_bytes().get(norm.len()) == Some(&b'/'))
                || full == norm;
            if matches && best.is_none_or(|(len, _, _)| norm.len() > len) {
                best = Some((norm.len(), key, entry));
            }
        }
        if let Some((_, key, entry)) = best {
            let source = format!("the entry {:?} of {}", printable(key, 128), file.display());
            return Ok(Lookup {
                credentials: Some(decode(entry, &source)?),
                notes,
            });
        }
        for helper in ["credHelpers", "credsStore"] {
            if json.get(helper).is_some() {
                notes.push(format!(
                    "{} has {helper}, which kubectl-r4 does not run",
                    file.display()
                ));
            }
        }
    }
    Ok(Lookup {
        credentials: None,
        notes,
    })
}

/// An `auths` entry: base64 `user:password` in `auth`, or `username` and
/// `password`.
fn decode(entry: &Value, source: &str) -> Result<Credentials, String> {
    if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("{source}: its auth is not base64"))?;
        let raw = String::from_utf8(raw).map_err(|_| format!("{source}: its auth is not UTF-8"))?;
        let (user, password) = raw
            .split_once(':')
            .ok_or_else(|| format!("{source}: its auth is not user:password"))?;
        return Ok(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
            source: source.to_owned(),
        });
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(user), Some(password)) => Ok(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
            source: source.to_owned(),
        }),
        _ => Err(format!(
            "{source}: it has no auth (identity tokens are not supported)"
        )),
    }
}

/// A challenge of a `WWW-Authenticate` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// `Basic realm=…`.
    Basic,
}

/// Parses a `WWW-Authenticate` value: a scheme and comma-separated
/// `key=value` or `key="quoted value"` parameters. `None` for a scheme
/// other than Bearer and Basic, or a Bearer challenge without a realm.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest)?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

fn parse_params(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer  realm=http://127.0.0.1:1/t , error=\"invalid_token\", scope=\"repository:x:pull,push\""),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None,
                scope: Some("repository:x:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Bearer realm=\"unterminated"), None);
        assert_eq!(
            parse_challenge(r#"Bearer realm="a\"b""#),
            Some(Challenge::Bearer {
                realm: "a\"b".into(),
                service: None,
                scope: None
            })
        );
    }

    #[test]
    fn auth_file_entries() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            &file,
            format!(
                r#"{{"auths":{{"reg.example:5000":{{"auth":"{}"}},"reg.example:5000/team":{{"auth":"{}"}},
                "https://index.docker.io/v1/":{{"auth":"{}"}},"other":{{"username":"u","password":"p"}}}},"credHelpers":{{"x":"y"}}}}"#,
                b64("host:pw1"),
                b64("team:pw2"),
                b64("hub:pw3")
            ),
        )
        .unwrap();
        let files = vec![dir.path().join("missing.json"), file.clone()];
        let c = lookup(&files, "reg.example:5000", "solo/app")
            .unwrap()
            .credentials
            .unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("host", "pw1"));
        assert_eq!(
            c.source,
            format!("the entry \"reg.example:5000\" of {}", file.display())
        );
        assert!(!format!("{c:?}").contains("pw1"));
        let c = lookup(&files, "reg.example:5000", "team/app")
            .unwrap()
            .credentials
            .unwrap();
        assert_eq!(c.user, "team");
        let c = lookup(&files, "docker.io", "library/nginx")
            .unwrap()
            .credentials
            .unwrap();
        assert_eq!(c.user, "hub");
        assert_eq!(c.basic(), format!("Basic {}", b64("hub:pw3")));
        let none = lookup(&files, "nowhere.example", "x").unwrap();
        assert!(none.credentials.is_none());
        assert!(
            none.notes.iter().any(|n| n.contains("credHelpers")),
            "{:?}",
            none.notes
        );
        // The team key does not match a longer name that merely starts with it.
        let c = lookup(&files, "reg.example:5000", "teamx/app")
            .unwrap()
            .credentials
            .unwrap();
        assert_eq!(c.user, "host");
    }

    #[test]
    fn a_bad_auth_entry_names_the_entry_not_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(
            &file,
            r#"{"auths":{"r.example":{"auth":"not base64 s3cr3t!"}}}"#,
        )
        .unwrap();
        let err = lookup(&[file], "r.example", "x").unwrap_err();
        assert!(
            err.contains("\"r.example\"") && !err.contains("s3cr3t"),
            "{err}"
        );
    }
}
