//! Operator actions on a running world — share, unshare, change a value, add
//! or archive an item, revoke an agent key, set faults — as a clone-able
//! [`Admin`] handle for in-process tests and as loopback-only HTTP endpoints
//! under `/_admin/` (no API key) for curl and out-of-process tests:
//!
//! | request | body | effect |
//! | --- | --- | --- |
//! | `POST /_admin/share` | `{"vaultId","agentId"}` | [`Admin::share_vault`] |
//! | `POST /_admin/unshare` | `{"vaultId","agentId"}` | [`Admin::unshare_vault`] |
//! | `POST /_admin/field` | `{"vaultId","itemId","fieldId","value"}` | [`Admin::set_field_value`] |
//! | `POST /_admin/items` | `{"vaultId","item":{…seed item…}}` | [`Admin::add_item`], answers `{"id"}` |
//! | `POST /_admin/archive` | `{"vaultId","itemId"}` | [`Admin::archive_item`] |
//! | `POST /_admin/faults` | `{"faults":["rate-limit:3",…]}` | [`Admin::set_faults`] |
//! | `POST /_admin/revoke` | `{"agentId"}` | [`Admin::revoke_agent_key`] |
//! | `GET /_admin/requests` | | `{"count": N}` ([`Admin::request_count`]) |
//! | `GET /_admin/keys` | | operator and log public keys (PEM) and fingerprints |

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::error::{AdminError, ApiError};
use crate::faults::Fault;
use crate::seed::ItemSeed;
use crate::state::{App, Shared};

/// A handle onto a running server's world.
#[derive(Clone)]
pub struct Admin {
    app: Arc<Shared>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin")
    }
}

impl Admin {
    pub(crate) fn new(app: Arc<Shared>) -> Admin {
        Admin { app }
    }

    /// Shares a vault with an AGENT key. If the agent has a registered key
    /// and the vault is encrypted, its DEK is wrapped to it at once.
    pub fn share_vault(&self, vault_id: &str, agent_id: &str) -> Result<(), AdminError> {
        self.app.lock().world.share(vault_id, agent_id)
    }

    /// Stops sharing a vault with an agent (its wrapped key is dropped).
    pub fn unshare_vault(&self, vault_id: &str, agent_id: &str) -> Result<(), AdminError> {
        self.app.lock().world.unshare(vault_id, agent_id)
    }

    /// Changes a field's plaintext value (re-sealed; item and vault versions grow).
    pub fn set_field_value(
        &self,
        vault_id: &str,
        item_id: &str,
        field_id: &str,
        value: &str,
    ) -> Result<(), AdminError> {
        self.app
            .lock()
            .world
            .set_field_value(vault_id, item_id, field_id, value)
    }

    /// Adds an item (ids derived as in the seed when absent); returns its id.
    pub fn add_item(&self, vault_id: &str, item: ItemSeed) -> Result<String, AdminError> {
        self.app.lock().world.add_item(vault_id, &item)
    }

    /// Archives an item: it leaves lists, details and the summary.
    pub fn archive_item(&self, vault_id: &str, item_id: &str) -> Result<(), AdminError> {
        self.app.lock().world.archive_item(vault_id, item_id)
    }

    /// Revokes an agent's registered runtime key (a `revoked` log leaf); the
    /// agent must register a new key to see encrypted vaults again.
    pub fn revoke_agent_key(&self, agent_id: &str) -> Result<(), AdminError> {
        self.app.lock().world.revoke_key(agent_id)
    }

