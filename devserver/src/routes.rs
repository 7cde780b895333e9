//! The machine API's routes under `/api/v1/machine` (contract §4–§7): each
//! handler authenticates, checks scope and policy, then asks `views` for the
//! wire object — on a blocking thread, under the state lock.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::info;
use crate::register;
use crate::state::{App, Reply, State as St};
use crate::sync;
use crate::views::Ctx;

/// The API router (mounted at `/api/v1/machine`).
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/me", get(me))
        .route("/vault", get(vaults))
        .route("/vault/sync", get(sync_all))
        .route("/vault/encryption-key", get(encryption_key))
        .route("/vault/public-key", post(public_key))
        .route("/vault/env/{project_id}", get(env))
        .route("/vault/{vault_id}", get(vault))
        .route("/vault/{vault_id}/items", get(items))
        .route("/vault/{vault_id}/items/{item_id}", get(item))
        .route("/vault/{vault_id}/fields/{field_id}", get(field))
        .route("/vault/{vault_id}/wrapped-key", get(wrapped_key))
        .route("/vault/{vault_id}/public-keys", get(public_keys))
        .route("/project", get(projects))
        .route("/project/{id}", get(project))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

pub(crate) async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint.").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not support this method.",
    )
    .into_response()
}

/// Authenticates and authorizes, then hands out the caller's view.
fn ctx<'a>(st: &'a mut St, headers: &HeaderMap, access: Access) -> Result<Ctx<'a>, ApiError> {
    let St {
        world,
        cache,
        faults,
    } = st;
    let agent = auth::authenticate(world, headers)?;
    auth::authorize(agent, access)?;
    Ok(Ctx {
        w: world,
        cache,
        faults,
        agent,
    })
}

async fn me(State(app): State<App>, headers: HeaderMap) -> Response {
    app.run(move |st| {
        let c = ctx(st, &headers, Access::Me)?;
        Reply::json(&info::me(c.w, c.agent))
    })
    .await
}

async fn vaults(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    app.run(move |st| {
        let c = ctx(st, &headers, Access::VaultRead)?;
        let project = q.get("projectId");
        let list: Vec<_> = c
            .visible_vaults()
            .into_iter()
            .filter(|v| project.is_none() || v.project.as_ref() == project)
            .map(|v| c.vault_entry(v, false))
            .collect();
        Reply::json(&r4_contract::wire::VaultList { vaults: list })
    })
    .await
}

async fn vault(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    app.run(move |st| {
        let c = ctx(st, &headers, Access::VaultRead)?;
        let v = c.vault(&id)?;
        Reply::json(&c.vault_entry(v, true))
    })
    .await
}

async fn items(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    app.run(move |st| {
        let mut c = ctx(st, &headers, Access::VaultRead)?;
        let v = c.vault(&id)?;
        Reply::json(&c.item_list(v))
    })
    .await
}

async fn item(
    State(app): State<App>,
    headers: HeaderMap,
    Path((vault_id, item_id)): Path<(String, String)>,
) -> Response {
    app.run(move |st| {
        let mut c = ctx(st, &headers, Access::VaultSecret)?;
        let v = c.vault(&vault_id)?;
        Reply::json(&c.item(v, &item_id)?)
    })
    .await
}

async fn field(
    State(app): State<App>,
    headers: HeaderMap,
    Path((vault_id, field_id)): Path<(String, String)>,
) -> Response {
    app.run(move |st| {
        let mut c = ctx(st, &headers, Access::VaultSecret)?;
        let v = c.vault(&vault_id)?;
        Reply::json(&c.field(v, &field_id)?)
    })
    .await
}

async fn wrapped_key(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.run(move |st| {
        let mut c = ctx(st, &headers, Access::VaultSecret)?;
        let v = c.vault(&id)?;
        let wk = c.wrapped_key(v).ok_or_else(|| {
            ApiError::not_found("wrapped_key_not_found", "wrapped key of vault", &id)
        })?;
        Reply::json(&wk)
    })
    .await
}

async fn public_keys(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.run(move |st| {
        let mut c = ctx(st, &headers, Access::VaultRead)?;
        let v = c.vault(&id)?;
        Reply::json(&c.directory(v))
    })
    .await
}

async fn sync_all(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    app.run(move |st| {
        let mut c = ctx(st, &headers, Access::VaultSecret)?;
        Reply::json(&sync::sync(&mut c, q.get("cursor").map(String::as_str)))
    })
    .await
}

async fn env(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    app.run(move |st| {
        let mut c = ctx(st, &headers, Access::VaultSecret)?;
        Reply::json(&c.env(&id)?)
    })
    .await
}

async fn encryption_key(State(app): State<App>, headers: HeaderMap) -> Response {
    app.run(move |st| {
        let c = ctx(st, &headers, Access::LegacyKey)?;
        let key = c.agent.legacy.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "encryption_key_not_found",
                "No encryption key found for this agent.",
            )
        })?;
        Reply::json(&serde_json::json!({
            "encryptionKeyId": key.id,
            "privateKey": key.private_pkcs1_pem().as_str(),
            "publicKey": key.public_pem(),
        }))
    })
    .await
}

async fn public_key(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    app.run(move |st| {
        let agent = auth::authenticate(&st.world, &headers)?;
        auth::authorize(agent, Access::PublicKey)?;
        let agent_id = agent.id.clone();
        let (status, answer) = register::register(&mut st.world, &agent_id, &body)?;
        Reply::with_status(status, &answer)
    })
    .await
}

async fn projects(State(app): State<App>, headers: HeaderMap) -> Response {
    app.run(move |st| {
        let c = ctx(st, &headers, Access::Project)?;
        Reply::json(&info::project_list(c.w, c.agent))
    })
    .await
}

async fn project(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    app.run(move |st| {
        let c = ctx(st, &headers, Access::Project)?;
        Reply::json(&info::project_detail(c.w, c.agent, &id)?)
    })
    .await
}
