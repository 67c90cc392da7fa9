//! The `sealchain` command against real nodes and Postgres: keys, send and
//! receipts, the classic simulation, reading blocks, proofs, the audit
//! (including bytes changed behind the node's back), pinning, errors and
//! the benchmark.
//!
//! These tests run the real binary. Cargo builds it for `cargo test
//! --workspace` or `cargo test -p sealchain-client`; when running only this
//! crate, build it first (`cargo build -p sealchain-client`) — the tests
//! refuse a binary older than the client's sources.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sealchain_shared::api::{NodeInfo, Receipt};
use sealchain_shared::{VerifyingKey, audit};
use sealchain_tests::cli::{Cli, fill, flip};
use sealchain_tests::{NodeOptions, TestDb, TestNode, seal, tamper};
use serde_json::Value;

fn node_key(info: &NodeInfo) -> VerifyingKey {
    VerifyingKey::from_bytes(&info.signing_key.0).unwrap()
}

fn write_receipts(path: &Path, receipts: &[Receipt]) {
    let lines: String = receipts
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(path, lines).unwrap();
}

#[actix_rt::test]
async fn send_signs_seals_and_checks_the_receipt() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let cli = Cli::new(&node);
    cli.ok(&["keygen", "--out", "keys"]).await;
    let send = [
        "send",
        "--key",
        "keys/client-000.pem",
        "--topic",
        "sensors/temp",
        "--body",
        r#"{"reading": 21.5, "unit": "C"}"#,
        "--receipts",
        "receipts.jsonl",
    ];

    let text = cli.ok(&send).await;
    assert!(text.contains("accepted     seq 0 in block 0"), "{text}");
    assert!(text.contains("verified under the node's key"), "{text}");
    assert!(text.contains("receipt appended to receipts.jsonl"), "{text}");
    let receipt: Receipt = serde_json::from_value(cli.json(&send).await).unwrap();
    assert_eq!(receipt.seq, 1);

    // The receipt file holds both, one JSON object per line, and each names
    // the stored message.
    let lines: Vec<Receipt> = std::fs::read_to_string(cli.path("receipts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], receipt);
    for r in &lines {
        audit::verify_receipt(r, &node_key(&node.info), node.info.block_size).unwrap();
        let stored = node.client.message(r.seq).await.unwrap();
        assert_eq!(stored.leaf_hash, r.leaf_hash);
        assert!(
            stored
                .message
                .contains(r#""topic":"sensors/temp","body":{"reading":21.5,"unit":"C"}"#)
        );
        let sender = sealchain_shared::keys::load_signing_key(&cli.path("keys/client-000.pem")).unwrap();
        assert_eq!(stored.sender.0, sender.verifying_key().to_bytes());
    }

    // The node's problem reaches the user as code and detail.
    cli.fails(
        &[
            "send",
            "--key",
            "keys/client-000.pem",
            "--topic",
            "t",
            "--body",
            &format!("\"{}\"", "x".repeat(17_000)),
        ],
        "422 invalid_message",
    )
    .await;
    node.stop().await;
}

#[actix_rt::test]
async fn simulate_seals_blocks_that_verify() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 10)).await;
    let cli = Cli::new(&node);
    let summary = cli
        .json(&[
            "simulate",
            "--keys",
            "keys",
            "--clients",
            "4",
            "--interval",
            "50ms",
            "--duration",
            "2s",
            "--receipts",
            "receipts.jsonl",
        ])
        .await;
    assert_eq!(summary["messages_per_client"], 40, "{summary}");
    assert_eq!(summary["sent"], 160, "{summary}");
    assert_eq!(summary["accepted"], 160, "{summary}");
    assert_eq!(summary["rejected"], 0, "{summary}");
    assert_eq!(summary["bad_receipts"], 0, "{summary}");
    assert_eq!(summary["blocks_sealed"], 16, "{summary}");
    let latency = &summary["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["max"].as_f64().unwrap());

    // Each client had its own identity, created in the key directory.
    use std::os::unix::fs::PermissionsExt;
    for i in 0..4 {
        let meta = std::fs::metadata(cli.path(&format!("keys/client-{i:03}.pem"))).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    assert!(!cli.path("keys/client-004.pem").exists());
    let mut senders = std::collections::BTreeSet::new();
    for seq in [0, 1, 2, 3, 100, 159] {
        senders.insert(node.client.message(seq).await.unwrap().sender);
    }
    assert_eq!(senders.len(), 4, "messages come from the four clients");

    // The chain and every receipt verify.
    let text = cli.ok(&["verify", "--receipts", "receipts.jsonl"]).await;
    assert!(
        text.contains("chain ok: blocks 0..=15 (16 blocks, 160 messages)"),
        "{text}"
    );
    assert!(
        text.contains("160 signed by the node and included in verified blocks, 0 pending"),
        "{text}"
    );

    // Human summary of a second run: the same keys, 16 more blocks.
    let text = cli
        .ok(&[
            "simulate",
            "--keys",
            "keys",
            "--clients",
            "4",
            "--interval",
            "100ms",
            "--duration",
            "1s",
        ])
        .await;
    for line in [
        "sent       40",
        "accepted   40",
        "rejected   0",
        "blocks     4 sealed during the run (20 in the chain)",
    ] {
        assert!(text.contains(line), "{line:?} not in {text}");
    }
    node.stop().await;
}

#[actix_rt::test]
async fn simulate_fails_when_messages_are_rejected() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--client-policy", "allowlist")).await;
    let cli = Cli::new(&node);
    let args = [
        "simulate",
        "--keys",
        "keys",
        "--clients",
        "2",
        "--interval",
        "50ms",
        "--duration",
        "200ms",
    ];
    let output = cli.run(&[&["--json"][..], &args].concat()).await;
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["sent"], 8, "{summary}");
    assert_eq!(summary["accepted"], 0, "{summary}");
    assert_eq!(summary["rejected_by_code"]["unknown_sender"], 8, "{summary}");
    cli.fails(&args, "8 of 8 messages were rejected (unknown_sender 8)")
        .await;
    // And one send shows the node's code and detail.
    cli.fails(
        &["send", "--key", "keys/client-000.pem", "--topic", "t", "--body", "1"],
        "sending the message: 403 unknown_sender: ",
    )
    .await;
    node.stop().await;
}

