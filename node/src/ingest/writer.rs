//! The single writer: group commit and block sealing.
//!
//! One thread takes whatever verified messages are queued (up to
//! `max_batch`) and commits them in one transaction. The work splits in two:
//!
//! - [`plan`] is pure: given the chain's next seq, the batch, and what the
//!   database already holds under the batch's (sender, nonce) pairs, it
//!   decides every message's fate — a new seq, the original receipt of a
//!   resend (same `leaf_hash`), or `duplicate` (another `leaf_hash` under a
//!   used pair) — and which blocks become full ([`blocks_to_seal`]).
//! - `Writer::commit` is the transaction shell around it: lock the chain
//!   state row (`SELECT … FOR UPDATE`, so writers in other node processes
//!   on the same database wait their turn), extend the log's tree with the
//!   plan's rows (`crate::log`), seal the full blocks, and store the rows,
//!   tile hashes, blocks and the new chain state in one statement
//!   ([`repo::append`]), then commit: four round trips for a batch that
//!   seals nothing, five for one that seals.
//!
//! Before either, each sender gets its number (`senders.id`, which
//! messages hold instead of the 32-byte key): from the writer's memory, or
//! from one statement that numbers the batch's new senders and commits by
//! itself ([`SenderIds`]), so a number the writer keeps is a stored one
//! whatever becomes of the batch.
//!
//! The pairs are not looked up first: a batch assumes it holds no resend,
//! and the unique index on (sender, nonce) tells when one does. The
//! transaction then rolls back and the batch is planned again with the
//! pairs looked up ([`Lookup::First`]), as are the next
//! [`LOOK_UP_AFTER_RESEND`] batches, since resends come in bursts (after a
//! failover, say).
//!
//! Only then is each request answered. A failure before COMMIT was sent
//! stored nothing, and the batch is retried once on a fresh connection (the
//! first batch after a database restart meets a dead connection). A failure
//! of the COMMIT itself is ambiguous: the batch may be stored, so the answer
//! says so, and a resend of the same message is answered with its original
//! receipt (PROTOCOL §4). A chain found inconsistent stops the writer: the
//! node refuses to extend a chain it cannot vouch for, and `/readyz` says so.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::pg::PgConnection;
use sealchain_shared::block::BlockHeader;
use sealchain_shared::{Hash, SigningKey, merkle, now_ms};
use tokio::sync::{mpsc, oneshot};

use super::validate::Verified;
use crate::db::models::{BlockRow, ChainState, MessageRow, TileHashRow};
use crate::db::repo::StoredMessage;
use crate::db::{DbPool, PooledConn, StoreError, repo};
use crate::log;
use crate::metrics as m;

/// What became of a submitted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at `seq` by this batch.
    Accepted {
        /// The assigned seq.
        seq: u64,
        /// The node's receive time, Unix ms.
        received_at: i64,
    },
    /// The same message (same sender, nonce and leaf hash) was stored
    /// before, at `seq`: answered with its original receipt.
    Resent {
        /// The seq it was stored at.
        seq: u64,
        /// Its original receive time.
        received_at: i64,
    },
    /// (sender, nonce) was used before by another message.
    Duplicate,
    /// The client may retry; the detail says whether the message may
    /// already be stored.
    Unavailable(String),
}

/// Why a message was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is full.
    Full,
    /// The writer has stopped.
    Stopped,
}

struct Job {
    message: Verified,
    reply: oneshot::Sender<Outcome>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

/// Consecutive failed write attempts after which the node reports itself
/// not ready.
pub const UNREADY_AFTER_FAILURES: u64 = 3;

/// How often a failing writer with nothing to do tries the database again.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Batches that look up their pairs first after a batch met a resend.
pub const LOOK_UP_AFTER_RESEND: u32 = 64;

/// Whether a batch looks up its (sender, nonce) pairs before it inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Look them up, and plan resends and duplicates from what is stored.
    First,
    /// Insert as if none were stored; a stored pair fails the insert with
    /// [`WriteError::Resent`], and nothing is written.
    OnConflict,
}

/// The writer's health, shared with `/readyz` and the metrics.
#[derive(Debug)]
pub struct WriterHealth {
    alive: AtomicBool,
    consecutive_failures: AtomicU64,
}

impl WriterHealth {
    fn new() -> Self {
        metrics::gauge!(m::WRITER_ALIVE).set(1.0);
        metrics::gauge!(m::WRITER_FAILURES).set(0.0);
        Self {
            alive: AtomicBool::new(true),
            consecutive_failures: AtomicU64::new(0),
        }
    }

    /// Whether the writer thread is running.
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Write attempts (batches or idle probes) that failed since the last
    /// success.
    pub fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Ordering::Acquire)
    }

    /// Why the writer cannot take messages now, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !self.alive() {
            return Some("the writer has stopped (see the node's log)".into());
        }
        let failures = self.consecutive_failures();
        (failures >= UNREADY_AFTER_FAILURES)
            .then(|| format!("the writer's last {failures} attempts to write to the database failed"))
    }

    fn succeeded(&self) {
        self.consecutive_failures.store(0, Ordering::Release);
        metrics::gauge!(m::WRITER_FAILURES).set(0.0);
    }

    fn failed(&self) {
        let n = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        metrics::gauge!(m::WRITER_FAILURES).set(n as f64);
    }

    fn stopped(&self) {
        self.alive.store(false, Ordering::Release);
        metrics::gauge!(m::WRITER_ALIVE).set(0.0);
    }
}

