//! From stored rows to the protocol's JSON objects (PROTOCOL §7).
//!
//! The database keeps bytes and signed integers; the API speaks fixed-size
//! hex and unsigned numbers. The schema's CHECK constraints guarantee the
//! lengths and signs, so a conversion fails only for rows altered behind the
//! node's back, and says which column.

use anyhow::anyhow;
use sealchain_shared::api::{Block, BlockMessage, BlockSummary, ClientEntry};
use sealchain_shared::hexbytes::HexBytes;

use crate::db::models::{BlockRow, ClientRow, MessageRow};

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
