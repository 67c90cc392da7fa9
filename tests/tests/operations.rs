//! What operators use: node info, and the OpenAPI document and its UI
//! (metrics, health and unknown routes are in `metrics.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealchain_shared::PROTOCOL;
use sealchain_shared::api::ClientPolicy;
use sealchain_tests::{NodeOptions, TestDb, TestNode, get_raw};

#[actix_rt::test]
async fn node_info_reports_keys_and_settings() {
    let db = TestDb::new();
    let node = TestNode::spawn(
        &db,
        NodeOptions::default()
            .arg("--block-size", 7)
            .arg("--max-skew", 120)
            .arg("--max-message-bytes", 4096),
    )
    .await;
    let (status, content_type, body) = get_raw(&node.base, "/v1/node").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut members: Vec<_> = raw.as_object().unwrap().keys().cloned().collect();
    members.sort();
    assert_eq!(
        members,
        [
            "block_size",
            "client_policy",
            "encryption_key",
            "max_message_bytes",
            "max_skew_ms",
            "origin",
            "protocol",
            "signing_key",
            "verifier_key"
        ]
    );
    let info = &node.info;
    assert_eq!(info.block_size, 7);
    assert_eq!(info.max_skew_ms, 120_000);
    assert_eq!(info.max_message_bytes, 4096);
    assert_eq!(info.client_policy, ClientPolicy::Open);
    assert_eq!(info.protocol, PROTOCOL);
    // The keys are the ones in the key directory.
    let signing = sealchain_shared::keys::load_signing_key(&node.keys_dir.join("signing.pem")).unwrap();
    assert_eq!(info.signing_key.0, signing.verifying_key().to_bytes());
    let encryption = sealchain_shared::keys::load_encryption_key(&node.keys_dir.join("encryption.pem")).unwrap();
    assert_eq!(info.encryption_key.0, encryption.public_key().to_bytes());
    node.stop().await;
}

#[actix_rt::test]
async fn openapi_document_covers_every_endpoint_and_the_ui_is_served() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let (status, _, body) = get_raw(&node.base, "/openapi.json").await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/v1/node", "get"),
        ("/v1/messages", "post"),
        ("/v1/messages/{seq}", "get"),
        ("/v1/messages/{seq}/proof", "get"),
        ("/v1/blocks/count", "get"),
        ("/v1/blocks/{index}", "get"),
        ("/v1/blocks/head", "get"),
        ("/v1/blocks/hash/{hash}", "get"),
        ("/v1/blocks/hash/{hash}/previous", "get"),
        ("/v1/blocks", "get"),
        ("/v1/clients", "post"),
        ("/v1/clients", "get"),
        ("/v1/clients/{key}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/checkpoint", "get"),
        ("/tile/{tail}", "get"),
        ("/v1/log/proof/inclusion", "get"),
        ("/v1/log/proof/consistency", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from /openapi.json"
        );
    }
    for schema in [
        "Receipt",
        "Block",
        "BlockSummary",
        "InclusionProof",
        "Problem",
        "NodeInfo",
        "Envelope",
        "LogInclusionProof",
        "ConsistencyProof",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }

    let (status, content_type, body) = get_raw(&node.base, "/docs/").await;
    assert_eq!((status, content_type.as_str()), (200, "text/html"));
    assert!(String::from_utf8_lossy(&body).contains("swagger"));
    let (status, _, _) = get_raw(&node.base, "/docs/swagger-ui-bundle.js").await;
    assert_eq!(status, 200, "the UI's assets are compiled in");
    node.stop().await;
}
