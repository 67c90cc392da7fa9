//! The log of PROTOCOL §9 against real nodes: checkpoints signed as C2SP
//! notes, tiles and entry bundles as tlog-tiles lays them out, JSON proofs,
//! consistency across every pair of published checkpoints, a fixed origin,
//! a chain from before the log caught up, and SIGKILL while publishing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sealchain_shared::Hash;
use sealchain_shared::api::{ConsistencyProof, LogInclusionProof, NodeInfo};
use sealchain_shared::merkle::{self, leaf_hash, root};
use sealchain_shared::note::{Checkpoint, NoteVerifier};
use sealchain_shared::tlog::{TileId, verify_consistency};
use sealchain_tests::{NodeOptions, NodeProcess, TestDb, TestNode, get_raw, seal};

/// GET with the response headers that matter here.
async fn get(base: &str, path: &str) -> (u16, String, String, Vec<u8>) {
    let mut response = awc::Client::new()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("the node answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    let body = response.body().limit(64 << 20).await.expect("body").to_vec();
    (response.status().as_u16(), content_type, cache, body)
}

async fn checkpoint(base: &str, info: &NodeInfo) -> Checkpoint {
    let (status, content_type, cache, body) = get(base, "/checkpoint").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(cache, "no-cache");
    let log = NoteVerifier::parse(&info.verifier_key).unwrap();
    Checkpoint::verify(&body, &log)
        .expect("the checkpoint verifies under /v1/node's verifier key")
        .0
}

async fn wait_for_size(base: &str, info: &NodeInfo, size: u64, timeout: Duration) -> Checkpoint {
    let deadline = Instant::now() + timeout;
    loop {
        let cp = checkpoint(base, info).await;
        if cp.size >= size {
            return cp;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size} within {timeout:?} (at {})",
            cp.size
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send(
    node_client: &sealchain_client::api::NodeClient,
    info: &NodeInfo,
    n: usize,
) -> Vec<sealchain_shared::api::Receipt> {
    let key = seal::identity();
    let mut receipts = Vec::new();
    for i in 0..n {
        receipts.push(
            node_client
                .submit(&seal::envelope(&key, info, "log", serde_json::json!(i)))
                .await
                .unwrap(),
        );
    }
    receipts
}

#[actix_rt::test]
async fn a_message_is_provable_against_a_signed_checkpoint_within_two_seconds() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    assert_eq!(
        node.info.origin,
        sealchain_shared::note::default_origin(
            &sealchain_shared::VerifyingKey::from_bytes(&node.info.signing_key.0).unwrap()
        )
    );
    // The empty tree has a checkpoint from the start.
    let empty = checkpoint(&node.base, &node.info).await;
    assert_eq!((empty.size, empty.root), (0, merkle::empty_root()));

    let receipt = send(&node.client, &node.info, 1).await.remove(0);
    let sent = Instant::now();
    let cp = wait_for_size(&node.base, &node.info, 1, Duration::from_secs(2)).await;
    let proof: LogInclusionProof = node
        .client
        .get_json(&format!(
            "/v1/log/proof/inclusion?seq={}&tree_size={}",
            receipt.seq, cp.size
        ))
        .await
        .unwrap();
    eprintln!("provable {:?} after the receipt", sent.elapsed());
    assert_eq!(proof.leaf_hash, receipt.leaf_hash);
    assert_eq!(proof.root.0, cp.root);
    let path: Vec<Hash> = proof.audit_path.iter().map(|h| h.0).collect();
    merkle::verify_inclusion(receipt.seq, cp.size, &receipt.leaf_hash.0, &path, &cp.root).unwrap();
    node.stop().await;
}

#[actix_rt::test]
async fn every_pair_of_published_checkpoints_is_consistent() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--checkpoint-interval", 0.05)).await;
    let mut seen = vec![checkpoint(&node.base, &node.info).await];
    let mut total = 0;
    for round in [1usize, 2, 5, 1, 13, 64, 1, 170] {
        send(&node.client, &node.info, round).await;
        total += round;
        seen.push(wait_for_size(&node.base, &node.info, total as u64, Duration::from_secs(10)).await);
    }
    seen.dedup_by_key(|c| c.size);
    assert!(seen.len() >= 8, "{} checkpoints", seen.len());
    for (i, old) in seen.iter().enumerate().filter(|(_, c)| c.size > 0) {
        for new in &seen[i..] {
            let proof: ConsistencyProof = node
                .client
                .get_json(&format!("/v1/log/proof/consistency?from={}&to={}", old.size, new.size))
                .await
                .unwrap();
            let hashes: Vec<Hash> = proof.proof.iter().map(|h| h.0).collect();
            verify_consistency(old.size, new.size, &old.root, &new.root, &hashes)
                .unwrap_or_else(|e| panic!("{} → {}: {e}", old.size, new.size));
        }
    }
    // Bad requests.
    let (a, b) = (seen[1].size, seen[2].size);
    let reversed = format!("/v1/log/proof/consistency?from={b}&to={a}");
    let unpublished = format!("/v1/log/proof/consistency?from=1&to={}", seen.last().unwrap().size + 1);
    for (path, status) in [
        ("/v1/log/proof/consistency?from=0&to=1", 400),
        (reversed.as_str(), 400),
        (unpublished.as_str(), 404),
        ("/v1/log/proof/consistency?from=1&to=100000", 404),
        ("/v1/log/proof/consistency?from=1&bogus=1", 400),
        (
            format!(
                "/v1/log/proof/inclusion?seq=0&tree_size={}",
                seen.last().unwrap().size + 1
            )
            .as_str(),
            404,
        ),
        (format!("/v1/log/proof/inclusion?seq={b}&tree_size={b}").as_str(), 400),
        ("/v1/log/proof/inclusion?seq=100000", 400),
        ("/v1/log/proof/inclusion", 400),
    ] {
        let (got, content_type, _) = get_raw(&node.base, path).await;
        assert_eq!(
            (got, content_type.as_str()),
            (status, "application/problem+json"),
            "{path}"
        );
    }
    node.stop().await;
}

/// Reads a tile (or entry bundle) at a checkpoint's size: full when the
/// tree has filled it, else partial.
async fn tile(base: &str, level: Option<u8>, index: u64, size: u64) -> Vec<u8> {
    let width = sealchain_shared::tlog::tile_width(level, index, size);
    assert!(width > 0);
    let id = TileId {
        level,
        index,
        width: (width < 256).then_some(width as u8),
    };
    let (status, content_type, cache, body) = get(base, &format!("/{}", id.path())).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/octet-stream"),
        "{}",
        id.path()
    );
    let expected_cache = if id.width.is_none() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    assert_eq!(cache, expected_cache);
    body
}

