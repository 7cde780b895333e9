//! One test per verification rule of the contract (§3–§5), each showing the
//! attack the rule stops: a validly signed world is built with the contract's
//! own signing functions, then one thing is changed the way a malicious server
//! would change it.

use std::sync::OnceLock;

use r4_contract::checkpoint::{
    item_checkpoint, items_digest, summary_entries, verify_and_unwrap, verify_field, verify_item,
    verify_summary, verify_summary_owned, wrapped_key, VerifiedSummary, VersionFloor,
};
use r4_contract::crypto::{PrivateKey, PublicKey};
use r4_contract::directory::{
    leaf_hash, leaf_of, verify_directory, verify_directory_with, ParsedKey, Role, SignerKeys,
    TrustPolicy, VerifiedDirectory,
};
use r4_contract::envelope::{self, Expect};
use r4_contract::envname::is_valid_env_name;
use r4_contract::rotation::{rewrap, sign_proof, statement, verify_proof};
use r4_contract::wire::*;
use r4_contract::{merkle, Dek, EnvelopeError, KeyError, Signed, VerifyError};
use serde_json::{json, Value};

const VAULT: &str = "aaaaaaaaaaaaaaaaaaaaaa01";
const OTHER_VAULT: &str = "aaaaaaaaaaaaaaaaaaaaaa02";
const EKID: &str = "eeeeeeeeeeeeeeeeeeeeee01";
const ITEM: &str = "bbbbbbbbbbbbbbbbbbbbbb01";
const ITEM2: &str = "bbbbbbbbbbbbbbbbbbbbbb02";
const F1: &str = "cccccccccccccccccccccc01";
const F2: &str = "cccccccccccccccccccccc02";
const NOW: &str = "2026-11-23T00:00:00.000Z";

struct Keys {
    operator: PrivateKey,
    agent: PrivateKey,
    other_agent: PrivateKey,
    revoked: PrivateKey,
    stranger: PrivateKey,
    log: PrivateKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        operator: PrivateKey::generate(2048).unwrap(),
        agent: PrivateKey::generate(2048).unwrap(),
        other_agent: PrivateKey::generate(2048).unwrap(),
        revoked: PrivateKey::generate(2048).unwrap(),
        stranger: PrivateKey::generate(2048).unwrap(),
        log: PrivateKey::generate(2048).unwrap(),
    })
}

fn entry(key: &PrivateKey, owner_type: &str, owner: &str, status: &str) -> SignerEntry {
    SignerEntry {
        key_id: key.fingerprint().into(),
        public_key: key.public().to_pem(),
        owner_type: owner_type.into(),
        owner_id: owner.into(),
        status: status.into(),
        log_index: 0,
        inclusion_proof: vec![],
    }
}

/// A directory with operator, agent, another agent and a revoked key, each
/// with a real inclusion proof under a tree head signed by the log key.
fn directory_json() -> SignerDirectory {
    let k = keys();
    let mut signers = vec![
        entry(&k.operator, "USER", "user1", "active"),
        entry(&k.agent, "AGENT", "agent1", "active"),
        entry(&k.other_agent, "AGENT", "agent2", "active"),
        entry(&k.revoked, "AGENT", "agent3", "revoked"),
    ];
    let leaves: Vec<merkle::Hash> = signers.iter().map(|s| leaf_hash(&leaf_of(s))).collect();
    for (i, s) in signers.iter_mut().enumerate() {
        s.log_index = i as u64;
        s.inclusion_proof = merkle::inclusion_proof(&leaves, i)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect();
    }
    let head = TreeHead {
        kind: kind::TREE_HEAD.into(),
        log_id: k.log.fingerprint().into(),
        tree_size: leaves.len() as u64,
        root_hash: hex::encode(merkle::root(&leaves)),
        issued_at: NOW.into(),
        signer_key_id: String::new(),
        signature: String::new(),
    };
    SignerDirectory {
        vault_id: VAULT.into(),
        signers,
        tree_head: Signed::sign(&head, &k.log),
    }
}

fn unpinned() -> TrustPolicy {
    TrustPolicy::default()
}

fn log_pinned() -> TrustPolicy {
    TrustPolicy {
        pinned_signers: vec![],
        log_key: Some(keys().log.public().clone()),
    }
}

fn dir() -> VerifiedDirectory {
    verify_directory(&directory_json(), VAULT, &unpinned()).unwrap()
}

fn dek() -> Dek {
    Dek::from_bytes([7; 32])
}

fn wrapped(signer: &PrivateKey, recipient: &PublicKey, dek: &Dek) -> Signed<WrappedKey> {
    Signed::sign(&wrapped_key(VAULT, EKID, 1, recipient, dek, NOW), signer)
}

fn unwrap_err(wk: &Signed<WrappedKey>, dir: &VerifiedDirectory) -> VerifyError {
    verify_and_unwrap(wk, VAULT, Some(EKID), &keys().agent, dir).unwrap_err()
}

fn resign<T: serde::Serialize + serde::de::DeserializeOwned>(
    obj: &Signed<T>,
    key: &PrivateKey,
    f: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> Signed<T> {
    let changed: Signed<T> = obj.tampered(f);
    Signed::sign(changed.body(), key)
}

fn field(id: &str, name: &str, value: &str) -> Field {
    Field {
        id: id.into(),
        name: name.into(),
        field_type: "PASSWORD".into(),
        value: envelope::seal(value.as_bytes(), &dek(), VAULT, id, 1),
        is_secret: true,
    }
}

fn summary_items() -> Vec<ItemSummary> {
    vec![
        ItemSummary {
            id: ITEM.into(),
            name: "Production DB".into(),
            item_type: "LOGIN".into(),
            websites: vec![],
            version: 3,
        },
        ItemSummary {
            id: ITEM2.into(),
            name: "Stripe".into(),
            item_type: "API_KEY".into(),
            websites: vec![],
            version: 1,
        },
    ]
}

fn summary_cp(items: &[ItemSummary], version: u64) -> Signed<VaultSummary> {
    Signed::sign(
        &VaultSummary {
            kind: kind::VAULT_SUMMARY.into(),
            vault_id: VAULT.into(),
            version,
            items_digest: items_digest(items),
            issued_at: NOW.into(),
            signer_key_id: String::new(),
            signature: String::new(),
        },
        &keys().operator,
    )
}

fn summary() -> VerifiedSummary<'static> {
    let items = summary_items();
    let cp = summary_cp(&items, 7);
    verify_summary_owned(items, &cp, VAULT, &dir()).unwrap()
}

