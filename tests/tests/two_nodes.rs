//! Two node processes on one database, clients spread across both: one
//! valid chain, every acknowledged message in it exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::future::join_all;
use sealchain_tests::{NodeProcess, TestDb, assert_each_exactly_once, audit_chain, seal};

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
