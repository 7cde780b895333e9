//! Verifying, before the references are walked, everything they will need,
//! with independent checks spread over the cores ([`super::par`]).
//!
//! The walk in [`super::resolve_with_floor`] stays sequential and is the
//! single place that decides what is reported; this pass only fills the
//! caches it reads (verified vaults, checked items). Anything this pass does
//! not foresee is verified lazily by the walk, so it changes the cost of a
//! resolution, never its outcome.

use std::collections::HashSet;

use crate::config::Config;
use crate::contract::wire::{ItemDetail, SyncVault};

use super::project::Fetched;
use super::select::select;
use super::vault::VerifiedVault;
use super::{par, Resolver};

/// Below this many items per core, more threads cost more than they save (a
/// PSS-2048 check is ~20 µs, starting a thread ~30 µs).
const ITEMS_PER_THREAD: usize = 8;

/// Verifies the vaults and items `config` (and the fetched project) name.
pub(super) fn prepare(r: &mut Resolver<'_>, config: &Config, project: Option<&Fetched>) {
    let sync = r.sync;
    let by_entry: Vec<Option<&SyncVault>> = config
        .entries
        .iter()
        .map(|e| {
            let vaults = sync.vaults.iter().map(|v| &v.vault);
            let vault = select("vault", &e.reference.vault, vaults).ok()?;
            sync.vaults.iter().find(|v| v.vault.id == vault.id)
        })
        .collect();
    let in_project: Vec<&SyncVault> = match project {
        Some(Fetched::Detail(d)) => d
            .vaults
            .iter()
            .filter_map(|pv| sync.vaults.iter().find(|v| v.vault.id == pv.id))
            .collect(),
        _ => Vec::new(),
    };
    let mut vaults: Vec<&SyncVault> = by_entry.iter().flatten().copied().collect();
    vaults.extend(&in_project);
    r.verify_vaults(&vaults);

    let mut wanted: Vec<(&str, String)> = Vec::new();
    for (entry, raw) in config.entries.iter().zip(&by_entry) {
        let Some(raw) = raw else { continue };
        let Some(Ok(v)) = r.vaults.get(raw.vault.id.as_str()) else {
            continue;
        };
        if let Ok(item) = select("item", &entry.reference.item, v.item_summaries()) {
            wanted.push((raw.vault.id.as_str(), item.id.clone()));
        }
    }
    for raw in in_project {
        wanted.extend(
            raw.items
                .iter()
                .map(|i| (raw.vault.id.as_str(), i.id.clone())),
        );
    }
    r.check_items(&wanted);
}

impl<'s> Resolver<'s> {
    /// Verifies the vaults of `raw` not verified yet, on every core.
    fn verify_vaults(&mut self, raw: &[&'s SyncVault]) {
        let mut todo: Vec<&'s SyncVault> = Vec::new();
        for v in raw {
            let id = v.vault.id.as_str();
            if !self.vaults.contains_key(id) && !todo.iter().any(|t| t.vault.id == id) {
                todo.push(v);
            }
        }
        let (key, opts) = (self.key, self.opts);
        let outcomes = par::map(&todo, 1, |v| super::verify_one(v, key, opts));
        for (v, outcome) in todo.into_iter().zip(outcomes) {
            self.vaults.insert(v.vault.id.clone(), outcome);
        }
    }

    /// Checks the items `wanted` (vault id, item id) of verified vaults, on
    /// every core, and records the outcomes in their vaults.
    fn check_items(&mut self, wanted: &[(&str, String)]) {
        let mut todo: Vec<(&str, &VerifiedVault<'s>, &'s str, &'s ItemDetail)> = Vec::new();
        let mut seen = HashSet::new();
        for (vault_id, item_id) in wanted {
            let Some(Ok(v)) = self.vaults.get(*vault_id) else {
                continue;
            };
            for (id, detail) in v.unchecked([item_id.as_str()]) {
                if seen.insert((*vault_id, id)) {
                    todo.push((vault_id, v, id, detail));
                }
            }
        }
        let outcomes = par::map(&todo, ITEMS_PER_THREAD, |(_, v, id, detail)| {
            v.check(detail, id)
        });
        let keys: Vec<(String, &'s str)> = todo
            .into_iter()
            .map(|(vault_id, _, id, _)| (vault_id.to_string(), id))
            .collect();
        for ((vault_id, id), outcome) in keys.into_iter().zip(outcomes) {
            if let Some(Ok(v)) = self.vaults.get_mut(&vault_id) {
                v.record(id, outcome);
            }
        }
    }
}
