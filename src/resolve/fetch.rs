//! How the answer is fetched (`[r4] plan`, `docs/plan.md`).
//!
//! - **sync**: one `GET /vault/sync`, every vault and item detail the key
//!   can read, in one round (plus the project answer, concurrently).
//! - **referenced**: only what explicit references name, from the
//!   per-endpoint calls: the vault list; then, for each named vault at
//!   once, its item list (with the summary checkpoint), wrapped key and
//!   signer directory; then every named item's detail at once. Three rounds,
//!   and bytes in proportion to what is referenced, not to what is visible.
//! - **auto** (default): the sync, unless its answer is larger than
//!   [`AUTO_SYNC_LIMIT`]; then it is not read further and, when every
//!   reference is explicit, the referenced plan is used. Small worlds keep
//!   their one round; large ones stop paying for what they do not use.
//!
//! Freshness is the same either way: the summary checkpoint is verified over
//! the vault's whole item list (`itemsDigest`), from the list endpoint or
//! from the sync's details, and each detail's version must match it.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::client::{Client, ClientError};
use crate::config::{Config, FetchPlan};
use crate::contract::wire::{
    ItemDetail, ItemList, ItemSummary, Removed, SignerDirectory, SyncResponse, SyncVault, Vault,
    WrappedKey,
};
use crate::contract::Signed;

use super::select::select;
use super::{general, project, Fetched, Problem};

/// Largest sync answer `auto` reads (about 125 items of three fields); a
/// larger one is dropped unread for the referenced plan.
pub const AUTO_SYNC_LIMIT: usize = 256 << 10;
/// Requests of one round in flight at once.
const IN_FLIGHT: usize = 16;

/// The lists the referenced plan selects from: every vault the key can
/// see, and the item list of each vault it fetched.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    /// `GET /vault`.
    pub vaults: Vec<Vault>,
    /// `GET /vault/:id/items`, by vault id.
    pub items: BTreeMap<String, Vec<ItemSummary>>,
}

/// Fetches by the configured plan. `referenced` needs explicit references
/// only (checked at start-up); with `[project]` every plan is the sync.
pub(super) async fn fetch(client: &Client, config: &Config) -> Result<Fetched, Vec<Problem>> {
    match (config.r4.plan, &config.project) {
        (FetchPlan::Referenced, None) => referenced(client, config, "plan = \"referenced\"").await,
        (FetchPlan::Auto, None) => auto(client, config).await,
        _ => sync(client, config).await,
    }
}

/// One `GET /vault/sync`, with the project answer concurrently.
async fn sync(client: &Client, config: &Config) -> Result<Fetched, Vec<Problem>> {
    let (sync, project) = tokio::join!(client.sync(None), project::fetch(client, config));
    let sync = sync.map_err(general)?;
    let project = project.map_err(general)?;
    Ok(Fetched {
        note: sync_note(&sync, project.as_ref()),
        sync,
        listed: None,
        project,
    })
}

/// The sync if it is small, else the referenced plan.
async fn auto(client: &Client, config: &Config) -> Result<Fetched, Vec<Problem>> {
    match client.sync_within(AUTO_SYNC_LIMIT).await.map_err(general)? {
        Some(sync) => Ok(Fetched {
            note: sync_note(&sync, None),
            sync,
            listed: None,
            project: None,
        }),
        None => {
            let why = format!(
                "auto: the sync answer is larger than {} KiB",
                AUTO_SYNC_LIMIT >> 10
            );
            referenced(client, config, &why).await
        }
    }
}

/// The `-v` line for a sync.
fn sync_note(sync: &SyncResponse, project: Option<&project::Fetched>) -> String {
    format!(
        "plan: sync in one round ({} vaults visible){}",
        sync.vaults.len(),
        match project {
            Some(project::Fetched::Detail(_)) => " + project detail",
            Some(project::Fetched::Env(_)) => " + /vault/env",
            None => "",
        }
    )
}

/// What one vault's three endpoints return.
struct Parts {
    vault: Vault,
    items: ItemList,
    wrapped_key: Option<Signed<WrappedKey>>,
    signers: SignerDirectory,
}

