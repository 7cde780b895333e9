//! The signer directory and the client's trust rules (contract §5).
//!
//! [`verify_directory`] turns a served directory into a [`VerifiedDirectory`]
//! under a [`TrustPolicy`]; [`VerifiedDirectory::check`] is the only function
//! that decides whether a signed object may be relied on.

use std::collections::HashMap;

use crate::canon::canonical_of;
use crate::crypto::PublicKey;
use crate::error::VerifyError;
use crate::merkle;
use crate::signed::Signed;
use crate::wire::{kind, LogLeaf, SignerDirectory, SignerEntry};

/// What the client is configured to trust.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Pinned signer fingerprints (`sha256:…`).
    pub pinned_signers: Vec<String>,
    /// Pinned transparency-log public key.
    pub log_key: Option<PublicKey>,
}

impl TrustPolicy {
    /// Whether nothing is pinned (signatures are checked against the
    /// directory as served; the caller warns once).
    pub fn is_unpinned(&self) -> bool {
        self.pinned_signers.is_empty() && self.log_key.is_none()
    }
}

/// Owner class of a signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerType {
    /// A human user's key (the operator).
    User,
    /// An agent's runtime key.
    Agent,
}

/// A directory entry after its key was parsed and its `keyId` checked.
#[derive(Debug, Clone)]
pub struct Signer {
    /// Fingerprint.
    pub key_id: String,
    /// USER or AGENT.
    pub owner_type: OwnerType,
    /// Owner id.
    pub owner_id: String,
    /// `active` (false: revoked or unknown status).
    pub active: bool,
    /// Inclusion proof status: `None` when no log key is pinned.
    pub included: Option<bool>,
    key: PublicKey,
}

/// What a signature is being relied on for.
#[derive(Debug, Clone, Copy)]
pub enum Role<'a> {
    /// A checkpoint (summary or item detail): any active signer of the vault.
    Checkpoint,
    /// A wrapped key for `recipient`: a USER signer, or the AGENT signer that
    /// is the recipient itself (§4.1).
    WrappedKeyFor(&'a str),
}

/// A directory whose entries are self-consistent and, with a pinned log key,
/// whose tree head is authentic.
#[derive(Debug, Clone)]
pub struct VerifiedDirectory {
    vault_id: String,
    signers: HashMap<String, Signer>,
    pinned: Vec<String>,
    log_pinned: bool,
}

/// A signer's public key parsed from its PEM text, or `None` when
/// [`PublicKey::from_pem`] refuses it; made only by [`ParsedKey::parse`],
/// so the key always belongs to the text it is filed under.
#[derive(Debug, Clone)]
pub struct ParsedKey {
    pem: String,
    key: Option<PublicKey>,
}

impl ParsedKey {
    /// Parses `pem` (any thread may do it: see [`SignerKeys`]).
    pub fn parse(pem: &str) -> ParsedKey {
        ParsedKey {
            pem: pem.to_string(),
            key: PublicKey::from_pem(pem).ok(),
        }
    }
}

/// Signers' keys parsed once per PEM text, for the directories of one
/// answer. Every vault's directory lists the operator's key (and often
/// the agent's), and parsing one (PEM, then three DER parses in aws-lc)
/// costs more than the rest of a directory's checks: with 10 vaults, 20
/// parses become 2 (BENCHMARKS.md, "Where a start's CPU goes"). A key is
/// looked up by its exact PEM text, so a directory gets the key
/// `PublicKey::from_pem` gives for that text; a text not in the set is
/// parsed where it is met. Every other check of [`verify_directory`]
/// (the fingerprint against `keyId` included) runs for every entry.
#[derive(Debug, Clone, Default)]
pub struct SignerKeys {
    parsed: HashMap<String, Option<PublicKey>>,
}

impl FromIterator<ParsedKey> for SignerKeys {
    fn from_iter<I: IntoIterator<Item = ParsedKey>>(keys: I) -> SignerKeys {
        SignerKeys {
            parsed: keys.into_iter().map(|k| (k.pem, k.key)).collect(),
        }
    }
}

