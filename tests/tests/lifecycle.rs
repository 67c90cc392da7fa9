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

/// Senders that each send until their first error, concurrently.
fn spawn_senders(client: &NodeClient, info: &NodeInfo, n: usize) -> Rc<RefCell<Vec<Receipt>>> {
    let receipts = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..n {
        let (client, info, receipts) = (client.clone(), info.clone(), receipts.clone());
        actix_rt::spawn(async move {
            let key = seal::identity();
            while let Ok(r) = send_one(&client, &info, &key).await {
                receipts.borrow_mut().push(r);
            }
        });
    }
    receipts
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
    let receipts = spawn_senders(&node.client, &info, 8);
    wait_for(&receipts, 60).await;
    node.signal("KILL");
    assert_eq!(
        node.exit_code(Duration::from_secs(10)).await,
        None,
        "killed by the signal"
    );
    // Let the senders see the dead socket and stop.
    actix_rt::time::sleep(Duration::from_millis(300)).await;
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

#[actix_rt::test]
async fn sigterm_answers_everything_in_flight_and_exits_zero() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "10"]);
    let info = node.client.node_info().await.unwrap();
    let receipts = spawn_senders(&node.client, &info, 8);
    wait_for(&receipts, 40).await;
    node.signal("TERM");
    let code = node.exit_code(Duration::from_secs(40)).await;
    assert_eq!(code, Some(0), "SIGTERM is a clean exit");
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let acknowledged = receipts.borrow().clone();

    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "10"]);
    assert_stored(&node.client, &acknowledged).await;
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
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
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
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let url = db.url.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::RunQueryDsl::execute(diesel::sql_query("SELECT * FROM chain_state FOR UPDATE"), conn)?;
            locked.send(()).unwrap();
            released.recv().unwrap();
            Ok(())
        })
        .unwrap();
    });
    is_locked.recv().unwrap();

    let results = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (client, info, results) = (node.client.clone(), node.info.clone(), results.clone());
            actix_rt::spawn(async move {
                let key = seal::identity();
                let started = Instant::now();
                let result = send_one(&client, &info, &key).await;
                results.borrow_mut().push((started.elapsed(), result));
            })
        })
        .collect();
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    {
        let early = results.borrow();
        assert!(
            early.len() >= 7,
            "only {} answered while the writer was blocked",
            early.len()
        );
        for (elapsed, result) in early.iter() {
            let err = result.as_ref().unwrap_err();
            assert_eq!(err.code(), Some("unavailable"), "{err}");
            assert!(*elapsed < Duration::from_secs(2));
        }
    }
    release.send(()).unwrap();
    holder.join().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let results = results.take();
    let mut seqs: Vec<u64> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|r| r.seq))
        .collect();
    seqs.sort();
    assert!(seqs == vec![0, 1] || seqs == vec![0, 1, 2], "accepted {seqs:?}");
    assert_eq!(results.len(), 10);
    node.stop().await;
}
