//! What of a verified answer goes into the fallback copy (`crate::fallback`)
//! and how it is read back into a [`Fetched`] that [`super::verify`]
//! verifies exactly like a live one.
//!
//! Kept: the entries of the vaults the resolution used, as fetched — each
//! with its directory, wrapped key and summary, and either every item
//! detail (sync plan: the summary's `itemsDigest` is recomputed over them)
//! or its item list and the named details (referenced plan) — the list of
//! every vault visible (names and ids, so that a name selects exactly as it
//! did live) and the project answer. Not kept: the other vaults' contents
//! (unverified, and an unencrypted or legacy one would put plaintext on
//! disk), the legacy key, any DEK or value.
//!
//! Nothing is kept when the resolution used a legacy or unencrypted vault,
//! or when any value about to be written is not a v3 envelope: the copy
//! must never hold plaintext, and a legacy vault could not be opened
//! offline anyway (its key is the server's).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::envelope::is_envelope;
use crate::contract::wire::{ItemSummary, Removed, SyncResponse, SyncVault, Vault};
use crate::contract::VaultModel;

use super::{project, Fetched, Listed, Resolved};

/// Version of the body layout.
const FORMAT: u32 = 1;

/// The body as written: borrowed from the answer, nothing copied.
#[derive(Serialize)]
struct KeptRef<'a> {
    format: u32,
    sync: SyncRef<'a>,
    listed: ListedRef<'a>,
    project: Option<&'a project::Fetched>,
}

/// [`Listed`], borrowed.
#[derive(Serialize)]
struct ListedRef<'a> {
    vaults: Vec<&'a Vault>,
    items: BTreeMap<&'a str, &'a Vec<ItemSummary>>,
}

/// A sync answer restricted to some of its vaults.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncRef<'a> {
    cursor: &'a str,
    mode: &'a str,
    vaults: Vec<&'a SyncVault>,
    removed: &'a Removed,
}

/// The body as read back.
#[derive(Deserialize)]
struct Kept {
    format: u32,
    sync: SyncResponse,
    listed: Listed,
    project: Option<project::Fetched>,
}

/// The body of a fallback copy of `fetched`, which `resolved` came from;
/// or why none may be written (names and ids only).
pub fn keep(fetched: &Fetched, resolved: &Resolved) -> Result<Vec<u8>, String> {
    for used in &resolved.vaults {
        match used.model {
            VaultModel::V3 => {}
            VaultModel::Legacy => return Err(format!(
                "vault {} is a legacy vault: its values need the key the server holds, which is never stored",
                used.id
            )),
            VaultModel::Unencrypted => return Err(format!(
                "vault {} is unencrypted: its values would be stored in plaintext",
                used.id
            )),
        }
    }
    let vaults: Vec<&SyncVault> = fetched
        .sync
        .vaults
        .iter()
        .filter(|v| resolved.vaults.iter().any(|u| u.id == v.vault.id))
        .collect();
    vaults.iter().try_for_each(|v| only_envelopes(v))?;
    if let Some(project::Fetched::Env(env)) = &fetched.project {
        if let Some(name) = env
            .env
            .iter()
            .find(|(_, v)| !is_envelope(v))
            .map(|(n, _)| n)
        {
            return Err(format!(
                "/vault/env/{} holds {name} in plaintext",
                env.project_id
            ));
        }
    }
    let used = |id: &str| resolved.vaults.iter().any(|u| u.id == id);
    let listed = match &fetched.listed {
        Some(l) => ListedRef {
            vaults: l.vaults.iter().collect(),
            items: l
                .items
                .iter()
                .filter(|(id, _)| used(id))
                .map(|(id, items)| (id.as_str(), items))
                .collect(),
        },
        None => ListedRef {
            vaults: fetched.sync.vaults.iter().map(|v| &v.vault).collect(),
            items: BTreeMap::new(),
        },
    };
    let body = KeptRef {
        format: FORMAT,
        sync: SyncRef {
            cursor: &fetched.sync.cursor,
            mode: &fetched.sync.mode,
            vaults,
            removed: &fetched.sync.removed,
        },
        listed,
        project: fetched.project.as_ref(),
    };
    // Sized for the item lists, which are nearly all of a large copy (an
    // entry serialises to about 100 bytes): a `Vec` grown from nothing to
    // 1.5 MB copied and wiped each block it outgrew.
    let entries: usize = body.listed.items.values().map(|items| items.len()).sum();
    let mut out = Vec::with_capacity(entries * 96 + (64 << 10));
    serde_json::to_writer(&mut out, &body).expect("wire types serialize");
    Ok(out)
}

