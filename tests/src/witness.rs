//! Witnesses as real processes of `sealchain witness serve`, and the pieces
//! the witness tests share: a node's log key made before the node starts,
//! policy files, and waiting for a cosigned checkpoint.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sealchain_shared::cosignature::CosignatureVerifier;
use sealchain_shared::note::NoteVerifier;
use sealchain_shared::policy::{Policy, Witnessed};

use crate::process::binary;

/// A running witness process; restartable on the same port and state.
#[derive(Debug)]
pub struct WitnessProcess {
    child: Option<Child>,
    /// Its key name.
    pub name: String,
    /// Its verifier key (type 0x04).
    pub vkey: String,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    port: u16,
    key: PathBuf,
    state: PathBuf,
    logs: Vec<String>,
}

/// A free local port (bound and released; the witness binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl WitnessProcess {
    /// Creates a key for `name` under `dir` with `sealchain witness keygen`
    /// and starts a witness following `logs` (`ORIGIN=VKEY`).
    pub fn start(dir: &Path, name: &str, logs: &[String]) -> Self {
        let key = dir.join(format!("{}.pem", name.replace('/', "_")));
        let out = Command::new(binary("sealchain"))
            .args(["--json", "witness", "keygen", "--key"])
            .arg(&key)
            .args(["--name", name])
            .output()
            .expect("run sealchain witness keygen");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("keygen prints JSON");
        let port = free_port();
        let mut w = Self {
            child: None,
            name: name.to_owned(),
            vkey: created["verifier_key"].as_str().expect("verifier_key").to_owned(),
            base: format!("http://127.0.0.1:{port}"),
            port,
            key,
            state: dir.join(format!("{}-state", name.replace('/', "_"))),
            logs: logs.to_vec(),
        };
        w.restart();
        w
    }

    /// Its cosignature verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier::parse(&self.vkey).expect("the witness's vkey parses")
    }

    /// `--witness` for a node: `LOCAL=VKEY@URL`.
    pub fn arg(&self, local: &str) -> String {
        format!("{local}={}@{}", self.vkey, self.base)
    }

    /// Starts the process (again), on the same port and state; returns
    /// once it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the witness is running");
        let mut command = Command::new(binary("sealchain"));
        command
            .args(["witness", "serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--key")
            .arg(&self.key)
            .args(["--name", &self.name])
            .arg("--state")
            .arg(&self.state)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for log in &self.logs {
            command.args(["--log", log]);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut child = command.spawn().expect("start sealchain witness serve");
            let stdout = child.stdout.take().expect("stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("listening on http://") {
                        let _ = tx.send(());
                    }
                }
            });
            if rx.recv_timeout(Duration::from_secs(30)).is_ok() {
                self.child = Some(child);
                return;
            }
            // The port may still be held a moment after a kill: try again.
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "the witness {} did not start", self.name);
        }
    }

    /// Sends a signal (`KILL`, `TERM`) and waits for the process to end.
    pub fn stop(&mut self, signal: &str) {
        let mut child = self.child.take().expect("the witness is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        child.wait().expect("wait for the witness");
    }

    /// Whether the process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A node's keys created before it starts (so witnesses can be told its log
/// key): the keys directory, and its log key under `origin`.
pub fn node_keys(dir: &Path, origin: &str) -> (PathBuf, NoteVerifier) {
    let keys_dir = dir.join("node-keys");
    let keys = sealchain_node::keys::NodeKeys::create(&keys_dir).expect("node keys");
    let log = NoteVerifier::new(origin, keys.signing.verifying_key()).expect("log key");
    (keys_dir, log)
}

/// `--log` for a witness: `ORIGIN=VKEY`.
pub fn log_arg(log: &NoteVerifier) -> String {
    format!("{}={}", log.name(), log.to_vkey())
}

/// A policy file: the log, the witnesses as `w1`, `w2`, …, and a quorum of
/// `k` of them.
pub fn policy_text(log: Option<&NoteVerifier>, witnesses: &[&WitnessProcess], k: usize) -> String {
    let mut text = String::from("# written by the test\n");
    if let Some(log) = log {
        text.push_str(&format!("log {}\n", log.to_vkey()));
    }
    let mut names = Vec::new();
    for (i, w) in witnesses.iter().enumerate() {
        let name = format!("w{}", i + 1);
        text.push_str(&format!("witness {name} {} {}\n", w.vkey, w.base));
        names.push(name);
    }
    text.push_str(&format!("group quorum {k} {}\nquorum quorum\n", names.join(" ")));
    text
}

/// GETs the node's `path` as text.
pub async fn text(base: &str, path: &str) -> (u16, String) {
    let (status, _, body) = crate::get_raw(base, path).await;
    (status, String::from_utf8(body).expect("UTF-8"))
}

/// Waits until the node's `GET /checkpoint` satisfies `policy` at a size of
/// at least `size`; returns it.
pub async fn wait_witnessed(
    base: &str,
    policy: &Policy,
    log: &NoteVerifier,
    size: u64,
    timeout: Duration,
) -> Witnessed {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = text(base, "/checkpoint").await;
        let last = match policy.verify(body.as_bytes(), Some(log)) {
            Ok(w) if status == 200 && w.checkpoint.size >= size => return w,
            Ok(w) => format!("witnessed at size {}", w.checkpoint.size),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size} satisfied the policy within {timeout:?}; last: {last}\n{body}"
        );
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The node's `GET /v1/log/witnesses`.
pub async fn statuses(base: &str) -> serde_json::Value {
    let (status, body) = text(base, "/v1/log/witnesses").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Waits until `check` holds for the node's witness statuses.
pub async fn wait_statuses(base: &str, what: &str, timeout: Duration, check: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        let s = statuses(base).await;
        if check(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}: {s:#}");
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
}
