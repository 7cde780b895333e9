//! `r4-exec rotate-key --new-key PATH` (contract §7): unwrap every vault key
//! with the current runtime key, re-wrap it to the new key and sign it with
//! the new key, prove the change with the current key, and post it.
//!
//! Safe to interrupt: the key files are only read; until the server confirms,
//! the registered key is still the current one, so the agent keeps working
//! and the command can simply be run again. If the server applied a rotation
//! whose answer was lost, running it again finds the new key registered and
//! says so.

use crate::client::Client;
use crate::contract::checkpoint::verify_and_unwrap;
use crate::contract::crypto::PrivateKey;
use crate::contract::directory::{verify_directory, TrustPolicy};
use crate::contract::rotation::{rewrap, sign_proof, statement};
use crate::contract::wire::{RegisterRequest, RegisterResponse, Rotation};
use crate::error::AppError;
use crate::resolve::{Failure, Problem};
use crate::startup::{settings, Startup};
use crate::ui;
use std::path::Path;

/// What happened.
#[derive(Debug)]
pub enum Outcome {
    /// The server replaced the key.
    Rotated(RegisterResponse),
    /// The new key was already registered (an earlier run completed).
    AlreadyDone(String),
}

/// Builds the registration request that rotates `current` to `new`.
pub async fn build_request(
    client: &Client,
    current: &PrivateKey,
    new: &PrivateKey,
    trust: &TrustPolicy,
) -> Result<RegisterRequest, AppError> {
    let sync = client.sync(None).await?;
    let issued_at = crate::contract::time::now();
    let mut rewrapped = Vec::new();
    let mut problems = Vec::new();
    for v in &sync.vaults {
        let Some(wk) = &v.wrapped_key else { continue };
        let reference = Some(format!("r4://{}", v.vault.name));
        let result = verify_directory(&v.signers, &v.vault.id, trust).and_then(|dir| {
            verify_and_unwrap(
                wk,
                &v.vault.id,
                v.vault.encryption_key_id.as_deref(),
                current,
                &dir,
            )
            .map(|(dek, _)| dek)
        });
        match result {
            Ok(dek) => rewrapped.push(rewrap(wk.body(), &dek, new, &issued_at)),
            Err(e) => problems.push(Problem {
                name: None,
                reference: reference.clone(),
                failure: Failure::Verify(e),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Resolve(problems));
    }
    let stmt = statement(current.fingerprint(), new.fingerprint(), &issued_at);
    Ok(RegisterRequest {
        public_key: new.public().to_pem(),
        rotation: Some(Rotation {
            previous_fingerprint: current.fingerprint().into(),
            issued_at,
            proof: sign_proof(current, &stmt),
            rewrapped_vault_keys: rewrapped,
        }),
    })
}

/// Rotates the registered runtime key from `current` to `new`.
pub async fn rotate(
    client: &Client,
    current: &PrivateKey,
    new: &PrivateKey,
    trust: &TrustPolicy,
) -> Result<Outcome, AppError> {
    if current.fingerprint() == new.fingerprint() {
        return Err(AppError::Usage("the new key is the current key".into()));
    }
    let me = client.me().await?;
    let registered = me.runtime_key.fingerprint.unwrap_or_default();
    if registered == new.fingerprint() {
        return Ok(Outcome::AlreadyDone(registered));
    }
    if registered != current.fingerprint() {
        return Err(AppError::Usage(format!(
            "the registered runtime key is {}, which is neither the current key {} nor the new key {}",
            if registered.is_empty() { "none" } else { &registered },
            current.fingerprint(),
            new.fingerprint()
        )));
    }
    let req = build_request(client, current, new, trust).await?;
    Ok(Outcome::Rotated(client.register(&req).await?))
}

/// `rotate-key`: re-wrap every vault key to a new runtime key.
pub fn run(startup: &Startup, new_key: &Path) -> Result<u8, AppError> {
    let config = startup.load_config(false)?;
    let (path, client) = startup.agent(config.as_ref())?;
    let current = settings::load_private_key(path)?;
    let pem = zeroize::Zeroizing::new(settings::read("new private key", new_key)?);
    let new = PrivateKey::from_pem(&pem).map_err(|source| AppError::Key {
        what: "new private key",
        path: new_key.to_path_buf(),
        source,
    })?;
    let trust = match &config {
        Some(c) => settings::trust(c)?,
        None => Default::default(),
    };
    let outcome = startup.block_on(async { rotate(&client, &current, &new, &trust).await })?;
    match outcome {
        Outcome::Rotated(resp) => ui::outln(&format!("{} {}", resp.status, resp.fingerprint)),
        Outcome::AlreadyDone(fp) => ui::outln(&format!("unchanged {fp} (already rotated)")),
    }
    startup.ui.tell(&format!(
        "now use {} as the private key (R4_PRIVATE_KEY_FILE or private_key_file); the old key is revoked",
        new_key.display()
    ));
    Ok(0)
}
