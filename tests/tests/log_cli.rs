//! The client side of the log (PROTOCOL §9) against real nodes and
//! Postgres, through the real `sealchain` binary: `checkpoint`, `send` and
//! `simulate --wait-inclusion`, proof bundles written and checked offline,
//! `monitor` following a growing log and catching a rewritten history, and
//! `verify` comparing the sealed blocks with the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sealchain_shared::message::MessageBuilder;
use sealchain_shared::tlog_proof::ProofBundle;
use sealchain_tests::cli::{Cli, fill, wait_for_line};
use sealchain_tests::{NodeOptions, TestDb, TestNode, seal, tamper};
use serde_json::Value;

const SOON: Duration = Duration::from_secs(10);

/// A fast-publishing node (a checkpoint every 50 ms) with blocks of 10.
fn fast() -> NodeOptions {
    NodeOptions::default()
        .arg("--checkpoint-interval", 0.05)
        .arg("--block-size", 10)
}

/// A fast node holding `n` messages, its checkpoint covering them, and a
/// working directory for the CLI.
async fn node_with(db: &TestDb, n: usize) -> (TestNode, Cli, Vec<sealchain_shared::api::Receipt>) {
    let node = TestNode::spawn(db, fast()).await;
    let cli = Cli::new(&node);
    let receipts = fill(&node, n).await;
    node.checkpoint_covering(n as u64, SOON).await;
    (node, cli, receipts)
}

/// Another valid message from a fresh client, bound to the node: it
/// verifies on its own wherever it is put.
fn forged_message(node: &TestNode) -> sealchain_shared::message::SignedMessage {
    MessageBuilder::new(
        node.info.signing_key.0,
        "forged",
        &serde_json::json!("not what was sent"),
    )
    .unwrap()
    .sign(&seal::identity())
    .unwrap()
}

/// The node rewrites message `seq` in Postgres, reseals its blocks and
/// re-derives and re-signs its log with its own key: a history valid on
/// its own. Returns the restarted node.
async fn rewrite_history(db: &TestDb, node: TestNode, options: NodeOptions, seq: i64) -> TestNode {
    let forged = forged_message(&node);
    let keys_dir = node.keys_dir.clone();
    node.stop().await;
    tamper::replace_message(db, seq, &forged);
    tamper::reseal_blocks(db, &keys_dir, seq / 10);
    tamper::forget_log(db);
    TestNode::spawn(db, options.keys_dir(&keys_dir)).await
}