#[actix_rt::test]
async fn tiles_and_entry_bundles_rebuild_the_tree_of_the_checkpoint() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--checkpoint-interval", 0.05)).await;
    let receipts = send(&node.client, &node.info, 600).await;
    let cp = wait_for_size(&node.base, &node.info, 600, Duration::from_secs(10)).await;
    assert_eq!(cp.size, 600);

    // Level 0: two full tiles and a partial one of width 88.
    let mut leaves = Vec::new();
    for n in 0..3 {
        let hashes = tile(&node.base, Some(0), n, cp.size).await;
        assert_eq!(hashes.len(), if n < 2 { 8192 } else { 88 * 32 });
        leaves.extend(hashes.chunks(32).map(|c| Hash::try_from(c).unwrap()));
    }
    assert_eq!(
        root(&leaves),
        cp.root,
        "the level-0 tiles rebuild the checkpoint's root"
    );
    for r in &receipts {
        assert_eq!(leaves[r.seq as usize], r.leaf_hash.0);
    }
    // Level 1: a partial tile of the two full level-0 tiles' hashes.
    let level1 = tile(&node.base, Some(1), 0, cp.size).await;
    assert_eq!(level1.len(), 64);
    assert_eq!(&level1[..32], root(&leaves[..256]).as_slice());
    assert_eq!(&level1[32..], root(&leaves[256..512]).as_slice());
    // Entry bundles: u16be-length-prefixed signed messages hashing to the
    // leaves.
    let mut entries = Vec::new();
    for n in 0..3 {
        let mut bundle = tile(&node.base, None, n, cp.size).await.as_slice().to_vec();
        while !bundle.is_empty() {
            let len = u16::from_be_bytes([bundle[0], bundle[1]]) as usize;
            entries.push(bundle[2..2 + len].to_vec());
            bundle.drain(..2 + len);
        }
    }
    assert_eq!(entries.len(), 600);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(leaf_hash(entry), leaves[i], "entry {i}");
        let signed = sealchain_shared::message::SignedMessage::from_bytes(entry).unwrap();
        let parsed = sealchain_shared::message::Message::parse(&signed.message_bytes, 16384).unwrap();
        sealchain_shared::message::verify(&parsed.sender, &signed.message_bytes, &signed.signature).unwrap();
    }
    // Consistency proofs from any size up to a published one (not only
    // from published sizes): the tiles fix every smaller tree.
    for from in [1u64, 3, 255, 256, 257, 511, 599, 600] {
        let proof: ConsistencyProof = node
            .client
            .get_json(&format!("/v1/log/proof/consistency?from={from}&to={}", cp.size))
            .await
            .unwrap();
        let hashes: Vec<Hash> = proof.proof.iter().map(|h| h.0).collect();
        verify_consistency(from, cp.size, &root(&leaves[..from as usize]), &cp.root, &hashes)
            .unwrap_or_else(|e| panic!("{from} → {}: {e}", cp.size));
    }
    // Entry bundles are compressed for a client that accepts it (gzip's
    // magic bytes); hash tiles, random bytes, are not.
    let mut entries_gz = awc::Client::new()
        .get(format!("{}/tile/entries/000", node.base))
        .insert_header(("accept-encoding", "gzip"))
        .send()
        .await
        .unwrap();
    assert_eq!(entries_gz.status().as_u16(), 200);
    assert_eq!(entries_gz.headers().get("content-encoding").unwrap(), "gzip");
    let gz = entries_gz.body().limit(1 << 20).await.unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let hashes_gz = awc::Client::new()
        .get(format!("{}/tile/0/000", node.base))
        .insert_header(("accept-encoding", "gzip"))
        .send()
        .await
        .unwrap();
    assert!(hashes_gz.headers().get("content-encoding").is_none());

    // A smaller partial of a filled tile is its prefix; beyond the tree is
    // 404; malformed paths are 400.
    let (status, _, _, body) = get(&node.base, "/tile/0/000.p/5").await;
    assert_eq!((status, body.as_slice()), (200, &leaves_bytes(&leaves[..5])[..]));
    for (path, status) in [
        ("/tile/0/003", 404),
        ("/tile/0/002", 404),
        ("/tile/0/002.p/89", 404),
        ("/tile/1/000", 404),
        ("/tile/2/000.p/1", 404),
        ("/tile/entries/x001/000", 404),
        ("/tile/0/x000/000", 400),
        ("/tile/0/1", 400),
        ("/tile/64/000", 400),
        ("/tile/0/000.p/256", 400),
        ("/tile/0/000.p/0", 400),
        ("/tile/entries/000.p/", 400),
    ] {
        let (got, content_type, _) = get_raw(&node.base, path).await;
        assert_eq!(
            (got, content_type.as_str()),
            (status, "application/problem+json"),
            "{path}"
        );
    }
    node.stop().await;
}