#[actix_rt::test]
async fn blocks_and_proof_read_and_check_the_chain() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 10)).await;
    let cli = Cli::new(&node);
    assert_eq!(cli.json(&["blocks", "count"]).await["count"], 0);
    cli.fails(&["blocks", "head"], "404 not_found").await;
    fill(&node, 35).await; // blocks 0..=2, five messages open

    assert_eq!(cli.json(&["blocks", "count"]).await["count"], 3);
    assert!(cli.ok(&["blocks", "count"]).await.starts_with("3 blocks sealed"));

    let b1 = cli.json(&["blocks", "get", "1"]).await;
    assert_eq!(b1["index"], 1);
    assert_eq!(b1["messages"].as_array().unwrap().len(), 10);
    let text = cli.ok(&["blocks", "get", "1", "--messages"]).await;
    assert!(
        text.contains("check        ok: header hash, node signature, Merkle root and 10 message signatures verify"),
        "{text}"
    );
    assert!(text.contains(r#""topic":"sensors/temp","body":{"i":19}"#), "{text}");

    let head = cli.json(&["blocks", "head"]).await;
    assert_eq!(head["index"], 2);
    let head_hash = head["hash"].as_str().unwrap();
    assert_eq!(cli.json(&["blocks", "hash", head_hash]).await, head);
    assert_eq!(cli.json(&["blocks", "hash", &head_hash.to_uppercase()]).await, head);
    let prev = cli.json(&["blocks", "prev", head_hash]).await;
    assert_eq!(prev, b1);

    let page = cli.json(&["blocks", "list", "--from", "1", "--limit", "1"]).await;
    assert_eq!(page["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(page["blocks"][0]["hash"], b1["hash"]);
    assert_eq!(page["next"], 2);
    let text = cli.ok(&["blocks", "list"]).await;
    assert!(
        text.contains("check: ok (3 headers: hash, node signature, links)"),
        "{text}"
    );

    // Proof of message 17: leaf 7 of 10 in block 1, four hashes up.
    let proof = cli.json(&["proof", "17"]).await;
    assert_eq!(proof["block_index"], 1);
    assert_eq!(proof["leaf_index"], 7);
    assert_eq!(proof["audit_path"].as_array().unwrap().len(), 4);
    assert_eq!(proof["merkle_root"], b1["merkle_root"]);
    assert_eq!(proof["verified"], true);
    let text = cli.ok(&["proof", "17"]).await;
    assert!(text.contains("block        1 (leaf 7 of 10)"), "{text}");
    assert!(text.contains("audit path   4 hashes, from the leaf up"), "{text}");
    assert!(text.starts_with("message      17 from "), "{text}");

    // Errors: unknown, open, malformed.
    cli.fails(&["blocks", "get", "7"], "fetching block 7: 404 not_found: no block 7")
        .await;
    cli.fails(&["blocks", "hash", &"ab".repeat(32)], "404 not_found").await;
    cli.fails(&["blocks", "prev", b1["prev_hash"].as_str().unwrap()], "404 not_found")
        .await;
    cli.fails(&["blocks", "hash", "xyz"], "\"xyz\" is not a block hash")
        .await;
    cli.fails(&["proof", "33"], "409 not_sealed").await;
    cli.fails(&["proof", "99"], "404 not_found").await;

    // A block changed in the database is shown, flagged, and fails.
    flip(&db, "messages", "message", "seq = 12", 30);
    let err = cli.fails(&["blocks", "get", "1"], "block 1 does not verify").await;
    assert!(err.contains("message 12"), "{err}");
    cli.fails(&["proof", "12"], "message 12: ").await;
    node.stop().await;
}

#[actix_rt::test]
async fn verify_names_the_first_changed_byte_in_postgres() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 10)).await;
    let cli = Cli::new(&node);
    fill(&node, 45).await; // blocks 0..=3
    let text = cli.ok(&["verify"]).await;
    assert!(
        text.contains("chain ok: blocks 0..=3 (4 blocks, 40 messages)"),
        "{text}"
    );
    assert!(text.contains(&node.info.signing_key.to_hex()), "{text}");
    assert!(
        cli.ok(&["verify", "--from", "2"])
            .await
            .contains("chain ok: blocks 2..=3")
    );

    // One bit of one byte, in each stored part of the chain.
    let cases: &[(&str, &str, &str, usize, &str)] = &[
        (
            "messages",
            "message",
            "seq = 3",
            40,
            "block 0: message 3: leaf_hash does not match",
        ),
        (
            "messages",
            "signature",
            "seq = 12",
            5,
            "block 1: message 12: leaf_hash does not match",
        ),
        (
            "messages",
            "leaf_hash",
            "seq = 25",
            31,
            "block 2: message 25: leaf_hash does not match",
        ),
        (
            "blocks",
            "merkle_root",
            "idx = 1",
            0,
            "block 1: header fields do not re-encode to its hash",
        ),
        (
            "blocks",
            "signature",
            "idx = 2",
            63,
            "block 2: node signature does not verify",
        ),
        (
            "blocks",
            "prev_hash",
            "idx = 3",
            7,
            "block 3: header fields do not re-encode to its hash",
        ),
        (
            "blocks",
            "hash",
            "idx = 0",
            0,
            "block 0: header fields do not re-encode to its hash",
        ),
    ];
    for &(table, column, row, byte, needle) in cases {
        flip(&db, table, column, row, byte);
        let err = cli.fails(&["verify"], needle).await;
        flip(&db, table, column, row, byte);
        if !needle.starts_with("block 0") {
            assert!(err.contains("verified before it"), "{err}");
        }
    }
    // The sender: messages hold their sender's number, so message 33 is
    // made to name another key, one bit off its own, by a number of its own.
    db.execute(
        "WITH other AS (INSERT INTO senders (key) \
           SELECT set_byte(s.key, 0, get_byte(s.key, 0) # 1) FROM senders s \
           JOIN messages m ON m.sender_id = s.id WHERE m.seq = 33 RETURNING id) \
         UPDATE messages SET sender_id = (SELECT id FROM other) WHERE seq = 33",
    );
    let err = cli
        .fails(&["verify"], "block 3: message 33: sender field differs")
        .await;
    assert!(err.contains("verified before it"), "{err}");
    db.execute("UPDATE messages SET sender_id = (SELECT sender_id FROM messages WHERE seq = 32) WHERE seq = 33");
    // Changed integers and a message moved out of its block.
    db.execute("UPDATE blocks SET sealed_at = sealed_at + 1 WHERE idx = 2");
    cli.fails(&["verify"], "block 2: header fields do not re-encode").await;
    db.execute("UPDATE blocks SET sealed_at = sealed_at - 1 WHERE idx = 2");
    db.execute("UPDATE messages SET seq = 1000 WHERE seq = 14");
    cli.fails(&["verify"], "block 1: lists 9 messages, header says 10")
        .await;
    db.execute("UPDATE messages SET seq = 14 WHERE seq = 1000");
    // The link from --from's predecessor is checked too.
    flip(&db, "blocks", "signature", "idx = 1", 0);
    cli.fails(&["verify", "--from", "2"], "block 1: node signature does not verify")
        .await;
    flip(&db, "blocks", "signature", "idx = 1", 0);

    // Restored byte for byte, the chain verifies again.
    let report = cli.json(&["verify"]).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["blocks_verified"], 4);
    assert_eq!(report["messages_verified"], 40);
    // And --json reports a failure as well as exiting non-zero.
    flip(&db, "messages", "message", "seq = 3", 40);
    let output = cli.run(&["--json", "verify"]).await;
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert!(report["error"].as_str().unwrap().contains("message 3"), "{report}");
    node.stop().await;
}

