//! The first run of a compose file, as a test: the node starts before its
//! database exists, waits for it (logging each attempt), and becomes ready
//! once a Postgres server comes up. The server is a private, throwaway
//! cluster (initdb into a temporary directory, its own port), so the shared
//! test database server is never stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sealchain_tests::process::binary;

/// The newest installed PostgreSQL's `bin` directory.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (initdb
/// refuses to run as root).
fn pg(tool: &Path, args: &[&str]) -> std::process::Output {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    };
    cmd.args(args).output().unwrap()
}

struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Cluster {
    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "stop"],
        );
    }
}

#[test]
fn a_node_started_before_its_database_waits_and_becomes_ready() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
    let bin = pg_bin();
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster { dir, bin };
    let _ = Command::new("chown")
        .args(["-R", "postgres"])
        .arg(cluster.dir.path())
        .status();
    let init = pg(
        &cluster.bin.join("initdb"),
        &["-D", &cluster.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
    );
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1",
        cluster.dir.path().display()
    );
    let log = cluster.dir.path().join("log").display().to_string();
    let start = pg(
        &cluster.bin.join("pg_ctl"),
        &["-D", &cluster.data(), "-o", &options, "-l", &log, "-w", "start"],
    );
    assert!(
        start.status.success(),
        "pg_ctl start: {}",
        String::from_utf8_lossy(&start.stderr)
    );

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
        .output()
        .unwrap();
    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    let _ = node.kill();
    let _ = node.wait();
    drop(cluster);
}