fn item_detail(item_id: &str, version: u64) -> ItemDetail {
    let mut detail = ItemDetail {
        id: item_id.into(),
        name: "Production DB".into(),
        item_type: "LOGIN".into(),
        websites: vec![],
        vault_id: VAULT.into(),
        encryption_key_id: Some(EKID.into()),
        fields: vec![
            field(F1, "Username", "admin"),
            field(F2, "Password", "s3cret"),
        ],
        checkpoint: placeholder_checkpoint(),
    };
    detail.checkpoint = sign_detail(&detail, version);
    detail
}

fn sign_detail(detail: &ItemDetail, version: u64) -> Signed<ItemCheckpoint> {
    Signed::sign(&item_checkpoint(detail, version, NOW), &keys().operator)
}

/// A syntactically valid checkpoint, replaced before use.
fn placeholder_checkpoint() -> Signed<ItemCheckpoint> {
    serde_json::from_value(
        json!({"kind": "", "vaultId": "", "itemId": "", "version": 0,
        "itemDigest": "", "fieldDigests": {}, "issuedAt": "", "signerKeyId": ""}),
    )
    .unwrap()
}

// ---- §4.1 wrapped key ----

#[test]
fn honest_wrapped_key_unwraps() {
    let k = keys();
    let wk = wrapped(&k.operator, k.agent.public(), &dek());
    let dir = dir();
    let (got, signer) = verify_and_unwrap(&wk, VAULT, Some(EKID), &k.agent, &dir).unwrap();
    assert_eq!(got.expose(), dek().expose());
    assert_eq!(signer.key_id, k.operator.fingerprint());
}

#[test]
fn wrapped_key_replayed_from_another_vault_is_refused() {
    let k = keys();
    let wk = wrapped(&k.operator, k.agent.public(), &dek());
    let err = verify_and_unwrap(&wk, OTHER_VAULT, Some(EKID), &k.agent, &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongVault { .. }));
}

#[test]
fn wrapped_key_with_wrong_kind_is_refused() {
    let k = keys();
    let wk = resign(
        &wrapped(&k.operator, k.agent.public(), &dek()),
        &k.operator,
        |m| {
            m.insert("kind".into(), json!(kind::VAULT_SUMMARY));
        },
    );
    assert!(matches!(
        unwrap_err(&wk, &dir()),
        VerifyError::WrongKind { .. }
    ));
}

#[test]
fn wrapped_key_for_another_encryption_key_is_refused() {
    let k = keys();
    let wk = resign(
        &wrapped(&k.operator, k.agent.public(), &dek()),
        &k.operator,
        |m| {
            m.insert("encryptionKeyId".into(), json!("eeeeeeeeeeeeeeeeeeeeee99"));
        },
    );
    assert_eq!(unwrap_err(&wk, &dir()), VerifyError::WrongEncryptionKey);
}

#[test]
fn wrapped_key_with_unknown_algorithm_is_refused() {
    let k = keys();
    let wk = resign(
        &wrapped(&k.operator, k.agent.public(), &dek()),
        &k.operator,
        |m| {
            m.insert("algorithm".into(), json!("RSA1_5"));
        },
    );
    assert!(matches!(
        unwrap_err(&wk, &dir()),
        VerifyError::WrongAlgorithm(_)
    ));
}

#[test]
fn wrapped_key_for_another_recipient_is_refused() {
    let k = keys();
    let wk = wrapped(&k.operator, k.other_agent.public(), &dek());
    assert!(matches!(
        unwrap_err(&wk, &dir()),
        VerifyError::WrongRecipient { .. }
    ));
}

#[test]
fn wrapped_key_with_a_changed_member_fails_signature() {
    let k = keys();
    let wk = wrapped(&k.operator, k.agent.public(), &dek()).tampered(|m| {
        m.insert("dekVersion".into(), json!(2));
    });
    assert_eq!(unwrap_err(&wk, &dir()), VerifyError::BadSignature);
}

#[test]
fn an_unknown_member_added_after_signing_fails_signature() {
    let k = keys();
    let wk = wrapped(&k.operator, k.agent.public(), &dek()).tampered(|m| {
        m.insert("note".into(), json!("added by the server"));
    });
    assert_eq!(unwrap_err(&wk, &dir()), VerifyError::BadSignature);
}

#[test]
fn wrapped_key_signed_by_a_key_outside_the_directory_is_refused() {
    let k = keys();
    let wk = wrapped(&k.stranger, k.agent.public(), &dek());
    assert!(matches!(
        unwrap_err(&wk, &dir()),
        VerifyError::UnknownSigner(_)
    ));
}

#[test]
fn wrapped_key_signed_by_a_revoked_key_is_refused() {
    let k = keys();
    let wk = wrapped(&k.revoked, k.agent.public(), &dek());
    assert!(matches!(
        unwrap_err(&wk, &dir()),
        VerifyError::RevokedSigner(_)
    ));
}

#[test]
fn wrapped_key_signed_by_another_agent_is_refused() {
    // Another agent (or a server holding its key) cannot hand us a DEK of its choosing.
    let k = keys();
    let wk = wrapped(&k.other_agent, k.agent.public(), &Dek::from_bytes([9; 32]));
    assert!(matches!(
        unwrap_err(&wk, &dir()),
        VerifyError::SignerNotAllowed(_)
    ));
}

