//! `sealchain blocks follow`: the real binary follows a real node, prints
//! each block once and checked, carries on after the node restarts, and
//! stops at a block that does not verify.
//!
//! Build the binaries first when running only this crate (`cargo build
//! --bins`); the tests refuse a `sealchain` older than its sources.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sealchain_shared::api::Block;
use sealchain_tests::{NodeOptions, TestDb, TestNode, fill};

const DEADLINE: Duration = Duration::from_secs(30);

/// A running `sealchain … blocks follow`, its stdout read line by line.
struct Follow {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    _data: tempfile::TempDir,
}

impl Follow {
    fn start(base: &str, args: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(sealchain_tests::cli::binary())
            .arg("--node")
            .arg(base)
            .arg("--data-dir")
            .arg(data.path())
            .args(["blocks", "follow"])
            .args(args)
            .env_remove("SEALCHAIN_NODE_KEY")
            .env_remove("SEALCHAIN_PIN_FILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
            text
        });
        Self {
            child,
            lines,
            stderr: Some(stderr),
            _data: data,
        }
    }

    /// The next printed line, waiting without blocking the node's runtime.
    async fn line(&self) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.lines.try_recv() {
                Ok(line) => return line,
                Err(mpsc::TryRecvError::Disconnected) => panic!("follow ended early"),
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(Instant::now() < deadline, "follow printed nothing within {DEADLINE:?}");
                    actix_rt::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Waits for the process to exit: its status, the lines it printed
    /// since the last [`Follow::line`], and its stderr.
    async fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "follow did not exit within {DEADLINE:?}");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        // The process has exited: its stdout reader reaches the end at once.
        (status.code(), self.lines.iter().collect(), stderr)
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_block_line(line: &str, index: u64, hash: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[..3], ["block", &index.to_string(), hash], "{line}");
    assert!(line.ends_with("  ok"), "{line}");
}

#[actix_rt::test]
async fn follow_prints_each_block_once_checked_across_a_restart() {
    let db = TestDb::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = NodeOptions::default()
        .arg("--block-size", 3)
        .arg("--listen", format!("127.0.0.1:{port}"));
    let mut node = TestNode::spawn(&db, options.clone()).await;
    let _keys = node.take_keys();
    let keys_dir = node.keys_dir.clone();
    let clients = fill::identities(2);
    fill::send(&node.client, &node.info, &clients, 3).await;

    // From block 1, which is not sealed yet: its link to block 0 is checked.
    let follow = Follow::start(&node.base, &["--from", "1", "--count", "3"]);
    fill::send(&node.client, &node.info, &clients, 3).await;
    let one = node.client.block(1).await.unwrap();
    assert_block_line(&follow.line().await, 1, &one.summary.hash.to_string());

    // The node goes away and comes back on the same address.
    node.stop().await;
    let node = TestNode::spawn(&db, options.keys_dir(&keys_dir)).await;
    fill::send(&node.client, &node.info, &clients, 6).await;
    let (status, rest, stderr) = follow.finish().await;
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(rest.len(), 2, "{rest:?}");
    for (line, index) in rest.iter().zip(2..) {
        let block = node.client.block(index).await.unwrap();
        assert_block_line(line, index, &block.summary.hash.to_string());
    }
    assert!(stderr.contains("following the blocks of"), "{stderr}");
    assert!(
        stderr.contains("lost the node") && stderr.contains("reconnecting in"),
        "{stderr}"
    );
    node.stop().await;
}

#[actix_rt::test]
async fn follow_prints_json_lines_and_stops_at_a_block_that_does_not_verify() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 2)).await;
    let clients = fill::identities(2);
    fill::send(&node.client, &node.info, &clients, 4).await;

    // --json: one block object a line, messages included.
    let follow = Follow::start(&node.base, &["--from", "0", "--count", "2", "--json"]);
    let (status, lines, stderr) = follow.finish().await;
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(lines.len(), 2);
    for (line, index) in lines.iter().zip(0..) {
        let block: Block = serde_json::from_str(line).unwrap();
        assert_eq!(block, node.client.block(index).await.unwrap());
    }

    // A message of block 1 changed behind the node's back: block 0 prints,
    // block 1 prints with what is wrong, and the command fails naming it.
    db.execute("UPDATE messages SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1) WHERE seq = 3");
    let follow = Follow::start(&node.base, &["--from", "0", "--messages"]);
    let first = follow.line().await;
    assert!(first.starts_with("block      0") && first.ends_with("  ok"), "{first}");
    let (status, rest, stderr) = follow.finish().await;
    assert_eq!(status, Some(1), "{stderr}");
    let failed = rest.iter().find(|l| l.starts_with("block      1")).unwrap();
    assert!(failed.contains("FAILED"), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.trim_start().starts_with("3 ")),
        "--messages lists them: {rest:?}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: block 1 does not verify"), "{stderr}");
    assert!(!stderr.contains("panicked"));
    node.stop().await;
}

#[actix_rt::test]
async fn follow_refuses_what_it_cannot_follow() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    for (args, needle) in [(&["--count", "0"][..], "--count"), (&["--from", "x"][..], "--from")] {
        let follow = Follow::start(&node.base, args);
        let (status, lines, stderr) = follow.finish().await;
        assert_eq!(status, Some(2), "{args:?}: {stderr}");
        assert!(lines.is_empty() && stderr.contains(needle), "{stderr}");
    }
    // No node at the first contact: one clear line (a follower only
    // reconnects to a node it has reached).
    let gone = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let follow = Follow::start(&format!("http://{gone}"), &[]);
    let (status, _, stderr) = follow.finish().await;
    assert_eq!(status, Some(1), "the first contact needs a node: {stderr}");
    assert!(stderr.contains("cannot reach the node"), "{stderr}");
    node.stop().await;
}