/// The referenced plan, in three rounds: list, named vaults, named items.
/// Selection here only decides what to fetch; `verify` selects again, from
/// the verified summaries, and reports what does not resolve.
async fn referenced(client: &Client, config: &Config, why: &str) -> Result<Fetched, Vec<Problem>> {
    let list = client.vaults(None).await.map_err(general)?.vaults;
    let named = named_vaults(&list, config);
    let parts = fetch_all(named.into_iter().map(|v| vault_parts(client.clone(), v))).await;
    let parts: Vec<Parts> = parts
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(general)?;
    let wanted = named_items(config, &list, &parts);
    let details = fetch_all(wanted.into_iter().map(|(vault_id, item_id)| {
        let client = client.clone();
        async move { client.item(&vault_id, &item_id).await }
    }))
    .await;
    let details: Vec<ItemDetail> = details
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(general)?;
    let note = format!(
        "plan: referenced ({why}): the vault list, then {} of {} vaults (item list, wrapped key, directory), then {} item details, in three rounds; a sync would carry {} items",
        parts.len(),
        list.len(),
        details.len(),
        list.iter().filter_map(|v| v.item_count).sum::<u64>(),
    );
    Ok(assemble(list, parts, details, note))
}

/// The vaults the entries name, each once, in entry order.
fn named_vaults(list: &[Vault], config: &Config) -> Vec<Vault> {
    let mut seen = HashSet::new();
    config
        .all_references()
        .iter()
        .filter_map(|e| select("vault", &e.reference.vault, list).ok())
        .filter(|v| seen.insert(v.id.clone()))
        .cloned()
        .collect()
}

/// `(vault id, item id)` of every item the entries name, each once.
fn named_items(config: &Config, list: &[Vault], parts: &[Parts]) -> Vec<(String, String)> {
    let mut seen = HashSet::new();
    let mut wanted = Vec::new();
    for e in &config.all_references() {
        let Ok(vault) = select("vault", &e.reference.vault, list) else {
            continue;
        };
        let Some(p) = parts.iter().find(|p| p.vault.id == vault.id) else {
            continue;
        };
        if let Ok(item) = select("item", &e.reference.item, &p.items.items) {
            if seen.insert((vault.id.clone(), item.id.clone())) {
                wanted.push((vault.id.clone(), item.id.clone()));
            }
        }
    }
    wanted
}

/// A vault's item list, wrapped key and directory, concurrently.
async fn vault_parts(client: Client, vault: Vault) -> Result<Parts, ClientError> {
    let id = vault.id.clone();
    let encrypted = vault.is_encrypted == Some(true);
    let (items, wrapped_key, signers) = tokio::join!(
        client.items(&id),
        wrapped_key(&client, &id, encrypted),
        client.public_keys(&id)
    );
    Ok(Parts {
        vault,
        items: items?,
        wrapped_key: wrapped_key?,
        signers: signers?,
    })
}

/// The vault's wrapped key; `None` for an unencrypted vault and where the
/// server has none (`404 wrapped_key_not_found`): a legacy vault, exactly
/// as a sync answer's `"wrappedKey": null` (§6.3).
async fn wrapped_key(
    client: &Client,
    vault_id: &str,
    encrypted: bool,
) -> Result<Option<Signed<WrappedKey>>, ClientError> {
    if !encrypted {
        return Ok(None);
    }
    match client.wrapped_key(vault_id).await {
        Ok(wk) => Ok(Some(wk)),
        Err(e) if e.code() == Some("wrapped_key_not_found") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The answer in the sync's shape (named vaults only, named items only),
/// with the lists the summaries are verified over.
fn assemble(
    list: Vec<Vault>,
    parts: Vec<Parts>,
    mut details: Vec<ItemDetail>,
    note: String,
) -> Fetched {
    let mut listed = Listed {
        vaults: list,
        items: BTreeMap::new(),
    };
    let mut vaults = Vec::with_capacity(parts.len());
    for p in parts {
        let (mine, rest) = details.into_iter().partition(|d| d.vault_id == p.vault.id);
        details = rest;
        listed.items.insert(p.vault.id.clone(), p.items.items);
        vaults.push(SyncVault {
            vault: p.vault,
            wrapped_key: p.wrapped_key,
            signers: p.signers,
            checkpoint: p.items.checkpoint,
            items: mine,
        });
    }
    Fetched {
        sync: SyncResponse {
            cursor: String::new(),
            mode: "referenced".into(),
            vaults,
            removed: Removed::default(),
        },
        listed: Some(listed),
        project: None,
        note,
    }
}

/// Runs `jobs` concurrently, at most [`IN_FLIGHT`] at a time; their
/// outputs in job order.
async fn fetch_all<T, F>(jobs: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut jobs = jobs.into_iter().enumerate();
    let mut set = JoinSet::new();
    let mut out = Vec::new();
    loop {
        while set.len() < IN_FLIGHT {
            let Some((i, job)) = jobs.next() else { break };
            set.spawn(async move { (i, job.await) });
        }
        match set.join_next().await {
            Some(Ok(done)) => out.push(done),
            Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            None => break,
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}