#[test]
fn wrapped_key_signed_by_the_recipient_agent_itself_is_accepted() {
    let k = keys();
    let wk = wrapped(&k.agent, k.agent.public(), &dek());
    assert!(verify_and_unwrap(&wk, VAULT, Some(EKID), &k.agent, &dir()).is_ok());
}

#[test]
fn wrapped_secret_of_the_wrong_length_is_refused() {
    let k = keys();
    let mut wk = wrapped(&k.operator, k.agent.public(), &dek());
    let short = {
        // 16 bytes wrapped to the agent: valid RSA-OAEP-256, wrong DEK size.
        use base64::Engine;
        let ct = {
            let pk =
                aws_lc_rs::rsa::PublicEncryptingKey::from_der(k.agent.public().spki_der()).unwrap();
            let oaep = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk).unwrap();
            let mut out = vec![0u8; oaep.ciphertext_size()];
            oaep.encrypt(
                &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
                &[1; 16],
                &mut out,
                None,
            )
            .unwrap()
            .to_vec()
        };
        base64::engine::general_purpose::STANDARD.encode(ct)
    };
    wk = resign(&wk, &k.operator, |m| {
        m.insert("wrappedDek".into(), json!(short));
    });
    assert_eq!(
        unwrap_err(&wk, &dir()),
        VerifyError::Unwrap(KeyError::DekLength)
    );
}

#[test]
fn a_wrong_dek_is_caught_by_the_envelope() {
    let k = keys();
    let wk = wrapped(&k.operator, k.agent.public(), &Dek::from_bytes([8; 32]));
    let (wrong, _) = verify_and_unwrap(&wk, VAULT, Some(EKID), &k.agent, &dir()).unwrap();
    let f = field(F1, "Username", "admin");
    let expect = Expect {
        vault_id: VAULT,
        field_id: Some(F1),
        dek_version: 1,
    };
    assert_eq!(
        envelope::open(&f.value, &wrong, expect).unwrap_err(),
        EnvelopeError::Decrypt
    );
}

// ---- §4.2 summary ----

#[test]
fn honest_summary_verifies() {
    assert_eq!(summary().version, 7);
}

/// `verify_summary_owned` (the sync path, which moves the entries it built)
/// decides what `verify_summary` decides, case by case.
#[test]
fn the_owned_summary_check_is_the_same_check() {
    let items = summary_items();
    let good = summary_cp(&items, 7);
    let mut hidden = summary_items();
    hidden.pop();
    let mut duplicated = summary_items();
    duplicated.push(duplicated[0].clone());
    let dup_cp = summary_cp(&duplicated, 7);
    let tampered = good.tampered(|m| {
        m.insert("version".into(), json!(8));
    });
    let cases: Vec<(&[ItemSummary], &Signed<VaultSummary>, &str)> = vec![
        (&items, &good, VAULT),
        (&hidden, &good, VAULT),
        (&duplicated, &dup_cp, VAULT),
        (&items, &tampered, VAULT),
        (&items, &good, OTHER_VAULT),
    ];
    for (list, cp, vault) in cases {
        let borrowed = verify_summary(list, cp, vault, &dir());
        let owned = verify_summary_owned(list.to_vec(), cp, vault, &dir());
        match (borrowed, owned) {
            (Ok(a), Ok(b)) => {
                assert_eq!((&a.vault_id, a.version), (&b.vault_id, b.version));
                assert!(a.items().eq(b.items()));
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("{a:?} against {b:?}"),
        }
    }
    assert_eq!(
        verify_summary_owned(duplicated, &dup_cp, VAULT, &dir()).unwrap_err(),
        VerifyError::Malformed("duplicate item id in list")
    );
}

#[test]
fn summary_with_a_hidden_item_is_refused() {
    let mut items = summary_items();
    let cp = summary_cp(&items, 7);
    items.pop();
    assert_eq!(
        verify_summary(&items, &cp, VAULT, &dir()).unwrap_err(),
        VerifyError::ItemsDigest
    );
}

#[test]
fn summary_with_a_renamed_item_is_refused() {
    let mut items = summary_items();
    let cp = summary_cp(&items, 7);
    items[0].name = "Staging DB".into();
    assert_eq!(
        verify_summary(&items, &cp, VAULT, &dir()).unwrap_err(),
        VerifyError::ItemsDigest
    );
}

#[test]
fn summary_of_another_vault_is_refused() {
    let items = summary_items();
    let cp = summary_cp(&items, 7);
    let err = verify_summary(&items, &cp, OTHER_VAULT, &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongVault { .. }));
}

#[test]
fn summary_with_wrong_kind_is_refused() {
    let items = summary_items();
    let cp = resign(&summary_cp(&items, 7), &keys().operator, |m| {
        m.insert("kind".into(), json!(kind::ITEM_DETAIL));
    });
    let err = verify_summary(&items, &cp, VAULT, &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongKind { .. }));
}

#[test]
fn summary_with_a_bad_signature_is_refused() {
    let items = summary_items();
    let cp = summary_cp(&items, 7).tampered(|m| {
        m.insert("version".into(), json!(8));
    });
    assert_eq!(
        verify_summary(&items, &cp, VAULT, &dir()).unwrap_err(),
        VerifyError::BadSignature
    );
}

#[test]
fn summary_version_going_backwards_is_a_rollback() {
    let items = summary_items();
    let mut floor = VersionFloor::default();
    let newer = verify_summary(&items, &summary_cp(&items, 8), VAULT, &dir()).unwrap();
    let older = verify_summary(&items, &summary_cp(&items, 7), VAULT, &dir()).unwrap();
    floor.observe(&newer).unwrap();
    floor.observe(&newer).unwrap();
    assert_eq!(
        floor.observe(&older).unwrap_err(),
        VerifyError::Rollback { seen: 8, found: 7 }
    );
}

