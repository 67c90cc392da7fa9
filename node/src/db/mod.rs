//! Storage: Diesel over an r2d2 pool of Postgres connections.
//!
//! Repo functions in [`repo`] are synchronous and take a connection;
//! handlers reach them through [`run`], which moves the work to the blocking
//! thread pool so no connection is held across an `.await`. Every failure
//! leaves this module as a [`StoreError`]; how it is answered over HTTP is
//! decided in one place, `crate::error`.

pub mod models;
pub mod reads;
pub mod repo;
#[rustfmt::skip]
pub mod schema;

use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection};
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The pool every part of the node shares.
pub type DbPool = r2d2::Pool<Manager>;

/// A connection checked out of a [`DbPool`].
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Diesel's connection manager, with a check-out test that costs no round
/// trip to the database.
///
/// Diesel's own test sends `SELECT 1` at every check-out, which doubled the
/// statements of a one-query read. Here the test only reads what the
/// server already sent on the idle socket (libpq's `PQconsumeInput`, which
/// diesel calls when it looks for notifications): a session that Postgres
/// ended (a restart, `pg_terminate_backend`, an idle timeout) has left its
/// error message and end-of-file there, so it fails the test and the pool
/// connects anew, exactly as after a failed `SELECT 1`. Two reads, because
/// the first may consume only the server's farewell message. A connection
/// broken while in use is dropped when it is returned (diesel's
/// `has_broken`, a failed transaction) or at its next check-out.
#[derive(Debug)]
pub struct Manager(ConnectionManager<PgConnection>);

impl Manager {
    /// A manager for the database at `url`.
    pub fn new(url: &str) -> Self {
        Self(ConnectionManager::new(url))
    }
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        self.0.connect()
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        for _ in 0..2 {
            // A read connection never LISTENs, so nothing but an error can
            // come out of it.
            if let Some(Err(e)) = conn.notifications_iter().next() {
                return Err(diesel::r2d2::Error::QueryError(e));
            }
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.0.has_broken(conn)
    }
}

/// The migrations in `migrations/`, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Key of the session advisory lock held while migrations run, so that
/// node processes starting together on an empty database migrate it once,
/// one after the other. (The ASCII of "sealmigr".)
pub const MIGRATION_LOCK: i64 = 0x7365_616c_6d69_6772;

/// A storage failure, classified by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot answer now (no connection, lost connection,
    /// statement or lock timeout, cancelled by an administrator, shutting
    /// down, serialization failure…): the same request may succeed later.
    #[error("{0}")]
    Unavailable(String),
    /// A row the caller required does not exist.
    #[error("not found")]
    NotFound,
    /// A bug or data that breaks the schema's promises (a constraint
    /// violation, a row that does not decode): retrying will not help.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match e {
            Error::NotFound => Self::NotFound,
            // Constraint violations: the node's own invariants were broken.
            Error::DatabaseError(
                Kind::UniqueViolation
                | Kind::ForeignKeyViolation
                | Kind::NotNullViolation
                | Kind::CheckViolation
                | Kind::RestrictViolation
                | Kind::ExclusionViolation,
                _,
            ) => Self::Internal(e.into()),
            // Everything else the server says is about this moment: lost
            // connections, timeouts (57014), lock timeouts (55P03), admin
            // cancels and shutdowns (57P01…), serialization failures,
            // too many connections (53300).
            Error::DatabaseError(_, ref info) => {
                tracing::warn!(error = %info.message(), "database failure");
                Self::Unavailable(format!(
                    "the database could not complete the request ({})",
                    info.message()
                ))
            }
            Error::BrokenTransactionManager | Error::RollbackErrorOnCommit { .. } => {
                tracing::warn!(error = %e, "database connection failure");
                Self::Unavailable("the database connection failed".into())
            }
            // Query building, (de)serialization: bugs.
            other => Self::Internal(other.into()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        tracing::warn!(error = %e, "no database connection");
        Self::Unavailable("no database connection could be had in time".into())
    }
}

