//! The log of PROTOCOL §9, on the node's side.
//!
//! - The writer extends the tree in the same transaction as the messages
//!   ([`extend`]): the compact range (at most 64 hashes) lives in the locked
//!   `chain_state` row, and every completed subtree of 256^L messages (a
//!   tile hash at level L ≥ 1) goes into `tile_hashes`. Level-0 hashes are
//!   the messages' leaf hashes. Nothing grows in memory with the chain, and
//!   no request hashes leaves again: [`TileStore`] reads stored hashes.
//! - The [`Publisher`] signs a checkpoint (a signed note) whenever the tree
//!   has grown, at most once per `--checkpoint-interval`, and stores it.
//!   Checkpoints are made from committed state only, and the tree is
//!   append-only, so every checkpoint is consistent with every earlier one,
//!   across restarts and crashes.

use std::time::Duration;

use anyhow::Context;
use diesel::Connection;
use diesel::pg::PgConnection;
use sealchain_shared::note::Checkpoint;
use sealchain_shared::tlog::{CompactRange, HashSource, TILE_HEIGHT};
use sealchain_shared::{Hash, SigningKey, now_ms};

use crate::db::models::{ChainState, CheckpointRow, TileHashRow};
use crate::db::{DbPool, StoreError, repo};
use crate::metrics as m;

/// The compact range stored in a chain state row.
pub fn compact_range(state: &ChainState) -> Result<CompactRange, String> {
    let size = u64::try_from(state.tree_size).map_err(|_| "tree_size is negative".to_owned())?;
    let hashes: Vec<Hash> = state
        .compact_range
        .chunks(32)
        .map(|c| Hash::try_from(c).map_err(|_| "compact_range is not a sequence of 32-byte hashes".to_owned()))
        .collect::<Result<_, _>>()?;
    CompactRange::from_parts(size, hashes)
        .ok_or_else(|| format!("compact_range does not hold one hash per set bit of tree_size {size}"))
}

/// The compact range as stored.
pub fn encode_range(range: &CompactRange) -> Vec<u8> {
    range.hashes().concat()
}

/// Appends leaves to the tree; returns the tile hashes (subtrees of 256^L
/// leaves, L ≥ 1) they completed, to store with them.
pub fn extend(range: &mut CompactRange, leaves: impl IntoIterator<Item = Hash>) -> Vec<TileHashRow> {
    let mut tiles = Vec::new();
    for leaf in leaves {
        range.append(leaf, |subtree| {
            if subtree.height > 0 && subtree.height % TILE_HEIGHT == 0 {
                tiles.push(TileHashRow {
                    level: (subtree.height / TILE_HEIGHT) as i16,
                    idx: i64::try_from(subtree.index).unwrap_or(i64::MAX),
                    hash: subtree.hash.to_vec(),
                });
            }
        });
    }
    tiles
}

/// The stored tree as a [`HashSource`]: complete subtrees of height 0 are
/// leaf hashes, of height 8L tile hashes of level L.
pub struct TileStore<'a>(pub &'a mut PgConnection);

impl TileStore<'_> {
    /// One complete subtree's hash.
    pub fn subtrees_one(&mut self, height: u32, index: u64) -> Result<Hash, StoreError> {
        self.subtrees(height, index, 1)?
            .pop()
            .ok_or_else(|| StoreError::Internal(anyhow::anyhow!("no hash returned")))
    }
}

impl std::fmt::Debug for TileStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TileStore")
    }
}

