//! Every object fault changes what is served — on its own endpoint and in
//! `/vault/sync` — in exactly the way the contract layer catches; with the
//! faults cleared, everything verifies again.

mod common;

use common::*;
use r4_contract::checkpoint::{summary_entries, verify_summary, VersionFloor};
use r4_contract::wire::{ItemList, SignerDirectory, SyncResponse};
use r4_contract::{EnvelopeError, VerifyError};
use r4_devserver::{Fault, FaultKind as F};

/// Whether a failure is the one `kind` should cause.
fn expected(kind: F, f: &Failure) -> bool {
    use Failure::{Envelope as E, Verify as V};
    match kind {
        F::SwapEnvelope => matches!(f, E(EnvelopeError::FieldMismatch)),
        F::TamperCiphertext | F::WrongDek => matches!(f, E(EnvelopeError::Decrypt)),
        F::BadSignatureWrappedKey | F::BadSignatureSummary | F::BadSignatureDetail => {
            matches!(f, V(VerifyError::BadSignature))
        }
        F::BadSignatureTreeHead => matches!(f, V(VerifyError::TreeHeadSignature)),
        F::UnknownSigner => matches!(f, V(VerifyError::UnknownSigner(_))),
        F::RevokedSigner => matches!(f, V(VerifyError::RevokedSigner(_))),
        F::AgentSignedWrappedKey => matches!(f, V(VerifyError::SignerNotAllowed(_))),
        F::WrongRecipient => matches!(f, V(VerifyError::WrongRecipient { .. })),
        F::StaleDetail => matches!(f, V(VerifyError::StaleDetail { .. })),
        F::ReplayedCheckpoint => matches!(f, V(VerifyError::WrongItem { .. })),
        F::BadInclusionProof => matches!(f, V(VerifyError::NotIncluded(_))),
        F::KeyIdMismatch => matches!(f, V(VerifyError::KeyIdMismatch(_))),
        F::ItemsDigestMismatch => matches!(f, V(VerifyError::ItemsDigest)),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_object_fault_is_caught_everywhere_it_is_served() {
    let server = demo().await;
    let admin = server.admin();
    let log_pem = admin.log_public_key();
    let api = Api::new(server.base_url(), DEMO_KEY);
    api.register(key(0)).await;
    let honest = read_vault(&api, PROD, key(0), &log_pem).await.unwrap();

    let object_faults: Vec<F> = F::ALL
        .iter()
        .copied()
        .filter(|k| !k.is_request_fault() && *k != F::Rollback)
        .collect();
    assert_eq!(object_faults.len(), 16);
    for kind in object_faults {
        admin.set_faults(vec![Fault::new(kind)]);
        let direct = read_vault(&api, PROD, key(0), &log_pem).await;
        match &direct {
            Err(f) => assert!(expected(kind, f), "{}: endpoints gave {f:?}", kind.name()),
            Ok(_) => panic!("{}: endpoints verified", kind.name()),
        }
        let sync: SyncResponse = api.get_ok("/vault/sync").await;
        let prod = sync.vaults.iter().find(|v| v.vault.id == PROD).unwrap();
        match verify_sync_vault(prod, key(0), &log_pem) {
            // Sync items carry their version only in their checkpoint, so a
            // stale detail shows first as an itemsDigest mismatch.
            Err(Failure::Verify(VerifyError::ItemsDigest)) if kind == F::StaleDetail => {}
            Err(f) => assert!(expected(kind, &f), "{}: sync gave {f:?}", kind.name()),
            Ok(_) => panic!("{}: sync verified", kind.name()),
        }
        admin.set_faults(vec![]);
        assert_eq!(
            read_vault(&api, PROD, key(0), &log_pem).await.unwrap(),
            honest
        );
    }

    // Several at once still compose into what is served.
    admin.set_faults(vec![
        Fault::new(F::StaleDetail),
        Fault::new(F::BadSignatureTreeHead),
    ]);
    assert!(matches!(
        read_vault(&api, PROD, key(0), &log_pem).await,
        Err(Failure::Verify(VerifyError::TreeHeadSignature))
    ));
    assert_eq!(admin.faults().len(), 2);
    admin.set_faults(vec![]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_serves_a_lower_summary_version_after_the_first() {
    let server = demo().await;
    let admin = server.admin();
    let log_pem = admin.log_public_key();
    let api = Api::new(server.base_url(), DEMO_KEY);
    api.register(key(0)).await;
    admin.set_faults(vec!["rollback".parse().unwrap()]);
    let dir = directory(&api, PROD, &log_pem).await.unwrap();
    let mut floor = VersionFloor::default();
    let first: ItemList = api.get_ok(&format!("/vault/{PROD}/items")).await;
    floor
        .observe(&verify_summary(&first.items, &first.checkpoint, PROD, &dir).unwrap())
        .unwrap();
    let second: ItemList = api.get_ok(&format!("/vault/{PROD}/items")).await;
    let summary = verify_summary(&second.items, &second.checkpoint, PROD, &dir).unwrap();
    assert!(matches!(
        floor.observe(&summary),
        Err(VerifyError::Rollback { seen: 1, found: 0 })
    ));
    let sync: SyncResponse = api.get_ok("/vault/sync").await;
    let prod = sync.vaults.iter().find(|v| v.vault.id == PROD).unwrap();
    let sync_dir =
        r4_contract::directory::verify_directory(&prod.signers, PROD, &policy(&log_pem)).unwrap();
    let entries = summary_entries(&prod.items);
    let summary = verify_summary(&entries, &prod.checkpoint, PROD, &sync_dir).unwrap();
    assert!(floor.observe(&summary).is_err());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_faults_change_the_directory_only_while_on() {
    let server = demo().await;
    let admin = server.admin();
    let api = Api::new(server.base_url(), DEMO_KEY);
    api.register(key(0)).await;
    let plain: SignerDirectory = api.get_ok(&format!("/vault/{PROD}/public-keys")).await;
    assert_eq!(plain.signers.len(), 2);
    admin.set_faults(vec![
        Fault::new(F::RevokedSigner),
        Fault::new(F::AgentSignedWrappedKey),
    ]);
    let faulty: SignerDirectory = api.get_ok(&format!("/vault/{PROD}/public-keys")).await;
    let statuses: Vec<(&str, &str)> = faulty
        .signers
        .iter()
        .map(|s| (s.owner_type.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("USER", "active"),
            ("AGENT", "active"),
            ("USER", "revoked"),
            ("AGENT", "active")
        ]
    );
    admin.set_faults(vec![]);
    let again: SignerDirectory = api.get_ok(&format!("/vault/{PROD}/public-keys")).await;
    assert_eq!(again.signers.len(), 2);
    // The log grew (fault keys were logged), the directory did not.
    assert!(again.tree_head.body().tree_size > plain.tree_head.body().tree_size);
    server.shutdown().await;
}
