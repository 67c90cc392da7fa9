//! What an auditor checks (PROTOCOL §8).
//!
//! > For every block: header fields re-encode to `hash`; `signature`
//! > verifies under the node's signing key; `prev_hash` equals the previous
//! > block's `hash` (zero for block 0); the RFC 6962 root over the messages'
//! > `signature || message` equals `merkle_root`; every message's signature
//! > verifies under its `sender`; `seq` runs gapless from `first_seq`. For a
//! > receipt: its signature verifies, and the inclusion proof of `seq` leads
//! > to the `merkle_root` of block `seq / block_size`.
//!
//! > No (`sender`, `nonce`) appears twice in the chain.
//!
//! These functions trust nothing the node says about itself beyond its
//! signing key, which the auditor pins. Each failure names the block or
//! message at fault. [`CheckedBlock`] holds what one block's own checks
//! found (they can run on any thread), [`ChainCursor`] what an audit of a
//! chain in order must remember between blocks (the expected index and the
//! previous hash), and [`Auditor`] combines them with the (sender, nonce)
//! pairs seen, in memory.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Hash;
use crate::api::{Block, BlockSummary, InclusionProof, Receipt};
use crate::block::{GENESIS_PREV_HASH, verify_block_signature};
use crate::merkle::{self, ProofError};
use crate::message::{self, Message, MessageError};

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The block was signed by another key.
    #[error("block {index}: signer is not the node's signing key")]
    WrongSigner {
        /// Block index.
        index: u64,
    },
    /// The header fields do not hash to `hash`.
    #[error("block {index}: header fields do not re-encode to its hash")]
    HeaderHash {
        /// Block index.
        index: u64,
    },
    /// The block's fields hash to its `hash` under another index: the block
    /// was moved from that position (rows swapped or renumbered).
    #[error(
        "block {index}: holds block {holds} (its fields hash to its hash under index {holds}): blocks were moved or swapped"
    )]
    Moved {
        /// The position it was found at.
        index: u64,
        /// The index its fields belong to.
        holds: u64,
    },
    /// The node's signature over `hash` does not verify.
    #[error("block {index}: node signature does not verify")]
    BlockSignature {
        /// Block index.
        index: u64,
    },
    /// `prev_hash` is not the previous block's hash.
    #[error("block {index}: prev_hash is not the hash of block {prev}", prev = .index.wrapping_sub(1))]
    BrokenLink {
        /// Block index.
        index: u64,
    },
    /// The block is not where the chain expects it.
    #[error("block at position {expected} says its index is {found}")]
    Index {
        /// Index expected.
        expected: u64,
        /// Index found.
        found: u64,
    },
    /// `first_seq` or `message_count` break the block layout.
    #[error(
        "block {index}: first_seq {first_seq} / message_count {message_count} do not match block size {block_size}"
    )]
    Layout {
        /// Block index.
        index: u64,
        /// Claimed first seq.
        first_seq: u64,
        /// Claimed message count.
        message_count: u32,
        /// The chain's block size.
        block_size: u32,
    },
    /// The block lists another number of messages than its header says.
    #[error("block {index}: lists {found} messages, header says {expected}")]
    MessageList {
        /// Block index.
        index: u64,
        /// From the header.
        expected: u32,
        /// Listed.
        found: usize,
    },
    /// Seqs do not run gapless from `first_seq`.
    #[error("block {index}: message seq {found} where {expected} was expected")]
    SeqGap {
        /// Block index.
        index: u64,
        /// Expected seq.
        expected: u64,
        /// Seq found.
        found: u64,
    },
    /// A message's `leaf_hash` is not the hash of `signature || message`.
    #[error("message {seq}: leaf_hash does not match signature || message")]
    LeafHash {
        /// Message seq.
        seq: u64,
    },
    /// A stored message breaks the schema of §2.
    #[error("message {seq}: {error}")]
    InvalidMessage {
        /// Message seq.
        seq: u64,
        /// The rule it breaks.
        error: MessageError,
    },
    /// The stored `sender` is not the message's `sender` member.
    #[error("message {seq}: sender field differs from the message's sender member")]
    SenderMismatch {
        /// Message seq.
        seq: u64,
    },
    /// The message is bound to another node.
    #[error("message {seq}: its node member is not this node's key")]
    WrongNode {
        /// Message seq.
        seq: u64,
    },
    /// The client's signature does not verify.
    #[error("message {seq}: signature does not verify under its sender")]
    MessageSignature {
        /// Message seq.
        seq: u64,
    },
    /// The messages do not hash to `merkle_root`.
    #[error("block {index}: merkle_root does not match its messages")]
    MerkleRoot {
        /// Block index.
        index: u64,
    },
    /// A receipt's signature does not verify.
    #[error("receipt {seq}: node signature does not verify")]
    ReceiptSignature {
        /// Message seq.
        seq: u64,
    },
    /// A receipt's or proof's `block_index` is not `seq / block_size`.
    #[error("seq {seq}: block_index {found} should be {expected}")]
    BlockIndex {
        /// Message seq.
        seq: u64,
        /// `seq / block_size`.
        expected: u64,
        /// Claimed.
        found: u64,
    },
    /// A proof does not match the receipt or block it should prove.
    #[error("seq {seq}: proof does not match: {what}")]
    ProofMismatch {
        /// Message seq.
        seq: u64,
        /// The field that differs.
        what: &'static str,
    },
    /// A (sender, nonce) pair appears twice in the chain: a replayed
    /// message (PROTOCOL §8).
    #[error("message {seq}: sender {sender} reuses nonce {nonce} of message {first_seq} (a replay)")]
    Replay {
        /// The later message.
        seq: u64,
        /// The earlier message with the same pair.
        first_seq: u64,
        /// The sender, hex.
        sender: String,
        /// The nonce, hex.
        nonce: String,
    },
    /// The audit path does not lead to the block's root.
    #[error("seq {seq}: inclusion proof fails: {error}")]
    Inclusion {
        /// Message seq.
        seq: u64,
        /// Why.
        error: ProofError,
    },
}

