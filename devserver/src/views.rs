//! The vault contents one agent sees: vault entries, item lists with their
//! summary checkpoint (contract §4.2), item details and fields with their
//! detail checkpoint (§4.3, §4.4) — signed with the contract's
//! `Signed::sign`, digested with its `checkpoint` functions, and cached per
//! (object, version, agent) so that a vault of 1000 items is signed once, not
//! on every request. Object faults apply on top of the honest objects, so they
//! show wherever an object is served (its endpoint and `/vault/sync`).

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
use base64::Engine;
use r4_contract::checkpoint::{item_checkpoint, items_digest};
use r4_contract::crypto::PrivateKey;
use r4_contract::envelope;
use r4_contract::signed::Signed;
use r4_contract::time;
use r4_contract::wire::{
    self, kind, Field, FieldResponse, FieldWithItem, ItemCheckpoint, ItemDetail, ItemSummary,
    TreeHead, VaultSummary,
};
use r4_contract::VaultModel;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::faults::{FaultKind as F, FaultState};
use crate::seed::derive_id;
use crate::trust::corrupt;
use crate::world::{Agent, Item, Vault, World};

/// `GET /vault/:vaultId/items` as served ([`wire::ItemList`] is what a client
/// reads of it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemListView {
    items: Vec<ListedItem>,
    vault_id: String,
    count: u64,
    checkpoint: Signed<VaultSummary>,
}

/// One entry of [`ItemListView`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedItem {
    #[serde(flatten)]
    summary: ItemSummary,
    created_at: String,
    field_count: u64,
}

/// Signed objects kept between requests; each entry remembers the version it
/// was made for and is replaced when that changes.
#[derive(Default)]
pub(crate) struct Cache {
    /// (vault, item, agent for legacy vaults) → (item version, detail).
    details: HashMap<(String, String, Option<String>), (u64, ItemDetail)>,
    /// vault → (summary version, checkpoint).
    summaries: HashMap<String, (u64, Signed<VaultSummary>)>,
    /// (tree size, head).
    pub(crate) tree_head: Option<(u64, Signed<TreeHead>)>,
    /// (agent, field) → (field version, legacy ciphertext).
    legacy: HashMap<(String, String), (u64, String)>,
}

/// One request's view of the world, as `agent`.
pub(crate) struct Ctx<'a> {
    pub w: &'a World,
    pub cache: &'a mut Cache,
    pub faults: &'a mut FaultState,
    pub agent: &'a Agent,
}

/// Flips the last byte of an envelope's ciphertext-and-tag segment.
pub(crate) fn tamper_envelope(env: &str) -> String {
    let Some((head, ct)) = env.rsplit_once('.') else {
        return format!("{env}x");
    };
    let mut bytes = B64U.decode(ct).unwrap_or_default();
    if let Some(b) = bytes.last_mut() {
        *b ^= 0x01;
    }
    format!("{head}.{}", B64U.encode(bytes))
}

/// An `ItemCheckpoint` placeholder so that `item_digest` (which takes a whole
/// `ItemDetail`) can be computed before the real checkpoint exists.
fn placeholder_checkpoint() -> Signed<ItemCheckpoint> {
    let body = ItemCheckpoint {
        kind: kind::ITEM_DETAIL.into(),
        vault_id: String::new(),
        item_id: String::new(),
        version: 0,
        item_digest: String::new(),
        field_digests: BTreeMap::new(),
        issued_at: String::new(),
        signer_key_id: String::new(),
        signature: String::new(),
    };
    let Value::Object(raw) = serde_json::to_value(body).expect("wire type") else {
        unreachable!("a struct serializes to an object")
    };
    Signed::from_raw(raw).expect("round trip")
}

impl<'a> Ctx<'a> {
    pub(crate) fn has(&self, kind: F) -> bool {
        self.faults.has(kind)
    }

