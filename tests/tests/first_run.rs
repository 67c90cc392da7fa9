//! The first run of a compose file, as a test: the node starts before its
//! database exists, waits for it (logging each attempt), and becomes ready
//! once a Postgres server comes up. The server is a private, throwaway
//! cluster (initdb into a temporary directory, its own port), so the shared
//! test database server is never stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sealchain_tests::cluster::{Cluster, free_port};
use sealchain_tests::process::binary;

#[test]
fn a_node_started_before_its_database_waits_and_becomes_ready() {
    // The database's port, chosen now, and its cluster made only later.
    let cluster = Cluster::init();
    let port = cluster.port;
    let http = free_port();
    let keys = tempfile::tempdir().unwrap();
    let mut node = Command::new(binary("sealchain-node"))
        .args([
            "--listen",
            &format!("127.0.0.1:{http}"),
            "--log-format",
            "json",
            "--workers",
            "1",
        ])
        .args(["--db-connect-timeout", "90"])
        .arg("--database-url")
        .arg(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .arg("--keys-dir")
        .arg(keys.path().join("k"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = node.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str, timeout: Duration| -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    seen.push(line);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?} within {timeout:?}; saw:\n{}",
                    seen.join("\n")
                ),
            }
        }
    };

    // The node waits, saying so.
    wait_for("database not reachable yet; waiting", Duration::from_secs(30));
    assert!(node.try_wait().unwrap().is_none(), "the node is still running");

    // Now the database comes up (a fresh cluster, as on a first run).
    cluster.start();

    let lines = wait_for("\"listening\"", Duration::from_secs(60));
    assert!(
        lines.iter().any(|l| l.contains("database reachable")),
        "{}",
        lines.join("\n")
    );
    // Ready: answers over HTTP, readiness included.
    let ready = Command::new(binary("sealchain"))
        .args(["--node", &format!("http://127.0.0.1:{http}"), "--no-pin", "node-info"])
        .env_remove("SEALCHAIN_NODE")
        .env("SEALCHAIN_DATA_DIR", keys.path().join("client-data"))
        .output()
        .unwrap();
    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    let _ = node.kill();
    let _ = node.wait();
    drop(cluster);
}

/// A database URL libpq cannot parse is refused at the first attempt,
/// with libpq's words, instead of being waited on for
/// `--db-connect-timeout` as if the database were still starting.
#[test]
fn a_database_url_that_cannot_be_parsed_is_refused_at_once() {
    let keys = tempfile::tempdir().unwrap();
    for (url, says) in [
        ("127.0.0.1:5432/postgres", "in connection info string"),
        (
            "postgres://postgres@127.0.0.1:notaport/postgres",
            "invalid integer value \"notaport\"",
        ),
        (
            "postgres://postgres@127.0.0.1/postgres?sslmode=sometimes",
            "invalid sslmode value",
        ),
    ] {
        let output = Command::new(binary("sealchain-node"))
            .args(["--listen", "127.0.0.1:0", "--db-connect-timeout", "120"])
            .arg("--database-url")
            .arg(url)
            .arg("--keys-dir")
            .arg(keys.path().join("k"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{url}: {stderr}");
        assert!(
            stderr.contains("connecting to the database failed after 1 attempt(s)") && stderr.contains(says),
            "{url}: {stderr}"
        );
        assert!(!stderr.contains("not reachable yet"), "{url}: {stderr}");
    }
}
