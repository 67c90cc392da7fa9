//! Receipts (PROTOCOL §4).
//!
//! > Success answers `202 Accepted` only after the message is durably
//! > committed, with a receipt: `{ "seq", "leaf_hash", "block_index",
//! > "received_at", "signature" }` …
//! > receipt `signature = Ed25519-Sign(node_sk, "sealchain/receipt/v1" || 0x00
//! > || u64be(seq) || leaf_hash || i64be(received_at))`.
//!
//! `block_index` is not signed: it follows from `seq` and the chain's block
//! size, and verifiers recompute it rather than trust it.

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use crate::Hash;

/// Domain tag of receipt signatures.
pub const RECEIPT_SIGNATURE_DOMAIN: &[u8] = b"sealchain/receipt/v1\0";
/// Length of the signing input: 21 + 8 + 32 + 8.
pub const RECEIPT_INPUT_LEN: usize = 69;

/// `"sealchain/receipt/v1" || 0x00 || u64be(seq) || leaf_hash || i64be(received_at)`.
pub fn signing_input(seq: u64, leaf_hash: &Hash, received_at: i64) -> [u8; RECEIPT_INPUT_LEN] {
    let mut out = [0u8; RECEIPT_INPUT_LEN];
    out[..21].copy_from_slice(RECEIPT_SIGNATURE_DOMAIN);
    out[21..29].copy_from_slice(&seq.to_be_bytes());
    out[29..61].copy_from_slice(leaf_hash);
    out[61..].copy_from_slice(&received_at.to_be_bytes());
    out
}

/// The node's receipt signature.
pub fn sign(node_key: &SigningKey, seq: u64, leaf_hash: &Hash, received_at: i64) -> Signature {
    crate::sign_tagged(node_key, &signing_input(seq, leaf_hash, received_at))
}

/// Strictly verifies a receipt signature.
pub fn verify(node_key: &VerifyingKey, seq: u64, leaf_hash: &Hash, received_at: i64, signature: &Signature) -> bool {
    node_key
        .verify_strict(&signing_input(seq, leaf_hash, received_at), signature)
        .is_ok()
}
