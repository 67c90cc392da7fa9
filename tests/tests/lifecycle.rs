//! The node across its life: restarts continue the chain from the database
//! alone, SIGKILL loses nothing acknowledged, SIGTERM drains and exits 0,
//! a database outage or a full queue answers 503 quickly, and a node
//! refuses a chain that is not its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::Connection;
use sealchain_client::api::{ApiError, NodeClient};
use sealchain_shared::api::{NodeInfo, Receipt};
use sealchain_tests::{NodeOptions, NodeProcess, TestDb, TestNode, audit_chain, seal};

async fn send_one(
    client: &NodeClient,
    info: &NodeInfo,
    key: &sealchain_shared::SigningKey,
) -> Result<Receipt, ApiError> {
    client
        .submit(&seal::envelope(key, info, "t", serde_json::json!({"n": 1})))
        .await
}

/// Every receipt is stored under its seq with its leaf hash.
async fn assert_stored(client: &NodeClient, receipts: &[Receipt]) {
    for r in receipts {
        let record = client.message(r.seq).await.unwrap();
        assert_eq!(record.leaf_hash, r.leaf_hash, "seq {}", r.seq);
    }
}

#[actix_rt::test]
async fn restart_continues_the_open_block() {
    let db = TestDb::new();
    let mut node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 10)).await;
    let _keys = node.take_keys();
    let keys_dir = node.keys_dir.clone();
    let info = node.info.clone();
    let client = seal::identity();
    for seq in 0..15 {
        assert_eq!(send_one(&node.client, &info, &client).await.unwrap().seq, seq);
    }
    node.stop().await;

    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 10).keys_dir(&keys_dir)).await;
    assert_eq!(node.info, info, "same keys and settings after restart");
    assert_eq!(node.client.block_count().await.unwrap(), 1);
    for seq in 15..30 {
        assert_eq!(send_one(&node.client, &info, &client).await.unwrap().seq, seq);
    }
    let blocks = audit_chain(&node.client, &info).await;
    assert_eq!(blocks.len(), 3);
    node.stop().await;
}

#[actix_rt::test]
async fn a_node_refuses_a_chain_with_another_block_size_or_key() {
    let db = TestDb::new();
    let mut node = TestNode::spawn(&db, NodeOptions::default()).await;
    let _keys = node.take_keys();
    let keys_dir = node.keys_dir.clone();
    node.stop().await;

    let err = TestNode::try_spawn(&db, NodeOptions::default().arg("--block-size", 50).keys_dir(&keys_dir))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("block size 100, not 50"), "{err:#}");

    let err = TestNode::try_spawn(&db, NodeOptions::default()).await.unwrap_err();
    assert!(format!("{err:#}").contains("built by node key"), "{err:#}");
}

#[derive(diesel::QueryableByName)]
struct Schema {
    #[diesel(sql_type = diesel::sql_types::Text)]
    schema: String,
}

/// Every column, constraint, index, trigger and function the migrations
/// made, one per line, in a fixed order ("" when there is none).
fn schema(conn: &mut diesel::PgConnection) -> String {
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "SELECT coalesce(string_agg(line, E'\\n' ORDER BY line), '') AS schema FROM (
           SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type, is_nullable,
                         column_default) AS line
             FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'
           UNION ALL SELECT 'index ' || indexdef FROM pg_indexes
            WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'
           UNION ALL SELECT format('constraint %s %s', conrelid::regclass, pg_get_constraintdef(oid))
             FROM pg_constraint
            WHERE connamespace = 'public'::regnamespace
              AND conrelid <> '__diesel_schema_migrations'::regclass
           UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
           UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
         ) lines",
    )
    .get_result::<Schema>(conn)
    .unwrap()
    .schema
}

/// An operator's way back (`diesel migration revert`): every migration's
/// `down.sql` undoes its `up.sql`, so reverting them all leaves nothing of
/// the schema, and applying them again builds the same schema.
#[test]
fn every_migration_reverts_and_applies_again() {
    use diesel_migrations::MigrationHarness;
    use sealchain_node::db::MIGRATIONS;
    let db = TestDb::new();
    let mut conn = db.connect();
    let migrated = schema(&mut conn);
    assert!(migrated.contains("USING hash (leaf_hash)"), "{migrated}");

    let reverted = conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(reverted.len(), sealchain_tests::db::embedded_migrations());
    assert_eq!(schema(&mut conn), "", "left behind by the down migrations");

    conn.run_pending_migrations(MIGRATIONS).unwrap();
    assert_eq!(schema(&mut conn), migrated);
}