/// Checks a block header: signer, hash, signature, layout, and the link to
/// the previous block when its hash is known (`prev`); block 0 must always
/// link to zeros.
pub fn verify_block_header(
    block: &BlockSummary,
    node_key: &VerifyingKey,
    block_size: u32,
    prev: Option<&Hash>,
) -> Result<(), AuditError> {
    let index = block.index;
    if block.signer.0 != node_key.to_bytes() {
        return Err(AuditError::WrongSigner { index });
    }
    if block.header().hash() != block.hash.0 {
        // A block moved to another position still hashes under its own
        // index, which its first_seq gives away.
        let holds = block.first_seq / u64::from(block_size.max(1));
        let mut own = block.header();
        own.index = holds;
        return Err(if holds != index && own.hash() == block.hash.0 {
            AuditError::Moved { index, holds }
        } else {
            AuditError::HeaderHash { index }
        });
    }
    if !verify_block_signature(node_key, &block.hash.0, &Signature::from_bytes(&block.signature.0)) {
        return Err(AuditError::BlockSignature { index });
    }
    let expected_prev = if index == 0 { Some(&GENESIS_PREV_HASH) } else { prev };
    if let Some(expected) = expected_prev
        && block.prev_hash.0 != *expected
    {
        return Err(AuditError::BrokenLink { index });
    }
    if block.message_count != block_size || Some(block.first_seq) != index.checked_mul(u64::from(block_size)) {
        return Err(AuditError::Layout {
            index,
            first_seq: block.first_seq,
            message_count: block.message_count,
            block_size,
        });
    }
    Ok(())
}

/// Checks a whole block (§8): [`verify_block_header`], then every message
/// (gapless seq, leaf hash, schema, sender, node binding, strict signature)
/// and the Merkle root over them.
pub fn verify_block(
    block: &Block,
    node_key: &VerifyingKey,
    block_size: u32,
    prev: Option<&Hash>,
) -> Result<(), AuditError> {
    verify_block_pairs(block, node_key, block_size, prev).map(drop)
}

