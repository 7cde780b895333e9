//! `POST /vault/public-key` (contract §7): every answer, then a successful
//! rotation checked through the directory and the transparency log.

mod common;

use common::*;
use r4_contract::canon::canonical_of;
use r4_contract::checkpoint::verify_and_unwrap;
use r4_contract::crypto::PrivateKey;
use r4_contract::signed::Signed;
use r4_contract::wire::{kind, RotationStatement, WrappedKey, WRAP_ALGORITHM};
use serde_json::{json, Value};

/// A 1024-bit RSA public key: too small (§2).
const RSA_1024: &str = include_str!("../../contract/tests/data/rsa-1024.public.pem");

const EC_P256: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEU5ipHus88DyrjdqecCQmMqqH5tjZ
gZJUbC6YSWDSJiXjkLLk5rhZhvP9xj0BGtEbVEqOV00XYi2h5AIjS6m9Fg==
-----END PUBLIC KEY-----";

const ISSUED: &str = "2026-01-15T10:30:00.000Z";

fn proof(old: &PrivateKey, new: &PrivateKey, issued_at: &str) -> String {
    old.sign_pss(&canonical_of(&RotationStatement {
        kind: kind::KEY_ROTATION.into(),
        previous_fingerprint: old.fingerprint().into(),
        new_fingerprint: new.fingerprint().into(),
        issued_at: issued_at.into(),
    }))
}

/// The agent side of a rotation: unwrap each vault's DEK with the old key,
/// wrap it to `recipient`, sign with `signer`.
async fn rewrap(
    api: &Api,
    vault: &str,
    old: &PrivateKey,
    recipient: &PrivateKey,
    signer: &PrivateKey,
    log_pem: &str,
) -> Signed<WrappedKey> {
    let dir = directory(api, vault, log_pem).await.unwrap();
    let wk: Signed<WrappedKey> = api.get_ok(&format!("/vault/{vault}/wrapped-key")).await;
    let (dek, _) = verify_and_unwrap(&wk, vault, None, old, &dir).unwrap();
    let mut body = wk.body().clone();
    body.recipient_fingerprint = recipient.fingerprint().into();
    body.wrapped_dek = recipient.public().wrap_dek(&dek);
    body.issued_at = ISSUED.into();
    Signed::sign(&body, signer)
}

