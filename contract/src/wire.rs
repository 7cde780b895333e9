//! Wire types of the R4 machine API as the contract pins them (§1, §4–§7).
//! Unknown members are ignored; a missing required member is a decode error.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::signed::Signed;

/// Object kinds (`kind` member) of the signed objects.
pub mod kind {
    /// §4.1
    pub const WRAPPED_KEY: &str = "r4.wrapped-key.v1";
    /// §4.2
    pub const VAULT_SUMMARY: &str = "r4.vault-summary.v1";
    /// §4.3
    pub const ITEM_DETAIL: &str = "r4.item-detail.v1";
    /// §5
    pub const TREE_HEAD: &str = "r4.tree-head.v1";
    /// §7
    pub const KEY_ROTATION: &str = "r4.key-rotation.v1";
}

/// The only key-wrap algorithm of §4.1.
pub const WRAP_ALGORITHM: &str = "RSA-OAEP-256";

/// A JSON text received as bytes (an answer, a stored copy), its UTF-8
/// checked once, whole: `serde_json` reading a `&str` does not check each
/// string again, as it must reading bytes (3 % of a start at 10 000 items
/// went to those checks). Every reader of received JSON goes through here,
/// so the parser is instantiated once per type (for `&str` input only).
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// `{"error": {...}}` (§1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error body.
    pub error: ErrorBody,
}

/// Code and message of an API error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `vault_not_found`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// An `{id, name}` pair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Named {
    /// Object id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// `GET /me` (§6.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The calling key.
    pub api_key: ApiKeyInfo,
    /// Organisation.
    pub org: Named,
    /// Tenant.
    pub tenant: Named,
    /// The agent, for AGENT keys.
    pub agent: Option<Named>,
    /// Registered runtime key.
    pub runtime_key: RuntimeKeyInfo,
    /// Capability flags.
    pub capabilities: Capabilities,
    /// Warnings from the service.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The API key's identity and policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// Access key id.
    pub id: String,
    /// AGENT, USER, TENANT or ORG.
    pub scope: String,
    /// Machine permissions.
    pub permissions: Vec<String>,
}

/// The agent's registered runtime key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeKeyInfo {
    /// Whether one is registered.
    pub registered: bool,
    /// Its fingerprint.
    pub fingerprint: Option<String>,
    /// Its encryption key id.
    pub encryption_key_id: Option<String>,
}

/// Capability flags of `/me`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Can read vaults.
    pub vault_read: bool,
    /// Can write vault metadata.
    pub vault_metadata_write: bool,
}

/// `GET /vault` (seeds/004).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaultList {
    /// Vaults visible to the key.
    pub vaults: Vec<Vault>,
}

/// A vault list entry or vault detail (seeds/004).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Vault {
    /// Vault id.
    pub id: String,
    /// Vault name.
    pub name: String,
    /// Whether values are encrypted (v3 or legacy).
    #[serde(default)]
    pub is_encrypted: Option<bool>,
    /// The vault's encryption key id.
    #[serde(default)]
    pub encryption_key_id: Option<String>,
    /// Classification label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_classification: Option<String>,
    /// Number of items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Creator (detail only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// `GET /vault/:vaultId/items` (§4.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemList {
    /// Non-archived items.
    #[serde(deserialize_with = "entries_in_room")]
    pub items: Vec<ItemSummary>,
    /// The vault.
    pub vault_id: String,
    /// Number of items.
    pub count: u64,
    /// Signed summary checkpoint.
    pub checkpoint: Signed<VaultSummary>,
}

impl ItemList {
    /// [`from_json`] of an item list answer, its entries allocated once: the
    /// text is first searched for `"version"` members (one per entry, one
    /// in the checkpoint; a `"` inside a string is escaped, so a name
    /// cannot hold one), and the list reserves that many. A `Vec` grown
    /// by doubling instead moved 10 000 entries through blocks of twice
    /// their size, each fresh page faulted in and each old block copied
    /// and wiped (with the smaller entries, 1,920 → 942 page faults at
    /// 10 000 items, BENCHMARKS.md). The count only sizes the
    /// allocation; a text that spells the member otherwise (`"\u0076…`)
    /// grows it as before, and one that repeats it elsewhere (as members
    /// of objects the list ignores) reserves at most one entry per
    /// [`SHORTEST_ENTRY`] bytes: the memory of an entry (104 bytes) for
    /// each 64 received, whatever the text.
    pub fn from_json(bytes: &[u8]) -> Result<ItemList, String> {
        let room = memchr::memmem::find_iter(bytes, b"\"version\"")
            .count()
            .min(bytes.len() / SHORTEST_ENTRY);
        LIST_ROOM.with(|r| r.set(room));
        let list = from_json(bytes);
        LIST_ROOM.with(|r| r.set(0));
        list
    }
}