impl SignerKeys {
    /// The key of `pem`, parsed before or now.
    fn key(&self, pem: &str) -> Option<PublicKey> {
        match self.parsed.get(pem) {
            Some(key) => key.clone(),
            None => PublicKey::from_pem(pem).ok(),
        }
    }
}

/// Checks a served directory for vault `vault_id` under `policy`.
pub fn verify_directory(
    dir: &SignerDirectory,
    vault_id: &str,
    policy: &TrustPolicy,
) -> Result<VerifiedDirectory, VerifyError> {
    verify_directory_with(dir, vault_id, policy, &SignerKeys::default())
}

/// [`verify_directory`], the signers' keys taken from `keys` when parsed
/// there already.
pub fn verify_directory_with(
    dir: &SignerDirectory,
    vault_id: &str,
    policy: &TrustPolicy,
    keys: &SignerKeys,
) -> Result<VerifiedDirectory, VerifyError> {
    if dir.vault_id != vault_id {
        return Err(VerifyError::WrongVault {
            found: dir.vault_id.clone(),
        });
    }
    let root = match &policy.log_key {
        Some(log_key) => Some(verify_tree_head(&dir.tree_head, log_key)?),
        None => None,
    };
    let mut signers: HashMap<String, Signer> = HashMap::new();
    for entry in &dir.signers {
        let signer = parse_entry(
            entry,
            root.as_ref().map(|r| (r, dir.tree_head.body().tree_size)),
            keys,
        )?;
        // A key listed twice is active only if every listing says so.
        match signers.get_mut(&signer.key_id) {
            Some(existing) => {
                existing.active &= signer.active;
                existing.included = match (existing.included, signer.included) {
                    (Some(a), Some(b)) => Some(a || b),
                    (a, b) => a.or(b),
                };
            }
            None => {
                signers.insert(signer.key_id.clone(), signer);
            }
        }
    }
    Ok(VerifiedDirectory {
        vault_id: vault_id.to_string(),
        signers,
        pinned: policy.pinned_signers.clone(),
        log_pinned: policy.log_key.is_some(),
    })
}

fn parse_entry(
    entry: &SignerEntry,
    log: Option<(&merkle::Hash, u64)>,
    keys: &SignerKeys,
) -> Result<Signer, VerifyError> {
    let key = keys
        .key(&entry.public_key)
        .ok_or_else(|| VerifyError::BadSignerKey(entry.key_id.clone()))?;
    if key.fingerprint() != entry.key_id {
        return Err(VerifyError::KeyIdMismatch(entry.key_id.clone()));
    }
    let owner_type = match entry.owner_type.as_str() {
        "USER" => OwnerType::User,
        "AGENT" => OwnerType::Agent,
        _ => return Err(VerifyError::Malformed("signer ownerType")),
    };
    let included = log.map(|(root, size)| entry_included(entry, root, size));
    Ok(Signer {
        key_id: entry.key_id.clone(),
        owner_type,
        owner_id: entry.owner_id.clone(),
        active: entry.status == "active",
        included,
        key,
    })
}

/// The log leaf of a directory entry (§5).
pub fn leaf_of(entry: &SignerEntry) -> LogLeaf {
    LogLeaf {
        key_id: entry.key_id.clone(),
        owner_id: entry.owner_id.clone(),
        owner_type: entry.owner_type.clone(),
        status: entry.status.clone(),
    }
}

/// Leaf hash of a log leaf: SHA-256(0x00 || JCS(leaf)).
pub fn leaf_hash(leaf: &LogLeaf) -> merkle::Hash {
    merkle::leaf_hash(&canonical_of(leaf))
}

fn entry_included(entry: &SignerEntry, root: &merkle::Hash, size: u64) -> bool {
    let path: Option<Vec<merkle::Hash>> = entry
        .inclusion_proof
        .iter()
        .map(|h| merkle::parse_hash(h))
        .collect();
    match path {
        Some(path) => merkle::verify_inclusion(
            &leaf_hash(&leaf_of(entry)),
            entry.log_index,
            size,
            &path,
            root,
        ),
        None => false,
    }
}

