//! The chain end to end: concurrent clients, sealed blocks that an auditor
//! accepts, receipts with inclusion proofs, and every way to read a block
//! (PROTOCOL §4–§8).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use futures_util::future::join_all;
use sealchain_shared::api::Receipt;
use sealchain_shared::audit;
use sealchain_shared::hexbytes::HexBytes;
use sealchain_tests::{NodeOptions, TestDb, TestNode, audit_chain, seal};

/// Each of `clients` identities sends `per_client` messages one after
/// another, all clients concurrently. Returns every receipt.
async fn send_concurrently(node: &TestNode, clients: usize, per_client: usize) -> Vec<Receipt> {
    let tasks = (0..clients).map(|c| {
        let client = node.client.clone();
        let info = node.info.clone();
        async move {
            let key = seal::identity();
            let mut receipts = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let envelope = seal::envelope(&key, &info, "sensors/temp", serde_json::json!({"client": c, "i": i}));
                receipts.push(client.submit(&envelope).await.expect("valid message accepted"));
            }
            receipts
        }
    });
    join_all(tasks).await.into_iter().flatten().collect()
}

#[actix_rt::test]
async fn ten_concurrent_clients_seal_two_verifiable_blocks() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let receipts = send_concurrently(&node, 10, 25).await;
    assert_eq!(receipts.len(), 250);

    // Seqs are gapless 0..250 and each is given once.
    let by_seq: BTreeMap<u64, &Receipt> = receipts.iter().map(|r| (r.seq, r)).collect();
    assert_eq!(by_seq.len(), 250);
    assert_eq!(by_seq.keys().copied().collect::<Vec<_>>(), (0..250).collect::<Vec<_>>());

    let blocks = audit_chain(&node.client, &node.info).await;
    assert_eq!(blocks.len(), 2);

    let key = sealchain_shared::VerifyingKey::from_bytes(&node.info.signing_key.0).unwrap();
    for receipt in &receipts {
        audit::verify_receipt(receipt, &key, 100).unwrap();
        assert_eq!(receipt.block_index, receipt.seq / 100);
        if receipt.seq < 200 {
            let proof = node.client.proof(receipt.seq).await.unwrap();
            let block = &blocks[receipt.block_index as usize].summary;
            audit::verify_inclusion(receipt, &proof, block, 100).unwrap();
            // The block lists the message under the receipt's leaf hash.
            let listed = &blocks[receipt.block_index as usize].messages[(receipt.seq % 100) as usize];
            assert_eq!(listed.leaf_hash, receipt.leaf_hash);
            assert_eq!(listed.received_at, receipt.received_at);
        } else {
            let err = node.client.proof(receipt.seq).await.unwrap_err();
            assert_eq!((err.status(), err.code()), (Some(409), Some("not_sealed")));
        }
    }

    // One stored message as served by GET /v1/messages/{seq}.
    let record = node.client.message(249).await.unwrap();
    assert!(!record.sealed);
    assert_eq!(record.leaf_hash, by_seq[&249].leaf_hash);
    assert!(node.client.message(0).await.unwrap().sealed);
    node.stop().await;
}

#[actix_rt::test]
async fn head_hash_previous_list_and_not_found() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 5)).await;
    let c = &node.client;

    // Before any block.
    for err in [c.head().await.unwrap_err(), c.block(0).await.unwrap_err()] {
        assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
    }
    assert_eq!(c.block_count().await.unwrap(), 0);
    let page = c.blocks_page(0, 10).await.unwrap();
    assert!(page.blocks.is_empty());
    assert_eq!(page.next, None);

    send_concurrently(&node, 3, 6).await; // 18 messages: 3 blocks of 5, 3 open
    assert_eq!(c.block_count().await.unwrap(), 3);

    let head = c.head().await.unwrap();
    assert_eq!(head.summary.index, 2);
    assert_eq!(head, c.block(2).await.unwrap());
    assert_eq!(head, c.block_by_hash(&head.summary.hash).await.unwrap());

    let b1 = c.previous(&head.summary.hash).await.unwrap();
    assert_eq!(b1.summary.index, 1);
    assert_eq!(b1.summary.hash, head.summary.prev_hash);
    let b0 = c.previous(&b1.summary.hash).await.unwrap();
    assert_eq!(b0.summary.index, 0);
    assert_eq!(b0.summary.prev_hash, HexBytes([0; 32]));
    assert_eq!(
        audit_chain(c, &node.info).await,
        vec![b0.clone(), b1.clone(), head.clone()]
    );

    // Block 0 has no previous block; unknown hashes and indexes are 404.
    for err in [
        c.previous(&b0.summary.hash).await.unwrap_err(),
        c.block_by_hash(&HexBytes([7; 32])).await.unwrap_err(),
        c.previous(&HexBytes([7; 32])).await.unwrap_err(),
        c.block(3).await.unwrap_err(),
        c.block(u64::MAX).await.unwrap_err(),
        c.message(18).await.unwrap_err(),
        c.proof(18).await.unwrap_err(),
    ] {
        assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")), "{err}");
    }

    // Pages carry headers only and link with `next`.
    let page = c.blocks_page(0, 2).await.unwrap();
    assert_eq!(page.blocks.iter().map(|b| b.index).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(page.next, Some(2));
    assert_eq!(page.blocks[1], b1.summary);
    let page = c.blocks_page(2, 2).await.unwrap();
    assert_eq!(page.blocks.len(), 1);
    assert_eq!(page.next, None);
    let page = c.blocks_page(10, 1000).await.unwrap();
    assert!(page.blocks.is_empty());

    // Bad paths and queries are 400 bad_request, problem+json; so is a
    // real block's hash in uppercase (hex is lowercase only).
    let upper = head.summary.hash.to_hex().to_uppercase();
    let (upper_hash, upper_previous) = (
        format!("/v1/blocks/hash/{upper}"),
        format!("/v1/blocks/hash/{upper}/previous"),
    );
    for path in [
        "/v1/blocks/abc",
        "/v1/blocks/-1",
        "/v1/blocks/hash/xyz",
        "/v1/blocks/hash/ABCDEF",
        &upper_hash,
        &upper_previous,
        "/v1/blocks?limit=0",
        "/v1/blocks?limit=1001",
        "/v1/blocks?from=x",
        "/v1/blocks?frm=1",
        "/v1/messages/abc",
    ] {
        let err = c.get_json::<serde_json::Value>(path).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(400), Some("bad_request")),
            "{path}: {err}"
        );
    }
    let err = c.get_json::<serde_json::Value>("/v1/nothing-here").await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
    node.stop().await;
}