    /// The key that signs checkpoints: the operator, unless a signer fault is on.
    pub(crate) fn checkpoint_key(&self) -> &'a PrivateKey {
        let keys = &self.w.fault_keys;
        match (
            self.has(F::UnknownSigner),
            self.has(F::RevokedSigner),
            &keys.rogue,
            &keys.retired,
        ) {
            (true, _, Some(k), _) => k,
            (_, true, _, Some(k)) => k,
            _ => &self.w.operator,
        }
    }

    /// Vaults this agent can see (§6.2), in seed order.
    pub(crate) fn visible_vaults(&self) -> Vec<&'a Vault> {
        let w = self.w;
        w.vaults
            .iter()
            .filter(|v| w.is_visible(self.agent, v))
            .collect()
    }

    /// A visible vault, or `404 vault_not_found`.
    pub(crate) fn vault(&self, id: &str) -> Result<&'a Vault, ApiError> {
        let w = self.w;
        w.vault(id)
            .filter(|v| w.is_visible(self.agent, v))
            .ok_or_else(|| ApiError::not_found("vault_not_found", "vault", id))
    }

    /// The vault list entry (seeds/004), with `createdBy` for the detail.
    pub(crate) fn vault_entry(&self, v: &Vault, detail: bool) -> wire::Vault {
        let encryption_key_id = match v.model {
            VaultModel::V3 => Some(v.encryption_key_id.clone()),
            VaultModel::Legacy => self.agent.legacy.as_ref().map(|k| k.id.clone()),
            VaultModel::Unencrypted => None,
        };
        wire::Vault {
            id: v.id.clone(),
            name: v.name.clone(),
            is_encrypted: Some(v.model.is_encrypted()),
            encryption_key_id,
            data_classification: v.data_classification.clone(),
            item_count: Some(v.live_items().count() as u64),
            created_at: Some(v.created_at.clone()),
            created_by: detail.then(|| self.w.operator_id.clone()),
        }
    }

    fn legacy_value(&mut self, field: &crate::world::Field) -> String {
        let Some(key) = &self.agent.legacy else {
            return String::new();
        };
        let cache_key = (self.agent.id.clone(), field.id.clone());
        if let Some((version, ct)) = self.cache.legacy.get(&cache_key) {
            if *version == field.version {
                return ct.clone();
            }
        }
        let ct = key.key.public().legacy_encrypt(field.value.as_bytes());
        self.cache
            .legacy
            .insert(cache_key, (field.version, ct.clone()));
        ct
    }

    /// The item detail as the operator signs it, from the cache when current.
    fn honest_detail(&mut self, v: &Vault, item: &Item) -> ItemDetail {
        let legacy_agent = (v.model == VaultModel::Legacy).then(|| self.agent.id.clone());
        let key = (v.id.clone(), item.id.clone(), legacy_agent);
        if let Some((version, detail)) = self.cache.details.get(&key) {
            if *version == item.version {
                return detail.clone();
            }
        }
        let mut fields = Vec::with_capacity(item.fields.len());
        for f in &item.fields {
            let value = match v.model {
                VaultModel::V3 => f.envelope.clone().unwrap_or_default(),
                VaultModel::Legacy if f.secret => self.legacy_value(f),
                _ => f.value.to_string(),
            };
            fields.push(Field {
                id: f.id.clone(),
                name: f.name.clone(),
                field_type: f.field_type.clone(),
                value,
                is_secret: f.secret,
            });
        }
        let mut detail = ItemDetail {
            id: item.id.clone(),
            name: item.name.clone(),
            item_type: item.item_type.clone(),
            websites: item.websites.clone(),
            vault_id: v.id.clone(),
            encryption_key_id: self.vault_entry(v, false).encryption_key_id,
            fields,
            checkpoint: placeholder_checkpoint(),
        };
        detail.checkpoint = Signed::sign(
            &item_checkpoint(&detail, item.version, &time::now()),
            &self.w.operator,
        );
        self.cache
            .details
            .insert(key, (item.version, detail.clone()));
        detail
    }

    /// Another live item of `v` than `item`, for faults that borrow from one.
    fn other_item<'v>(v: &'v Vault, item: &Item) -> Option<&'v Item> {
        v.live_items().find(|i| i.id != item.id)
    }

    /// The item detail as served, with object faults applied.
    pub(crate) fn item_detail(&mut self, v: &'a Vault, item: &'a Item) -> ItemDetail {
        let honest = self.honest_detail(v, item);
        if !self.faults.any_object_fault() {
            return honest;
        }
        let mut detail = honest.clone();
        let mut resign = self.has(F::UnknownSigner) || self.has(F::RevokedSigner);
        if v.model == VaultModel::V3 && !detail.fields.is_empty() {
            if self.has(F::SwapEnvelope) {
                detail.fields[0].value = self.swapped_envelope(v, item, &detail);
                resign = true;
            }
            if self.has(F::TamperCiphertext) {
                detail.fields[0].value = tamper_envelope(&detail.fields[0].value);
                resign = true;
            }
        }
        let mut version = item.version;
        if self.has(F::StaleDetail) {
            version = version.saturating_sub(1);
            resign = true;
        }
        if resign {
            detail.checkpoint = Signed::sign(
                &item_checkpoint(&detail, version, &time::now()),
                self.checkpoint_key(),
            );
        }
        if self.has(F::ReplayedCheckpoint) {
            detail.checkpoint = match Self::other_item(v, item) {
                Some(other) => self.honest_detail(v, other).checkpoint,
                None => {
                    let mut body = item_checkpoint(&detail, version, &time::now());
                    body.item_id = derive_id(&format!("replayed/{}", item.id));
                    Signed::sign(&body, self.checkpoint_key())
                }
            };
        }
        if self.has(F::BadSignatureDetail) {
            detail.checkpoint = corrupt(&detail.checkpoint);
        }
        detail
    }

    /// A valid envelope of another field for `swap-envelope`.
    fn swapped_envelope(&mut self, v: &Vault, item: &Item, detail: &ItemDetail) -> String {
        if detail.fields.len() > 1 {
            return detail.fields[1].value.clone();
        }
        if let Some(f) = Self::other_item(v, item).and_then(|o| o.fields.first()) {
            if let Some(env) = &f.envelope {
                return env.clone();
            }
        }
        // No other field: seal this value for a field that does not exist.
        let dek = v.dek.as_ref().expect("encrypted vault");
        let value = &item.fields[0].value;
        let fid = derive_id(&format!("swapped/{}", item.fields[0].id));
        envelope::seal(value.as_bytes(), dek, &v.id, &fid, v.dek_version)
    }

    /// Live items of `v` as list entries (§4.2).
    fn summaries(v: &Vault) -> Vec<ItemSummary> {
        v.live_items()
            .map(|i| ItemSummary {
                id: i.id.as_str().into(),
                name: i.name.as_str().into(),
                item_type: i.item_type.as_str().into(),
                websites: i.websites.clone(),
                version: i.version,
            })
            .collect()
    }

    /// The item list and its summary checkpoint, with faults applied.
    pub(crate) fn summary(&mut self, v: &Vault) -> (Vec<ItemSummary>, Signed<VaultSummary>) {
        let items = Self::summaries(v);
        let honest = match self.cache.summaries.get(&v.id) {
            Some((version, cp)) if *version == v.version => cp.clone(),
            _ => {
                let body = VaultSummary {
                    kind: kind::VAULT_SUMMARY.into(),
                    vault_id: v.id.clone(),
                    version: v.version,
                    items_digest: items_digest(&items),
                    issued_at: time::now(),
                    signer_key_id: String::new(),
                    signature: String::new(),
                };
                let cp = Signed::sign(&body, &self.w.operator);
                self.cache
                    .summaries
                    .insert(v.id.clone(), (v.version, cp.clone()));
                cp
            }
        };
        if !self.faults.any_object_fault() {
            return (items, honest);
        }
        let mut body = honest.body().clone();
        let mut resign = self.has(F::UnknownSigner) || self.has(F::RevokedSigner);
        if self.has(F::ItemsDigestMismatch) {
            let mut wrong = items.clone();
            wrong.push(ItemSummary {
                id: derive_id("items-digest-mismatch").into(),
                name: "not in this vault".into(),
                item_type: "LOGIN".into(),
                websites: Vec::new(),
                version: 1,
            });
            body.items_digest = items_digest(&wrong);
            resign = true;
        }
        if self.has(F::Rollback) {
            let served = self
                .faults
                .rollback_served
                .entry((self.agent.id.clone(), v.id.clone()))
                .or_insert(0);
            *served += 1;
            if *served > 1 {
                body.version = body.version.saturating_sub(1);
                resign = true;
            }
        }
        let mut cp = if resign {
            body.issued_at = time::now();
            Signed::sign(&body, self.checkpoint_key())
        } else {
            honest
        };
        if self.has(F::BadSignatureSummary) {
            cp = corrupt(&cp);
        }
        (items, cp)
    }

    /// `GET /vault/:vaultId/items`: each entry as the seeds show it, with
    /// `createdAt` and `fieldCount` beside what the summary covers (clients
    /// read neither).
    pub(crate) fn item_list(&mut self, v: &Vault) -> ItemListView {
        let (items, checkpoint) = self.summary(v);
        let items: Vec<ListedItem> = items
            .into_iter()
            .zip(v.live_items())
            .map(|(summary, item)| ListedItem {
                summary,
                created_at: item.created_at.clone(),
                field_count: item.fields.len() as u64,
            })
            .collect();
        ItemListView {
            count: items.len() as u64,
            items,
            vault_id: v.id.clone(),
            checkpoint,
        }
    }

    /// `GET /vault/:vaultId/items/:itemId`.
    pub(crate) fn item(&mut self, v: &'a Vault, item_id: &str) -> Result<ItemDetail, ApiError> {
        let item = v
            .item(item_id)
            .ok_or_else(|| ApiError::not_found("item_not_found", "vault item", item_id))?;
        Ok(self.item_detail(v, item))
    }

    /// `GET /vault/:vaultId/fields/:fieldId` (§4.4).
    pub(crate) fn field(
        &mut self,
        v: &'a Vault,
        field_id: &str,
    ) -> Result<FieldResponse, ApiError> {
        let item = v
            .live_items()
            .find(|i| i.fields.iter().any(|f| f.id == field_id))
            .ok_or_else(|| ApiError::not_found("field_not_found", "field", field_id))?;
        let detail = self.item_detail(v, item);
        let index = item
            .fields
            .iter()
            .position(|f| f.id == field_id)
            .expect("found above");
        let f = &detail.fields[index];
        Ok(FieldResponse {
            field: FieldWithItem {
                id: f.id.clone(),
                item_id: item.id.clone(),
                name: f.name.clone(),
                field_type: f.field_type.clone(),
                value: f.value.clone(),
                is_secret: f.is_secret,
            },
            checkpoint: detail.checkpoint,
        })
    }
}