/// Marks the writer dead when its thread ends, however it ends (a panic
/// included).
struct AliveGuard(Arc<WriterHealth>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.stopped();
    }
}

/// The handlers' side of the queue.
#[derive(Debug, Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Job>,
    reply_timeout: Duration,
    health: Arc<WriterHealth>,
}

/// A place in the writer's queue, taken before the expensive checks so a
/// full queue is answered before any work is spent on the request.
#[derive(Debug)]
pub struct Slot {
    permit: mpsc::OwnedPermit<Job>,
    reply_timeout: Duration,
}

impl IngestHandle {
    /// Reserves a place in the queue, or says at once why there is none:
    /// memory stays bounded and nobody waits unboundedly.
    pub fn reserve(&self) -> Result<Slot, QueueError> {
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => {
                self.record_depth();
                Ok(Slot {
                    permit,
                    reply_timeout: self.reply_timeout,
                })
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(QueueError::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(QueueError::Stopped),
        }
    }

    /// The writer's health.
    pub fn health(&self) -> &WriterHealth {
        &self.health
    }

    fn record_depth(&self) {
        let depth = self.tx.max_capacity() - self.tx.capacity();
        metrics::gauge!(m::QUEUE_DEPTH).set(depth as f64);
    }
}

impl Slot {
    /// Queues a verified message in this place and waits for its commit.
    pub async fn submit(self, message: Verified) -> Outcome {
        let (reply, rx) = oneshot::channel();
        self.permit.send(Job { message, reply });
        match tokio::time::timeout(self.reply_timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Unavailable("the writer stopped before answering; resend the same message".into()),
            Err(_) => Outcome::Unavailable(
                "timed out waiting for the database; the message may still be committed: \
                 resend the same message to get its receipt"
                    .into(),
            ),
        }
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

/// Where the writer hands the blocks of each committed batch (in index
/// order), after its COMMIT: the event stream's hub.
pub type OnSealed = Box<dyn Fn(&[BlockRow]) + Send>;

/// Starts the writer thread. It runs until every [`IngestHandle`] is
/// dropped and the queue is drained, or until it finds the stored chain
/// inconsistent.
pub fn spawn(
    pool: DbPool,
    key: SigningKey,
    config: WriterConfig,
    on_sealed: OnSealed,
) -> std::io::Result<(IngestHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
    let health = Arc::new(WriterHealth::new());
    let handle = IngestHandle {
        tx,
        reply_timeout: config.reply_timeout,
        health: health.clone(),
    };
    let writer = Writer {
        pool,
        conn: None,
        key,
        block_size: config.block_size,
        health,
        look_up_left: 0,
        known: None,
        senders: SenderIds::default(),
        on_sealed,
    };
    let max_batch = config.max_batch.max(1);
    let thread = std::thread::Builder::new()
        .name("sealchain-writer".into())
        .spawn(move || writer.run(rx, max_batch))?;
    Ok((handle, thread))
}

/// The `application_name` of the writer's database session.
pub const APPLICATION_NAME: &str = "sealchain-writer";

struct Writer {
    pool: DbPool,
    /// Kept between batches; dropped after a failed transaction, which may
    /// mean the connection is broken.
    conn: Option<PooledConn>,
    key: SigningKey,
    block_size: u32,
    health: Arc<WriterHealth>,
    /// Batches left that look up their pairs first.
    look_up_left: u32,
    /// The chain state this writer's last batch stored; `None` at first
    /// and after any failure, until a batch succeeds under the lock.
    known: Option<ChainState>,
    /// The numbers of the senders it wrote for lately.
    senders: SenderIds,
    on_sealed: OnSealed,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
        let _guard = AliveGuard(self.health.clone());
        loop {
            let first = if self.health.consecutive_failures() > 0 {
                // While failing, probe the database when idle, so the node
                // becomes ready again as soon as it is back.
                match rx.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        std::thread::sleep(PROBE_INTERVAL);
                        if rx.is_empty() {
                            self.probe();
                        }
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.blocking_recv() {
                    Some(job) => job,
                    None => break,
                }
            };
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
            let messages: Vec<&Verified> = batch.iter().map(|j| &j.message).collect();
            let (outcomes, halt) = self.commit(&messages);
            metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
            if halt {
                // Unready before anyone hears why: a client told "the chain
                // is inconsistent" must find /readyz saying so.
                self.health.stopped();
            }
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                // The client may have gone; a resend of the same message is
                // answered with its receipt.
                let _ = job.reply.send(outcome);
            }
            if halt {
                tracing::error!(
                    "the writer stopped: the stored chain is inconsistent; no message will be accepted \
                     until an operator has repaired the database"
                );
                // Dropping the receiver answers everything still queued.
                return;
            }
        }
        tracing::info!("writer drained its queue and stopped");
    }

