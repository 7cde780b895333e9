//! Verifying one vault of a sync answer: its directory, its wrapped key (one
//! RSA unwrap per vault), its summary, then its items on demand. Values are
//! decrypted only for the fields that are asked for.

use std::collections::HashMap;

use crate::contract::checkpoint::{
    summary_entries, verify_and_unwrap, verify_item, verify_summary, verify_summary_owned,
    VerifiedSummary,
};
use crate::contract::crypto::PrivateKey;
use crate::contract::directory::{
    verify_directory_with, SignerKeys, TrustPolicy, VerifiedDirectory,
};
use crate::contract::envelope::{self, Expect};
use crate::contract::wire::{Field, ItemDetail, ItemSummary, SyncVault};
use crate::contract::{vault_model, Dek, Secret, VaultModel};

use super::select::Candidate;
use super::Failure;

/// How values of a verified vault are opened.
pub enum Opener {
    /// v3 envelopes under this DEK and version.
    V3 {
        /// The vault DEK.
        dek: Dek,
        /// `dekVersion` of the wrapped key.
        dek_version: u64,
    },
    /// Legacy RSA-OAEP-SHA1 values (key fetched later, if allowed).
    Legacy,
    /// Plaintext.
    Unencrypted,
}

/// A vault whose directory, summary and key verified.
pub struct VerifiedVault<'s> {
    /// Its directory and summary.
    vault: Checked<'s>,
    /// How to open values.
    pub opener: Opener,
    /// Items already checked (recorded with [`VerifiedVault::record`]), with the
    /// signer that vouched for each or why it failed: each item's signature
    /// is verified once per resolution, however many entries name it.
    checked: HashMap<&'s str, Result<String, Failure>>,
}

impl Candidate for ItemSummary {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Candidate for Field {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Candidate for crate::contract::wire::Vault {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A vault of a full sync whose directory and summary verified; its key is
/// opened separately ([`Checked::open_key`]), so that the one RSA unwrap per
/// vault can run while its items are checked (neither needs the other).
pub struct Checked<'s> {
    raw: &'s SyncVault,
    dir: VerifiedDirectory,
    summary: VerifiedSummary<'s>,
    items: HashMap<&'s str, &'s ItemDetail>,
}

/// Checks a vault's directory and summary (§5, §4.2). The summary covers
/// `listed`, the vault's item list when it was fetched as such (the
/// referenced plan), else the list the sync answer's item details imply:
/// either way `itemsDigest` is recomputed over every item of the vault.
pub fn check_vault<'s>(
    v: &'s SyncVault,
    listed: Option<&'s [ItemSummary]>,
    trust: &TrustPolicy,
) -> Result<Checked<'s>, Failure> {
    check_vault_with(v, listed, trust, &SignerKeys::default())
}

/// [`check_vault`] with the signers' keys parsed once for every vault of
/// the answer ([`SignerKeys`]: the same keys, fewer parses).
pub fn check_vault_with<'s>(
    v: &'s SyncVault,
    listed: Option<&'s [ItemSummary]>,
    trust: &TrustPolicy,
    keys: &SignerKeys,
) -> Result<Checked<'s>, Failure> {
    let id = v.vault.id.as_str();
    let dir = verify_directory_with(&v.signers, id, trust, keys)?;
    let summary = match listed {
        Some(items) => verify_summary(items, &v.checkpoint, id, &dir)?,
        None => verify_summary_owned(summary_entries(&v.items), &v.checkpoint, id, &dir)?,
    };
    let items = v.items.iter().map(|i| (i.id.as_str(), i)).collect();
    Ok(Checked {
        raw: v,
        dir,
        summary,
        items,
    })
}

impl<'s> Checked<'s> {
    /// The vault's encryption model.
    pub fn model(&self) -> VaultModel {
        vault_model(&self.raw.vault, self.raw.wrapped_key.is_some())
    }

