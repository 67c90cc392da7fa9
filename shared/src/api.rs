//! The JSON objects of the REST API (PROTOCOL §7), shared by the node that
//! serves them and the clients and auditors that read them.
//!
//! Hashes, keys and signatures travel as lowercase hex ([`HexBytes`]);
//! `message` carries `message_bytes` verbatim as a JSON string.

use serde::{Deserialize, Serialize};

use crate::Hash;
use crate::block::BlockHeader;
use crate::hexbytes::HexBytes;

/// 32 bytes in hex: hashes and public keys.
pub type Hex32 = HexBytes<32>;
/// 64 bytes in hex: signatures.
pub type Hex64 = HexBytes<64>;

/// The largest JSON answer a client must be ready to read: a block with
/// all its messages. A node refuses settings whose blocks could exceed it.
pub const MAX_BLOCK_JSON_BYTES: u64 = 256 * 1024 * 1024;

/// An upper bound of the JSON size of a block of `block_size` messages of
/// at most `max_message_bytes` each. `message` is a JSON string holding JSON
/// text, so escaping at most doubles it (`"` → `\"`, a raw newline → `\n`);
/// 512 bytes cover each message's other members and 1 KiB the header.
pub fn block_json_bound(block_size: u32, max_message_bytes: u64) -> u64 {
    u64::from(block_size)
        .saturating_mul(max_message_bytes.saturating_mul(2).saturating_add(512))
        .saturating_add(1024)
}

/// The size of the compact envelope JSON (`{"enc":"…","ct":"…"}`) that
/// carries a message of `message_bytes` bytes: 64-byte signature and
/// 16-byte AEAD tag around it, base64 with padding.
pub fn envelope_json_len(message_bytes: u64) -> u64 {
    let sealed = message_bytes.saturating_add(64 + 16);
    82 + sealed.div_ceil(3) * 4
}

/// Who may send messages to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ClientPolicy {
    /// Any client key.
    Open,
    /// Only keys registered through the admin API.
    Allowlist,
}

/// `GET /v1/node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeInfo {
    /// Ed25519 key that signs blocks and receipts; messages name it in `node`.
    pub signing_key: Hex32,
    /// X25519 key that envelopes are sealed to.
    pub encryption_key: Hex32,
    /// Messages per block, fixed for the life of the chain.
    pub block_size: u32,
    /// Largest accepted `message_bytes`.
    pub max_message_bytes: u64,
    /// Largest accepted difference between `ts` and the node's clock.
    pub max_skew_ms: u64,
    /// `open` or `allowlist`.
    pub client_policy: ClientPolicy,
    /// Always `sealchain/v1`.
    pub protocol: String,
    /// The log's origin (PROTOCOL §9), the key name of its checkpoints.
    pub origin: String,
    /// The checkpoints' verifier key string (`origin+keyid+base64 key`).
    pub verifier_key: String,
}

/// The signed receipt of an accepted message (`202` to `POST /v1/messages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// Position in the node's arrival order, 0-based and gapless.
    pub seq: u64,
    /// `SHA256(0x00 || signed_message)`.
    pub leaf_hash: Hex32,
    /// `seq / block_size`.
    pub block_index: u64,
    /// When the node received the message, Unix ms.
    pub received_at: i64,
    /// Node signature over `seq`, `leaf_hash` and `received_at`.
    pub signature: Hex64,
}

/// `GET /v1/messages/{seq}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageRecord {
    /// Position in arrival order.
    pub seq: u64,
    /// The message's leaf hash.
    pub leaf_hash: Hex32,
    /// The sender's Ed25519 public key.
    pub sender: Hex32,
    /// When the node received it, Unix ms.
    pub received_at: i64,
    /// `seq / block_size`.
    pub block_index: u64,
    /// Whether its block is sealed yet.
    pub sealed: bool,
    /// `message_bytes`, verbatim.
    pub message: String,
    /// The sender's signature.
    pub signature: Hex64,
}

/// `GET /v1/messages/{seq}/proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// The message.
    pub seq: u64,
    /// Its block.
    pub block_index: u64,
    /// Its position within the block.
    pub leaf_index: u64,
    /// The block's message count.
    pub tree_size: u64,
    /// The message's leaf hash.
    pub leaf_hash: Hex32,
    /// RFC 6962 audit path, from the leaf upwards.
    pub audit_path: Vec<Hex32>,
    /// The block's Merkle root.
    pub merkle_root: Hex32,
    /// The block's hash.
    pub block_hash: Hex32,
}

/// `GET /v1/log/proof/inclusion`: the inclusion of a message in the log's
/// tree of a published checkpoint (PROTOCOL §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LogInclusionProof {
    /// The message (its index in the log).
    pub seq: u64,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// The message's leaf hash.
    pub leaf_hash: Hex32,
    /// RFC 6962 audit path, from the leaf upwards.
    pub audit_path: Vec<Hex32>,
    /// The checkpoint's root hash.
    pub root: Hex32,
}

