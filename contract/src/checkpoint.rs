//! Verification of wrapped keys and checkpoints (contract §4), including the
//! replay rules of §4.5. Each function checks one object against what the
//! client asked for and against a [`VerifiedDirectory`].

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeSet, HashMap};

use crate::canon::{write_summary_entry, ObjectWriter};
use crate::crypto::{digest, Digester, PrivateKey, PublicKey};
use crate::directory::{Role, Signer, VerifiedDirectory};
use crate::error::VerifyError;
use crate::secret::Dek;
use crate::signed::Signed;
use crate::wire::{
    kind, Field, FieldResponse, ItemCheckpoint, ItemDetail, ItemSummary, VaultSummary, WrappedKey,
    WRAP_ALGORITHM,
};

fn check_kind(found: &str, expected: &'static str) -> Result<(), VerifyError> {
    if found == expected {
        Ok(())
    } else {
        Err(VerifyError::WrongKind {
            expected,
            found: found.to_string(),
        })
    }
}

fn check_vault(found: &str, asked: &str) -> Result<(), VerifyError> {
    if found == asked {
        Ok(())
    } else {
        Err(VerifyError::WrongVault {
            found: found.to_string(),
        })
    }
}

/// Checks a wrapped key for vault `vault_id` (whose encryption key id is
/// `encryption_key_id`, when the vault entry names one) addressed to
/// `my_fingerprint` (§4.1), then unwraps it with `key`.
pub fn verify_and_unwrap<'d>(
    wk: &Signed<WrappedKey>,
    vault_id: &str,
    encryption_key_id: Option<&str>,
    key: &PrivateKey,
    dir: &'d VerifiedDirectory,
) -> Result<(Dek, &'d Signer), VerifyError> {
    let signer = verify_wrapped_key(wk, vault_id, encryption_key_id, key.fingerprint(), dir)?;
    let dek = key
        .unwrap_dek(&wk.body().wrapped_dek)
        .map_err(VerifyError::Unwrap)?;
    Ok((dek, signer))
}

/// The checks of §4.1 without the unwrap.
pub fn verify_wrapped_key<'d>(
    wk: &Signed<WrappedKey>,
    vault_id: &str,
    encryption_key_id: Option<&str>,
    my_fingerprint: &str,
    dir: &'d VerifiedDirectory,
) -> Result<&'d Signer, VerifyError> {
    let body = wk.body();
    check_kind(&body.kind, kind::WRAPPED_KEY)?;
    check_vault(&body.vault_id, vault_id)?;
    if let Some(ekid) = encryption_key_id {
        if body.encryption_key_id != ekid {
            return Err(VerifyError::WrongEncryptionKey);
        }
    }
    if body.algorithm != WRAP_ALGORITHM {
        return Err(VerifyError::WrongAlgorithm(body.algorithm.clone()));
    }
    if body.recipient_fingerprint != my_fingerprint {
        return Err(VerifyError::WrongRecipient {
            found: body.recipient_fingerprint.clone(),
        });
    }
    dir.check(wk, Role::WrappedKeyFor(my_fingerprint))
}

/// `itemsDigest` of an item list (§4.2): JCS of the `{id,name,type,version,websites}`
/// entries sorted by id (byte order).
pub fn items_digest<'a>(items: impl IntoIterator<Item = &'a ItemSummary>) -> String {
    let entries: Vec<&ItemSummary> = items.into_iter().collect();
    let order = id_order(&entries);
    items_digest_sorted(order.iter().map(|&i| entries[i]))
}

/// [`items_digest`] of entries already in id order.
fn items_digest_sorted<'a>(entries: impl Iterator<Item = &'a ItemSummary>) -> String {
    // Written straight as JCS (members in JCS order), not through a
    // `serde_json::Value`: the same bytes as `canonical_of` of the entries
    // (a test compares them), without a map per entry; hashed in parts of
    // about `PART` bytes, so that the whole array is never held.
    const PART: usize = 16 << 10;
    let mut hash = Digester::new();
    let mut out = Vec::with_capacity(PART + 1024);
    out.push(b'[');
    for (n, i) in entries.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_summary_entry(
            &mut out,
            &i.id,
            &i.name,
            &i.item_type,
            i.version,
            &i.websites,
        );
        if out.len() >= PART {
            hash.update(&out);
            out.clear();
        }
    }
    out.push(b']');
    hash.update(&out);
    hash.finish()
}

