//! Witnesses (PROTOCOL §10) with real parts only: `sealchain-node`
//! processes on real Postgres databases, `sealchain witness serve`
//! processes with their SQLite state, and the `sealchain` client binary.
//!
//! - three witnesses, a quorum of two, one of them down (and a slow one
//!   that never answers): checkpoints reach the quorum, a client with the
//!   policy accepts them, and a node restart serves them at once;
//! - the split view: two nodes with the same keys and origin on two
//!   databases; the witnesses cosign the first history and refuse the
//!   second (409, then 422), and a client with the policy refuses the second
//!   node's checkpoint while one without a policy is fooled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use sealchain_client::api::NodeClient;
use sealchain_shared::api::NodeInfo;
use sealchain_shared::note::{Checkpoint, NoteVerifier};
use sealchain_shared::policy::{Policy, PolicyError};
use sealchain_tests::witness::{log_arg, node_keys, policy_text, statuses, text, wait_statuses, wait_witnessed};
use sealchain_tests::{NodeProcess, TestDb, WitnessProcess, process::binary, seal};

const ORIGIN: &str = "witness-test.example/log";

async fn send(client: &NodeClient, info: &NodeInfo, n: usize, topic: &str) {
    let key = seal::identity();
    for i in 0..n {
        client
            .submit(&seal::envelope(&key, info, topic, serde_json::json!(i)))
            .await
            .unwrap();
    }
}

/// Runs the `sealchain` binary against `node` with its own data directory.
fn sealchain(data: &Path, node: &str, args: &[&str]) -> Output {
    Command::new(binary("sealchain"))
        .args(["--node", node])
        .args(args)
        .env("SEALCHAIN_DATA_DIR", data)
        .env_remove("SEALCHAIN_NODE_KEY")
        .env_remove("SEALCHAIN_WITNESS_POLICY")
        .output()
        .expect("run sealchain")
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn node_args<'a>(witnesses: &'a [String], quorum: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "--origin",
        ORIGIN,
        "--checkpoint-interval",
        "0.1",
        "--block-size",
        "10",
        "--witness-quorum",
        quorum,
        "--witness-timeout",
        "60",
    ];
    for w in witnesses {
        args.extend(["--witness", w.as_str()]);
    }
    args
}

