//! Rows of the tables in [`super::schema`], as Diesel reads and writes
//! them. Their conversion to the protocol's JSON objects is in
//! [`crate::convert`].

use diesel::prelude::*;

use super::schema::{blocks, chain_state, checkpoints, clients, messages, senders, tile_hashes, witness_cosignatures};

/// The single row of `chain_state`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = chain_state, check_for_backend(diesel::pg::Pg))]
pub struct ChainState {
    /// Always true.
    pub id: bool,
    /// Messages per block.
    pub block_size: i32,
    /// The node key that built the chain.
    pub signing_key: Vec<u8>,
    /// Next seq to assign.
    pub next_seq: i64,
    /// Sealed blocks.
    pub block_count: i64,
    /// Hash of the newest block, zeros if none.
    pub head_hash: Vec<u8>,
    /// When the chain began, Unix ms.
    pub created_at: i64,
    /// The log's origin; `None` only before the first start that knew of
    /// the log.
    pub origin: Option<String>,
    /// Messages in the log's tree (equals `next_seq` once caught up).
    pub tree_size: i64,
    /// The tree's compact range: 32-byte hashes, largest subtree first.
    pub compact_range: Vec<u8>,
}

/// The first `chain_state` row.
#[derive(Debug, Insertable)]
#[diesel(table_name = chain_state)]
pub struct NewChainState<'a> {
    /// Messages per block.
    pub block_size: i32,
    /// The node's Ed25519 public key.
    pub signing_key: &'a [u8],
    /// Unix ms.
    pub created_at: i64,
    /// The log's origin.
    pub origin: &'a str,
}

/// A stored message, read with its sender's key.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct MessageRow {
    /// Arrival order.
    pub seq: i64,
    /// The sender's number in `senders`.
    pub sender_id: i64,
    /// Client public key: `(SELECT key FROM senders WHERE id =
    /// messages.sender_id)`, one primary key probe per message whatever
    /// the number of senders (a join would let Postgres hash the whole
    /// `senders` table for a block's hundred messages).
    #[diesel(select_expression = senders::table
        .filter(senders::id.eq(messages::sender_id))
        .select(senders::key)
        .single_value()
        .assume_not_null())]
    pub sender: Vec<u8>,
    /// 16-byte nonce.
    pub nonce: Vec<u8>,
    /// Client signature.
    pub signature: Vec<u8>,
    /// `message_bytes`.
    pub message: Vec<u8>,
    /// RFC 6962 leaf hash.
    pub leaf_hash: Vec<u8>,
    /// Unix ms.
    pub received_at: i64,
}

/// A sealed block.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = blocks, check_for_backend(diesel::pg::Pg))]
pub struct BlockRow {
    /// Block index.
    pub idx: i64,
    /// Block hash.
    pub hash: Vec<u8>,
    /// Previous block's hash.
    pub prev_hash: Vec<u8>,
    /// Merkle root.
    pub merkle_root: Vec<u8>,
    /// First seq.
    pub first_seq: i64,
    /// Message count.
    pub message_count: i32,
    /// Unix ms.
    pub sealed_at: i64,
    /// Node signing key.
    pub signer: Vec<u8>,
    /// Node signature.
    pub signature: Vec<u8>,
}

/// A registered client.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients, check_for_backend(diesel::pg::Pg))]
pub struct ClientRow {
    /// Client public key.
    pub client_id: Vec<u8>,
    /// Unix ms.
    pub added_at: i64,
}

/// The hash of a complete subtree of 256^level messages.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tile_hashes, check_for_backend(diesel::pg::Pg))]
pub struct TileHashRow {
    /// 1 to 7.
    pub level: i16,
    /// Its index at that level.
    pub idx: i64,
    /// The subtree's Merkle tree hash.
    pub hash: Vec<u8>,
}

/// A published checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = checkpoints, check_for_backend(diesel::pg::Pg))]
pub struct CheckpointRow {
    /// Its tree size.
    pub tree_size: i64,
    /// Its root hash.
    pub root: Vec<u8>,
    /// The signed note, as served.
    pub note: String,
    /// When it was published, Unix ms.
    pub published_at: i64,
}

/// A witness's cosignature of a checkpoint (PROTOCOL §10).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = witness_cosignatures, check_for_backend(diesel::pg::Pg))]
pub struct CosignatureRow {
    /// The checkpoint's tree size.
    pub tree_size: i64,
    /// The witness's verifier key string.
    pub witness: String,
    /// The cosignature line, without its newline.
    pub line: String,
    /// Its timestamp, POSIX seconds.
    pub cosigned_at: i64,
}