/// `itemDigest` of an item (§4.3): JCS of `{id,name,type,vaultId,websites}`.
pub fn item_digest(item: &ItemDetail) -> String {
    // As in `items_digest`: JCS written directly.
    let mut out = Vec::with_capacity(256);
    ObjectWriter::new(&mut out)
        .str("id", &item.id)
        .str("name", &item.name)
        .str("type", &item.item_type)
        .str("vaultId", &item.vault_id)
        .strs("websites", &item.websites)
        .finish();
    digest(&out)
}

/// `fieldDigests[fid]` of a field (§4.3): JCS of `{id,isSecret,name,type,value}`.
pub fn field_digest(field: &Field) -> String {
    // As in `items_digest`: JCS written directly, the value not copied.
    let mut out = Vec::with_capacity(field.value.len() + 128);
    ObjectWriter::new(&mut out)
        .str("id", &field.id)
        .bool("isSecret", field.is_secret)
        .str("name", &field.name)
        .str("type", &field.field_type)
        .str("value", &field.value)
        .finish();
    digest(&out)
}

/// The item list entries a set of item details implies (§4.2, §6.3): each
/// item with the version of its detail checkpoint, which is what a client
/// re-verifies `itemsDigest` over after a sync. A lie about a version changes
/// `itemsDigest`.
pub fn summary_entries<'a>(items: impl IntoIterator<Item = &'a ItemDetail>) -> Vec<ItemSummary> {
    items
        .into_iter()
        .map(|i| ItemSummary {
            id: i.id.as_str().into(),
            name: i.name.as_str().into(),
            item_type: i.item_type.as_str().into(),
            websites: i.websites.clone(),
            version: i.checkpoint.body().version,
        })
        .collect()
}

/// The unsigned `r4.item-detail.v1` checkpoint that vouches for `detail` at
/// `version` (§4.3): its item digest and one digest per field. Sign it with
/// [`Signed::sign`]. (`detail.checkpoint` itself is not read.)
pub fn item_checkpoint(detail: &ItemDetail, version: u64, issued_at: &str) -> ItemCheckpoint {
    ItemCheckpoint {
        kind: kind::ITEM_DETAIL.into(),
        vault_id: detail.vault_id.clone(),
        item_id: detail.id.clone(),
        version,
        item_digest: item_digest(detail),
        field_digests: detail
            .fields
            .iter()
            .map(|f| (f.id.clone(), field_digest(f)))
            .collect(),
        issued_at: issued_at.into(),
        signer_key_id: String::new(),
        signature: String::new(),
    }
}

/// The unsigned `r4.wrapped-key.v1` object (§4.1) that wraps `dek` (version
/// `dek_version` of vault `vault_id`'s key `encryption_key_id`) to
/// `recipient` with RSA-OAEP-256. Sign it with [`Signed::sign`].
pub fn wrapped_key(
    vault_id: &str,
    encryption_key_id: &str,
    dek_version: u64,
    recipient: &PublicKey,
    dek: &Dek,
    issued_at: &str,
) -> WrappedKey {
    WrappedKey {
        kind: kind::WRAPPED_KEY.into(),
        vault_id: vault_id.into(),
        encryption_key_id: encryption_key_id.into(),
        recipient_fingerprint: recipient.fingerprint().into(),
        dek_version,
        algorithm: WRAP_ALGORITHM.into(),
        wrapped_dek: recipient.wrap_dek(dek),
        issued_at: issued_at.into(),
        signer_key_id: String::new(),
        signature: String::new(),
    }
}

/// A vault summary that verified: its version and its items, found by id.
///
/// The entries are the list the summary was checked over, borrowed from the
/// fetched answer (the referenced plan's item list) or owned (built from a
/// sync's details), never copied: a vault of 10 000 items is 10 000 entries
/// of four strings each. Lookups go through their positions in id order,
/// which `itemsDigest` needs anyway.
#[derive(Debug, Clone)]
pub struct VerifiedSummary<'a> {
    /// The vault.
    pub vault_id: String,
    /// Summary version.
    pub version: u64,
    entries: Cow<'a, [ItemSummary]>,
    /// Positions in `entries`, in id order (ids are distinct).
    order: Vec<usize>,
}