    /// The writer's connection ([`writer_connection`]).
    fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        writer_connection(&self.pool, &mut self.conn)
    }

    /// The number of every message's sender, in batch order: from memory,
    /// or numbered by the database (a statement that commits by itself,
    /// before the batch's write, so that the numbers kept are stored ones
    /// whatever becomes of the batch).
    fn sender_ids(&mut self, batch: &[&Verified]) -> Result<Vec<i64>, StoreError> {
        if let Some(ids) = self.senders.known(batch) {
            return Ok(ids);
        }
        let conn = writer_connection(&self.pool, &mut self.conn)?;
        self.senders.number(conn, batch)
    }

    /// Checks that a write could happen now (the chain state row can be
    /// locked), without writing.
    fn probe(&mut self) {
        let result = self
            .connection()
            .and_then(|conn| conn.transaction(|conn| repo::lock_chain_state(conn).map(drop).map_err(StoreError::from)));
        match result {
            Ok(()) => {
                tracing::info!("the database is writable again");
                self.health.succeeded();
            }
            Err(e) => {
                self.conn = None;
                self.health.failed();
                tracing::warn!(error = %e, failures = self.health.consecutive_failures(), "writer probe failed");
            }
        }
    }

    /// Commits one batch; returns each message's outcome and whether the
    /// writer must stop.
    ///
    /// When this writer knows the chain state its last batch left, the
    /// batch goes first as one statement guarded by that state
    /// ([`write_if_unchanged`]); if the state moved on, or the statement
    /// fails, it is written under the lock. A guarded statement whose
    /// connection broke may have committed: it is then written under the
    /// lock with its pairs looked up, which finds it if it was stored and
    /// answers with the receipts it got.
    fn commit(&mut self, batch: &[&Verified]) -> (Vec<Outcome>, bool) {
        let unavailable = |detail: &str| vec![Outcome::Unavailable(detail.to_owned()); batch.len()];
        let mut retried = false;
        // The next seq a guarded statement of this batch that may have
        // committed planned from.
        let mut maybe_stored_from: Option<i64> = None;
        let mut lookup = if self.look_up_left > 0 {
            self.look_up_left -= 1;
            Lookup::First
        } else {
            Lookup::OnConflict
        };
        loop {
            let mut reached_commit = false;
            let key = self.key.clone();
            let block_size = self.block_size;
            // Taken: kept only once a batch has succeeded.
            let known = self.known.take().filter(|_| lookup == Lookup::OnConflict);
            let planned_from = known.as_ref().map(|k| k.next_seq);
            let how = if known.is_some() { "one_statement" } else { "locked" };
            let result = self.sender_ids(batch).map_err(WriteError::Store).and_then(|ids| {
                let conn = self.connection().map_err(WriteError::Store)?;
                match known {
                    Some(known) => write_if_unchanged(conn, &key, block_size, batch, &ids, &known),
                    None => conn
                        .transaction(|conn| {
                            let written = write_batch(conn, &key, block_size, batch, &ids, lookup)?;
                            // The body succeeded: what fails from here on is the
                            // COMMIT, whose fate the node cannot know.
                            reached_commit = true;
                            Ok(written)
                        })
                        .map(Some),
                }
            });
            match result {
                Ok(Some(Written {
                    mut outcomes,
                    blocks,
                    state,
                })) => {
                    if let Some(from) = maybe_stored_from {
                        attribute_to_this_batch(&mut outcomes, from);
                    }
                    self.known = Some(state);
                    self.health.succeeded();
                    (self.on_sealed)(&blocks);
                    let sealed = blocks.len() as u64;
                    let accepted = outcomes
                        .iter()
                        .filter(|o| matches!(o, Outcome::Accepted { .. }))
                        .count();
                    tracing::debug!(size = batch.len(), accepted, sealed, "batch committed");
                    metrics::counter!(m::BLOCKS_SEALED).increment(sealed);
                    metrics::counter!(m::BATCHES, "write" => how).increment(1);
                    return (outcomes, false);
                }
                Ok(None) => {
                    // Nothing stored: the chain moved on (another node
                    // process wrote); write it under the lock.
                    metrics::counter!(m::STALE_CHAIN_STATE).increment(1);
                    tracing::debug!(
                        size = batch.len(),
                        "the chain state changed since this writer's last batch"
                    );
                }
                Err(WriteError::Resent) => {
                    // Rolled back, nothing stored: plan it again knowing
                    // what is stored.
                    metrics::counter!(m::RESEND_LOOKUPS).increment(1);
                    tracing::debug!(size = batch.len(), "a batch holds a resend; looking its pairs up");
                    lookup = Lookup::First;
                    self.look_up_left = LOOK_UP_AFTER_RESEND;
                }
                Err(WriteError::Corrupt(detail)) => {
                    self.conn = None;
                    self.health.failed();
                    tracing::error!(
                        detail,
                        size = batch.len(),
                        "batch rolled back: the stored chain is inconsistent"
                    );
                    return (
                        unavailable("the node found its stored chain inconsistent and stopped accepting messages"),
                        true,
                    );
                }
                Err(WriteError::MaybeStored(e)) if !retried => {
                    // Written again under the lock with its pairs looked
                    // up: that finds the batch if the statement stored it.
                    self.conn = None;
                    retried = true;
                    maybe_stored_from = planned_from;
                    lookup = Lookup::First;
                    tracing::warn!(error = %e, size = batch.len(), "the connection broke during a batch's statement; writing it again with its pairs looked up");
                }
                Err(e) if reached_commit || maybe_stored_from.is_some() || matches!(e, WriteError::MaybeStored(_)) => {
                    self.conn = None;
                    self.health.failed();
                    tracing::error!(error = %e, size = batch.len(), "COMMIT failed; the batch may or may not be stored");
                    return (
                        unavailable(
                            "the database failed while committing; the message may be stored: \
                             resend the same message to get its receipt",
                        ),
                        false,
                    );
                }
                Err(e) if !retried => {
                    // Nothing was stored: try once more on a fresh connection.
                    self.conn = None;
                    retried = true;
                    tracing::warn!(error = %e, size = batch.len(), "batch failed before COMMIT; retrying once on a new connection");
                }
                Err(e) => {
                    self.conn = None;
                    self.health.failed();
                    tracing::error!(error = %e, size = batch.len(), "batch rolled back");
                    return (
                        unavailable("the database is unavailable; nothing was stored, retry shortly"),
                        false,
                    );
                }
            }
        }
    }
}

