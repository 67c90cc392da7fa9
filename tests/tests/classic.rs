//! The classic scenario: 10 clients, each with its own identity, each
//! sending one message a second for a minute — 600 messages, exactly 6
//! blocks of 100 — run with the real `sealchain simulate` against a real
//! node, then audited with `sealchain verify --receipts` and here.
//!
//! `classic_scenario` shortens the interval to 50 ms (same message counts,
//! three seconds); `classic_scenario_at_real_speed` runs the defaults
//! (1 s × 60 s) and is ignored by default:
//!
//! ```text
//! cargo test -p sealchain-tests --test classic -- --ignored
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use sealchain_shared::api::Receipt;
use sealchain_tests::process::binary;
use sealchain_tests::{NodeOptions, TestDb, TestNode, assert_each_exactly_once, audit_chain};

/// Runs `sealchain ARGS` in `dir`, with its data directory (pins, audit
/// checkpoints, remembered checkpoints) inside it, never the user's.
async fn run(dir: &std::path::Path, args: Vec<String>) -> std::process::Output {
    let mut command = Command::new(binary("sealchain"));
    command
        .current_dir(dir)
        .env("SEALCHAIN_DATA_DIR", dir.join("data"))
        .env_remove("SEALCHAIN_PIN_FILE")
        .env_remove("SEALCHAIN_NODE")
        .args(args);
    actix_rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

async fn classic(interval: &str, duration: &str) {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).display().to_string();
    let common = vec!["--node".to_owned(), node.base.clone()];

    let mut args = common.clone();
    args.extend(
        [
            "simulate",
            "--keys",
            &path("keys"),
            "--clients",
            "10",
            "--interval",
            interval,
            "--duration",
            duration,
            "--receipts",
            &path("receipts.jsonl"),
            "--json",
        ]
        .map(str::to_owned),
    );
    let out = run(dir.path(), args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "simulate failed: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sent"], 600, "{summary}");
    assert_eq!(summary["accepted"], 600, "{summary}");

    // Ten identities were created, one per client.
    let keys = std::fs::read_dir(dir.path().join("keys")).unwrap().count();
    assert_eq!(keys, 10);

    // 600 receipts with seqs 0..600; exactly six blocks, a valid chain,
    // every acknowledged message in it exactly once.
    let receipts: Vec<Receipt> = std::fs::read_to_string(dir.path().join("receipts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..600).collect::<Vec<_>>());
    let blocks = audit_chain(&node.client, &node.info).await;
    assert_eq!(blocks.len(), 6);
    assert_each_exactly_once(&blocks, &receipts, &node.info);

    // The auditor's tool agrees.
    let mut args = common;
    args.extend(["verify", "--receipts", &path("receipts.jsonl")].map(str::to_owned));
    let out = run(dir.path(), args).await;
    assert!(
        out.status.success(),
        "verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.stop().await;
}

#[actix_rt::test]
async fn classic_scenario() {
    classic("50ms", "3s").await;
}

#[actix_rt::test]
#[ignore = "takes a minute: the classic scenario at real speed (1 s × 60 s)"]
async fn classic_scenario_at_real_speed() {
    classic("1s", "60s").await;
}