#[actix_rt::test]
async fn verify_receipts_checks_signatures_and_inclusion() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 10)).await;
    let cli = Cli::new(&node);
    let receipts = fill(&node, 25).await; // blocks 0, 1; five open
    write_receipts(&cli.path("receipts.jsonl"), &receipts);

    let text = cli.ok(&["verify", "--receipts", "receipts.jsonl"]).await;
    assert!(
        text.contains(
            "receipts ok: 25 in receipts.jsonl: 20 signed by the node and included in verified blocks, 5 pending"
        ),
        "{text}"
    );
    // Receipts of blocks before --from are checked against their headers.
    let report = cli
        .json(&["verify", "--from", "1", "--receipts", "receipts.jsonl"])
        .await;
    assert_eq!(report["receipts"]["included"], 20, "{report}");
    assert_eq!(report["receipts"]["pending"], 5, "{report}");

    // A receipt whose signature does not verify.
    let mut forged = receipts.clone();
    forged[7].received_at += 1;
    write_receipts(&cli.path("forged.jsonl"), &forged);
    cli.fails(
        &["verify", "--receipts", "forged.jsonl"],
        "receipt 7: node signature does not verify",
    )
    .await;

    // The stored receipt time is outside every hash and signature of the
    // chain: only a receipt can show that it was changed.
    db.execute("UPDATE messages SET received_at = received_at + 1 WHERE seq = 4");
    cli.ok(&["verify"]).await;
    cli.fails(
        &["verify", "--receipts", "receipts.jsonl"],
        "receipt 4: block 0 lists received_at",
    )
    .await;
    node.stop().await;
}