/// The fewest bytes an entry takes in practice: a 24-digit id, a name,
/// a type, a version and the punctuation are over 64.
const SHORTEST_ENTRY: usize = 64;

thread_local! {
    /// The capacity the next item list parsed on this thread reserves
    /// ([`ItemList::from_json`] sets it; 0 elsewhere).
    static LIST_ROOM: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// An item list's entries, in a `Vec` of the capacity [`LIST_ROOM`] holds
/// (taken: a second list in the same text grows as usual).
fn entries_in_room<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ItemSummary>, D::Error> {
    struct Entries;
    impl<'de> serde::de::Visitor<'de> for Entries {
        type Value = Vec<ItemSummary>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of item list entries")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::with_capacity(LIST_ROOM.with(|r| r.take()));
            while let Some(entry) = seq.next_element()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    d.deserialize_seq(Entries)
}

/// One entry of an item list.
///
/// Its strings are inline up to 24 bytes (an id is 24 hex digits; most names
/// and every type are shorter): a list of 10 000 entries is parsed without
/// 30 000 heap blocks, each of which the zeroing allocator would wipe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ItemSummary {
    /// Item id.
    pub id: CompactString,
    /// Item name.
    pub name: CompactString,
    /// Item type (LOGIN, API_KEY, ...).
    #[serde(rename = "type")]
    pub item_type: CompactString,
    /// Websites.
    #[serde(default)]
    pub websites: Vec<String>,
    /// Grows on every change to the item or its fields.
    pub version: u64,
}

/// `r4.vault-summary.v1` (§4.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultSummary {
    /// Always `r4.vault-summary.v1`.
    pub kind: String,
    /// The vault.
    pub vault_id: String,
    /// Summary version; never decreases.
    pub version: u64,
    /// Digest of the item list.
    pub items_digest: String,
    /// Issue time.
    pub issued_at: String,
    /// Signer fingerprint.
    pub signer_key_id: String,
    /// Signature (`b64`).
    #[serde(default)]
    pub signature: String,
}

/// `GET /vault/:vaultId/items/:itemId` (§4.3); also a sync item.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemDetail {
    /// Item id.
    pub id: String,
    /// Item name.
    pub name: String,
    /// Item type.
    #[serde(rename = "type")]
    pub item_type: String,
    /// Websites.
    #[serde(default)]
    pub websites: Vec<String>,
    /// The vault.
    pub vault_id: String,
    /// The vault's encryption key id.
    #[serde(default)]
    pub encryption_key_id: Option<String>,
    /// Fields with their (encrypted) values.
    pub fields: Vec<Field>,
    /// Signed detail checkpoint.
    pub checkpoint: Signed<ItemCheckpoint>,
}

/// A field of an item detail.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// Field id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Field type.
    #[serde(rename = "type")]
    pub field_type: String,
    /// Envelope text (encrypted vault), base64 RSA ciphertext (legacy secret
    /// field) or plaintext.
    pub value: String,
    /// Whether the field is a secret.
    pub is_secret: bool,
}

/// `r4.item-detail.v1` (§4.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemCheckpoint {
    /// Always `r4.item-detail.v1`.
    pub kind: String,
    /// The vault.
    pub vault_id: String,
    /// The item.
    pub item_id: String,
    /// Item version (equals the summary's entry).
    pub version: u64,
    /// Digest of the item metadata.
    pub item_digest: String,
    /// Digest of each field.
    pub field_digests: BTreeMap<String, String>,
    /// Issue time.
    pub issued_at: String,
    /// Signer fingerprint.
    pub signer_key_id: String,
    /// Signature (`b64`).
    #[serde(default)]
    pub signature: String,
}

/// `GET /vault/:vaultId/fields/:fieldId` (§4.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldResponse {
    /// The field with its parent item id.
    pub field: FieldWithItem,
    /// The parent item's detail checkpoint.
    pub checkpoint: Signed<ItemCheckpoint>,
}

/// A field as `/fields/:fieldId` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldWithItem {
    /// Field id.
    pub id: String,
    /// Parent item id.
    pub item_id: String,
    /// Label.
    pub name: String,
    /// Field type.
    #[serde(rename = "type")]
    pub field_type: String,
    /// Value as in [`Field::value`].
    pub value: String,
    /// Whether the field is a secret.
    pub is_secret: bool,
}

impl FieldWithItem {
    /// The field without its item id (what `fieldDigests` covers).
    pub fn to_field(&self) -> Field {
        Field {
            id: self.id.clone(),
            name: self.name.clone(),
            field_type: self.field_type.clone(),
            value: self.value.clone(),
            is_secret: self.is_secret,
        }
    }
}

