//! Rotating the runtime key (contract §7): the statement the previous key
//! signs, and a vault key re-wrapped to the new key and signed by it.

use crate::canon::canonical_of;
use crate::checkpoint::wrapped_key;
use crate::crypto::{PrivateKey, PublicKey};
use crate::secret::Dek;
use crate::signed::Signed;
use crate::wire::{kind, RotationStatement, WrappedKey};

/// The statement `{kind, previousFingerprint, newFingerprint, issuedAt}`.
pub fn statement(previous: &str, new: &str, issued_at: &str) -> RotationStatement {
    RotationStatement {
        kind: kind::KEY_ROTATION.into(),
        previous_fingerprint: previous.into(),
        new_fingerprint: new.into(),
        issued_at: issued_at.into(),
    }
}

/// The proof: the previous key's signature over the statement's JCS.
pub fn sign_proof(previous: &PrivateKey, stmt: &RotationStatement) -> String {
    previous.sign_pss(&canonical_of(stmt))
}

/// Checks a proof with the previous public key (server side).
pub fn verify_proof(previous: &PublicKey, stmt: &RotationStatement, proof: &str) -> bool {
    stmt.kind == kind::KEY_ROTATION && previous.verify_pss(&canonical_of(stmt), proof)
}

/// `old` re-wrapped to `new` and signed by it: same vault, encryption key and
/// DEK version; new recipient, ciphertext, time and signer.
pub fn rewrap(
    old: &WrappedKey,
    dek: &Dek,
    new: &PrivateKey,
    issued_at: &str,
) -> Signed<WrappedKey> {
    let body = wrapped_key(
        &old.vault_id,
        &old.encryption_key_id,
        old.dek_version,
        new.public(),
        dek,
        issued_at,
    );
    Signed::sign(&body, new)
}