/// Bounds every statement so a hung database turns into a 503, not a hung
/// request.
#[derive(Debug, Clone, Copy)]
struct StatementTimeout(Duration);

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for StatementTimeout {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        diesel::sql_query(format!("SET statement_timeout = {}", self.0.as_millis()))
            .execute(conn)
            .map(drop)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Builds the pool; fails if the database cannot be reached within `timeout`.
pub fn build_pool(url: &str, size: u32, timeout: Duration) -> anyhow::Result<DbPool> {
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(timeout)
        // The test of `Manager::is_valid`: no round trip.
        .test_on_check_out(true)
        .connection_customizer(Box::new(StatementTimeout(timeout * 2)))
        .build(Manager::new(url))
        .context("connecting to the database (is Postgres running and the URL right?)")
}

/// Connects to the database, retrying for up to `wait` while it is not
/// reachable yet (a database that starts after the node, as in a compose
/// file). Each failed attempt is logged; the last error is returned when
/// time runs out. Errors that waiting cannot fix (a bad URL, a refused
/// password, an unknown database) are returned at once.
pub fn connect_with_retry(url: &str, wait: Duration) -> anyhow::Result<PgConnection> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        match PgConnection::establish(url) {
            Ok(conn) => {
                if attempt > 1 {
                    tracing::info!(
                        attempt,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "database reachable"
                    );
                }
                return Ok(conn);
            }
            Err(e) => {
                let message = e.to_string();
                let elapsed = started.elapsed();
                if is_permanent(&message) || elapsed + delay > wait {
                    return Err(anyhow::anyhow!(message)).with_context(|| {
                        format!(
                            "connecting to the database failed after {attempt} attempt(s) in {:.1} s \
                             (is Postgres running and the URL right? --db-connect-timeout sets how long to wait)",
                            elapsed.as_secs_f64()
                        )
                    });
                }
                tracing::warn!(
                    attempt,
                    error = %message.trim(),
                    retry_in_ms = delay.as_millis() as u64,
                    remaining_s = (wait - elapsed).as_secs(),
                    "database not reachable yet; waiting"
                );
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
        }
    }
}

/// Connection errors that no amount of waiting fixes: a URL libpq cannot
/// parse (`missing "=" after … in connection info string`, `invalid
/// integer value "x" for connection option "port"`, `invalid sslmode
/// value`, `invalid URI query parameter`, an unclosed `[` of an IPv6
/// address), a refused password, an unknown database.
fn is_permanent(message: &str) -> bool {
    [
        "password authentication failed",
        "invalid connection option",
        "in connection info string",
        "invalid integer value",
        "invalid URI",
        "in URI:",
        "invalid port",
    ]
    .iter()
    .any(|needle| message.contains(needle))
        || (message.starts_with("invalid ") && message.contains(" value: "))
        || (message.contains("database \"") && message.contains("does not exist"))
}

/// Applies pending migrations, under a session advisory lock: a second node
/// process starting at the same moment waits, then finds nothing to do.
pub fn run_migrations(conn: &mut PgConnection) -> anyhow::Result<()> {
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(conn)
        .context("taking the migration lock")?;
    let migrated = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|e| anyhow::anyhow!("running database migrations: {e}"));
    // Released also when the connection closes; unlock explicitly so a
    // caller that keeps the connection does not hold it.
    let unlocked = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(conn);
    let applied = migrated?;
    unlocked.context("releasing the migration lock")?;
    if applied > 0 {
        tracing::info!(applied, "database migrated");
    }
    Ok(())
}

/// Runs a repo function on the blocking pool with a pooled connection,
/// inside the caller's tracing span.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        let _entered = span.enter();
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
    .map_err(|e| StoreError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What libpq 15 says, verbatim.
    #[test]
    fn a_url_libpq_cannot_parse_is_permanent_and_an_absent_server_is_not() {
        for permanent in [
            "missing \"=\" after \"127.0.0.1:5432/db\" in connection info string\n",
            "unterminated quoted string in connection info string\n",
            "invalid integer value \"notaport\" for connection option \"port\"\n",
            "invalid sslmode value: \"sometimes\"\n",
            "invalid URI query parameter: \"nosuch\"\n",
            "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"postgres://[::1/db\"\n",
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"x\"\n",
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nope\" does not exist\n",
        ] {
            assert!(is_permanent(permanent), "{permanent}");
        }
        for transient in [
            "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n",
            "could not translate host name \"postgres\" to address: Name or service not known\n",
            "connection to server at \"10.0.0.2\", port 5432 failed: FATAL:  the database system is starting up\n",
            "connection to server at \"10.0.0.2\", port 5432 failed: timeout expired\n",
        ] {
            assert!(!is_permanent(transient), "{transient}");
        }
    }
}