/// `r4.wrapped-key.v1` (§4.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrappedKey {
    /// Always `r4.wrapped-key.v1`.
    pub kind: String,
    /// The vault.
    pub vault_id: String,
    /// The vault's encryption key id.
    pub encryption_key_id: String,
    /// Fingerprint of the agent key it is wrapped to.
    pub recipient_fingerprint: String,
    /// DEK version (`dv` of envelopes).
    pub dek_version: u64,
    /// Always `RSA-OAEP-256`.
    pub algorithm: String,
    /// `b64` RSA-OAEP-256 ciphertext of the DEK.
    pub wrapped_dek: String,
    /// Issue time.
    pub issued_at: String,
    /// Signer fingerprint.
    pub signer_key_id: String,
    /// Signature (`b64`).
    #[serde(default)]
    pub signature: String,
}

/// `GET /vault/:vaultId/public-keys` (§5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignerDirectory {
    /// The vault.
    pub vault_id: String,
    /// Signers, active and revoked.
    pub signers: Vec<SignerEntry>,
    /// Signed head of the transparency log.
    pub tree_head: Signed<TreeHead>,
}

/// A signer of a vault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SignerEntry {
    /// Fingerprint of `publicKey`.
    pub key_id: String,
    /// SPKI PEM.
    pub public_key: String,
    /// `USER` or `AGENT`.
    pub owner_type: String,
    /// Owner id.
    pub owner_id: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Index of its leaf in the log.
    pub log_index: u64,
    /// Audit path (hex hashes).
    #[serde(default)]
    pub inclusion_proof: Vec<String>,
}

/// `r4.tree-head.v1` (§5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeHead {
    /// Always `r4.tree-head.v1`.
    pub kind: String,
    /// Fingerprint of the log key.
    pub log_id: String,
    /// Number of leaves.
    pub tree_size: u64,
    /// Root hash (hex).
    pub root_hash: String,
    /// Issue time.
    pub issued_at: String,
    /// Signer fingerprint (the log key).
    pub signer_key_id: String,
    /// Signature (`b64`).
    #[serde(default)]
    pub signature: String,
}

/// Leaf input of the transparency log (§5).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogLeaf {
    /// Signer fingerprint.
    pub key_id: String,
    /// Owner id.
    pub owner_id: String,
    /// `USER` or `AGENT`.
    pub owner_type: String,
    /// `active` or `revoked`.
    pub status: String,
}

/// `GET /vault/sync` (§6.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncResponse {
    /// Opaque cursor for the next delta.
    pub cursor: String,
    /// `full` or `delta`.
    pub mode: String,
    /// Vaults (all, or the changed ones).
    pub vaults: Vec<SyncVault>,
    /// Removed vaults and items.
    #[serde(default)]
    pub removed: Removed,
}

/// One vault of a sync response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncVault {
    /// Vault list entry.
    pub vault: Vault,
    /// Wrapped DEK (`null` for unencrypted and legacy vaults).
    pub wrapped_key: Option<Signed<WrappedKey>>,
    /// Signer directory.
    pub signers: SignerDirectory,
    /// Current summary checkpoint.
    pub checkpoint: Signed<VaultSummary>,
    /// Items (all, or the changed ones), with detail checkpoints.
    pub items: Vec<ItemDetail>,
}

/// Removals in a delta sync.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// Vaults no longer visible.
    #[serde(default)]
    pub vault_ids: Vec<String>,
    /// Items archived or removed.
    #[serde(default)]
    pub item_ids: Vec<String>,
}

/// `GET /vault/env/:projectId` (§6.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvResponse {
    /// Derived name -> envelope or plaintext.
    pub env: BTreeMap<String, String>,
    /// The project.
    pub project_id: String,
    /// Number of entries.
    pub count: u64,
    /// Names left out because two fields derive them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collisions: Option<Vec<String>>,
}

/// `GET /vault/encryption-key` (§6.5, seeds/002).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyKeyPair {
    /// Encryption key id.
    pub encryption_key_id: String,
    /// PEM private key held by the server (zeroized on drop).
    pub private_key: Secret,
    /// PEM public key.
    pub public_key: String,
}

/// `GET /project` (seeds/004).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectList {
    /// Projects.
    pub projects: Vec<ProjectSummary>,
}

/// A project list entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSummary {
    /// Project id.
    pub id: String,
    /// Name.
    pub name: String,
    /// External id.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Number of vaults.
    #[serde(default)]
    pub vaults_count: Option<u64>,
    /// Archive time.
    #[serde(default)]
    pub archived_at: Option<String>,
}

/// `GET /project/:id` (seeds/004).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDetail {
    /// Project id.
    pub id: String,
    /// Name.
    pub name: String,
    /// External id.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Vaults of the project.
    #[serde(default)]
    pub vaults: Vec<ProjectVault>,
}