/// The connection kept in `slot`, or a new one from `pool`, tagged so
/// operators (and tests) can find the writer's session in
/// `pg_stat_activity`. (Of the writer's fields, it borrows only these two,
/// so the writer can use its others alongside.)
fn writer_connection<'a>(pool: &DbPool, slot: &'a mut Option<PooledConn>) -> Result<&'a mut PgConnection, StoreError> {
    if slot.is_none() {
        let mut conn = pool.get()?;
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("SET application_name = '{APPLICATION_NAME}'")),
            &mut *conn,
        )?;
        *slot = Some(conn);
    }
    slot.as_deref_mut()
        .ok_or_else(|| StoreError::Internal(anyhow::anyhow!("no connection")))
}

/// A message of a batch written again after a statement that may have
/// committed it, found stored at a seq from `from` on (where that statement
/// put the batch): it was that statement that stored it, so it was
/// accepted now, not resent. A second copy of it in the same batch stays
/// a resend, as it would have been had the statement's answer arrived.
fn attribute_to_this_batch(outcomes: &mut [Outcome], from: i64) {
    let mut accepted = std::collections::HashSet::new();
    for outcome in outcomes {
        if let Outcome::Resent { seq, received_at } = *outcome
            && i64::try_from(seq).is_ok_and(|seq| seq >= from)
            && accepted.insert(seq)
        {
            *outcome = Outcome::Accepted { seq, received_at };
        }
    }
}

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored chain is inconsistent.
    #[error("the stored chain is inconsistent: {0}")]
    Corrupt(String),
    /// A batch written with [`Lookup::OnConflict`] holds a (sender, nonce)
    /// pair that is stored already; nothing was written.
    #[error("a message of the batch uses a (sender, nonce) pair that is stored already")]
    Resent,
    /// The connection broke during a statement that commits by itself
    /// ([`write_if_unchanged`]): the batch may be stored.
    #[error("the connection broke while the batch was being stored; it may be stored: {0}")]
    MaybeStored(StoreError),
}

impl From<diesel::result::Error> for WriteError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(e.into())
    }
}

/// An insert of the writer's that meets an existing row: the writer holds
/// the chain state lock and its plan follows from that state, so the
/// database holds rows the chain state does not account for (written
/// behind the node's back). The chain is inconsistent; retrying cannot
/// help.
///
/// With [`Lookup::OnConflict`], a stored (sender, nonce) pair is not that:
/// it is a resend or a duplicate the plan did not know of.
fn unaccounted(lookup: Lookup) -> impl FnOnce(diesel::result::Error) -> WriteError {
    move |e| match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info) => {
            if lookup == Lookup::OnConflict && info.constraint_name() == Some(PAIR_CONSTRAINT) {
                return WriteError::Resent;
            }
            WriteError::Corrupt(format!(
                "rows the chain state has not assigned already exist: {} ({})",
                info.message(),
                info.details().unwrap_or("no detail")
            ))
        }
        other => other.into(),
    }
}

/// The unique constraint on `messages (sender_id, nonce)`: a sender has
/// one number, so it is unique on (sender, nonce).
const PAIR_CONSTRAINT: &str = "messages_sender_nonce_key";

/// How many sender numbers a writer keeps in memory (40 bytes each, and
/// the map's own): enough for every sender of a busy log, and bounded for
/// one where every message comes from a new key.
const SENDER_IDS_KEPT: usize = 100_000;

/// How many times [`SenderIds::number`] asks for the numbers of a batch's
/// new senders: a second time when another node process numbered one of
/// them at the same moment (then the second sees it).
const SENDER_ID_ATTEMPTS: usize = 3;

