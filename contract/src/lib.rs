//! The R4 wire contract (`../shared/r4-wire-contract.md`): wire types,
//! canonical JSON, crypto and every verification rule. Pure functions over
//! bytes and types: no I/O, no async, so the client (`r4-exec`) and the
//! development server (`r4-devserver`) share one implementation and cannot
//! drift. No async runtime, HTTP stack or OS binding is in this crate's
//! dependency tree.
//!
//! Where the contract is ambiguous, the decision is made here, once:
//! - Signed bytes are the JCS of the object *as transmitted* minus
//!   `signature` ([`signed::Signed`]), so unknown members are covered too.
//! - A directory listing one key twice treats it as revoked if any listing
//!   says so ([`directory::verify_directory`]).
//! - A vault is *legacy* when it is encrypted but comes without a wrapped key
//!   ([`vault_model`]); the client accepts such a vault only when told to.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod canon;
pub mod checkpoint;
pub mod crypto;
pub mod directory;
pub mod envelope;
pub mod envname;
pub mod error;
pub mod merkle;
pub mod reference;
pub mod rotation;
pub mod secret;
pub mod signed;
pub mod time;
pub mod wire;

pub use error::{EnvelopeError, KeyError, VerifyError};
pub use secret::{Dek, Secret};
pub use signed::Signed;

/// How a vault's values are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultModel {
    /// Zero-trust: v3 envelopes under a DEK wrapped to the agent (§3, §4.1).
    V3,
    /// Server-held agent key, RSA-OAEP-SHA1 secret fields (§6.5). Not zero-trust.
    Legacy,
    /// Plaintext values; nothing but TLS protects or authenticates them.
    Unencrypted,
}

/// Classifies a vault from its list entry and whether a wrapped key exists.
pub fn vault_model(vault: &wire::Vault, has_wrapped_key: bool) -> VaultModel {
    match (vault.is_encrypted.unwrap_or(false), has_wrapped_key) {
        (true, true) => VaultModel::V3,
        (true, false) => VaultModel::Legacy,
        (false, _) => VaultModel::Unencrypted,
    }
}
