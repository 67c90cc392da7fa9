//! TLS end to end: a node serving HTTPS with a certificate made here
//! (`rcgen`, self-signed for 127.0.0.1), the library and the `sealchain`
//! binary talking to it with that certificate as their CA; plain HTTP to
//! the TLS port, an untrusted certificate, and half a configuration fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sealchain_client::api::NodeClient;
use sealchain_tests::process::binary;
use sealchain_tests::{NodeOptions, TestDb, TestNode, seal};

/// A self-signed certificate for 127.0.0.1 and localhost: (cert, key) PEM
/// files in `dir`.
fn certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[actix_rt::test]
async fn a_node_serves_https_and_clients_verify_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "node");
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().tls(&cert, &key)).await;
    let https = node.base.clone();
    assert!(https.starts_with("https://"));

    // The library, trusting the certificate (the harness's client).
    let sender = seal::identity();
    let receipt = node
        .client
        .submit(&seal::envelope(
            &sender,
            &node.info,
            "tls",
            serde_json::json!({"over": "tls"}),
        ))
        .await
        .unwrap();
    assert_eq!(receipt.seq, 0);

    // Without the CA the certificate is refused, with a clear error.
    let untrusting = NodeClient::new(&https, Duration::from_secs(10), 1);
    let err = untrusting.node_info().await.unwrap_err().to_string();
    assert!(err.contains("cannot reach the node"), "{err}");
    // Another certificate as the CA: refused too.
    let (other, _) = certificate(dir.path(), "other");
    let wrong = NodeClient::with_ca(&https, Duration::from_secs(10), 1, &std::fs::read(&other).unwrap()).unwrap();
    assert!(wrong.node_info().await.is_err());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = NodeClient::new(&https.replace("https://", "http://"), Duration::from_secs(5), 1);
    assert!(plain.node_info().await.is_err());
    // A CA file that holds no certificate is an error before any request.
    assert!(NodeClient::with_ca(&https, Duration::from_secs(1), 1, b"not pem").is_err());

    // The binary: send and verify over https.
    let work = tempfile::tempdir().unwrap();
    let client_key = work.path().join("client.pem");
    sealchain_shared::keys::save_signing_key(&client_key, &sender).unwrap();
    let run = |ca: &Path, args: &[&str]| {
        let mut cmd = Command::new(binary("sealchain"));
        cmd.env("SEALCHAIN_DATA_DIR", work.path().join("data"))
            .env_remove("SEALCHAIN_PIN_FILE")
            .env_remove("SEALCHAIN_NODE")
            .args(["--node", &https, "--ca-cert"])
            .arg(ca)
            .args(args);
        actix_rt::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let key_arg = client_key.display().to_string();
    let out = run(&cert, &["send", "--topic", "t", "--body", "2", "--key", &key_arg])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("accepted     seq 1"));
    let out = run(&cert, &["verify"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&other, &["node-info"]).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot reach the node"));
    node.stop().await;
}

#[test]
fn half_a_tls_configuration_or_an_unreadable_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "node");
    let node = |args: &[&str]| {
        Command::new(binary("sealchain-node"))
            .args([
                "--database-url",
                "postgres://nobody@127.0.0.1:1/none",
                "--db-connect-timeout",
                "0",
            ])
            .arg("--keys-dir")
            .arg(dir.path().join("keys"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = node(&["--tls-cert", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "clap refuses it");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
    let out = node(&["--tls-key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
    // Missing or swapped files: one clear line, before the database.
    let missing = dir.path().join("missing.crt");
    let out = node(&[
        "--tls-cert",
        missing.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reading the TLS certificate") && err.contains("missing.crt"),
        "{err}"
    );
    let out = node(&["--tls-cert", key.to_str().unwrap(), "--tls-key", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node.crt") || err.contains("node.key"), "{err}");
    let (_, other_key) = certificate(dir.path(), "other");
    let out = node(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        other_key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not fit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
