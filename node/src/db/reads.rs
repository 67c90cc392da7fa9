//! Where reads go: the primary, or a streaming replica of it
//! (`--read-database-url`).
//!
//! Writes are ordered and go through the primary; block, message, proof
//! and tile reads may be served by a hot standby that replays the primary's
//! WAL. A standby lags, so a read there could miss what the primary already
//! committed. Two facts make that safe to detect without asking the replica
//! for its position:
//!
//! - What the chain holds never changes once committed (a block, its
//!   messages, a tile), and a replica replays whole transactions, so a row
//!   the replica *has* is the primary's row. Only an absence — not found,
//!   not sealed, beyond the tree — may be the replica's lag: such answers
//!   are asked again of the primary.
//! - Answers that change as the chain grows (the head, the block count, a
//!   page with its `next`) are compared with the chain this node process
//!   has seen: every message it acknowledged, and every count it read. A
//!   replica answer older than that is asked again of the primary. So a
//!   client never sees the chain go back after this node showed it more,
//!   and never misses its own message.
//!
//! A replica that fails (down, too slow) is skipped for [`REPLICA_BACKOFF`]
//! and its reads go to the primary meanwhile. Without a replica every read
//! goes to the primary once, as before.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use diesel::pg::PgConnection;

use super::{DbPool, StoreError, build_pool, connect_with_retry, repo, run};
use crate::metrics as m;

/// How long reads avoid a replica that failed.
pub const REPLICA_BACKOFF: Duration = Duration::from_secs(1);

/// What this node process knows the primary holds at least.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// Sealed blocks.
    pub blocks: u64,
    /// Messages.
    pub messages: u64,
}

/// The read pools and what this process has seen of the chain.
#[derive(Debug)]
pub struct Reads {
    primary: DbPool,
    replica: Option<DbPool>,
    block_size: u64,
    /// A lower bound of the primary's `next_seq`.
    messages: AtomicU64,
    /// Sealed blocks seen (a lower bound; also implied by `messages`).
    blocks: AtomicU64,
    replica_failed_at: Mutex<Option<Instant>>,
}

impl Reads {
    /// Reads from `replica` when given (else from `primary`), knowing that
    /// the chain holds at least `next_seq` messages.
    pub fn new(primary: DbPool, replica: Option<DbPool>, block_size: u32, next_seq: u64) -> Self {
        let reads = Self {
            primary,
            replica,
            block_size: u64::from(block_size.max(1)),
            messages: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            replica_failed_at: Mutex::new(None),
        };
        reads.saw_messages(next_seq);
        reads
    }

    /// Whether reads go to a replica.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// What this process knows the primary holds at least.
    pub fn known(&self) -> Known {
        let messages = self.messages.load(Ordering::Acquire);
        Known {
            blocks: self.blocks.load(Ordering::Acquire).max(messages / self.block_size),
            messages,
        }
    }

    /// The chain holds at least `count` messages (a committed seq + 1).
    pub fn saw_messages(&self, count: u64) {
        self.messages.fetch_max(count, Ordering::AcqRel);
    }

    /// The chain holds at least `count` sealed blocks.
    pub fn saw_blocks(&self, count: u64) {
        self.blocks.fetch_max(count, Ordering::AcqRel);
    }

    fn replica_if_up(&self) -> Option<&DbPool> {
        let replica = self.replica.as_ref()?;
        let failed = self.replica_failed_at.lock().ok()?;
        match *failed {
            Some(at) if at.elapsed() < REPLICA_BACKOFF => None,
            _ => Some(replica),
        }
    }

    fn replica_failed(&self) {
        if let Ok(mut failed) = self.replica_failed_at.lock() {
            *failed = Some(Instant::now());
        }
    }

    /// Runs the read `f` on the replica, and again on the primary when the
    /// replica failed or `current` says its answer may be behind (see the
    /// module documentation); without a replica, once on the primary.
    pub async fn run<T, F, C>(&self, f: F, current: C) -> Result<T, StoreError>
    where
        F: Fn(&mut PgConnection) -> Result<T, StoreError> + Clone + Send + 'static,
        T: Send + 'static,
        C: FnOnce(&T, Known) -> bool,
    {
        if let Some(replica) = self.replica_if_up() {
            match run(replica, f.clone()).await {
                Ok(answer) if current(&answer, self.known()) => {
                    metrics::counter!(m::REPLICA_READS, "served" => "replica").increment(1);
                    return Ok(answer);
                }
                Ok(_) => {
                    metrics::counter!(m::REPLICA_READS, "served" => "primary_behind").increment(1);
                }
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "the read replica failed; reading from the primary");
                    self.replica_failed();
                    metrics::counter!(m::REPLICA_READS, "served" => "primary_replica_failed").increment(1);
                }
                Err(e) => return Err(e),
            }
        }
        run(&self.primary, f).await
    }
}

/// Connects to the read replica at `url` (waiting up to `connect_timeout`
/// for it to answer and to have replayed the chain's state row), checks
/// that it holds the same chain as the primary (block size and signing
/// key), and builds its pool.
pub fn connect_replica(
    url: &str,
    pool_size: u32,
    timeout: Duration,
    connect_timeout: Duration,
    block_size: u32,
    signing_key: &[u8; 32],
) -> anyhow::Result<DbPool> {
    let started = Instant::now();
    let mut conn = connect_with_retry(url, connect_timeout)
        .map_err(|e| e.context("connecting to the read replica (--read-database-url)"))?;
    let state = loop {
        // A replica that has not replayed the migrations yet has no table.
        match repo::chain_state(&mut conn) {
            Ok(state) => break state,
            Err(e) if started.elapsed() < connect_timeout => {
                tracing::warn!(error = %e, "the read replica has no chain state yet; waiting for it to replay");
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => bail!(
                "the read replica (--read-database-url) holds no chain after {:.0} s: {e};                  is it a streaming replica of --database-url?",
                started.elapsed().as_secs_f64()
            ),
        }
    };
    if state.signing_key != signing_key.as_slice() || state.block_size != i32::try_from(block_size)? {
        bail!(
            "the read replica (--read-database-url) holds another chain (node key {}, block size {}) than the              primary; point it at a streaming replica of --database-url",
            hex::encode(&state.signing_key),
            state.block_size
        );
    }
    drop(conn);
    build_pool(url, pool_size, timeout).map_err(|e| e.context("the read replica's pool"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn known_is_a_monotonic_lower_bound() {
        let pool =
            r2d2::Pool::builder().build_unchecked(super::super::Manager::new("postgres://nobody@127.0.0.1:1/none"));
        let reads = Reads::new(pool, None, 100, 250);
        assert_eq!(
            reads.known(),
            Known {
                blocks: 2,
                messages: 250
            }
        );
        reads.saw_messages(120);
        assert_eq!(reads.known().messages, 250, "never goes back");
        reads.saw_blocks(5);
        assert_eq!(
            reads.known(),
            Known {
                blocks: 5,
                messages: 250
            }
        );
        reads.saw_messages(701);
        assert_eq!(
            reads.known(),
            Known {
                blocks: 7,
                messages: 701
            }
        );
        assert!(!reads.has_replica());
    }
}
