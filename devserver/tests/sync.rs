//! `GET /vault/sync` (contract §6.3): a full answer, deltas after admin
//! changes applied to kept state and re-verified, removals, unknown cursors.

mod common;

use std::collections::BTreeMap;

use common::*;
use r4_contract::wire::{ItemDetail, SyncResponse, SyncVault};
use r4_devserver::ItemSeed;

/// What a client keeps between syncs: each vault's latest entry and items.
#[derive(Default)]
struct Kept(BTreeMap<String, SyncVault>);

impl Kept {
    fn apply(&mut self, resp: &SyncResponse) {
        if resp.mode == "full" {
            self.0.clear();
        }
        for id in &resp.removed.vault_ids {
            self.0.remove(id);
        }
        for sv in &resp.vaults {
            let mut merged = sv.clone();
            if resp.mode == "delta" {
                if let Some(old) = self.0.get(&sv.vault.id) {
                    let mut items: BTreeMap<String, ItemDetail> = old
                        .items
                        .iter()
                        .map(|i| (i.id.clone(), i.clone()))
                        .collect();
                    for i in &sv.items {
                        items.insert(i.id.clone(), i.clone());
                    }
                    for id in &resp.removed.item_ids {
                        items.remove(id);
                    }
                    merged.items = items.into_values().collect();
                }
            }
            self.0.insert(sv.vault.id.clone(), merged);
        }
    }

    fn verify(&self, log_pem: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for sv in self.0.values() {
            if sv.wrapped_key.is_some() {
                out.extend(verify_sync_vault(sv, key(0), log_pem).unwrap());
            }
        }
        out
    }
}