/// The numbers of the senders a writer wrote for lately (`senders.id`,
/// which messages hold instead of the 32-byte key). Numbers never change
/// once stored, so a number kept is right for as long as it is kept; only
/// numbers read back from committed rows are kept. When full, it forgets
/// everything and starts again.
#[derive(Debug, Default)]
pub struct SenderIds {
    ids: HashMap<[u8; 32], i64>,
}

impl SenderIds {
    /// Every message's sender number, in batch order, if all are known.
    fn known(&self, batch: &[&Verified]) -> Option<Vec<i64>> {
        batch.iter().map(|m| self.ids.get(&m.sender).copied()).collect()
    }

    /// Every message's sender number, in batch order, numbering the new
    /// senders in the database ([`repo::sender_ids`]). Run it outside a
    /// transaction: a number it keeps must be committed.
    pub fn number(&mut self, conn: &mut PgConnection, batch: &[&Verified]) -> Result<Vec<i64>, StoreError> {
        if self.ids.len() + batch.len() > SENDER_IDS_KEPT {
            self.ids.clear();
        }
        let mut missing: Vec<&[u8]> = batch
            .iter()
            .filter(|m| !self.ids.contains_key(&m.sender))
            .map(|m| m.sender.as_slice())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        for _ in 0..SENDER_ID_ATTEMPTS {
            if missing.is_empty() {
                break;
            }
            for row in repo::sender_ids(conn, &missing)? {
                let key = <[u8; 32]>::try_from(row.key.as_slice())
                    .map_err(|_| StoreError::Internal(anyhow::anyhow!("a sender key in senders is not 32 bytes")))?;
                self.ids.insert(key, row.id);
            }
            missing.retain(|k| !self.ids.contains_key(*k));
        }
        self.known(batch).ok_or_else(|| {
            StoreError::Internal(anyhow::anyhow!(
                "{} senders of the batch got no number after {SENDER_ID_ATTEMPTS} attempts",
                missing.len()
            ))
        })
    }
}

/// A batch's plan: the rows to insert and every message's outcome, in
/// batch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// New messages, with consecutive seqs from the chain's `next_seq`.
    pub rows: Vec<MessageRow>,
    /// One outcome per message of the batch.
    pub outcomes: Vec<Outcome>,
    /// The chain's `next_seq` after the batch.
    pub next_seq: i64,
}

/// Decides the fate of every message of a batch (pure: no database).
///
/// `sender_ids[i]` is the number of `batch[i]`'s sender. `stored` holds what the database already has under the batch's
/// (sender, nonce) pairs. A pair stored with the same leaf hash is a
/// resend, answered with the stored seq and time; with another leaf hash
/// it is a duplicate. Within the batch the first message under a pair wins,
/// and later ones are judged against it the same way.
pub fn plan(
    next_seq: i64,
    received_at: i64,
    batch: &[&Verified],
    sender_ids: &[i64],
    stored: &HashMap<([u8; 32], [u8; 16]), StoredMessage>,
) -> Plan {
    assert_eq!(batch.len(), sender_ids.len(), "one sender number per message");
    // (sender, nonce) → (leaf hash, seq, received_at) of what this batch
    // accepted so far.
    let mut accepted: HashMap<([u8; 32], [u8; 16]), (Hash, i64)> = HashMap::new();
    let mut next = next_seq;
    let mut rows = Vec::with_capacity(batch.len());
    let mut outcomes = Vec::with_capacity(batch.len());
    for (m, &sender_id) in batch.iter().zip(sender_ids) {
        let pair = (m.sender, m.nonce);
        let earlier = stored
            .get(&pair)
            .map(|s| (s.leaf_hash.as_slice() == m.leaf_hash, s.seq, s.received_at))
            .or_else(|| {
                accepted
                    .get(&pair)
                    .map(|(leaf, seq)| (*leaf == m.leaf_hash, *seq, received_at))
            });
        let outcome = match earlier {
            Some((true, seq, at)) => match u64::try_from(seq) {
                Ok(seq) => Outcome::Resent { seq, received_at: at },
                Err(_) => Outcome::Duplicate,
            },
            Some((false, _, _)) => Outcome::Duplicate,
            None => {
                accepted.insert(pair, (m.leaf_hash, next));
                rows.push(MessageRow {
                    seq: next,
                    sender_id,
                    sender: m.sender.to_vec(),
                    nonce: m.nonce.to_vec(),
                    signature: m.signature.to_vec(),
                    message: m.message_bytes.clone(),
                    leaf_hash: m.leaf_hash.to_vec(),
                    received_at,
                });
                let seq = u64::try_from(next).unwrap_or_default();
                next += 1;
                Outcome::Accepted { seq, received_at }
            }
        };
        outcomes.push(outcome);
    }
    Plan {
        rows,
        outcomes,
        next_seq: next,
    }
}

/// The indexes of the blocks that are full once the chain holds `next_seq`
/// messages and `block_count` blocks are sealed.
pub fn blocks_to_seal(block_count: i64, next_seq: i64, block_size: u32) -> Range<i64> {
    let full = next_seq / i64::from(block_size.max(1));
    block_count..full.max(block_count)
}