/// Senders that each send until their first error, concurrently; the
/// handles end when every sender has stopped.
fn spawn_senders(
    client: &NodeClient,
    info: &NodeInfo,
    n: usize,
) -> (Rc<RefCell<Vec<Receipt>>>, Vec<actix_rt::task::JoinHandle<()>>) {
    let receipts = Rc::new(RefCell::new(Vec::new()));
    let handles = (0..n)
        .map(|_| {
            let (client, info, receipts) = (client.clone(), info.clone(), receipts.clone());
            actix_rt::spawn(async move {
                let key = seal::identity();
                while let Ok(r) = send_one(&client, &info, &key).await {
                    receipts.borrow_mut().push(r);
                }
            })
        })
        .collect();
    (receipts, handles)
}

async fn wait_for(receipts: &Rc<RefCell<Vec<Receipt>>>, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while receipts.borrow().len() < at_least {
        assert!(Instant::now() < deadline, "senders made no progress");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn sigkill_loses_nothing_that_was_acknowledged() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "10"]);
    let info = node.client.node_info().await.unwrap();
    let (receipts, senders) = spawn_senders(&node.client, &info, 8);
    wait_for(&receipts, 60).await;
    node.signal("KILL");
    assert_eq!(
        node.exit_code(Duration::from_secs(10)).await,
        None,
        "killed by the signal"
    );
    // Every sender meets the dead socket and stops.
    for s in senders {
        s.await.unwrap();
    }
    let acknowledged = receipts.borrow().clone();

    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "10"]);
    assert_stored(&node.client, &acknowledged).await;
    // The chain continues: fill the open block and audit everything.
    let key = seal::identity();
    let mut last = send_one(&node.client, &info, &key).await.unwrap();
    while last.seq % 10 != 9 {
        last = send_one(&node.client, &info, &key).await.unwrap();
    }
    let blocks = audit_chain(&node.client, &info).await;
    assert_eq!(blocks.len() as u64, last.seq / 10 + 1);
    // Seqs are gapless across the crash: the chain holds exactly last.seq + 1 messages.
    let stored: usize = blocks.iter().map(|b| b.messages.len()).sum();
    assert_eq!(stored as u64, last.seq + 1);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// SIGTERM with requests in flight: they are held behind a lock the writer
/// waits on, the signal arrives, the lock goes; every request in flight is
/// answered with its receipt, the node exits 0, and what is stored is
/// exactly what was acknowledged.
#[actix_rt::test]
async fn sigterm_answers_everything_in_flight_and_exits_zero() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "10", "--max-batch", "1"]);
    let info = node.client.node_info().await.unwrap();
    let before = send_one(&node.client, &info, &seal::identity()).await.unwrap();
    assert_eq!(before.seq, 0);

    let lock = db.lock_chain_state();
    const IN_FLIGHT: usize = 6;
    let answers = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (client, info, answers) = (node.client.clone(), info.clone(), answers.clone());
            actix_rt::spawn(async move {
                let result = send_one(&client, &info, &seal::identity()).await;
                answers.borrow_mut().push(result);
            })
        })
        .collect();
    // All of them are inside the node: one in the writer, the rest queued.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, body) = sealchain_tests::get_raw(&node.base, "/metrics").await;
        let depth = sealchain_tests::metric(&String::from_utf8_lossy(&body), "sealchain_ingest_queue_depth");
        if depth == Some((IN_FLIGHT - 1) as f64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the requests did not reach the queue (depth {depth:?})"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        answers.borrow().is_empty(),
        "nothing is answered while the writer waits"
    );

    node.signal("TERM");
    // The node stops accepting connections, then the lock goes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(node.base.trim_start_matches("http://")).is_ok() {
        assert!(Instant::now() < deadline, "the node kept accepting after SIGTERM");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    lock.release();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        node.exit_code(Duration::from_secs(40)).await,
        Some(0),
        "SIGTERM is a clean exit"
    );

    let answers = answers.take();
    assert_eq!(answers.len(), IN_FLIGHT, "every request in flight was answered");
    let mut acknowledged: Vec<Receipt> = answers
        .into_iter()
        .map(|r| r.expect("every request in flight got its receipt"))
        .collect();
    acknowledged.push(before);
    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "10"]);
    assert_stored(&node.client, &acknowledged).await;
    // Stored == acknowledged: nothing more, nothing less.
    let mut conn = diesel::PgConnection::establish(&db.url).unwrap();
    let stored: i64 = diesel::RunQueryDsl::get_result(
        diesel::QueryDsl::count(sealchain_node::db::schema::messages::table),
        &mut conn,
    )
    .unwrap();
    assert_eq!(stored as usize, acknowledged.len());
    audit_chain(&node.client, &info).await;
}