/// [`verify_block`], returning the [`pair_digest`] of every message, in
/// seq order.
fn verify_block_pairs(
    block: &Block,
    node_key: &VerifyingKey,
    block_size: u32,
    prev: Option<&Hash>,
) -> Result<Vec<PairDigest>, AuditError> {
    let summary = &block.summary;
    let index = summary.index;
    verify_block_header(summary, node_key, block_size, prev)?;
    if block.messages.len() != summary.message_count as usize {
        return Err(AuditError::MessageList {
            index,
            expected: summary.message_count,
            found: block.messages.len(),
        });
    }
    let mut leaves = Vec::with_capacity(block.messages.len());
    let mut pairs = Vec::with_capacity(block.messages.len());
    for (expected, m) in (summary.first_seq..).zip(&block.messages) {
        let seq = m.seq;
        if seq != expected {
            return Err(AuditError::SeqGap {
                index,
                expected,
                found: seq,
            });
        }
        let bytes = m.message.as_bytes();
        if merkle::leaf_hash_parts(&m.signature.0, bytes) != m.leaf_hash.0 {
            return Err(AuditError::LeafHash { seq });
        }
        let parsed = Message::parse(bytes, usize::MAX).map_err(|error| AuditError::InvalidMessage { seq, error })?;
        if parsed.sender != m.sender.0 {
            return Err(AuditError::SenderMismatch { seq });
        }
        verify_parsed(seq, &parsed, bytes, &m.signature.0, node_key)?;
        leaves.push(m.leaf_hash.0);
        pairs.push(pair_digest(&parsed.sender, &parsed.nonce));
    }
    if merkle::root(&leaves) != summary.merkle_root.0 {
        return Err(AuditError::MerkleRoot { index });
    }
    Ok(pairs)
}

/// The checks every stored message passes, however it was read: bound to
/// this node, and signed by its sender (strict verification).
fn verify_parsed(
    seq: u64,
    parsed: &Message,
    message_bytes: &[u8],
    signature: &[u8; 64],
    node_key: &VerifyingKey,
) -> Result<(), AuditError> {
    if parsed.node != node_key.to_bytes() {
        return Err(AuditError::WrongNode { seq });
    }
    message::verify_cached(&parsed.sender, message_bytes, signature).map_err(|_| AuditError::MessageSignature { seq })
}

/// Checks entry `seq` of the log (PROTOCOL §9: a `signed_message`, as
/// entry bundles and proof bundles carry it): it splits into signature and
/// message, the message is well formed and bound to this node, and its
/// signature verifies under its sender. Returns the message; its leaf hash
/// is [`merkle::leaf_hash`] of the entry.
pub fn verify_entry(seq: u64, entry: &[u8], node_key: &VerifyingKey) -> Result<Message, AuditError> {
    let signed =
        message::SignedMessage::from_bytes(entry).map_err(|error| AuditError::InvalidMessage { seq, error })?;
    let parsed =
        Message::parse(&signed.message_bytes, usize::MAX).map_err(|error| AuditError::InvalidMessage { seq, error })?;
    verify_parsed(seq, &parsed, &signed.message_bytes, &signed.signature, node_key)?;
    Ok(parsed)
}

/// Checks a receipt's signature and that its `block_index` is `seq / block_size`.
pub fn verify_receipt(receipt: &Receipt, node_key: &VerifyingKey, block_size: u32) -> Result<(), AuditError> {
    let seq = receipt.seq;
    let signature = Signature::from_bytes(&receipt.signature.0);
    if !crate::receipt::verify(node_key, seq, &receipt.leaf_hash.0, receipt.received_at, &signature) {
        return Err(AuditError::ReceiptSignature { seq });
    }
    let expected = seq / u64::from(block_size.max(1));
    if receipt.block_index != expected {
        return Err(AuditError::BlockIndex {
            seq,
            expected,
            found: receipt.block_index,
        });
    }
    Ok(())
}

/// Checks that `proof` shows the message of `receipt` inside `block`, a
/// header the caller has verified (see [`verify_block_header`]): same seq
/// and leaf hash, the right block and position, and an audit path that
/// leads to the block's `merkle_root`.
pub fn verify_inclusion(
    receipt: &Receipt,
    proof: &InclusionProof,
    block: &BlockSummary,
    block_size: u32,
) -> Result<(), AuditError> {
    let seq = receipt.seq;
    let mismatch = |what| Err(AuditError::ProofMismatch { seq, what });
    let block_size = u64::from(block_size.max(1));
    if proof.seq != seq {
        return mismatch("seq");
    }
    if proof.leaf_hash != receipt.leaf_hash {
        return mismatch("leaf_hash");
    }
    if proof.block_index != seq / block_size {
        return Err(AuditError::BlockIndex {
            seq,
            expected: seq / block_size,
            found: proof.block_index,
        });
    }
    if block.index != proof.block_index {
        return mismatch("block index");
    }
    if proof.leaf_index != seq % block_size {
        return mismatch("leaf_index");
    }
    if proof.tree_size != u64::from(block.message_count) {
        return mismatch("tree_size");
    }
    if proof.merkle_root != block.merkle_root {
        return mismatch("merkle_root");
    }
    if proof.block_hash != block.hash {
        return mismatch("block_hash");
    }
    let path: Vec<Hash> = proof.audit_path.iter().map(|h| h.0).collect();
    merkle::verify_inclusion(
        proof.leaf_index,
        proof.tree_size,
        &proof.leaf_hash.0,
        &path,
        &block.merkle_root.0,
    )
    .map_err(|error| AuditError::Inclusion { seq, error })
}