/// The second item of [`summary_items`] as a detail at `version`.
fn stripe_detail(version: u64) -> ItemDetail {
    let mut detail = item_detail(ITEM2, version);
    detail.name = "Stripe".into();
    detail.item_type = "API_KEY".into();
    detail.checkpoint = sign_detail(&detail, version);
    detail
}

#[test]
fn sync_items_imply_the_signed_item_list() {
    let details = [item_detail(ITEM, 3), stripe_detail(1)];
    let items = summary_entries(&details);
    assert_eq!(items, summary_items());
    assert!(verify_summary(&items, &summary_cp(&summary_items(), 7), VAULT, &dir()).is_ok());
}

#[test]
fn sync_item_replayed_at_an_older_version_breaks_the_items_digest() {
    // A sync carrying an old, validly signed detail of an item the summary
    // lists at a newer version: the list it implies is not the signed one.
    let details = [item_detail(ITEM, 2), stripe_detail(1)];
    let cp = summary_cp(&summary_items(), 7);
    assert_eq!(
        verify_summary(&summary_entries(&details), &cp, VAULT, &dir()).unwrap_err(),
        VerifyError::ItemsDigest
    );
}

// ---- §4.3 item detail ----

#[test]
fn honest_item_detail_verifies() {
    let detail = item_detail(ITEM, 3);
    assert!(verify_item(&detail, VAULT, ITEM, &summary(), &dir()).is_ok());
}

#[test]
fn stale_item_detail_is_refused() {
    let detail = item_detail(ITEM, 2);
    let err = verify_item(&detail, VAULT, ITEM, &summary(), &dir()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::StaleDetail {
            detail: 2,
            summary: 3
        }
    );
}

#[test]
fn another_items_checkpoint_is_refused() {
    let mut detail = item_detail(ITEM, 3);
    detail.checkpoint = item_detail(ITEM2, 1).checkpoint;
    let err = verify_item(&detail, VAULT, ITEM, &summary(), &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongItem { .. }));
}

#[test]
fn item_detail_for_another_item_is_refused() {
    let detail = item_detail(ITEM2, 1);
    let err = verify_item(&detail, VAULT, ITEM, &summary(), &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongItem { .. }));
}

#[test]
fn item_detail_checkpoint_with_wrong_kind_is_refused() {
    let mut detail = item_detail(ITEM, 3);
    detail.checkpoint = resign(&detail.checkpoint, &keys().operator, |m| {
        m.insert("kind".into(), json!(kind::VAULT_SUMMARY));
    });
    let err = verify_item(&detail, VAULT, ITEM, &summary(), &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongKind { .. }));
}

#[test]
fn item_absent_from_the_summary_is_refused() {
    let items = vec![summary_items().remove(1)];
    let s = verify_summary(&items, &summary_cp(&items, 7), VAULT, &dir()).unwrap();
    let err = verify_item(&item_detail(ITEM, 3), VAULT, ITEM, &s, &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::NotInSummary(_)));
}

#[test]
fn renamed_item_is_refused() {
    let mut detail = item_detail(ITEM, 3);
    detail.name = "Something else".into();
    let err = verify_item(&detail, VAULT, ITEM, &summary(), &dir()).unwrap_err();
    assert_eq!(err, VerifyError::ItemDigest);
}

#[test]
fn a_dropped_field_is_refused() {
    let mut detail = item_detail(ITEM, 3);
    detail.fields.pop();
    let err = verify_item(&detail, VAULT, ITEM, &summary(), &dir()).unwrap_err();
    assert_eq!(err, VerifyError::FieldSet);
}

#[test]
fn swapped_field_values_are_refused_by_the_digest() {
    let mut detail = item_detail(ITEM, 3);
    let v0 = detail.fields[0].value.clone();
    detail.fields[0].value = detail.fields[1].value.clone();
    detail.fields[1].value = v0;
    let err = verify_item(&detail, VAULT, ITEM, &summary(), &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::FieldDigest(_)));
}

#[test]
fn item_checkpoint_with_a_bad_signature_is_refused() {
    let mut detail = item_detail(ITEM, 3);
    detail.checkpoint = detail.checkpoint.tampered(|m| {
        m.insert("issuedAt".into(), json!("2030-01-01T00:00:00.000Z"));
    });
    let err = verify_item(&detail, VAULT, ITEM, &summary(), &dir()).unwrap_err();
    assert_eq!(err, VerifyError::BadSignature);
}

// ---- §4.4 one field ----

fn field_response(value_from: &Field) -> FieldResponse {
    let detail = item_detail(ITEM, 3);
    let f = &detail.fields[0];
    FieldResponse {
        field: FieldWithItem {
            id: f.id.clone(),
            item_id: ITEM.into(),
            name: f.name.clone(),
            field_type: f.field_type.clone(),
            value: value_from.value.clone(),
            is_secret: f.is_secret,
        },
        checkpoint: detail.checkpoint,
    }
}

#[test]
fn honest_single_field_verifies() {
    let detail = item_detail(ITEM, 3);
    let resp = FieldResponse {
        field: FieldWithItem {
            id: F1.into(),
            item_id: ITEM.into(),
            name: detail.fields[0].name.clone(),
            field_type: detail.fields[0].field_type.clone(),
            value: detail.fields[0].value.clone(),
            is_secret: true,
        },
        checkpoint: detail.checkpoint,
    };
    assert!(verify_field(&resp, VAULT, F1, Some(ITEM), &summary(), &dir()).is_ok());
}

#[test]
fn single_field_with_another_value_is_refused() {
    let resp = field_response(&field(F1, "Username", "root"));
    let err = verify_field(&resp, VAULT, F1, Some(ITEM), &summary(), &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::FieldDigest(_)));
}