/// Refuses a vault with a field value that is not an envelope (empty
/// values carry nothing and pass): a v3 vault should have none, and a
/// server that sends one anyway must not get it written to disk.
fn only_envelopes(v: &SyncVault) -> Result<(), String> {
    for item in &v.items {
        if let Some(f) = item
            .fields
            .iter()
            .find(|f| !f.value.is_empty() && !is_envelope(&f.value))
        {
            return Err(format!(
                "field {} of item {} in vault {} is not an envelope",
                f.id, item.id, v.vault.id
            ));
        }
    }
    Ok(())
}

/// Reads a body [`keep`] wrote back into an answer to verify.
pub fn restore(body: &[u8]) -> Result<Fetched, &'static str> {
    let kept: Kept =
        crate::contract::wire::from_json(body).map_err(|_| "the answer does not parse")?;
    if kept.format != FORMAT {
        return Err("written by another version of r4-exec");
    }
    Ok(Fetched {
        note: format!(
            "plan: the fallback copy ({} of {} vaults kept)",
            kept.sync.vaults.len(),
            kept.listed.vaults.len()
        ),
        sync: kept.sync,
        listed: Some(kept.listed),
        project: kept.project,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A sync vault entry of vault `id` whose one field holds `value`
    /// (the signed objects are shapes only: nothing here verifies them).
    fn sync_vault(id: &str, value: &str) -> SyncVault {
        let head = json!({"kind": "r4.tree-head.v1", "logId": "l", "treeSize": 1,
            "rootHash": "r", "issuedAt": "t", "signerKeyId": "k"});
        let summary = json!({"kind": "r4.vault-summary.v1", "vaultId": id, "version": 1,
            "itemsDigest": "d", "issuedAt": "t", "signerKeyId": "k"});
        let detail = json!({"kind": "r4.item-detail.v1", "vaultId": id, "itemId": "i",
            "version": 1, "itemDigest": "d", "fieldDigests": {}, "issuedAt": "t",
            "signerKeyId": "k"});
        serde_json::from_value(json!({
            "vault": {"id": id, "name": id},
            "wrappedKey": null,
            "signers": {"vaultId": id, "signers": [], "treeHead": head},
            "checkpoint": summary,
            "items": [{"id": "i", "name": "I", "type": "LOGIN", "vaultId": id,
                "fields": [{"id": "f", "name": "F", "type": "TEXT", "value": value,
                    "isSecret": true}],
                "checkpoint": detail}],
        }))
        .unwrap()
    }

    fn fetched(vaults: Vec<SyncVault>, listed: Option<Listed>) -> Fetched {
        Fetched {
            sync: SyncResponse {
                cursor: "c".into(),
                mode: "full".into(),
                vaults,
                removed: Removed::default(),
            },
            listed,
            project: None,
            note: String::new(),
        }
    }

    fn used(ids: &[(&str, VaultModel)]) -> Resolved {
        Resolved {
            vaults: ids
                .iter()
                .map(|&(id, model)| super::super::UsedVault {
                    id: id.into(),
                    version: 1,
                    model,
                })
                .collect(),
            ..Resolved::default()
        }
    }

    const SEALED: &str = "r4v3.header.iv.ciphertext";

    #[test]
    fn a_copy_keeps_the_vaults_used_and_reads_back() {
        let answer = fetched(vec![sync_vault("a", SEALED), sync_vault("b", SEALED)], None);
        let body = keep(&answer, &used(&[("b", VaultModel::V3)])).unwrap();
        let back = restore(&body).unwrap();
        let kept: Vec<&str> = back
            .sync
            .vaults
            .iter()
            .map(|v| v.vault.id.as_str())
            .collect();
        assert_eq!(kept, ["b"], "only the vault the resolution used");
        let visible: Vec<&str> = back
            .listed
            .as_ref()
            .unwrap()
            .vaults
            .iter()
            .map(|v| v.id.as_str())
            .collect();
        assert_eq!(
            visible,
            ["a", "b"],
            "every visible vault, to select names as live"
        );
        assert_eq!(back.sync.cursor, "c");
        assert_eq!(back.note, "plan: the fallback copy (1 of 2 vaults kept)");
    }

    #[test]
    fn the_item_lists_kept_are_those_of_the_vaults_used() {
        let entry = |id: &str| ItemSummary {
            id: id.into(),
            name: "I".into(),
            item_type: "LOGIN".into(),
            websites: vec![],
            version: 1,
        };
        let listed = Listed {
            vaults: vec![sync_vault("a", "").vault, sync_vault("b", "").vault],
            items: [
                ("a".to_string(), vec![entry("x")]),
                ("b".to_string(), vec![entry("y")]),
            ]
            .into_iter()
            .collect(),
        };
        let answer = fetched(vec![sync_vault("b", SEALED)], Some(listed));
        let back = restore(&keep(&answer, &used(&[("b", VaultModel::V3)])).unwrap()).unwrap();
        let lists = back.listed.unwrap().items;
        assert_eq!(lists.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(lists["b"], [entry("y")]);
    }

    /// The attack: a server that serves a plaintext value in a vault it
    /// calls encrypted (or a legacy or unencrypted vault) would get it
    /// written to disk by the copy.
    #[test]
    fn nothing_that_is_not_an_envelope_is_ever_kept() {
        let plain = fetched(vec![sync_vault("a", "hunter2")], None);
        let err = keep(&plain, &used(&[("a", VaultModel::V3)])).unwrap_err();
        assert_eq!(err, "field f of item i in vault a is not an envelope");
        assert!(!err.contains("hunter2"));
        let empty = fetched(vec![sync_vault("a", "")], None);
        assert!(
            keep(&empty, &used(&[("a", VaultModel::V3)])).is_ok(),
            "an empty value carries nothing"
        );
        let sealed = fetched(vec![sync_vault("a", SEALED)], None);
        for model in [VaultModel::Legacy, VaultModel::Unencrypted] {
            assert!(keep(&sealed, &used(&[("a", model)])).is_err(), "{model:?}");
        }
        let mut project = fetched(vec![sync_vault("a", SEALED)], None);
        let env = |value: &str| {
            Some(project::Fetched::Env(
                serde_json::from_value(
                    json!({"env": {"A": SEALED, "B": value}, "projectId": "p", "count": 2}),
                )
                .unwrap(),
            ))
        };
        project.project = env("hunter2");
        let err = keep(&project, &used(&[("a", VaultModel::V3)])).unwrap_err();
        assert_eq!(err, "/vault/env/p holds B in plaintext");
        project.project = env(SEALED);
        assert!(keep(&project, &used(&[("a", VaultModel::V3)])).is_ok());
    }

    #[test]
    fn a_copy_of_another_layout_is_not_read() {
        let answer = fetched(vec![sync_vault("a", SEALED)], None);
        let body = keep(&answer, &used(&[("a", VaultModel::V3)])).unwrap();
        let text = String::from_utf8(body).unwrap();
        let other = text.replacen(&format!("\"format\":{FORMAT}"), "\"format\":0", 1);
        assert_ne!(other, text);
        assert_eq!(
            restore(other.as_bytes()).err(),
            Some("written by another version of r4-exec")
        );
        assert_eq!(restore(b"{").err(), Some("the answer does not parse"));
    }
}