    /// Verifies the wrapped key and unwraps the DEK (§4.1): the vault's one
    /// RSA private-key operation.
    pub fn open_key(&self, key: &PrivateKey) -> Result<Opener, Failure> {
        let v = self.raw;
        Ok(match self.model() {
            VaultModel::V3 => {
                let wk = v.wrapped_key.as_ref().expect("V3 has a wrapped key");
                let kid = v.vault.encryption_key_id.as_deref();
                let (dek, _) = verify_and_unwrap(wk, &v.vault.id, kid, key, &self.dir)?;
                Opener::V3 {
                    dek,
                    dek_version: wk.body().dek_version,
                }
            }
            VaultModel::Legacy => Opener::Legacy,
            VaultModel::Unencrypted => Opener::Unencrypted,
        })
    }

    /// Items of the verified summary.
    pub fn item_summaries(&self) -> impl Iterator<Item = &ItemSummary> + Clone {
        self.summary.items()
    }

    /// The detail of `item_id` in the sync answer, if any.
    pub fn detail(&self, item_id: &str) -> Option<(&'s str, &'s ItemDetail)> {
        self.items.get_key_value(item_id).map(|(k, d)| (*k, *d))
    }

    /// Verifies one item detail against the summary (§4.3): the signer's
    /// fingerprint on success.
    pub fn check(&self, detail: &ItemDetail, item_id: &str) -> Result<String, Failure> {
        let summary = &self.summary;
        let signer = verify_item(detail, &summary.vault_id, item_id, summary, &self.dir)?;
        Ok(signer.key_id.clone())
    }

    /// The verified vault, values opened with `opener`.
    pub fn into_verified(self, opener: Opener) -> VerifiedVault<'s> {
        VerifiedVault {
            vault: self,
            opener,
            checked: HashMap::new(),
        }
    }
}

impl<'s> VerifiedVault<'s> {
    /// Its summary (item list verified against `itemsDigest`).
    pub fn summary(&self) -> &VerifiedSummary<'s> {
        &self.vault.summary
    }

    /// The vault's encryption model.
    pub fn model(&self) -> VaultModel {
        self.vault.model()
    }

    /// Items of the verified summary.
    pub fn item_summaries(&self) -> impl Iterator<Item = &ItemSummary> + Clone {
        self.vault.item_summaries()
    }

    /// The detail of `item_id`, verified against the summary; returns it and
    /// the fingerprint of the signer that vouched for it.
    pub fn item(&self, item_id: &str) -> Result<(&'s ItemDetail, String), Failure> {
        let (_, detail) = self.vault.detail(item_id).ok_or_else(|| {
            if self.vault.summary.get(item_id).is_some() {
                Failure::NotFetched {
                    what: "item",
                    id: item_id.into(),
                }
            } else {
                Failure::Verify(crate::contract::VerifyError::NotInSummary(item_id.into()))
            }
        })?;
        let signer = match self.checked.get(item_id) {
            Some(checked) => checked.clone()?,
            None => self.vault.check(detail, item_id)?,
        };
        Ok((detail, signer))
    }

    /// Remembers the outcome of [`Checked::check`] for `item_id`, for
    /// [`VerifiedVault::item`].
    pub fn record(&mut self, item_id: &'s str, outcome: Result<String, Failure>) {
        self.checked.insert(item_id, outcome);
    }

    /// Opens a field value of this vault.
    pub fn open(&self, field: &Field, legacy: Option<&PrivateKey>) -> Result<Secret, Failure> {
        match &self.opener {
            Opener::V3 { dek, dek_version } => {
                let expect = Expect {
                    vault_id: &self.vault.summary.vault_id,
                    field_id: Some(&field.id),
                    dek_version: *dek_version,
                };
                Ok(envelope::open(&field.value, dek, expect)?)
            }
            Opener::Legacy if !field.is_secret => Ok(Secret::new(field.value.as_bytes().to_vec())),
            Opener::Legacy => {
                let key = legacy.ok_or(Failure::LegacyNotAllowed)?;
                let pt = key.legacy_decrypt(&field.value).map_err(Failure::Legacy)?;
                Ok(Secret::new(pt.to_vec()))
            }
            Opener::Unencrypted => Ok(Secret::new(field.value.as_bytes().to_vec())),
        }
    }
}