#[test]
fn single_field_under_another_item_is_refused() {
    let resp = field_response(&item_detail(ITEM, 3).fields[0]);
    let err = verify_field(&resp, VAULT, F1, Some(ITEM2), &summary(), &dir()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongItem { .. }));
}

// ---- §5 directory and trust ----

#[test]
fn directory_entry_whose_key_id_is_not_its_fingerprint_invalidates_the_directory() {
    let mut d = directory_json();
    d.signers[2].key_id = keys().operator.fingerprint().into();
    let err = verify_directory(&d, VAULT, &unpinned()).unwrap_err();
    assert!(matches!(err, VerifyError::KeyIdMismatch(_)));
}

#[test]
fn directory_of_another_vault_is_refused() {
    let err = verify_directory(&directory_json(), OTHER_VAULT, &unpinned()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongVault { .. }));
}

#[test]
fn directory_entry_with_garbage_key_is_refused() {
    let mut d = directory_json();
    d.signers[1].public_key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into();
    let err = verify_directory(&d, VAULT, &unpinned()).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignerKey(_)));
}

/// The signers' keys parsed once (`SignerKeys`) decide exactly what
/// parsing each entry's PEM decides: the same signers, the same refusals
/// (a garbage key, a keyId that is not the parsed key's fingerprint), and a
/// PEM the set does not hold is parsed where it is met.
#[test]
fn directories_verified_with_keys_parsed_once_are_the_same() {
    let d = directory_json();
    let all: SignerKeys = d
        .signers
        .iter()
        .map(|s| ParsedKey::parse(&s.public_key))
        .collect();
    let some: SignerKeys = [ParsedKey::parse(&d.signers[0].public_key)]
        .into_iter()
        .collect();
    let summary = |v: &VerifiedDirectory| {
        let mut s: Vec<_> = v
            .signers()
            .map(|s| (s.key_id.clone(), s.owner_type, s.active, s.included))
            .collect();
        s.sort_by(|a, b| a.0.cmp(&b.0));
        s
    };
    for policy in [unpinned(), log_pinned()] {
        let plain = verify_directory(&d, VAULT, &policy).unwrap();
        for set in [&all, &some, &SignerKeys::default()] {
            let with = verify_directory_with(&d, VAULT, &policy, set).unwrap();
            assert_eq!(summary(&with), summary(&plain));
            // The keys verify what the directory's own keys verify.
            let wk = wrapped(&keys().operator, keys().agent.public(), &dek());
            assert!(verify_and_unwrap(&wk, VAULT, Some(EKID), &keys().agent, &with).is_ok());
        }
    }
    let mut garbage = directory_json();
    garbage.signers[1].public_key =
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into();
    let cached: SignerKeys = garbage
        .signers
        .iter()
        .map(|s| ParsedKey::parse(&s.public_key))
        .collect();
    for set in [&cached, &all, &SignerKeys::default()] {
        let err = verify_directory_with(&garbage, VAULT, &unpinned(), set).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignerKey(_)));
    }
    let mut swapped = directory_json();
    swapped.signers[2].key_id = keys().operator.fingerprint().into();
    let err = verify_directory_with(&swapped, VAULT, &unpinned(), &all).unwrap_err();
    assert!(matches!(err, VerifyError::KeyIdMismatch(_)));
}

#[test]
fn tree_head_with_a_bad_signature_is_refused_when_the_log_is_pinned() {
    let mut d = directory_json();
    d.tree_head = d.tree_head.tampered(|m| {
        m.insert("treeSize".into(), json!(99));
    });
    assert_eq!(
        verify_directory(&d, VAULT, &log_pinned()).unwrap_err(),
        VerifyError::TreeHeadSignature
    );
    // Without a pinned log key the head cannot be authenticated and is skipped.
    assert!(verify_directory(&d, VAULT, &unpinned()).is_ok());
}

#[test]
fn tree_head_of_another_log_is_refused() {
    let mut d = directory_json();
    d.tree_head = resign(&d.tree_head, &keys().stranger, |m| {
        m.insert("logId".into(), json!(keys().stranger.fingerprint()));
    });
    let err = verify_directory(&d, VAULT, &log_pinned()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongLog(_)));
}

#[test]
fn tree_head_signed_by_another_key_is_refused() {
    let mut d = directory_json();
    d.tree_head = resign(&d.tree_head, &keys().stranger, |_| {});
    assert_eq!(
        verify_directory(&d, VAULT, &log_pinned()).unwrap_err(),
        VerifyError::TreeHeadSignature
    );
}

#[test]
fn signer_without_a_valid_inclusion_proof_is_not_relied_on() {
    let mut d = directory_json();
    d.signers[0].inclusion_proof[0] = hex::encode([0u8; 32]);
    let dir = verify_directory(&d, VAULT, &log_pinned()).unwrap();
    let items = summary_items();
    let err = verify_summary(&items, &summary_cp(&items, 7), VAULT, &dir).unwrap_err();
    assert!(matches!(err, VerifyError::NotIncluded(_)));
}

#[test]
fn signer_at_the_wrong_log_index_is_not_included() {
    let mut d = directory_json();
    d.signers[0].log_index = 1;
    let dir = verify_directory(&d, VAULT, &log_pinned()).unwrap();
    assert_eq!(
        dir.signer(keys().operator.fingerprint()).unwrap().included,
        Some(false)
    );
}

#[test]
fn pinned_signers_exclude_everyone_else() {
    let k = keys();
    let only_agent = TrustPolicy {
        pinned_signers: vec![k.agent.fingerprint().into()],
        log_key: None,
    };
    let dir = verify_directory(&directory_json(), VAULT, &only_agent).unwrap();
    let items = summary_items();
    let err = verify_summary(&items, &summary_cp(&items, 7), VAULT, &dir).unwrap_err();
    assert!(matches!(err, VerifyError::SignerNotPinned(_)));

    let operator = TrustPolicy {
        pinned_signers: vec![k.operator.fingerprint().into()],
        log_key: None,
    };
    let dir = verify_directory(&directory_json(), VAULT, &operator).unwrap();
    assert!(verify_summary(&items, &summary_cp(&items, 7), VAULT, &dir).is_ok());
}

