//! Where r4-exec finds its configuration and credentials, and in what order:
//! flags, then its own environment variables, then `r4.toml`, then defaults.
//! This is the only module that reads the process environment for settings.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::{Config, DEFAULT_BASE_URL};
use crate::contract::crypto::{PrivateKey, PublicKey};
use crate::contract::directory::TrustPolicy;
use crate::contract::Secret;
use crate::error::AppError;
use crate::fallback;

pub use crate::vars;

/// The config file path: `--config`, else `R4_CONFIG`, else `./r4.toml`.
/// The flag is `true` when the path was given explicitly.
pub fn config_path(flag: Option<&Path>) -> (PathBuf, bool) {
    if let Some(p) = flag {
        return (p.to_path_buf(), true);
    }
    match std::env::var_os(vars::CONFIG) {
        Some(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => (PathBuf::from("r4.toml"), false),
    }
}

/// Connection settings resolved from every source.
pub struct Connection {
    /// API base URL.
    pub base_url: String,
    /// API key.
    pub api_key: Secret,
    /// Extra CA PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// Warnings to print once.
    pub warnings: Vec<String>,
}

fn env_nonempty(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// Reads a key, API-key, CA or log-key file ([`crate::localfile`]: a
/// regular file only, capped).
pub fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, AppError> {
    use crate::localfile::{cap, Follow};
    crate::localfile::read(path, cap::KEY, Follow::Yes)
        .map(|mut bytes| std::mem::take(&mut *bytes))
        .map_err(|source| AppError::ReadFile {
            what,
            path: path.to_path_buf(),
            source,
        })
}

/// Base URL: `R4_BASE_URL`, else `[r4] base_url`, else the public service.
pub fn base_url(config: Option<&Config>) -> String {
    if let Some(v) = env_nonempty(vars::BASE_URL) {
        return v.to_string_lossy().into_owned();
    }
    config
        .and_then(|c| c.r4.base_url.clone())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
}

/// The API key: `R4_API_KEY`, else `[r4] api_key_file`, else
/// `$CREDENTIALS_DIRECTORY/r4-api-key`. Trimmed; empty is an error.
pub fn api_key(config: Option<&Config>, warnings: &mut Vec<String>) -> Result<Secret, AppError> {
    if let Some(v) = std::env::var_os(vars::API_KEY) {
        return nonempty(v.into_encoded_bytes(), "R4_API_KEY is set but empty");
    }
    let file = config
        .and_then(|c| c.r4.api_key_file.clone())
        .or_else(|| credential(vars::CREDENTIAL_NAME));
    let Some(path) = file else {
        return Err(AppError::ApiKey(
            "no API key: set R4_API_KEY, or api_key_file in [r4], or pass it as the systemd credential r4-api-key".into(),
        ));
    };
    warn_if_shared(&path, warnings);
    let bytes = zeroize::Zeroizing::new(read("API key file", &path)?);
    nonempty(
        bytes.to_vec(),
        &format!("API key file {} is empty", path.display()),
    )
}

fn nonempty(bytes: Vec<u8>, message: &str) -> Result<Secret, AppError> {
    let bytes = zeroize::Zeroizing::new(bytes);
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(AppError::ApiKey(message.to_string()));
    }
    Ok(Secret::new(trimmed.as_bytes().to_vec()))
}

fn warn_if_shared(path: &Path, warnings: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            warnings.push(format!(
                "{} is readable by other users; chmod 600 it",
                path.display()
            ));
        }
    }
}

/// Connection settings for any subcommand that talks to the API.
pub fn connection(config: Option<&Config>) -> Result<Connection, AppError> {
    let mut warnings = Vec::new();
    let api_key = api_key(config, &mut warnings)?;
    let ca_pem = match config.and_then(|c| c.r4.ca_file.as_deref()) {
        Some(p) => Some(read("ca_file", p)?),
        None => None,
    };
    Ok(Connection {
        base_url: base_url(config),
        api_key,
        ca_pem,
        warnings,
    })
}

/// The private key path: `R4_PRIVATE_KEY_FILE`, else `[r4] private_key_file`,
/// else `$CREDENTIALS_DIRECTORY/r4-private-key` (systemd `LoadCredential=`).
pub fn private_key_path(config: Option<&Config>) -> Result<PathBuf, AppError> {
    env_nonempty(vars::PRIVATE_KEY_FILE)
        .map(PathBuf::from)
        .or_else(|| config.and_then(|c| c.r4.private_key_file.clone()))
        .or_else(|| credential(vars::PRIVATE_KEY_CREDENTIAL))
        .ok_or_else(|| {
            AppError::Usage(
                "no private key: set R4_PRIVATE_KEY_FILE or private_key_file in [r4], or pass it as the systemd credential r4-private-key (create one with `r4-exec keygen`)".into(),
            )
        })
}

