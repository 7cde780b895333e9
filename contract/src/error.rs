//! Errors of the contract layer. Variants carry no secret and no oracle: they
//! say which rule failed; the layer above adds the env var and reference.

use thiserror::Error;

/// A key could not be parsed, generated or used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a PEM document.
    #[error("not a PEM document")]
    BadPem,
    /// A PEM label the contract does not use.
    #[error("unexpected PEM label \"{0}\"")]
    UnexpectedLabel(String),
    /// An encrypted private key (r4-exec cannot prompt for a passphrase).
    #[error("the private key is encrypted; r4-exec needs an unencrypted PKCS#8 or PKCS#1 key")]
    Encrypted,
    /// A public key where a private key was expected.
    #[error("this is a public key; a private key is needed")]
    ExpectedPrivateKey,
    /// A private key where a public key was expected.
    #[error("this is a private key; a public key is expected")]
    ExpectedPublicKey,
    /// Not an RSA SubjectPublicKeyInfo (or a bare PKCS#1 body).
    #[error("not an RSA SubjectPublicKeyInfo public key")]
    NotRsaSpki,
    /// Not an RSA private key.
    #[error("not an RSA private key; r4-exec needs an RSA key of at least 2048 bits (create one with `r4-exec keygen`)")]
    NotRsaPrivate,
    /// Modulus too small (0 when the size is unknown).
    #[error("RSA key {}; at least 2048 are required", if *.0 == 0 { "too small".to_string() } else { format!("of {} bits", .0) })]
    TooSmall(usize),
    /// Public exponent other than 65537.
    #[error("RSA public exponent must be 65537")]
    BadExponent,
    /// Key size not offered by `keygen`.
    #[error("unsupported key size {0} (use 2048, 3072 or 4096)")]
    UnsupportedSize(usize),
    /// The RNG or key generation failed.
    #[error("key generation failed")]
    Generation,
    /// A ciphertext was not valid base64.
    #[error("ciphertext is not base64")]
    BadBase64,
    /// RSA decryption failed (wrong key or tampered ciphertext).
    #[error("RSA decryption failed")]
    DecryptFailed,
    /// The unwrapped DEK is not 32 bytes.
    #[error("unwrapped DEK is not 32 bytes")]
    DekLength,
}

/// A v3 envelope was refused (contract §3). One variant per check.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not `r4v3.` followed by exactly three dot-separated segments.
    #[error("not a v3 envelope (expected r4v3.<header>.<iv>.<ciphertext>)")]
    Malformed,
    /// A segment is not base64url without padding.
    #[error("envelope segment is not base64url")]
    Base64,
    /// The header is not the JSON object the contract describes.
    #[error("envelope header is not valid JSON with alg/dv/fid/vid")]
    Header,
    /// `alg` is not `A256GCM`.
    #[error("envelope algorithm is not A256GCM")]
    Algorithm,
    /// `vid` names another vault.
    #[error("envelope belongs to another vault (vid mismatch)")]
    VaultMismatch,
    /// `fid` names another field: a ciphertext moved between fields.
    #[error("envelope belongs to another field (fid mismatch)")]
    FieldMismatch,
    /// `dv` differs from the wrapped key's `dekVersion`.
    #[error("envelope DEK version does not match the wrapped key")]
    DekVersionMismatch,
    /// The IV is not 12 bytes or the ciphertext is shorter than a tag.
    #[error("envelope IV or ciphertext has the wrong length")]
    Length,
    /// AES-GCM authentication failed.
    #[error("envelope failed authentication (tampered ciphertext or wrong key)")]
    Decrypt,
    /// The plaintext is not UTF-8.
    #[error("decrypted value is not UTF-8")]
    NotUtf8,
    /// The plaintext exceeds 1 MiB.
    #[error("value exceeds 1 MiB")]
    TooLarge,
}