#[actix_rt::test]
async fn a_node_with_other_keys_than_the_pin_is_refused() {
    let (db_a, db_b) = (TestDb::new(), TestDb::new());
    let a = TestNode::spawn(&db_a, NodeOptions::default()).await;
    let b = TestNode::spawn(&db_b, NodeOptions::default()).await;
    let cli = Cli::new(&a);
    let (key_a, key_b) = (a.info.signing_key.to_hex(), b.info.signing_key.to_hex());

    // First contact pins A's keys.
    let text = cli.ok(&["node-info"]).await;
    assert!(text.contains(&format!("signing key     {key_a}")), "{text}");
    let known = cli.path("data/known_nodes");
    assert!(
        text.contains(&format!("first contact: keys pinned in {}:2", known.display())),
        "{text}"
    );
    let line = std::fs::read_to_string(&known)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(
        line,
        format!(
            "{} {key_a} {} 100 {}",
            a.base,
            a.info.encryption_key.to_hex(),
            a.info.origin
        )
    );
    assert_eq!(cli.json(&["node-info"]).await["pin"]["status"], "matched");
    cli.ok(&["keygen", "--out", "keys"]).await;

    // B, pretending to be A (same URL for the client: --pin-file of A's
    // line under B's URL), is refused by every command that talks to a node,
    // naming both keys and the line to remove.
    let b_url = b.base.as_str();
    std::fs::write(&known, format!("{}\n", line.replacen(&a.base, b_url, 1))).unwrap();
    for args in [
        &["node-info"][..],
        &["send", "--key", "keys/client-000.pem", "--topic", "t", "--body", "1"],
        &[
            "simulate",
            "--keys",
            "keys",
            "--clients",
            "1",
            "--interval",
            "10ms",
            "--duration",
            "10ms",
        ],
        &["blocks", "count"],
        &["verify"],
        &["proof", "0"],
        &["proof", "0", "--out", "0.tlog-proof"],
        &["checkpoint"],
        &["monitor", "--once"],
        &["bench", "--messages", "1"],
    ] {
        let err = cli
            .fails(&[&["--node", b_url][..], args].concat(), "node key mismatch")
            .await;
        assert!(err.contains(&key_a) && err.contains(&key_b), "{err}");
        assert!(err.contains(&format!("remove line 1 of {}", known.display())), "{err}");
    }
    assert_eq!(
        b.client.message(0).await.unwrap_err().code(),
        Some("not_found"),
        "nothing reached B"
    );

    // --node-key pins the signing key without a file; --no-pin skips the file.
    let err = cli
        .fails(
            &["--node", b_url, "--no-pin", "--node-key", &key_a, "node-info"],
            "--node-key pins",
        )
        .await;
    assert!(err.contains(&key_b), "{err}");
    assert!(
        cli.ok(&["--node", b_url, "--no-pin", "node-info"])
            .await
            .contains("not checked (--no-pin)")
    );
    let text = cli
        .ok(&[
            "--node",
            b_url,
            "--node-key",
            &key_b,
            "--pin-file",
            "b.json",
            "node-info",
        ])
        .await;
    assert!(text.contains("first contact: keys pinned in b.json:2"), "{text}");

    // Two nodes from one directory: each URL has its own line.
    std::fs::remove_file(&known).unwrap();
    cli.ok(&["--node", b_url, "node-info"]).await;
    cli.ok(&["node-info"]).await;
    let listed = cli.json(&["nodes", "list"]).await;
    let urls: Vec<&str> = listed["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, [b_url, a.base.as_str()]);
    assert_eq!(cli.json(&["node-info"]).await["pin"]["status"], "matched");
    assert_eq!(
        cli.json(&["--node", b_url, "node-info"]).await["pin"]["status"],
        "matched"
    );
    // Forgetting one keeps the other.
    let text = cli.ok(&["nodes", "forget", b_url]).await;
    assert!(text.contains("forgot") && text.contains("line 2"), "{text}");
    cli.fails(&["nodes", "forget", b_url], "is not pinned").await;
    assert_eq!(cli.json(&["node-info"]).await["pin"]["status"], "matched");
    assert_eq!(
        cli.json(&["--node", b_url, "node-info"]).await["pin"]["status"],
        "pinned"
    );
    a.stop().await;
    b.stop().await;
}

#[actix_rt::test]
async fn a_stopped_node_is_one_clear_line() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let cli = Cli::new(&node);
    cli.ok(&["node-info"]).await;
    node.stop().await;
    let err = cli
        .fails(&["blocks", "count"], "cannot reach the node at http://127.0.0.1:")
        .await;
    assert!(err.contains("is the node running?"), "{err}");
}