/// What a written batch did: each message's outcome, the blocks it sealed,
/// and the chain state it left (as stored).
#[derive(Debug)]
pub struct Written {
    /// One outcome per message of the batch, in batch order.
    pub outcomes: Vec<Outcome>,
    /// The blocks it sealed, in index order.
    pub blocks: Vec<BlockRow>,
    /// The chain state after it.
    pub state: ChainState,
}

/// The transaction body (the caller runs it in a transaction), with
/// `sender_ids` from [`SenderIds::number`]. Returns what the batch did. Also the body of `sealchain-node seed`, so a seeded
/// chain is built exactly as a node builds one. With [`Lookup::OnConflict`]
/// a batch that holds a stored pair fails with [`WriteError::Resent`]
/// (roll back, and write it again with [`Lookup::First`]).
pub fn write_batch(
    conn: &mut PgConnection,
    key: &SigningKey,
    block_size: u32,
    batch: &[&Verified],
    sender_ids: &[i64],
    lookup: Lookup,
) -> Result<Written, WriteError> {
    let state = repo::lock_chain_state(conn)?;
    let prepared = prepare(conn, key, block_size, batch, sender_ids, lookup, &state)?;
    repo::append(conn, &prepared.append()).map_err(unaccounted(lookup))?;
    Ok(prepared.written())
}

/// A batch written in one statement outside a transaction, planned from
/// `known`, the chain state this writer's last batch left: the statement
/// stores it only if the stored chain state is still exactly that
/// ([`repo::append_if_unchanged`]). `None`: it was not (another node
/// process wrote since, or someone changed the row), and nothing was
/// stored. One round trip instead of four for a batch that seals nothing;
/// one that seals reads its block's stored leaves first, as under the lock.
/// Pairs are not looked up ([`Lookup::OnConflict`]): looking them up
/// outside the lock would race with another writer's insert of the same
/// pair.
pub fn write_if_unchanged(
    conn: &mut PgConnection,
    key: &SigningKey,
    block_size: u32,
    batch: &[&Verified],
    sender_ids: &[i64],
    known: &ChainState,
) -> Result<Option<Written>, WriteError> {
    let prepared = prepare(conn, key, block_size, batch, sender_ids, Lookup::OnConflict, known)?;
    match repo::append_if_unchanged(conn, &prepared.append(), &chain_update(known)) {
        Ok(true) => Ok(Some(prepared.written())),
        Ok(false) => Ok(None),
        Err(e @ diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ClosedConnection, _)) => {
            // The server may have run the statement, and outside a
            // transaction committed it, without its answer reaching the
            // node.
            Err(WriteError::MaybeStored(e.into()))
        }
        Err(e) => Err(unaccounted(Lookup::OnConflict)(e)),
    }
}

/// A batch planned from a chain state, ready to store: each message's
/// outcome, the rows to insert, and the chain state after them.
struct Prepared {
    outcomes: Vec<Outcome>,
    rows: Vec<MessageRow>,
    tiles: Vec<TileHashRow>,
    blocks: Vec<BlockRow>,
    after: ChainState,
}

impl Prepared {
    /// What the append statement stores.
    fn append(&self) -> repo::Append<'_> {
        repo::Append {
            messages: &self.rows,
            tiles: &self.tiles,
            blocks: &self.blocks,
            state: chain_update(&self.after),
        }
    }

    /// What the batch did, once stored.
    fn written(self) -> Written {
        for block in &self.blocks {
            tracing::info!(index = block.idx, hash = %hex::encode(&block.hash), "sealed block");
        }
        Written {
            outcomes: self.outcomes,
            blocks: self.blocks,
            state: self.after,
        }
    }
}