impl HashSource for TileStore<'_> {
    type Error = StoreError;

    fn subtrees(&mut self, height: u32, start: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
        let start_key = i64::try_from(start).map_err(|_| StoreError::NotFound)?;
        let count_key = i64::try_from(count).map_err(|_| StoreError::NotFound)?;
        let rows = if height == 0 {
            repo::leaf_hashes(self.0, start_key, count_key)?
        } else {
            let level = i16::try_from(height / TILE_HEIGHT).map_err(|_| StoreError::NotFound)?;
            repo::tile_hashes(self.0, level, start_key, count_key)?
        };
        if rows.len() as u64 != count {
            return Err(StoreError::Internal(anyhow::anyhow!(
                "the tree is missing hashes: height {height}, {start}..{}, found {}",
                start + count,
                rows.len()
            )));
        }
        rows.iter()
            .map(|h| Hash::try_from(h.as_slice()))
            .collect::<Result<_, _>>()
            .map_err(|_| StoreError::Internal(anyhow::anyhow!("a stored hash is not 32 bytes")))
    }
}

/// Brings the log up to the chain: a chain that began before the log
/// existed (or any gap) is added to the tree from its stored leaf hashes,
/// in one transaction under the chain state lock. Returns how many
/// messages were added.
pub fn catch_up(conn: &mut PgConnection) -> anyhow::Result<u64> {
    const CHUNK: i64 = 10_000;
    conn.transaction(|conn| {
        let state = repo::lock_chain_state(conn)?;
        let mut range = compact_range(&state).map_err(|e| anyhow::anyhow!("the stored log is inconsistent: {e}"))?;
        let behind = state.next_seq - state.tree_size;
        if behind < 0 {
            anyhow::bail!(
                "the stored log holds {} messages but the chain only {}",
                state.tree_size,
                state.next_seq
            );
        }
        if behind == 0 {
            return Ok(0);
        }
        tracing::info!(
            from = state.tree_size,
            to = state.next_seq,
            "adding the chain's messages to the log"
        );
        let mut at = state.tree_size;
        while at < state.next_seq {
            let count = CHUNK.min(state.next_seq - at);
            let leaves: Vec<Hash> = repo::leaf_hashes(conn, at, count)?
                .iter()
                .map(|h| Hash::try_from(h.as_slice()))
                .collect::<Result<_, _>>()
                .map_err(|_| anyhow::anyhow!("a leaf hash near seq {at} is not 32 bytes"))?;
            if leaves.len() as i64 != count {
                anyhow::bail!("messages {at}..{} are missing", at + count);
            }
            let tiles = extend(&mut range, leaves);
            if !tiles.is_empty() {
                repo::insert_tile_hashes(conn, &tiles)?;
            }
            at += count;
        }
        repo::update_chain_state(
            conn,
            &repo::ChainUpdate {
                next_seq: state.next_seq,
                block_count: state.block_count,
                head_hash: &state.head_hash,
                tree_size: state.next_seq,
                compact_range: &encode_range(&range),
            },
        )?;
        Ok(u64::try_from(behind).unwrap_or_default())
    })
}

/// Signs and stores checkpoints.
#[derive(Debug)]
pub struct Publisher {
    pool: DbPool,
    key: SigningKey,
    origin: String,
    published: Option<u64>,
    notify: Option<tokio::sync::watch::Sender<Option<crate::witnessing::Published>>>,
    events: Option<crate::routes::events::EventHub>,
}

impl Publisher {
    /// A publisher for the log `origin`, signing with `key`.
    pub fn new(pool: DbPool, key: SigningKey, origin: String) -> Self {
        Self {
            pool,
            key,
            origin,
            published: None,
            notify: None,
            events: None,
        }
    }

    /// Also hands each checkpoint it publishes (once stored) to `notify`:
    /// the witnessing task.
    pub fn notify(mut self, notify: tokio::sync::watch::Sender<Option<crate::witnessing::Published>>) -> Self {
        self.notify = Some(notify);
        self
    }

    /// Also hands each checkpoint it publishes (once stored) to the event
    /// stream's readers of this process.
    pub fn events(mut self, hub: crate::routes::events::EventHub) -> Self {
        self.events = Some(hub);
        self
    }