fn rotation(old: &PrivateKey, new: &PrivateKey, proof: String, batch: Vec<Value>) -> Value {
    json!({
        "publicKey": new.public().to_pem(),
        "rotation": {
            "previousFingerprint": old.fingerprint(),
            "issuedAt": ISSUED,
            "proof": proof,
            "rewrappedVaultKeys": batch,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registration_answer() {
    let server = demo().await;
    let log_pem = server.admin().log_public_key();
    let api = Api::new(server.base_url(), DEMO_KEY);
    let (old, new, other) = (key(0), key(1), key(2));
    let post = |body: Value| {
        let api = api.clone();
        async move { api.post("/vault/public-key", &body).await }
    };

    // 400 invalid_request / invalid_public_key.
    let bad_json = api
        .http
        .post(format!("{}/vault/public-key", api.base))
        .header("X-API-Key", DEMO_KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let body: Value = bad_json.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    for pem in ["not a pem", RSA_1024, EC_P256] {
        let answer = post(json!({"publicKey": pem})).await;
        assert_eq!(code(&answer), (400, "invalid_public_key"), "{pem}");
    }

    // 201 registered, then 200 unchanged.
    let first = api.register(old).await;
    assert_eq!(first.0, 201);
    assert_eq!(first.1["status"], "registered");
    let again = api.register(old).await;
    assert_eq!(again.0, 200);
    assert_eq!(again.1["status"], "unchanged");
    assert_eq!(again.1["encryptionKeyId"], first.1["encryptionKeyId"]);

    // 409 rotation_proof_required: no rotation, or the wrong previous key.
    assert_eq!(
        code(&api.register(new).await),
        (409, "rotation_proof_required")
    );
    let wrong_prev = rotation(other, new, proof(other, new, ISSUED), vec![]);
    assert_eq!(
        code(&post(wrong_prev).await),
        (409, "rotation_proof_required")
    );

    let good_prod = rewrap(&api, PROD, old, new, new, &log_pem).await;
    let good_edge = rewrap(&api, EDGE, old, new, new, &log_pem).await;
    let good = || {
        vec![
            serde_json::to_value(&good_prod).unwrap(),
            serde_json::to_value(&good_edge).unwrap(),
        ]
    };

    // 400 invalid_request: bad proof.
    let bad_proof = rotation(
        old,
        new,
        proof(old, new, "2026-01-16T00:00:00.000Z"),
        good(),
    );
    assert_eq!(code(&post(bad_proof).await), (400, "invalid_request"));
    let forged = rotation(old, new, proof(new, new, ISSUED), good());
    assert_eq!(code(&post(forged).await), (400, "invalid_request"));

    // 400 invalid_request: an entry not wrapped to the new key, not signed by
    // it, or malformed.
    let to_old = rewrap(&api, PROD, old, old, new, &log_pem).await;
    let signed_by_old = rewrap(&api, PROD, old, new, old, &log_pem).await;
    let wrong_alg = good_prod.tampered(|raw| {
        raw.insert("algorithm".into(), json!("RSA-OAEP"));
    });
    let missing_member = {
        let mut v = serde_json::to_value(&good_prod).unwrap();
        v.as_object_mut().unwrap().remove("wrappedDek");
        v
    };
    let resigned_alg = {
        let mut b = good_prod.body().clone();
        b.algorithm = "RSA-OAEP".into();
        Signed::sign(&b, new)
    };
    assert_eq!(resigned_alg.body().algorithm, "RSA-OAEP");
    assert_ne!(WRAP_ALGORITHM, "RSA-OAEP");
    for entry in [
        serde_json::to_value(&to_old).unwrap(),
        serde_json::to_value(&signed_by_old).unwrap(),
        serde_json::to_value(&wrong_alg).unwrap(),
        serde_json::to_value(&resigned_alg).unwrap(),
        missing_member,
    ] {
        let batch = vec![entry, serde_json::to_value(&good_edge).unwrap()];
        let answer = post(rotation(old, new, proof(old, new, ISSUED), batch)).await;
        assert_eq!(code(&answer), (400, "invalid_request"), "{}", answer.1);
    }

    // 400 rewrap_incomplete: a vault missing, or none at all.
    let partial = rotation(
        old,
        new,
        proof(old, new, ISSUED),
        vec![serde_json::to_value(&good_prod).unwrap()],
    );
    assert_eq!(code(&post(partial).await), (400, "rewrap_incomplete"));
    let empty = rotation(old, new, proof(old, new, ISSUED), vec![]);
    assert_eq!(code(&post(empty).await), (400, "rewrap_incomplete"));
    // Nothing changed so far.
    assert_eq!(api.register(old).await.0, 200);

    // 200 rotated.
    let ok = post(rotation(old, new, proof(old, new, ISSUED), good())).await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(ok.1["status"], "rotated");
    assert_eq!(ok.1["fingerprint"], new.fingerprint());

    // The old key is revoked in every directory (with a valid inclusion
    // proof for its revoked leaf); the new key's wrapped keys are the
    // agent-signed ones, and they verify.
    for vault in [PROD, EDGE] {
        let dir = directory(&api, vault, &log_pem).await.unwrap();
        let old_signer = dir.signer(old.fingerprint()).unwrap();
        assert!(!old_signer.active);
        assert_eq!(old_signer.included, Some(true));
        let wk: Signed<WrappedKey> = api.get_ok(&format!("/vault/{vault}/wrapped-key")).await;
        assert_eq!(wk.signer_key_id(), new.fingerprint());
        verify_and_unwrap(&wk, vault, None, new, &dir).unwrap();
        read_vault(&api, vault, new, &log_pem).await.unwrap();
    }
    assert_eq!(code(&api.register(old).await), (409, "key_revoked"));
    assert_eq!(api.register(new).await.1["status"], "unchanged");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_without_wrapped_access_needs_no_batch() {
    let mut seed = r4_devserver::Seed::demo();
    for v in &mut seed.vaults {
        v.shared_with.clear();
    }
    let server = r4_devserver::start(r4_devserver::Options::new(seed))
        .await
        .unwrap();
    let api = Api::new(server.base_url(), DEMO_KEY);
    let (old, new) = (key(0), key(1));
    assert_eq!(api.register(old).await.0, 201);
    let body = json!({
        "publicKey": new.public().to_pem(),
        "rotation": {
            "previousFingerprint": old.fingerprint(),
            "issuedAt": ISSUED,
            "proof": proof(old, new, ISSUED),
        }
    });
    let answer = api.post("/vault/public-key", &body).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["status"], "rotated");
    server.shutdown().await;
}
