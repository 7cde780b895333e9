//! The world the devserver plays operator for: org, API keys and their
//! runtime keys, projects, vaults with DEKs, items and fields, the
//! transparency log, and the change tracking that sync cursors and caches
//! rely on. Every mutation goes through a method here, which bumps the global
//! change sequence and records what changed.

use std::collections::HashMap;

use r4_contract::crypto::{PrivateKey, PublicKey};
use r4_contract::envelope;
use r4_contract::secret::Dek;
use r4_contract::signed::Signed;
use r4_contract::time;
use r4_contract::wire::WrappedKey;
use r4_contract::VaultModel;
use zeroize::Zeroizing;

use crate::clock::random_hex;
use crate::error::AdminError;
use crate::faults::FaultKind;
use crate::legacy::LegacyKey;
pub(crate) use crate::model::*;
use crate::seed::{derive_id, resolve_item, Ids, RAgent, RProject, RVault, Resolved, Scope};
use crate::translog::TransLog;

pub(crate) struct World {
    /// Random per start: cursors from another run are unknown.
    pub epoch: String,
    pub seq: u64,
    /// Cursors older than this are answered in full (faults changed).
    pub reset_seq: u64,
    pub started_at: String,
    pub org: (String, String),
    pub tenant: (String, String),
    pub operator_id: String,
    pub operator: PrivateKey,
    pub log_key: PrivateKey,
    pub log: TransLog,
    pub keys: HashMap<String, KeyRecord>,
    pub agents: Vec<Agent>,
    pub projects: Vec<RProject>,
    pub vaults: Vec<Vault>,
    visibility: HashMap<(String, String), Vec<(u64, bool)>>,
    pub fault_keys: FaultKeys,
}

fn generate() -> PrivateKey {
    PrivateKey::generate(2048).expect("RSA key generation")
}

impl World {
    pub(crate) fn new(seed: Resolved) -> World {
        let started_at = time::now();
        // Two RSA key generations, in parallel (they dominate start-up time).
        let (operator, log_key) = std::thread::scope(|s| {
            let op = s.spawn(generate);
            let log = generate();
            (op.join().expect("key generation thread"), log)
        });
        let mut world = World {
            epoch: random_hex(8),
            seq: 0,
            reset_seq: 0,
            started_at: started_at.clone(),
            org: seed.org,
            tenant: seed.tenant,
            operator_id: derive_id("user/operator"),
            operator,
            log_key,
            log: TransLog::default(),
            keys: HashMap::new(),
            agents: Vec::new(),
            projects: seed.projects,
            vaults: Vec::new(),
            visibility: HashMap::new(),
            fault_keys: FaultKeys::default(),
        };
        let op_fp = world.operator.fingerprint().to_string();
        let op_public = world.operator.public().clone();
        let op_id = world.operator_id.clone();
        world.log_key_record(&op_fp, op_public, USER, &op_id, true);
        for a in seed.agents {
            world.add_agent(a);
        }
        for v in seed.vaults {
            world.add_vault(v, &started_at);
        }
        world.refresh_visibility();
        world
    }

    /// A seed agent, its registered key (if any) logged.
    fn add_agent(&mut self, a: RAgent) {
        let fp = a.public_key.as_ref().map(|k| k.fingerprint().to_string());
        if let Some(k) = a.public_key {
            self.log_key_record(k.fingerprint(), k.clone(), AGENT, &a.id, true);
        }
        self.agents.push(Agent {
            api_key_id: derive_id(&format!("api-key/{}", a.access)),
            id: a.id,
            name: a.name,
            access: a.access,
            secret: a.secret,
            scope: a.scope,
            permissions: a.permissions,
            key: fp,
            revoked: Vec::new(),
            legacy: None,
        });
    }

    /// A seed vault with a fresh DEK (v3), its items, shared as the seed says.
    fn add_vault(&mut self, v: RVault, started_at: &str) {
        let dek = (v.model == VaultModel::V3).then(Dek::generate);
        let mut vault = Vault {
            encryption_key_id: derive_id(&format!("encryption-key/{}", v.id)),
            id: v.id,
            name: v.name,
            model: v.model,
            project: v.project,
            shared_with: Vec::new(),
            data_classification: v.data_classification,
            dek,
            dek_version: 1,
            items: Vec::new(),
            version: 1,
            changed_seq: 0,
            dir_seq: 0,
            wrapped: HashMap::new(),
            created_at: started_at.to_owned(),
        };
        for item in v.items {
            let item = make_item(&vault, item, 0, started_at);
            vault.items.push(item);
        }
        self.vaults.push(vault);
        let vi = self.vaults.len() - 1;
        for agent in v.shared_with {
            self.share_at(vi, &agent, 0);
        }
    }

