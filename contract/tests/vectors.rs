//! Every vector of `contract/tests/data/r4-test-vectors.json` (made by an
//! independent implementation, copied byte for byte into the repository so
//! that a clone stands alone), checked through the contract layer. Valid vectors must be
//! accepted with the right bytes; invalid ones rejected with their own error.

use r4_contract::canon::canonical;
use r4_contract::checkpoint::{items_digest, verify_item, verify_summary};
use r4_contract::crypto::{PrivateKey, PublicKey};
use r4_contract::directory::{leaf_hash, leaf_of, verify_directory, Role, TrustPolicy};
use r4_contract::envelope::{self, Expect};
use r4_contract::wire::{ItemDetail, ItemSummary, SignerDirectory, VaultSummary, WrappedKey};
use r4_contract::{envname, merkle, Dek, EnvelopeError, Signed, VerifyError};
use serde_json::Value;

fn vectors() -> Value {
    let path = std::env::var("R4_TEST_VECTORS").unwrap_or_else(|_| {
        // CARGO_MANIFEST_DIR is `contract/`.
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/r4-test-vectors.json"
        )
        .to_string()
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string"))
}

fn dek(hex_text: &str) -> Dek {
    Dek::from_bytes(hex::decode(hex_text).unwrap().try_into().unwrap())
}

fn agent_key(v: &Value) -> PrivateKey {
    PrivateKey::from_pem(s(v, &["keys", "agent", "privateKeyPkcs8"]).as_bytes()).unwrap()
}

fn directory(v: &Value) -> SignerDirectory {
    serde_json::from_value(v["signerDirectory"].clone()).unwrap()
}

fn log_policy(v: &Value) -> TrustPolicy {
    TrustPolicy {
        pinned_signers: vec![],
        log_key: Some(PublicKey::from_pem(s(v, &["keys", "log", "publicKey"])).unwrap()),
    }
}

#[test]
fn key_fingerprints_and_both_private_encodings() {
    let v = vectors();
    let pkcs8 = agent_key(&v);
    let pkcs1 =
        PrivateKey::from_pem(s(&v, &["keys", "agent", "privateKeyPkcs1"]).as_bytes()).unwrap();
    let expected = s(&v, &["keys", "agent", "fingerprint"]);
    assert_eq!(pkcs8.fingerprint(), expected);
    assert_eq!(pkcs1.fingerprint(), expected);
    for who in ["agent", "agentNext", "signer", "log"] {
        let public = PublicKey::from_pem(s(&v, &["keys", who, "publicKey"])).unwrap();
        assert_eq!(
            public.fingerprint(),
            s(&v, &["keys", who, "fingerprint"]),
            "{who}"
        );
    }
    let next = PrivateKey::from_pem(s(&v, &["keys", "agentNext", "privateKeyPkcs8"]).as_bytes());
    assert_eq!(
        next.unwrap().fingerprint(),
        s(&v, &["keys", "agentNext", "fingerprint"])
    );
}

/// The signer is derived lazily from the parsed key: a key read from either
/// encoding signs, its signatures verify under its public half, and its
/// PKCS#8 export reads back as the same key.
#[test]
fn both_private_encodings_sign_and_export_the_same_key() {
    let v = vectors();
    let pkcs8 = agent_key(&v);
    let pkcs1 =
        PrivateKey::from_pem(s(&v, &["keys", "agent", "privateKeyPkcs1"]).as_bytes()).unwrap();
    for key in [&pkcs8, &pkcs1] {
        let sig = key.sign_pss(b"message");
        assert!(key.public().verify_pss(b"message", &sig));
        assert!(!key.public().verify_pss(b"messagf", &sig));
        let again = PrivateKey::from_pem(key.to_pkcs8_pem().as_bytes()).unwrap();
        assert_eq!(again.fingerprint(), pkcs8.fingerprint());
        assert!(pkcs8.public().verify_pss(b"m", &again.sign_pss(b"m")));
    }
}

#[test]
fn jcs_canonical_bytes() {
    let v = vectors();
    for case in v["jcs"].as_array().unwrap() {
        let got = String::from_utf8(canonical(&case["input"])).unwrap();
        assert_eq!(got, case["canonical"].as_str().unwrap());
    }
}

#[test]
fn wrapped_key_signed_bytes_signature_and_unwrap() {
    let v = vectors();
    let wk: Signed<WrappedKey> = serde_json::from_value(v["wrappedKey"]["object"].clone()).unwrap();
    assert_eq!(
        String::from_utf8(wk.signed_bytes()).unwrap(),
        s(&v, &["wrappedKey", "signedBytes"])
    );
    let dir = verify_directory(&directory(&v), &wk.body().vault_id, &log_policy(&v)).unwrap();
    let key = agent_key(&v);
    let (dek, signer) = r4_contract::checkpoint::verify_and_unwrap(
        &wk,
        "507f1f77bcf86cd799439011",
        Some("507f1f77bcf86cd799439015"),
        &key,
        &dir,
    )
    .unwrap();
    assert_eq!(hex::encode(dek.expose()), s(&v, &["wrappedKey", "dekHex"]));
    assert_eq!(signer.key_id, s(&v, &["keys", "signer", "fingerprint"]));
}

#[test]
fn tampered_wrapped_key_fails_signature() {
    let v = vectors();
    let wk: Signed<WrappedKey> =
        serde_json::from_value(v["wrappedKeyTampered"]["object"].clone()).unwrap();
    let dir = verify_directory(&directory(&v), &wk.body().vault_id, &log_policy(&v)).unwrap();
    let err = dir
        .check(
            &wk,
            Role::WrappedKeyFor(s(&v, &["keys", "agent", "fingerprint"])),
        )
        .unwrap_err();
    assert_eq!(err, VerifyError::BadSignature);
}

#[test]
fn valid_envelopes_open_to_their_plaintext() {
    let v = vectors();
    let e = &v["envelopes"];
    let dek = dek(s(e, &["dekHex"]));
    for case in e["valid"].as_array().unwrap() {
        let expect = Expect {
            vault_id: s(e, &["vaultId"]),
            field_id: Some(s(case, &["fieldId"])),
            dek_version: 1,
        };
        let pt = envelope::open(s(case, &["envelope"]), &dek, expect).unwrap();
        assert_eq!(pt.expose(), s(case, &["plaintext"]).as_bytes());
    }
}

#[test]
fn invalid_envelopes_each_rejected_with_their_own_error() {
    let v = vectors();
    let e = &v["envelopes"];
    let dek = dek(s(e, &["dekHex"]));
    let mut seen = Vec::new();
    for case in e["invalid"].as_array().unwrap() {
        let why = s(case, &["why"]);
        let expected = match why {
            w if w.contains("swapped") => EnvelopeError::FieldMismatch,
            w if w.contains("tag altered") => EnvelopeError::Decrypt,
            w if w.contains("header altered") => EnvelopeError::DekVersionMismatch,
            w if w.contains("wrong vault") => EnvelopeError::VaultMismatch,
            w if w.contains("base64url") => EnvelopeError::Base64,
            w if w.contains("missing segments") => EnvelopeError::Malformed,
            other => panic!("unmapped invalid-envelope vector: {other}"),
        };
        let expect = Expect {
            vault_id: s(e, &["vaultId"]),
            field_id: Some(s(case, &["askedFieldId"])),
            dek_version: 1,
        };
        let err = envelope::open(s(case, &["envelope"]), &dek, expect).unwrap_err();
        assert_eq!(err, expected, "{why}");
        seen.push(err);
    }
    seen.dedup();
    assert_eq!(
        seen.len(),
        e["invalid"].as_array().unwrap().len(),
        "distinct errors"
    );
}

#[test]
fn altered_header_is_caught_by_gcm_even_when_dv_matches() {
    // The "dv 1 -> 2" vector, opened as if the wrapped key said dekVersion 2:
    // the header is AAD, so authentication still fails.
    let v = vectors();
    let e = &v["envelopes"];
    let case = e["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| s(c, &["why"]).contains("header altered"))
        .unwrap();
    let expect = Expect {
        vault_id: s(e, &["vaultId"]),
        field_id: Some(s(case, &["askedFieldId"])),
        dek_version: 2,
    };
    let err = envelope::open(s(case, &["envelope"]), &dek(s(e, &["dekHex"])), expect);
    assert_eq!(err.unwrap_err(), EnvelopeError::Decrypt);
}

#[test]
fn vault_summary_and_item_detail_verify() {
    let v = vectors();
    let policy = log_policy(&v);
    let dir = verify_directory(&directory(&v), "507f1f77bcf86cd799439011", &policy).unwrap();
    let items: Vec<ItemSummary> =
        serde_json::from_value(v["vaultSummary"]["items"].clone()).unwrap();
    let cp: Signed<VaultSummary> =
        serde_json::from_value(v["vaultSummary"]["checkpoint"].clone()).unwrap();
    assert_eq!(items_digest(&items), cp.body().items_digest);
    let summary = verify_summary(&items, &cp, "507f1f77bcf86cd799439011", &dir).unwrap();
    assert_eq!(summary.version, 7);

    let mut detail_json = v["itemDetail"]["item"].clone();
    detail_json["checkpoint"] = v["itemDetail"]["checkpoint"].clone();
    let detail: ItemDetail = serde_json::from_value(detail_json).unwrap();
    verify_item(
        &detail,
        "507f1f77bcf86cd799439011",
        "507f1f77bcf86cd799439018",
        &summary,
        &dir,
    )
    .unwrap();
    let dek = dek(s(&v, &["envelopes", "dekHex"]));
    let values: Vec<Vec<u8>> = detail
        .fields
        .iter()
        .map(|f| {
            let expect = Expect {
                vault_id: &detail.vault_id,
                field_id: Some(&f.id),
                dek_version: 1,
            };
            envelope::open(&f.value, &dek, expect)
                .unwrap()
                .expose()
                .to_vec()
        })
        .collect();
    assert_eq!(
        values,
        vec![b"admin".to_vec(), "s3cret-π".as_bytes().to_vec()]
    );
}

#[test]
fn signer_directory_leaves_tree_head_and_inclusion() {
    let v = vectors();
    let dir_json = directory(&v);
    let leaves_canonical = v["signerDirectory"]["allLeavesCanonical"]
        .as_array()
        .unwrap();
    let leaf_hashes = v["signerDirectory"]["allLeafHashes"].as_array().unwrap();
    for (i, entry) in dir_json.signers.iter().enumerate() {
        let leaf = leaf_of(entry);
        let jcs = r4_contract::canon::canonical_of(&leaf);
        assert_eq!(
            String::from_utf8(jcs).unwrap(),
            leaves_canonical[i].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(leaf_hash(&leaf)),
            leaf_hashes[i].as_str().unwrap()
        );
    }
    let all: Vec<merkle::Hash> = leaf_hashes
        .iter()
        .map(|h| merkle::parse_hash(h.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        hex::encode(merkle::root(&all)),
        dir_json.tree_head.body().root_hash
    );

    let verified = verify_directory(&dir_json, &dir_json.vault_id, &log_policy(&v)).unwrap();
    for signer in verified.signers() {
        assert_eq!(signer.included, Some(true), "{}", signer.key_id);
    }
    let revoked = verified
        .signer(s(&v, &["keys", "agentNext", "fingerprint"]))
        .unwrap();
    assert!(!revoked.active);
}

#[test]
fn merkle_roots_and_proofs() {
    let v = vectors();
    let leaves: Vec<merkle::Hash> = v["merkle"]["leavesHex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| merkle::leaf_hash(&hex::decode(h.as_str().unwrap()).unwrap()))
        .collect();
    for tree in v["merkle"]["trees"].as_array().unwrap() {
        let size = tree["size"].as_u64().unwrap() as usize;
        let root = merkle::parse_hash(tree["root"].as_str().unwrap()).unwrap();
        assert_eq!(merkle::root(&leaves[..size]), root, "size {size}");
        for (i, proof) in tree["proofs"].as_array().unwrap().iter().enumerate() {
            let path: Vec<merkle::Hash> = proof
                .as_array()
                .unwrap()
                .iter()
                .map(|h| merkle::parse_hash(h.as_str().unwrap()).unwrap())
                .collect();
            assert_eq!(merkle::inclusion_proof(&leaves[..size], i).unwrap(), path);
            assert!(merkle::verify_inclusion(
                &leaves[i],
                i as u64,
                size as u64,
                &path,
                &root
            ));
        }
    }
}

#[test]
fn rotation_proof_verifies_with_the_previous_key() {
    let v = vectors();
    let statement = canonical(&v["rotationProof"]["signedObject"]);
    let previous = PublicKey::from_pem(s(&v, &["keys", "agent", "publicKey"])).unwrap();
    assert!(previous.verify_pss(&statement, s(&v, &["rotationProof", "proof"])));
    let next = PublicKey::from_pem(s(&v, &["keys", "agentNext", "publicKey"])).unwrap();
    assert!(!next.verify_pss(&statement, s(&v, &["rotationProof", "proof"])));
}

#[test]
fn legacy_rsa_oaep_sha1_decrypts() {
    let v = vectors();
    let key = PrivateKey::from_pem(s(&v, &["keys", "legacy", "privateKey"]).as_bytes()).unwrap();
    let pt = key
        .legacy_decrypt(s(&v, &["legacy", "ciphertext"]))
        .unwrap();
    assert_eq!(&pt[..], s(&v, &["legacy", "value"]).as_bytes());
    // The same ciphertext is not an OAEP-SHA256 ciphertext.
    assert!(key.unwrap_dek(s(&v, &["legacy", "ciphertext"])).is_err());
}

#[test]
fn env_names() {
    let v = vectors();
    for case in v["envNames"].as_array().unwrap() {
        assert_eq!(
            envname::derive(s(case, &["item"]), s(case, &["field"])),
            s(case, &["name"]),
        );
    }
}