    /// Replaces the active faults. Sync cursors issued before are answered in full.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.app.set_faults(faults);
    }

    /// The active faults.
    pub fn faults(&self) -> Vec<Fault> {
        self.app.lock().faults.list()
    }

    /// API requests received so far (not counting `/_admin`).
    pub fn request_count(&self) -> u64 {
        self.app.requests.load(Ordering::SeqCst)
    }

    /// The operator's USER signer key (SPKI PEM).
    pub fn operator_public_key(&self) -> String {
        self.app.lock().world.operator.public().to_pem()
    }

    /// The transparency log key (SPKI PEM), for pinning.
    pub fn log_public_key(&self) -> String {
        self.app.lock().world.log_key.public().to_pem()
    }

    /// The fingerprint of `agent_id`'s registered runtime key.
    pub fn agent_key_fingerprint(&self, agent_id: &str) -> Option<String> {
        self.app.lock().world.agent(agent_id)?.key.clone()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Share {
    vault_id: String,
    agent_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetField {
    vault_id: String,
    item_id: String,
    field_id: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddItem {
    vault_id: String,
    item: ItemSeed,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Archive {
    vault_id: String,
    item_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    faults: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Revoke {
    agent_id: String,
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))
}

fn done(r: Result<(), AdminError>) -> Response {
    match r {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"ok": true}))).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Admin endpoints answer loopback peers only.
async fn loopback_only(req: Request, next: Next) -> Response {
    match req.extensions().get::<SocketAddr>() {
        Some(peer) if peer.ip().is_loopback() => next.run(req).await,
        _ => ApiError::forbidden("forbidden", "Admin endpoints answer loopback clients only.")
            .into_response(),
    }
}

/// The `/_admin` router.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/share", post(share))
        .route("/unshare", post(unshare))
        .route("/field", post(field))
        .route("/items", post(add_item))
        .route("/archive", post(archive))
        .route("/faults", post(faults))
        .route("/revoke", post(revoke))
        .route("/requests", get(requests))
        .route("/keys", get(keys))
        .fallback(crate::routes::not_found)
        .layer(middleware::from_fn(loopback_only))
}

async fn blocking<F: FnOnce(Admin) -> Response + Send + 'static>(app: App, f: F) -> Response {
    let admin = Admin::new(app);
    tokio::task::spawn_blocking(move || f(admin))
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn share(State(app): State<App>, body: Bytes) -> Response {
    match parse::<Share>(&body) {
        Ok(s) => blocking(app, move |a| done(a.share_vault(&s.vault_id, &s.agent_id))).await,
        Err(e) => e.into_response(),
    }
}

async fn unshare(State(app): State<App>, body: Bytes) -> Response {
    match parse::<Share>(&body) {
        Ok(s) => {
            blocking(app, move |a| {
                done(a.unshare_vault(&s.vault_id, &s.agent_id))
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

async fn field(State(app): State<App>, body: Bytes) -> Response {
    match parse::<SetField>(&body) {
        Ok(f) => {
            blocking(app, move |a| {
                done(a.set_field_value(&f.vault_id, &f.item_id, &f.field_id, &f.value))
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

async fn add_item(State(app): State<App>, body: Bytes) -> Response {
    match parse::<AddItem>(&body) {
        Ok(req) => {
            blocking(app, move |a| match a.add_item(&req.vault_id, req.item) {
                Ok(id) => (StatusCode::CREATED, axum::Json(json!({"id": id}))).into_response(),
                Err(e) => ApiError::from(e).into_response(),
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

async fn archive(State(app): State<App>, body: Bytes) -> Response {
    match parse::<Archive>(&body) {
        Ok(r) => blocking(app, move |a| done(a.archive_item(&r.vault_id, &r.item_id))).await,
        Err(e) => e.into_response(),
    }
}

async fn faults(State(app): State<App>, body: Bytes) -> Response {
    let parsed = parse::<Faults>(&body).and_then(|f| {
        f.faults
            .iter()
            .map(|s| s.parse::<Fault>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))
    });
    match parsed {
        Ok(list) => {
            blocking(app, move |a| {
                a.set_faults(list);
                done(Ok(()))
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

async fn revoke(State(app): State<App>, body: Bytes) -> Response {
    match parse::<Revoke>(&body) {
        Ok(r) => blocking(app, move |a| done(a.revoke_agent_key(&r.agent_id))).await,
        Err(e) => e.into_response(),
    }
}

async fn requests(State(app): State<App>) -> Response {
    axum::Json(json!({"count": Admin::new(app).request_count()})).into_response()
}

async fn keys(State(app): State<App>) -> Response {
    blocking(app, |a| {
        let st = a.app.lock();
        let w = &st.world;
        axum::Json(json!({
            "operator": {"fingerprint": w.operator.fingerprint(), "publicKey": w.operator.public().to_pem()},
            "log": {"fingerprint": w.log_key.fingerprint(), "publicKey": w.log_key.public().to_pem()},
        }))
        .into_response()
    })
    .await
}