#[actix_rt::test]
async fn checkpoint_verifies_remembers_and_refuses_a_forged_or_forked_log() {
    let db = TestDb::new();
    let mut node = TestNode::spawn(&db, fast()).await;
    let _keys = node.take_keys();
    let cli = Cli::new(&node);

    let text = cli.ok(&["checkpoint"]).await;
    for needle in [
        "tree size     0\n",
        &format!("verifier key  {}\n", node.info.verifier_key),
        "signature     ok: Ed25519 by the node's pinned signing key",
        "history       ok: first checkpoint of this log this client has seen",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let remembered = cli.path(&format!("data/tlog/{}/checkpoint", node.info.signing_key));
    let note = std::fs::read_to_string(&remembered).unwrap();
    assert!(note.starts_with(&format!("{}\n0\n", node.info.origin)), "{note}");
    // The origin is pinned with the keys.
    let pins = std::fs::read_to_string(cli.path("data/known_nodes")).unwrap();
    assert!(
        pins.lines()
            .nth(1)
            .unwrap()
            .ends_with(&format!(" 10 {}", node.info.origin)),
        "{pins}"
    );

    fill(&node, 5).await;
    node.checkpoint_covering(5, SOON).await;
    let shown = cli.json(&["checkpoint"]).await;
    assert_eq!(
        (shown["size"].as_u64(), shown["history"].as_str()),
        (Some(5), Some("extended"))
    );
    assert_eq!(shown["seen_before"], 0);
    assert_eq!(shown["verifier_key"], node.info.verifier_key.as_str());
    assert_eq!(
        std::fs::read_to_string(&remembered).unwrap(),
        shown["note"].as_str().unwrap()
    );
    let text = cli.ok(&["checkpoint"]).await;
    assert!(text.contains("history       ok: unchanged since seen before"), "{text}");

    // A served checkpoint whose text was changed: its signature fails.
    db.execute("UPDATE checkpoints SET note = replace(note, E'\\n5\\n', E'\\n6\\n') WHERE tree_size = 5");
    cli.fails(&["checkpoint"], "the node's checkpoint does not verify under")
        .await;
    db.execute("UPDATE checkpoints SET note = replace(note, E'\\n6\\n', E'\\n5\\n') WHERE tree_size = 5");
    cli.ok(&["checkpoint"]).await;

    // The node rewrites message 2, reseals, re-derives and re-signs its log,
    // and grows it: valid on its own, but not the history seen before.
    let node = rewrite_history(&db, node, fast(), 2).await;
    // (Its port changed with the restart.)
    let cli = Cli {
        node: node.base.clone(),
        ..cli
    };
    fill(&node, 3).await;
    node.checkpoint_covering(8, SOON).await;
    let err = cli
        .fails(
            &["checkpoint"],
            "the log is not consistent with what this client saw before",
        )
        .await;
    assert!(
        err.contains("the checkpoint of size 8") && err.contains("does not extend the checkpoint of size 5"),
        "{err}"
    );
    // The remembered checkpoint is still the one of size 5.
    assert!(std::fs::read_to_string(&remembered).unwrap().contains("\n5\n"));
    node.stop().await;
}

#[actix_rt::test]
async fn send_to_an_idle_node_is_provable_within_two_seconds() {
    let db = TestDb::new();
    // The default checkpoint interval (1 s), and a node left idle.
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let cli = Cli::new(&node);
    cli.ok(&["keygen", "--out", "keys"]).await;
    let text = cli
        .ok(&[
            "send",
            "--key",
            "keys/client-000.pem",
            "--topic",
            "t",
            "--body",
            r#"{"reading": 21.5}"#,
            "--receipts",
            "r.jsonl",
            "--wait-inclusion",
            "--inclusion-timeout",
            "2s",
        ])
        .await;
    assert!(
        text.contains("included     in the log's checkpoint of size 1"),
        "{text}"
    );
    assert!(text.contains("provable     "), "{text}");
    let line: Value = serde_json::from_str(std::fs::read_to_string(cli.path("r.jsonl")).unwrap().trim()).unwrap();
    assert_eq!(line["seq"], 0);
    let bundle = line["tlog_proof"]
        .as_str()
        .expect("the receipt line carries the proof bundle");
    let parsed = ProofBundle::parse(bundle.as_bytes()).unwrap();
    assert_eq!((parsed.index, parsed.proof.len()), (0, 0));
    std::fs::write(cli.path("0.tlog-proof"), bundle).unwrap();
    // Offline: the node's URL leads nowhere.
    let text = cli
        .ok(&[
            "--node",
            "http://127.0.0.1:1",
            "proof",
            "--verify",
            "0.tlog-proof",
            "--vkey",
            &node.info.verifier_key,
        ])
        .await;
    assert!(text.contains("verified offline"), "{text}");
    // verify --receipts checks the bundle too.
    let text = cli.ok(&["verify", "--receipts", "r.jsonl"]).await;
    assert!(text.contains("log proofs ok: 1 receipts"), "{text}");
    node.stop().await;
}

#[actix_rt::test]
async fn wait_inclusion_fails_clearly_when_no_checkpoint_comes_and_keeps_the_receipt() {
    let db = TestDb::new();
    // A checkpoint at start-up, the next one in an hour.
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--checkpoint-interval", 3600)).await;
    let cli = Cli::new(&node);
    cli.ok(&["keygen", "--out", "keys"]).await;
    let send = [
        "send",
        "--key",
        "keys/client-000.pem",
        "--topic",
        "t",
        "--body",
        "1",
        "--receipts",
        "r.jsonl",
        "--wait-inclusion",
        "--inclusion-timeout",
        "300ms",
    ];
    let err = cli.fails(&send, "message 0 was accepted (receipt checked)").await;
    assert!(
        err.contains("no checkpoint of the log covers 1 entries after 300ms (the newest has size 0)"),
        "{err}"
    );
    let line: Value = serde_json::from_str(std::fs::read_to_string(cli.path("r.jsonl")).unwrap().trim()).unwrap();
    assert_eq!(line["seq"], 0);
    assert!(line.get("tlog_proof").is_none(), "{line}");
    node.stop().await;
}

#[actix_rt::test]
async fn simulate_wait_inclusion_completes_every_receipt_with_a_proof() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, fast()).await;
    let cli = Cli::new(&node);
    let summary = cli
        .json(&[
            "simulate",
            "--keys",
            "keys",
            "--clients",
            "3",
            "--interval",
            "100ms",
            "--duration",
            "1s",
            "--receipts",
            "r.jsonl",
            "--wait-inclusion",
        ])
        .await;
    assert_eq!(summary["accepted"], 30);
    assert_eq!(summary["inclusion"]["proven"], 30, "{summary}");
    assert_eq!(summary["inclusion"]["not_proven"], 0);
    let lines: Vec<Value> = std::fs::read_to_string(cli.path("r.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    let log = sealchain_shared::note::NoteVerifier::parse(&node.info.verifier_key).unwrap();
    for line in &lines {
        let bundle = ProofBundle::parse(line["tlog_proof"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(Some(bundle.index), line["seq"].as_u64());
        bundle.verify(&log).unwrap();
    }
    let text = cli.ok(&["verify", "--receipts", "r.jsonl"]).await;
    assert!(text.contains("log proofs ok: 30 receipts"), "{text}");
    assert!(text.contains("log ok: the 30 messages of the sealed blocks"), "{text}");
    node.stop().await;
}

#[actix_rt::test]
async fn proof_bundles_are_written_and_checked_offline_and_each_changed_part_fails() {
    let db = TestDb::new();
    // Blocks 0 and 1, message 20 in the open block.
    let (node, cli, receipts) = node_with(&db, 21).await;
    // The block proof is unchanged, and only for sealed blocks.
    assert!(
        cli.ok(&["proof", "13"])
            .await
            .contains("verified: the message's signature")
    );
    cli.fails(&["proof", "20"], "409 not_sealed").await;
    // The log proof of a message whose block is still open.
    let text = cli.ok(&["proof", "20", "--out", "20.tlog-proof"]).await;
    assert!(text.contains("written      20.tlog-proof"), "{text}");
    let written = std::fs::read_to_string(cli.path("20.tlog-proof")).unwrap();
    let bundle = ProofBundle::parse(written.as_bytes()).unwrap();
    assert_eq!(bundle.index, 20);
    assert_eq!(
        sealchain_shared::merkle::leaf_hash(bundle.extra.as_deref().unwrap()),
        receipts[20].leaf_hash.0
    );
    assert!(
        written.contains(&format!("\n\n{}\n21\n", node.info.origin)),
        "{written}"
    );
    cli.fails(&["proof", "99", "--out", "99.tlog-proof"], "404 not_found")
        .await;
    assert!(!cli.path("99.tlog-proof").exists());

    let vkey = node.info.verifier_key.clone();
    let offline = |file: &str| {
        [
            "--node",
            "http://127.0.0.1:1",
            "proof",
            "--verify",
            file,
            "--vkey",
            &vkey,
        ]
        .map(str::to_owned)
    };
    let args = offline("20.tlog-proof");
    let json = cli.json(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!((json["seq"].as_u64(), json["tree_size"].as_u64()), (Some(20), Some(21)));
    assert_eq!(json["leaf_hash"], receipts[20].leaf_hash.to_hex().as_str());
    assert_eq!(json["verified"], true);

    // Each part of the real file changed in turn.
    let lines: Vec<&str> = written.split('\n').collect();
    let blank = lines.iter().position(|l| l.is_empty()).unwrap();
    let with = |i: usize, new: &str| {
        let mut l = lines.clone();
        l[i] = new;
        l.join("\n")
    };
    let flip = |b64: &str| {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::STANDARD;
        let mut raw = e.decode(b64).unwrap();
        let middle = raw.len() / 2;
        raw[middle] ^= 1;
        e.encode(raw)
    };
    let extra = lines[1].strip_prefix("extra ").unwrap();
    let cases = [
        ("header", with(0, "c2sp.org/tlog-proof@v0"), "line 1: expected"),
        (
            "entry",
            with(1, &format!("extra {}", flip(extra))),
            "inclusion proof of entry 20 does not lead",
        ),
        (
            "index",
            with(2, "index 19"),
            "inclusion proof of entry 19 does not lead",
        ),
        (
            "index spelling",
            with(2, "index 020"),
            "line 3: the index is not a decimal",
        ),
        (
            "proof hash",
            with(3, &flip(lines[3])),
            "inclusion proof of entry 20 does not lead",
        ),
        (
            "proof line",
            with(3, "AAAA"),
            "line 4: a proof line is not a 32-byte hash",
        ),
        (
            "blank line",
            with(blank, "junk"),
            &format!("line {}: a proof line", blank + 1),
        ),
        (
            "checkpoint size",
            with(blank + 2, "22"),
            &format!("the checkpoint (from line {}): the signature by", blank + 2),
        ),
        (
            "signature",
            with(blank + 5, &lines[blank + 5].replacen('A', "B", 1).replacen('a', "b", 1)),
            "the checkpoint",
        ),
    ];
    for (what, changed, needle) in &cases {
        assert_ne!(changed, &written, "{what}");
        std::fs::write(cli.path("changed.tlog-proof"), changed).unwrap();
        let args = offline("changed.tlog-proof");
        let err = cli
            .fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), needle)
            .await;
        assert!(err.contains("changed.tlog-proof"), "{what}: {err}");
    }
    // The right file under another log's key, or another origin.
    let other = TestNode::spawn(&TestDb::new(), fast()).await;
    for wrong in [
        other.info.verifier_key.clone(),
        sealchain_shared::note::NoteVerifier::new(
            "elsewhere.example/log",
            sealchain_shared::VerifyingKey::from_bytes(&node.info.signing_key.0).unwrap(),
        )
        .unwrap()
        .to_vkey(),
    ] {
        let err = cli
            .fails(
                &[
                    "--node",
                    "http://127.0.0.1:1",
                    "proof",
                    "--verify",
                    "20.tlog-proof",
                    "--vkey",
                    &wrong,
                ],
                "the note carries no signature by",
            )
            .await;
        assert!(err.contains("20.tlog-proof does not verify"), "{err}");
    }
    other.stop().await;
    node.stop().await;
}

#[actix_rt::test]
async fn monitor_follows_a_growing_log_across_restarts() {
    let db = TestDb::new();
    let (node, cli, _) = node_with(&db, 300).await;
    // 300 entries: a full bundle and a partial one of width 44.
    let text = cli.ok(&["monitor", "--once", "--entries"]).await;
    assert!(text.contains("checkpoint 300 root"), "{text}");
    assert!(
        text.contains("entries 0..300: 300 new, every message signature verified"),
        "{text}"
    );
    let entries = cli.path(&format!("data/tlog/{}/entries.json", node.info.signing_key));
    let progress: Value = serde_json::from_str(&std::fs::read_to_string(&entries).unwrap()).unwrap();
    assert_eq!(progress["size"], 300);

    // A monitor left running follows the log as it grows.
    let (mut monitor, lines) = cli.spawn(&["--json", "monitor", "--entries", "--interval", "100ms"]);
    let first: Value =
        serde_json::from_str(&wait_for_line(&lines, SOON, |l| l.contains("\"size\":300")).await).unwrap();
    assert_eq!(first["history"], "unchanged");
    for (round, total) in [(50, 350), (250, 600)] {
        fill(&node, round).await;
        let line = wait_for_line(&lines, SOON, |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["size"] == total)
        })
        .await;
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["history"], "extended", "{event}");
        // Entries from where it left off up to the new size.
        let checked = event["entries_checked"].as_array().unwrap();
        assert_eq!(checked[1], total, "{event}");
        assert!(checked[0].as_u64().unwrap() >= 300, "{event}");
    }
    monitor.kill().unwrap();
    monitor.wait().unwrap();

    // A new process carries on from what the last one saw.
    fill(&node, 10).await;
    node.checkpoint_covering(610, SOON).await;
    let event: Value =
        serde_json::from_str(cli.ok(&["--json", "monitor", "--once", "--entries"]).await.trim()).unwrap();
    assert_eq!(
        (event["size"].as_u64(), event["seen_before"].as_u64()),
        (Some(610), Some(600))
    );
    assert_eq!(event["entries_checked"], serde_json::json!([600, 610]));
    node.stop().await;
}

