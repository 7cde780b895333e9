//! RFC 9162 Merkle trees as the signer transparency log uses them (§5):
//! leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || l || r).
//! Verification follows RFC 9162 §2.1.3.2; tree and proof construction
//! (devserver side) follow §2.1.1 and §2.1.3.1.

use crate::crypto::sha256;

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// Hash of a leaf's input bytes.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut buf = Vec::with_capacity(leaf.len() + 1);
    buf.push(0x00);
    buf.extend_from_slice(leaf);
    sha256(&buf)
}

/// Hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    sha256(&buf)
}

/// Root of a tree over leaf hashes (MTH of RFC 9162 §2.1.1). The empty tree's
/// root is SHA-256 of nothing.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Audit path for leaf `index` (RFC 9162 §2.1.3.1). `None` if out of range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    build_path(leaves, index, &mut path);
    Some(path)
}

fn build_path(leaves: &[Hash], index: usize, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if index < k {
        build_path(&leaves[..k], index, path);
        path.push(root(&leaves[k..]));
    } else {
        build_path(&leaves[k..], index - k, path);
        path.push(root(&leaves[..k]));
    }
}

/// Largest power of two strictly less than `n` (n >= 2).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// Verifies that `leaf` is at `index` in a tree of `size` leaves with `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

/// Parses a lowercase or uppercase hex hash.
pub fn parse_hash(hex_text: &str) -> Option<Hash> {
    let bytes = hex::decode(hex_text).ok()?;
    bytes.try_into().ok()
}
