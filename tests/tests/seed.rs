//! `sealchain-node seed` builds the chain a node builds: a node started on
//! a seeded database serves it, every block audits (PROTOCOL §8), the log's
//! signed checkpoint covers every seeded message, its tiles and proofs hold,
//! and the node goes on from where the seed stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealchain_node::seed::{SeedConfig, seed};
use sealchain_shared::Hash;
use sealchain_shared::api::LogInclusionProof;
use sealchain_shared::merkle::{root, verify_inclusion};
use sealchain_shared::note::{Checkpoint, NoteVerifier};
use sealchain_tests::{NodeOptions, TestDb, TestNode, audit_chain, get_raw, seal};

#[actix_rt::test]
async fn a_seeded_chain_audits_and_its_log_covers_every_message() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let keys_dir = keys.path().join("node-keys");
    let config = SeedConfig {
        database_url: db.url.clone(),
        keys_dir: keys_dir.clone(),
        block_size: 10,
        messages: 1_500,
        clients: 7,
        batch: 256,
        body_bytes: 3,
    };
    let reported = std::sync::atomic::AtomicU64::new(0);
    let seeded = seed(&config, &|n| assert!(n <= 256, "a batch of {n}")).unwrap();
    assert_eq!((seeded.messages, seeded.next_seq, seeded.blocks), (1_500, 1_500, 150));
    // A second run appends (with new clients) and leaves a block open.
    let again = seed(
        &SeedConfig {
            messages: 1_105,
            ..config.clone()
        },
        &|n| {
            reported.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        },
    )
    .unwrap();
    assert_eq!((again.next_seq, again.blocks), (2_605, 260));
    assert_eq!(reported.into_inner(), 1_105);
    // Another block size on the same chain is refused.
    let err = seed(
        &SeedConfig {
            block_size: 100,
            ..config
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("block size 10"), "{err}");

    let node = TestNode::spawn(&db, NodeOptions::default().keys_dir(&keys_dir).arg("--block-size", 10)).await;
    let blocks = audit_chain(&node.client, &node.info).await;
    assert_eq!(blocks.len(), 260);
    let mut leaves: Vec<Hash> = blocks
        .iter()
        .flat_map(|b| b.messages.iter().map(|m| m.leaf_hash.0))
        .collect();
    for seq in 2_600..2_605 {
        leaves.push(node.client.message(seq).await.unwrap().leaf_hash.0);
    }

    // The log: the checkpoint published at start-up covers every message.
    let (status, _, note) = get_raw(&node.base, "/checkpoint").await;
    assert_eq!(status, 200);
    let log = NoteVerifier::parse(&node.info.verifier_key).unwrap();
    let checkpoint = Checkpoint::verify(&note, &log).unwrap().0;
    assert_eq!((checkpoint.size, checkpoint.root), (2_605, root(&leaves)));
    // Tile hashes of level 1 are the roots of 256-leaf subtrees.
    let (status, _, level1) = get_raw(&node.base, "/tile/1/000.p/10").await;
    assert_eq!(status, 200);
    for (k, hash) in level1.chunks(32).enumerate() {
        assert_eq!(hash, root(&leaves[256 * k..256 * (k + 1)]).as_slice(), "tile hash {k}");
    }
    // Inclusion proofs against the checkpoint.
    for seq in [0u64, 255, 256, 1_499, 1_500, 2_604] {
        let proof: LogInclusionProof = node
            .client
            .get_json(&format!("/v1/log/proof/inclusion?seq={seq}"))
            .await
            .unwrap();
        let path: Vec<Hash> = proof.audit_path.iter().map(|h| h.0).collect();
        verify_inclusion(seq, 2_605, &leaves[seq as usize], &path, &checkpoint.root).unwrap();
    }

    // The node continues the seeded chain.
    let receipt = node
        .client
        .submit(&seal::envelope(
            &seal::identity(),
            &node.info,
            "t",
            serde_json::json!(1),
        ))
        .await
        .unwrap();
    assert_eq!(receipt.seq, 2_605);
    node.stop().await;
}