/// Plans a batch from `state`, extends the log and seals what became
/// full; stores nothing but reads what it needs (the pairs with
/// [`Lookup::First`], a sealed block's stored leaves).
fn prepare(
    conn: &mut PgConnection,
    key: &SigningKey,
    block_size: u32,
    batch: &[&Verified],
    sender_ids: &[i64],
    lookup: Lookup,
    state: &ChainState,
) -> Result<Prepared, WriteError> {
    let stored = match lookup {
        Lookup::OnConflict => HashMap::new(),
        Lookup::First => {
            let senders: Vec<Vec<u8>> = batch.iter().map(|m| m.sender.to_vec()).collect();
            let nonces: Vec<Vec<u8>> = batch.iter().map(|m| m.nonce.to_vec()).collect();
            repo::stored_messages(conn, sender_ids, &senders, &nonces)?
                .into_iter()
                .filter_map(|s| {
                    let sender = <[u8; 32]>::try_from(s.sender.as_slice()).ok()?;
                    let nonce = <[u8; 16]>::try_from(s.nonce.as_slice()).ok()?;
                    Some(((sender, nonce), s))
                })
                .collect()
        }
    };
    let plan = plan(state.next_seq, now_ms(), batch, sender_ids, &stored);

    // The log (PROTOCOL §9): the same leaves, in the same order, in the
    // same transaction.
    let mut range = log::compact_range(state).map_err(WriteError::Corrupt)?;
    if range.size() != u64::try_from(state.next_seq).unwrap_or(u64::MAX) {
        return Err(WriteError::Corrupt(format!(
            "the log holds {} messages but the chain {}",
            range.size(),
            state.next_seq
        )));
    }
    let leaves = plan
        .rows
        .iter()
        .map(|r| Hash::try_from(r.leaf_hash.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| WriteError::Corrupt("a leaf hash is not 32 bytes".into()))?;
    let tiles = log::extend(&mut range, leaves.iter().copied());

    let mut head: Hash = state
        .head_hash
        .as_slice()
        .try_into()
        .map_err(|_| WriteError::Corrupt("head_hash is not 32 bytes".into()))?;
    let to_seal = blocks_to_seal(state.block_count, plan.next_seq, block_size);
    let mut blocks = Vec::new();
    if !to_seal.is_empty() {
        let size = i64::from(block_size);
        let block_leaves = sealed_leaves(conn, to_seal.start * size, state.next_seq, &leaves)?;
        for index in to_seal.clone() {
            // A block short of messages is refused by `seal_block`.
            let from = usize::try_from((index - to_seal.start) * size).unwrap_or(usize::MAX);
            let leaves = block_leaves.get(from..).unwrap_or_default();
            let leaves = &leaves[..leaves.len().min(block_size as usize)];
            let (block, hash) = seal_block(key, index, size, head, leaves)?;
            head = hash;
            blocks.push(block);
        }
    }
    let after = ChainState {
        next_seq: plan.next_seq,
        block_count: to_seal.end,
        head_hash: head.to_vec(),
        tree_size: i64::try_from(range.size()).unwrap_or(i64::MAX),
        compact_range: log::encode_range(&range),
        ..state.clone()
    };
    Ok(Prepared {
        outcomes: plan.outcomes,
        rows: plan.rows,
        tiles,
        blocks,
        after,
    })
}

/// The columns of a chain state the writer writes (and a guarded statement
/// checks).
fn chain_update(state: &ChainState) -> repo::ChainUpdate<'_> {
    repo::ChainUpdate {
        next_seq: state.next_seq,
        block_count: state.block_count,
        head_hash: &state.head_hash,
        tree_size: state.tree_size,
        compact_range: &state.compact_range,
    }
}