#[test]
fn with_a_pinned_log_an_included_signer_need_not_be_pinned() {
    let k = keys();
    let policy = TrustPolicy {
        pinned_signers: vec![k.agent.fingerprint().into()],
        log_key: Some(k.log.public().clone()),
    };
    let dir = verify_directory(&directory_json(), VAULT, &policy).unwrap();
    let items = summary_items();
    assert!(verify_summary(&items, &summary_cp(&items, 7), VAULT, &dir).is_ok());
}

#[test]
fn a_key_listed_active_and_revoked_is_revoked() {
    let k = keys();
    let mut d = directory_json();
    d.signers
        .push(entry(&k.operator, "USER", "user1", "revoked"));
    let dir = verify_directory(&d, VAULT, &unpinned()).unwrap();
    let wk = wrapped(&k.operator, k.agent.public(), &dek());
    assert!(matches!(
        dir.check(&wk, Role::Checkpoint).unwrap_err(),
        VerifyError::RevokedSigner(_)
    ));
}

#[test]
fn a_duplicate_listing_without_a_proof_does_not_hide_a_proven_signer() {
    // A server adding a second, unproven listing of the operator cannot make
    // a log-pinned client refuse what the operator signed: one valid
    // inclusion proof puts the key in the log.
    let k = keys();
    let mut d = directory_json();
    d.signers
        .push(entry(&k.operator, "USER", "user1", "active"));
    let dir = verify_directory(&d, VAULT, &log_pinned()).unwrap();
    assert_eq!(
        dir.signer(k.operator.fingerprint()).unwrap().included,
        Some(true)
    );
    let items = summary_items();
    assert!(verify_summary(&items, &summary_cp(&items, 7), VAULT, &dir).is_ok());
}

#[test]
fn a_verified_directory_lists_every_signer_of_its_vault() {
    // What `r4-exec trust` prints and offers to pin.
    let k = keys();
    let dir = dir();
    assert_eq!(dir.vault_id(), VAULT);
    let mut listed: Vec<&str> = dir.signers().map(|s| s.key_id.as_str()).collect();
    listed.sort_unstable();
    let mut expected = vec![
        k.operator.fingerprint(),
        k.agent.fingerprint(),
        k.other_agent.fingerprint(),
        k.revoked.fingerprint(),
    ];
    expected.sort_unstable();
    assert_eq!(listed, expected);
}

#[test]
fn a_policy_is_unpinned_only_without_pinned_signers_and_log_key() {
    // Unpinned means trusting the directory as served: the client warns.
    let k = keys();
    assert!(unpinned().is_unpinned());
    assert!(!log_pinned().is_unpinned());
    let signers_only = TrustPolicy {
        pinned_signers: vec![k.operator.fingerprint().into()],
        log_key: None,
    };
    assert!(!signers_only.is_unpinned());
    let both = TrustPolicy {
        pinned_signers: vec![k.operator.fingerprint().into()],
        log_key: Some(k.log.public().clone()),
    };
    assert!(!both.is_unpinned());
}

// ---- §2 keys ----

#[test]
fn public_key_rules() {
    let k = keys();
    let pem = k.agent.public().to_pem();
    assert!(PublicKey::from_pem(&pem).is_ok());
    let as_rsa_label = pem.replace("PUBLIC KEY", "RSA PUBLIC KEY");
    assert_eq!(
        PublicKey::from_pem(&as_rsa_label).unwrap().fingerprint(),
        k.agent.fingerprint()
    );
    // A true PKCS#1 RSAPublicKey body is refused.
    let pkcs1 = aws_lc_rs::rsa::PublicKey::from_der(k.agent.public().spki_der()).unwrap();
    let pkcs1_pem = pem_rfc7468::encode_string(
        "RSA PUBLIC KEY",
        pem_rfc7468::LineEnding::LF,
        pkcs1.as_ref(),
    )
    .unwrap();
    assert_eq!(
        PublicKey::from_pem(&pkcs1_pem).unwrap_err(),
        KeyError::NotRsaSpki
    );
    assert_eq!(
        PublicKey::from_pem("garbage").unwrap_err(),
        KeyError::BadPem
    );
    assert_eq!(
        PublicKey::from_pem(&k.agent.to_pkcs8_pem()).unwrap_err(),
        KeyError::ExpectedPublicKey
    );
}

#[test]
fn private_key_rules() {
    let k = keys();
    let pem = k.agent.to_pkcs8_pem();
    assert_eq!(
        PrivateKey::from_pem(pem.as_bytes()).unwrap().fingerprint(),
        k.agent.fingerprint()
    );
    assert_eq!(
        PrivateKey::from_pem(k.agent.public().to_pem().as_bytes()).unwrap_err(),
        KeyError::ExpectedPrivateKey
    );
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_eq!(
        PrivateKey::from_pem(encrypted.as_bytes()).unwrap_err(),
        KeyError::Encrypted
    );
    assert_eq!(
        PrivateKey::from_pem(b"not a key").unwrap_err(),
        KeyError::BadPem
    );
    assert!(!format!("{:?}", k.agent).contains("BEGIN"));
}

#[test]
fn a_key_under_2048_bits_is_too_small_in_every_encoding() {
    // A 1024-bit signer in a directory, or a 1024-bit agent key: factorable,
    // so refused, and named as too small rather than as not RSA.
    assert_eq!(
        PublicKey::from_pem(include_str!("data/rsa-1024.public.pem")).unwrap_err(),
        KeyError::TooSmall(0)
    );
    for pem in [
        include_str!("data/rsa-1024.pkcs8.pem"),
        include_str!("data/rsa-1024.pkcs1.pem"),
    ] {
        assert!(matches!(
            PrivateKey::from_pem(pem.as_bytes()).unwrap_err(),
            KeyError::TooSmall(_)
        ));
    }
}

