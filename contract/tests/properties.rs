//! Property tests of the contract layer: envelope round trips and tamper
//! detection, Merkle inclusion proofs for every tree size and index.

use proptest::prelude::*;
use r4_contract::envelope::{self, Expect};
use r4_contract::{merkle, Dek};

const VID: &str = "507f1f77bcf86cd799439011";
const FID: &str = "507f1f77bcf86cd799439019";

fn expect() -> Expect<'static> {
    Expect {
        vault_id: VID,
        field_id: Some(FID),
        dek_version: 1,
    }
}

proptest! {
    #[test]
    fn envelope_round_trip(key in any::<[u8; 32]>(), text in "\\PC{0,200}") {
        let dek = Dek::from_bytes(key);
        let sealed = envelope::seal(text.as_bytes(), &dek, VID, FID, 1);
        let opened = envelope::open(&sealed, &dek, expect()).unwrap();
        prop_assert_eq!(opened.expose(), text.as_bytes());
    }

    #[test]
    fn any_single_bit_change_is_rejected(
        key in any::<[u8; 32]>(),
        text in "\\PC{1,64}",
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let dek = Dek::from_bytes(key);
        let sealed = envelope::seal(text.as_bytes(), &dek, VID, FID, 1);
        let mut bytes = sealed.into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        // A flip that leaves UTF-8 cannot even be presented as a field value.
        if let Ok(tampered) = String::from_utf8(bytes) {
            prop_assert!(envelope::open(&tampered, &dek, expect()).is_err());
        }
    }

    #[test]
    fn any_other_dek_is_rejected(key in any::<[u8; 32]>(), other in any::<[u8; 32]>()) {
        prop_assume!(key != other);
        let sealed = envelope::seal(b"value", &Dek::from_bytes(key), VID, FID, 1);
        prop_assert!(envelope::open(&sealed, &Dek::from_bytes(other), expect()).is_err());
    }
}

fn leaves(n: usize) -> Vec<merkle::Hash> {
    (0..n)
        .map(|i| merkle::leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

#[test]
fn inclusion_proofs_for_every_size_and_index() {
    for size in 1..=64usize {
        let all = leaves(size);
        let root = merkle::root(&all);
        for index in 0..size {
            let proof = merkle::inclusion_proof(&all, index).unwrap();
            assert!(
                merkle::verify_inclusion(&all[index], index as u64, size as u64, &proof, &root),
                "size {size} index {index}"
            );
            for wrong in (0..size + 2).filter(|&w| w != index) {
                assert!(
                    !merkle::verify_inclusion(
                        &all[index],
                        wrong as u64,
                        size as u64,
                        &proof,
                        &root
                    ),
                    "size {size}: leaf {index} accepted at index {wrong}"
                );
            }
        }
        assert!(merkle::inclusion_proof(&all, size).is_none());
    }
}

#[test]
fn inclusion_proof_rejects_wrong_leaf_root_or_size() {
    let all = leaves(13);
    let root = merkle::root(&all);
    let proof = merkle::inclusion_proof(&all, 5).unwrap();
    assert!(!merkle::verify_inclusion(&all[6], 5, 13, &proof, &root));
    // (The tree size is bound by the signed tree head, not by the path: a
    // left-subtree path can be valid for several sizes, as RFC 9162 allows.)
    assert!(!merkle::verify_inclusion(
        &all[12],
        12,
        16,
        &merkle::inclusion_proof(&all, 12).unwrap(),
        &root
    ));
    assert!(!merkle::verify_inclusion(
        &all[5],
        5,
        13,
        &proof,
        &merkle::root(&all[..12])
    ));
    let mut short = proof.clone();
    short.pop();
    assert!(!merkle::verify_inclusion(&all[5], 5, 13, &short, &root));
    let mut long = proof;
    long.push(all[0]);
    assert!(!merkle::verify_inclusion(&all[5], 5, 13, &long, &root));
}
