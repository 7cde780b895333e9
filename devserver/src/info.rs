//! The unsigned answers: `GET /me` (contract §6.1), projects (seeds/004),
//! and a project's environment (§6.4), whose name-to-value mapping is the
//! server's word and carries no checkpoint.

use std::collections::BTreeMap;

use r4_contract::envname;
use r4_contract::wire::{self, EnvResponse};
use r4_contract::VaultModel;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::faults::FaultKind as F;
use crate::seed::{RProject, Scope};
use crate::views::{tamper_envelope, Ctx};
use crate::world::{Agent, Vault, World};

impl Ctx<'_> {
    /// `GET /vault/env/:projectId` (§6.4).
    pub(crate) fn env(&mut self, project_id: &str) -> Result<EnvResponse, ApiError> {
        let vaults: Vec<&Vault> = self
            .visible_vaults()
            .into_iter()
            .filter(|v| v.project.as_deref() == Some(project_id))
            .collect();
        if vaults.is_empty() {
            return Err(ApiError::not_found(
                "project_not_found",
                "project",
                project_id,
            ));
        }
        let tamper = self.has(F::TamperCiphertext);
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in vaults {
            if v.model == VaultModel::Legacy {
                continue;
            }
            for item in v.live_items() {
                for (i, f) in item.fields.iter().enumerate() {
                    let value = match &f.envelope {
                        Some(env) if tamper && i == 0 => tamper_envelope(env),
                        Some(env) => env.clone(),
                        None => f.value.to_string(),
                    };
                    values
                        .entry(envname::derive(&item.name, &f.name))
                        .or_default()
                        .push(value);
                }
            }
        }
        let mut env = BTreeMap::new();
        let mut collisions = Vec::new();
        for (name, mut vals) in values {
            if vals.len() == 1 {
                env.insert(name, vals.pop().expect("one"));
            } else {
                collisions.push(name);
            }
        }
        Ok(EnvResponse {
            count: env.len() as u64,
            env,
            project_id: project_id.to_string(),
            collisions: (!collisions.is_empty()).then_some(collisions),
        })
    }
}

/// `GET /me` (§6.1).
pub(crate) fn me(w: &World, agent: &Agent) -> wire::Me {
    let is_agent = agent.scope == Scope::Agent;
    let fp = agent.key.clone();
    let mut warnings = Vec::new();
    if is_agent && fp.is_none() {
        warnings.push(
            "No runtime public key is registered: register one with POST /vault/public-key \
             before encrypted vaults can be shared to this agent."
                .to_string(),
        );
    }
    wire::Me {
        api_key: wire::ApiKeyInfo {
            id: agent.api_key_id.clone(),
            scope: agent.scope.as_str().into(),
            permissions: agent.permissions.clone(),
        },
        org: wire::Named {
            id: w.org.0.clone(),
            name: w.org.1.clone(),
        },
        tenant: wire::Named {
            id: w.tenant.0.clone(),
            name: w.tenant.1.clone(),
        },
        agent: is_agent.then(|| wire::Named {
            id: agent.id.clone(),
            name: agent.name.clone(),
        }),
        runtime_key: wire::RuntimeKeyInfo {
            registered: fp.is_some(),
            encryption_key_id: fp.as_deref().map(crate::world::runtime_key_id),
            fingerprint: fp,
        },
        capabilities: wire::Capabilities {
            vault_read: is_agent && crate::auth::allows(agent, crate::auth::Access::VaultRead),
            vault_metadata_write: false,
        },
        warnings,
    }
}

/// Projects `agent` can see: all for USER/TENANT/ORG keys; for an agent,
/// those with a vault it can see. Each with the vaults it can see.
fn projects<'w>(w: &'w World, agent: &Agent) -> Vec<(&'w RProject, Vec<&'w Vault>)> {
    w.projects
        .iter()
        .filter_map(|p| {
            let vaults: Vec<&Vault> = w
                .vaults
                .iter()
                .filter(|v| v.project.as_deref() == Some(p.id.as_str()))
                .filter(|v| agent.scope != Scope::Agent || w.is_visible(agent, v))
                .collect();
            (agent.scope != Scope::Agent || !vaults.is_empty()).then_some((p, vaults))
        })
        .collect()
}

fn project_summary(p: &RProject, vaults: &[&Vault]) -> Value {
    json!({
        "id": p.id, "name": p.name, "externalId": p.external_id,
        "description": p.description, "vaultsCount": vaults.len(),
        "licensesCount": 0, "licenseGroupsCount": 0, "archivedAt": null,
    })
}

/// `GET /project` (seeds/004).
pub(crate) fn project_list(w: &World, agent: &Agent) -> Value {
    let list: Vec<Value> = projects(w, agent)
        .iter()
        .map(|(p, vaults)| project_summary(p, vaults))
        .collect();
    json!({ "projects": list })
}

/// `GET /project/:id` (seeds/004).
pub(crate) fn project_detail(w: &World, agent: &Agent, id: &str) -> Result<Value, ApiError> {
    let (p, vaults) = projects(w, agent)
        .into_iter()
        .find(|(p, _)| p.id == id)
        .ok_or_else(|| ApiError::not_found("project_not_found", "project", id))?;
    let mut detail = project_summary(p, &vaults);
    let extra = json!({
        "domainTenantId": w.tenant.0, "createdAt": w.started_at, "createdBy": w.operator_id,
        "vaults": vaults.iter().map(|v| json!({
            "id": v.id, "name": v.name, "isEncrypted": v.model.is_encrypted(),
        })).collect::<Vec<_>>(),
        "licenses": [], "licenseGroups": [],
    });
    if let (Value::Object(d), Value::Object(e)) = (&mut detail, extra) {
        d.extend(e);
    }
    Ok(detail)
}