/// The leaf hashes of the messages from `first_seq` on, in seq order: those
/// stored before this batch (up to `next_seq`, read back), then the batch's
/// own `batch_leaves` (from seq `next_seq` on). Every stored one must be
/// there.
fn sealed_leaves(
    conn: &mut PgConnection,
    first_seq: i64,
    next_seq: i64,
    batch_leaves: &[Hash],
) -> Result<Vec<Hash>, WriteError> {
    if first_seq >= next_seq {
        // The block starts within the batch.
        let skip = usize::try_from(first_seq - next_seq).unwrap_or(usize::MAX);
        return Ok(batch_leaves.get(skip..).unwrap_or_default().to_vec());
    }
    let expected = next_seq - first_seq;
    let mut leaves = repo::leaf_hashes(conn, first_seq, expected)?
        .into_iter()
        .map(|h| <Hash>::try_from(h.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| WriteError::Corrupt(format!("a leaf hash from seq {first_seq} on is not 32 bytes")))?;
    if leaves.len() as i64 != expected {
        return Err(WriteError::Corrupt(format!(
            "the block to seal from seq {first_seq} should have {expected} messages stored before seq \
             {next_seq}, found {}",
            leaves.len()
        )));
    }
    leaves.extend_from_slice(batch_leaves);
    Ok(leaves)
}

/// Seals block `index` over its messages' `leaves`; returns its row and its
/// hash (pure: the caller stores the row).
fn seal_block(
    key: &SigningKey,
    index: i64,
    size: i64,
    prev_hash: Hash,
    leaves: &[Hash],
) -> Result<(BlockRow, Hash), WriteError> {
    if leaves.len() as i64 != size {
        return Err(WriteError::Corrupt(format!(
            "block {index} should have {size} messages, found {}",
            leaves.len()
        )));
    }
    let first_seq = index * size;
    let corrupt = || WriteError::Corrupt(format!("block {index} is out of range"));
    let header = BlockHeader {
        index: u64::try_from(index).map_err(|_| corrupt())?,
        prev_hash,
        merkle_root: merkle::root(leaves),
        first_seq: u64::try_from(first_seq).map_err(|_| corrupt())?,
        message_count: u32::try_from(size).map_err(|_| corrupt())?,
        sealed_at: now_ms(),
    };
    let hash = header.hash();
    let signature = sealchain_shared::block::sign_block_hash(key, &hash);
    let row = BlockRow {
        idx: index,
        hash: hash.to_vec(),
        prev_hash: prev_hash.to_vec(),
        merkle_root: header.merkle_root.to_vec(),
        first_seq,
        message_count: i32::try_from(size).map_err(|_| corrupt())?,
        sealed_at: header.sealed_at,
        signer: key.verifying_key().to_bytes().to_vec(),
        signature: signature.to_bytes().to_vec(),
    };
    Ok((row, hash))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn message(sender: u8, nonce: u8, content: u8) -> Verified {
        Verified {
            sender: [sender; 32],
            nonce: [nonce; 16],
            ts: 0,
            signature: [content; 64],
            message_bytes: vec![content],
            leaf_hash: [content; 32],
        }
    }

    fn stored(seq: i64, leaf: u8, at: i64) -> StoredMessage {
        StoredMessage {
            sender: vec![],
            nonce: vec![],
            leaf_hash: vec![leaf; 32],
            seq,
            received_at: at,
        }
    }

    #[test]
    fn a_batch_found_stored_where_its_statement_put_it_was_accepted_by_it() {
        let resent = |seq| Outcome::Resent { seq, received_at: 5 };
        let accepted = |seq| Outcome::Accepted { seq, received_at: 5 };
        // Stored before the statement (seq 3), by it (10, 11, and 10 again
        // as an in-batch copy), a reuse, and a new message of the retry.
        let mut outcomes = vec![
            resent(3),
            resent(10),
            resent(11),
            resent(10),
            Outcome::Duplicate,
            accepted(12),
        ];
        attribute_to_this_batch(&mut outcomes, 10);
        assert_eq!(
            outcomes,
            [
                resent(3),
                accepted(10),
                accepted(11),
                resent(10),
                Outcome::Duplicate,
                accepted(12)
            ]
        );
    }

    #[test]
    fn new_messages_get_consecutive_seqs_from_next_seq() {
        let (a, b) = (message(1, 1, 10), message(2, 1, 11));
        let p = plan(41, 7, &[&a, &b], &[3, 8], &HashMap::new());
        assert_eq!(
            p.outcomes,
            [
                Outcome::Accepted {
                    seq: 41,
                    received_at: 7
                },
                Outcome::Accepted {
                    seq: 42,
                    received_at: 7
                }
            ]
        );
        assert_eq!(p.rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [41, 42]);
        assert_eq!(p.rows[1].leaf_hash, vec![11; 32]);
        assert_eq!(p.rows.iter().map(|r| r.sender_id).collect::<Vec<_>>(), [3, 8]);
        assert_eq!(p.next_seq, 43);
    }

    #[test]
    fn a_stored_message_sent_again_gets_its_original_seq_and_time() {
        let a = message(1, 1, 10);
        let db = HashMap::from([(([1; 32], [1; 16]), stored(5, 10, 1234))]);
        let p = plan(9, 7, &[&a], &[1], &db);
        assert_eq!(
            p.outcomes,
            [Outcome::Resent {
                seq: 5,
                received_at: 1234
            }]
        );
        assert!(p.rows.is_empty());
        assert_eq!(p.next_seq, 9, "a resend consumes no seq");
    }

    #[test]
    fn other_content_under_a_stored_pair_is_a_duplicate() {
        let a = message(1, 1, 99);
        let db = HashMap::from([(([1; 32], [1; 16]), stored(5, 10, 1234))]);
        let p = plan(9, 7, &[&a], &[1], &db);
        assert_eq!(p.outcomes, [Outcome::Duplicate]);
        assert!(p.rows.is_empty());
    }

    #[test]
    fn within_one_batch_the_first_wins_and_copies_get_its_receipt() {
        let first = message(1, 1, 10);
        let copy = first.clone();
        let other_content = message(1, 1, 20);
        let other_sender = message(2, 1, 20);
        let p = plan(
            0,
            7,
            &[&first, &copy, &other_content, &other_sender],
            &[1, 1, 1, 2],
            &HashMap::new(),
        );
        assert_eq!(
            p.outcomes,
            [
                Outcome::Accepted { seq: 0, received_at: 7 },
                Outcome::Resent { seq: 0, received_at: 7 },
                Outcome::Duplicate,
                Outcome::Accepted { seq: 1, received_at: 7 },
            ]
        );
        assert_eq!(p.rows.iter().map(|r| r.sender_id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(p.next_seq, 2);
    }

    #[test]
    fn full_blocks_are_sealed_and_only_those() {
        assert_eq!(blocks_to_seal(0, 99, 100), 0..0);
        assert_eq!(blocks_to_seal(0, 100, 100), 0..1);
        assert_eq!(blocks_to_seal(0, 250, 100), 0..2, "one batch may fill several blocks");
        assert_eq!(blocks_to_seal(2, 250, 100), 2..2);
        assert_eq!(blocks_to_seal(3, 250, 100), 3..3, "never a negative range");
        assert_eq!(blocks_to_seal(0, 5, 1), 0..5);
    }

    #[test]
    fn health_turns_unready_after_repeated_failures_and_back() {
        let h = WriterHealth::new();
        assert_eq!(h.problem(), None);
        for _ in 0..UNREADY_AFTER_FAILURES - 1 {
            h.failed();
        }
        assert_eq!(h.problem(), None, "a passing failure does not flap readiness");
        h.failed();
        assert!(h.problem().unwrap().contains("attempts"));
        h.succeeded();
        assert_eq!(h.problem(), None);
        let guard = AliveGuard(Arc::new(WriterHealth::new()));
        let shared = guard.0.clone();
        drop(guard);
        assert!(shared.problem().unwrap().contains("stopped"));
    }
}
