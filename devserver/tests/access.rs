//! Authentication, scopes, machine policies and "not shared means 404"
//! (contract §1), visibility (§6.2), and env-name collisions (§6.4).

mod common;

use common::*;
use r4_contract::wire::{EnvResponse, Me, ProjectList, VaultList};
use r4_devserver::{agent_id, field_id, project_id, vault_id, Options, Seed};

const SEED: &str = r#"
org = { name = "Acme" }
tenant = { name = "Acme Prod" }

[[agents]]
name = "main"
api_key = "rk_main.secret"

[[agents]]
name = "reader"
api_key = "rk_reader.secret"
permissions = ["machine.vault.read"]

[[agents]]
name = "vault-all"
api_key = "rk_vaultall.secret"
permissions = ["machine.vault.all"]

[[agents]]
name = "stranger"
api_key = "rk_stranger.secret"

[[agents]]
name = "alice"
api_key = "rk_user.secret"
scope = "USER"

[[agents]]
name = "ops"
api_key = "rk_tenant.secret"
scope = "TENANT"

[[projects]]
name = "Shop"

[[projects]]
name = "Other"

[[vaults]]
name = "Shop Secrets"
project = "Shop"
shared_with = ["main", "reader", "vault-all"]

[[vaults.items]]
name = "Production DB"
[[vaults.items.fields]]
name = "Password"
type = "PASSWORD"
value = "one"
[[vaults.items.fields]]
name = "Host"
value = "db.internal"

[[vaults.items]]
name = "production-db"
[[vaults.items.fields]]
name = "password"
value = "two"

[[vaults]]
name = "Shop Config"
model = "unencrypted"
project = "Shop"
shared_with = ["main"]

[[vaults.items]]
name = "2fa"
[[vaults.items.fields]]
name = "mode"
value = "strict"

[[vaults]]
name = "Hidden"
project = "Other"
"#;