    fn log_key_record(
        &mut self,
        fp: &str,
        public: PublicKey,
        owner_type: &'static str,
        owner: &str,
        active: bool,
    ) {
        let status = if active { "active" } else { "revoked" };
        let log_index = self.log.append(fp, owner, owner_type, status);
        self.keys.insert(
            fp.to_string(),
            KeyRecord {
                public,
                owner_type,
                owner_id: owner.to_string(),
                active,
                log_index,
            },
        );
    }

    fn revoke_record(&mut self, fp: &str) {
        if let Some(rec) = self.keys.get(fp) {
            let index = self
                .log
                .append(fp, &rec.owner_id.clone(), rec.owner_type, "revoked");
            let rec = self.keys.get_mut(fp).expect("present");
            rec.active = false;
            rec.log_index = index;
        }
    }

    pub(crate) fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }

    fn agent_index(&self, id: &str) -> Result<usize, AdminError> {
        self.agents
            .iter()
            .position(|a| a.id == id)
            .ok_or_else(|| AdminError::NotFound(format!("agent {id}")))
    }

    pub(crate) fn vault(&self, id: &str) -> Option<&Vault> {
        self.vaults.iter().find(|v| v.id == id)
    }

    fn vault_index(&self, id: &str) -> Result<usize, AdminError> {
        self.vaults
            .iter()
            .position(|v| v.id == id)
            .ok_or_else(|| AdminError::NotFound(format!("vault {id}")))
    }

    /// The public key of `agent`'s active runtime key.
    pub(crate) fn agent_key(&self, agent: &Agent) -> Option<&PublicKey> {
        agent
            .key
            .as_ref()
            .and_then(|fp| self.keys.get(fp))
            .map(|r| &r.public)
    }

    /// §6.2: shared, and for an encrypted vault also a registered key.
    pub(crate) fn is_visible(&self, agent: &Agent, vault: &Vault) -> bool {
        agent.scope == Scope::Agent
            && vault.shared_with.contains(&agent.id)
            && (vault.model != VaultModel::V3 || agent.key.is_some())
    }

    /// Whether `vault` was visible to `agent` right after change `seq`.
    pub(crate) fn was_visible(&self, agent: &str, vault: &str, seq: u64) -> bool {
        self.visibility
            .get(&(agent.to_string(), vault.to_string()))
            .and_then(|events| events.iter().rev().find(|(s, _)| *s <= seq))
            .is_some_and(|(_, v)| *v)
    }

    fn refresh_visibility(&mut self) {
        let seq = self.seq;
        for agent in &self.agents {
            for vault in &self.vaults {
                let now = self.is_visible(agent, vault);
                let events = self
                    .visibility
                    .entry((agent.id.clone(), vault.id.clone()))
                    .or_default();
                if events.last().map(|(_, v)| *v).unwrap_or(false) != now {
                    events.push((seq, now));
                }
            }
        }
    }

    /// Wraps vault `vi`'s DEK to `agent`'s key, signed by the operator.
    fn wrap_for(&mut self, vi: usize, agent_id: &str, seq: u64) {
        let Some(agent) = self.agent(agent_id) else {
            return;
        };
        let Some(public) = self.agent_key(agent).cloned() else {
            return;
        };
        let vault = &self.vaults[vi];
        let Some(dek) = &vault.dek else {
            return;
        };
        let signed = sign_wrapped(vault, &public, dek, &self.operator);
        self.vaults[vi]
            .wrapped
            .insert(agent_id.to_string(), Wrapped { signed, seq });
    }

    fn share_at(&mut self, vi: usize, agent_id: &str, seq: u64) {
        if self.vaults[vi].shared_with.iter().any(|a| a == agent_id) {
            return;
        }
        self.vaults[vi].shared_with.push(agent_id.to_string());
        self.vaults[vi].dir_seq = seq;
        self.vaults[vi].changed_seq = seq;
        match self.vaults[vi].model {
            VaultModel::V3 => self.wrap_for(vi, agent_id, seq),
            VaultModel::Legacy => {
                if let Some(ai) = self.agents.iter().position(|a| a.id == agent_id) {
                    if self.agents[ai].legacy.is_none() {
                        let id = derive_id(&format!("legacy-key/{agent_id}"));
                        self.agents[ai].legacy = Some(LegacyKey::generate(id));
                    }
                }
            }
            VaultModel::Unencrypted => {}
        }
    }

    pub(crate) fn share(&mut self, vault_id: &str, agent_id: &str) -> Result<(), AdminError> {
        let vi = self.vault_index(vault_id)?;
        let ai = self.agent_index(agent_id)?;
        if self.agents[ai].scope != Scope::Agent {
            return Err(AdminError::Invalid(format!(
                "{agent_id} is not an AGENT key; vaults are shared to agents"
            )));
        }
        let seq = self.bump();
        self.share_at(vi, agent_id, seq);
        self.refresh_visibility();
        Ok(())
    }

    pub(crate) fn unshare(&mut self, vault_id: &str, agent_id: &str) -> Result<(), AdminError> {
        let vi = self.vault_index(vault_id)?;
        self.agent_index(agent_id)?;
        let seq = self.bump();
        let vault = &mut self.vaults[vi];
        vault.shared_with.retain(|a| a != agent_id);
        vault.wrapped.remove(agent_id);
        vault.dir_seq = seq;
        vault.changed_seq = seq;
        self.refresh_visibility();
        Ok(())
    }

    /// Registers `key` as `agent`'s first (or next, after a revocation) key.
    pub(crate) fn register_key(&mut self, agent_id: &str, key: PublicKey) {
        let Ok(ai) = self.agent_index(agent_id) else {
            return;
        };
        let seq = self.bump();
        self.log_key_record(key.fingerprint(), key.clone(), AGENT, agent_id, true);
        self.agents[ai].key = Some(key.fingerprint().to_string());
        for vi in 0..self.vaults.len() {
            if self.vaults[vi].shared_with.iter().any(|a| a == agent_id) {
                self.vaults[vi].dir_seq = seq;
                self.wrap_for(vi, agent_id, seq);
            }
        }
        self.refresh_visibility();
    }

    /// Replaces `agent`'s key by `key`: the old one is revoked and the
    /// agent-signed `rewrapped` keys become its wrapped keys (§7).
    pub(crate) fn rotate_key(
        &mut self,
        agent_id: &str,
        key: PublicKey,
        rewrapped: Vec<Signed<WrappedKey>>,
    ) {
        let Ok(ai) = self.agent_index(agent_id) else {
            return;
        };
        let seq = self.bump();
        if let Some(old) = self.agents[ai].key.take() {
            self.revoke_record(&old);
            self.agents[ai].revoked.push(old);
        }
        self.log_key_record(key.fingerprint(), key.clone(), AGENT, agent_id, true);
        self.agents[ai].key = Some(key.fingerprint().to_string());
        for vault in &mut self.vaults {
            if vault.shared_with.iter().any(|a| a == agent_id) {
                vault.dir_seq = seq;
                vault.wrapped.remove(agent_id);
            }
        }
        for wk in rewrapped {
            if let Ok(vi) = self.vault_index(&wk.body().vault_id) {
                self.vaults[vi]
                    .wrapped
                    .insert(agent_id.to_string(), Wrapped { signed: wk, seq });
            }
        }
        self.refresh_visibility();
    }

    /// Revokes `agent`'s active key; it must register a new one.
    pub(crate) fn revoke_key(&mut self, agent_id: &str) -> Result<(), AdminError> {
        let ai = self.agent_index(agent_id)?;
        let Some(old) = self.agents[ai].key.take() else {
            return Err(AdminError::Invalid(format!(
                "agent {agent_id} has no registered key"
            )));
        };
        let seq = self.bump();
        self.revoke_record(&old);
        self.agents[ai].revoked.push(old);
        for vault in &mut self.vaults {
            if vault.shared_with.iter().any(|a| a == agent_id) {
                vault.dir_seq = seq;
                vault.changed_seq = seq;
                vault.wrapped.remove(agent_id);
            }
        }
        self.refresh_visibility();
        Ok(())
    }

    fn item_mut(&mut self, vi: usize, item_id: &str) -> Result<&mut Item, AdminError> {
        self.vaults[vi]
            .items
            .iter_mut()
            .find(|i| i.id == item_id && i.archived_seq.is_none())
            .ok_or_else(|| AdminError::NotFound(format!("item {item_id}")))
    }

    pub(crate) fn set_field_value(
        &mut self,
        vault_id: &str,
        item_id: &str,
        field_id: &str,
        value: &str,
    ) -> Result<(), AdminError> {
        if value.len() > envelope::MAX_VALUE {
            return Err(AdminError::Invalid("value exceeds 1 MiB".into()));
        }
        let vi = self.vault_index(vault_id)?;
        self.item_mut(vi, item_id)?
            .fields
            .iter()
            .position(|f| f.id == field_id)
            .ok_or_else(|| AdminError::NotFound(format!("field {field_id}")))?;
        let seq = self.bump();
        let vault = &mut self.vaults[vi];
        let envelope = vault.dek.as_ref().map(|dek| {
            envelope::seal(
                value.as_bytes(),
                dek,
                &vault.id,
                field_id,
                vault.dek_version,
            )
        });
        vault.version += 1;
        vault.changed_seq = seq;
        let item = vault
            .items
            .iter_mut()
            .find(|i| i.id == item_id && i.archived_seq.is_none())
            .expect("checked");
        item.version += 1;
        item.changed_seq = seq;
        let field = item
            .fields
            .iter_mut()
            .find(|f| f.id == field_id)
            .expect("checked");
        field.value = Zeroizing::new(value.to_string());
        field.envelope = envelope;
        field.version += 1;
        Ok(())
    }

    pub(crate) fn add_item(
        &mut self,
        vault_id: &str,
        item: &crate::seed::ItemSeed,
    ) -> Result<String, AdminError> {
        let vi = self.vault_index(vault_id)?;
        let mut ids = Ids::default();
        for v in &self.vaults {
            for i in &v.items {
                ids.claim(i.id.clone(), &i.name).ok();
                for f in &i.fields {
                    ids.claim(f.id.clone(), &f.name).ok();
                }
            }
        }
        let item = resolve_item(&self.vaults[vi].name, item, &mut ids)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        let seq = self.bump();
        let now = time::now();
        let item = make_item(&self.vaults[vi], item, seq, &now);
        let id = item.id.clone();
        let vault = &mut self.vaults[vi];
        vault.items.push(item);
        vault.version += 1;
        vault.changed_seq = seq;
        Ok(id)
    }

    pub(crate) fn archive_item(&mut self, vault_id: &str, item_id: &str) -> Result<(), AdminError> {
        let vi = self.vault_index(vault_id)?;
        self.item_mut(vi, item_id)?;
        let seq = self.bump();
        let vault = &mut self.vaults[vi];
        vault.version += 1;
        vault.changed_seq = seq;
        let item = vault
            .items
            .iter_mut()
            .find(|i| i.id == item_id && i.archived_seq.is_none())
            .expect("checked");
        item.archived_seq = Some(seq);
        item.changed_seq = seq;
        Ok(())
    }

    /// Makes the keys that `faults` misbehave with, logging those that must
    /// be in the log; and makes every older sync cursor answer in full.
    pub(crate) fn faults_changed(&mut self, faults: &[FaultKind]) {
        let seq = self.bump();
        self.reset_seq = seq;
        if faults.contains(&FaultKind::UnknownSigner) && self.fault_keys.rogue.is_none() {
            self.fault_keys.rogue = Some(generate());
        }
        if faults.contains(&FaultKind::RevokedSigner) && self.fault_keys.retired.is_none() {
            let key = generate();
            let owner = derive_id("user/retired-operator");
            self.log_key_record(key.fingerprint(), key.public().clone(), USER, &owner, true);
            self.revoke_record(key.fingerprint());
            self.fault_keys.retired = Some(key);
        }
        if faults.contains(&FaultKind::AgentSignedWrappedKey) && self.fault_keys.decoy.is_none() {
            let key = generate();
            let owner = derive_id("agent/decoy-agent");
            self.log_key_record(key.fingerprint(), key.public().clone(), AGENT, &owner, true);
            self.fault_keys.decoy = Some(key);
        }
    }
}
