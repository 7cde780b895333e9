//! The objects of the world: API keys and agents, keys known to the log,
//! vaults, items, fields and wrapped keys — plain data, plus the two ways
//! an operator makes protected values: sealing a field and wrapping a DEK.

use std::collections::HashMap;

use r4_contract::checkpoint;
use r4_contract::crypto::{PrivateKey, PublicKey};
use r4_contract::envelope;
use r4_contract::secret::Dek;
use r4_contract::signed::Signed;
use r4_contract::time;
use r4_contract::wire::WrappedKey;
use r4_contract::VaultModel;
use zeroize::Zeroizing;

use crate::legacy::LegacyKey;
use crate::seed::{derive_id, RItem, Scope};

/// `ownerType` of the operator's (and fault) user keys.
pub(crate) const USER: &str = "USER";
/// `ownerType` of agent runtime keys.
pub(crate) const AGENT: &str = "AGENT";

/// A key known to the log, by fingerprint.
pub(crate) struct KeyRecord {
    pub public: PublicKey,
    pub owner_type: &'static str,
    pub owner_id: String,
    pub active: bool,
    /// Index of its latest leaf.
    pub log_index: u64,
}

/// An API key and the agent (or user) behind it.
pub(crate) struct Agent {
    pub id: String,
    pub name: String,
    pub access: String,
    pub secret: String,
    pub api_key_id: String,
    pub scope: Scope,
    pub permissions: Vec<String>,
    /// Fingerprint of the active runtime key.
    pub key: Option<String>,
    /// Fingerprints of its revoked runtime keys.
    pub revoked: Vec<String>,
    /// Server-held legacy key pair (§6.5), made when a legacy vault is shared.
    pub legacy: Option<LegacyKey>,
}

pub(crate) struct Field {
    pub id: String,
    pub name: String,
    pub field_type: String,
    pub secret: bool,
    pub value: Zeroizing<String>,
    /// The v3 envelope of `value` (encrypted vaults), sealed once per value.
    pub envelope: Option<String>,
    pub version: u64,
}

pub(crate) struct Item {
    pub id: String,
    pub name: String,
    pub item_type: String,
    pub websites: Vec<String>,
    pub fields: Vec<Field>,
    pub version: u64,
    pub changed_seq: u64,
    pub archived_seq: Option<u64>,
    pub created_at: String,
}

/// A wrapped DEK of one vault for one agent, and when it last changed.
pub(crate) struct Wrapped {
    pub signed: Signed<WrappedKey>,
    pub seq: u64,
}

pub(crate) struct Vault {
    pub id: String,
    pub name: String,
    pub model: VaultModel,
    pub project: Option<String>,
    pub shared_with: Vec<String>,
    pub data_classification: Option<String>,
    pub encryption_key_id: String,
    pub dek: Option<Dek>,
    pub dek_version: u64,
    pub items: Vec<Item>,
    /// Summary version: grows on any change to the vault's items.
    pub version: u64,
    pub changed_seq: u64,
    /// Last change of the signer directory's membership or statuses.
    pub dir_seq: u64,
    pub wrapped: HashMap<String, Wrapped>,
    pub created_at: String,
}

impl Vault {
    pub(crate) fn live_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.archived_seq.is_none())
    }

    pub(crate) fn item(&self, id: &str) -> Option<&Item> {
        self.live_items().find(|i| i.id == id)
    }
}

/// Keys the devserver holds only to misbehave with (made on first need).
#[derive(Default)]
pub(crate) struct FaultKeys {
    /// In no log and no directory (`unknown-signer`).
    pub rogue: Option<PrivateKey>,
    /// A retired USER key, logged active then revoked (`revoked-signer`).
    pub retired: Option<PrivateKey>,
    /// Another agent's AGENT key, logged active (`agent-signed-wrapped-key`).
    pub decoy: Option<PrivateKey>,
}

/// `encryptionKeyId` of a registered runtime key.
pub(crate) fn runtime_key_id(fingerprint: &str) -> String {
    derive_id(&format!("runtime-key/{fingerprint}"))
}

/// Builds a vault item from its resolved seed, sealing every field value of
/// an encrypted vault.
pub(crate) fn make_item(vault: &Vault, item: RItem, seq: u64, now: &str) -> Item {
    Item {
        fields: item
            .fields
            .into_iter()
            .map(|f| Field {
                envelope: vault.dek.as_ref().map(|dek| {
                    envelope::seal(f.value.as_bytes(), dek, &vault.id, &f.id, vault.dek_version)
                }),
                id: f.id,
                name: f.name,
                field_type: f.field_type,
                secret: f.secret,
                value: Zeroizing::new(f.value),
                version: 1,
            })
            .collect(),
        id: item.id,
        name: item.name,
        item_type: item.item_type,
        websites: item.websites,
        version: 1,
        changed_seq: seq,
        archived_seq: None,
        created_at: now.to_string(),
    }
}

/// A wrapped key of `vault` (§4.1) wrapping `dek` to `recipient`, signed by `signer`.
pub(crate) fn sign_wrapped(
    vault: &Vault,
    recipient: &PublicKey,
    dek: &Dek,
    signer: &PrivateKey,
) -> Signed<WrappedKey> {
    let body = checkpoint::wrapped_key(
        &vault.id,
        &vault.encryption_key_id,
        vault.dek_version,
        recipient,
        dek,
        &time::now(),
    );
    Signed::sign(&body, signer)
}
