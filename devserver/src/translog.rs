//! The signer transparency log (contract §5): one global append-only list of
//! leaves `{keyId, ownerId, ownerType, status}`, hashed with the contract's
//! `directory::leaf_hash`, with tree heads and audit paths from
//! `contract::merkle`. Leaves are never rewritten; a revocation appends.

use r4_contract::directory::leaf_hash;
use r4_contract::merkle::{self, Hash};
use r4_contract::wire::LogLeaf;

/// The log's leaves and their hashes.
#[derive(Debug, Default)]
pub(crate) struct TransLog {
    leaves: Vec<LogLeaf>,
    hashes: Vec<Hash>,
}

impl TransLog {
    /// Appends a leaf and returns its index.
    pub(crate) fn append(
        &mut self,
        key_id: &str,
        owner_id: &str,
        owner_type: &str,
        status: &str,
    ) -> u64 {
        let leaf = LogLeaf {
            key_id: key_id.into(),
            owner_id: owner_id.into(),
            owner_type: owner_type.into(),
            status: status.into(),
        };
        self.hashes.push(leaf_hash(&leaf));
        self.leaves.push(leaf);
        (self.leaves.len() - 1) as u64
    }

    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// Root hash, lowercase hex.
    pub(crate) fn root_hex(&self) -> String {
        hex::encode(merkle::root(&self.hashes))
    }

    /// Audit path of leaf `index` in the current tree, lowercase hex.
    pub(crate) fn proof_hex(&self, index: u64) -> Vec<String> {
        merkle::inclusion_proof(&self.hashes, index as usize)
            .unwrap_or_default()
            .iter()
            .map(hex::encode)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_against_the_root() {
        let mut log = TransLog::default();
        for i in 0..5 {
            log.append(&format!("sha256:{i}"), "o", "AGENT", "active");
        }
        let root = merkle::parse_hash(&log.root_hex()).unwrap();
        for i in 0..5u64 {
            let path: Vec<Hash> = log
                .proof_hex(i)
                .iter()
                .map(|h| merkle::parse_hash(h).unwrap())
                .collect();
            assert!(merkle::verify_inclusion(
                &log.hashes[i as usize],
                i,
                5,
                &path,
                &root
            ));
        }
    }
}
