//! Nodes as real processes of the `sealchain-node` binary, for what only a
//! process can show: SIGKILL, SIGTERM and its exit code, two processes on
//! one database.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sealchain_client::api::NodeClient;

use crate::TestDb;

/// A running `sealchain-node` process.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client for it.
    pub client: NodeClient,
}

/// The path of a workspace binary built by `cargo test --workspace`.
pub fn binary(name: &str) -> std::path::PathBuf {
    let path = assert_cmd::cargo::cargo_bin(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace`, or run `cargo build --bins` before \
         `cargo test -p sealchain-tests ...`",
        path.display()
    );
    path
}

impl NodeProcess {
    /// Starts the binary on `db` with `keys_dir`, listening on a free port
    /// that it reports in its JSON log.
    pub fn spawn(db: &TestDb, keys_dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(binary("sealchain-node"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "2"])
            .arg("--database-url")
            .arg(&db.url)
            .arg("--keys-dir")
            .arg(keys_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sealchain-node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == "listening"
                    && let Some(port) = v["port"].as_u64()
                {
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the node did not report its port within 60 s");
        let base = format!("http://127.0.0.1:{port}");
        let client = NodeClient::new(&base, Duration::from_secs(30), 64);
        Self { child, base, client }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`"KILL"`, `"TERM"`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits (without blocking the async runtime) for the process to exit;
    /// returns its exit code, `None` if a signal ended it. Panics after
    /// `timeout`.
    pub async fn exit_code(mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for sealchain-node") {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sealchain-node did not exit within {timeout:?}"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
