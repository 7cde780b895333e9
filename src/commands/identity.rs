//! `keygen`, `register`, `whoami`: the agent's key and what R4 knows of it.

use std::io::Write;
use std::path::Path;

use crate::client::Client;
use crate::contract::crypto::PrivateKey;
use crate::error::AppError;
use crate::startup::settings;
use crate::startup::Startup;
use crate::ui;

/// `keygen`: a new RSA key, written 0600, never over an existing file.
pub fn keygen(startup: &Startup, out: &Path, bits: usize) -> Result<u8, AppError> {
    use std::os::unix::fs::OpenOptionsExt;
    let key = PrivateKey::generate(bits).map_err(|e| AppError::Usage(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| {
            AppError::Usage(format!(
                "cannot create {}: {e}{}",
                out.display(),
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    " (refusing to overwrite an existing key)"
                } else {
                    ""
                }
            ))
        })?;
    let pem = key.to_pkcs8_pem();
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| AppError::Write {
            path: out.to_path_buf(),
            source,
        })?;
    let shown = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    startup.ui.tell(&format!(
        "wrote a {bits}-bit RSA key to {} (mode 0600); next: export R4_PRIVATE_KEY_FILE={} (or set private_key_file in [r4]), then run `r4-exec register`",
        out.display(),
        shown.display()
    ));
    ui::outln(key.fingerprint());
    Ok(0)
}

/// `register`: the agent's public key, idempotent.
pub fn register(startup: &Startup) -> Result<u8, AppError> {
    let config = startup.load_config(false)?;
    let (path, client) = startup.agent(config.as_ref())?;
    let key = settings::load_private_key(path)?;
    startup.block_on(async { register_key(&client, &key).await })
}

async fn register_key(client: &Client, key: &PrivateKey) -> Result<u8, AppError> {
    let req = crate::contract::wire::RegisterRequest {
        public_key: key.public().to_pem(),
        rotation: None,
    };
    let resp = client.register(&req).await.map_err(|e| match e.code() {
        Some("rotation_proof_required") => AppError::Client(e).with_hint(
            "a different runtime key is registered for this agent; to replace it, run `r4-exec rotate-key --new-key FILE` with the registered key as R4_PRIVATE_KEY_FILE",
        ),
        Some("key_revoked") => AppError::Client(e)
            .with_hint("this key was revoked; generate a new one with `r4-exec keygen`"),
        _ => AppError::Client(e),
    })?;
    ui::outln(&format!("{} {}", resp.status, resp.fingerprint));
    Ok(0)
}

/// `whoami`: the API key's identity and policy.
pub fn whoami(startup: &Startup, json: bool) -> Result<u8, AppError> {
    let config = startup.load_config(false)?;
    let me = startup.block_on(async { Ok(startup.client(config.as_ref())?.me().await?) })?;
    if json {
        ui::out_json(&me);
        return Ok(0);
    }
    match &me.agent {
        Some(a) => ui::outln(&format!("agent     {} ({})", a.name, a.id)),
        None => ui::outln(&format!("agent     (none: {} key)", me.api_key.scope)),
    }
    ui::outln(&format!("org       {} ({})", me.org.name, me.org.id));
    ui::outln(&format!("tenant    {} ({})", me.tenant.name, me.tenant.id));
    ui::outln(&format!(
        "api key   {} scope {}",
        me.api_key.id, me.api_key.scope
    ));
    ui::outln(&format!("policy    {}", me.api_key.permissions.join(", ")));
    match &me.runtime_key.fingerprint {
        Some(fp) if me.runtime_key.registered => ui::outln(&format!("key       {fp}")),
        _ => ui::outln("key       not registered (run `r4-exec register`)"),
    }
    for w in &me.warnings {
        ui::outln(&format!("warning   {w}"));
    }
    Ok(0)
}