#[actix_rt::test]
async fn monitor_catches_a_rewritten_history_naming_both_sizes() {
    let db = TestDb::new();
    let (mut node, cli, _) = node_with(&db, 12).await;
    let _keys = node.take_keys();
    let text = cli.ok(&["monitor", "--once", "--entries"]).await;
    assert!(text.contains("entries 0..12"), "{text}");

    // Message 5 replaced by another validly signed message, the blocks
    // resealed, the log re-derived and re-signed, and the log grown.
    let node = rewrite_history(&db, node, fast(), 5).await;
    let cli = Cli {
        node: node.base.clone(),
        ..cli
    };
    fill(&node, 3).await;
    node.checkpoint_covering(15, SOON).await;
    // A newcomer sees a log that is valid on its own...
    let fresh = Cli::new(&node);
    fresh.ok(&["monitor", "--once", "--entries"]).await;
    // ...but not the monitor that saw its earlier history.
    let err = cli.fails(&["monitor", "--once", "--entries"], "monitor stopped").await;
    assert!(
        err.contains("the checkpoint of size 15") && err.contains("does not extend the checkpoint of size 12"),
        "{err}"
    );
    // A monitor left running stops on it too (exit 1).
    let (mut monitor, _lines) = cli.spawn(&["monitor", "--interval", "100ms"]);
    let deadline = std::time::Instant::now() + SOON;
    let status = loop {
        if let Some(status) = monitor.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the monitor kept running");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(1));
    node.stop().await;
}

#[actix_rt::test]
async fn monitor_entries_catch_an_entry_that_is_not_a_valid_message() {
    let db = TestDb::new();
    let (node, cli, _) = node_with(&db, 20).await;
    // The stored bytes of message 7 changed behind the node's back: the
    // tiles still serve the old leaf hash, the entry bundle the new bytes.
    db.execute("UPDATE messages SET message = set_byte(message, 30, get_byte(message, 30) # 1) WHERE seq = 7");
    let err = cli
        .fails(
            &["monitor", "--once", "--entries"],
            "log entry 7 (tile/entries/000.p/20)",
        )
        .await;
    assert!(err.contains("message 7"), "{err}");
    node.stop().await;
}

#[actix_rt::test]
async fn verify_compares_the_sealed_blocks_with_the_log() {
    let db = TestDb::new();
    let (node, cli, _) = node_with(&db, 45).await; // blocks 0..=3
    let text = cli.ok(&["verify"]).await;
    assert!(
        text.contains("log ok: the 40 messages of the sealed blocks are the first 40 entries of the log"),
        "{text}"
    );
    let report = cli.json(&["verify"]).await;
    assert_eq!(report["log"]["compared"], true);
    assert_eq!(report["log"]["messages"], 40);
    // The audit checkpoint keeps the log's range: an audit of the next
    // blocks still compares all of them.
    fill(&node, 10).await;
    let text = cli.ok(&["verify", "--from", "4"]).await;
    assert!(text.contains("chain ok: blocks 4..=4"), "{text}");
    assert!(text.contains("log ok: the 50 messages"), "{text}");
    // Elsewhere it cannot, and says so.
    let text = cli.ok(&["verify", "--from", "2"]).await;
    assert!(
        text.contains("log: not compared with the blocks (the audit starts at block 2"),
        "{text}"
    );

    // Message 13 replaced by another validly signed message and the blocks
    // resealed, the log left alone: every block verifies on its own.
    tamper::replace_message(&db, 13, &forged_message(&node));
    tamper::reseal_blocks(&db, &node.keys_dir, 1);
    let err = cli
        .fails(
            &["verify", "--no-checkpoint"],
            "the sealed blocks and the log disagree: the 50 messages of blocks 0..=4",
        )
        .await;
    assert!(err.contains("checkpoint of size"), "{err}");
    node.stop().await;
}