fn ids(resp: &SyncResponse) -> Vec<&str> {
    resp.vaults.iter().map(|v| v.vault.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_then_deltas() {
    let server = demo().await;
    let admin = server.admin();
    let log_pem = admin.log_public_key();
    let api = Api::new(server.base_url(), DEMO_KEY);
    api.register(key(0)).await;
    let mut kept = Kept::default();

    let full: SyncResponse = api.get_ok("/vault/sync").await;
    assert_eq!(full.mode, "full");
    assert_eq!(ids(&full), vec![PROD, EDGE, LEGACY, PUBLIC_CONFIG]);
    let legacy = full.vaults.iter().find(|v| v.vault.id == LEGACY).unwrap();
    assert!(legacy.wrapped_key.is_none());
    assert!(full.removed.vault_ids.is_empty() && full.removed.item_ids.is_empty());
    kept.apply(&full);
    let values = kept.verify(&log_pem);
    assert_eq!(values[PROD_DB_PASSWORD], "s3cret-demo-password");

    // Nothing changed: an empty delta.
    let same: SyncResponse = api
        .get_ok(&format!("/vault/sync?cursor={}", full.cursor))
        .await;
    assert_eq!(same.mode, "delta");
    assert!(same.vaults.is_empty());

    // A changed field, an archived item, an added item.
    admin
        .set_field_value(PROD, PROD_DB, PROD_DB_PASSWORD, "new-password")
        .unwrap();
    admin.archive_item(PROD, STRIPE).unwrap();
    let added = admin
        .add_item(
            EDGE,
            ItemSeed::new("CDN", &[("token", "SECRET", "cdn-token", true)]),
        )
        .unwrap();
    let delta: SyncResponse = api
        .get_ok(&format!("/vault/sync?cursor={}", same.cursor))
        .await;
    assert_eq!(delta.mode, "delta");
    assert_eq!(ids(&delta), vec![PROD, EDGE]);
    let prod_items: Vec<&str> = delta.vaults[0]
        .items
        .iter()
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(prod_items, vec![PROD_DB]);
    let edge_items: Vec<&str> = delta.vaults[1]
        .items
        .iter()
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(edge_items, vec![added.as_str()]);
    assert_eq!(delta.removed.item_ids, vec![STRIPE.to_string()]);
    assert!(delta.vaults[0].wrapped_key.is_some());
    kept.apply(&delta);
    let values = kept.verify(&log_pem);
    assert_eq!(values[PROD_DB_PASSWORD], "new-password");
    assert!(values.values().any(|v| v == "cdn-token"));
    assert_eq!(values.len(), 4);

    // Unsharing removes the vault; sharing again sends it whole.
    admin.unshare_vault(EDGE, DEMO_AGENT).unwrap();
    let gone: SyncResponse = api
        .get_ok(&format!("/vault/sync?cursor={}", delta.cursor))
        .await;
    assert_eq!(gone.removed.vault_ids, vec![EDGE.to_string()]);
    assert!(ids(&gone).is_empty());
    kept.apply(&gone);
    admin.share_vault(EDGE, DEMO_AGENT).unwrap();
    let back: SyncResponse = api
        .get_ok(&format!("/vault/sync?cursor={}", gone.cursor))
        .await;
    assert_eq!(ids(&back), vec![EDGE]);
    assert_eq!(back.vaults[0].items.len(), 2);
    kept.apply(&back);
    assert_eq!(kept.verify(&log_pem).len(), 4);

    // Unknown cursors (garbage, another world's) get a full answer.
    for cursor in ["garbage", "cjRkZXYuMDAwMDAwMDAwMDAwMDAwMC4x"] {
        let resp: SyncResponse = api.get_ok(&format!("/vault/sync?cursor={cursor}")).await;
        assert_eq!(resp.mode, "full");
        assert_eq!(resp.vaults.len(), 4);
    }
    let other = demo().await;
    let other_api = Api::new(other.base_url(), DEMO_KEY);
    let foreign: SyncResponse = other_api.get_ok("/vault/sync").await;
    let resp: SyncResponse = api
        .get_ok(&format!("/vault/sync?cursor={}", foreign.cursor))
        .await;
    assert_eq!(resp.mode, "full");
    other.shutdown().await;

    // A key rotation changes the directory and the wrapped keys: both
    // encrypted vaults are in the delta.
    let before: SyncResponse = api.get_ok("/vault/sync").await;
    admin.revoke_agent_key(DEMO_AGENT).unwrap();
    let hidden: SyncResponse = api
        .get_ok(&format!("/vault/sync?cursor={}", before.cursor))
        .await;
    let mut removed = hidden.removed.vault_ids.clone();
    removed.sort();
    let mut expected = vec![PROD.to_string(), EDGE.to_string()];
    expected.sort();
    assert_eq!(removed, expected);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_items_sync_quickly() {
    let mut seed = r4_devserver::Seed::demo();
    let vault = &mut seed.vaults[0];
    for n in 0..1000 {
        vault.items.push(ItemSeed::new(
            &format!("item {n}"),
            &[("value", "SECRET", &format!("secret {n}"), true)],
        ));
    }
    let server = r4_devserver::start(r4_devserver::Options::new(seed))
        .await
        .unwrap();
    let log_pem = server.admin().log_public_key();
    let api = Api::new(server.base_url(), DEMO_KEY);
    api.register(key(0)).await;
    let first: SyncResponse = api.get_ok("/vault/sync").await;
    assert_eq!(first.vaults[0].items.len(), 1002);
    // Signed once: the second full answer comes from the cache.
    let started = std::time::Instant::now();
    let second: SyncResponse = api.get_ok("/vault/sync").await;
    let cached = started.elapsed();
    assert_eq!(
        second.vaults[0].items[500].checkpoint.signature(),
        first.vaults[0].items[500].checkpoint.signature()
    );
    assert!(
        cached.as_secs_f64() < 2.0,
        "cached full sync took {cached:?}"
    );
    let values = verify_sync_vault(&second.vaults[0], key(0), &log_pem).unwrap();
    assert_eq!(values.len(), 1003);
    server.shutdown().await;
}
