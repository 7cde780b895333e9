//! How the answer is fetched (`[r4] plan`, `docs/plan.md`).
//!
//! - **sync**: one `GET /vault/sync`, every vault and item detail the key
//!   can read, in one round (plus the project answer, concurrently).
//! - **referenced**: only what explicit references name, from the
//!   per-endpoint calls: the vault list; then, for each named vault at
//!   once, its item list (with the summary checkpoint), wrapped key and
//!   signer directory; then every named item's detail at once. Three rounds,
//!   and bytes in proportion to what is referenced, not to what is visible.
//! - **auto** (default, explicit references only; with `[project]` it is
//!   the sync): decides before R4 builds anything large. It asks for the
//!   vault list first (a few hundred bytes a vault, with each vault's
//!   `itemCount`), then takes the sync when the visible vaults hold at most
//!   [`AUTO_SYNC_ITEMS`] items, or when the references name at least a
//!   quarter of them (the sync then carries at most four times what is
//!   used, in one round instead of one per 16 details); otherwise the
//!   referenced plan, from that same list. A sync answer that still turns
//!   out larger than [`AUTO_SYNC_LIMIT`] (large values) is dropped unread
//!   for the referenced plan. Large worlds never make R4 build a full sync
//!   they would not use. When the size of the world is already known — the
//!   previous verified answer of this process (a supervisor's polls), or
//!   the fallback copy's stamp at start-up — that number decides instead,
//!   without the list: a small world is then one round, as with `plan =
//!   "sync"`; without it a small world pays one round more (the list).
//!   The counts decide what to fetch only: whatever the server (or the
//!   copy's stamp) claims in them, the answer is verified the same way.
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
/// Most items the visible vaults may hold for `auto` to take the sync
/// whatever the references name (about 200 KB of sync answer).
pub const AUTO_SYNC_ITEMS: u64 = 100;
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
/// `known`: the items visible at the last verified answer, if known (see
/// the module docs).
pub(super) async fn fetch(
    client: &Client,
    config: &Config,
    known: Option<u64>,
) -> Result<Fetched, Vec<Problem>> {
    match (config.r4.plan, &config.project) {
        (FetchPlan::Referenced, None) => referenced(client, config, "plan = \"referenced\"").await,
        (FetchPlan::Auto, None) => match known {
            Some(n) => auto_known(client, config, n).await,
            None => auto(client, config).await,
        },
        _ => sync(client, config).await,
    }
}

/// The path of the first request `config`'s plan makes, with the world's
/// size `known` or not (what a timeout before any answer names).
pub fn first_path(config: &Config, known: Option<u64>) -> &'static str {
    match (config.r4.plan, &config.project, known) {
        (FetchPlan::Sync, _, _) | (_, Some(_), _) => "/vault/sync",
        (FetchPlan::Auto, None, Some(n)) if takes_sync(config, n) => "/vault/sync",
        _ => "/vault",
    }
}

