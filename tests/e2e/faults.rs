//! One test per fault of r4-devserver: each shows that the attack or failure
//! is caught — through the library (the exact error variant) and through the
//! real binary (exit code, a message naming the env var, the reference and the
//! failed check, and a COMMAND that never ran).

use std::time::Duration;

use crate::util::*;
use r4_exec::client::{Client, ClientError};
use r4_exec::config::Config;
use r4_exec::contract::checkpoint::{summary_entries, verify_summary, VersionFloor};
use r4_exec::contract::directory::{verify_directory, TrustPolicy};
use r4_exec::contract::{EnvelopeError, VerifyError};
use r4_exec::resolve::{resolve, Failure, Problem, ResolveOptions};

/// Resolves through the library; returns the problems.
fn library_problems(w: &World) -> Vec<Problem> {
    let config = Config::load(&w.path("r4.toml"), true).unwrap();
    let trust = r4_exec::startup::settings::trust(&config).unwrap();
    let mut opts = client_options(w);
    opts.timeout = Duration::from_secs(2);
    let client = Client::new(opts).unwrap();
    let ropts = ResolveOptions {
        trust,
        ..Default::default()
    };
    let fut = resolve(&client, agent_key(), &config, &ropts);
    match rt().block_on(async { tokio::time::timeout(Duration::from_secs(8), fut).await }) {
        Ok(Ok(_)) => panic!("resolution succeeded under a fault"),
        Ok(Err(problems)) => problems,
        Err(_) => vec![Problem {
            name: None,
            reference: None,
            failure: Failure::Client(ClientError::Timeout {
                method: "GET",
                path: "(whole run)".into(),
                after: Duration::from_secs(8),
            }),
        }],
    }
}

/// Runs the binary under the fault; asserts the code, the message and that
/// the child did not run.
fn binary_refuses(w: &World, code: i32, message: &str) {
    let marker = w.marker();
    let err = fails(
        w.r4exec()
            .args(["--timeout", "5", "--"])
            .args(marker.command()),
        code,
        &[message],
    );
    marker.assert_not_ran();
    assert_no_value("the binary", &err);
}

fn any(problems: &[Problem], pred: impl Fn(&Failure) -> bool) -> bool {
    problems.iter().any(|p| pred(&p.failure))
}

macro_rules! fault_test {
    ($name:ident, $fault:literal, pin_log = $pin:expr, code = $code:expr, message = $msg:expr, $pat:pat) => {
        #[test]
        fn $name() {
            let w = World::faulty(&[$fault]);
            if $pin {
                pin_log(&w);
            }
            let problems = library_problems(&w);
            assert!(
                any(&problems, |f| matches!(f, $pat)),
                "{}: {problems:#?}",
                $fault
            );
            binary_refuses(&w, $code, $msg);
        }
    };
}

fault_test!(swap_envelope, "swap-envelope", pin_log = false, code = 65,
    message = "STRIPE_KEY (r4://Production Secrets/Stripe/secret key): verification failed: envelope belongs to another field",
    Failure::Envelope(EnvelopeError::FieldMismatch));
fault_test!(tamper_ciphertext, "tamper-ciphertext", pin_log = false, code = 65,
    message = "TLS_KEY_FILE (r4://Edge/TLS/private key): verification failed: envelope failed authentication",
    Failure::Envelope(EnvelopeError::Decrypt));
fault_test!(bad_signature_wrapped_key, "bad-signature-wrapped-key", pin_log = false, code = 65,
    message = "DB_PASSWORD (r4://Production Secrets/Production DB/Password): verification failed: signature does not verify",
    Failure::Verify(VerifyError::BadSignature));
