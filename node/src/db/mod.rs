//! Storage: Diesel over an r2d2 pool of Postgres connections.
//!
//! Repo functions in [`repo`] are synchronous and take a connection;
//! handlers reach them through [`run`], which moves the work to the blocking
//! thread pool so no connection is held across an `.await`.

pub mod models;
pub mod repo;
#[rustfmt::skip]
pub mod schema;

use std::time::Duration;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::ApiError;

/// The pool every part of the node shares.
pub type DbPool = r2d2::Pool<ConnectionManager<PgConnection>>;

/// The migrations in `migrations/`, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

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
        .test_on_check_out(true)
        .connection_customizer(Box::new(StatementTimeout(timeout * 2)))
        .build(ConnectionManager::new(url))
        .context("connecting to the database (is Postgres running and the URL right?)")
}

/// Applies pending migrations.
pub fn run_migrations(url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(url).context("connecting to the database to run migrations")?;
    conn.run_pending_migrations(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("running database migrations: {e}"))?;
    Ok(())
}

/// Runs a repo function on the blocking pool with a pooled connection,
/// inside the caller's tracing span.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        let _entered = span.enter();
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}
