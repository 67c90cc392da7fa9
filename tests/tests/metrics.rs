//! Metrics by value, health and readiness, and problem+json for unknown
//! routes. The metrics recorder is global to a process, so this test has a
//! test binary of its own: no other node in the process moves its values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealchain_tests::{NodeOptions, TestDb, TestNode, get_raw, seal};

#[actix_rt::test]
async fn metrics_health_and_unknown_routes() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 2)).await;
    let key = seal::identity();
    for i in 0..2 {
        node.client
            .submit(&seal::envelope(&key, &node.info, "t", serde_json::json!(i)))
            .await
            .unwrap();
    }
    let _ = node.client.submit_raw(b"junk".to_vec()).await.unwrap_err();

    let (status, content_type, body) = get_raw(&node.base, "/metrics").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"));
    let text = String::from_utf8(body).unwrap();
    // The values: this binary's only node and messages are the ones above.
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("/metrics has no {name}:\n{text}"))
    };
    assert_eq!(value("sealchain_messages_accepted_total"), 2.0);
    assert_eq!(value("sealchain_blocks_sealed_total"), 1.0);
    assert_eq!(
        value("sealchain_messages_rejected_total{code=\"malformed_envelope\"}"),
        1.0
    );
    assert_eq!(value("sealchain_writer_alive"), 1.0);
    assert_eq!(value("sealchain_writer_consecutive_failures"), 0.0);
    assert!(value("sealchain_checkpoint_tree_size") >= 0.0);
    for needle in [
        "sealchain_messages_accepted_total",
        "sealchain_messages_rejected_total{code=\"malformed_envelope\"}",
        "sealchain_ingest_duration_seconds_bucket",
        "sealchain_writer_batch_size_bucket",
        "sealchain_writer_commit_duration_seconds_bucket",
        "sealchain_blocks_sealed_total",
        "sealchain_ingest_queue_depth",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }

    for (path, status) in [("/healthz", 200), ("/readyz", 200)] {
        assert_eq!(get_raw(&node.base, path).await.0, status, "{path}");
    }
    let (status, content_type, body) = get_raw(&node.base, "/no/such/route").await;
    assert_eq!((status, content_type.as_str()), (404, "application/problem+json"));
    let problem: sealchain_shared::api::Problem = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem.code, "not_found");
    node.stop().await;
}
