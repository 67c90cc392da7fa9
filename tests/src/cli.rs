//! The `sealchain` binary under test: a working directory of its own (keys,
//! data directory, receipts) and helpers that run it against a node.
//!
//! Cargo builds the binary for `cargo test --workspace` or `cargo test -p
//! sealchain-client`; when running only the integration tests, build it
//! first (`cargo build -p sealchain-client`) — [`binary`] refuses a binary
//! older than the client's sources.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use assert_cmd::assert::OutputAssertExt;
use predicates::prelude::*;
use sealchain_shared::api::Receipt;
use serde_json::Value;

use crate::{TestDb, TestNode, seal};

/// The `sealchain` binary, checked to be newer than every file of the
/// client's sources.
pub fn binary() -> PathBuf {
    let bin = crate::process::binary("sealchain");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).unwrap();
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../client");
    let newest = newest_mtime(&client.join("src")).max(newest_mtime(&client.join("Cargo.toml")));
    assert!(
        built >= newest,
        "{} is older than client/src: run `cargo build -p sealchain-client` first",
        bin.display()
    );
    bin
}

fn newest_mtime(path: &Path) -> SystemTime {
    let meta = std::fs::metadata(path).unwrap();
    if !meta.is_dir() {
        return meta.modified().unwrap();
    }
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| newest_mtime(&e.unwrap().path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A working directory (keys, pin file, receipts) and the node to talk to.
#[derive(Debug)]
pub struct Cli {
    /// The working directory (the data directory is `data/` in it).
    pub dir: tempfile::TempDir,
    /// The node's URL.
    pub node: String,
}

impl Cli {
    pub fn new(node: &TestNode) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            node: node.base.clone(),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Runs `sealchain --node <node> ARGS` (unless ARGS name another
    /// `--node`) on a blocking thread, so the node (on this test's runtime)
    /// keeps serving.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = assert_cmd::Command::new(binary());
        cmd.current_dir(self.dir.path())
            .env_remove("SEALCHAIN_NODE")
            .env_remove("SEALCHAIN_NODE_KEY")
            .env_remove("SEALCHAIN_PIN_FILE")
            .env_remove("SEALCHAIN_CHECKPOINT")
            .env("SEALCHAIN_DATA_DIR", self.path("data"));
        if !args.contains(&"--node") {
            cmd.arg("--node").arg(&self.node);
        }
        cmd.args(args);
        actix_rt::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// Starts `sealchain --node <node> ARGS` as a child process that keeps
    /// running (`monitor`), its stdout read line by line into the returned
    /// channel.
    pub fn spawn(&self, args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
        use std::io::BufRead;
        let mut child = std::process::Command::new(binary())
            .current_dir(self.dir.path())
            .env_remove("SEALCHAIN_NODE")
            .env_remove("SEALCHAIN_NODE_KEY")
            .env_remove("SEALCHAIN_PIN_FILE")
            .env_remove("SEALCHAIN_CHECKPOINT")
            .env("SEALCHAIN_DATA_DIR", self.path("data"))
            .arg("--node")
            .arg(&self.node)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start sealchain");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    /// Runs and expects success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        let text = String::from_utf8(output.stdout.clone()).unwrap();
        output.assert().success();
        text
    }

    /// Runs with `--json` and expects success; returns the parsed stdout.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all).await).unwrap()
    }

    /// Runs and expects the failure users should see: exit status 1 and
    /// one `error: ` line on stderr containing `needle`, no panic.
    pub async fn fails(&self, args: &[&str], needle: &str) -> String {
        let output = self.run(args).await;
        let err = String::from_utf8(output.stderr.clone()).unwrap();
        output
            .assert()
            .code(1)
            .stderr(predicate::str::starts_with("error: "))
            .stderr(predicate::str::contains(needle))
            .stderr(predicate::str::contains("panicked").not());
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
        err
    }
}

/// Sends `n` messages with the library; returns their receipts.
pub async fn fill(node: &TestNode, n: usize) -> Vec<Receipt> {
    let key = seal::identity();
    let mut receipts = Vec::with_capacity(n);
    for i in 0..n {
        let envelope = seal::envelope(&key, &node.info, "sensors/temp", serde_json::json!({ "i": i }));
        receipts.push(node.client.submit(&envelope).await.unwrap());
    }
    receipts
}

/// Flips the lowest bit of one byte of a bytea column.
pub fn flip(db: &TestDb, table: &str, column: &str, row: &str, byte: usize) {
    let changed = db.execute(&format!(
        "UPDATE {table} SET {column} = set_byte({column}, {byte}, get_byte({column}, {byte}) # 1) WHERE {row}"
    ));
    assert_eq!(changed, 1, "{table}.{column} {row}");
}

/// The next line from `lines` that satisfies `wanted`, waiting at most
/// `timeout` without blocking the runtime the node under test runs on.
pub async fn wait_for_line(
    lines: &std::sync::mpsc::Receiver<String>,
    timeout: std::time::Duration,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match lines.try_recv() {
            Ok(line) if wanted(&line) => return line,
            Ok(line) => seen.push(line),
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no such line within {timeout:?}; saw:\n{}",
                    seen.join("\n")
                );
                actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                panic!("the command ended; it printed:\n{}", seen.join("\n"))
            }
        }
    }
}
