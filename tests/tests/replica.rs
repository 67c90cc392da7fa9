//! `--read-database-url`: block, message, proof and tile reads served by a
//! real streaming replica (`pg_basebackup -R`, a hot standby on a port of
//! its own) of a primary cluster of the test's own, and never a false 404
//! for what the replica has not replayed yet: WAL replay is paused while
//! the primary seals a block, and every read of it is still answered as the
//! primary would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Bool, Text};
use sealchain_tests::cluster::Cluster;
use sealchain_tests::{NodeOptions, TestDb, TestNode, audit_chain, get_raw, seal};

#[derive(diesel::QueryableByName)]
struct Lsn {
    #[diesel(sql_type = Text)]
    lsn: String,
}

#[derive(diesel::QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Waits until the replica has replayed everything the primary wrote so far.
fn wait_caught_up(db: &TestDb, replica: &Cluster) {
    let target: Lsn = diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn")
        .get_result(&mut db.connect())
        .unwrap();
    let mut conn = replica.connect(db.name(), Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: Flag = diesel::sql_query(format!(
            "SELECT pg_last_wal_replay_lsn() >= '{}'::pg_lsn AS flag",
            target.lsn
        ))
        .get_result(&mut conn)
        .unwrap();
        if done.flag {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not catch up with {}",
            target.lsn
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn replica_blocks(db: &TestDb, replica: &Cluster) -> i64 {
    let c: Count = diesel::sql_query("SELECT count(*) AS count FROM blocks")
        .get_result(&mut replica.connect(db.name(), Duration::from_secs(30)))
        .unwrap();
    c.count
}

/// `sealchain_replica_reads_total{served="…"}` of this process.
async fn served(node: &TestNode, label: &str) -> f64 {
    let (_, _, body) = get_raw(&node.base, "/metrics").await;
    let text = String::from_utf8(body).unwrap();
    let needle = format!("sealchain_replica_reads_total{{served=\"{label}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn status(node: &TestNode, path: &str) -> u16 {
    get_raw(&node.base, path).await.0
}

/// Every read the replica serves, in one test: this binary's metrics are
/// its own.
#[actix_rt::test]
async fn reads_are_served_by_the_replica_and_never_miss_what_the_primary_holds() {
    // A primary of the test's own: a replica of the shared test server would
    // replay whatever else that server is busy with.
    let primary = Cluster::primary();
    let replica = Cluster::replica_of(&primary.url("postgres"));
    let db = TestDb::on(&primary.url("postgres"));
    wait_caught_up(&db, &replica);
    let node = TestNode::spawn(
        &db,
        NodeOptions::default()
            .arg("--block-size", 10)
            .arg("--db-timeout", 1)
            .arg("--checkpoint-interval", 0.1)
            .arg("--read-database-url", replica.url(db.name())),
    )
    .await;
    let key = seal::identity();
    let mut receipts = Vec::new();
    for i in 0..20 {
        let envelope = seal::envelope(&key, &node.info, "t", serde_json::json!(i));
        receipts.push(node.client.submit(&envelope).await.unwrap());
    }
    wait_caught_up(&db, &replica);

    // Replayed reads are served by the replica.
    let before = served(&node, "replica").await;
    let blocks = audit_chain(&node.client, &node.info).await;
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        node.client.block_by_hash(&blocks[1].summary.hash).await.unwrap(),
        blocks[1]
    );
    assert_eq!(node.client.head().await.unwrap(), blocks[1]);
    assert_eq!(node.client.message(5).await.unwrap().seq, 5);
    assert_eq!(node.client.proof(15).await.unwrap().block_index, 1);
    assert_eq!(status(&node, "/tile/entries/000.p/20").await, 200);
    // count, 2 blocks, hash, head, message, proof, tile
    assert!(
        served(&node, "replica").await - before >= 8.0,
        "the replica served the replayed reads"
    );

    // Replay paused: the primary seals block 2, the replica does not see it.
    replica.execute(db.name(), "SELECT pg_wal_replay_pause()");
    let paused_at = Instant::now();
    loop {
        let paused: Flag = diesel::sql_query("SELECT pg_get_wal_replay_pause_state() = 'paused' AS flag")
            .get_result(&mut replica.connect(db.name(), Duration::from_secs(30)))
            .unwrap();
        if paused.flag {
            break;
        }
        assert!(paused_at.elapsed() < Duration::from_secs(30), "replay did not pause");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 20..30 {
        let envelope = seal::envelope(&key, &node.info, "t", serde_json::json!(i));
        receipts.push(node.client.submit(&envelope).await.unwrap());
    }
    assert_eq!(replica_blocks(&db, &replica), 2, "the replica has not replayed block 2");

    // Every read of what only the primary holds is answered as the primary
    // answers it: no false 404, no stale head, no "not sealed".
    let behind = served(&node, "primary_behind").await;
    let block2 = node.client.block(2).await.unwrap();
    assert_eq!(block2.summary.first_seq, 20);
    assert_eq!(node.client.block_count().await.unwrap(), 3);
    assert_eq!(node.client.head().await.unwrap(), block2);
    assert_eq!(node.client.block_by_hash(&block2.summary.hash).await.unwrap(), block2);
    assert_eq!(node.client.previous(&block2.summary.hash).await.unwrap(), blocks[1]);
    let message = node.client.message(25).await.unwrap();
    assert!(message.sealed, "message 25 is in sealed block 2");
    assert_eq!(node.client.proof(25).await.unwrap().block_hash, block2.summary.hash);
    assert_eq!(status(&node, "/tile/entries/000.p/30").await, 200);
    let list = node.client.blocks_page(0, 10).await.unwrap();
    assert_eq!(list.blocks.len(), 3);
    assert!(served(&node, "primary_behind").await - behind >= 9.0);
    audit_chain(&node.client, &node.info).await;

    // What the replica holds it serves even with the primary unreachable:
    // the primary refuses this database (a change the paused replica has
    // not replayed) and its sessions end. What only the primary holds is
    // then 503, never 404.
    db.admin_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name()));
    db.admin_execute(&format!(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name()
    ));
    assert_eq!(node.client.block(0).await.unwrap(), blocks[0]);
    assert_eq!(node.client.message(3).await.unwrap().seq, 3);
    for path in [
        "/v1/blocks/2",
        "/v1/blocks/count",
        "/v1/blocks/head",
        "/v1/messages/25/proof",
    ] {
        assert_eq!(status(&node, path).await, 503, "{path}");
    }
    db.admin_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name()));

    // Replay resumed: the replica serves block 2 too.
    replica.execute(db.name(), "SELECT pg_wal_replay_resume()");
    wait_caught_up(&db, &replica);
    let before = served(&node, "replica").await;
    assert_eq!(node.client.block(2).await.unwrap(), block2);
    assert_eq!(served(&node, "replica").await - before, 1.0);

    // A replica that goes away: reads fall back to the primary.
    replica.stop();
    assert_eq!(node.client.block(2).await.unwrap(), block2);
    assert_eq!(node.client.block_count().await.unwrap(), 3);
    assert!(served(&node, "primary_replica_failed").await >= 1.0);
    node.stop().await;
}

#[actix_rt::test]
async fn a_read_database_with_another_chain_is_refused_at_start() {
    let (db, other) = (TestDb::new(), TestDb::new());
    let keys = tempfile::tempdir().unwrap();
    // Another chain, built by another node key.
    TestNode::spawn(&other, NodeOptions::default()).await.stop().await;
    let options = NodeOptions::default().keys_dir(&keys.path().join("k"));
    let err = TestNode::try_spawn(&db, options.clone().arg("--read-database-url", &other.url))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("holds another chain"), "{err:#}");
    // An empty database (no chain at all) is refused too, after the wait.
    let empty = TestDb::empty();
    let err = TestNode::try_spawn(
        &db,
        options
            .arg("--read-database-url", &empty.url)
            .arg("--db-connect-timeout", 1),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("holds no chain"), "{err:#}");
}
