//! The node's log checked by independent implementations of the C2SP
//! specifications (Cloudflare's `signed_note` and `tlog_tiles` crates): they
//! verify its checkpoint, rebuild its tree hash from its tiles read over
//! HTTP, and check the inclusion and consistency proofs it serves — and
//! compute the same proofs themselves.
//!
//! `tlog_tiles` 0.2 names tiles as the Go checksum database did, with the
//! tile height as a path segment (`tile/8/0/x001/234`); C2SP tlog-tiles
//! dropped that segment (`tile/0/x001/234`). The paths are compared with it
//! removed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sealchain_shared::api::{ConsistencyProof, LogInclusionProof, NodeInfo};
use sealchain_shared::tlog::{TileId, tile_width};
use sealchain_tests::{NodeOptions, TestDb, TestNode, seal};
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash, HashReader as _, Tile, TileHashReader, TileReader};

async fn get(base: &str, path: &str) -> (u16, Vec<u8>) {
    let mut response = awc::Client::new().get(format!("{base}{path}")).send().await.unwrap();
    let body = response.body().limit(1 << 20).await.unwrap().to_vec();
    (response.status().as_u16(), body)
}

/// The checkpoint as the independent crates read it.
async fn their_checkpoint(base: &str, info: &NodeInfo) -> Checkpoint {
    let (status, body) = get(base, "/checkpoint").await;
    assert_eq!(status, 200);
    let note = Note::from_bytes(&body).expect("signed_note parses the checkpoint");
    let verifier = StandardVerifier::new(&info.verifier_key).expect("signed_note parses the verifier key");
    let (verified, unverified) = note
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .expect("signed_note verifies the node's signature");
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    Checkpoint::from_bytes(note.text()).expect("tlog_tiles parses the checkpoint")
}

async fn wait_for(base: &str, info: &NodeInfo, size: u64) -> Checkpoint {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cp = their_checkpoint(base, info).await;
        if cp.size() >= size {
            return cp;
        }
        assert!(Instant::now() < deadline, "no checkpoint of size {size}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tiles fetched over HTTP before the crate asks for them (its reader is
/// synchronous); a tile it asks for that was not fetched fails the test.
struct Tiles(HashMap<String, Vec<u8>>);

impl TileReader for Tiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        Ok(tiles
            .iter()
            .map(|t| {
                let ours = their_path_as_ours(t);
                self.0
                    .get(&ours)
                    .unwrap_or_else(|| {
                        panic!(
                            "tlog_tiles asked for {} ({ours}), which the node's tree does not imply",
                            t.path()
                        )
                    })
                    .clone()
            })
            .collect())
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// The crate's path without the height segment, checked against ours.
fn their_path_as_ours(t: &Tile) -> String {
    assert_eq!(t.height(), 8);
    let ours = TileId {
        level: Some(t.level()),
        index: t.level_index(),
        width: (t.width() < 256).then(|| t.width() as u8),
    }
    .path();
    assert_eq!(t.path().replacen("tile/8/", "tile/", 1), ours, "tile paths agree");
    ours
}

#[actix_rt::test]
async fn independent_implementations_verify_the_checkpoint_tiles_and_proofs() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--checkpoint-interval", 0.05)).await;
    let key = seal::identity();
    let mut leaves = Vec::new();
    let mut earlier = None;
    for i in 0..700 {
        let receipt = node
            .client
            .submit(&seal::envelope(&key, &node.info, "interop", serde_json::json!(i)))
            .await
            .unwrap();
        leaves.push(receipt.leaf_hash.0);
        if i == 299 {
            earlier = Some(wait_for(&node.base, &node.info, 300).await);
        }
    }
    let earlier = earlier.unwrap();
    let cp = wait_for(&node.base, &node.info, 700).await;
    assert_eq!(cp.size(), 700);
    assert_eq!(cp.origin(), node.info.origin);
    assert_eq!(cp.extension(), "");

    // Every tile of the tree, over HTTP, at the node's paths.
    let mut tiles = HashMap::new();
    for level in 0..3u8 {
        for index in 0.. {
            let width = tile_width(Some(level), index, cp.size());
            if width == 0 {
                break;
            }
            let id = TileId {
                level: Some(level),
                index,
                width: (width < 256).then_some(width as u8),
            };
            let (status, body) = get(&node.base, &format!("/{}", id.path())).await;
            assert_eq!(status, 200, "{}", id.path());
            tiles.insert(id.path(), body);
        }
    }
    let tiles = Tiles(tiles);
    let reader = TileHashReader::new(cp.size(), *cp.hash(), &tiles);
    let root = tlog_tiles::tree_hash(cp.size(), &reader).expect("tlog_tiles rebuilds the tree hash from the tiles");
    assert_eq!(root, *cp.hash());
    assert_eq!(root.0, sealchain_shared::merkle::root(&leaves));
    // The leaves it reads are the receipts' leaf hashes.
    let indexes: Vec<u64> = [0u64, 255, 256, 699]
        .iter()
        .map(|&n| tlog_tiles::stored_hash_index(0, n))
        .collect();
    let read = reader.read_hashes(&indexes).unwrap();
    assert_eq!(
        read.iter().map(|h| h.0).collect::<Vec<_>>(),
        [leaves[0], leaves[255], leaves[256], leaves[699]]
    );

    // Inclusion: the node's JSON proofs check with tlog_tiles, and equal the
    // proofs it computes from the tiles itself.
    for seq in [0u64, 1, 255, 256, 511, 600, 699] {
        let ours: LogInclusionProof = node
            .client
            .get_json(&format!("/v1/log/proof/inclusion?seq={seq}&tree_size=700"))
            .await
            .unwrap();
        let proof: Vec<Hash> = ours.audit_path.iter().map(|h| Hash(h.0)).collect();
        tlog_tiles::check_record(&proof, 700, *cp.hash(), seq, Hash(leaves[seq as usize]))
            .unwrap_or_else(|e| panic!("seq {seq}: {e:?}"));
        assert_eq!(tlog_tiles::prove_record(700, seq, &reader).unwrap(), proof, "seq {seq}");
    }

    // Consistency from the earlier checkpoint.
    let ours: ConsistencyProof = node
        .client
        .get_json(&format!("/v1/log/proof/consistency?from={}&to=700", earlier.size()))
        .await
        .unwrap();
    let proof: Vec<Hash> = ours.proof.iter().map(|h| Hash(h.0)).collect();
    tlog_tiles::check_tree(&proof, 700, *cp.hash(), earlier.size(), *earlier.hash())
        .expect("tlog_tiles checks the consistency proof");
    assert_eq!(tlog_tiles::prove_tree(700, earlier.size(), &reader).unwrap(), proof);
    node.stop().await;
}