/// A compact stand-in for a (sender, nonce) pair: the first 16 bytes of
/// `SHA-256(sender || nonce)`. Two different pairs share one with
/// probability about n² / 2^129 for n messages — below 2^-60 even at 10^10
/// messages — so a match is reported as a replay.
pub type PairDigest = [u8; 16];

/// The digest of a (sender, nonce) pair.
pub fn pair_digest(sender: &[u8; 32], nonce: &[u8; 16]) -> PairDigest {
    let mut h = Sha256::new();
    h.update(sender);
    h.update(nonce);
    let d = h.finalize();
    let mut out = [0; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// What the checks of one block that need no other block found: its
/// signatures, hashes, messages and Merkle root ([`verify_block`] without
/// the link to the previous block, which block 0 still checks against
/// zeros), and the [`pair_digest`] of each message.
///
/// These checks are the expensive part of an audit (a strict signature
/// verification per message) and are independent between blocks, so they
/// can run on any thread, in any order. [`ChainCursor::accept`] then takes
/// the results in block order and reports exactly what [`verify_block`]
/// with the previous hash would have: the first fault of the block, in the
/// same order of checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBlock {
    /// The index the block claims.
    pub index: u64,
    /// Its `hash`.
    pub hash: Hash,
    /// Its `prev_hash`.
    pub prev_hash: Hash,
    /// The block's first seq (`first_seq`).
    pub first_seq: u64,
    /// The digests of its messages' (sender, nonce) pairs, in seq order
    /// from `first_seq`, or the first fault.
    pub result: Result<Vec<PairDigest>, AuditError>,
}

impl CheckedBlock {
    /// Runs the block's own checks.
    pub fn new(block: &Block, node_key: &VerifyingKey, block_size: u32) -> Self {
        let s = &block.summary;
        Self {
            index: s.index,
            hash: s.hash.0,
            prev_hash: s.prev_hash.0,
            first_seq: s.first_seq,
            result: verify_block_pairs(block, node_key, block_size, None),
        }
    }
}

impl AuditError {
    /// Whether [`verify_block_header`] finds this before it checks the link
    /// to the previous block.
    fn precedes_link(&self) -> bool {
        matches!(
            self,
            Self::WrongSigner { .. } | Self::HeaderHash { .. } | Self::Moved { .. } | Self::BlockSignature { .. }
        )
    }
}

/// The order-dependent part of an audit (PROTOCOL §8): each block comes at
/// the expected index and links to the previous one. Fed [`CheckedBlock`]s
/// in block order.
#[derive(Debug, Clone)]
pub struct ChainCursor {
    next_index: u64,
    prev_hash: Option<Hash>,
}

impl ChainCursor {
    /// A cursor at block `index`, whose predecessor has hash `prev_hash`
    /// (from a verified header; `None` when unknown, then the first block's
    /// link is not checked).
    pub fn starting_at(index: u64, prev_hash: Option<Hash>) -> Self {
        Self {
            next_index: index,
            prev_hash: if index == 0 { Some(GENESIS_PREV_HASH) } else { prev_hash },
        }
    }

    /// Checks the next block: its index, the first fault of its own checks
    /// in [`verify_block`]'s order, and its link. Returns its pair digests;
    /// the cursor does not move (see [`ChainCursor::advance`]).
    pub fn accept<'a>(&self, block: &'a CheckedBlock) -> Result<&'a [PairDigest], AuditError> {
        if block.index != self.next_index {
            return Err(AuditError::Index {
                expected: self.next_index,
                found: block.index,
            });
        }
        if let Err(e) = &block.result
            && e.precedes_link()
        {
            return Err(e.clone());
        }
        if let Some(prev) = &self.prev_hash
            && block.prev_hash != *prev
        {
            return Err(AuditError::BrokenLink { index: block.index });
        }
        block.result.as_deref().map_err(Clone::clone)
    }

    /// Moves past a block [`ChainCursor::accept`] accepted.
    pub fn advance(&mut self, block: &CheckedBlock) {
        self.prev_hash = Some(block.hash);
        self.next_index += 1;
    }

    /// The index of the next block expected.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The hash of the last block accepted (or the one given at the start).
    pub fn prev_hash(&self) -> Option<&Hash> {
        self.prev_hash.as_ref()
    }
}

