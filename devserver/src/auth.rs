//! Authentication and authorization of machine API requests (contract §1):
//! the API key from `X-API-Key` or `Authorization: ApiKey`, then the scope
//! check, then the key's machine policy — in that order, before any lookup,
//! so a refused request never reveals whether an object exists.

use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::seed::{split_api_key, Scope};
use crate::world::{Agent, World};

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `GET /me`: `machine.me.read`.
    Me,
    /// `GET /project…`: `machine.project.read`.
    Project,
    /// Vault metadata reads: AGENT scope, `machine.vault.read`.
    VaultRead,
    /// Wrapped keys, item details, fields, sync, env: AGENT scope,
    /// `machine.vault.read` and `machine.vault.secret.read`.
    VaultSecret,
    /// `POST /vault/public-key`: AGENT only, `machine.vault.secret.read`.
    PublicKey,
    /// `GET /vault/encryption-key`: AGENT only, both vault permissions.
    LegacyKey,
}

const VAULT_READ: &str = "machine.vault.read";
const VAULT_SECRET: &str = "machine.vault.secret.read";

impl Access {
    fn permissions(self) -> &'static [&'static str] {
        match self {
            Access::Me => &["machine.me.read"],
            Access::Project => &["machine.project.read"],
            Access::VaultRead => &[VAULT_READ],
            Access::PublicKey => &[VAULT_SECRET],
            Access::VaultSecret | Access::LegacyKey => &[VAULT_READ, VAULT_SECRET],
        }
    }
}

/// Whether `granted` includes the atomic permission `needed`
/// (`machine.all` includes everything; `machine.<area>.all` its area).
fn grants(granted: &str, needed: &str) -> bool {
    if granted == needed || granted == "machine.all" {
        return true;
    }
    match granted.strip_suffix(".all") {
        Some(area) => needed
            .strip_prefix(area)
            .is_some_and(|rest| rest.starts_with('.')),
        None => false,
    }
}

/// Whether `agent`'s policy covers everything `access` needs.
pub(crate) fn allows(agent: &Agent, access: Access) -> bool {
    access
        .permissions()
        .iter()
        .all(|need| agent.permissions.iter().any(|g| grants(g, need)))
}

/// The API key of a request: `X-API-Key`, else `Authorization: ApiKey`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    let auth = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, key) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("ApiKey").then(|| key.trim())
}

/// Constant-time comparison of two secrets.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The caller, or `401 unauthorized`.
pub(crate) fn authenticate<'w>(w: &'w World, headers: &HeaderMap) -> Result<&'w Agent, ApiError> {
    let (access, secret) = presented(headers)
        .and_then(split_api_key)
        .ok_or_else(ApiError::unauthorized)?;
    w.agents
        .iter()
        .find(|a| a.access == access && same(&a.secret, secret))
        .ok_or_else(ApiError::unauthorized)
}

/// Scope then policy checks of §1.
pub(crate) fn authorize(agent: &Agent, access: Access) -> Result<(), ApiError> {
    match access {
        Access::PublicKey | Access::LegacyKey if agent.scope != Scope::Agent => {
            return Err(ApiError::forbidden(
                "agent_scope_required",
                "This endpoint is only available for AGENT-scoped API keys.",
            ));
        }
        Access::VaultRead | Access::VaultSecret if agent.scope != Scope::Agent => {
            return Err(ApiError::forbidden(
                "forbidden",
                format!(
                    "{}-scoped API keys cannot use zero-trust vault endpoints; use an AGENT key.",
                    agent.scope.as_str()
                ),
            ));
        }
        _ => {}
    }
    for need in access.permissions() {
        if !agent.permissions.iter().any(|g| grants(g, need)) {
            return Err(ApiError::forbidden(
                "api_key_permission_denied",
                format!("This API key's machine policy does not include {need}."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_expansion() {
        assert!(grants("machine.all", VAULT_SECRET));
        assert!(grants("machine.vault.all", VAULT_SECRET));
        assert!(grants("machine.vault.all", VAULT_READ));
        assert!(!grants("machine.vault.all", "machine.project.read"));
        assert!(!grants("machine.vault.read", VAULT_SECRET));
        assert!(grants("machine.project.all", "machine.project.read"));
        assert!(!grants("machine.vaultx.all", VAULT_READ));
    }

    #[test]
    fn reads_the_key_from_either_header() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "ApiKey rk_a.b".parse().unwrap());
        assert_eq!(presented(&h), Some("rk_a.b"));
        h.insert("x-api-key", "rk_c.d".parse().unwrap());
        assert_eq!(presented(&h), Some("rk_c.d"));
        let mut bearer = HeaderMap::new();
        bearer.insert("authorization", "Bearer rk_a.b".parse().unwrap());
        assert_eq!(presented(&bearer), None);
    }
}