/// `auto`'s rule: the sync for a world of at most [`AUTO_SYNC_ITEMS`]
/// visible items, or one whose references name at least a quarter of them.
fn takes_sync(config: &Config, visible: u64) -> bool {
    visible <= AUTO_SYNC_ITEMS || named_item_count(config).saturating_mul(4) >= visible
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

/// The vault list, then the sync if the world is small or mostly
/// referenced, else the referenced plan from that list.
async fn auto(client: &Client, config: &Config) -> Result<Fetched, Vec<Problem>> {
    let list = client.vaults(None).await.map_err(general)?.vaults;
    let (visible, named) = (visible_items(&list), named_item_count(config));
    let counts = match visible {
        Some(n) => format!("{n} items visible, {named} referenced"),
        None => format!("item counts not given, {named} referenced"),
    };
    if !visible.is_some_and(|n| takes_sync(config, n)) {
        return referenced_from(client, config, list, &format!("auto: {counts}")).await;
    }
    let small = visible.is_some_and(|n| n <= AUTO_SYNC_ITEMS);
    match auto_sync(client, small).await? {
        Some(sync) => Ok(synced(sync, |n| {
            format!("plan: sync after the vault list (auto: {counts}), in two rounds ({n} vaults visible)")
        })),
        None => referenced_from(client, config, list, &too_large(&counts)).await,
    }
}

/// `auto` when the last verified answer held `visible` items: the same
/// decision as [`auto`] makes from the list, without asking for it.
async fn auto_known(
    client: &Client,
    config: &Config,
    visible: u64,
) -> Result<Fetched, Vec<Problem>> {
    let named = named_item_count(config);
    let counts = format!("{visible} items visible at the last verified answer, {named} referenced");
    if !takes_sync(config, visible) {
        return referenced(client, config, &format!("auto: {counts}")).await;
    }
    match auto_sync(client, visible <= AUTO_SYNC_ITEMS).await? {
        Some(sync) => Ok(synced(sync, |n| {
            format!("plan: sync in one round (auto: {counts}; {n} vaults visible)")
        })),
        None => referenced(client, config, &too_large(&counts)).await,
    }
}

/// `auto`'s sync: a small world's is read up to [`AUTO_SYNC_LIMIT`] (its
/// values may be large; `None` when larger), one that is mostly referenced
/// is worth reading whole.
async fn auto_sync(client: &Client, small: bool) -> Result<Option<SyncResponse>, Vec<Problem>> {
    let sync = if small {
        client.sync_within(AUTO_SYNC_LIMIT).await
    } else {
        client.sync(None).await.map(Some)
    };
    sync.map_err(general)
}

/// A sync answer of `auto`, with its `-v` line (given the vault count).
fn synced(sync: SyncResponse, note: impl FnOnce(usize) -> String) -> Fetched {
    Fetched {
        note: note(sync.vaults.len()),
        sync,
        listed: None,
        project: None,
    }
}

/// Why `auto` turned to the referenced plan after all.
fn too_large(counts: &str) -> String {
    format!(
        "auto: {counts}, but the sync answer is larger than {} KiB",
        AUTO_SYNC_LIMIT >> 10
    )
}

/// How many items the world of `fetched` holds: the list's counts for the
/// referenced plan, the sync's details otherwise.
pub(super) fn world_size(sync: &SyncResponse, listed: Option<&Listed>) -> Option<u64> {
    match listed {
        Some(listed) => visible_items(&listed.vaults),
        None => Some(sync.vaults.iter().map(|v| v.items.len() as u64).sum()),
    }
}

/// Items in every visible vault, as the list counts them; `None` when a
/// vault's count is missing (then the world is not known to be small).
fn visible_items(list: &[Vault]) -> Option<u64> {
    list.iter().map(|v| v.item_count).sum()
}

/// Distinct `(vault, item)` segments the references name.
fn named_item_count(config: &Config) -> u64 {
    let all = config.all_references();
    let named: HashSet<(&str, &str)> = all
        .iter()
        .map(|e| (e.reference.vault.as_str(), e.reference.item.as_str()))
        .collect();
    named.len() as u64
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

/// The referenced plan: the list, then the named vaults, then the named
/// items (three rounds while at most [`IN_FLIGHT`] of each are named).
/// Selection here only decides what to fetch; `verify` selects again, from
/// the verified summaries, and reports what does not resolve.
async fn referenced(client: &Client, config: &Config, why: &str) -> Result<Fetched, Vec<Problem>> {
    let list = client.vaults(None).await.map_err(general)?.vaults;
    referenced_from(client, config, list, why).await
}

/// The referenced plan's second and third rounds, from the vault `list`.
async fn referenced_from(
    client: &Client,
    config: &Config,
    list: Vec<Vault>,
    why: &str,
) -> Result<Fetched, Vec<Problem>> {
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
    // At most IN_FLIGHT requests at once, so each stage takes one round
    // per IN_FLIGHT jobs.
    let rounds = 1 + parts.len().div_ceil(IN_FLIGHT) + details.len().div_ceil(IN_FLIGHT);
    let note = format!(
        "plan: referenced ({why}): the vault list, then {} of {} vaults (item list, wrapped key, directory), then {} item details, in {rounds} rounds; a sync would carry {} items",
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
            if seen.insert((vault.id.clone(), item.id.to_string())) {
                wanted.push((vault.id.clone(), item.id.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("r4.toml"), false).unwrap()
    }

    fn vault(items: Option<u64>) -> Vault {
        serde_json::from_value(serde_json::json!({"id": "v", "name": "V", "itemCount": items}))
            .unwrap()
    }

    #[test]
    fn a_timeout_names_the_first_request_of_the_plan() {
        let entry = "[env]\nA = \"r4://V/I/F\"\n";
        assert_eq!(first_path(&config(entry), None), "/vault");
        let referenced = format!("[r4]\nplan = \"referenced\"\n{entry}");
        assert_eq!(first_path(&config(&referenced), None), "/vault");
        assert_eq!(first_path(&config(&referenced), Some(5)), "/vault");
        let sync = format!("[r4]\nplan = \"sync\"\n{entry}");
        assert_eq!(first_path(&config(&sync), None), "/vault/sync");
        assert_eq!(
            first_path(&config("[project]\nname = \"P\"\n"), None),
            "/vault/sync"
        );
        // A known world: small or mostly referenced, the sync; else the list.
        assert_eq!(first_path(&config(entry), Some(100)), "/vault/sync");
        assert_eq!(first_path(&config(entry), Some(101)), "/vault");
        assert_eq!(first_path(&config(entry), Some(4)), "/vault/sync");
        let many: String = (0..26)
            .map(|i| format!("A{i} = \"r4://V/I{i}/F\"\n"))
            .collect();
        let many = config(&format!("[env]\n{many}"));
        assert_eq!(
            first_path(&many, Some(104)),
            "/vault/sync",
            "26 of 104: a quarter"
        );
        assert_eq!(first_path(&many, Some(105)), "/vault");
    }

    #[test]
    fn a_missing_item_count_makes_the_world_unknown() {
        assert_eq!(visible_items(&[vault(Some(3)), vault(Some(4))]), Some(7));
        assert_eq!(visible_items(&[vault(Some(3)), vault(None)]), None);
        assert_eq!(visible_items(&[]), Some(0));
    }

    #[test]
    fn named_items_are_counted_once_each() {
        let c = config(
            "[env]\nA = \"r4://V/I/F\"\nB = \"r4://V/I/G\"\nC = \"r4://V/J/F\"\nD = \"r4://W/I/F\"\n",
        );
        assert_eq!(named_item_count(&c), 3);
    }
}