#[test]
fn a_key_over_2048_bits_is_accepted_with_its_size() {
    let key = PrivateKey::generate(3072).unwrap();
    assert_eq!(key.public().bits(), 3072);
    let public = PublicKey::from_pem(&key.public().to_pem()).unwrap();
    assert_eq!(public.bits(), 3072);
    assert!(public.verify_pss(b"m", &key.sign_pss(b"m")));
    assert_eq!(keys().agent.public().bits(), 2048);
}

#[test]
fn keys_print_their_fingerprint_and_never_their_secret() {
    let k = keys();
    assert_eq!(
        format!("{:?}", k.agent.public()),
        format!("PublicKey({}, 2048 bits)", k.agent.fingerprint())
    );
    assert_eq!(
        format!("{:?}", k.agent),
        format!("PrivateKey(<redacted>, {})", k.agent.fingerprint())
    );
}

#[test]
fn a_legacy_value_opens_only_as_rsa_oaep_sha1_under_its_key() {
    // §6.5: legacy values are RSA-OAEP-SHA1; they are not DEK wraps
    // (OAEP-SHA256) and no other key opens them.
    let k = keys();
    let ct = k.agent.public().legacy_encrypt(b"hunter2");
    assert_eq!(&k.agent.legacy_decrypt(&ct).unwrap()[..], b"hunter2");
    assert_eq!(
        k.agent.unwrap_dek(&ct).unwrap_err(),
        KeyError::DecryptFailed
    );
    assert_eq!(
        k.other_agent.legacy_decrypt(&ct).unwrap_err(),
        KeyError::DecryptFailed
    );
}

#[test]
fn envelope_with_another_algorithm_is_refused_before_decryption() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = json!({"alg": "A128GCM", "dv": 1, "fid": F1, "vid": VAULT}).to_string();
    let env = format!(
        "r4v3.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode([0u8; 12]),
        URL_SAFE_NO_PAD.encode([0u8; 32])
    );
    let expect = Expect {
        vault_id: VAULT,
        field_id: Some(F1),
        dek_version: 1,
    };
    assert_eq!(
        envelope::open(&env, &dek(), expect).unwrap_err(),
        EnvelopeError::Algorithm
    );
    let header = json!({"alg": "A256GCM", "dv": 1, "fid": F1, "vid": VAULT}).to_string();
    let env = format!(
        "r4v3.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode([0u8; 8]),
        URL_SAFE_NO_PAD.encode([0u8; 32])
    );
    assert_eq!(
        envelope::open(&env, &dek(), expect).unwrap_err(),
        EnvelopeError::Length
    );
}

// ---- §3 envelope lengths ----

fn expect_f1() -> Expect<'static> {
    Expect {
        vault_id: VAULT,
        field_id: Some(F1),
        dek_version: 1,
    }
}

/// `envelope` with its ciphertext segment replaced by `ct`.
fn with_ciphertext(envelope: &str, ct: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let (rest, _) = envelope.rsplit_once('.').unwrap();
    format!("{rest}.{}", URL_SAFE_NO_PAD.encode(ct))
}

#[test]
fn envelope_value_of_exactly_1_mib_opens() {
    let value = vec![b'a'; envelope::MAX_VALUE];
    let env = envelope::seal(&value, &dek(), VAULT, F1, 1);
    let opened = envelope::open(&env, &dek(), expect_f1()).unwrap();
    assert_eq!(opened.expose(), &value[..]);
}

#[test]
fn envelope_value_over_1_mib_is_refused_before_decryption() {
    // A server pushing a value one byte over the limit: refused as too large
    // although it is authentic, so no oversized plaintext is ever produced.
    let value = vec![b'a'; envelope::MAX_VALUE + 1];
    let env = envelope::seal(&value, &dek(), VAULT, F1, 1);
    assert_eq!(
        envelope::open(&env, &dek(), expect_f1()).unwrap_err(),
        EnvelopeError::TooLarge
    );
    // Refused before AES-GCM: a forged tag changes nothing.
    let mut ct = vec![0u8; envelope::MAX_VALUE + 1 + 16];
    ct[0] = 1;
    assert_eq!(
        envelope::open(&with_ciphertext(&env, &ct), &dek(), expect_f1()).unwrap_err(),
        EnvelopeError::TooLarge
    );
}

#[test]
fn envelope_of_an_empty_value_is_just_the_tag_and_opens() {
    let env = envelope::seal(b"", &dek(), VAULT, F1, 1);
    let opened = envelope::open(&env, &dek(), expect_f1()).unwrap();
    assert_eq!(opened.expose(), b"");
}

#[test]
fn envelope_ciphertext_shorter_than_the_gcm_tag_is_refused() {
    // A valid 12-byte IV with a ciphertext that cannot even hold the 16-byte
    // tag: a length error, not a panic or a call into AES-GCM.
    let env = envelope::seal(b"", &dek(), VAULT, F1, 1);
    for len in [1, 8, 15] {
        assert_eq!(
            envelope::open(&with_ciphertext(&env, &vec![0u8; len]), &dek(), expect_f1())
                .unwrap_err(),
            EnvelopeError::Length,
            "ciphertext of {len} bytes"
        );
    }
}

#[test]
fn only_an_r4v3_prefix_marks_an_envelope() {
    // A value without the prefix is plaintext (§6.4), which the client
    // accepts only where its configuration allows unencrypted values.
    assert!(envelope::is_envelope(&envelope::seal(
        b"x",
        &dek(),
        VAULT,
        F1,
        1
    )));
    assert!(envelope::is_envelope("r4v3."));
    for plain in ["", "s3cret", "r4v2.a.b.c", "R4V3.a.b.c", " r4v3.a.b.c"] {
        assert!(!envelope::is_envelope(plain), "{plain:?}");
    }
}

