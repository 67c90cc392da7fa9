//! One flipped bit anywhere is rejected.
//!
//! - PROTOCOL §3 (RFC 9180): every bit of an envelope's `enc` and `ct`, and
//!   truncated, emptied or extended ciphertexts, give the one opaque
//!   `HpkeError::Open`;
//! - §2: every bit of a message signature and of the message bytes;
//! - §5 (RFC 6962): every bit of an inclusion proof's path, leaf hash and
//!   root;
//! - §6: every bit of the 111-byte block header, through `BlockHeader` and
//!   through the API's block object (§7, §8 `verify_block_header`);
//! - §4, §8: every field of a receipt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealchain_shared::api::{BlockSummary, Receipt};
use sealchain_shared::audit::{self, AuditError};
use sealchain_shared::block::{self, BlockHeader, HEADER_LEN};
use sealchain_shared::envelope::Envelope;
use sealchain_shared::hpke::HpkeError;
use sealchain_shared::keys::EncryptionKey;
use sealchain_shared::message::{self, Message, MessageBuilder, SignedMessage};
use sealchain_shared::{Hash, SigningKey, merkle, receipt};
use sha2::{Digest, Sha256};

/// Every single-bit change of `bytes`, with the flipped bit's position.
fn bit_flips(bytes: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..bytes.len() * 8).map(move |bit| {
        let mut out = bytes.to_vec();
        out[bit / 8] ^= 1 << (bit % 8);
        (bit, out)
    })
}

