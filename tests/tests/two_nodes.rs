//! Two node processes on one database, clients spread across both: one
//! valid chain, every acknowledged message in it exactly once; a writer
//! whose chain state another process moved on writes under the lock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::future::join_all;
use sealchain_tests::{NodeProcess, TestDb, assert_each_exactly_once, audit_chain, metric, metrics_text, seal};

#[actix_rt::test]
async fn two_processes_build_one_chain() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let args = ["--block-size", "10"];
    let a = NodeProcess::spawn(&db, keys.path(), &args);
    let b = NodeProcess::spawn(&db, keys.path(), &args);
    let info = a.client.node_info().await.unwrap();
    assert_eq!(b.client.node_info().await.unwrap(), info);

    // 10 clients, 30 messages each, alternating between the two nodes.
    let clients = [a.client.clone(), b.client.clone()];
    let tasks = (0..10).map(|c| {
        let (clients, info) = (clients.clone(), info.clone());
        async move {
            let key = seal::identity();
            let mut receipts = Vec::new();
            for i in 0..30 {
                let envelope = seal::envelope(&key, &info, "t", serde_json::json!([c, i]));
                receipts.push(clients[(c + i) % 2].submit(&envelope).await.unwrap());
            }
            receipts
        }
    });
    let receipts: Vec<_> = join_all(tasks).await.into_iter().flatten().collect();
    assert_eq!(receipts.len(), 300);

    // One chain of 30 blocks, the same from either node, that audits and
    // holds every acknowledged message exactly once.
    let blocks = audit_chain(&a.client, &info).await;
    assert_eq!(blocks.len(), 30);
    assert_eq!(b.client.block_count().await.unwrap(), 30);
    for block in &blocks {
        assert_eq!(*block, b.client.block(block.summary.index).await.unwrap());
    }
    assert_each_exactly_once(&blocks, &receipts, &info);
}

/// A writer plans each batch from the chain state its last batch stored
/// and writes it in one statement that stores it only if that state still
/// holds. When another process wrote in between, the statement stores
/// nothing, the node counts it and writes the batch again under the lock:
/// A, B, A get seqs 0, 1, 2, and A's next batch goes in one statement again.
#[actix_rt::test]
async fn a_batch_planned_from_a_chain_state_another_process_moved_on_is_written_under_the_lock() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let args = ["--block-size", "2"];
    let a = NodeProcess::spawn(&db, keys.path(), &args);
    let b = NodeProcess::spawn(&db, keys.path(), &args);
    let info = a.client.node_info().await.unwrap();
    let key = seal::identity();
    let mut receipts = Vec::new();
    for (i, node) in [&a, &b, &a, &a].into_iter().enumerate() {
        let envelope = seal::envelope(&key, &info, "t", serde_json::json!(i));
        let receipt = node.client.submit(&envelope).await.unwrap();
        assert_eq!(receipt.seq, i as u64, "message {i}");
        receipts.push(receipt);
    }

    let counters = |text: &str| {
        [
            "sealchain_writer_batches_total{write=\"locked\"}",
            "sealchain_writer_batches_total{write=\"one_statement\"}",
            "sealchain_writer_stale_chain_state_total",
        ]
        .map(|name| metric(text, name).unwrap_or(0.0))
    };
    // A: its first batch under the lock; its second found B's write and
    // went under the lock; its third in one statement.
    assert_eq!(counters(&metrics_text(&a.base).await), [2.0, 1.0, 1.0]);
    assert_eq!(counters(&metrics_text(&b.base).await), [1.0, 0.0, 0.0]);

    let blocks = audit_chain(&b.client, &info).await;
    assert_eq!(blocks.len(), 2);
    assert_each_exactly_once(&blocks, &receipts, &info);
}