#[test]
fn envelope_with_an_empty_segment_is_malformed() {
    // Each of header, IV and ciphertext must be present: an empty one is a
    // shape error, found before any segment is decoded.
    let env = envelope::seal(b"x", &dek(), VAULT, F1, 1);
    let parts: Vec<&str> = env.strip_prefix("r4v3.").unwrap().split('.').collect();
    for empty in 0..3 {
        let mut p = parts.clone();
        p[empty] = "";
        let broken = format!("r4v3.{}", p.join("."));
        assert_eq!(
            envelope::open(&broken, &dek(), expect_f1()).unwrap_err(),
            EnvelopeError::Malformed,
            "{broken}"
        );
        assert_eq!(
            envelope::peek_header(&broken).unwrap_err(),
            EnvelopeError::Malformed
        );
    }
}

// ---- §6.4 env names ----

#[test]
fn only_portable_names_are_valid_env_names() {
    // A name a shell or execve(2) consumer could misread (leading digit,
    // `=`, space, dash, non-ASCII) is refused in configuration.
    for ok in ["A", "_", "_1", "DB_PASSWORD", "db_password", "A1_B2"] {
        assert!(is_valid_env_name(ok), "{ok:?}");
    }
    for bad in ["", "1A", "A-B", "A B", "A=B", "É", "A\0"] {
        assert!(!is_valid_env_name(bad), "{bad:?}");
    }
}

// ---- §7 key rotation ----

#[test]
fn a_rotation_proof_vouches_only_for_its_statement_and_only_with_the_previous_key() {
    let k = keys();
    let stmt = statement(k.agent.fingerprint(), k.other_agent.fingerprint(), NOW);
    assert_eq!(stmt.kind, kind::KEY_ROTATION);
    assert_eq!(
        (
            stmt.previous_fingerprint.as_str(),
            stmt.new_fingerprint.as_str(),
            stmt.issued_at.as_str()
        ),
        (k.agent.fingerprint(), k.other_agent.fingerprint(), NOW)
    );
    let proof = sign_proof(&k.agent, &stmt);
    assert!(verify_proof(k.agent.public(), &stmt, &proof));
    // Whoever holds only the API key and a new key cannot sign for the old one.
    assert!(!verify_proof(
        k.agent.public(),
        &stmt,
        &sign_proof(&k.other_agent, &stmt)
    ));
    // A proof does not carry over to another new key or another time.
    let elsewhere = statement(k.agent.fingerprint(), k.stranger.fingerprint(), NOW);
    assert!(!verify_proof(k.agent.public(), &elsewhere, &proof));
    let later = statement(
        k.agent.fingerprint(),
        k.other_agent.fingerprint(),
        "2026-11-24T00:00:00.000Z",
    );
    assert!(!verify_proof(k.agent.public(), &later, &proof));
    // The old key's signature over another kind of object is no proof.
    let mut other_kind = stmt.clone();
    other_kind.kind = kind::WRAPPED_KEY.into();
    assert!(!verify_proof(
        k.agent.public(),
        &other_kind,
        &sign_proof(&k.agent, &other_kind)
    ));
}

#[test]
fn a_rewrapped_key_is_the_same_vault_key_for_the_new_key_signed_by_it() {
    let k = keys();
    let old = wrapped(&k.operator, k.agent.public(), &dek());
    let new = rewrap(old.body(), &dek(), &k.other_agent, NOW);
    let (o, n) = (old.body(), new.body());
    assert_eq!(
        (&n.vault_id, &n.encryption_key_id, n.dek_version),
        (&o.vault_id, &o.encryption_key_id, o.dek_version)
    );
    assert_eq!(n.recipient_fingerprint, k.other_agent.fingerprint());
    assert_eq!(n.issued_at, NOW);
    assert_eq!(new.signer_key_id(), k.other_agent.fingerprint());
    // It passes every check of §4.1 for the new key: an AGENT signer may
    // sign the wrapped key addressed to itself.
    let dir = dir();
    let (got, signer) = verify_and_unwrap(&new, VAULT, Some(EKID), &k.other_agent, &dir).unwrap();
    assert_eq!(got.expose(), dek().expose());
    assert_eq!(signer.key_id, k.other_agent.fingerprint());
}

/// The verified summary finds every listed item by id, and nothing else,
/// whatever order the list came in (it keeps the list and its id order,
/// not a copy of each entry).
#[test]
fn a_verified_summary_finds_each_listed_item_and_no_other() {
    let mut items = summary_items();
    for n in 0..40u32 {
        items.push(ItemSummary {
            id: format!("{:024x}", (n * 7919) % 40 + 1000).into(),
            name: format!("item {n}").into(),
            ..items[0].clone()
        });
    }
    items.swap(0, 17);
    let cp = summary_cp(&items, 7);
    let summary = verify_summary(&items, &cp, VAULT, &dir()).unwrap();
    assert_eq!(summary.len(), items.len());
    assert!(!summary.is_empty());
    for item in &items {
        assert_eq!(summary.get(&item.id), Some(item), "{}", item.id);
    }
    for absent in ["", "0", "ffffffffffffffffffffffff", &ITEM[..23]] {
        assert_eq!(summary.get(absent), None, "{absent}");
    }
    let ids: Vec<&str> = summary.items().map(|i| i.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in id order");
    assert_eq!(ids.len(), items.len());
    let empty = summary_cp(&[], 7);
    let none = verify_summary(&[], &empty, VAULT, &dir()).unwrap();
    assert!(none.is_empty() && none.get(ITEM).is_none());
    assert_eq!(none.len(), 0);
}
