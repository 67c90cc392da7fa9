//! The single writer: group commit and block sealing.
//!
//! One thread takes whatever verified messages are queued (up to
//! `max_batch`) and, in one transaction:
//!
//! 1. locks the chain state row (`SELECT … FOR UPDATE`), so writers in other
//!    node processes on the same database wait their turn;
//! 2. drops duplicates — (sender, nonce) already stored or earlier in the
//!    batch — which consume no seq;
//! 3. gives the rest consecutive seqs and inserts them in one statement;
//! 4. seals every block that became full: Merkle root over its leaf hashes,
//!    previous hash, header hash, node signature;
//! 5. stores the new chain state and commits.
//!
//! Only then is each request answered. If anything fails, the transaction
//! rolls back and every message of the batch is answered `503 unavailable`:
//! none of them was acknowledged, so none is lost.

use std::collections::HashSet;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, PooledConnection};
use sealchain_shared::block::BlockHeader;
use sealchain_shared::{Hash, SigningKey, merkle, now_ms};
use tokio::sync::{mpsc, oneshot};

use super::validate::Verified;
use crate::db::models::{BlockRow, MessageRow};
use crate::db::{DbPool, repo};
use crate::metrics as m;

/// What became of a submitted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at `seq`.
    Accepted {
        /// The assigned seq.
        seq: u64,
        /// The node's receive time, Unix ms.
        received_at: i64,
    },
    /// (sender, nonce) was accepted before.
    Duplicate,
    /// Not stored; the client may retry.
    Unavailable(String),
}

struct Job {
    message: Verified,
    reply: oneshot::Sender<Outcome>,
}

/// The handlers' side of the queue.
#[derive(Debug, Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Job>,
    reply_timeout: Duration,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl IngestHandle {
    /// Queues a verified message and waits for its commit. A full queue is
    /// answered at once: memory stays bounded and nobody waits unboundedly.
    pub async fn submit(&self, message: Verified) -> Outcome {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job { message, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Outcome::Unavailable("the node is busy (write queue full); retry shortly".into());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Outcome::Unavailable("the node is shutting down".into());
            }
        }
        self.record_depth();
        match tokio::time::timeout(self.reply_timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Unavailable("the writer stopped".into()),
            Err(_) => Outcome::Unavailable(
                "timed out waiting for the database; the message may still be committed \
                 (a resend answers 409 duplicate if it was)"
                    .into(),
            ),
        }
    }

    fn record_depth(&self) {
        let depth = self.tx.max_capacity() - self.tx.capacity();
        metrics::gauge!(m::QUEUE_DEPTH).set(depth as f64);
    }
}

/// Settings of the writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Messages per block.
    pub block_size: u32,
    /// Queue capacity.
    pub queue_capacity: usize,
    /// Largest batch.
    pub max_batch: usize,
    /// How long a handler waits for its commit.
    pub reply_timeout: Duration,
}

/// Starts the writer thread. It runs until every [`IngestHandle`] is
/// dropped and the queue is drained.
pub fn spawn(pool: DbPool, key: SigningKey, config: WriterConfig) -> std::io::Result<(IngestHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
    let handle = IngestHandle {
        tx,
        reply_timeout: config.reply_timeout,
    };
    let thread = std::thread::Builder::new()
        .name("sealchain-writer".into())
        .spawn(move || run(rx, &pool, &key, config))?;
    Ok((handle, thread))
}

fn run(mut rx: mpsc::Receiver<Job>, pool: &DbPool, key: &SigningKey, config: WriterConfig) {
    let max_batch = config.max_batch.max(1);
    // The writer keeps its connection between batches (a pool checkout
    // tests the connection with a round trip) and gives it up after a
    // failed transaction, which may mean the connection is broken.
    let mut conn = None;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::with_capacity(max_batch.min(rx.len() + 1));
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::gauge!(m::QUEUE_DEPTH).set(rx.len() as f64);
        metrics::histogram!(m::BATCH_SIZE).record(batch.len() as f64);
        let started = Instant::now();
        let outcomes = commit(pool, &mut conn, key, config.block_size, &batch);
        metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            // The client may have gone; its message is committed anyway and
            // a resend will be answered 409 duplicate.
            let _ = job.reply.send(outcome);
        }
    }
    tracing::info!("writer drained its queue and stopped");
}

#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("the stored chain is inconsistent: {0}")]
    Corrupt(String),
}