/// `$CREDENTIALS_DIRECTORY/NAME`, when it exists.
fn credential(name: &str) -> Option<PathBuf> {
    env_nonempty(vars::CREDENTIALS_DIRECTORY)
        .map(|d| PathBuf::from(d).join(name))
        .filter(|p| p.exists())
}

/// Loads the agent private key.
pub fn private_key(config: Option<&Config>) -> Result<PrivateKey, AppError> {
    load_private_key(private_key_path(config)?)
}

/// Loads the agent private key from `path`.
pub fn load_private_key(path: PathBuf) -> Result<PrivateKey, AppError> {
    let pem = zeroize::Zeroizing::new(read("private key", &path)?);
    PrivateKey::from_pem(&pem).map_err(|source| AppError::Key {
        what: "private key",
        path,
        source,
    })
}

/// The trust policy: `$R4_TRUST_SIGNERS` (comma- or space-separated),
/// else `[trust] signers`; `$R4_LOG_PUBLIC_KEY_FILE`, else `[trust]
/// log_public_key_file` — environment first, as for every other setting,
/// so that env-only deployments (Procfile `.env`, `podman -e`, Kubernetes
/// env) can pin. Both are r4-exec's own variables: COMMAND never sees them,
/// and no name a vault writer chooses can set them (`R4_*`).
pub fn trust(config: &Config) -> Result<TrustPolicy, AppError> {
    let log_file = env_nonempty(vars::LOG_PUBLIC_KEY_FILE)
        .map(PathBuf::from)
        .or_else(|| config.trust.log_public_key_file.clone());
    let log_key = match &log_file {
        Some(path) => {
            let pem = read("log public key", path)?;
            let text = String::from_utf8_lossy(&pem);
            Some(PublicKey::from_pem(&text).map_err(|source| AppError::Key {
                what: "log public key",
                path: path.clone(),
                source,
            })?)
        }
        None => None,
    };
    let (signers, origin) = match env_nonempty(vars::TRUST_SIGNERS) {
        Some(list) => (
            list.to_string_lossy()
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            vars::TRUST_SIGNERS.to_owned(),
        ),
        None => (
            config.trust.signers.clone(),
            format!("{}: [trust] signers", config.path.display()),
        ),
    };
    for s in &signers {
        let ok = s.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if !ok {
            return Err(AppError::Usage(format!(
                "{origin}: \"{}\" is not a fingerprint (sha256:<64 lowercase hex>)",
                crate::ui::escape(s)
            )));
        }
    }
    Ok(TrustPolicy {
        pinned_signers: signers,
        log_key,
    })
}

/// The fallback copy (`docs/fallback.md`): `R4_FALLBACK_FILE`, else
/// `[fallback] path`; `R4_FALLBACK_MAX_AGE`, else `[fallback] max_age`,
/// else 24 hours. `None` without a path: the copy is opt-in. A `max_age`
/// without a path is an error, not a silent no-op.
pub fn fallback(config: Option<&Config>) -> Result<Option<fallback::CopyOptions>, AppError> {
    let raw = config.map(|c| &c.fallback);
    let path = env_nonempty(vars::FALLBACK_FILE)
        .map(PathBuf::from)
        .or_else(|| raw.and_then(|f| f.path.clone()));
    let (max_age, from) = match env_nonempty(vars::FALLBACK_MAX_AGE) {
        Some(v) => (
            Some(v.to_string_lossy().into_owned()),
            vars::FALLBACK_MAX_AGE,
        ),
        None => (raw.and_then(|f| f.max_age.clone()), "[fallback] max_age"),
    };
    let prefer = match env_nonempty(vars::FALLBACK_PREFER) {
        Some(v) => Some(parse_switch(&v.to_string_lossy()).ok_or_else(|| {
            AppError::Usage(format!(
                "{} must be 1, true, yes, 0, false or no",
                vars::FALLBACK_PREFER
            ))
        })?),
        None => raw.and_then(|f| f.prefer),
    };
    let Some(path) = path else {
        let set = max_age
            .as_ref()
            .map(|_| from)
            .or(prefer.is_some().then_some("[fallback] prefer"));
        return match set {
            Some(from) => Err(AppError::Usage(format!(
                "{from} is set but no fallback path is: set {} or [fallback] path",
                vars::FALLBACK_FILE
            ))),
            None => Ok(None),
        };
    };
    let max_age = match max_age {
        Some(text) => {
            fallback::parse_max_age(&text).map_err(|e| AppError::Usage(format!("{from}: {e}")))?
        }
        None => fallback::DEFAULT_MAX_AGE,
    };
    Ok(Some(fallback::CopyOptions {
        path,
        max_age,
        prefer: prefer.unwrap_or(false),
    }))
}

/// A yes/no setting from the environment.
fn parse_switch(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}