#[actix_rt::test]
async fn database_outage_answers_503_with_retry_after_then_recovers() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--db-timeout", 1)).await;
    let key = seal::identity();
    assert_eq!(send_one(&node.client, &node.info, &key).await.unwrap().seq, 0);

    // Take the database away: refuse new connections, end existing ones.
    db.admin_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name()));
    db.admin_execute(&format!(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name()
    ));
    let started = Instant::now();
    let err = send_one(&node.client, &node.info, &key).await.unwrap_err();
    let ApiError::Problem {
        status,
        problem,
        retry_after,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*status, problem.code.as_str()), (503, "unavailable"));
    assert_eq!(*retry_after, Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "503 took {:?}",
        started.elapsed()
    );
    let (status, _, _) = sealchain_tests::get_raw(&node.base, "/readyz").await;
    assert_eq!(status, 503);
    // Reads fail the same way.
    let err = node.client.block_count().await.unwrap_err();
    assert_eq!(err.code(), Some("unavailable"));

    // Bring it back: the node recovers by itself and nothing was stored.
    db.admin_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match send_one(&node.client, &node.info, &key).await {
            Ok(r) => {
                assert_eq!(r.seq, 1, "the failed message was not stored");
                break;
            }
            Err(e) => {
                assert_eq!(e.code(), Some("unavailable"));
                assert!(Instant::now() < deadline, "node did not recover");
                actix_rt::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let (status, _, _) = sealchain_tests::get_raw(&node.base, "/readyz").await;
    assert_eq!(status, 200);
    node.stop().await;
}

#[actix_rt::test]
async fn a_full_queue_answers_503_at_once() {
    let db = TestDb::new();
    let node = TestNode::spawn(
        &db,
        NodeOptions::default()
            .arg("--queue-capacity", 2)
            .arg("--max-batch", 1)
            .arg("--db-timeout", 10),
    )
    .await;

    // Hold the chain-state row lock from outside: the writer blocks on it.
    let lock = db.lock_chain_state();

    let results = Rc::new(RefCell::new(Vec::new()));
    let send = |results: &Rc<RefCell<Vec<_>>>| {
        let (client, info, results) = (node.client.clone(), node.info.clone(), results.clone());
        actix_rt::spawn(async move {
            let key = seal::identity();
            let started = Instant::now();
            let result = send_one(&client, &info, &key).await;
            results.borrow_mut().push((started.elapsed(), result));
        })
    };
    // The first message goes alone, so it is the one the writer holds:
    // nine sent at once could otherwise fill the queue before the writer
    // took any of them.
    let mut tasks = vec![send(&results)];
    let mut conn = db.connect();
    sealchain_tests::wait_until("the writer waits on the lock", Duration::from_secs(30), || {
        let waiting = diesel::RunQueryDsl::get_result::<Count>(
            diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query ILIKE '%chain_state%'",
            ),
            &mut conn,
        )
        .unwrap()
        .n;
        std::future::ready(waiting > 0)
    })
    .await;
    tasks.extend((0..9).map(|_| send(&results)));
    // One message is in the writer, two of the nine fill the queue: the
    // other seven are answered at once, while the writer is still blocked.
    let deadline = Instant::now() + Duration::from_secs(30);
    while results.borrow().len() < 7 {
        assert!(Instant::now() < deadline, "only {} answered", results.borrow().len());
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let early = results.borrow();
        assert_eq!(early.len(), 7, "the queued ones wait for the writer");
        for (_, result) in early.iter() {
            let err = result.as_ref().unwrap_err();
            assert_eq!(err.code(), Some("unavailable"), "{err}");
            assert!(err.to_string().contains("queue full"), "{err}");
        }
    }
    lock.release();
    for t in tasks {
        t.await.unwrap();
    }
    let results = results.take();
    let mut seqs: Vec<u64> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|r| r.seq))
        .collect();
    seqs.sort();
    assert_eq!(seqs, [0, 1, 2], "the one in the writer and the two queued");
    assert_eq!(results.len(), 10);
    node.stop().await;
}

