//! Rows of the tables in [`super::schema`] and their conversion to the
//! protocol's JSON objects.

use anyhow::anyhow;
use diesel::prelude::*;
use sealchain_shared::api::{Block, BlockMessage, BlockSummary, ClientEntry};
use sealchain_shared::hexbytes::HexBytes;

use super::schema::{blocks, chain_state, clients, messages};

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
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct MessageRow {
    /// Arrival order.
    pub seq: i64,
    /// Client public key.
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

/// A fixed-length byte column. The schema's CHECK constraints guarantee the
/// length; a mismatch means the database was altered behind the node's back.
pub fn fixed<const N: usize>(column: &'static str, bytes: &[u8]) -> anyhow::Result<HexBytes<N>> {
    <[u8; N]>::try_from(bytes)
        .map(HexBytes)
        .map_err(|_| anyhow!("column {column} holds {} bytes, expected {N}", bytes.len()))
}

fn unsigned(column: &'static str, v: i64) -> anyhow::Result<u64> {
    u64::try_from(v).map_err(|_| anyhow!("column {column} is negative"))
}

impl BlockRow {
    /// The header object.
    pub fn to_summary(&self) -> anyhow::Result<BlockSummary> {
        Ok(BlockSummary {
            index: unsigned("idx", self.idx)?,
            hash: fixed("hash", &self.hash)?,
            prev_hash: fixed("prev_hash", &self.prev_hash)?,
            merkle_root: fixed("merkle_root", &self.merkle_root)?,
            first_seq: unsigned("first_seq", self.first_seq)?,
            message_count: u32::try_from(self.message_count).map_err(|_| anyhow!("negative message_count"))?,
            sealed_at: self.sealed_at,
            signer: fixed("signer", &self.signer)?,
            signature: fixed("signature", &self.signature)?,
        })
    }

    /// The block object with its messages.
    pub fn to_block(&self, messages: &[MessageRow]) -> anyhow::Result<Block> {
        Ok(Block {
            summary: self.to_summary()?,
            messages: messages
                .iter()
                .map(MessageRow::to_block_message)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl MessageRow {
    /// `message_bytes` as the JSON string the API carries. The node stores
    /// only UTF-8; bytes altered in the database into invalid UTF-8 are
    /// served lossily, and an auditor's leaf-hash check then catches them.
    pub fn message_text(&self) -> String {
        String::from_utf8_lossy(&self.message).into_owned()
    }

    /// The message as a block lists it.
    pub fn to_block_message(&self) -> anyhow::Result<BlockMessage> {
        Ok(BlockMessage {
            seq: unsigned("seq", self.seq)?,
            leaf_hash: fixed::<32>("leaf_hash", &self.leaf_hash)?,
            sender: fixed::<32>("sender", &self.sender)?,
            received_at: self.received_at,
            signature: fixed::<64>("signature", &self.signature)?,
            message: self.message_text(),
        })
    }
}

impl ClientRow {
    /// The API object.
    pub fn to_entry(&self) -> anyhow::Result<ClientEntry> {
        Ok(ClientEntry {
            client_id: fixed::<32>("client_id", &self.client_id)?,
            added_at: self.added_at,
        })
    }
}
