//! The demo world end to end, checked with the contract layer: register a
//! key, list, verify directory, wrapped key, summary, items, fields and env;
//! the legacy and unencrypted models; projects and `/me`.

mod common;

use common::*;
use r4_contract::checkpoint::{verify_field, verify_item, verify_summary};
use r4_contract::crypto::PrivateKey;
use r4_contract::wire::{
    EnvResponse, FieldResponse, ItemDetail, ItemList, LegacyKeyPair, Me, ProjectDetail,
    ProjectList, RegisterResponse, VaultList,
};
use r4_contract::{envelope, envname};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flow_verifies_with_the_contract_layer() {
    let server = demo().await;
    let admin = server.admin();
    let log_pem = admin.log_public_key();
    let api = Api::new(server.base_url(), DEMO_KEY);
    let key = key(0);

    // Before registration: only the legacy and unencrypted vaults.
    let me: Me = api.get_ok("/me").await;
    assert!(!me.runtime_key.registered);
    assert_eq!(me.agent.as_ref().unwrap().id, DEMO_AGENT);
    let list: VaultList = api.get_ok("/vault").await;
    let ids: Vec<&str> = list.vaults.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, vec![LEGACY, PUBLIC_CONFIG]);

    let (status, body) = api.register(key).await;
    assert_eq!(status, 201, "{body}");
    let reg: RegisterResponse = serde_json::from_value(body).unwrap();
    assert_eq!(reg.status, "registered");
    assert_eq!(reg.fingerprint, key.fingerprint());
    assert_eq!(
        admin.agent_key_fingerprint(DEMO_AGENT).as_deref(),
        Some(key.fingerprint())
    );

    let me: Me = api.get_ok("/me").await;
    assert!(me.runtime_key.registered);
    assert_eq!(
        me.runtime_key.fingerprint.as_deref(),
        Some(key.fingerprint())
    );
    assert_eq!(
        me.runtime_key.encryption_key_id,
        Some(reg.encryption_key_id)
    );
    assert!(me.warnings.is_empty());

    let list: VaultList = api.get_ok("/vault").await;
    let ids: Vec<&str> = list.vaults.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, vec![PROD, EDGE, LEGACY, PUBLIC_CONFIG]);
    let filtered: VaultList = api
        .get_ok(&format!("/vault?projectId={DEMO_PROJECT}"))
        .await;
    assert_eq!(filtered.vaults.len(), 3);

    // Production Secrets: every check of §4–§5, then every plaintext.
    let dir = directory(&api, PROD, &log_pem).await.unwrap();
    let agent_signer = dir
        .signer(key.fingerprint())
        .expect("agent key in directory");
    assert!(agent_signer.active);
    assert_eq!(agent_signer.included, Some(true));
    let values = read_vault(&api, PROD, key, &log_pem).await.unwrap();
    let get = |fid: &str| values.iter().find(|(f, _)| f == fid).unwrap().1.clone();
    assert_eq!(get(PROD_DB_USERNAME), "admin");
    assert_eq!(get(PROD_DB_PASSWORD), "s3cret-demo-password");
    assert_eq!(values.len(), 3);
    let edge = read_vault(&api, EDGE, key, &log_pem).await.unwrap();
    assert!(edge[0].1.starts_with("-----BEGIN PRIVATE KEY-----\n"));

    // One field (§4.4).
    let list: ItemList = api.get_ok(&format!("/vault/{PROD}/items")).await;
    assert_eq!(list.count, 2);
    assert!(list.items.iter().all(|i| i.version == 1));
    let summary = verify_summary(&list.items, &list.checkpoint, PROD, &dir).unwrap();
    let field: FieldResponse = api
        .get_ok(&format!("/vault/{PROD}/fields/{PROD_DB_PASSWORD}"))
        .await;
    verify_field(
        &field,
        PROD,
        PROD_DB_PASSWORD,
        Some(PROD_DB),
        &summary,
        &dir,
    )
    .unwrap();
    assert_eq!(field.field.item_id, PROD_DB);
    assert!(field.field.is_secret);

    // Env (§6.4): envelopes for encrypted vaults, plaintext for unencrypted,
    // nothing from the legacy vault, no collisions member.
    let (_, raw_env) = api.get(&format!("/vault/env/{DEMO_PROJECT}")).await;
    assert!(raw_env.get("collisions").is_none());
    let env: EnvResponse = serde_json::from_value(raw_env).unwrap();
    let names: Vec<&str> = env.env.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "APP_LOG_LEVEL",
            "PRODUCTION_DB_PASSWORD",
            "PRODUCTION_DB_USERNAME",
            "STRIPE_SECRET_KEY"
        ]
    );
    assert_eq!(env.count, 4);
    assert_eq!(env.env["APP_LOG_LEVEL"], "info");
    assert_eq!(
        envname::derive("Production DB", "Password"),
        "PRODUCTION_DB_PASSWORD"
    );
    let wk = api
        .get_ok::<r4_contract::Signed<r4_contract::wire::WrappedKey>>(&format!(
            "/vault/{PROD}/wrapped-key"
        ))
        .await;
    let dek = key.unwrap_dek(&wk.body().wrapped_dek).unwrap();
    let env_value = &env.env["PRODUCTION_DB_PASSWORD"];
    assert_eq!(envelope::peek_header(env_value).unwrap().vid, PROD);
    let expect = envelope::Expect {
        vault_id: PROD,
        field_id: None,
        dek_version: 1,
    };
    let plain = envelope::open(env_value, &dek, expect).unwrap();
    assert_eq!(plain.expose(), b"s3cret-demo-password");

    // Projects (seeds/004 shapes).
    let projects: ProjectList = api.get_ok("/project").await;
    assert_eq!(projects.projects.len(), 1);
    assert_eq!(projects.projects[0].vaults_count, Some(3));
    let project: ProjectDetail = api.get_ok(&format!("/project/{DEMO_PROJECT}")).await;
    assert_eq!(project.name, "Demo Project");
    assert_eq!(project.vaults.len(), 3);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_and_unencrypted_vaults() {
    let server = demo().await;
    let api = Api::new(server.base_url(), DEMO_KEY);
    let log_pem = server.admin().log_public_key();

    // Legacy (§6.5): server-held key pair, PKCS#1 private key.
    let pair: LegacyKeyPair = api.get_ok("/vault/encryption-key").await;
    let private = std::str::from_utf8(pair.private_key.expose()).unwrap();
    assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let legacy_key = PrivateKey::from_pem(pair.private_key.expose()).unwrap();
    let entry: r4_contract::wire::Vault = api.get_ok(&format!("/vault/{LEGACY}")).await;
    assert_eq!(entry.is_encrypted, Some(true));
    assert_eq!(
        entry.encryption_key_id.as_deref(),
        Some(pair.encryption_key_id.as_str())
    );
    assert_eq!(entry.created_by.as_ref().map(String::len), Some(24));
    assert_eq!(
        code(&api.get(&format!("/vault/{LEGACY}/wrapped-key")).await),
        (404, "wrapped_key_not_found")
    );
    let dir = directory(&api, LEGACY, &log_pem).await.unwrap();
    let list: ItemList = api.get_ok(&format!("/vault/{LEGACY}/items")).await;
    let summary = verify_summary(&list.items, &list.checkpoint, LEGACY, &dir).unwrap();
    let detail: ItemDetail = api
        .get_ok(&format!("/vault/{LEGACY}/items/{}", list.items[0].id))
        .await;
    verify_item(&detail, LEGACY, &detail.id, &summary, &dir).unwrap();
    for f in &detail.fields {
        if f.is_secret {
            let plain = legacy_key.legacy_decrypt(&f.value).unwrap();
            assert_eq!(&plain[..], b"legacy-demo-token");
        } else {
            assert_eq!(f.value, "https://legacy.example.com");
        }
    }

    // Unencrypted: plaintext values, still checkpointed.
    let dir = directory(&api, PUBLIC_CONFIG, &log_pem).await.unwrap();
    let list: ItemList = api.get_ok(&format!("/vault/{PUBLIC_CONFIG}/items")).await;
    let summary = verify_summary(&list.items, &list.checkpoint, PUBLIC_CONFIG, &dir).unwrap();
    let detail: ItemDetail = api
        .get_ok(&format!(
            "/vault/{PUBLIC_CONFIG}/items/{}",
            list.items[0].id
        ))
        .await;
    verify_item(&detail, PUBLIC_CONFIG, &detail.id, &summary, &dir).unwrap();
    assert_eq!(detail.fields[0].value, "info");
    assert_eq!(detail.encryption_key_id, None);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_show_up_verified() {
    let server = demo().await;
    let admin = server.admin();
    let log_pem = admin.log_public_key();
    let api = Api::new(server.base_url(), DEMO_KEY);
    let (k0, k1) = (key(0), key(1));
    api.register(k0).await;

    admin
        .set_field_value(PROD, PROD_DB, PROD_DB_PASSWORD, "rotated-password")
        .unwrap();
    let values = read_vault(&api, PROD, k0, &log_pem).await.unwrap();
    assert!(values.contains(&(PROD_DB_PASSWORD.to_string(), "rotated-password".to_string())));
    let list: ItemList = api.get_ok(&format!("/vault/{PROD}/items")).await;
    let db = list.items.iter().find(|i| i.id == PROD_DB).unwrap();
    assert_eq!(db.version, 2);
    assert_eq!(list.checkpoint.body().version, 2);

    admin.archive_item(PROD, STRIPE).unwrap();
    let id = admin
        .add_item(
            PROD,
            r4_devserver::ItemSeed::new("Redis", &[("url", "URL", "redis://x", false)]),
        )
        .unwrap();
    assert_eq!(id, r4_devserver::item_id("Production Secrets", "Redis"));
    let values = read_vault(&api, PROD, k0, &log_pem).await.unwrap();
    assert_eq!(values.len(), 3);
    assert!(values.iter().any(|(_, v)| v == "redis://x"));
    assert_eq!(
        code(&api.get(&format!("/vault/{PROD}/items/{STRIPE}")).await),
        (404, "item_not_found")
    );

    // Unsharing hides the vault; sharing again wraps the DEK anew.
    admin.unshare_vault(EDGE, DEMO_AGENT).unwrap();
    assert_eq!(
        code(&api.get(&format!("/vault/{EDGE}")).await),
        (404, "vault_not_found")
    );
    admin.share_vault(EDGE, DEMO_AGENT).unwrap();
    read_vault(&api, EDGE, k0, &log_pem).await.unwrap();

    // Revoking the key hides encrypted vaults until a new key is registered.
    admin.revoke_agent_key(DEMO_AGENT).unwrap();
    assert_eq!(
        code(&api.get(&format!("/vault/{PROD}")).await),
        (404, "vault_not_found")
    );
    assert_eq!(code(&api.register(k0).await), (409, "key_revoked"));
    assert_eq!(api.register(k1).await.0, 201);
    read_vault(&api, PROD, k1, &log_pem).await.unwrap();
    let dir = directory(&api, PROD, &log_pem).await.unwrap();
    assert!(!dir.signer(k0.fingerprint()).unwrap().active);
    assert!(dir.signer(k1.fingerprint()).unwrap().active);
    server.shutdown().await;
}