/// One text column.
#[derive(diesel::QueryableByName)]
struct Hex {
    #[diesel(sql_type = diesel::sql_types::Text)]
    hex: String,
}

fn hex_column(conn: &mut diesel::PgConnection, sql: &str) -> Vec<String> {
    use diesel::RunQueryDsl;
    let rows: Vec<Hex> = diesel::sql_query(sql).load(conn).unwrap();
    rows.into_iter().map(|r| r.hex).collect()
}

/// A chain stored before senders had numbers (every message holding its
/// sender's key) upgrades in place: the migration numbers the senders in
/// the order of their first message and rebuilds the messages table, and
/// the node serves the same chain and goes on with old and new senders.
/// Its down migration puts every key back where it was.
#[actix_rt::test]
async fn a_chain_stored_by_sender_key_upgrades_to_sender_numbers_and_back() {
    use diesel_migrations::MigrationHarness;
    use sealchain_node::db::MIGRATIONS;
    let db = TestDb::new();
    let mut node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 4)).await;
    let _keys = node.take_keys();
    let keys_dir = node.keys_dir.clone();
    let info = node.info.clone();
    let clients = sealchain_tests::fill::identities(3);
    let receipts = sealchain_tests::fill::send(&node.client, &info, &clients, 10).await;
    let mut before = Vec::new();
    for r in &receipts {
        before.push(node.client.message(r.seq).await.unwrap());
    }
    node.stop().await;
    let keys: Vec<String> = before.iter().map(|m| m.sender.to_string()).collect();
    let mut first_seen = keys.clone();
    let mut seen = std::collections::HashSet::new();
    first_seen.retain(|k| seen.insert(k.clone()));
    assert_eq!(first_seen.len(), 3);

    let mut conn = db.connect();
    conn.revert_last_migration(MIGRATIONS).unwrap();
    assert_eq!(
        hex_column(
            &mut conn,
            "SELECT encode(sender, 'hex') AS hex FROM messages ORDER BY seq"
        ),
        keys,
        "the down migration puts each message's key back"
    );
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    assert_eq!(
        hex_column(&mut conn, "SELECT encode(key, 'hex') AS hex FROM senders ORDER BY id"),
        first_seen,
        "numbered in the order of their first message"
    );
    assert_eq!(
        hex_column(
            &mut conn,
            "SELECT encode(s.key, 'hex') AS hex FROM messages m JOIN senders s ON s.id = m.sender_id ORDER BY m.seq"
        ),
        keys
    );

    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 4).keys_dir(&keys_dir)).await;
    for (r, stored) in receipts.iter().zip(&before) {
        assert_eq!(&node.client.message(r.seq).await.unwrap(), stored, "seq {}", r.seq);
    }
    // An old sender, then a new one: both go on the same chain.
    assert_eq!(send_one(&node.client, &info, &clients[0]).await.unwrap().seq, 10);
    assert_eq!(send_one(&node.client, &info, &seal::identity()).await.unwrap().seq, 11);
    let blocks = audit_chain(&node.client, &info).await;
    assert_eq!(blocks.len(), 3);
    assert_eq!(
        hex_column(&mut conn, "SELECT count(*)::text AS hex FROM senders"),
        ["4"],
        "the old sender kept its number"
    );
    node.stop().await;
}
