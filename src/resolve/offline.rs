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
