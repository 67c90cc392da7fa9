//! `sealchain proof SEQ`: one message's inclusion proof, verified.

use anyhow::{Context, bail};
use sealchain_shared::api::Receipt;
use sealchain_shared::audit;
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::merkle;
use sealchain_shared::message::{self, Message};
use serde::Serialize;

use crate::connect::connect;
use crate::global::Global;
use crate::output::{emit, emit_json};

/// Fetch and verify the inclusion proof of message SEQ.
///
/// Fetches the message (GET /v1/messages/SEQ), its RFC 6962 audit path
/// (GET /v1/messages/SEQ/proof) and the header of its block, then checks:
/// the message's signature verifies under its sender and its leaf hash is
/// SHA256(0x00 || signature || message); the block header hashes to its
/// hash and carries the node's signature (pinned key); and the audit path
/// leads from the leaf hash to the block's Merkle root. Prints the path from
/// the leaf upwards. A message whose block is not sealed yet has no proof
/// (409 not_sealed).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain proof 42
  sealchain proof 42 --json")]
pub struct Args {
    /// The message's seq (its position in arrival order, from 0).
    pub seq: u64,
}

#[derive(Debug, Serialize)]
struct Verified<'a> {
    seq: u64,
    sender: HexBytes<32>,
    block_index: u64,
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: HexBytes<32>,
    audit_path: &'a [HexBytes<32>],
    merkle_root: HexBytes<32>,
    block_hash: HexBytes<32>,
    verified: bool,
}

/// Runs `proof`.
pub async fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let seq = args.seq;
    let node = connect(global, 2).await?;
    let c = &node.client;
    let record = c
        .message(seq)
        .await
        .with_context(|| format!("fetching message {seq}"))?;
    let proof = c
        .proof(seq)
        .await
        .with_context(|| format!("fetching the inclusion proof of message {seq}"))?;
    let block = node.header(proof.block_index).await?;

    // The message itself: well formed, signed by its sender, and hashing to
    // the leaf the proof starts from.
    let bytes = record.message.as_bytes();
    if record.seq != seq {
        bail!("asked for message {seq}, the node answered message {}", record.seq);
    }
    let parsed = Message::parse(bytes, usize::MAX).map_err(|error| audit::AuditError::InvalidMessage { seq, error })?;
    if parsed.sender != record.sender.0 {
        bail!(audit::AuditError::SenderMismatch { seq });
    }
    message::verify(&parsed.sender, bytes, &record.signature.0)
        .map_err(|_| audit::AuditError::MessageSignature { seq })?;
    let leaf_hash = merkle::leaf_hash_parts(&record.signature.0, bytes);
    if leaf_hash != record.leaf_hash.0 {
        bail!(audit::AuditError::LeafHash { seq });
    }

    // The block header, then the path from that leaf to its root.
    audit::verify_block_header(&block, &node.signing_key, node.info.block_size, None)?;
    let claim = Receipt {
        seq,
        leaf_hash: HexBytes(leaf_hash),
        block_index: proof.block_index,
        received_at: record.received_at,
        // Not checked by verify_inclusion: the claim is the message's own
        // leaf hash, not a receipt.
        signature: HexBytes([0; 64]),
    };
    audit::verify_inclusion(&claim, &proof, &block, node.info.block_size)?;

    if global.json {
        return emit_json(&Verified {
            seq,
            sender: record.sender,
            block_index: proof.block_index,
            leaf_index: proof.leaf_index,
            tree_size: proof.tree_size,
            leaf_hash: proof.leaf_hash,
            audit_path: &proof.audit_path,
            merkle_root: proof.merkle_root,
            block_hash: proof.block_hash,
            verified: true,
        });
    }
    let mut text = format!(
        "message      {seq} from {}\n\
         block        {} (leaf {} of {})\n\
         leaf hash    {}\n\
         audit path   {} hashes, from the leaf up\n",
        record.sender,
        proof.block_index,
        proof.leaf_index,
        proof.tree_size,
        proof.leaf_hash,
        proof.audit_path.len(),
    );
    for (level, h) in proof.audit_path.iter().enumerate() {
        text.push_str(&format!("  {:>3}        {h}\n", level + 1));
    }
    text.push_str(&format!(
        "merkle root  {}\n\
         block hash   {}\n\
         verified: the message's signature and leaf hash, the block header and node signature, \
         and the path to the Merkle root\n",
        proof.merkle_root, proof.block_hash
    ));
    emit(&text)
}
