//! The node's connection pool: a check-out costs no round trip to the
//! database (it used to send `SELECT 1` before every read), yet a session
//! the server ended is never handed out: the next check-out connects anew.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::sql_types::{Integer, Text};
use sealchain_node::db::build_pool;
use sealchain_tests::TestDb;

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(diesel::QueryableByName)]
struct Query {
    #[diesel(sql_type = Text)]
    query: String,
}

fn backend_pid(conn: &mut diesel::PgConnection) -> i32 {
    diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(conn)
        .unwrap()
        .pid
}

/// The last statement the server saw from session `pid` (from another
/// session; `pg_stat_activity.query` is set as each statement starts).
fn last_statement(db: &TestDb, pid: i32) -> String {
    diesel::sql_query(format!("SELECT query FROM pg_stat_activity WHERE pid = {pid}"))
        .get_result::<Query>(&mut db.connect())
        .unwrap()
        .query
}

#[test]
fn a_check_out_sends_nothing_and_a_dead_session_is_replaced() {
    let db = TestDb::new();
    let pool = build_pool(&db.url, 1, Duration::from_secs(5)).unwrap();
    let pid = backend_pid(&mut pool.get().unwrap());
    // Ten check-outs of the one connection: the server sees no statement.
    for _ in 0..10 {
        drop(pool.get().unwrap());
    }
    assert_eq!(
        last_statement(&db, pid),
        "SELECT pg_backend_pid() AS pid",
        "a check-out sent a statement"
    );

    // The server ends the session (as a restart does): the next check-out
    // notices without a query and hands out a new session, which works.
    db.execute(&format!("SELECT pg_terminate_backend({pid}, 5000)"));
    let mut conn = pool.get().unwrap();
    let new_pid = backend_pid(&mut conn);
    assert_ne!(new_pid, pid, "the dead session was not handed out");
}

#[test]
fn with_the_database_gone_a_check_out_fails_in_time_then_recovers() {
    let db = TestDb::new();
    let pool = build_pool(&db.url, 2, Duration::from_secs(1)).unwrap();
    drop(pool.get().unwrap());
    db.admin_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name()));
    db.admin_execute(&format!(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name()
    ));
    let started = std::time::Instant::now();
    assert!(pool.get().is_err(), "a dead session was handed out");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    db.admin_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name()));
    backend_pid(&mut pool.get().unwrap());
}