impl VerifiedSummary<'_> {
    /// The entry of `item_id`.
    pub fn get(&self, item_id: &str) -> Option<&ItemSummary> {
        let found = self
            .order
            .binary_search_by(|&i| self.entries[i].id.as_bytes().cmp(item_id.as_bytes()))
            .ok()?;
        Some(&self.entries[self.order[found]])
    }

    /// Every entry, in id order.
    pub fn items(&self) -> impl Iterator<Item = &ItemSummary> + Clone {
        self.order.iter().map(|&i| &self.entries[i])
    }

    /// How many items the vault holds.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the vault holds no item.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Checks an item list against its summary checkpoint (§4.2).
pub fn verify_summary<'a>(
    items: &'a [ItemSummary],
    cp: &Signed<VaultSummary>,
    vault_id: &str,
    dir: &VerifiedDirectory,
) -> Result<VerifiedSummary<'a>, VerifyError> {
    check_summary(Cow::Borrowed(items), cp, vault_id, dir)
}

/// [`verify_summary`] of a list the caller built for it (a sync answer's
/// [`summary_entries`]): the same checks, the entries moved into the
/// verified summary.
pub fn verify_summary_owned(
    items: Vec<ItemSummary>,
    cp: &Signed<VaultSummary>,
    vault_id: &str,
    dir: &VerifiedDirectory,
) -> Result<VerifiedSummary<'static>, VerifyError> {
    check_summary(Cow::Owned(items), cp, vault_id, dir)
}

/// Positions of `entries` in id order (byte order), the one order of
/// `itemsDigest`. Each id's first 16 bytes, zero-padded, are compared as one
/// big-endian number and only equal prefixes compare the whole ids: the
/// same order as comparing the ids (a shorter id that pads to the same
/// prefix is decided by the whole comparison), a tenth of the cost at
/// 10 000 entries.
fn id_order<T: Borrow<ItemSummary>>(entries: &[T]) -> Vec<usize> {
    let id = |i: usize| entries[i].borrow().id.as_bytes();
    let mut keyed: Vec<(u128, usize)> = (0..entries.len())
        .map(|i| {
            let mut prefix = [0u8; 16];
            let len = id(i).len().min(16);
            prefix[..len].copy_from_slice(&id(i)[..len]);
            (u128::from_be_bytes(prefix), i)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| id(a.1).cmp(id(b.1))));
    keyed.into_iter().map(|(_, i)| i).collect()
}

fn check_summary<'a>(
    entries: Cow<'a, [ItemSummary]>,
    cp: &Signed<VaultSummary>,
    vault_id: &str,
    dir: &VerifiedDirectory,
) -> Result<VerifiedSummary<'a>, VerifyError> {
    let body = cp.body();
    check_kind(&body.kind, kind::VAULT_SUMMARY)?;
    check_vault(&body.vault_id, vault_id)?;
    dir.check(cp, Role::Checkpoint)?;
    let order = id_order(&entries);
    if items_digest_sorted(order.iter().map(|&i| &entries[i])) != body.items_digest {
        return Err(VerifyError::ItemsDigest);
    }
    // Sorted, so a repeated id is next to itself.
    if order
        .windows(2)
        .any(|w| entries[w[0]].id == entries[w[1]].id)
    {
        return Err(VerifyError::Malformed("duplicate item id in list"));
    }
    Ok(VerifiedSummary {
        vault_id: vault_id.to_string(),
        version: body.version,
        entries,
        order,
    })
}

fn check_item_checkpoint<'d>(
    cp: &Signed<ItemCheckpoint>,
    vault_id: &str,
    item_id: &str,
    summary: &VerifiedSummary,
    dir: &'d VerifiedDirectory,
) -> Result<&'d Signer, VerifyError> {
    let body = cp.body();
    check_kind(&body.kind, kind::ITEM_DETAIL)?;
    check_vault(&body.vault_id, vault_id)?;
    if body.item_id != item_id {
        return Err(VerifyError::WrongItem {
            found: body.item_id.clone(),
        });
    }
    let signer = dir.check(cp, Role::Checkpoint)?;
    let listed = summary
        .get(item_id)
        .ok_or_else(|| VerifyError::NotInSummary(item_id.to_string()))?;
    if listed.version != body.version {
        return Err(VerifyError::StaleDetail {
            detail: body.version,
            summary: listed.version,
        });
    }
    Ok(signer)
}

