//! `POST /vault/public-key` (contract §7): registering, re-registering and
//! rotating an agent's runtime key, with every answer of §7. The rotation
//! proof and each re-wrapped key are checked with the contract's own
//! canonical JSON and signature verification.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use r4_contract::crypto::PublicKey;
use r4_contract::rotation;
use r4_contract::wire::{kind, RegisterRequest, RegisterResponse, Rotation, WRAP_ALGORITHM};
use r4_contract::VaultModel;

use crate::error::ApiError;
use crate::world::{runtime_key_id, World};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

fn answer(key: &PublicKey, status: &str) -> RegisterResponse {
    RegisterResponse {
        encryption_key_id: runtime_key_id(key.fingerprint()),
        fingerprint: key.fingerprint().to_string(),
        status: status.to_string(),
    }
}

/// Handles a registration by `agent_id` with request body `body`.
pub(crate) fn register(
    w: &mut World,
    agent_id: &str,
    body: &[u8],
) -> Result<(StatusCode, RegisterResponse), ApiError> {
    let req: RegisterRequest = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("The request body is not a valid registration: {e}")))?;
    let key = PublicKey::from_pem(&req.public_key).map_err(|e| {
        ApiError::bad_request(
            "invalid_public_key",
            format!("publicKey must be an RSA SPKI PEM of at least 2048 bits: {e}"),
        )
    })?;
    let fp = key.fingerprint().to_string();
    if let Some(rec) = w.keys.get(&fp) {
        if !rec.active {
            return Err(ApiError::conflict(
                "key_revoked",
                "This public key was revoked; generate and register a new one.",
            ));
        }
        if rec.owner_id != agent_id {
            return Err(invalid("This public key is registered to another owner."));
        }
    }
    let agent = w.agent(agent_id).ok_or_else(ApiError::unauthorized)?;
    let Some(current) = agent.key.clone() else {
        w.register_key(agent_id, key.clone());
        return Ok((StatusCode::CREATED, answer(&key, "registered")));
    };
    if current == fp {
        return Ok((StatusCode::OK, answer(&key, "unchanged")));
    }
    let rotation = match req.rotation {
        Some(r) if r.previous_fingerprint == current => r,
        _ => {
            return Err(ApiError::conflict(
                "rotation_proof_required",
                format!(
                    "A different runtime key ({current}) is registered; replacing it needs a \
                     rotation proof signed by that key."
                ),
            ))
        }
    };
    let previous = w
        .keys
        .get(&current)
        .map(|r| r.public.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "lost key",
            )
        })?;
    check_rotation(w, agent_id, &previous, &key, &rotation)?;
    w.rotate_key(agent_id, key.clone(), rotation.rewrapped_vault_keys);
    Ok((StatusCode::OK, answer(&key, "rotated")))
}

/// The proof and batch checks of §7 (`400 invalid_request`, `400 rewrap_incomplete`).
fn check_rotation(
    w: &World,
    agent_id: &str,
    previous: &PublicKey,
    new: &PublicKey,
    rotation: &Rotation,
) -> Result<(), ApiError> {
    let statement = rotation::statement(
        &rotation.previous_fingerprint,
        new.fingerprint(),
        &rotation.issued_at,
    );
    if !rotation::verify_proof(previous, &statement, &rotation.proof) {
        return Err(invalid(
            "The rotation proof does not verify with the previously registered key.",
        ));
    }
    let mut covered = BTreeSet::new();
    for wk in &rotation.rewrapped_vault_keys {
        let b = wk.body();
        let vault = w.vault(&b.vault_id);
        let malformed = b.kind != kind::WRAPPED_KEY
            || b.algorithm != WRAP_ALGORITHM
            || vault.is_some_and(|v| {
                v.encryption_key_id != b.encryption_key_id || v.dek_version != b.dek_version
            })
            || base64_len(&b.wrapped_dek) != Some(new.bits() / 8);
        if malformed {
            return Err(invalid(format!(
                "Re-wrapped key for vault {} is malformed.",
                b.vault_id
            )));
        }
        if b.recipient_fingerprint != new.fingerprint() {
            return Err(invalid(format!(
                "Re-wrapped key for vault {} is not wrapped to the new key.",
                b.vault_id
            )));
        }
        if wk.signer_key_id() != new.fingerprint()
            || !new.verify_pss(&wk.signed_bytes(), wk.signature())
        {
            return Err(invalid(format!(
                "Re-wrapped key for vault {} is not signed by the new key.",
                b.vault_id
            )));
        }
        if !covered.insert(b.vault_id.clone()) {
            return Err(invalid(format!(
                "Vault {} appears twice in rewrappedVaultKeys.",
                b.vault_id
            )));
        }
    }
    let needed: BTreeSet<String> = w
        .vaults
        .iter()
        .filter(|v| v.model == VaultModel::V3 && v.wrapped.contains_key(agent_id))
        .map(|v| v.id.clone())
        .collect();
    if covered != needed {
        let missing: Vec<&String> = needed.difference(&covered).collect();
        let extra: Vec<&String> = covered.difference(&needed).collect();
        return Err(ApiError::bad_request(
            "rewrap_incomplete",
            format!(
                "rewrappedVaultKeys must cover exactly the vaults with wrapped access \
                 (missing: {missing:?}, not expected: {extra:?})."
            ),
        ));
    }
    Ok(())
}

/// Decoded length of a `b64` string, if it is one.
fn base64_len(text: &str) -> Option<usize> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .map(|b| b.len())
}
