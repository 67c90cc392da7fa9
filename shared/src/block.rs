//! Blocks (PROTOCOL §6).
//!
//! > Block `i` holds messages `seq = i*block_size … (i+1)*block_size - 1` in
//! > `seq` order. Its header bytes are:
//! >
//! > ```text
//! > "sealchain/block/v1" || 0x00
//! > || u64be(index)
//! > || prev_hash            (32 bytes; 32 zero bytes for index 0)
//! > || merkle_root          (32 bytes)
//! > || u64be(first_seq)
//! > || u32be(message_count)
//! > || i64be(sealed_at)     (Unix ms)
//! > ```
//! >
//! > - `block_hash = SHA256(header_bytes)`
//! > - `signature = Ed25519-Sign(node_sk, "sealchain/block-signature/v1" || 0x00 || block_hash)`

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Hash;

/// Domain tag opening every header.
pub const BLOCK_HEADER_DOMAIN: &[u8] = b"sealchain/block/v1\0";
/// Domain tag of block signatures.
pub const BLOCK_SIGNATURE_DOMAIN: &[u8] = b"sealchain/block-signature/v1\0";
/// Length of the encoded header: 19 + 8 + 32 + 32 + 8 + 4 + 8.
pub const HEADER_LEN: usize = 111;
/// `prev_hash` of block 0.
pub const GENESIS_PREV_HASH: Hash = [0u8; 32];

/// The signed part of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Position in the chain, from 0.
    pub index: u64,
    /// Hash of block `index - 1`; zeros for block 0.
    pub prev_hash: Hash,
    /// RFC 6962 root over the block's `signed_message`s.
    pub merkle_root: Hash,
    /// `seq` of the first message, `index * block_size`.
    pub first_seq: u64,
    /// Number of messages, `block_size` for every sealed block.
    pub message_count: u32,
    /// When the node sealed the block, Unix ms.
    pub sealed_at: i64,
}

impl BlockHeader {
    /// The header bytes of §6.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut at = 0;
        for part in [
            BLOCK_HEADER_DOMAIN,
            &self.index.to_be_bytes(),
            &self.prev_hash,
            &self.merkle_root,
            &self.first_seq.to_be_bytes(),
            &self.message_count.to_be_bytes(),
            &self.sealed_at.to_be_bytes(),
        ] {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        debug_assert_eq!(at, HEADER_LEN);
        out
    }

    /// `block_hash = SHA256(header_bytes)`.
    pub fn hash(&self) -> Hash {
        Sha256::digest(self.encode()).into()
    }

    /// The node's signature over this header's hash.
    pub fn sign(&self, node_key: &SigningKey) -> Signature {
        sign_block_hash(node_key, &self.hash())
    }
}

/// `"sealchain/block-signature/v1" || 0x00 || block_hash`.
pub fn signature_input(block_hash: &Hash) -> Vec<u8> {
    let mut input = Vec::with_capacity(BLOCK_SIGNATURE_DOMAIN.len() + 32);
    input.extend_from_slice(BLOCK_SIGNATURE_DOMAIN);
    input.extend_from_slice(block_hash);
    input
}

/// Signs a block hash.
pub fn sign_block_hash(node_key: &SigningKey, block_hash: &Hash) -> Signature {
    crate::sign_tagged(node_key, &signature_input(block_hash))
}

/// Strictly verifies a block signature.
pub fn verify_block_signature(node_key: &VerifyingKey, block_hash: &Hash, signature: &Signature) -> bool {
    node_key.verify_strict(&signature_input(block_hash), signature).is_ok()
}