/// Checks an item detail asked as `vault_id`/`item_id` (§4.3): checkpoint
/// kind, ids, signature, version against the summary, item digest, the set of
/// fields and each field digest. Returns the signer that vouched for it.
pub fn verify_item<'d>(
    item: &ItemDetail,
    vault_id: &str,
    item_id: &str,
    summary: &VerifiedSummary,
    dir: &'d VerifiedDirectory,
) -> Result<&'d Signer, VerifyError> {
    let signer = check_item_checkpoint(&item.checkpoint, vault_id, item_id, summary, dir)?;
    let cp = item.checkpoint.body();
    if item.id != item_id {
        return Err(VerifyError::WrongItem {
            found: item.id.clone(),
        });
    }
    check_vault(&item.vault_id, vault_id)?;
    if item_digest(item) != cp.item_digest {
        return Err(VerifyError::ItemDigest);
    }
    let returned: BTreeSet<&str> = item.fields.iter().map(|f| f.id.as_str()).collect();
    let signed: BTreeSet<&str> = cp.field_digests.keys().map(String::as_str).collect();
    if returned != signed || returned.len() != item.fields.len() {
        return Err(VerifyError::FieldSet);
    }
    for field in &item.fields {
        if cp.field_digests.get(&field.id) != Some(&field_digest(field)) {
            return Err(VerifyError::FieldDigest(field.id.clone()));
        }
    }
    Ok(signer)
}

/// Checks one field fetched as `vault_id`/`field_id` (§4.4), whose parent item
/// must be `item_id` when the caller knows it.
pub fn verify_field<'d>(
    resp: &FieldResponse,
    vault_id: &str,
    field_id: &str,
    item_id: Option<&str>,
    summary: &VerifiedSummary,
    dir: &'d VerifiedDirectory,
) -> Result<&'d Signer, VerifyError> {
    if resp.field.id != field_id {
        return Err(VerifyError::FieldDigest(resp.field.id.clone()));
    }
    let parent = item_id.unwrap_or(&resp.field.item_id);
    if resp.field.item_id != parent {
        return Err(VerifyError::WrongItem {
            found: resp.field.item_id.clone(),
        });
    }
    let signer = check_item_checkpoint(&resp.checkpoint, vault_id, parent, summary, dir)?;
    let expected = resp.checkpoint.body().field_digests.get(field_id);
    if expected != Some(&field_digest(&resp.field.to_field())) {
        return Err(VerifyError::FieldDigest(field_id.to_string()));
    }
    Ok(signer)
}

/// The highest summary version seen per vault in this process (§4.5): a
/// version that goes backwards is a rollback and is refused.
#[derive(Debug, Clone, Default)]
pub struct VersionFloor {
    seen: HashMap<String, u64>,
}

impl VersionFloor {
    /// Records `summary`, refusing it if older than one already seen.
    pub fn observe(&mut self, summary: &VerifiedSummary) -> Result<(), VerifyError> {
        self.observe_version(&summary.vault_id, summary.version)
    }

    /// Records `version` of vault `vault_id`, refusing it if older than one
    /// already seen. Only for versions that were verified when first seen
    /// (r4-exec's stored fallback copy keeps them under its own signature).
    pub fn observe_version(&mut self, vault_id: &str, version: u64) -> Result<(), VerifyError> {
        let entry = self.seen.entry(vault_id.to_string()).or_insert(0);
        if version < *entry {
            return Err(VerifyError::Rollback {
                seen: *entry,
                found: version,
            });
        }
        *entry = version;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The digests write their JCS directly; these compare them with the
    //! generic path (`serde_json::Value`, then `canonical`) they replaced.
    use super::*;
    use crate::canon::canonical_of;
    use proptest::prelude::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct SummaryEntry<'a> {
        id: &'a str,
        name: &'a str,
        #[serde(rename = "type")]
        item_type: &'a str,
        version: u64,
        websites: &'a [String],
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ItemDigestInput<'a> {
        id: &'a str,
        name: &'a str,
        #[serde(rename = "type")]
        item_type: &'a str,
        vault_id: &'a str,
        websites: &'a [String],
    }

    fn summary(id: &str, name: &str, t: &str, version: u64, websites: &[String]) -> ItemSummary {
        ItemSummary {
            id: id.into(),
            name: name.into(),
            item_type: t.into(),
            websites: websites.to_vec(),
            version,
        }
    }

    fn generic_items_digest(items: &[ItemSummary]) -> String {
        let mut entries: Vec<SummaryEntry<'_>> = items
            .iter()
            .map(|i| SummaryEntry {
                id: &i.id,
                name: &i.name,
                item_type: &i.item_type,
                version: i.version,
                websites: &i.websites,
            })
            .collect();
        entries.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
        digest(&canonical_of(&entries))
    }