fn leaves_bytes(leaves: &[Hash]) -> Vec<u8> {
    leaves.concat()
}

#[actix_rt::test]
async fn the_origin_is_fixed_for_the_life_of_the_chain() {
    let db = TestDb::new();
    let mut node = TestNode::spawn(&db, NodeOptions::default().arg("--origin", "log.example.com/one")).await;
    assert_eq!(node.info.origin, "log.example.com/one");
    assert!(node.info.verifier_key.starts_with("log.example.com/one+"));
    let cp = checkpoint(&node.base, &node.info).await;
    assert_eq!(cp.origin, "log.example.com/one");
    let keys = node.take_keys().unwrap();
    let keys_dir = node.keys_dir.clone();
    node.stop().await;
    let err = TestNode::try_spawn(
        &db,
        NodeOptions::default()
            .keys_dir(&keys_dir)
            .arg("--origin", "log.example.com/two"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("origin \"log.example.com/one\""), "{err:#}");
    let node = TestNode::spawn(
        &db,
        NodeOptions::default()
            .keys_dir(&keys_dir)
            .arg("--origin", "log.example.com/one"),
    )
    .await;
    node.stop().await;
    drop(keys);
}

#[actix_rt::test]
async fn a_chain_from_before_the_log_is_added_to_it_at_start_up() {
    let db = TestDb::new();
    let mut node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 10)).await;
    let receipts = send(&node.client, &node.info, 300).await;
    let keys = node.take_keys().unwrap();
    let keys_dir = node.keys_dir.clone();
    node.stop().await;
    // As the database was after the migration that added the log.
    db.execute("UPDATE chain_state SET origin = NULL, tree_size = 0, compact_range = '\\x'");
    db.execute("DELETE FROM tile_hashes");
    db.execute("DELETE FROM checkpoints");
    let node = TestNode::spawn(&db, NodeOptions::default().keys_dir(&keys_dir).arg("--block-size", 10)).await;
    let cp = checkpoint(&node.base, &node.info).await;
    assert_eq!(cp.size, 300);
    let leaves: Vec<Hash> = receipts.iter().map(|r| r.leaf_hash.0).collect();
    assert_eq!(cp.root, root(&leaves));
    // The tile hash of the first 256 messages was stored on the way.
    let (status, _, _, level1) = get(&node.base, "/tile/1/000.p/1").await;
    assert_eq!((status, level1.as_slice()), (200, root(&leaves[..256]).as_slice()));
    send(&node.client, &node.info, 1).await;
    wait_for_size(&node.base, &node.info, 301, Duration::from_secs(10)).await;
    node.stop().await;
    drop(keys);
}