fault_test!(
    bad_signature_summary,
    "bad-signature-summary",
    pin_log = false,
    code = 65,
    message = "verification failed: signature does not verify",
    Failure::Verify(VerifyError::BadSignature)
);
fault_test!(
    bad_signature_detail,
    "bad-signature-detail",
    pin_log = false,
    code = 65,
    message = "verification failed: signature does not verify",
    Failure::Verify(VerifyError::BadSignature)
);
fault_test!(
    bad_signature_tree_head,
    "bad-signature-tree-head",
    pin_log = true,
    code = 65,
    message = "tree head signature does not verify",
    Failure::Verify(VerifyError::TreeHeadSignature)
);
fault_test!(
    unknown_signer,
    "unknown-signer",
    pin_log = false,
    code = 65,
    message = "is not in the vault's signer directory",
    Failure::Verify(VerifyError::UnknownSigner(_))
);
fault_test!(
    revoked_signer,
    "revoked-signer",
    pin_log = false,
    code = 65,
    message = "is revoked",
    Failure::Verify(VerifyError::RevokedSigner(_))
);
fault_test!(
    agent_signed_wrapped_key,
    "agent-signed-wrapped-key",
    pin_log = false,
    code = 65,
    message = "is an AGENT key that may only wrap for itself",
    Failure::Verify(VerifyError::SignerNotAllowed(_))
);
fault_test!(
    wrong_recipient,
    "wrong-recipient",
    pin_log = false,
    code = 77,
    message = "wrapped key is for runtime key",
    Failure::Verify(VerifyError::WrongRecipient { .. })
);
fault_test!(
    wrong_dek,
    "wrong-dek",
    pin_log = false,
    code = 65,
    message = "envelope failed authentication",
    Failure::Envelope(EnvelopeError::Decrypt)
);
// Under the one-round sync plan the item list is rebuilt from the details'
// versions, so a stale detail breaks the signed itemsDigest; the per-endpoint
// check (StaleDetail) is shown in contract/tests/contract_attacks.rs.
fault_test!(
    stale_detail,
    "stale-detail",
    pin_log = false,
    code = 65,
    message = "served at a stale version",
    Failure::Verify(VerifyError::ItemsDigest | VerifyError::StaleDetail { .. })
);
fault_test!(
    replayed_checkpoint,
    "replayed-checkpoint",
    pin_log = false,
    code = 65,
    message = "object is for another item",
    Failure::Verify(VerifyError::WrongItem { .. })
);
fault_test!(
    bad_inclusion_proof,
    "bad-inclusion-proof",
    pin_log = true,
    code = 65,
    message = "has no valid inclusion proof",
    Failure::Verify(VerifyError::NotIncluded(_))
);
fault_test!(
    key_id_mismatch,
    "key-id-mismatch",
    pin_log = false,
    code = 65,
    message = "does not match its public key's fingerprint",
    Failure::Verify(VerifyError::KeyIdMismatch(_))
);
fault_test!(
    items_digest_mismatch,
    "items-digest-mismatch",
    pin_log = false,
    code = 65,
    message = "(itemsDigest)",
    Failure::Verify(VerifyError::ItemsDigest)
);
fault_test!(
    rate_limit_forever,
    "rate-limit",
    pin_log = false,
    code = 69,
    message = "429 rate_limit_exceeded",
    Failure::Client(ClientError::Api { status: 429, .. })
);
fault_test!(
    unavailable_forever,
    "unavailable",
    pin_log = false,
    code = 69,
    message = "503 unavailable",
    Failure::Client(ClientError::Api { status: 503, .. })
);
fault_test!(
    invalid_json,
    "invalid-json",
    pin_log = false,
    code = 65,
    message = "malformed response",
    Failure::Client(ClientError::Decode { .. })
);
fault_test!(
    huge_body,
    "huge-body",
    pin_log = false,
    code = 65,
    message = "response larger than",
    Failure::Client(ClientError::TooLarge { .. })
);
fault_test!(
    hang,
    "hang",
    pin_log = false,
    code = 69,
    message = "gave up after 5s",
    Failure::Client(ClientError::Timeout { .. })
);
fault_test!(
    trickle,
    "trickle",
    pin_log = false,
    code = 69,
    message = "gave up after 5s",
    Failure::Client(ClientError::Timeout { .. })
);

#[test]
fn transient_429_and_503_are_retried() {
    for fault in ["rate-limit:2", "unavailable:2"] {
        let w = World::faulty(&[fault]);
        let out = w
            .r4exec()
            .args(["-v", "--", "sh", "-c", "printf %s \"$DB_PASSWORD\""])
            .output()
            .unwrap();
        assert!(out.status.success(), "{fault}: {}", stderr(&out));
        assert_eq!(stdout(&out), DB_PASSWORD);
        assert_eq!(
            stderr(&out).matches("retrying GET /vault in").count(),
            2,
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_summary_version_going_backwards_is_refused_within_a_process() {
    let w = World::faulty(&["rollback"]);
    let client = client(&w);
    let mut floor = VersionFloor::default();
    let mut outcome = Ok(());
    for _ in 0..2 {
        let sync = rt().block_on(client.sync(None)).unwrap();
        let v = sync
            .vaults
            .iter()
            .find(|v| v.vault.name == "Production Secrets")
            .unwrap();
        let dir = verify_directory(&v.signers, &v.vault.id, &TrustPolicy::default()).unwrap();
        let items = summary_entries(&v.items);
        let summary = verify_summary(&items, &v.checkpoint, &v.vault.id, &dir).unwrap();
        outcome = floor.observe(&summary);
    }
    assert!(
        matches!(outcome, Err(VerifyError::Rollback { .. })),
        "{outcome:?}"
    );
}