    /// Publishes a checkpoint if the committed tree is larger than the last
    /// one published (or none was); returns the size published, if any.
    pub fn publish_once(&mut self) -> Result<Option<u64>, StoreError> {
        let mut conn = self.pool.get()?;
        if self.published.is_none() {
            self.published = repo::latest_checkpoint(&mut conn)?.and_then(|c| u64::try_from(c.tree_size).ok());
        }
        let state = repo::chain_state(&mut conn)?;
        let range = compact_range(&state).map_err(|e| StoreError::Internal(anyhow::anyhow!(e)))?;
        if self.published.is_some_and(|p| p >= range.size()) {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size: range.size(),
            root: range.root(),
            extensions: Vec::new(),
        };
        let note = checkpoint
            .sign(&self.key)
            .map_err(|e| StoreError::Internal(anyhow::anyhow!("signing the checkpoint: {e}")))?;
        let text = note.to_text();
        let row = CheckpointRow {
            tree_size: state.tree_size,
            root: checkpoint.root.to_vec(),
            note: text.clone(),
            published_at: now_ms(),
        };
        repo::insert_checkpoint(&mut conn, &row)?;
        if let Some(hub) = &self.events {
            hub.checkpointed(&row);
        }
        self.published = Some(range.size());
        if let Some(notify) = &self.notify {
            notify.send_replace(Some(crate::witnessing::Published {
                size: range.size(),
                note: text,
            }));
        }
        metrics::gauge!(m::CHECKPOINT_SIZE).set(range.size() as f64);
        tracing::debug!(size = range.size(), "checkpoint published");
        Ok(Some(range.size()))
    }

    /// Publishes every `interval` until the process ends. Failures are
    /// logged and retried at the next tick.
    pub fn spawn(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let result = tokio::task::spawn_blocking(move || {
                    let published = self.publish_once();
                    (self, published)
                })
                .await;
                match result {
                    Ok((publisher, published)) => {
                        self = publisher;
                        if let Err(e) = published {
                            tracing::warn!(error = %e, "publishing a checkpoint failed; retrying");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the checkpoint publisher stopped");
                        return;
                    }
                }
            }
        })
    }
}

/// Publishes the first checkpoint at start-up, so `GET /checkpoint` always
/// answers.
pub fn publish_now(publisher: &mut Publisher) -> anyhow::Result<()> {
    publisher
        .publish_once()
        .map(drop)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("publishing the first checkpoint")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use sealchain_shared::merkle::{leaf_hash, root};

    #[test]
    fn extend_reports_each_tile_hash_once_and_the_range_round_trips() {
        let leaves: Vec<Hash> = (0u32..70_000).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut range = CompactRange::new();
        let mut tiles = extend(&mut range, leaves[..1000].iter().copied());
        tiles.extend(extend(&mut range, leaves[1000..].iter().copied()));
        // 273 full level-1 tile hashes and 1 level-2 (65,536 leaves).
        assert_eq!(tiles.iter().filter(|t| t.level == 1).count(), 273);
        assert_eq!(tiles.iter().filter(|t| t.level == 2).count(), 1);
        let t = &tiles.iter().find(|t| t.level == 1 && t.idx == 5).unwrap();
        assert_eq!(t.hash, root(&leaves[5 * 256..6 * 256]).to_vec());
        let two = tiles.iter().find(|t| t.level == 2).unwrap();
        assert_eq!(two.hash, root(&leaves[..65_536]).to_vec());
        assert_eq!(range.root(), root(&leaves));

        let state = ChainState {
            id: true,
            block_size: 100,
            signing_key: vec![0; 32],
            next_seq: 70_000,
            block_count: 700,
            head_hash: vec![0; 32],
            created_at: 0,
            origin: None,
            tree_size: 70_000,
            compact_range: encode_range(&range),
        };
        assert_eq!(compact_range(&state).unwrap(), range);
        let broken = ChainState {
            tree_size: 70_001,
            ..state
        };
        assert!(compact_range(&broken).is_err());
    }
}