#[actix_rt::test]
async fn three_witnesses_quorum_two_one_down_and_one_slow_checkpoints_reach_the_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let (keys_dir, log) = node_keys(dir.path(), ORIGIN);
    let logs = [log_arg(&log)];
    let w1 = WitnessProcess::start(dir.path(), "w1.example/witness", &logs);
    let w2 = WitnessProcess::start(dir.path(), "w2.example/witness", &logs);
    let mut w3 = WitnessProcess::start(dir.path(), "w3.example/witness", &logs);
    w3.stop("KILL");
    // A fourth "witness" that accepts connections and never answers: with
    // a 60 s timeout, the quorum could only come in time if it delays
    // nothing but its own cosignature.
    let slow = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_vkey = sealchain_shared::cosignature::Cosigner::new(
        "slow.example/witness",
        sealchain_shared::keys::generate_signing_key().unwrap(),
    )
    .unwrap()
    .verifier()
    .to_vkey();
    let slow_arg = format!("slow={slow_vkey}@http://{}", slow.local_addr().unwrap());
    let witnesses = vec![w1.arg("w1"), w2.arg("w2"), w3.arg("w3"), slow_arg];

    let db = TestDb::new();
    let node = NodeProcess::spawn(&db, &keys_dir, &node_args(&witnesses, "2"));
    let info = node.client.node_info().await.unwrap();
    assert_eq!(info.verifier_key, log.to_vkey());
    let two_of_three = Policy::parse(policy_text(None, &[&w1, &w2, &w3], 2).as_bytes()).unwrap();
    send(&node.client, &info, 25, "quorum").await;
    let witnessed = wait_witnessed(&node.base, &two_of_three, &log, 25, Duration::from_secs(20)).await;
    assert_eq!(witnessed.checkpoint.size, 25);
    let names: Vec<&str> = witnessed.cosigned_by.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["w1", "w2"]);
    // All three are not there: a policy demanding them refuses it, naming
    // the two that cosigned.
    let all_three = Policy::parse(policy_text(None, &[&w1, &w2, &w3], 3).as_bytes()).unwrap();
    let (_, body) = text(&node.base, "/checkpoint").await;
    match all_three.verify(body.as_bytes(), Some(&log)) {
        Err(PolicyError::Quorum { valid, .. }) => assert_eq!(valid, ["w1", "w2"]),
        other => panic!("{other:?}"),
    }

    // The client binary with the policy accepts the chain and ties it to
    // the cosigned checkpoint.
    let policy_file = dir.path().join("two-of-three.policy");
    std::fs::write(&policy_file, policy_text(Some(&log), &[&w1, &w2, &w3], 2)).unwrap();
    let data = dir.path().join("client");
    let o = sealchain(
        &data,
        &node.base,
        &["verify", "--witness-policy", policy_file.to_str().unwrap()],
    );
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("witnessed ok: checkpoint of size 25") && stdout.contains("cosigned by w1, w2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("history ok: the audited chain is the cosigned history (20 audited messages"),
        "{stdout}"
    );
    // From block 1 on, the leaves before it come from an inclusion proof in
    // the cosigned tree: still tied to the cosigned root.
    let policy_arg = policy_file.to_str().unwrap();
    let o = sealchain(
        &data,
        &node.base,
        &[
            "verify",
            "--from",
            "1",
            "--no-checkpoint",
            "--witness-policy",
            policy_arg,
        ],
    );
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("(10 audited messages in the cosigned tree)"),
        "{stdout}"
    );
    let strict = dir.path().join("all-three.policy");
    std::fs::write(&strict, policy_text(Some(&log), &[&w1, &w2, &w3], 3)).unwrap();
    let o = sealchain(
        &data,
        &node.base,
        &["verify", "--witness-policy", strict.to_str().unwrap()],
    );
    let (stdout, stderr) = out(&o);
    assert!(!o.status.success(), "{stdout}");
    assert!(
        stderr.contains("not witnessed as the policy requires") && stderr.contains("valid cosignatures by w1, w2"),
        "{stderr}"
    );

    // The dead and the slow witness are visible, and delay nothing else;
    // the node stays ready.
    wait_statuses(&node.base, "w3 failing", Duration::from_secs(10), |s| {
        s["witnesses"][2]["consecutive_failures"].as_u64() >= Some(1)
    })
    .await;
    let s = statuses(&node.base).await;
    assert_eq!(s["quorum"], 2);
    assert_eq!(s["witnesses"][0]["cosigned_size"], 25);
    assert!(s["witnesses"][0]["last_latency_ms"].is_u64(), "{s:#}");
    assert!(
        s["witnesses"][2]["last_error"].as_str().unwrap().contains("no answer"),
        "{s:#}"
    );
    assert!(s["witnesses"][3]["cosigned_size"].is_null(), "{s:#}");
    let (status, _) = text(&node.base, "/readyz").await;
    assert_eq!(status, 200);
    let (_, metrics) = text(&node.base, "/metrics").await;
    for needle in [
        "sealchain_witness_cosigned_tree_size{witness=\"w1\"} 25",
        "sealchain_witness_requests_total{witness=\"w3\",outcome=\"unreachable\"}",
        "sealchain_witness_consecutive_failures{witness=\"w3\"}",
        "sealchain_checkpoint_witnessed_tree_size 25",
        "sealchain_witness_request_duration_seconds_count{witness=\"w2\"}",
    ] {
        assert!(metrics.contains(needle), "/metrics lacks {needle}");
    }

    // w3 comes back with an empty state: the node's `old 0` is answered
    // cosigned, and later checkpoints carry all three cosignatures.
    w3.restart();
    send(&node.client, &info, 5, "quorum").await;
    let all = wait_witnessed(&node.base, &all_three, &log, 30, Duration::from_secs(20)).await;
    assert_eq!(all.cosigned_by.len(), 3);

    // A restarted node serves the cosigned checkpoint at once, from its
    // database, before any witness answered it again.
    node.signal("TERM");
    assert_eq!(node.exit_code(Duration::from_secs(30)).await, Some(0));
    let mut witnesses = witnesses;
    witnesses.truncate(2); // Only w1 and w2 now, and the slow one is gone.
    let node = NodeProcess::spawn(&db, &keys_dir, &node_args(&witnesses, "2"));
    let two = Policy::parse(policy_text(None, &[&w1, &w2], 2).as_bytes()).unwrap();
    let (_, body) = text(&node.base, "/checkpoint").await;
    let served = two
        .verify(body.as_bytes(), Some(&log))
        .expect("served from the database");
    assert_eq!(served.checkpoint.size, 30);
    // And the witnesses keep following it (from the sizes they cosigned).
    send(&node.client, &info, 3, "quorum").await;
    wait_witnessed(&node.base, &two, &log, 33, Duration::from_secs(20)).await;
    drop(slow);
}

