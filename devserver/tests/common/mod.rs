//! Shared helpers of the devserver's integration tests: a tiny JSON client,
//! key registration, and verification of a vault with the contract layer.
#![allow(dead_code)]

use std::sync::OnceLock;

use r4_contract::checkpoint::{summary_entries, verify_item, verify_summary, VerifiedSummary};
use r4_contract::crypto::{PrivateKey, PublicKey};
use r4_contract::directory::{verify_directory, TrustPolicy, VerifiedDirectory};
use r4_contract::secret::Dek;
use r4_contract::wire::{ItemDetail, ItemList, SignerDirectory, SyncVault};
use r4_contract::{checkpoint, envelope, EnvelopeError, VerifyError};
use r4_devserver::{Options, Running, Seed};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub const DEMO_KEY: &str = "rk_demo0000000000.demo-secret-do-not-use";
pub const PROD: &str = "9d1fc17bedcc3d0d598e5682";
pub const PROD_DB: &str = "4da1c8a324857f1c47353485";
pub const PROD_DB_USERNAME: &str = "f6d290a638ef2c79e242709c";
pub const PROD_DB_PASSWORD: &str = "4ff7656a4a8e1d6e4e6ead48";
pub const STRIPE: &str = "5f63e93bf709ddc88fa60688";
pub const EDGE: &str = "cc80418031fb91ef06d03403";
pub const LEGACY: &str = "75ce2271ee7942f066e07211";
pub const PUBLIC_CONFIG: &str = "63cf393bf9496504713abad6";
pub const DEMO_PROJECT: &str = "fb540d0504dc64fc925f92db";
pub const DEMO_AGENT: &str = "2e6c86a774c37debe750c526";

/// A 2048-bit agent key, made once per test binary (key generation is slow
/// in debug builds). `n` selects one of a few independent keys.
pub fn key(n: usize) -> &'static PrivateKey {
    static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| PrivateKey::generate(2048).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    })[n]
}

pub async fn demo() -> Running {
    r4_devserver::start(Options::new(Seed::demo()))
        .await
        .unwrap()
}

/// A reqwest builder with the aws-lc-rs TLS provider installed.
pub fn client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
}

/// A JSON client for one API key.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, key: &str) -> Api {
        Api {
            base: base.to_string(),
            key: key.to_string(),
            http: client().build().unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    pub async fn get_ok<T: DeserializeOwned>(&self, path: &str) -> T {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// Registers `key` as this agent's runtime key; expects `status`.
    pub async fn register(&self, key: &PrivateKey) -> (u16, Value) {
        self.post(
            "/vault/public-key",
            &serde_json::json!({"publicKey": key.public().to_pem()}),
        )
        .await
    }
}

/// `(status, error code)` of an answer.
pub fn code(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error"]["code"].as_str().unwrap_or(""))
}

pub fn policy(log_pem: &str) -> TrustPolicy {
    TrustPolicy {
        pinned_signers: Vec::new(),
        log_key: Some(PublicKey::from_pem(log_pem).unwrap()),
    }
}

/// Directory of `vault`, verified with the log key pinned.
pub async fn directory(
    api: &Api,
    vault: &str,
    log_pem: &str,
) -> Result<VerifiedDirectory, VerifyError> {
    let dir: SignerDirectory = api.get_ok(&format!("/vault/{vault}/public-keys")).await;
    verify_directory(&dir, vault, &policy(log_pem))
}

/// Why reading a vault failed.
#[derive(Debug)]
pub enum Failure {
    Verify(VerifyError),
    Envelope(EnvelopeError),
    Other(String),
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Self {
        Failure::Verify(e)
    }
}

impl From<EnvelopeError> for Failure {
    fn from(e: EnvelopeError) -> Self {
        Failure::Envelope(e)
    }
}

/// Every check of a sync vault entry; returns the plaintexts by field id.
pub fn verify_sync_vault(
    sv: &SyncVault,
    key: &PrivateKey,
    log_pem: &str,
) -> Result<Vec<(String, String)>, Failure> {
    let vid = &sv.vault.id;
    let dir = verify_directory(&sv.signers, vid, &policy(log_pem))?;
    let wk = sv
        .wrapped_key
        .as_ref()
        .ok_or_else(|| Failure::Other("no wrapped key".into()))?;
    let (dek, _) =
        checkpoint::verify_and_unwrap(wk, vid, sv.vault.encryption_key_id.as_deref(), key, &dir)?;
    let entries = summary_entries(&sv.items);
    let summary = verify_summary(&entries, &sv.checkpoint, vid, &dir)?;
    open_items(&sv.items, vid, &summary, &dir, &dek, sv_dek_version(sv))
}

fn sv_dek_version(sv: &SyncVault) -> u64 {
    sv.wrapped_key.as_ref().map_or(1, |w| w.body().dek_version)
}

pub fn open_items(
    items: &[ItemDetail],
    vid: &str,
    summary: &VerifiedSummary,
    dir: &VerifiedDirectory,
    dek: &Dek,
    dek_version: u64,
) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for item in items {
        verify_item(item, vid, &item.id, summary, dir)?;
        for f in &item.fields {
            let expect = envelope::Expect {
                vault_id: vid,
                field_id: Some(&f.id),
                dek_version,
            };
            let plain = envelope::open(&f.value, dek, expect)?;
            out.push((
                f.id.clone(),
                String::from_utf8(plain.expose().to_vec()).unwrap(),
            ));
        }
    }
    Ok(out)
}

/// Reads and verifies a whole encrypted vault through the individual
/// endpoints; returns the plaintexts by field id.
pub async fn read_vault(
    api: &Api,
    vault: &str,
    key: &PrivateKey,
    log_pem: &str,
) -> Result<Vec<(String, String)>, Failure> {
    let dir = directory(api, vault, log_pem).await?;
    let entry: r4_contract::wire::Vault = api.get_ok(&format!("/vault/{vault}")).await;
    let wk: r4_contract::Signed<r4_contract::wire::WrappedKey> =
        api.get_ok(&format!("/vault/{vault}/wrapped-key")).await;
    let (dek, _) =
        checkpoint::verify_and_unwrap(&wk, vault, entry.encryption_key_id.as_deref(), key, &dir)?;
    let list: ItemList = api.get_ok(&format!("/vault/{vault}/items")).await;
    let summary = verify_summary(&list.items, &list.checkpoint, vault, &dir)?;
    let mut details = Vec::new();
    for item in &list.items {
        details.push(
            api.get_ok(&format!("/vault/{vault}/items/{}", item.id))
                .await,
        );
    }
    open_items(&details, vault, &summary, &dir, &dek, wk.body().dek_version)
}