fn flip_array<const N: usize>(bytes: &[u8; N], bit: usize) -> [u8; N] {
    let mut out = *bytes;
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

fn client() -> SigningKey {
    SigningKey::from_bytes(&[0x07; 32])
}

fn node() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

/// A realistic signed message of about 270 bytes.
fn signed_message() -> SignedMessage {
    MessageBuilder::new(
        node().verifying_key().to_bytes(),
        "sensors/temp",
        &serde_json::json!({"reading": 21.5, "unit": "C"}),
    )
    .unwrap()
    .nonce([0x5a; 16])
    .ts(1_764_000_000_000)
    .sign(&client())
    .unwrap()
}

// ---------------------------------------------------------------------------
// §3 Envelopes.

fn sealed() -> (EncryptionKey, Envelope, Vec<u8>) {
    let key = EncryptionKey::from_bytes([0x24; 32]);
    let pt = signed_message().to_bytes();
    let envelope = Envelope::seal(&key.public_key(), &pt).unwrap();
    assert_eq!(&envelope.open(&key).unwrap()[..], &pt[..]);
    (key, envelope, pt)
}

#[test]
fn tamper_envelope_enc_every_bit_fails_open() {
    let (key, envelope, _) = sealed();
    for (bit, enc) in bit_flips(&envelope.enc) {
        // X25519 ignores the top bit of the u-coordinate (RFC 7748 §5), but
        // `enc` itself is part of the KEM context, so that flip fails too.
        let tampered = Envelope {
            enc: enc.try_into().unwrap(),
            ct: envelope.ct.clone(),
        };
        assert_eq!(tampered.open(&key), Err(HpkeError::Open), "enc bit {bit}");
    }
}

#[test]
fn tamper_envelope_ct_every_bit_fails_open() {
    let (key, envelope, _) = sealed();
    for (bit, ct) in bit_flips(&envelope.ct) {
        let tampered = Envelope { enc: envelope.enc, ct };
        assert_eq!(tampered.open(&key), Err(HpkeError::Open), "ct bit {bit}");
    }
}

#[test]
fn tamper_envelope_truncated_empty_or_extended_ct_fails_open() {
    let (key, envelope, _) = sealed();
    let with_ct = |ct: Vec<u8>| Envelope { enc: envelope.enc, ct };
    for len in 0..envelope.ct.len() {
        assert_eq!(
            with_ct(envelope.ct[..len].to_vec()).open(&key),
            Err(HpkeError::Open),
            "ct truncated to {len} bytes"
        );
        // Dropping bytes from the front instead.
        assert_eq!(
            with_ct(envelope.ct[envelope.ct.len() - len..].to_vec()).open(&key),
            Err(HpkeError::Open),
            "ct without its first {} bytes",
            envelope.ct.len() - len
        );
    }
    assert_eq!(with_ct(Vec::new()).open(&key), Err(HpkeError::Open));
    for extra in [&[0u8][..], &[0xff], &[0; 16], &envelope.ct[..16]] {
        let mut ct = envelope.ct.clone();
        ct.extend_from_slice(extra);
        assert_eq!(
            with_ct(ct).open(&key),
            Err(HpkeError::Open),
            "ct + {} bytes",
            extra.len()
        );
        let mut ct = extra.to_vec();
        ct.extend_from_slice(&envelope.ct);
        assert_eq!(
            with_ct(ct).open(&key),
            Err(HpkeError::Open),
            "{} bytes + ct",
            extra.len()
        );
    }
}

#[test]
fn tamper_envelope_wrong_key_or_low_order_enc_fails_open() {
    let (key, envelope, pt) = sealed();
    let other = EncryptionKey::from_bytes([0x25; 32]);
    assert_eq!(envelope.open(&other), Err(HpkeError::Open));

    // Small-order points give an all-zero DH output (RFC 9180 §7.1.4).
    let mut one = [0u8; 32];
    one[0] = 1;
    for enc in [[0u8; 32], one] {
        let tampered = Envelope {
            enc,
            ct: envelope.ct.clone(),
        };
        assert_eq!(tampered.open(&key), Err(HpkeError::Open));
    }
    // Two envelopes of the same plaintext: swapping their `enc` fails.
    let again = Envelope::seal(&key.public_key(), &pt).unwrap();
    assert_ne!(again.enc, envelope.enc);
    let swapped = Envelope {
        enc: again.enc,
        ct: envelope.ct.clone(),
    };
    assert_eq!(swapped.open(&key), Err(HpkeError::Open));
}

// ---------------------------------------------------------------------------
// §2 Messages.

#[test]
fn tamper_message_signature_every_bit_fails_verify() {
    let signed = signed_message();
    let sender = client().verifying_key().to_bytes();
    message::verify(&sender, &signed.message_bytes, &signed.signature).unwrap();
    for (bit, sig) in bit_flips(&signed.signature) {
        let sig: [u8; 64] = sig.try_into().unwrap();
        assert!(
            message::verify(&sender, &signed.message_bytes, &sig).is_err(),
            "signature bit {bit}"
        );
    }
}

#[test]
fn tamper_message_bytes_every_bit_is_rejected() {
    let signed = signed_message();
    let sender = client().verifying_key().to_bytes();
    let (mut unparsable, mut parsed) = (0, 0);
    for (bit, bytes) in bit_flips(&signed.message_bytes) {
        // Under the original sender's key.
        assert!(
            message::verify(&sender, &bytes, &signed.signature).is_err(),
            "message bit {bit}"
        );
        // As the node sees it: the key is the tampered message's own
        // `sender` member, if it still parses at all.
        match Message::parse(&bytes, message::DEFAULT_MAX_MESSAGE_BYTES) {
            Err(_) => unparsable += 1,
            Ok(m) => {
                parsed += 1;
                assert!(
                    message::verify(&m.sender, &bytes, &signed.signature).is_err(),
                    "message bit {bit}"
                );
            }
        }
    }
    // Both paths were exercised.
    assert!(unparsable > 0 && parsed > 0, "{unparsable} unparsable, {parsed} parsed");
}

// ---------------------------------------------------------------------------
// §5 Inclusion proofs.

#[test]
fn tamper_inclusion_proof_every_bit_fails() {
    let leaves: Vec<Hash> = (0u32..100).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect();
    for (size, index) in [(100usize, 37usize), (100, 99), (100, 0), (64, 63), (7, 6), (2, 1)] {
        let tree = &leaves[..size];
        let root = merkle::root(tree);
        let path = merkle::audit_path(index, tree).unwrap();
        let (i, n, leaf) = (index as u64, size as u64, tree[index]);
        merkle::verify_inclusion(i, n, &leaf, &path, &root).unwrap();

        for bit in 0..256 {
            let bad_leaf = flip_array(&leaf, bit);
            assert!(merkle::verify_inclusion(i, n, &bad_leaf, &path, &root).is_err());
            let bad_root = flip_array(&root, bit);
            assert!(merkle::verify_inclusion(i, n, &leaf, &path, &bad_root).is_err());
            for k in 0..path.len() {
                let mut bad_path = path.clone();
                bad_path[k] = flip_array(&path[k], bit);
                assert!(
                    merkle::verify_inclusion(i, n, &leaf, &bad_path, &root).is_err(),
                    "size {size} index {index} path[{k}] bit {bit}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// §6 Block headers.

fn header() -> BlockHeader {
    BlockHeader {
        index: 5,
        prev_hash: [0x11; 32],
        merkle_root: [0x22; 32],
        first_seq: 20,
        message_count: 4,
        sealed_at: 1_764_000_000_000,
    }
}

/// Every single-bit change of every field of `h`, named.
fn header_field_flips(h: &BlockHeader) -> Vec<(String, BlockHeader)> {
    let mut out = Vec::new();
    for bit in 0..64 {
        out.push((
            format!("index bit {bit}"),
            BlockHeader {
                index: h.index ^ (1 << bit),
                ..*h
            },
        ));
        out.push((
            format!("first_seq bit {bit}"),
            BlockHeader {
                first_seq: h.first_seq ^ (1 << bit),
                ..*h
            },
        ));
        out.push((
            format!("sealed_at bit {bit}"),
            BlockHeader {
                sealed_at: h.sealed_at ^ (1 << bit),
                ..*h
            },
        ));
    }
    for bit in 0..32 {
        out.push((
            format!("message_count bit {bit}"),
            BlockHeader {
                message_count: h.message_count ^ (1 << bit),
                ..*h
            },
        ));
    }
    for bit in 0..256 {
        out.push((
            format!("prev_hash bit {bit}"),
            BlockHeader {
                prev_hash: flip_array(&h.prev_hash, bit),
                ..*h
            },
        ));
        out.push((
            format!("merkle_root bit {bit}"),
            BlockHeader {
                merkle_root: flip_array(&h.merkle_root, bit),
                ..*h
            },
        ));
    }
    out
}

#[test]
fn tamper_block_header_encoding_every_bit_changes_hash_and_breaks_signature() {
    let node = node();
    let vk = node.verifying_key();
    let h = header();
    let encoded = h.encode();
    let hash = h.hash();
    let signature = h.sign(&node);
    assert!(block::verify_block_signature(&vk, &hash, &signature));
    // All 888 bits of the encoding, the domain tag included.
    for (bit, bytes) in bit_flips(&encoded) {
        let bad_hash: Hash = Sha256::digest(&bytes).into();
        assert_ne!(bad_hash, hash, "header bit {bit}");
        assert!(
            !block::verify_block_signature(&vk, &bad_hash, &signature),
            "header bit {bit}"
        );
    }
}

#[test]
fn tamper_block_header_fields_every_bit_changes_hash_and_breaks_signature() {
    let node = node();
    let vk = node.verifying_key();
    let h = header();
    let encoded = h.encode();
    let signature = h.sign(&node);
    let flips = header_field_flips(&h);
    assert_eq!(flips.len(), (HEADER_LEN - block::BLOCK_HEADER_DOMAIN.len()) * 8);
    for (what, tampered) in flips {
        // Each field bit is exactly one bit of the encoding.
        let diff: u32 = encoded
            .iter()
            .zip(tampered.encode())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(diff, 1, "{what}");
        assert_ne!(tampered.hash(), h.hash(), "{what}");
        assert!(
            !block::verify_block_signature(&vk, &tampered.hash(), &signature),
            "{what}"
        );
    }
}

fn summary(h: &BlockHeader, node: &SigningKey) -> BlockSummary {
    BlockSummary {
        index: h.index,
        hash: h.hash().into(),
        prev_hash: h.prev_hash.into(),
        merkle_root: h.merkle_root.into(),
        first_seq: h.first_seq,
        message_count: h.message_count,
        sealed_at: h.sealed_at,
        signer: node.verifying_key().to_bytes().into(),
        signature: h.sign(node).to_bytes().into(),
    }
}

fn with_header(s: &BlockSummary, h: &BlockHeader) -> BlockSummary {
    BlockSummary {
        index: h.index,
        prev_hash: h.prev_hash.into(),
        merkle_root: h.merkle_root.into(),
        first_seq: h.first_seq,
        message_count: h.message_count,
        sealed_at: h.sealed_at,
        ..s.clone()
    }
}

#[test]
fn tamper_block_summary_every_bit_fails_verify_block_header() {
    let node = node();
    let vk = node.verifying_key();
    let h = header();
    let good = summary(&h, &node);
    let prev = h.prev_hash;
    audit::verify_block_header(&good, &vk, 4, Some(&prev)).unwrap();

    for (what, tampered) in header_field_flips(&h) {
        // The fields changed, the claimed hash did not: the header no longer
        // hashes to it.
        let s = with_header(&good, &tampered);
        // Only the index changed: the fields still hash under the index
        // first_seq implies, so the block is reported as moved.
        let expected = if what.starts_with("index") {
            AuditError::Moved {
                index: tampered.index,
                holds: h.index,
            }
        } else {
            AuditError::HeaderHash { index: tampered.index }
        };
        assert_eq!(
            audit::verify_block_header(&s, &vk, 4, Some(&prev)),
            Err(expected),
            "{what}"
        );
        // The claimed hash updated too: the node's signature fails.
        let s = BlockSummary {
            hash: tampered.hash().into(),
            ..s
        };
        assert_eq!(
            audit::verify_block_header(&s, &vk, 4, Some(&prev)),
            Err(AuditError::BlockSignature { index: tampered.index }),
            "{what}"
        );
    }
    for bit in 0..256 {
        let s = BlockSummary {
            hash: flip_array(&good.hash.0, bit).into(),
            ..good.clone()
        };
        assert_eq!(
            audit::verify_block_header(&s, &vk, 4, Some(&prev)),
            Err(AuditError::HeaderHash { index: h.index }),
            "hash bit {bit}"
        );
        let s = BlockSummary {
            signer: flip_array(&good.signer.0, bit).into(),
            ..good.clone()
        };
        assert_eq!(
            audit::verify_block_header(&s, &vk, 4, Some(&prev)),
            Err(AuditError::WrongSigner { index: h.index }),
            "signer bit {bit}"
        );
    }
    for bit in 0..512 {
        let s = BlockSummary {
            signature: flip_array(&good.signature.0, bit).into(),
            ..good.clone()
        };
        assert_eq!(
            audit::verify_block_header(&s, &vk, 4, Some(&prev)),
            Err(AuditError::BlockSignature { index: h.index }),
            "signature bit {bit}"
        );
    }
}

// ---------------------------------------------------------------------------
// §4 Receipts.

#[test]
fn tamper_receipt_any_field_fails_verify_receipt() {
    let node = node();
    let vk = node.verifying_key();
    let block_size = 4;
    let leaf = signed_message().leaf_hash();
    let (seq, at) = (21u64, 1_764_000_000_123i64);
    let good = Receipt {
        seq,
        leaf_hash: leaf.into(),
        block_index: seq / u64::from(block_size),
        received_at: at,
        signature: receipt::sign(&node, seq, &leaf, at).to_bytes().into(),
    };
    audit::verify_receipt(&good, &vk, block_size).unwrap();

    let mut bad = Vec::new();
    for bit in 0..64 {
        let seq = good.seq ^ (1 << bit);
        // Keep block_index consistent, so only the signature can object.
        let block_index = seq / u64::from(block_size);
        bad.push((
            format!("seq bit {bit}"),
            Receipt {
                seq,
                block_index,
                ..good.clone()
            },
        ));
        bad.push((
            format!("received_at bit {bit}"),
            Receipt {
                received_at: good.received_at ^ (1 << bit),
                ..good.clone()
            },
        ));
    }
    for delta in [1u64, u64::MAX] {
        let seq = good.seq.wrapping_add(delta);
        let block_index = seq / u64::from(block_size);
        bad.push((
            format!("seq + {delta}"),
            Receipt {
                seq,
                block_index,
                ..good.clone()
            },
        ));
    }
    for bit in 0..256 {
        bad.push((
            format!("leaf_hash bit {bit}"),
            Receipt {
                leaf_hash: flip_array(&good.leaf_hash.0, bit).into(),
                ..good.clone()
            },
        ));
    }
    for bit in 0..512 {
        bad.push((
            format!("signature bit {bit}"),
            Receipt {
                signature: flip_array(&good.signature.0, bit).into(),
                ..good.clone()
            },
        ));
    }
    for (what, r) in bad {
        assert_eq!(
            audit::verify_receipt(&r, &vk, block_size),
            Err(AuditError::ReceiptSignature { seq: r.seq }),
            "{what}"
        );
    }

    // `block_index` is not signed, but it is checked.
    for block_index in [good.block_index + 1, good.block_index - 1, seq] {
        let r = Receipt {
            block_index,
            ..good.clone()
        };
        assert_eq!(
            audit::verify_receipt(&r, &vk, block_size),
            Err(AuditError::BlockIndex {
                seq,
                expected: good.block_index,
                found: block_index
            })
        );
    }
    // Another node's signature over the same fields.
    let other = SigningKey::from_bytes(&[0x43; 32]);
    let r = Receipt {
        signature: receipt::sign(&other, seq, &leaf, at).to_bytes().into(),
        ..good.clone()
    };
    assert_eq!(
        audit::verify_receipt(&r, &vk, block_size),
        Err(AuditError::ReceiptSignature { seq })
    );
}