    /// Any text, with the characters JCS escapes and non-BMP ones likely.
    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\u{1}'),
                Just('\u{1f}'),
                Just('\u{7f}'),
                Just('\u{e000}'),
                Just('\u{1f600}'),
                any::<char>(),
                prop::char::range('a', 'z'),
            ],
            0..12,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn field_digest_is_the_generic_jcs(id in text(), name in text(), t in text(), value in text(), secret in any::<bool>()) {
            let field = Field { id, name, field_type: t, value, is_secret: secret };
            prop_assert_eq!(field_digest(&field), digest(&canonical_of(&field)));
        }

        #[test]
        fn item_digest_is_the_generic_jcs(id in text(), name in text(), t in text(), vid in text(), websites in prop::collection::vec(text(), 0..3)) {
            let item = ItemDetail {
                id, name, item_type: t, websites, vault_id: vid,
                encryption_key_id: None, fields: Vec::new(),
                checkpoint: Signed::from_raw(
                    serde_json::from_str(r#"{"kind":"k","vaultId":"v","itemId":"i","version":1,"itemDigest":"d","fieldDigests":{},"issuedAt":"t","signerKeyId":"s"}"#)
                        .expect("object"),
                ).expect("checkpoint"),
            };
            let generic = digest(&canonical_of(&ItemDigestInput {
                id: &item.id, name: &item.name, item_type: &item.item_type,
                vault_id: &item.vault_id, websites: &item.websites,
            }));
            prop_assert_eq!(item_digest(&item), generic);
        }

        #[test]
        fn the_id_order_is_the_byte_order_of_the_ids(
            ids in prop::collection::vec(
                prop::collection::vec(prop_oneof![Just(0u8), Just(b'a'), Just(b'b'), Just(0xffu8)], 0..20),
                0..40,
            )
        ) {
            // Bytes 0, 'a', 'b' and 0xff, lengths around the 16-byte prefix:
            // padded prefixes that tie, prefixes that tie and ids that differ
            // after them, repeated ids.
            let ids: Vec<String> = ids
                .into_iter()
                .map(|b| b.into_iter().map(|c| char::from(c.min(0x7f))).collect())
                .collect();
            let entries: Vec<ItemSummary> = ids.iter().map(|i| summary(i, "", "", 0, &[])).collect();
            let order = id_order(&entries);
            let ours: Vec<&str> = order.iter().map(|&i| entries[i].id.as_str()).collect();
            let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
            expected.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            prop_assert_eq!(ours, expected);
            let mut seen = order.clone();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..entries.len()).collect::<Vec<_>>());
        }

        #[test]
        fn items_digest_is_the_generic_jcs(
            items in prop::collection::vec((text(), text(), text(), any::<u64>(), prop::collection::vec(text(), 0..3)), 0..5)
        ) {
            let items: Vec<ItemSummary> = items.iter().map(|(i, n, t, v, w)| summary(i, n, t, *v, w)).collect();
            prop_assert_eq!(items_digest(&items), generic_items_digest(&items));
        }
    }

    #[test]
    fn a_list_hashed_in_parts_is_the_digest_of_the_whole_list() {
        // About 300 KB of JCS: many parts, entries of every length across
        // the part boundaries.
        let items: Vec<ItemSummary> = (0..3000)
            .map(|n| {
                summary(
                    &format!("{n:024x}"),
                    &"n".repeat(n % 97),
                    "LOGIN",
                    n as u64,
                    &[],
                )
            })
            .collect();
        assert_eq!(items_digest(&items), generic_items_digest(&items));
        let mut parts = Digester::new();
        for chunk in b"[1,2,3]".chunks(2) {
            parts.update(chunk);
        }
        assert_eq!(parts.finish(), digest(b"[1,2,3]"));
    }

    #[test]
    fn the_empty_list_and_a_known_entry() {
        assert_eq!(items_digest(&[]), digest(b"[]"));
        let one = summary("b", "x\"y", "LOGIN", 7, &["https://e".into()]);
        let two = summary("a", "\u{1f600}", "API_KEY", u64::MAX, &[]);
        let expected = format!(
            r#"[{{"id":"a","name":"{}","type":"API_KEY","version":{},"websites":[]}},{{"id":"b","name":"x\"y","type":"LOGIN","version":7,"websites":["https://e"]}}]"#,
            '\u{1f600}',
            u64::MAX
        );
        assert_eq!(items_digest(&[one, two]), digest(expected.as_bytes()));
    }
}
