//! The trust objects of one vault as one agent sees them: its wrapped key
//! (contract §4.1) and its signer directory with the transparency log's
//! signed tree head and inclusion proofs (§5), with the key and directory
//! faults applied.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use r4_contract::secret::Dek;
use r4_contract::signed::Signed;
use r4_contract::time;
use r4_contract::wire::{kind, SignerDirectory, SignerEntry, TreeHead, WrappedKey};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::faults::FaultKind as F;
use crate::views::Ctx;
use crate::world::{KeyRecord, Vault, World};

/// Flips one byte of a `b64` signature: a signature that no longer verifies.
pub(crate) fn corrupt<T: Serialize + DeserializeOwned>(s: &Signed<T>) -> Signed<T> {
    s.tampered(|raw| {
        let mut sig = B64.decode(s.signature()).unwrap_or_else(|_| vec![0; 256]);
        if let Some(b) = sig.first_mut() {
            *b ^= 0x01;
        }
        raw.insert("signature".into(), Value::String(B64.encode(sig)));
    })
}

/// The directory entry of a key: its current status and the inclusion
/// proof of its latest leaf in the current tree.
fn directory_entry(w: &World, rec: &KeyRecord, fp: &str) -> SignerEntry {
    SignerEntry {
        key_id: fp.to_string(),
        public_key: rec.public.to_pem(),
        owner_type: rec.owner_type.to_string(),
        owner_id: rec.owner_id.clone(),
        status: if rec.active { "active" } else { "revoked" }.to_string(),
        log_index: rec.log_index,
        inclusion_proof: w.log.proof_hex(rec.log_index),
    }
}

impl Ctx<'_> {
    /// This agent's wrapped key of `v`, with faults applied.
    pub(crate) fn wrapped_key(&mut self, v: &Vault) -> Option<Signed<WrappedKey>> {
        let honest = v.wrapped.get(&self.agent.id)?.signed.clone();
        if !self.faults.any_object_fault() {
            return Some(honest);
        }
        let mut body = honest.body().clone();
        let mut resign = false;
        let mut key = &self.w.operator;
        if self.has(F::WrongRecipient) {
            body.recipient_fingerprint = self.w.log_key.fingerprint().to_string();
            resign = true;
        }
        if self.has(F::WrongDek) {
            if let Some(public) = self.w.agent_key(self.agent) {
                body.wrapped_dek = public.wrap_dek(&Dek::generate());
                resign = true;
            }
        }
        if self.has(F::AgentSignedWrappedKey) {
            if let Some(decoy) = &self.w.fault_keys.decoy {
                key = decoy;
                resign = true;
            }
        }
        let mut wk = if resign {
            body.issued_at = time::now();
            Signed::sign(&body, key)
        } else {
            honest
        };
        if self.has(F::BadSignatureWrappedKey) {
            wk = corrupt(&wk);
        }
        Some(wk)
    }

    fn tree_head(&mut self) -> Signed<TreeHead> {
        let size = self.w.log.size();
        if let Some((s, head)) = &self.cache.tree_head {
            if *s == size {
                return head.clone();
            }
        }
        let body = TreeHead {
            kind: kind::TREE_HEAD.into(),
            log_id: self.w.log_key.fingerprint().to_string(),
            tree_size: size,
            root_hash: self.w.log.root_hex(),
            issued_at: time::now(),
            signer_key_id: String::new(),
            signature: String::new(),
        };
        let head = Signed::sign(&body, &self.w.log_key);
        self.cache.tree_head = Some((size, head.clone()));
        head
    }

    /// `GET /vault/:vaultId/public-keys` (§5), with faults applied.
    pub(crate) fn directory(&mut self, v: &Vault) -> SignerDirectory {
        let w = self.w;
        let mut fps: Vec<&str> = vec![w.operator.fingerprint()];
        for agent_id in &v.shared_with {
            if let Some(agent) = w.agent(agent_id) {
                fps.extend(agent.key.as_deref());
                fps.extend(agent.revoked.iter().map(String::as_str));
            }
        }
        if self.has(F::RevokedSigner) {
            fps.extend(w.fault_keys.retired.as_ref().map(|k| k.fingerprint()));
        }
        if self.has(F::AgentSignedWrappedKey) {
            fps.extend(w.fault_keys.decoy.as_ref().map(|k| k.fingerprint()));
        }
        let mut signers: Vec<SignerEntry> = fps
            .iter()
            .filter_map(|fp| w.keys.get(*fp).map(|rec| directory_entry(w, rec, fp)))
            .collect();
        if self.has(F::KeyIdMismatch) {
            signers[0].public_key = w.log_key.public().to_pem();
        }
        if self.has(F::BadInclusionProof) {
            for s in &mut signers {
                match s.inclusion_proof.first_mut() {
                    Some(h) => {
                        let flipped = if h.starts_with('0') { "1" } else { "0" };
                        h.replace_range(0..1, flipped);
                    }
                    None => s.inclusion_proof.push("00".repeat(32)),
                }
            }
        }
        let mut tree_head = self.tree_head();
        if self.has(F::BadSignatureTreeHead) {
            tree_head = corrupt(&tree_head);
        }
        SignerDirectory {
            vault_id: v.id.clone(),
            signers,
            tree_head,
        }
    }
}
