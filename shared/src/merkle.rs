//! The Merkle tree (PROTOCOL §5, RFC 6962 §2.1).
//!
//! > - `leaf_hash = SHA256(0x00 || signed_message)`
//! > - interior node `= SHA256(0x01 || left || right)`
//! > - a tree of n > 1 leaves splits at k = the largest power of two smaller
//! >   than n.
//! > - Inclusion proofs are RFC 6962 audit paths (leaf index within the
//! >   block, tree size = the block's message count), ordered from the leaf
//! >   upwards.
//!
//! [`root`] and [`audit_path`] work for any tree size; [`verify_inclusion`]
//! is the algorithm of RFC 9162 §2.1.3.2.

use sha2::{Digest, Sha256};

use crate::Hash;

/// Why an inclusion proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// `leaf_index >= tree_size`.
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The path has the wrong number of hashes for this index and size.
    #[error("the audit path has the wrong length for this leaf index and tree size")]
    WrongPathLength,
    /// The path leads to another root.
    #[error("the audit path does not lead to the expected root")]
    RootMismatch,
}

/// `SHA256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new().chain_update([0x00]).chain_update(data).finalize().into()
}

/// `SHA256(0x00 || a || b)`: the leaf hash of data given in two parts
/// (`signature || message_bytes`) without copying them together.
pub fn leaf_hash_parts(a: &[u8], b: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(a)
        .chain_update(b)
        .finalize()
        .into()
}

/// `SHA256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root of the empty tree, `SHA256("")` (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle Tree Hash of `leaves` (already leaf-hashed).
///
/// Iterative: leaves are folded into perfect subtrees left to right (a stack
/// of at most log2(n) hashes), then the subtrees are joined right to left,
/// which is exactly RFC 6962's split at the largest power of two.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    // (height, hash) of complete subtrees, heights strictly decreasing.
    let mut stack: Vec<(u32, Hash)> = Vec::with_capacity(usize::BITS as usize);
    for leaf in leaves {
        let mut node = (0u32, *leaf);
        while let Some(&(height, left)) = stack.last() {
            if height != node.0 {
                break;
            }
            stack.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        stack.push(node);
    }
    let mut iter = stack.into_iter().rev();
    // `leaves` is non-empty, so the stack holds at least one subtree.
    let mut acc = iter.next().map(|(_, h)| h).unwrap_or_else(empty_root);
    for (_, left) in iter {
        acc = node_hash(&left, &acc);
    }
    acc
}

/// The audit path of leaf `index` in the tree of `leaves`, ordered from the
/// leaf upwards. `None` if `index` is out of range.
pub fn audit_path(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let (mut lo, mut hi, mut m) = (0usize, leaves.len(), index);
    // Walk down from the root, taking the root of the sibling subtree at
    // each split; the path is then that list reversed.
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if m < k {
            path.push(root(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            path.push(root(&leaves[lo..lo + k]));
            lo += k;
            m -= k;
        }
    }
    path.reverse();
    Some(path)
}

/// Recomputes the root from a leaf and its audit path (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash]) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return Err(ProofError::WrongPathLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongPathLength);
    }
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with
/// root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, path)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (100, 64), (129, 128)] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let l = leaf_hash(b"x");
        assert_eq!(root(&[l]), l);
        assert_eq!(audit_path(0, &[l]), Some(vec![]));
        assert_eq!(audit_path(1, &[l]), None);
        verify_inclusion(0, 1, &l, &[], &l).unwrap();
    }

    #[test]
    fn leaf_hash_parts_matches_concatenation() {
        assert_eq!(leaf_hash_parts(b"ab", b"cd"), leaf_hash(b"abcd"));
    }
}
