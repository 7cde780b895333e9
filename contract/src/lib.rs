//! The R4 wire contract (sections cited as §N below): wire types,
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

impl VaultModel {
    /// `isEncrypted` of the vault list entry of a vault of this model (§6.2):
    /// true for v3 and legacy vaults. [`vault_model`] reads it back.
    pub fn is_encrypted(self) -> bool {
        self != VaultModel::Unencrypted
    }
}

/// Classifies a vault from its list entry and whether a wrapped key exists.
pub fn vault_model(vault: &wire::Vault, has_wrapped_key: bool) -> VaultModel {
    match (vault.is_encrypted.unwrap_or(false), has_wrapped_key) {
        (true, true) => VaultModel::V3,
        (true, false) => VaultModel::Legacy,
        (false, _) => VaultModel::Unencrypted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(is_encrypted: Option<bool>) -> wire::Vault {
        wire::Vault {
            id: "v".into(),
            name: "V".into(),
            is_encrypted,
            encryption_key_id: None,
            data_classification: None,
            item_count: None,
            created_at: None,
            created_by: None,
        }
    }

    /// What a server lists for a model (`isEncrypted`, a wrapped key for v3
    /// only) is classified back as that model.
    #[test]
    fn a_listed_model_reads_back_as_itself() {
        for model in [VaultModel::V3, VaultModel::Legacy, VaultModel::Unencrypted] {
            let listed = entry(Some(model.is_encrypted()));
            assert_eq!(vault_model(&listed, model == VaultModel::V3), model);
        }
    }

    /// An entry without `isEncrypted` is unencrypted, even beside a wrapped key.
    #[test]
    fn a_vault_is_encrypted_only_when_it_says_so() {
        assert_eq!(vault_model(&entry(None), false), VaultModel::Unencrypted);
        assert_eq!(vault_model(&entry(None), true), VaultModel::Unencrypted);
        assert_eq!(
            vault_model(&entry(Some(false)), true),
            VaultModel::Unencrypted
        );
    }
}