fn commit(
    pool: &DbPool,
    held: &mut Option<PooledConnection<ConnectionManager<PgConnection>>>,
    key: &SigningKey,
    block_size: u32,
    batch: &[Job],
) -> Vec<Outcome> {
    let unavailable = |detail: &str| vec![Outcome::Unavailable(detail.to_owned()); batch.len()];
    let conn = match held {
        Some(conn) => conn,
        None => match pool.get() {
            Ok(conn) => held.insert(conn),
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "writer has no database connection");
                return unavailable("the database is unavailable; retry shortly");
            }
        },
    };
    match conn.transaction(|conn| write_batch(conn, key, block_size, batch)) {
        Ok((outcomes, sealed)) => {
            let accepted = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Accepted { .. }))
                .count();
            tracing::debug!(size = batch.len(), accepted, sealed, "batch committed");
            metrics::counter!(m::BLOCKS_SEALED).increment(sealed);
            outcomes
        }
        Err(e) => {
            *held = None;
            tracing::error!(error = %e, size = batch.len(), "batch rolled back");
            unavailable("the database is unavailable; nothing was stored, retry shortly")
        }
    }
}

/// The transaction body. Returns each job's outcome and how many blocks
/// were sealed.
fn write_batch(
    conn: &mut PgConnection,
    key: &SigningKey,
    block_size: u32,
    batch: &[Job],
) -> Result<(Vec<Outcome>, u64), WriteError> {
    let state = repo::lock_chain_state(conn)?;
    let senders: Vec<Vec<u8>> = batch.iter().map(|j| j.message.sender.to_vec()).collect();
    let nonces: Vec<Vec<u8>> = batch.iter().map(|j| j.message.nonce.to_vec()).collect();
    let mut seen: HashSet<(Vec<u8>, Vec<u8>)> = repo::stored_nonces(conn, &senders, &nonces)?
        .into_iter()
        .map(|n| (n.sender, n.nonce))
        .collect();

    let received_at = now_ms();
    let mut next_seq = state.next_seq;
    let mut rows = Vec::with_capacity(batch.len());
    let mut outcomes = Vec::with_capacity(batch.len());
    for (job, (sender, nonce)) in batch.iter().zip(senders.into_iter().zip(nonces)) {
        if !seen.insert((sender.clone(), nonce.clone())) {
            outcomes.push(Outcome::Duplicate);
            continue;
        }
        let m = &job.message;
        rows.push(MessageRow {
            seq: next_seq,
            sender,
            nonce,
            signature: m.signature.to_vec(),
            message: m.message_bytes.clone(),
            leaf_hash: m.leaf_hash.to_vec(),
            received_at,
        });
        outcomes.push(Outcome::Accepted {
            seq: u64::try_from(next_seq).map_err(|_| WriteError::Corrupt("negative next_seq".into()))?,
            received_at,
        });
        next_seq += 1;
    }
    if !rows.is_empty() {
        repo::insert_messages(conn, &rows)?;
    }

    let size = i64::from(block_size);
    let mut block_count = state.block_count;
    let mut head: Hash = state
        .head_hash
        .as_slice()
        .try_into()
        .map_err(|_| WriteError::Corrupt("head_hash is not 32 bytes".into()))?;
    let mut sealed = 0;
    while (block_count + 1) * size <= next_seq {
        head = seal_block(conn, key, block_count, size, head)?;
        block_count += 1;
        sealed += 1;
    }
    repo::update_chain_state(conn, next_seq, block_count, &head)?;
    Ok((outcomes, sealed))
}

/// Seals block `index` (all of whose messages are stored) and returns its hash.
fn seal_block(
    conn: &mut PgConnection,
    key: &SigningKey,
    index: i64,
    size: i64,
    prev_hash: Hash,
) -> Result<Hash, WriteError> {
    let first_seq = index * size;
    let leaves = repo::leaf_hashes(conn, first_seq, size)?
        .into_iter()
        .map(|h| <Hash>::try_from(h.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| WriteError::Corrupt(format!("a leaf hash of block {index} is not 32 bytes")))?;
    if leaves.len() as i64 != size {
        return Err(WriteError::Corrupt(format!(
            "block {index} should have {size} messages, found {}",
            leaves.len()
        )));
    }
    let corrupt = || WriteError::Corrupt(format!("block {index} is out of range"));
    let header = BlockHeader {
        index: u64::try_from(index).map_err(|_| corrupt())?,
        prev_hash,
        merkle_root: merkle::root(&leaves),
        first_seq: u64::try_from(first_seq).map_err(|_| corrupt())?,
        message_count: u32::try_from(size).map_err(|_| corrupt())?,
        sealed_at: now_ms(),
    };
    let hash = header.hash();
    let signature = sealchain_shared::block::sign_block_hash(key, &hash);
    repo::insert_block(
        conn,
        &BlockRow {
            idx: index,
            hash: hash.to_vec(),
            prev_hash: prev_hash.to_vec(),
            merkle_root: header.merkle_root.to_vec(),
            first_seq,
            message_count: i32::try_from(size).map_err(|_| corrupt())?,
            sealed_at: header.sealed_at,
            signer: key.verifying_key().to_bytes().to_vec(),
            signature: signature.to_bytes().to_vec(),
        },
    )?;
    tracing::info!(index, hash = %hex::encode(hash), "sealed block");
    Ok(hash)
}
