//! Two node processes on one database, clients spread across both: one
//! valid chain, every acknowledged message in it exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use futures_util::future::join_all;
use sealchain_shared::{VerifyingKey, audit};
use sealchain_tests::{NodeProcess, TestDb, seal};

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

    // One chain of 30 blocks, read from either node, that audits.
    let key = VerifyingKey::from_bytes(&info.signing_key.0).unwrap();
    assert_eq!(a.client.block_count().await.unwrap(), 30);
    assert_eq!(b.client.block_count().await.unwrap(), 30);
    let mut prev = None;
    let mut in_chain: HashMap<[u8; 32], Vec<u64>> = HashMap::new();
    for i in 0..30 {
        let block = a.client.block(i).await.unwrap();
        assert_eq!(block, b.client.block(i).await.unwrap());
        audit::verify_block(&block, &key, 10, prev.as_ref()).unwrap();
        prev = Some(block.summary.hash.0);
        for m in &block.messages {
            in_chain.entry(m.leaf_hash.0).or_default().push(m.seq);
        }
    }
    // Every acknowledged message is in the chain exactly once, at its seq.
    for r in &receipts {
        audit::verify_receipt(r, &key, 10).unwrap();
        assert_eq!(in_chain.get(&r.leaf_hash.0), Some(&vec![r.seq]));
    }
    assert_eq!(in_chain.len(), 300);
}