/// Verifies a tree head with the pinned log key; returns its root hash.
pub fn verify_tree_head(
    head: &Signed<crate::wire::TreeHead>,
    log_key: &PublicKey,
) -> Result<merkle::Hash, VerifyError> {
    let body = head.body();
    if body.kind != kind::TREE_HEAD {
        return Err(VerifyError::WrongKind {
            expected: kind::TREE_HEAD,
            found: body.kind.clone(),
        });
    }
    if body.log_id != log_key.fingerprint() {
        return Err(VerifyError::WrongLog(body.log_id.clone()));
    }
    if head.signer_key_id() != log_key.fingerprint()
        || !log_key.verify_pss(&head.signed_bytes(), head.signature())
    {
        return Err(VerifyError::TreeHeadSignature);
    }
    merkle::parse_hash(&body.root_hash).ok_or(VerifyError::Malformed("tree head rootHash"))
}

impl VerifiedDirectory {
    /// The vault this directory belongs to.
    pub fn vault_id(&self) -> &str {
        &self.vault_id
    }

    /// Every signer, for `r4-exec trust`.
    pub fn signers(&self) -> impl Iterator<Item = &Signer> {
        self.signers.values()
    }

    /// Looks a signer up by fingerprint.
    pub fn signer(&self, key_id: &str) -> Option<&Signer> {
        self.signers.get(key_id)
    }

    /// Decides whether `obj` may be relied on in `role`: its signer is in the
    /// directory, active, allowed for the role, trusted under the policy, and
    /// the signature verifies. Returns the signer that vouched for it.
    pub fn check<T>(&self, obj: &Signed<T>, role: Role<'_>) -> Result<&Signer, VerifyError> {
        let key_id = obj.signer_key_id();
        let signer = self
            .signers
            .get(key_id)
            .ok_or_else(|| VerifyError::UnknownSigner(key_id.to_string()))?;
        if !signer.active {
            return Err(VerifyError::RevokedSigner(key_id.to_string()));
        }
        if let Role::WrappedKeyFor(recipient) = role {
            if signer.owner_type == OwnerType::Agent && signer.key_id != recipient {
                return Err(VerifyError::SignerNotAllowed(key_id.to_string()));
            }
        }
        let proven = signer.included == Some(true);
        if self.log_pinned && !proven {
            return Err(VerifyError::NotIncluded(key_id.to_string()));
        }
        if !self.pinned.is_empty() && !self.pinned.iter().any(|p| p == key_id) && !proven {
            return Err(VerifyError::SignerNotPinned(key_id.to_string()));
        }
        if !signer.key.verify_pss(&obj.signed_bytes(), obj.signature()) {
            return Err(VerifyError::BadSignature);
        }
        Ok(signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;

    /// The set files each parsed text once, under that text, refusals
    /// included (the directory-level equivalence is in
    /// `tests/contract_attacks.rs`).
    #[test]
    fn signer_keys_hold_each_text_once_with_its_own_key() {
        let key = PrivateKey::generate(2048).expect("key");
        let pem = key.public().to_pem();
        let keys: SignerKeys = [
            ParsedKey::parse(&pem),
            ParsedKey::parse("garbage"),
            ParsedKey::parse(&pem),
        ]
        .into_iter()
        .collect();
        assert_eq!(keys.parsed.len(), 2);
        let held = keys.parsed[&pem].as_ref().expect("parsed");
        assert_eq!(held.fingerprint(), key.fingerprint());
        assert!(keys.parsed["garbage"].is_none());
        assert!(keys.key("garbage").is_none());
        let other = PrivateKey::generate(2048).expect("key");
        let found = keys
            .key(&other.public().to_pem())
            .expect("parsed where met");
        assert_eq!(found.fingerprint(), other.fingerprint());
    }
}