/// `GET /v1/log/proof/consistency`: the RFC 6962 consistency proof between
/// two published checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// The proof's hashes.
    pub proof: Vec<Hex32>,
}

/// `GET /v1/blocks/count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockCount {
    /// Number of sealed blocks.
    pub count: u64,
}

/// A block header object: every block field but its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockSummary {
    /// Position in the chain, from 0.
    pub index: u64,
    /// `SHA256(header_bytes)`.
    pub hash: Hex32,
    /// The previous block's hash; zeros for block 0.
    pub prev_hash: Hex32,
    /// RFC 6962 root over the block's messages.
    pub merkle_root: Hex32,
    /// `seq` of the first message.
    pub first_seq: u64,
    /// Number of messages.
    pub message_count: u32,
    /// When the node sealed the block, Unix ms.
    pub sealed_at: i64,
    /// The node's Ed25519 signing key.
    pub signer: Hex32,
    /// Node signature over `hash`.
    pub signature: Hex64,
}

impl BlockSummary {
    /// The header whose hash `hash` claims to be.
    pub fn header(&self) -> BlockHeader {
        BlockHeader {
            index: self.index,
            prev_hash: self.prev_hash.0,
            merkle_root: self.merkle_root.0,
            first_seq: self.first_seq,
            message_count: self.message_count,
            sealed_at: self.sealed_at,
        }
    }

    /// The claimed block hash.
    pub fn hash(&self) -> Hash {
        self.hash.0
    }
}

/// A message as stored in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockMessage {
    /// Position in arrival order.
    pub seq: u64,
    /// `SHA256(0x00 || signature || message)`.
    pub leaf_hash: Hex32,
    /// The sender's Ed25519 public key.
    pub sender: Hex32,
    /// When the node received it, Unix ms.
    pub received_at: i64,
    /// The sender's signature.
    pub signature: Hex64,
    /// `message_bytes`, verbatim.
    pub message: String,
}

/// A block with its messages (`GET /v1/blocks/{index}` and friends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Block {
    /// The header fields.
    #[serde(flatten)]
    pub summary: BlockSummary,
    /// The block's messages in `seq` order.
    pub messages: Vec<BlockMessage>,
}

/// `GET /v1/blocks?from=I&limit=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockList {
    /// Header objects, ascending by index.
    pub blocks: Vec<BlockSummary>,
    /// `from` of the next page, or null when this page reaches the head.
    pub next: Option<u64>,
}

/// An error answer (`application/problem+json`, RFC 9457).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// Problem type URI; `about:blank` (the status says it all).
    #[serde(rename = "type")]
    pub type_: String,
    /// The HTTP status phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
    /// Stable machine-readable code (`invalid_message`, `duplicate`, …).
    pub code: String,
}

/// A registered client (`GET /v1/clients`, allowlist policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientEntry {
    /// The client's Ed25519 public key.
    pub client_id: Hex32,
    /// When it was registered, Unix ms.
    pub added_at: i64,
}

/// `POST /v1/clients` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewClient {
    /// The client's Ed25519 public key.
    pub client_id: Hex32,
}

/// `GET /v1/clients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientList {
    /// Registered clients, ordered by key.
    pub clients: Vec<ClientEntry>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::envelope::Envelope;
    use crate::keys::EncryptionKey;

    #[test]
    fn envelope_json_len_is_the_length_of_a_real_envelope() {
        let node = EncryptionKey::generate().unwrap();
        for message_len in [0usize, 1, 2, 3, 100, 16_384, 65_471] {
            let signed = vec![b'x'; 64 + message_len];
            let envelope = Envelope::seal(&node.public_key(), &signed).unwrap();
            assert_eq!(
                envelope.to_json().len() as u64,
                envelope_json_len(message_len as u64),
                "message of {message_len} bytes"
            );
        }
    }

    #[test]
    fn block_json_bound_covers_a_block_of_worst_case_messages() {
        // Every byte of the message a quote: escaping doubles it.
        let message = "\"".repeat(1000);
        let block = Block {
            summary: BlockSummary {
                index: u64::MAX,
                hash: HexBytes([0; 32]),
                prev_hash: HexBytes([0; 32]),
                merkle_root: HexBytes([0; 32]),
                first_seq: u64::MAX,
                message_count: 3,
                sealed_at: i64::MIN,
                signer: HexBytes([0; 32]),
                signature: HexBytes([0; 64]),
            },
            messages: (0..3)
                .map(|_| BlockMessage {
                    seq: u64::MAX,
                    leaf_hash: HexBytes([0; 32]),
                    sender: HexBytes([0; 32]),
                    received_at: i64::MIN,
                    signature: HexBytes([0; 64]),
                    message: message.clone(),
                })
                .collect(),
        };
        let len = serde_json::to_vec(&block).unwrap().len() as u64;
        assert!(
            len <= block_json_bound(3, 1000),
            "{len} > {}",
            block_json_bound(3, 1000)
        );
        assert!(len > block_json_bound(3, 1000) / 2, "the bound is not absurdly loose");
    }
}