#[actix_rt::test]
async fn bench_reports_throughput_latency_and_errors() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let cli = Cli::new(&node);
    let report = cli
        .json(&["bench", "--messages", "200", "--concurrency", "8", "--clients", "5"])
        .await;
    assert_eq!(report["messages"], 200, "{report}");
    assert_eq!(report["accepted"], 200, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["errors_by_code"], serde_json::json!({}), "{report}");
    assert_eq!(report["bad_receipts"], 0, "{report}");
    assert!(report["accepted_per_second"].as_f64().unwrap() > 0.0, "{report}");
    let l = &report["latency_ms"];
    let q = |k: &str| l[k].as_f64().unwrap();
    assert!(
        0.0 < q("p50") && q("p50") <= q("p90") && q("p90") <= q("p99") && q("p99") <= q("max"),
        "{l}"
    );

    // The messages are real: two full blocks that verify.
    assert_eq!(node.client.block_count().await.unwrap(), 2);
    assert!(
        cli.ok(&["verify"])
            .await
            .contains("chain ok: blocks 0..=1 (2 blocks, 200 messages)")
    );
    let text = cli.ok(&["bench", "--messages", "20", "--concurrency", "4"]).await;
    assert!(text.contains("accepted   20 in "), "{text}");
    assert!(text.contains("errors     0"), "{text}");
    node.stop().await;
}