/// A vault of a project detail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectVault {
    /// Vault id.
    pub id: String,
    /// Vault name.
    pub name: String,
    /// Whether it is encrypted.
    #[serde(default)]
    pub is_encrypted: Option<bool>,
}

/// `POST /vault/public-key` body (§7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// SPKI PEM.
    pub public_key: String,
    /// Present only when replacing a different key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// The rotation member of a registration (§7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Fingerprint of the key being replaced.
    pub previous_fingerprint: String,
    /// Issue time of the proof.
    pub issued_at: String,
    /// Signature by the previous key over the JCS of [`RotationStatement`].
    pub proof: String,
    /// Every vault key re-wrapped to the new key, signed by it.
    #[serde(default)]
    pub rewrapped_vault_keys: Vec<Signed<WrappedKey>>,
}

/// What the rotation proof signs (§7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatement {
    /// Always `r4.key-rotation.v1`.
    pub kind: String,
    /// The old key.
    pub previous_fingerprint: String,
    /// The new key.
    pub new_fingerprint: String,
    /// Issue time.
    pub issued_at: String,
}

/// `POST /vault/public-key` answer (§7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    /// Encryption key id.
    pub encryption_key_id: String,
    /// Fingerprint of the registered key.
    pub fingerprint: String,
    /// `registered`, `unchanged` or `rotated`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_text(entries: usize, junk: usize) -> String {
        let items: Vec<String> = (0..entries)
            .map(|n| format!(r#"{{"id":"{n:024x}","name":"item {n}","type":"LOGIN","version":{n},"websites":[],"createdAt":"t","fieldCount":3}}"#))
            .collect();
        let junk: Vec<&str> = (0..junk).map(|_| r#"{"version":1}"#).collect();
        format!(
            r#"{{"items":[{}],"junk":[{}],"vaultId":"v","count":{entries},"checkpoint":{{"kind":"r4.vault-summary.v1","vaultId":"v","version":7,"itemsDigest":"d","issuedAt":"t","signerKeyId":"k","signature":"s"}}}}"#,
            items.join(","),
            junk.join(",")
        )
    }

    #[test]
    fn an_item_list_is_read_into_one_allocation_of_its_size() {
        for n in [0, 1, 7, 1000] {
            let text = list_text(n, 0);
            let list = ItemList::from_json(text.as_bytes()).expect("parses");
            let generic: ItemList = from_json(text.as_bytes()).expect("parses");
            assert_eq!(list.items, generic.items);
            assert_eq!(list.items.len(), n);
            // One `"version"` per entry and the checkpoint's.
            assert_eq!(list.items.capacity(), n + 1, "{n} entries");
            assert_eq!(list.checkpoint.body().version, 7);
        }
        // The room is this answer's only: a list read otherwise grows.
        let after: ItemList = from_json(list_text(3, 0).as_bytes()).expect("parses");
        assert!(after.items.capacity() < 1001);
        assert!(ItemList::from_json(b"{\"items\":[{\"version\":1}]}").is_err());
        let not_a_list = ItemList::from_json(b"{\"items\":7}").expect_err("not an array");
        assert!(
            not_a_list.contains("an array of item list entries"),
            "{not_a_list}"
        );
        // An answer that fails before its list leaves no room behind.
        assert!(ItemList::from_json(b"{\"count\":\"x\",\"items\":[{\"version\":1}]}").is_err());
        assert_eq!(LIST_ROOM.with(|r| r.get()), 0);
    }

    #[test]
    fn repeated_version_members_reserve_no_more_than_the_text_can_hold() {
        let text = list_text(2, 5000);
        let list = ItemList::from_json(text.as_bytes()).expect("parses");
        assert_eq!(list.items.len(), 2);
        assert!(list.items.capacity() <= text.len() / SHORTEST_ENTRY);
        assert!(list.items.capacity() > 2, "the count is used up to the cap");
    }

    #[test]
    fn an_answer_that_is_not_utf8_is_refused_wherever_the_bad_byte_is() {
        let ok: serde_json::Value = from_json(b"{\"a\":\"\\u00e9\xc3\xa9\"}").expect("valid");
        assert_eq!(ok["a"], "\u{e9}\u{e9}");
        for bad in [
            &b"{\"a\":\"\xff\"}"[..],
            b"{\"\xc3\":1}",
            b"{\"a\":1}\xff",
            b"\xef\xbb",
        ] {
            let err = from_json::<serde_json::Value>(bad).expect_err("not UTF-8");
            assert!(err.starts_with("not UTF-8"), "{err}");
        }
        assert!(from_json::<serde_json::Value>(b"{\"a\":").is_err());
    }
}
