//! The comparison point of BENCHMARKS.md: a plain sequential walk of the same
//! API, one request at a time (list vaults; per vault its directory, wrapped
//! key and item list; then every item detail), verifying and decrypting like
//! r4-exec does. Reads R4_BASE_URL, R4_API_KEY, R4_PRIVATE_KEY_FILE and,
//! for HTTPS, R4_CA_FILE.

use r4_exec::client::{Client, ClientOptions};
use r4_exec::contract::checkpoint::{verify_and_unwrap, verify_item, verify_summary};
use r4_exec::contract::crypto::PrivateKey;
use r4_exec::contract::directory::{verify_directory, TrustPolicy};
use r4_exec::contract::envelope::{self, Expect};
use r4_exec::contract::Secret;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is required"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let key = PrivateKey::from_pem(&std::fs::read(var("R4_PRIVATE_KEY_FILE")).expect("key file"))
        .expect("private key");
    let mut opts = ClientOptions::new(
        var("R4_BASE_URL"),
        Secret::new(var("R4_API_KEY").into_bytes()),
    );
    // HTTPS rows of the benchmark: the devserver's CA, as r4.toml's ca_file.
    if let Ok(ca) = std::env::var("R4_CA_FILE") {
        opts.ca_pem = Some(std::fs::read(ca).expect("CA file"));
    }
    let client = Client::new(opts).expect("client");
    let trust = TrustPolicy::default();
    let mut opened = 0usize;
    for vault in client.vaults(None).await.expect("vaults").vaults {
        let dir = verify_directory(
            &client.public_keys(&vault.id).await.expect("dir"),
            &vault.id,
            &trust,
        )
        .expect("directory");
        let wk = client.wrapped_key(&vault.id).await.expect("wrapped key");
        let (dek, _) = verify_and_unwrap(
            &wk,
            &vault.id,
            vault.encryption_key_id.as_deref(),
            &key,
            &dir,
        )
        .expect("unwrap");
        let list = client.items(&vault.id).await.expect("items");
        let summary =
            verify_summary(&list.items, &list.checkpoint, &vault.id, &dir).expect("summary");
        for item in &list.items {
            let detail = client.item(&vault.id, &item.id).await.expect("item");
            verify_item(&detail, &vault.id, &item.id, &summary, &dir).expect("item checkpoint");
            for f in &detail.fields {
                let expect = Expect {
                    vault_id: &vault.id,
                    field_id: Some(&f.id),
                    dek_version: wk.body().dek_version,
                };
                envelope::open(&f.value, &dek, expect).expect("envelope");
                opened += 1;
            }
        }
    }
    eprintln!("seqwalk: {opened} values");
}