#[actix_rt::test]
async fn verify_remembers_the_chain_and_catches_truncation_and_rewrites() {
    let db = TestDb::new();
    let mut node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 5)).await;
    let _keys = node.take_keys();
    let keys_dir = node.keys_dir.clone();
    fill(&node, 12).await; // blocks 0 and 1, two messages open
    let cli = Cli::new(&node);

    let text = cli.ok(&["verify"]).await;
    let checkpoint_file = cli.path(&format!("data/checkpoints/{}.json", node.info.signing_key));
    assert!(
        text.contains(&format!(
            "checkpoint: block 1 recorded in {}",
            checkpoint_file.display()
        )),
        "{text}"
    );
    let checkpoint: Value = serde_json::from_str(&std::fs::read_to_string(&checkpoint_file).unwrap()).unwrap();
    assert_eq!(checkpoint["index"], 1);
    assert_eq!(
        checkpoint["hash"],
        node.client.block(1).await.unwrap().summary.hash.to_hex()
    );
    let text = cli.ok(&["verify"]).await;
    assert!(
        text.contains("history ok: block 1 of an earlier audit is unchanged"),
        "{text}"
    );

    // The node rewrites history with its own key: it forgets block 1 and
    // everything after block 0, then seals a different block 1. The new
    // chain is valid on its own.
    node.stop().await;
    db.execute("DELETE FROM blocks WHERE idx >= 1");
    db.execute("DELETE FROM messages WHERE seq >= 5");
    // (It rewinds its log too; the node rebuilds it from the messages.)
    db.execute("DELETE FROM tile_hashes");
    db.execute("DELETE FROM checkpoints");
    db.execute(
        "UPDATE chain_state SET next_seq = 5, block_count = 1, \
         head_hash = (SELECT hash FROM blocks WHERE idx = 0), tree_size = 0, compact_range = '\\x'",
    );
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 5).keys_dir(&keys_dir)).await;
    let cli = Cli {
        node: node.base.clone(),
        ..cli
    };

    // Truncated: the chain no longer reaches the checkpoint.
    cli.fails(
        &["verify"],
        "the chain was truncated: an earlier audit verified block 1",
    )
    .await;
    fill(&node, 5).await;
    // Rewritten: block 1 exists again, with another hash.
    cli.fails(&["verify"], "the chain was rewritten: block 1 had hash")
        .await;
    cli.fails(&["verify", "--from", "2"], "the chain was rewritten").await;
    // Without the memory the forged chain passes: that is what the
    // checkpoint is for.
    cli.ok(&["verify", "--no-checkpoint"]).await;
    node.stop().await;
}

