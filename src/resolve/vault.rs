//! Verifying one vault of a sync answer: its directory, its wrapped key (one
//! RSA unwrap per vault), its summary, then its items on demand. Values are
//! decrypted only for the fields that are asked for.

use std::collections::HashMap;

use crate::contract::checkpoint::{
    verify_and_unwrap, verify_item, verify_summary, VerifiedSummary,
};
use crate::contract::crypto::PrivateKey;
use crate::contract::directory::{verify_directory, TrustPolicy, VerifiedDirectory};
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

/// A vault whose directory, key and summary verified.
pub struct VerifiedVault<'s> {
    /// Its directory.
    pub dir: VerifiedDirectory,
    /// Its summary (item list verified against `itemsDigest`).
    pub summary: VerifiedSummary,
    /// How to open values.
    pub opener: Opener,
    items: HashMap<&'s str, &'s ItemDetail>,
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

/// The summary entries a full sync implies: each item with the version of its
/// detail checkpoint. A lie about a version changes `itemsDigest`.
fn summary_entries(v: &SyncVault) -> Vec<ItemSummary> {
    v.items
        .iter()
        .map(|i| ItemSummary {
            id: i.id.clone(),
            name: i.name.clone(),
            item_type: i.item_type.clone(),
            websites: i.websites.clone(),
            version: i.checkpoint.body().version,
            created_at: None,
            field_count: None,
        })
        .collect()
}

/// Verifies a vault of a full sync.
pub fn verify_vault<'s>(
    v: &'s SyncVault,
    key: &PrivateKey,
    trust: &TrustPolicy,
) -> Result<VerifiedVault<'s>, Failure> {
    let id = v.vault.id.as_str();
    let dir = verify_directory(&v.signers, id, trust)?;
    let opener = match vault_model(&v.vault, v.wrapped_key.is_some()) {
        VaultModel::V3 => {
            let wk = v.wrapped_key.as_ref().expect("V3 has a wrapped key");
            let (dek, _) =
                verify_and_unwrap(wk, id, v.vault.encryption_key_id.as_deref(), key, &dir)?;
            Opener::V3 {
                dek,
                dek_version: wk.body().dek_version,
            }
        }
        VaultModel::Legacy => Opener::Legacy,
        VaultModel::Unencrypted => Opener::Unencrypted,
    };
    let summary = verify_summary(&summary_entries(v), &v.checkpoint, id, &dir)?;
    let items = v.items.iter().map(|i| (i.id.as_str(), i)).collect();
    Ok(VerifiedVault {
        dir,
        summary,
        opener,
        items,
        checked: HashMap::new(),
    })
}

impl<'s> VerifiedVault<'s> {
    /// Items of the verified summary.
    pub fn item_summaries(&self) -> impl Iterator<Item = &ItemSummary> + Clone {
        self.summary.items.values()
    }

    /// The detail of `item_id`, verified against the summary; returns it and
    /// the fingerprint of the signer that vouched for it.
    pub fn item(&self, item_id: &str) -> Result<(&'s ItemDetail, String), Failure> {
        let detail = self.detail(item_id)?;
        let signer = match self.checked.get(item_id) {
            Some(checked) => checked.clone()?,
            None => self.check(detail, item_id)?,
        };
        Ok((detail, signer))
    }

    /// The items among `ids` that exist and are not checked yet.
    pub fn unchecked<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(&'s str, &'s ItemDetail)> {
        ids.into_iter()
            .filter(|id| !self.checked.contains_key(id))
            .filter_map(|id| self.items.get_key_value(id).map(|(k, d)| (*k, *d)))
            .collect()
    }

    /// Remembers the outcome of [`VerifiedVault::check`] for `item_id`, for
    /// [`VerifiedVault::item`].
    pub fn record(&mut self, item_id: &'s str, outcome: Result<String, Failure>) {
        self.checked.insert(item_id, outcome);
    }

    fn detail(&self, item_id: &str) -> Result<&'s ItemDetail, Failure> {
        self.items.get(item_id).copied().ok_or_else(|| {
            Failure::Verify(crate::contract::VerifyError::NotInSummary(item_id.into()))
        })
    }

    /// Verifies one item detail against this vault's summary (§4.3); the
    /// signer's fingerprint on success.
    pub fn check(&self, detail: &ItemDetail, item_id: &str) -> Result<String, Failure> {
        let signer = verify_item(
            detail,
            &self.summary.vault_id,
            item_id,
            &self.summary,
            &self.dir,
        )?;
        Ok(signer.key_id.clone())
    }

    /// Opens a field value of this vault.
    pub fn open(&self, field: &Field, legacy: Option<&PrivateKey>) -> Result<Secret, Failure> {
        match &self.opener {
            Opener::V3 { dek, dek_version } => {
                let expect = Expect {
                    vault_id: &self.summary.vault_id,
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
