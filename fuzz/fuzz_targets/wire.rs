//! Fuzzes decoding of the signed wire objects (contract §4–§6) and the JCS
//! canonicalisation that every signature and digest is taken over.
//!
//! The input is decoded as each of `SyncResponse`, `ItemList`, `ItemDetail`,
//! `SignerDirectory` and `Signed<WrappedKey>`; for each that decodes, the
//! signed bytes of every `Signed<_>` inside are computed. Properties:
//! - nothing panics;
//! - `signed_bytes()` is valid UTF-8 JSON, has no `signature` member, and is a
//!   fixed point of JCS;
//! - re-serialising a `Signed<_>` and decoding it again gives the same signed
//!   bytes (what we verify is what was sent);
//! - for any JSON value, `canonical` is idempotent: `canonical(parse(canonical(v)))
//!   == canonical(v)`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r4_contract::canon::canonical;
use r4_contract::wire::{ItemDetail, ItemList, SignerDirectory, SyncResponse, WrappedKey};
use r4_contract::Signed;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn jcs_fixed_point(bytes: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(bytes).expect("JCS output is JSON");
    assert_eq!(canonical(&v), bytes, "JCS is not idempotent");
    v
}

fn check_signed<T: Serialize + DeserializeOwned>(s: &Signed<T>) {
    let bytes = s.signed_bytes();
    let v = jcs_fixed_point(&bytes);
    assert!(v.as_object().is_some_and(|o| !o.contains_key("signature")));
    let _ = (s.signer_key_id(), s.signature());
    let again: Signed<T> = serde_json::from_slice(&serde_json::to_vec(s).expect("serialize"))
        .expect("a decoded signed object decodes again");
    assert_eq!(again.signed_bytes(), bytes);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        let c = canonical(&v);
        jcs_fixed_point(&c);
    }
    if let Ok(sync) = serde_json::from_slice::<SyncResponse>(data) {
        for vault in &sync.vaults {
            if let Some(wk) = &vault.wrapped_key {
                check_signed(wk);
            }
            check_signed(&vault.signers.tree_head);
            check_signed(&vault.checkpoint);
            for item in &vault.items {
                check_signed(&item.checkpoint);
            }
        }
    }
    if let Ok(list) = serde_json::from_slice::<ItemList>(data) {
        check_signed(&list.checkpoint);
    }
    if let Ok(item) = serde_json::from_slice::<ItemDetail>(data) {
        check_signed(&item.checkpoint);
    }
    if let Ok(dir) = serde_json::from_slice::<SignerDirectory>(data) {
        check_signed(&dir.tree_head);
    }
    if let Ok(wk) = serde_json::from_slice::<Signed<WrappedKey>>(data) {
        check_signed(&wk);
    }
});