/// PROTOCOL §8: no (sender, nonce) twice. The node replays message 3 as
/// message 12 and reseals block 2 with its own key, so every block verifies
/// on its own; `verify` names both seqs, also when it audits only the new
/// block and knows message 3 from the checkpoint of an earlier audit.
#[actix_rt::test]
async fn verify_catches_a_replayed_message_naming_both_seqs() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 5)).await;
    let cli = Cli::new(&node);
    let key = seal::identity();
    for i in 0..10 {
        node.client
            .submit(&seal::envelope(&key, &node.info, "t", serde_json::json!(i)))
            .await
            .unwrap();
    }
    // The first audit covers blocks 0 and 1 and remembers their pairs.
    let out = cli.ok(&["verify"]).await;
    assert!(out.contains("blocks 0..=1"), "{out}");
    for i in 10..15 {
        node.client
            .submit(&seal::envelope(&key, &node.info, "t", serde_json::json!(i)))
            .await
            .unwrap();
    }
    tamper::replay_message(&db, 3, 12);
    tamper::reseal_blocks(&db, &node.keys_dir, 2);

    let err = cli.fails(&["verify", "--from", "2"], "message 12").await;
    assert!(err.contains("message 3") && err.contains("replay"), "{err}");
    let err = cli.fails(&["verify", "--no-checkpoint"], "message 12").await;
    assert!(err.contains("message 3") && err.contains("replay"), "{err}");
    // The same through the merge of many sorted runs of pairs on disk.
    for args in [
        &["verify", "--no-checkpoint", "--pair-run-records", "2"][..],
        &["verify", "--from", "2", "--pair-run-records", "1"][..],
    ] {
        let err = cli.fails(args, "message 12").await;
        assert!(
            err.contains("block 2: message 12: sender")
                && err.contains("reuses nonce")
                && err.contains("of message 3 (a replay)"),
            "{args:?}: {err}"
        );
    }
    // The pairs remembered from the first audit live in a pair file the
    // checkpoint names by its SHA-256: one changed, cut short or swapped
    // is refused, naming it.
    let dir = cli.path("data/checkpoints");
    let pair_file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pairs"))
        .expect("a pair file next to the checkpoint");
    let good = std::fs::read(&pair_file).unwrap();
    assert_eq!(good.len(), 16 + 10 * 24, "10 pairs of 24 bytes after the magic");
    let mut changed = good.clone();
    changed[30] ^= 1;
    std::fs::write(&pair_file, &changed).unwrap();
    let err = cli
        .fails(
            &["verify", "--from", "2"],
            "does not have the SHA-256 the checkpoint records",
        )
        .await;
    assert!(err.contains(&pair_file.display().to_string()), "{err}");
    std::fs::write(&pair_file, &good[..good.len() - 24]).unwrap();
    cli.fails(&["verify", "--from", "2"], "truncated or replaced").await;
    std::fs::write(&pair_file, &good).unwrap();
    // A copy of a later message placed before it is named the same way,
    // earlier seq first.
    db.execute(
        "UPDATE messages SET (sender_id, nonce, signature, message, leaf_hash) = \
         (SELECT sender_id, nonce, signature, message, leaf_hash FROM messages WHERE seq = 13) WHERE seq = 12",
    );
    tamper::reseal_blocks(&db, &node.keys_dir, 2);
    let err = cli.fails(&["verify", "--no-checkpoint"], "message 13").await;
    assert!(err.contains("message 12"), "a copy of 13 at 12 is a replay too: {err}");
    node.stop().await;
}