/// The log's readers besides `verify`, each with the policy: `checkpoint`,
/// `monitor --once` and `proof 3 --out BUNDLE`.
fn readers<'a>(bundle: &'a Path, policy: &'a str) -> [Vec<&'a str>; 3] {
    let bundle = bundle.to_str().unwrap();
    [
        vec!["checkpoint", "--witness-policy", policy],
        vec!["monitor", "--once", "--witness-policy", policy],
        vec!["proof", "3", "--out", bundle, "--witness-policy", policy],
    ]
}

#[actix_rt::test]
async fn split_view_two_histories_under_one_key_the_second_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (keys_dir, log) = node_keys(dir.path(), ORIGIN);
    let logs = [log_arg(&log)];
    let w1 = WitnessProcess::start(dir.path(), "w1.example/witness", &logs);
    let w2 = WitnessProcess::start(dir.path(), "w2.example/witness", &logs);
    let witnesses = vec![w1.arg("w1"), w2.arg("w2")];
    let policy = Policy::parse(policy_text(None, &[&w1, &w2], 2).as_bytes()).unwrap();
    let policy_file = dir.path().join("witnesses.policy");
    std::fs::write(&policy_file, policy_text(Some(&log), &[&w1, &w2], 2)).unwrap();
    let policy_arg = policy_file.to_str().unwrap();

    // Node A: the history the witnesses see first.
    let db_a = TestDb::new();
    let a = NodeProcess::spawn(&db_a, &keys_dir, &node_args(&witnesses, "2"));
    let info = a.client.node_info().await.unwrap();
    send(&a.client, &info, 20, "history-a").await;
    let seen = wait_witnessed(&a.base, &policy, &log, 20, Duration::from_secs(20)).await;

    // Node B: same keys, same origin, another database: another history.
    let db_b = TestDb::new();
    let b = NodeProcess::spawn(&db_b, &keys_dir, &node_args(&witnesses, "2"));
    let info_b = b.client.node_info().await.unwrap();
    assert_eq!(
        (info_b.signing_key, &info_b.verifier_key),
        (info.signing_key, &info.verifier_key)
    );
    // At the same size, another root: both witnesses answer 409.
    send(&b.client, &info_b, 20, "history-b").await;
    for i in 0..2 {
        wait_statuses(&b.base, "409 for another root", Duration::from_secs(20), |s| {
            s["witnesses"][i]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("another root at size 20"))
        })
        .await;
    }
    // Larger: the proof from the size they cosigned fails, 422.
    send(&b.client, &info_b, 7, "history-b").await;
    for i in 0..2 {
        wait_statuses(&b.base, "422 for the proof", Duration::from_secs(20), |s| {
            s["witnesses"][i]["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("422"))
        })
        .await;
    }
    // Each witness kept the refusals with a valid log signature as
    // evidence, and still holds A's history.
    for w in [&w1, &w2] {
        let (_, info) = text(&w.base, "/").await;
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert!(info["logs"][0]["refusals"].as_u64() >= Some(2), "{info:#}");
        let (status, held) = text(&w.base, &format!("/checkpoint/{ORIGIN}")).await;
        assert_eq!(status, 200);
        let (held, _) = Checkpoint::verify(held.as_bytes(), &log).unwrap();
        assert!(held.size >= 20);
        if held.size == 20 {
            assert_eq!(held.root, seen.checkpoint.root);
        }
    }

    // B's checkpoint is validly signed by the log's key: a reader without
    // witnesses cannot tell it from A's.
    let (_, body_b) = text(&b.base, "/checkpoint").await;
    let (cp_b, _) = Checkpoint::verify(body_b.as_bytes(), &log).expect("signed by the log key");
    assert_eq!(cp_b.size, 27);
    // (Separate clients: one that audited both would see two chains under
    // one key in its own audit checkpoint.)
    let data = dir.path().join("client-b");
    let o = sealchain(&data, &b.base, &["verify"]);
    assert!(o.status.success(), "without a policy the fork passes: {:?}", out(&o));
    // With the policy it is refused, by the library and by the CLI.
    match policy.verify(body_b.as_bytes(), Some(&log)) {
        Err(PolicyError::Quorum { valid, .. }) => assert!(valid.is_empty(), "{valid:?}"),
        other => panic!("B's checkpoint passed the policy: {other:?}"),
    }
    let (_, latest_b) = text(&b.base, "/v1/log/checkpoint/latest").await;
    assert!(policy.verify(latest_b.as_bytes(), Some(&log)).is_err());
    let o = sealchain(&data, &b.base, &["verify", "--witness-policy", policy_arg]);
    let (stdout, stderr) = out(&o);
    assert!(!o.status.success(), "{stdout}");
    assert!(
        stderr.contains(&format!("refusing the checkpoint of {}", b.base))
            && stderr.contains("valid cosignatures by none"),
        "{stderr}"
    );
    // So do the log's other readers: checkpoint, monitor, proof --out.
    let refused = "valid cosignatures by none";
    let no_bundle = dir.path().join("b-refused.tlog-proof");
    for args in readers(&no_bundle, policy_arg) {
        let o = sealchain(&data, &b.base, &args);
        let (stdout, stderr) = out(&o);
        assert!(!o.status.success(), "{args:?} accepted B: {stdout}");
        assert!(stderr.contains(refused), "{args:?}: {stderr}");
    }
    assert!(!no_bundle.exists(), "no bundle around an unwitnessed checkpoint");
    // A bundle of B's history made without the policy verifies offline on
    // the log key alone, and is refused offline with the policy.
    let bundle_b = dir.path().join("b.tlog-proof");
    let o = sealchain(&data, &b.base, &["proof", "3", "--out", bundle_b.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", out(&o));
    let offline = |file: &Path, policy: bool| {
        let mut args = vec![
            "proof",
            "--verify",
            file.to_str().unwrap(),
            "--vkey",
            &info.verifier_key,
        ];
        if policy {
            args.extend(["--witness-policy", policy_arg]);
        }
        // No node is contacted: the URL names nothing that listens.
        sealchain(&data, "http://127.0.0.1:9", &args)
    };
    assert!(offline(&bundle_b, false).status.success());
    let o = offline(&bundle_b, true);
    let (_, stderr) = out(&o);
    assert!(!o.status.success() && stderr.contains(refused), "{stderr}");

    // A's history is accepted by the same client, with the same policy.
    let client_a = dir.path().join("client-a");
    let o = sealchain(&client_a, &a.base, &["verify", "--witness-policy", policy_arg]);
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("cosigned by w1, w2"), "{stdout}");
    let bundle_a = dir.path().join("a.tlog-proof");
    for args in readers(&bundle_a, policy_arg) {
        let o = sealchain(&client_a, &a.base, &args);
        let (stdout, stderr) = out(&o);
        assert!(o.status.success(), "{args:?}: {stdout}{stderr}");
        assert!(stdout.contains("cosigned by w1, w2"), "{args:?}: {stdout}");
    }
    let o = offline(&bundle_a, true);
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("cosigned by w1, w2"), "{stdout}");
    // A keeps growing and keeps being cosigned: the fork did not disturb it.
    send(&a.client, &info, 5, "history-a").await;
    wait_witnessed(&a.base, &policy, &log, 25, Duration::from_secs(20)).await;
    let _ = NoteVerifier::parse(&info.verifier_key).unwrap();
}
