//! The witness's durable state: per log, the newest checkpoint it cosigned
//! (tlog-witness: "the witness is only required to keep track of the latest
//! checkpoint it observed and verified"), in an embedded SQLite database.
//!
//! Durability and atomicity are the spec's two demands:
//!
//! > The witness MUST persist the new checkpoint before responding. Note
//! > that checking the old size against the latest checkpoint and
//! > persisting the new checkpoint must be performed atomically.
//!
//! [`Store::advance`] reads the log's state, lets the caller decide, and
//! writes the new state in one `BEGIN IMMEDIATE` transaction (the write
//! lock is taken before the read, so two requests — from this process or
//! another on the same file — run one after the other), and returns only
//! after the commit. The database runs in WAL mode with `synchronous =
//! FULL`: a commit is on disk (fsync) before it returns, so a `kill -9` or a
//! power cut after an answer cannot lose the checkpoint it cosigned.
//!
//! Refused requests whose log signature was valid (a different root at the
//! same size, a consistency proof that fails) are kept in `refusals`: the
//! spec allows it ("it might be proof of log misbehavior"), and they are
//! the evidence of a split view.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sealchain_shared::Hash;

/// The database file inside the state directory.
pub const STATE_FILE: &str = "witness.sqlite";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (disk full, I/O error, a locked file past the timeout).
    #[error("the witness state {}: {source}", .path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row breaks the schema's promises.
    #[error("the witness state {} is corrupt: {why}", .path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// What the witness remembers of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    /// The size of the newest checkpoint it cosigned.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
    /// That checkpoint as a note, the log's signature and the witness's
    /// cosignature included (served to monitors).
    pub checkpoint: String,
    /// The cosignature's timestamp, POSIX seconds.
    pub cosigned_at: u64,
}

/// What [`Store::advance`] does after the caller decided.
#[derive(Debug)]
pub enum Decision<T> {
    /// Store the new state, then answer `T`.
    Advance(LogState, T),
    /// Change nothing; record the refusal as evidence (`status`, `reason`,
    /// the request), then answer `T`.
    RefuseAndRecord(u16, String, T),
    /// Change nothing, record nothing.
    Refuse(T),
}

/// The state database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the state in `dir` (created with mode
    /// 0700 if missing).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(STATE_FILE);
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        sealchain_shared::keys::create_key_dir(dir).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            why: format!("cannot create the state directory: {e}"),
        })?;
        let conn = Connection::open(&path).map_err(sqlite)?;
        // Another witness process on the same file waits its turn.
        conn.busy_timeout(Duration::from_secs(10)).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS logs (
                 origin      TEXT PRIMARY KEY,
                 size        INTEGER NOT NULL CHECK (size >= 0),
                 root        BLOB NOT NULL CHECK (length(root) = 32),
                 checkpoint  TEXT NOT NULL,
                 cosigned_at INTEGER NOT NULL
             ) STRICT;
             CREATE TABLE IF NOT EXISTS refusals (
                 id       INTEGER PRIMARY KEY,
                 origin   TEXT NOT NULL,
                 at       INTEGER NOT NULL,
                 status   INTEGER NOT NULL,
                 reason   TEXT NOT NULL,
                 request  BLOB NOT NULL
             ) STRICT;",
        )
        .map_err(sqlite)?;
        Ok(Self { conn, path })
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        sqlite_error(&self.path, source)
    }

    /// The state of `origin`, `None` if the witness never cosigned for it.
    pub fn get(&self, origin: &str) -> Result<Option<LogState>, StoreError> {
        read(&self.conn, &self.path, origin)
    }

    /// How many refusals are on record for `origin`.
    pub fn refusals(&self, origin: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM refusals WHERE origin = ?1",
                params![origin],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or_default())
            .map_err(|e| self.sqlite(e))
    }

    /// Reads the state of `origin` and applies `decide`'s decision in one
    /// transaction that holds the database's write lock from the read to
    /// the commit; returns after the commit (on disk).
    pub fn advance<T>(
        &mut self,
        origin: &str,
        request: &[u8],
        now: u64,
        decide: impl FnOnce(Option<&LogState>) -> Decision<T>,
    ) -> Result<T, StoreError> {
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_error(path, e))?;
        let current = read(&tx, path, origin)?;
        let now_i = i64::try_from(now).unwrap_or(i64::MAX);
        let answer = match decide(current.as_ref()) {
            Decision::Advance(state, answer) => {
                let size = i64::try_from(state.size).map_err(|_| corrupt(path, "a size above 2^63 - 1"))?;
                let cosigned_at = i64::try_from(state.cosigned_at).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO logs (origin, size, root, checkpoint, cosigned_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root,
                         checkpoint = excluded.checkpoint, cosigned_at = excluded.cosigned_at",
                    params![origin, size, state.root.as_slice(), state.checkpoint, cosigned_at],
                )
                .map_err(|e| sqlite_error(path, e))?;
                answer
            }
            Decision::RefuseAndRecord(status, reason, answer) => {
                tx.execute(
                    "INSERT INTO refusals (origin, at, status, reason, request) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![origin, now_i, status, reason, request],
                )
                .map_err(|e| sqlite_error(path, e))?;
                answer
            }
            Decision::Refuse(answer) => answer,
        };
        tx.commit().map_err(|e| sqlite_error(path, e))?;
        Ok(answer)
    }
}