/// Rows deleted, moved or added behind the node's back (and not resealed):
/// `verify` fails naming the block and what is wrong with it. A middle
/// block deleted; two blocks' rows swapped; an extra message row inside a
/// sealed block's range (later rows renumbered to make room, or sharing a
/// seq once the primary key is dropped) or right after it, at the first
/// seq of the next block. Each restored, the chain verifies again.
#[actix_rt::test]
async fn verify_names_a_missing_block_swapped_blocks_and_an_extra_message() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 10)).await;
    let cli = Cli::new(&node);
    fill(&node, 45).await; // blocks 0..=3, 5 messages open
    let verify = ["verify", "--no-checkpoint"];
    let intact = "chain ok: blocks 0..=3 (4 blocks, 40 messages)";
    assert!(cli.ok(&verify).await.contains(intact));

    // A deleted middle block.
    db.execute("CREATE TABLE deleted_block AS SELECT * FROM blocks WHERE idx = 1");
    assert_eq!(db.execute("DELETE FROM blocks WHERE idx = 1"), 1);
    cli.fails(
        &verify,
        "block 1 is missing: the node counts 4 sealed blocks but answers 404 not_found",
    )
    .await;
    db.execute("INSERT INTO blocks SELECT * FROM deleted_block");
    db.execute("DROP TABLE deleted_block");
    assert!(cli.ok(&verify).await.contains(intact));

    // Two blocks exchange their rows.
    tamper::swap_blocks(&db, 1, 2);
    let err = cli
        .fails(
            &verify,
            "block 1: holds block 2 (its fields hash to its hash under index 2)",
        )
        .await;
    assert!(
        err.contains("moved or swapped") && err.contains("blocks 0..=0 verified before it"),
        "{err}"
    );
    tamper::swap_blocks(&db, 1, 2);
    assert!(cli.ok(&verify).await.contains(intact));

    // An extra message, validly signed by a client, slipped into block 1
    // at seq 15 (the rows after it renumbered), then right after block 1
    // (seq 20, the first of block 2).
    let extra = seal::signed(&seal::identity(), &node.info, "t", serde_json::json!("extra"));
    for (seq, needle) in [
        (
            15,
            "block 1: merkle_root does not match its messages (blocks 0..=0 verified before it)",
        ),
        (
            20,
            "block 2: merkle_root does not match its messages (blocks 0..=1 verified before it)",
        ),
    ] {
        tamper::shift_messages(&db, seq, 1);
        tamper::insert_message(&db, seq, &extra);
        cli.fails(&verify, needle).await;
        assert_eq!(db.execute(&format!("DELETE FROM messages WHERE seq = {seq}")), 1);
        tamper::shift_messages(&db, seq + 1, -1);
        assert!(cli.ok(&verify).await.contains(intact));
    }
    // The same message as a second row at seq 15, once the primary key
    // that forbids it is dropped.
    db.execute("ALTER TABLE messages DROP CONSTRAINT messages_pkey");
    tamper::insert_message(&db, 15, &extra);
    cli.fails(&verify, "block 1: lists 11 messages, header says 10").await;
    let extra_leaf = hex::encode(extra.leaf_hash());
    assert_eq!(
        db.execute(&format!("DELETE FROM messages WHERE leaf_hash = '\\x{extra_leaf}'")),
        1
    );
    db.execute("ALTER TABLE messages ADD PRIMARY KEY (seq)");
    assert!(cli.ok(&verify).await.contains(intact));
    node.stop().await;
}