/// A signed object, directory or proof was refused (contract §4–§5).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The `kind` member is not the expected one.
    #[error("wrong object kind \"{found}\" (expected \"{expected}\")")]
    WrongKind {
        /// What was expected.
        expected: &'static str,
        /// What the server sent.
        found: String,
    },
    /// `vaultId` is not the vault that was asked for.
    #[error("object is for another vault (replayed from {found})")]
    WrongVault {
        /// The vault id in the object.
        found: String,
    },
    /// `itemId` is not the item that was asked for.
    #[error("object is for another item (replayed from {found})")]
    WrongItem {
        /// The item id in the object.
        found: String,
    },
    /// `encryptionKeyId` is not the vault's.
    #[error("wrapped key names another encryption key")]
    WrongEncryptionKey,
    /// `recipientFingerprint` is not this agent's key.
    #[error("wrapped key is for runtime key {found}, not this one; if the key was changed, run `r4-exec rotate-key` or register it")]
    WrongRecipient {
        /// The fingerprint it was wrapped to.
        found: String,
    },
    /// Unsupported wrapping algorithm.
    #[error("unsupported key-wrap algorithm \"{0}\"")]
    WrongAlgorithm(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The signer is not in the vault's directory.
    #[error("signer {0} is not in the vault's signer directory")]
    UnknownSigner(String),
    /// The signer is revoked.
    #[error("signer {0} is revoked")]
    RevokedSigner(String),
    /// An AGENT signer signed a wrapped key for another agent.
    #[error("signer {0} is an AGENT key that may only wrap for itself")]
    SignerNotAllowed(String),
    /// The signer is not among the pinned signers and not proven in the log.
    #[error("signer {0} is not pinned in [trust] signers")]
    SignerNotPinned(String),
    /// A directory entry's keyId is not the fingerprint of its key.
    #[error("signer directory entry {0} does not match its public key's fingerprint")]
    KeyIdMismatch(String),
    /// A directory entry's public key is unusable.
    #[error("signer directory entry {0} has an unusable public key")]
    BadSignerKey(String),
    /// The tree head does not verify with the pinned log key.
    #[error("transparency tree head signature does not verify with the pinned log key")]
    TreeHeadSignature,
    /// The tree head's `logId` is not the pinned log key.
    #[error("transparency tree head is from another log ({0})")]
    WrongLog(String),
    /// A signer relied on lacks a valid inclusion proof.
    #[error("signer {0} has no valid inclusion proof in the transparency log")]
    NotIncluded(String),
    /// `itemsDigest` does not match the item list.
    #[error("item list does not match the signed vault summary (itemsDigest): an item was added, hidden, altered or served at a stale version")]
    ItemsDigest,
    /// `itemDigest` does not match the item.
    #[error("item metadata does not match its signed checkpoint (itemDigest)")]
    ItemDigest,
    /// A field's digest does not match.
    #[error("field {0} does not match its signed checkpoint (fieldDigests)")]
    FieldDigest(String),
    /// `fieldDigests` covers a different set of fields than returned.
    #[error("the item's fields differ from the set its checkpoint signs")]
    FieldSet,
    /// The item detail's version is not the summary's: a stale or replayed detail.
    #[error("item detail version {detail} differs from the vault summary's {summary} (stale or replayed)")]
    StaleDetail {
        /// Version in the detail checkpoint.
        detail: u64,
        /// Version in the summary.
        summary: u64,
    },
    /// The item is absent from the verified summary.
    #[error("item {0} is not in the signed vault summary")]
    NotInSummary(String),
    /// A vault summary older than one already seen (rollback).
    #[error("vault summary version {found} is older than {seen} already seen (rollback)")]
    Rollback {
        /// Version already accepted.
        seen: u64,
        /// Version now offered.
        found: u64,
    },
    /// The DEK could not be unwrapped.
    #[error("wrapped DEK could not be unwrapped with this runtime key: {0}")]
    Unwrap(KeyError),
    /// A malformed value in a signed object (bad hex, bad number).
    #[error("malformed signed object: {0}")]
    Malformed(&'static str),
}