fn sqlite_error(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn corrupt(path: &Path, why: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        why: why.into(),
    }
}

fn read(conn: &Connection, path: &Path, origin: &str) -> Result<Option<LogState>, StoreError> {
    let row = conn
        .query_row(
            "SELECT size, root, checkpoint, cosigned_at FROM logs WHERE origin = ?1",
            params![origin],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )
        .optional()
        .map_err(|e| sqlite_error(path, e))?;
    let Some((size, root, checkpoint, cosigned_at)) = row else {
        return Ok(None);
    };
    Ok(Some(LogState {
        size: u64::try_from(size).map_err(|_| corrupt(path, "a negative size"))?,
        root: Hash::try_from(root.as_slice()).map_err(|_| corrupt(path, "a root that is not 32 bytes"))?,
        checkpoint,
        cosigned_at: u64::try_from(cosigned_at).map_err(|_| corrupt(path, "a negative timestamp"))?,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Barrier, Mutex};

    use super::*;

    fn state(size: u64) -> LogState {
        LogState {
            size,
            root: [size as u8; 32],
            checkpoint: format!("cp {size}\n"),
            cosigned_at: 1,
        }
    }

    /// Advances `origin` from `old` to `new` if the stored size is `old`.
    fn step(store: &mut Store, old: u64, new: u64) -> Result<(), u64> {
        store
            .advance("log", b"req", 5, |current| {
                let size = current.map_or(0, |c| c.size);
                if size == old {
                    Decision::Advance(state(new), Ok(()))
                } else {
                    Decision::Refuse(Err(size))
                }
            })
            .unwrap()
    }

    #[test]
    fn state_survives_reopening_and_refusals_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("log").unwrap(), None);
        step(&mut store, 0, 3).unwrap();
        assert_eq!(step(&mut store, 0, 4), Err(3));
        store
            .advance("log", b"evidence", 9, |_| {
                Decision::RefuseAndRecord(422, "bad proof".into(), ())
            })
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("log").unwrap(), Some(state(3)));
        assert_eq!(store.refusals("log").unwrap(), 1);
    }

    /// Two connections (as two processes would have) race from the same old
    /// size, many times: exactly one advances each time, and the state
    /// never goes back.
    #[test]
    fn concurrent_advances_from_one_old_size_cannot_both_win() {
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<Arc<Mutex<Store>>> = (0..2)
            .map(|_| Arc::new(Mutex::new(Store::open(dir.path()).unwrap())))
            .collect();
        let mut old = 0;
        for round in 0..50u64 {
            let barrier = Arc::new(Barrier::new(2));
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    let new = old + 1 + i as u64;
                    std::thread::spawn(move || {
                        barrier.wait();
                        step(&mut store.lock().unwrap(), old, new).map(|()| new)
                    })
                })
                .collect();
            let results: Vec<Result<u64, u64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let won: Vec<u64> = results.iter().filter_map(|r| r.ok()).collect();
            assert_eq!(won.len(), 1, "round {round}: {results:?}");
            // The loser was told the winner's size.
            assert!(results.iter().any(|r| *r == Err(won[0])), "round {round}: {results:?}");
            old = won[0];
            assert_eq!(stores[0].lock().unwrap().get("log").unwrap().unwrap().size, old);
        }
    }
}
