//! No secret reaches a log: the node runs at `RUST_LOG=trace` through
//! keygen, ingest, admin calls and every kind of error, and each line it
//! wrote is searched for its private keys (raw bytes as hex and base64, the
//! PEM bodies), a client's private key, the admin token and the plaintext of
//! a message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sealchain_client::api::NodeClient;
use sealchain_tests::process::binary;
use sealchain_tests::{TestDb, seal};

const TOKEN: &str = "adm1n-t0ken-that-must-never-be-logged";
const MARKER: &str = "plaintext-marker-that-must-never-be-logged";

/// Every spelling of a secret that could end up in a log line.
fn spellings(name: &str, raw: &[u8], pem: Option<&str>) -> Vec<(String, String)> {
    let mut out = vec![
        (format!("{name} (hex)"), hex::encode(raw)),
        (format!("{name} (HEX)"), hex::encode_upper(raw)),
        (
            format!("{name} (base64)"),
            STANDARD.encode(raw).trim_end_matches('=').to_owned(),
        ),
        (
            format!("{name} (bytes as a Rust list)"),
            format!("{:?}", &raw[..8]).trim_end_matches(']').to_owned(),
        ),
    ];
    if let Some(pem) = pem {
        for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() > 16) {
            out.push((format!("{name} (PEM line)"), line.to_owned()));
        }
    }
    out
}

/// The raw private key at the end of a PKCS#8 v1 PEM file (Ed25519 seed or
/// X25519 scalar: the last 32 bytes of the DER).
fn pem_secret(file: &Path) -> (Vec<u8>, String) {
    let pem = std::fs::read_to_string(file).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    (der[der.len() - 32..].to_vec(), pem)
}

#[actix_rt::test]
async fn no_private_key_token_or_plaintext_is_ever_logged() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keygen = Command::new(binary("sealchain-node"))
        .args(["keygen", "--keys-dir"])
        .arg(&keys)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let mut logs = String::from_utf8_lossy(&keygen.stdout).into_owned() + &String::from_utf8_lossy(&keygen.stderr);

    // A free port, taken from the OS and released for the node.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut node = Command::new(binary("sealchain-node"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
            "--client-policy",
            "allowlist",
        ])
        .arg("--database-url")
        .arg(&db.url)
        .arg("--keys-dir")
        .arg(&keys)
        .env("RUST_LOG", "trace")
        .env("SEALCHAIN_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = node.stdout.take().unwrap();
    let mut stderr = node.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let base = format!("http://127.0.0.1:{port}");
    let client = NodeClient::new(&base, Duration::from_secs(10), 4);
    let deadline = Instant::now() + Duration::from_secs(60);
    let info = loop {
        if let Ok(info) = client.node_info().await {
            break info;
        }
        assert!(Instant::now() < deadline, "the node did not start");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };

    // Admin calls: good token, wrong token, no token.
    let alice = seal::identity();
    client
        .add_client(TOKEN, alice.verifying_key().to_bytes())
        .await
        .unwrap();
    assert!(client.add_client("wrong-token-wrong-token", [1; 32]).await.is_err());
    client.list_clients(TOKEN).await.unwrap();
    // Ingest: accepted, resent, refused for every reason we can cause.
    let secret_body = serde_json::json!({ "note": MARKER });
    let envelope = seal::envelope(&alice, &info, "secrets", secret_body.clone());
    client.submit(&envelope).await.unwrap();
    client.submit(&envelope).await.unwrap();
    let mallory = seal::identity();
    assert!(
        client
            .submit(&seal::envelope(&mallory, &info, "secrets", secret_body.clone()))
            .await
            .is_err()
    );
    assert!(
        client
            .submit_raw(b"{\"enc\":\"00\",\"ct\":\"\"}".to_vec())
            .await
            .is_err()
    );
    let mut tampered = seal::envelope(&alice, &info, "secrets", secret_body);
    tampered.ct[3] ^= 1;
    assert!(client.submit(&tampered).await.is_err());
    client
        .remove_client(TOKEN, alice.verifying_key().to_bytes())
        .await
        .unwrap();
    assert!(
        client
            .submit(&seal::envelope(&alice, &info, "secrets", serde_json::json!(MARKER)))
            .await
            .is_err()
    );
    let _ = client.message(0).await.unwrap();

    let _ = Command::new("kill").arg("-TERM").arg(node.id().to_string()).status();
    let status = node.wait().unwrap();
    assert!(status.success());
    logs.push_str(&out_reader.join().unwrap());
    logs.push_str(&err_reader.join().unwrap());
    assert!(
        logs.lines().count() > 100,
        "trace logging produced {} lines",
        logs.lines().count()
    );
    assert!(
        logs.contains("TRACE") && logs.contains("listening"),
        "the logs are real"
    );
    // The public keys are logged, in the very spelling searched for below,
    // so a private key logged the same way would be found.
    assert!(logs.contains(&info.signing_key.to_hex()), "the search can find a key");

    let (signing, signing_pem) = pem_secret(&keys.join("signing.pem"));
    let (encryption, encryption_pem) = pem_secret(&keys.join("encryption.pem"));
    let mut secrets = spellings("node signing key", &signing, Some(&signing_pem));
    secrets.extend(spellings("node encryption key", &encryption, Some(&encryption_pem)));
    secrets.extend(spellings("client key", &alice.to_bytes(), None));
    secrets.push(("admin token".into(), TOKEN.into()));
    secrets.push(("message plaintext".into(), MARKER.into()));
    for (what, needle) in secrets {
        if let Some(line) = logs.lines().find(|l| l.contains(&needle)) {
            panic!("the {what} appears in a log line: {line}");
        }
    }
}