#[actix_rt::test]
async fn after_sigkill_while_publishing_the_next_checkpoint_is_consistent_with_the_last_served() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let keys_dir = keys.path().join("keys");
    let node = NodeProcess::spawn(&db, &keys_dir, &["--checkpoint-interval", "0.05"]);
    let info = node.client.node_info().await.unwrap();
    let client = node.client.clone();
    let info2 = info.clone();
    let writer = actix_rt::spawn(async move {
        let key = seal::identity();
        for i in 0.. {
            if client
                .submit(&seal::envelope(&key, &info2, "t", serde_json::json!(i)))
                .await
                .is_err()
            {
                return i;
            }
        }
        unreachable!()
    });
    // Watch checkpoints go by while messages flow, then kill mid-stream.
    let mut last = checkpoint(&node.base, &info).await;
    while last.size < 150 {
        last = checkpoint(&node.base, &info).await;
    }
    node.signal("KILL");
    let sent = writer.await.unwrap();
    assert!(sent >= 150);
    drop(node);

    let node = NodeProcess::spawn(&db, &keys_dir, &["--checkpoint-interval", "0.05"]);
    let next = checkpoint(&node.base, &info).await;
    assert!(next.size >= last.size, "{} < {}", next.size, last.size);
    let proof: ConsistencyProof = node
        .client
        .get_json(&format!(
            "/v1/log/proof/consistency?from={}&to={}",
            last.size, next.size
        ))
        .await
        .unwrap();
    let hashes: Vec<Hash> = proof.proof.iter().map(|h| h.0).collect();
    verify_consistency(last.size, next.size, &last.root, &next.root, &hashes).unwrap();
}