async fn start() -> r4_devserver::Running {
    let mut seed = Seed::from_toml(SEED).unwrap();
    // The reader cannot register a key itself (no secret permission): pre-register one.
    seed.agents[1].public_key = Some(key(2).public().to_pem());
    r4_devserver::start(Options::new(seed)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_scopes_and_policies() {
    let server = start().await;
    let base = server.base_url();
    let shop = vault_id("Shop Secrets");
    let hidden = vault_id("Hidden");
    let main = Api::new(base, "rk_main.secret");

    // 401: no key, unknown key, wrong secret, malformed key.
    let none = client()
        .build()
        .unwrap()
        .get(format!("{base}/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"].is_string());
    for bad in ["rk_nobody.secret", "rk_main.wrong", "garbage", ""] {
        assert_eq!(
            code(&Api::new(base, bad).get("/me").await),
            (401, "unauthorized")
        );
    }
    // Authorization: ApiKey works as well as X-API-Key.
    let via_auth = client()
        .build()
        .unwrap()
        .get(format!("{base}/me"))
        .header("Authorization", "ApiKey rk_main.secret")
        .send()
        .await
        .unwrap();
    assert_eq!(via_auth.status(), 200);

    // USER/TENANT: forbidden on vault endpoints before any lookup, AGENT-only
    // endpoints say so, /me and projects work.
    for k in ["rk_user.secret", "rk_tenant.secret"] {
        let api = Api::new(base, k);
        for path in [
            "/vault".to_string(),
            format!("/vault/{shop}"),
            "/vault/000000000000000000000000".to_string(),
            format!("/vault/{shop}/items"),
            "/vault/sync".to_string(),
            format!("/vault/env/{}", project_id("Shop")),
        ] {
            assert_eq!(
                code(&api.get(&path).await),
                (403, "forbidden"),
                "{k} {path}"
            );
        }
        assert_eq!(
            code(&api.get("/vault/encryption-key").await),
            (403, "agent_scope_required")
        );
        assert_eq!(
            code(&api.register(key(0)).await),
            (403, "agent_scope_required")
        );
        let me: Me = api.get_ok("/me").await;
        assert!(me.agent.is_none());
        assert!(!me.capabilities.vault_read);
        let projects: ProjectList = api.get_ok("/project").await;
        assert_eq!(projects.projects.len(), 2);
    }

    // A key whose policy lacks the secret permission.
    let reader = Api::new(base, "rk_reader.secret");
    assert_eq!(reader.get(&format!("/vault/{shop}/items")).await.0, 200);
    for path in [
        format!("/vault/{shop}/items/000000000000000000000000"),
        format!("/vault/{shop}/fields/000000000000000000000000"),
        format!("/vault/{shop}/wrapped-key"),
        "/vault/sync".to_string(),
        format!("/vault/env/{}", project_id("Shop")),
        "/vault/encryption-key".to_string(),
        "/me".to_string(),
        "/project".to_string(),
    ] {
        assert_eq!(
            code(&reader.get(&path).await),
            (403, "api_key_permission_denied"),
            "{path}"
        );
    }
    assert_eq!(
        code(&reader.register(key(0)).await),
        (403, "api_key_permission_denied")
    );
    // machine.vault.all includes both vault permissions.
    let vault_all = Api::new(base, "rk_vaultall.secret");
    assert_eq!(vault_all.get("/vault/sync").await.0, 200);

    // Not shared, or not yet visible, is 404 — never 403.
    let stranger = Api::new(base, "rk_stranger.secret");
    stranger.register(key(1)).await;
    assert_eq!(
        code(&stranger.get(&format!("/vault/{shop}")).await),
        (404, "vault_not_found")
    );
    assert_eq!(
        code(&stranger.get(&format!("/vault/{shop}/public-keys")).await),
        (404, "vault_not_found")
    );
    assert_eq!(
        code(
            &stranger
                .get(&format!("/project/{}", project_id("Shop")))
                .await
        ),
        (404, "project_not_found")
    );
    assert_eq!(
        code(
            &stranger
                .get(&format!("/vault/env/{}", project_id("Shop")))
                .await
        ),
        (404, "project_not_found")
    );
    assert_eq!(
        code(&stranger.get("/vault/encryption-key").await),
        (404, "encryption_key_not_found")
    );
    let list: VaultList = stranger.get_ok("/vault").await;
    assert!(list.vaults.is_empty());

    // Encrypted vaults appear once the agent has a key; unencrypted at once.
    let list: VaultList = main.get_ok("/vault").await;
    assert_eq!(list.vaults.len(), 1);
    assert_eq!(
        code(&main.get(&format!("/vault/{shop}")).await),
        (404, "vault_not_found")
    );
    main.register(key(0)).await;
    let list: VaultList = main.get_ok("/vault").await;
    assert_eq!(list.vaults.len(), 2);
    assert_eq!(
        code(&main.get(&format!("/vault/{hidden}")).await),
        (404, "vault_not_found")
    );
    assert_eq!(
        code(
            &main
                .get(&format!("/vault/{shop}/items/000000000000000000000000"))
                .await
        ),
        (404, "item_not_found")
    );
    assert_eq!(
        code(
            &main
                .get(&format!("/vault/{shop}/fields/000000000000000000000000"))
                .await
        ),
        (404, "field_not_found")
    );
    assert_eq!(
        code(&main.get("/project/000000000000000000000000").await),
        (404, "project_not_found")
    );
    let config = vault_id("Shop Config");
    assert_eq!(
        code(&main.get(&format!("/vault/{config}/wrapped-key")).await),
        (404, "wrapped_key_not_found")
    );
    assert_eq!(code(&main.get("/no/such/thing").await), (404, "not_found"));
    let projects: ProjectList = main.get_ok("/project").await;
    assert_eq!(projects.projects.len(), 1);
    let me: Me = main.get_ok("/me").await;
    assert_eq!(me.agent.unwrap().id, agent_id("main"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_leaves_out_colliding_names() {
    let server = start().await;
    let main = Api::new(server.base_url(), "rk_main.secret");
    main.register(key(0)).await;
    let (_, raw) = main
        .get(&format!("/vault/env/{}", project_id("Shop")))
        .await;
    let env: EnvResponse = serde_json::from_value(raw).unwrap();
    // "Production DB"/"Password" and "production-db"/"password" collide.
    assert_eq!(
        env.collisions,
        Some(vec!["PRODUCTION_DB_PASSWORD".to_string()])
    );
    let names: Vec<&str> = env.env.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["PRODUCTION_DB_HOST", "_2FA_MODE"]);
    assert_eq!(env.count, 2);
    assert_eq!(env.env["_2FA_MODE"], "strict");
    assert!(env.env["PRODUCTION_DB_HOST"].starts_with("r4v3."));
    let header = r4_contract::envelope::peek_header(&env.env["PRODUCTION_DB_HOST"]).unwrap();
    assert_eq!(
        header.fid,
        field_id("Shop Secrets", "Production DB", "Host")
    );
    server.shutdown().await;
}