/// The replay a (sender, nonce) pair seen twice makes (PROTOCOL §8): the
/// message at `seq` repeats the pair of the message at `other`. Named
/// earlier seq first, as [`Auditor::check`] names it.
pub fn replay(seq: u64, other: u64, sender: &[u8; 32], nonce: &[u8; 16]) -> AuditError {
    AuditError::Replay {
        seq: seq.max(other),
        first_seq: seq.min(other),
        sender: hex::encode(sender),
        nonce: hex::encode(nonce),
    }
}

/// An audit of a chain held in memory, fed its blocks in order (PROTOCOL
/// §8).
///
/// It checks each block completely ([`verify_block`]), that it comes where
/// expected and links to the previous one, and that none of its messages
/// repeats a (sender, nonce) pair seen before — in this audit, or in
/// earlier audits whose pairs were handed over with [`Auditor::remember`].
/// It keeps every pair in a map (about 50 bytes a message): `sealchain
/// verify` instead combines [`CheckedBlock`], [`ChainCursor`] and an
/// external sort of the pairs, in bounded memory.
#[derive(Debug, Clone)]
pub struct Auditor {
    node_key: VerifyingKey,
    block_size: u32,
    cursor: ChainCursor,
    seen: HashMap<PairDigest, u64>,
}

impl Auditor {
    /// An audit from block 0.
    pub fn new(node_key: VerifyingKey, block_size: u32) -> Self {
        Self::starting_at(node_key, block_size, 0, None)
    }

    /// An audit that starts at block `index`, whose predecessor has hash
    /// `prev_hash` (from a verified header; `None` when unknown, then the
    /// first block's link is not checked).
    pub fn starting_at(node_key: VerifyingKey, block_size: u32, index: u64, prev_hash: Option<Hash>) -> Self {
        Self {
            node_key,
            block_size,
            cursor: ChainCursor::starting_at(index, prev_hash),
            seen: HashMap::new(),
        }
    }

    /// Adds pairs known from earlier audits: `(digest, seq)`.
    pub fn remember(&mut self, pairs: impl IntoIterator<Item = (PairDigest, u64)>) {
        self.seen.extend(pairs);
    }

    /// Checks the next block; on success the audit moves past it.
    pub fn check(&mut self, block: &Block) -> Result<(), AuditError> {
        // The index first, before any work on a block out of place.
        let found = block.summary.index;
        if found != self.cursor.next_index() {
            return Err(AuditError::Index {
                expected: self.cursor.next_index(),
                found,
            });
        }
        let checked = CheckedBlock::new(block, &self.node_key, self.block_size);
        let digests = self.cursor.accept(&checked)?;
        let mut pairs: Vec<(PairDigest, u64)> = Vec::with_capacity(digests.len());
        for (&digest, m) in digests.iter().zip(&block.messages) {
            let earlier = self
                .seen
                .get(&digest)
                .copied()
                .or_else(|| pairs.iter().find(|(d, _)| *d == digest).map(|(_, s)| *s));
            // A pair remembered at this very seq is this message, audited
            // before (a re-audit of remembered blocks).
            if let Some(first_seq) = earlier.filter(|&first| first != m.seq) {
                // The block verified, so every message parses.
                let parsed = Message::parse(m.message.as_bytes(), usize::MAX)
                    .map_err(|error| AuditError::InvalidMessage { seq: m.seq, error })?;
                return Err(replay(m.seq, first_seq, &parsed.sender, &parsed.nonce));
            }
            pairs.push((digest, m.seq));
        }
        self.seen.extend(pairs);
        self.cursor.advance(&checked);
        Ok(())
    }

    /// The index of the next block expected.
    pub fn next_index(&self) -> u64 {
        self.cursor.next_index()
    }

    /// The hash of the last block checked (or the one given at the start).
    pub fn prev_hash(&self) -> Option<&Hash> {
        self.cursor.prev_hash()
    }

    /// Every pair seen, with the seq of its message, sorted by seq.
    pub fn pairs(&self) -> Vec<(PairDigest, u64)> {
        let mut pairs: Vec<_> = self.seen.iter().map(|(d, s)| (*d, *s)).collect();
        pairs.sort_by_key(|(_, seq)| *seq);
        pairs
    }
}
